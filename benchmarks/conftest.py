"""pytest-benchmark over the cases of benchmarks/speed.py (python -m benchmarks.speed). No pytest
import at module level: asv imports every module of this folder."""

from benchmarks.speed import CASES


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", CASES, ids=[case.id for case in CASES])
