"""Suite-wide pytest wiring: Hypothesis profiles, the `claim` marker and its validation, evidence
collection, failure classification for the audit, the statistical budget, and --target."""

import os

import pytest
import torch

from properties import adapters, catalogue, evidence, profiles, stats, threads

profiles.register()
# Triton fixes its mode when first imported, which torch may do on the way (torch.nn.attention.bias
# imports it): without a GPU the kernel must run in Triton's interpreter.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# pytest-xdist runs one worker per core: torch's own intra-op threads on top would only contend
# (its OpenMP threads spin while they wait for a core).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
TARGETS = pytest.StashKey[dict]()


def pytest_addoption(parser):
    parser.addoption(
        "--target",
        action="append",
        default=[],
        metavar="FAMILY=ADAPTER",
        help="run a family's properties against another implementation (properties/adapters)",
    )
    parser.addoption(
        "--require-browser",
        action="store_true",
        help="fail, not skip, the page checks when Chromium or the published dashboard is missing",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "claim(*ids, refutes=()): catalogue claims this property checks or refutes"
    )
    config.addinivalue_line(
        "markers", "finding(*ids): a peer finding on these claims' subject (not their evidence)"
    )
    config.addinivalue_line(
        "markers", "first: run before the others (a long test that pytest-xdist should start early)"
    )
    try:
        config.stash[TARGETS] = adapters.parse(config.getoption("--target"))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("first") is None)  # stable
    _, claims = catalogue.load()
    marks = {item.nodeid: catalogue.marked(item) for item in items}
    findings = {item.nodeid: catalogue.findings_of(item) for item in items}
    try:
        catalogue.check_marks(claims, marks, findings)
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with evidence.collecting() as ev:
        try:
            return (yield)
        finally:
            item.user_properties.append(("evidence", ev.as_dict()))


def _failure_kind(exc):
    if isinstance(exc, evidence.ClaimNotRefuted):
        return "not-refuted"
    if isinstance(exc, AssertionError):
        return "assertion"
    if isinstance(exc, BaseExceptionGroup):
        kinds = {_failure_kind(e) for e in exc.exceptions}
        return kinds.pop() if len(kinds) == 1 else "exception"
    return "exception"


def _falsifying_notes(exc):
    """Hypothesis's "Falsifying example" / "Failing" notes of a failure; for an ExceptionGroup
    (Hypothesis found several distinct failures) every sub-exception's, each after the first line
    of its message."""
    notes = [n for n in getattr(exc, "__notes__", []) if n.startswith(("Falsifying", "Failing"))]
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            inner = _falsifying_notes(sub)
            if inner:
                first = (str(sub).splitlines() or [""])[0][:200]
                notes += [f"{type(sub).__name__}: {first}", *inner]
    return notes


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.excinfo is not None:
        exc = call.excinfo.value
        notes = _falsifying_notes(exc)
        report.user_properties.append(
            (
                "failure",
                {
                    "when": call.when,
                    "kind": _failure_kind(exc) if call.when == "call" else "exception",
                    "message": f"{type(exc).__name__}: {exc}"[:2000],
                    "counterexample": "\n".join(notes) or None,
                },
            )
        )
    return report


def pytest_sessionstart(session):
    stats.reset()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist: a worker's statistical checks count in the controller's budget."""
    stats.checks_made += node.workeroutput.get("statistical_checks", 0)


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workeroutput"):  # an xdist worker reports to the controller
        session.config.workeroutput["statistical_checks"] = stats.checks_made
        return
    if stats.checks_made > stats.MAX_CHECKS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(
            f"\nstatistical budget exceeded: {stats.checks_made} checks > {stats.MAX_CHECKS}; "
            f"the run's false-alarm bound {stats.checks_made * stats.ALPHA:.1e} is over "
            f"{stats.SUITE_FALSE_ALARM:g}. Lower the examples of statistical properties."
        )


def pytest_terminal_summary(terminalreporter):
    if stats.checks_made:
        terminalreporter.write_line(
            f"statistical checks: {stats.checks_made} at alpha = {stats.ALPHA:g} each; "
            f"chance-failure bound for this run {stats.checks_made * stats.ALPHA:.1e} "
            f"(budget {stats.SUITE_FALSE_ALARM:g}); Hypothesis profile {profiles.active()}"
        )


def _adapter(config, family):
    return adapters.resolve(family, config.stash[TARGETS].get(family, "reference"))


@pytest.fixture(scope="session")
def sa(pytestconfig):
    """The stochastic-approximation implementation under test (family `sa`)."""
    return _adapter(pytestconfig, "sa")


@pytest.fixture(scope="session")
def rl(pytestconfig):
    """The tabular-RL implementation under test (family `rl`)."""
    return _adapter(pytestconfig, "rl")


@pytest.fixture(scope="session")
def diffusion(pytestconfig):
    """The diffusion samplers under test (family `diffusion`)."""
    return _adapter(pytestconfig, "diffusion")


@pytest.fixture(scope="session")
def attention(pytestconfig):
    """The attention implementation under test (family `attention`)."""
    return _adapter(pytestconfig, "attention")


@pytest.fixture
def one_torch_thread():
    """Run the test on one torch thread (properties/threads.py)."""
    with threads.one_torch_thread():
        yield


@pytest.fixture(scope="session")
def sde(pytestconfig):
    """The SDE / ODE samplers and solvers under test (family `sde`)."""
    return _adapter(pytestconfig, "sde")


@pytest.fixture(scope="session")
def flows(pytestconfig):
    """The normalizing-flow and flow-matching implementation under test (family `flows`)."""
    return _adapter(pytestconfig, "flows")


@pytest.fixture(scope="session")
def training(pytestconfig):
    """Packers, collator, unpad/pad and checkpoint plans under test (family `training`)."""
    return _adapter(pytestconfig, "training")


@pytest.fixture(scope="session")
def latent(pytestconfig):
    """The latent-diffusion pipeline under test (family `latent`)."""
    return _adapter(pytestconfig, "latent")
