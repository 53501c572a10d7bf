"""Run the rejected variants: one pytest session over the property files that name the selected
claims, each tagged property once per variant of its claims, the patch applied around the
property by an autouse fixture.

    python -m properties.variants                        # every variant of every leaf claim
    python -m properties.variants --claims 'SDE-*'       # the variants of a selection
    python -m properties.variants --variants pf-ode-without-half --json out.json

One torch thread. Profile `variants` (properties/profiles.py): the ci profile's examples, derandomized, without
shrinking (a rejection needs one failing example, not the smallest). A (variant, claim) pair whose
claim is expected to hold is decided by its first refuting result; its remaining properties are
skipped. Exit status 0 when every variant is rejected by every claim it names and every selected
leaf claim is guarded, 1 otherwise, 2 when the run could not start.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pytest
import torch

from properties import catalogue, variants
from properties.audit import record

HERE = Path(__file__).resolve().parents[1]
PARAM = "variant_under_test"


def decisive(expected, role, outcome):
    """Does this one result already make the claim's verdict differ from `expected`?"""
    if expected != "holds":
        return False
    return (role == "supports" and outcome == "assertion") or (
        role == "refutes" and outcome == "passed"
    )


def verdict_under(results):
    """A claim's verdict under a variant: leaf_verdict with crashes left out."""
    return catalogue.leaf_verdict([(r, o) for r, o in results if o != "exception"])


class Runner:
    """pytest plugin: parametrises the selected properties over their claims' variants."""

    def __init__(self, claims, selected, chosen, out=sys.stderr, disabled=()):
        self.claims, self.selected, self.chosen, self.out = claims, selected, chosen, out
        self.disabled = set(disabled)
        self.marks, self.results, self.collection_errors = {}, {}, []
        self.variant_of, self.decided, self.total, self.done = {}, set(), 0, 0

    def _relevant(self, supports, refutes, v):
        return [c for c in supports + refutes if c in v.claims and c in self.selected]

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext}")

    def pytest_generate_tests(self, metafunc):
        if PARAM not in metafunc.fixturenames:
            return
        supports, refutes = catalogue.marked(metafunc.definition)
        names = [v.name for v in self.chosen if self._relevant(supports, refutes, v)]
        metafunc.parametrize(
            PARAM, names or [None], ids=[f"variant={n}" for n in names] or ["-"], indirect=True
        )

    @pytest.fixture(autouse=True)
    def variant_under_test(self, request):
        name = getattr(request, "param", None)
        if name is None:
            yield None
            return
        v = variants.REGISTRY[name]
        supports, refutes = catalogue.marked(request.node)
        if all((name, c) in self.decided for c in self._relevant(supports, refutes, v)):
            pytest.skip(f"variant {name} already rejected by this claim's other properties")
        mp = pytest.MonkeyPatch()
        try:
            if name not in self.disabled:
                v.apply(mp)
            variants.set_active(name)
            yield v
        finally:
            variants.set_active(None)
            mp.undo()

    def pytest_collection_modifyitems(self, config, items):
        keep = []
        for item in items:
            spec = getattr(item, "callspec", None)
            name = spec.params.get(PARAM) if spec else None
            if name is not None:
                keep.append(item)
                self.variant_of[item.nodeid] = name
                self.marks[item.nodeid] = catalogue.marked(item)
        order = {v.name: i for i, v in enumerate(self.chosen)}
        keep.sort(key=lambda item: order[self.variant_of[item.nodeid]])  # stable: file order
        config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in self.variant_of])
        items[:] = keep
        self.total = len(keep)

    def pytest_runtest_logreport(self, report):
        result = record(self.results, report)
        name = self.variant_of.get(report.nodeid)
        if name is None or report.when != "teardown":
            return
        self.done += 1
        supports, refutes = self.marks[report.nodeid]
        for c in self._relevant(supports, refutes, variants.REGISTRY[name]):
            role = "supports" if c in supports else "refutes"
            if decisive(self.claims[c].expected, role, result["outcome"]):
                self.decided.add((name, c))
        print(
            f"[{self.done}/{self.total}] {report.nodeid.split('::', 1)[-1]} "
            f"{result['outcome']} ({result['duration']:.1f} s)",
            file=self.out,
            flush=True,
        )

    def summary(self):
        """{"variants": [...], "claims": {leaf id: {...}}, "unguarded": [...], "unrejected": [...]}"""
        rows = []
        by_claim = {c: [] for c in catalogue.leaves(self.claims) if c in self.selected}
        for v in self.chosen:
            per_claim = {}
            for c in v.claims:
                if c not in self.selected:
                    continue
                nodeids = [
                    n
                    for n, name in self.variant_of.items()
                    if name == v.name and c in sum(self.marks[n], ())
                ]
                results = [
                    ("supports" if c in self.marks[n][0] else "refutes", self.results[n]["outcome"])
                    for n in nodeids
                    if n in self.results
                ]
                verdict = verdict_under(results)
                expected = self.claims[c].expected
                rejected = verdict not in (expected, "not checked", "error")
                failures = [
                    self.results[n]["failure"]["message"].splitlines()[0][:300]
                    for n in nodeids
                    if n in self.results and self.results[n]["outcome"] not in ("passed", "skipped")
                ]
                per_claim[c] = {
                    "verdict": verdict,
                    "expected": expected,
                    "rejected": rejected,
                    "properties": {
                        n: self.results[n]["outcome"] for n in nodeids if n in self.results
                    },
                    "evidence": failures[0] if failures else None,
                }
                by_claim.setdefault(c, []).append({"name": v.name, "why": v.why, **per_claim[c]})
            rows.append(
                {"name": v.name, "claims": list(v.claims), "why": v.why, "results": per_claim}
            )
        unguarded = [c for c, vs in by_claim.items() if not any(x["rejected"] for x in vs)]
        unrejected = [
            (r["name"], c) for r in rows for c, res in r["results"].items() if not res["rejected"]
        ]
        return {
            "variants": rows,
            "claims": by_claim,
            "unguarded": unguarded,
            "unrejected": unrejected,
        }


def naming_files(selected):
    """The property files whose text names one of the `selected` claim ids as a quoted string
    (every claim marker does: @claim("SA-01", refutes="SA-03.cubic")). Only these are collected:
    importing the others (diffusers, transformers, triton) would cost seconds and run nothing."""
    files = []
    for path in sorted(HERE.glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        if any(f'"{c}"' in text or f"'{c}'" in text for c in selected):
            files.append(path)
    return files


def run(claim_patterns=("*",), names=None, out=sys.stderr, disabled=()):
    """Run the variants of the selected leaf claims (and, if given, only those named) in this
    process; a disabled variant runs without its patch (to show that the gate then fails).
    Returns (summary dict, pytest exit code, collection errors)."""
    _, claims = catalogue.load()
    selected = catalogue.select(claims, claim_patterns)
    registry = variants.load()
    unknown = sorted((set(names or ()) | set(disabled)) - set(registry))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {sorted(registry)}")
    bad = sorted({c for v in registry.values() for c in v.claims} - set(catalogue.leaves(claims)))
    if bad:
        raise ValueError(f"variants name claims that are not leaf claims of the catalogue: {bad}")
    chosen = [
        v
        for v in registry.values()
        if (names is None or v.name in names) and set(v.claims) & selected
    ]
    runner = Runner(claims, selected, chosen, out=out, disabled=disabled)
    files = [str(f) for f in naming_files(selected)]
    if not files:  # no property names a selected claim: each is unguarded, nothing to run
        return runner.summary(), pytest.ExitCode.NO_TESTS_COLLECTED, []
    args = [*files, "-p", "no:terminal", "-p", "no:cacheprovider", "--rootdir", str(HERE.parent)]
    code = pytest.main(args, plugins=[runner])
    return runner.summary(), code, runner.collection_errors


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m properties.variants", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--claims", nargs="+", default=["*"], metavar="PATTERN")
    parser.add_argument("--variants", nargs="+", default=None, metavar="NAME")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    parser.add_argument(
        "--disable",
        nargs="+",
        default=(),
        metavar="NAME",
        help="run these variants without their patch (shows that the gate then fails)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ["HYPOTHESIS_PROFILE"] = "variants"
    # The properties' tensors are small: torch's intra-op threads only add waiting, and under
    # pytest-xdist this run shares the cores with the suite (measured: the whole run took 117 s
    # on one thread beside the suite, 256 s on two threads nearly alone).
    torch.set_num_threads(1)
    started = time.time()
    try:
        summary, code, errors = run(args.claims, args.variants, disabled=args.disable)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    if errors or code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        print(f"the properties could not be collected (pytest exit {int(code)}):", file=sys.stderr)
        print("\n".join(errors), file=sys.stderr)
        return 2
    summary["duration_s"] = round(time.time() - started, 1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    for row in summary["variants"]:
        for c, res in row["results"].items():
            mark = "rejected" if res["rejected"] else "NOT REJECTED"
            print(f"{c:28} {row['name']:40} {mark} (verdict {res['verdict']})")
    print(
        f"{len(summary['variants'])} variants in {summary['duration_s']:.0f} s; "
        f"unguarded leaf claims: {len(summary['unguarded'])} {summary['unguarded'] or ''}; "
        f"variants not rejected: {len(summary['unrejected'])} {summary['unrejected'] or ''}"
    )
    return 1 if summary["unguarded"] or summary["unrejected"] else 0
