"""The families, their peers and the peer matrix (properties/adapters, properties/peers.py)."""

import ast
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from properties import adapters, catalogue, peers, report, report_html

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


def _interface(family):
    """{(impl module, function name): interface name} of a family's Reference adapter."""
    reference = importlib.import_module(adapters.FAMILIES[family]).ADAPTERS["reference"]
    found = {}
    for name in dir(reference):
        attr = inspect.getattr_static(reference, name)
        fn = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
        module = getattr(fn, "__module__", None) or ""
        if not name.startswith("_") and callable(fn) and module.startswith("impl."):
            found[(module, fn.__name__)] = f"{family}.{name}"
    return found


def _direct_calls(tree, interface):
    """(property, call) for each call of an interface function by its impl name inside a function
    decorated with @claim(...) (pytest.mark.claim): what it should call through the fixture."""
    modules, names = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("impl"):
            for a in node.names:
                modules[a.asname or a.name] = f"{node.module}.{a.name}"
                names[a.asname or a.name] = (node.module, a.name)
    bad = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef) or not any(
            "claim" in ast.unparse(d) for d in fn.decorator_list
        ):
            continue
        for call in ast.walk(fn):
            if not isinstance(call, ast.Call):
                continue
            f = call.func
            key = None
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                key = (modules.get(f.value.id), f.attr)
            elif isinstance(f, ast.Name):
                key = names.get(f.id)
            if key in interface:
                bad.append((fn.name, f"{ast.unparse(f)} (use {interface[key]})"))
    return bad


# Properties whose direct impl/ call computes the REFERENCE the code under test is compared with
# (not the code under test): (file, property) -> why.
REFERENCE_CALLS = {
    ("test_sd_latent.py", "test_generate_takes_the_written_out_guided_ddim_steps"): (
        "the written-out guided DDIM loop is the reference the latent pipeline is checked against"
    ),
    ("test_sd_fulltext_pipeline.py", "test_negative_prompt_takes_the_unconditional_branch"): (
        "the written-out loop with eps(x, n) + s (eps(x, y) - eps(x, n)) is the reference"
    ),
    ("test_diffusion_ddim_fulltext.py", "test_grid_rows_are_not_slerps_of_their_own_endpoints"): (
        "the per-row SLERP is the reference the article's batch slerp is compared with"
    ),
}


def test_no_property_bypasses_its_family():
    """A property (a function marked @claim) calls the algorithms a family wraps through the
    family's fixture, never by their impl/ names: otherwise --target would not reach it. Checked
    on the property's own body (helpers it calls are not followed)."""
    interface = {}
    for family in adapters.FAMILIES:
        interface.update(_interface(family))
    bad = []
    for path in sorted(ROOT.glob("properties/test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad += [
            f"{path.name}::{fn}: {call}"
            for fn, call in _direct_calls(tree, interface)
            if (path.name, fn) not in REFERENCE_CALLS
        ]
    assert not bad, "properties that call impl/ around their family:\n  " + "\n  ".join(bad)
