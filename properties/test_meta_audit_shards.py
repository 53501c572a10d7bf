"""The audit on pytest-xdist workers and in shards: the same report as one serial run.

A small selection keeps it cheap: DDIM-08 (parts, peer findings) falls in shard 1 of 2, SA-03
(parts, a variant beside the claim, figures) and PACK-04 (peer findings) in shard 2.
"""

import json

import pytest

from properties import mutation
from properties.audit import shard_of
from properties.test_meta_audit import audit, load

SELECTION = ["DDIM-08", "SA-03", "PACK-04"]
CI = ("--profile", "ci")  # derandomized: the same draws in every process, whatever the profile
COMPARED = ("id", "verdict", "expected", "matches", "properties", "evidence", "variants", "guarded")


def _timeless(value):
    """`value` without run times, which differ between any two runs."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in ("time_s", "duration_s")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def assert_same_claims(a, b):
    """Two claims.json agree claim by claim (verdict, expected, properties, evidence, variants)
    and on the peer findings, run times aside."""
    assert [e["id"] for e in a["claims"]] == [e["id"] for e in b["claims"]]
    for x, y in zip(a["claims"], b["claims"], strict=True):
        for key in COMPARED:
            assert _timeless(x.get(key)) == _timeless(y.get(key)), (x["id"], key)
    assert _timeless(a["findings"]) == _timeless(b["findings"])


def test_the_selection_splits_across_two_shards():
    assert [shard_of(c, 2) for c in SELECTION] == [1, 2, 2]


def test_merged_shards_on_workers_give_the_serial_report(tmp_path):
    """One serial run against two shards, the second on two pytest-xdist workers: the merged
    report equals the serial one claim by claim, so the workers' claims equal the serial ones;
    the statistical checks add up, and their sum is held to the budget."""
    serial = tmp_path / "serial"
    run = audit("--claims", *SELECTION, *CI, "-n", "1", "--out", str(serial))
    assert run.returncode == 0, run.stdout + run.stderr
    shards = [tmp_path / "shard-1", tmp_path / "shard-2"]
    for k, (out, workers) in enumerate(zip(shards, ("1", "2"), strict=True), start=1):
        run = audit(
            "--claims", *SELECTION, *CI, "--shard", f"{k}/2", "-n", workers, "--out", str(out)
        )
        assert run.returncode == 0, run.stdout + run.stderr
    parts = [load(out / "claims.json") for out in shards]
    assert [p["run"]["selected"] for p in parts] == [
        ["DDIM-08.linear", "DDIM-08.quadratic"],
        ["PACK-04", "SA-03.cubic", "SA-03.cubic-small-gain", "SA-03.tanh"],
    ]
    merged_dir = tmp_path / "merged"
    run = audit("merge", *map(str, shards), "--out", str(merged_dir))
    assert run.returncode == 0, run.stdout + run.stderr
    merged, whole = load(merged_dir / "claims.json"), load(serial / "claims.json")
    assert [whole["run"]["workers"], *(p["run"]["workers"] for p in parts)] == [1, 1, 2]
    assert_same_claims(merged, whole)
    checks = [p["run"]["statistics"]["checks"] for p in parts]
    assert (
        merged["run"]["statistics"]["checks"] == sum(checks) == whole["run"]["statistics"]["checks"]
    )
    assert merged["run"]["statistics"]["chance_failure_bound"] == pytest.approx(
        whole["run"]["statistics"]["chance_failure_bound"]
    )
    assert merged["run"]["selected"] == whole["run"]["selected"]
    assert merged["run"]["variants"]["count"] == whole["run"]["variants"]["count"]
    assert merged["summary"] == whole["summary"]
    assert {p.name for p in (merged_dir / "figures").iterdir()} == {
        p.name for p in (serial / "figures").iterdir()
    }
    assert (merged_dir / "report.md").read_text().count("\n### ") == (
        (serial / "report.md").read_text().count("\n### ")
    )
    page = (merged_dir / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') >= 2  # SA-03's figures, from shard 2

    # shards that do not make a whole cannot be merged
    for dirs, why in (
        ([shards[0]], "shard 2/2 is missing"),
        ([shards[0], shards[0]], "DDIM-08 was selected by two audits"),
        ([tmp_path / "nothing"], "neither claims.json nor mutation.json"),
    ):
        run = audit("merge", *map(str, dirs), "--out", str(tmp_path / "bad"))
        assert run.returncode == 2 and why in run.stderr, run.stderr

    # the budget holds for the shards together: 6,000 checks each are 12,000 > 10,000
    for shard in shards:
        data = load(shard / "claims.json")
        data["run"]["statistics"]["checks"] = 6_000
        (shard / "claims.json").write_text(json.dumps(data), encoding="utf-8")
    run = audit("merge", *map(str, shards), "--out", str(tmp_path / "over"))
    assert run.returncode == 1 and "12000 statistical checks exceed" in run.stderr, run.stderr
    assert load(tmp_path / "over" / "claims.json")["run"]["statistics"]["checks"] == 12_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shard", "3/2"], "K must be between 1 and N"),
        (["--shard", "0/2"], "K must be between 1 and N"),
        (["--shard", "x"], "is not K/N"),
        (["--shard", "1/0"], "K must be between 1 and N"),
        (["-n", "0"], "is not 'auto' or a count >= 1"),
        (["-n", "two"], "is not 'auto' or a count >= 1"),
    ],
)
def test_bad_shards_and_worker_counts_exit_2(tmp_path, args, message):
    run = audit(*args, "--out", str(tmp_path))
    assert run.returncode == 2 and message in run.stderr, run.stderr


def test_an_empty_shard_writes_a_report_of_unchecked_claims(tmp_path):
    run = audit("--claims", "SA-03", *CI, "--shard", "1/2", "--out", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    data = load(tmp_path / "claims.json")
    assert data["run"]["selected"] == [] and data["run"]["statistics"]["checks"] == 0
    assert {e["verdict"] for e in data["claims"]} == {"not checked"}


def _mutation_shard(package, when, survivors, stale):
    counts = {"total": 3, "killed": 2, "survived": 1, "score": 2 / 3, "when": when}
    return {
        "packages": {package: counts},
        "survivors": {package: survivors},
        "stale_equivalents": stale,
        "aim": mutation.AIM,
        "note": "note",
    }


def test_mutation_shards_merge_per_package():
    survivor = {"impl/rl/mdp.py": [{"name": "z"}]}
    rl = _mutation_shard("rl", "2026-01-02T00:00:00+0000", survivor, ["x", "y"])
    old_rl = _mutation_shard("rl", "2026-01-01T00:00:00+0000", {}, ["y", "z"])  # x survived then
    flows = _mutation_shard("flows", "2026-01-01T00:00:00+0000", {}, ["x", "y", "z"])
    merged = mutation.merge([flows, rl, old_rl])
    assert list(merged["packages"]) == ["rl", "flows"]  # the order of mutation.PACKAGES
    assert merged["packages"]["rl"]["when"].startswith("2026-01-02")  # the latest run of rl
    assert merged["survivors"] == {"rl": rl["survivors"]["rl"], "flows": {}}
    assert merged["stale_equivalents"] == ["x", "y"]  # what the runs kept saw survive: z
    assert json.loads(json.dumps(merged)) == merged
