"""Rejected variants (properties/variants): every leaf claim's own properties reject at least one
plausible wrong implementation, and the gate fails when one of them stops being rejected."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from properties import catalogue, variants
from properties.variants import _runner

ROOT = Path(__file__).resolve().parents[1]
_, CLAIMS = catalogue.load()
REGISTRY = variants.load()


def _variants_run(tmp_path, *args):
    out = tmp_path / "variants.json"
    command = [sys.executable, "-m", "properties.variants", *args, "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    summary = json.loads(out.read_text()) if out.exists() else None
    return done, summary


def test_every_leaf_claim_names_at_least_one_variant():
    named = {c for v in REGISTRY.values() for c in v.claims}
    missing = [c for c in catalogue.leaves(CLAIMS) if c not in named]
    assert not missing, f"leaf claims without a rejected variant: {missing}"
    unknown = sorted(named - set(catalogue.leaves(CLAIMS)))
    assert not unknown, f"variants name claims that are not leaf claims: {unknown}"


@pytest.mark.first
def test_every_variant_is_rejected_by_the_properties_of_each_claim_it_names(tmp_path):
    """The CI gate of the mechanism: one run of every variant (profile `variants`). The longest
    test of the suite: marked to start first, so that pytest-xdist runs the rest beside it."""
    done, summary = _variants_run(tmp_path)
    assert summary is not None, done.stderr[-3000:]
    assert summary["unrejected"] == [], summary["unrejected"]
    assert summary["unguarded"] == [], summary["unguarded"]
    assert done.returncode == 0, done.stdout[-3000:]


def test_a_disabled_variant_makes_the_gate_fail(tmp_path):
    """Run one of SA-01's variants without its patch: it is not rejected and the run exits 1;
    with all of them disabled SA-01 is also unguarded. (With the patches the run passes: the
    gate above.)"""
    names = [v.name for v in variants.of_claim("SA-01")]
    done, summary = _variants_run(tmp_path, "--claims", "SA-01", "--disable", names[0])
    assert done.returncode == 1, done.stderr[-3000:]
    assert summary["unrejected"] == [[names[0], "SA-01"]] and summary["unguarded"] == []
    assert "NOT REJECTED" in done.stdout
    done, summary = _variants_run(tmp_path, "--claims", "SA-01", "--disable", *names)
    assert done.returncode == 1, done.stderr[-3000:]
    assert summary["unguarded"] == ["SA-01"]
    assert summary["unrejected"] == [[n, "SA-01"] for n in names]


def test_an_unknown_variant_name_is_a_usage_error(tmp_path, monkeypatch, capsys, one_torch_thread):
    """In this process (it stops before any property runs); main's profile and thread count are
    restored afterwards by monkeypatch and one_torch_thread."""
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "variants")
    out = tmp_path / "variants.json"
    assert _runner.main(["--variants", "no-such-variant", "--json", str(out)]) == 2
    assert not out.exists()
    assert "unknown variant(s) ['no-such-variant']" in capsys.readouterr().err


@pytest.mark.parametrize(
    "expected, role, outcome, decides",
    [
        ("holds", "supports", "assertion", True),
        ("holds", "refutes", "passed", True),
        ("holds", "supports", "passed", False),
        ("holds", "supports", "exception", False),  # a crash is not a rejection
        ("holds", "refutes", "not-refuted", False),
        ("fails", "refutes", "not-refuted", False),  # needs every refutation to come up empty
        ("fails", "supports", "passed", False),
    ],
)
def test_a_pair_is_decided_only_by_a_result_that_changes_the_verdict(
    expected, role, outcome, decides
):
    assert _runner.decisive(expected, role, outcome) is decides


def test_crashes_are_left_out_of_the_verdict_under_a_variant():
    assert _runner.verdict_under([("supports", "exception")]) == "not checked"
    assert _runner.verdict_under([("supports", "exception"), ("supports", "passed")]) == "holds"
    assert _runner.verdict_under([("supports", "exception"), ("supports", "assertion")]) == "fails"
    assert _runner.verdict_under([("refutes", "not-refuted")]) == "holds"


def test_variant_registration_checks_its_arguments():
    with pytest.raises(TypeError, match="name the claim ids"):
        variants.variant(name="x", why="y")
    with pytest.raises(ValueError, match="say in `why`"):
        variants.variant("SA-01", name="x", why="")
    with pytest.raises(ValueError, match="registered twice"):
        variants.variant("SA-01", name="mean-step-1/(k+1)", why="again")(lambda mp: None)
