"""The audit end to end (python -m properties.audit), and auditing another implementation."""

import json
import os
import subprocess
import sys
from pathlib import Path

from properties import catalogue

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {"id", "article", "statement", "verdict", "expected", "properties", "evidence"}


def audit(*args, cwd=ROOT):
    """The audit in a subprocess; from another directory, the checkout on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "properties.audit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def load(path):
    def reject(token):
        raise ValueError(f"claims.json holds {token}, which is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def test_audit_of_the_sa_article(tmp_path):
    """Run from another directory (the checkout on PYTHONPATH), as the README says it can be."""
    run = audit("--claims", "SA-*", "--profile", "ci", "--out", "report", cwd=tmp_path)
    tmp_path = tmp_path / "report"
    assert run.returncode == 0, run.stdout + run.stderr
    data = load(tmp_path / "claims.json")
    _, claims = catalogue.load()
    entries = {e["id"]: e for e in data["claims"]}
    assert list(entries) == list(claims)
    for cid, e in entries.items():
        assert FIELDS <= set(e), cid
        assert e["verdict"] in catalogue.VERDICTS
        if cid.startswith("SA-"):
            assert e["verdict"] == claims[cid].expected, (cid, e["evidence"]["summary"])
            assert e["properties"] and e["evidence"]["summary"], cid
        else:
            assert e["verdict"] == "not checked" and not e["properties"], cid
    assert entries["SA-03"]["verdict"] == "conditional"
    assert (
        "w^3 - 5" in entries["SA-03.cubic"]["statement"]
        and entries["SA-03.cubic"]["evidence"]["counterexample"]
    )
    figures = {f for e in entries.values() for f in e["evidence"]["figures"]}
    assert {
        "figures/sa02_error_vs_k.png",
        "figures/sa03_tanh_iterates.png",
        "figures/sa03_cubic_iterates.png",
    } <= figures
    assert all((tmp_path / f).stat().st_size > 10_000 for f in figures)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert all(f"### {cid}:" in md for cid in entries if cid.startswith("SA-"))
    assert "SA-01" in run.stdout and "not checked" in run.stdout  # the terminal table
    assert 0 < data["run"]["statistics"]["chance_failure_bound"] <= 1e-3
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count('<details class="claim"') == len(entries)
    assert page.count('src="data:image/png;base64,') == sum(
        len(set(e["evidence"]["figures"])) for e in entries.values()
    )
    assert "http://" not in page and "https://" not in page  # self-contained
    # every SA leaf claim is guarded by a variant its own properties reject, shown per claim
    leaves = [e for e in entries.values() if e["id"].startswith("SA-") and "parts" not in e]
    assert all(e["guarded"] and any(v["rejected"] for v in e["variants"]) for e in leaves)
    assert data["run"]["variants"]["unguarded"] == []
    assert "`mean-step-1/(k+1)` (rejected, verdict fails)" in md
    assert page.count('<ul class="variants">') == len(leaves) and "unguarded" in page
    # the variant the article does not state is reported beside SA-03, outside its verdict
    assert entries["SA-03"]["parts"] == ["SA-03.tanh", "SA-03.cubic"]
    assert entries["SA-03"]["beside"] == ["SA-03.cubic-small-gain"]
    assert entries["SA-03.cubic-small-gain"]["stated"] is False


def test_audit_catches_a_wrong_incremental_mean(tmp_path):
    """The SA-01 properties, run against the deliberately wrong adapter (step 1/(k+1)), fail for
    the right reason: the iterate differs from the batch mean, shown on a minimal case."""
    run = audit("--claims", "SA-01", "--target", "sa=off-by-one-mean", "--out", str(tmp_path))
    assert run.returncode == 1, run.stdout + run.stderr
    sa01 = next(e for e in load(tmp_path / "claims.json")["claims"] if e["id"] == "SA-01")
    assert sa01["verdict"] == "fails" and sa01["expected"] == "holds"
    exact = sa01["evidence"]["by_property"][
        "properties/test_rl_approximation_mean.py::test_incremental_mean_is_the_batch_mean_exactly"
    ]
    assert exact["outcome"] == "assertion"
    assert exact["failure"].startswith("AssertionError: w_{k+1} - batch mean (exact)")
    assert "sa=properties.adapters.sa.OffByOneMean" in exact["counterexample"]
    assert "x=[Fraction(0, 1)]" in exact["counterexample"]


def test_audit_rejects_bad_arguments(tmp_path):
    assert audit("--claims", "ZZ-*", "--out", str(tmp_path)).returncode == 2
    assert audit("--target", "sa", "--out", str(tmp_path)).returncode == 2
    run = audit("--target", "sa=no_such_module:Adapter", "--out", str(tmp_path))
    assert run.returncode == 2 and "no_such_module" in run.stderr, run.stderr
    run = audit("--target", "sa=properties.adapters.sa:NoSuchAdapter", "--out", str(tmp_path))
    assert run.returncode == 2 and "NoSuchAdapter" in run.stderr, run.stderr
