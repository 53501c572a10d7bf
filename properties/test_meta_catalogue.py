"""The claim catalogue and the verdict rules (properties/catalogue.py)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from properties import catalogue, report
from properties.variants import _runner

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# Claims per article in CLAIMS.md (the openings, 81 in all) and CLAIMS-FULLTEXT.md (the full texts,
# 40, numbered on from the opening's), so a clone without ../shared still checks coverage.
COUNTS = {"DDIM": 11, "CKPT": 6, "SDE": 8, "PACK": 7, "FLOW": 9, "CFG": 6, "SA": 7, "SD": 5,
          "MC": 7, "RL": 8, "FA": 7}  # fmt: skip
FULL_TEXT = {"DDIM": 5, "CKPT": 5, "FLOW": 6, "SD": 13, "FA": 6, "SA": 5}
SOURCES = {"CLAIMS.md": "opening", "CLAIMS-FULLTEXT.md": "full text"}
ARTICLES, CLAIMS = catalogue.load()


def test_catalogue_holds_every_claim_of_every_article():
    top = [c for c in CLAIMS if "." not in c]
    assert set(ARTICLES) == set(COUNTS) >= set(FULL_TEXT)
    for key, n in COUNTS.items():
        ids = [f"{key}-{i:02d}" for i in range(1, n + FULL_TEXT.get(key, 0) + 1)]
        assert [c for c in top if c.startswith(key + "-")] == ids
        assert [CLAIMS[c].source for c in ids] == ["opening"] * n + ["full text"] * (len(ids) - n)
    assert sum(COUNTS.values()) == 81 and sum(FULL_TEXT.values()) == 40


@pytest.mark.parametrize("name", SOURCES)
def test_catalogue_matches_the_claims_files(name):
    """Every claim of CLAIMS.md and of CLAIMS-FULLTEXT.md, with its statement verbatim, in the
    file's order within each article, marked with its source; parts inherit their parent's."""
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"../shared/{name} is not beside this checkout")
    ids = re.findall(r"^- ([A-Z]+-\d{2}) (.*)$", path.read_text(encoding="utf-8"), re.M)
    ours = [c for c in CLAIMS if "." not in c and CLAIMS[c].source == SOURCES[name]]
    for key in ARTICLES:
        assert [i for i, _ in ids if i.startswith(key + "-")] == [
            c for c in ours if c.startswith(key + "-")
        ]
    assert len(ids) == len(ours)
    for cid, statement in ids:
        assert CLAIMS[cid].statement == statement.strip(), cid
    for cid in catalogue.leaves(CLAIMS):
        assert CLAIMS[cid].source == CLAIMS[cid.split(".")[0]].source, cid


def test_source_and_revised_are_checked(tmp_path):
    head = '[articles]\nSA = "t"\n[[claims]]\nid = "SA-01"\nstatement = "s"\nexpected = "holds"\n'
    cases = {
        'source = "blog"\n': "source",
        '[[claims]]\nid = "SA-01.a"\nstatement = "s"\nexpected = "holds"\nsource = "full text"\n': (
            "parts inherit"
        ),
        'revised = ""\n': "says why",
    }
    for extra, message in cases.items():
        path = tmp_path / "c.toml"
        path.write_text(head + extra, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            catalogue.load(path)
    path.write_text(head + 'source = "full text"\n', encoding="utf-8")
    assert catalogue.load(path)[1]["SA-01"].source == "full text"


def test_ids_parts_and_expected_verdicts_are_consistent():
    for cid, c in CLAIMS.items():
        assert re.fullmatch(r"[A-Z]+-\d{2}(\.[a-z0-9-]+)?", cid), cid
        assert c.expected in catalogue.EXPECTABLE
        if c.parent:
            assert c.parent in CLAIMS, f"{cid} has no parent entry"
        parts = catalogue.parts(CLAIMS, cid)
        if parts:
            stated = catalogue.stated_parts(CLAIMS, cid)
            assert stated, f"{cid}: a claim needs at least one part the article states"
            assert c.expected == catalogue.aggregate([CLAIMS[p].expected for p in stated]), cid
        else:
            assert c.expected != "conditional", (
                f"{cid}: a claim without parts cannot be conditional"
            )


def test_select_expands_parents_to_their_parts():
    assert catalogue.select(CLAIMS, ["SA-03"]) == {
        "SA-03.tanh",
        "SA-03.cubic",
        "SA-03.cubic-small-gain",
    }
    assert catalogue.select(CLAIMS, ["SA-0[12]"]) == {"SA-01", "SA-02"}
    assert catalogue.select(CLAIMS, ["nothing"]) == set()


def test_check_marks_rejects_unknown_ids_and_parents_with_parts():
    catalogue.check_marks(CLAIMS, {"t::ok": (("SA-01",), ("SA-03.cubic",))})
    with pytest.raises(ValueError, match="unknown claim id 'XX-99'"):
        catalogue.check_marks(CLAIMS, {"t::bad": (("XX-99",), ())})
    with pytest.raises(ValueError, match="name a part"):
        catalogue.check_marks(CLAIMS, {"t::parent": ((), ("SA-03",))})


@pytest.mark.parametrize(
    "results, verdict",
    [
        ([], "not checked"),
        ([("supports", "skipped")], "not checked"),
        ([("supports", "passed")], "holds"),
        ([("supports", "passed"), ("supports", "assertion")], "fails"),
        ([("refutes", "passed")], "fails"),
        ([("refutes", "not-refuted")], "holds"),
        ([("supports", "passed"), ("refutes", "assertion")], "error"),
        ([("supports", "assertion"), ("supports", "exception")], "error"),
        # a supporting property that failed by "no counterexample found" never earns `holds`
        ([("supports", "not-refuted")], "error"),
        ([("supports", "passed"), ("supports", "not-refuted")], "error"),
    ],
)
def test_leaf_verdict(results, verdict):
    assert catalogue.leaf_verdict(results) == verdict


@pytest.mark.parametrize(
    "parts, verdict",
    [
        (["holds", "holds"], "holds"),
        (["fails", "fails"], "fails"),
        (["holds", "fails"], "conditional"),
        (["holds", "not checked"], "not checked"),
        (["holds", "error"], "error"),
    ],
)
def test_aggregate(parts, verdict):
    assert catalogue.aggregate(parts) == verdict


def test_variants_beside_a_claim_stay_out_of_its_verdict():
    """SDE-05 states the PF-ODE with its 1/2; the circulating variant without it fails, and is
    reported beside SDE-05 with its own verdict instead of making SDE-05 `conditional`."""
    assert not CLAIMS["SDE-05.without-half"].stated and CLAIMS["SDE-05.half"].stated
    assert catalogue.stated_parts(CLAIMS, "SDE-05") == ["SDE-05.half"]
    assert catalogue.stated_parts(CLAIMS, "SA-03") == ["SA-03.tanh", "SA-03.cubic"]
    marks = {"t::half": (("SDE-05.half",), ()), "t::no": ((), ("SDE-05.without-half",))}
    results = {n: {"outcome": "passed", "duration": 0.1, "evidence": {}, "failure": None}
               for n in marks}  # fmt: skip
    selected = {"SDE-05.half", "SDE-05.without-half"}
    entries = {e["id"]: e for e in report.claim_entries(ARTICLES, CLAIMS, selected, marks, results)}
    assert entries["SDE-05.without-half"]["verdict"] == "fails"
    assert entries["SDE-05.without-half"]["stated"] is False
    assert entries["SDE-05"]["verdict"] == "holds" and entries["SDE-05"]["matches"]
    assert entries["SDE-05"]["parts"] == ["SDE-05.half"]
    assert entries["SDE-05"]["beside"] == ["SDE-05.without-half"]


def test_stated_false_is_for_parts_only(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[articles]\nSA = "t"\n[[claims]]\nid = "SA-01"\nstatement = "s"\n'
        'expected = "holds"\nstated = false\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="for parts"):
        catalogue.load(path)


def test_check_marks_keeps_peer_findings_apart_from_evidence():
    catalogue.check_marks(CLAIMS, {"t::f": ((), ())}, {"t::f": ("DDIM-08.linear",)})
    with pytest.raises(ValueError, match="finding on unknown claim id 'XX-01'"):
        catalogue.check_marks(CLAIMS, {"t::f": ((), ())}, {"t::f": ("XX-01",)})
    with pytest.raises(ValueError, match="a peer finding is not evidence"):
        catalogue.check_marks(CLAIMS, {"t::f": (("DDIM-05",), ())}, {"t::f": ("DDIM-05",)})


@pytest.fixture(scope="module")
def all_marks():
    """{nodeid: (supports, refutes)} of every property, collected by pytest in a process of its own."""
    code = "import json; from properties import audit; print(json.dumps(audit.collect_marks()))"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_every_claim_of_a_started_article_has_a_property(all_marks):
    """Articles are implemented whole: once one claim of an article has a property, all must."""
    marks = all_marks
    named = {cid for supports, refutes in marks.values() for cid in supports + refutes}
    started = {cid.split("-")[0] for cid in named}
    missing = [c for c in catalogue.leaves(CLAIMS) if c.split("-")[0] in started and c not in named]
    assert not missing, f"claims of started articles without a property: {missing}"


def test_the_variants_run_collects_the_file_of_every_property_of_its_claims(all_marks):
    """python -m properties.variants collects only the files that name a selected claim in their
    text (_runner.naming_files): every file holding a property of a claim must be among them."""
    files_of = {}
    for nodeid, (supports, refutes) in all_marks.items():
        path = ROOT / nodeid.split("::")[0]
        for cid in supports + refutes:
            if cid not in files_of:
                files_of[cid] = _runner.naming_files({cid})
            assert path in files_of[cid], f"{nodeid} checks {cid}; its file is not collected"


def test_a_property_naming_an_unknown_claim_fails_the_run(tmp_path):
    test = tmp_path / "test_unknown.py"
    test.write_text(
        "import pytest\n\n@pytest.mark.claim('XX-99')\ndef test_x():\n    assert True\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "pytest", str(test), "-p", "properties.conftest"]
    run = subprocess.run(
        [*command, "--rootdir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "unknown claim id 'XX-99'" in run.stdout + run.stderr
