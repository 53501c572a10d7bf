"""The families, their peers and the peer matrix (properties/adapters, properties/peers.py)."""

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from properties import adapters, bypass, catalogue, peers, report, report_html

ROOT = Path(__file__).resolve().parent.parent
ARTICLES, CLAIMS = catalogue.load()


@pytest.mark.parametrize("family", adapters.FAMILIES)
def test_every_family_states_its_interface_and_has_a_reference(family):
    module = importlib.import_module(adapters.FAMILIES[family])
    assert "Interface" in (module.__doc__ or ""), f"{family}: the docstring states no interface"
    assert adapters.resolve(family) is module.ADAPTERS["reference"]


def test_every_peer_names_its_adapter_installed_library_and_existing_claims():
    found = peers.registered()
    assert found, "no peer registered"
    peers.check(found, CLAIMS)  # raises for an unknown adapter or claim
    for family, name, peer in found:
        assert peers.version(peer.library), f"{family}={name}: {peer.library} is not installed"
        assert adapters.resolve(family, name) is not None


def test_check_names_a_peer_with_an_unknown_claim_or_adapter():
    bad = [("sa", "nowhere", adapters.Peer("numpy", ("SA-99",)))]
    with pytest.raises(ValueError, match="sa=nowhere: not in .*ADAPTERS") as e:
        peers.check(bad, CLAIMS)
    assert "'SA-99' matches no catalogue claim" in str(e.value)


def test_the_matrix_keeps_catalogue_order_verdicts_and_reasons(tmp_path):
    columns = [
        {"family": "rl", "adapter": "a", "library": "x", "version": "1", "report": "r"},
        {"family": "sa", "adapter": "b", "library": "y", "version": "2", "report": "s"},
    ]
    cells = [
        {"RL-02": {"verdict": "fails"}, "RL-01": {"verdict": "not asked", "why": "no such call"}},
        {"SA-01": {"verdict": "holds"}},
    ]
    data = peers.matrix(columns, cells, CLAIMS)
    assert [r["id"] for r in data["rows"]] == ["SA-01", "RL-01", "RL-02"]  # catalogue order
    assert data["rows"][2]["cells"] == {"rl=a": {"verdict": "fails"}}
    lines = report._peers_markdown(data)
    assert "| RL-01 | holds | not asked: no such call |  |" in lines
    assert "| SA-01 | holds |  | holds |" in lines
    page = report_html._peers(data)
    assert page.count('class="not-asked"') == 1 and 'data-verdict="fails"' in page
    assert "rl=a</a><br><small>x 1</small>" in page


def test_peers_refuses_an_unknown_peer():
    run = subprocess.run(
        [sys.executable, "-m", "properties.peers", "--peers", "sa=nowhere", "--out", "unused"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "--peers: unknown ['sa=nowhere']" in run.stderr


def test_a_peer_run_writes_the_matrix_into_the_report(tmp_path):
    """One real peer (torch's SDPA, math backend: three FA claims in a few seconds) into a report
    folder that holds an audit's claims.json: peers.json, and the matrix in report.md/html."""
    out = tmp_path / "report"
    audit = [sys.executable, "-m", "properties.audit", "-n", "1", "--no-variants"]
    done = subprocess.run([*audit, "--claims", "FA-04", "--out", str(out)], capture_output=True)
    assert done.returncode == 0, done.stderr[-2000:]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "properties.peers",
            "--peers",
            "attention=sdpa-math",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    data = json.loads((out / "peers.json").read_text())
    (column,) = data["columns"]
    assert column["library"] == "torch" and column["version"] == peers.version("torch")
    cells = {r["id"]: r["cells"]["attention=sdpa-math"]["verdict"] for r in data["rows"]}
    assert cells == {"FA-03": "holds", "FA-04": "holds", "FA-05": "holds", "FA-06": "not asked",
                     "FA-07": "not asked"}  # fmt: skip
    assert "## Peer matrix" in (out / "report.md").read_text()
    assert 'id="peers"' in (out / "report.html").read_text()
    assert (out / "peers" / "attention-sdpa-math" / "report.html").exists()


@pytest.mark.parametrize("path", sorted(ROOT.glob("properties/test_*.py")), ids=lambda p: p.name)
def test_no_property_bypasses_its_family(path):
    """A property (@claim) and the local helpers it reaches name impl/ code only through its
    family's fixture, as a tool its family declares (TOOLS), or as the reference it is compared
    with (the module's REFERENCE_CALLS): otherwise --target would not reach it (properties/bypass.py)."""
    bad = bypass.violations(path, bypass.wrapped(), bypass.tools())
    assert not bad, "impl/ named around the family:\n  " + "\n  ".join(bad)


def test_the_bypass_check_sees_a_wrapped_name_an_undeclared_one_and_an_exemption(tmp_path):
    """The check flags impl's name of a wrapped function (also through a helper and a fixture),
    an impl function no family declares, and honours REFERENCE_CALLS."""
    path = tmp_path / "test_x.py"
    path.write_text(
        "from impl.rl import monte_carlo as mc\n"
        "from impl.rl.mdp import MDP\n"
        "import impl.rl.policy\n"
        "def helper(r):\n    return mc.returns(r, 0.9)\n"
        "def model():\n    return impl.rl.policy.deterministic([0], 2)\n"
        "@claim('MC-01')\ndef test_a(model):\n    return helper([1.0]), MDP\n"
        "@claim('MC-02')\ndef test_b():\n    return mc.returns([1.0], 0.5)\n"
        "REFERENCE_CALLS = {'test_b': 'the reference'}\n"
    )
    wrapped = {"impl.rl.monte_carlo.returns": "rl.returns"}
    bad = bypass.violations(path, wrapped, {"impl.rl.mdp": "the model"})
    assert bad == [
        "test_x.py::test_a: impl.rl.monte_carlo.returns in test_x.py:helper (call rl.returns "
        "through the fixture)",
        "test_x.py::test_a: impl.rl.policy.deterministic in test_x.py:model is in no family and "
        "no family's TOOLS",
    ]


def test_conftest_fixtures_name_no_impl_code():
    """The bypass check follows a property's own fixtures but not conftest's: those hand out the
    families' adapters only, and name nothing of impl/."""
    tree = ast.parse((ROOT / "properties" / "conftest.py").read_text(encoding="utf-8"))
    named = [
        ast.unparse(n)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        and any(m.startswith("impl") for m in [getattr(n, "module", None) or ""]
                + [a.name for a in n.names])
    ]  # fmt: skip
    assert not named, named
