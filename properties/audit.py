"""The audit: run the properties of the selected claims, give each claim a verdict, write a report.

    python -m properties.audit                       # every claim, profile ci, into report/
    python -m properties.audit --claims 'SA-*' --profile thorough --out /tmp/sa
    python -m properties.audit --target sa=off-by-one-mean --claims SA-01

Writes OUT/claims.json (the interface dashboards read), OUT/report.md and OUT/figures/*.png, and
prints a table of every claim. Verdicts: holds, fails, conditional (parts disagree), not checked
(no property ran), error (a property broke). Exit status 1 when a checked claim's verdict differs
from the catalogue's expected verdict or a property errors (with --strict, also when a selected
claim is not checked); 2 when the run itself could not start (bad arguments, collection errors).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from properties import adapters, catalogue, evidence, profiles, report, stats

HERE = Path(__file__).resolve().parent


def record(results, report):
    """Fold one phase's report into results[nodeid] = {outcome, duration, evidence, failure}:
    outcome is passed, skipped, assertion, not-refuted or exception (conftest classifies)."""
    result = results.setdefault(
        report.nodeid, {"outcome": "passed", "duration": 0.0, "evidence": {}, "failure": None}
    )
    result["duration"] += report.duration
    extra = dict(report.user_properties)
    if "evidence" in extra:
        result["evidence"] = extra["evidence"]
    if report.skipped:
        result["outcome"] = "skipped"
        result["failure"] = {"kind": "skipped", "message": str(report.longrepr[-1])}
    elif report.failed:
        failure = extra.get("failure") or {
            "kind": "exception",
            "message": report.longreprtext[-2000:],
            "counterexample": None,
        }
        result["outcome"] = failure["kind"] if report.when == "call" else "exception"
        result["failure"] = failure
    return result


class Collector:
    """pytest plugin: keeps the selected claims' properties, shows progress, gathers results."""

    def __init__(self, selected, progress):
        self.selected, self.progress, self.task = selected, progress, None
        self.marks, self.findings, self.results, self.collection_errors = {}, {}, {}, []

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext}")

    def pytest_collection_modifyitems(self, config, items):
        keep, drop = [], []
        for item in items:
            supports, refutes = catalogue.marked(item)
            about = catalogue.findings_of(item)
            if self.selected & set(supports + refutes):
                keep.append(item)
                self.marks[item.nodeid] = (supports, refutes)
            elif any(s == c or s.startswith(c + ".") for c in about for s in self.selected):
                keep.append(item)
                self.findings[item.nodeid] = about
            else:
                drop.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep

    def pytest_collection_finish(self, session):
        self.task = self.progress.add_task("properties", total=len(session.items))

    def pytest_runtest_logstart(self, nodeid, location):
        self.progress.update(self.task, description=nodeid.split("::", 1)[-1][:60])

    def pytest_runtest_logreport(self, report):
        result = record(self.results, report)
        if report.when == "teardown":
            self.progress.advance(self.task)
            if not self.progress.console.is_terminal:  # a log, not a live bar: one line each
                done = int(self.progress.tasks[0].completed)
                total = int(self.progress.tasks[0].total)
                self.progress.console.print(
                    f"[{done}/{total}] {report.nodeid} {result['outcome']} "
                    f"({result['duration']:.1f} s)",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )


class _Marks:
    def __init__(self):
        self.marks = {}

    def pytest_collection_modifyitems(self, items):
        self.marks.update({item.nodeid: catalogue.marked(item) for item in items})


def collect_marks():
    """{nodeid: (supports, refutes)} for every property of the suite, without running them."""
    plugin = _Marks()
    args = [str(HERE), "--collect-only", "-p", "no:terminal", "--rootdir", str(HERE.parent)]
    code = pytest.main(args, plugins=[plugin])
    if code != pytest.ExitCode.OK:
        raise RuntimeError(f"collecting the properties failed (pytest exit {int(code)})")
    return plugin.marks


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m properties.audit", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--claims",
        nargs="+",
        default=["*"],
        metavar="PATTERN",
        help="claim ids or globs, e.g. 'SA-*' DDIM-06 (default: all)",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(profiles.PROFILES),
        default=os.environ.get("HYPOTHESIS_PROFILE") or "ci",
        help="Hypothesis profile (default: $HYPOTHESIS_PROFILE, else ci)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("report"), help="report folder (default: report)"
    )
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="FAMILY=ADAPTER",
        help="audit another implementation of a family (see properties/adapters)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="also fail when a selected claim is not checked"
    )
    parser.add_argument(
        "--no-variants",
        action="store_true",
        help="do not run the rejected variants (python -m properties.variants)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    articles, claims = catalogue.load()
    selected = catalogue.select(claims, args.claims)
    if not selected:
        console.print(f"[red]--claims {' '.join(args.claims)} matches no claim of the catalogue[/]")
        return 2
    try:
        targets = adapters.parse(args.target)
        for family, name in targets.items():
            adapters.resolve(family, name)
    except (ValueError, ImportError, AttributeError) as e:
        console.print(f"[red]--target: {e}[/]" if "--target" not in str(e) else f"[red]{e}[/]")
        return 2
    os.environ["HYPOTHESIS_PROFILE"] = args.profile
    out = args.out
    figures = out / "figures"
    if figures.exists():
        for old in figures.glob("*.png"):
            old.unlink()
    evidence.FIGURE_DIR = figures

    started = time.time()
    columns = [
        TextColumn("{task.description:<60}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        collector = Collector(selected, progress)
        pytest_args = [str(HERE), "-p", "no:terminal", "--rootdir", str(HERE.parent)]
        pytest_args += [f"--target={t}" for t in args.target]
        code = pytest.main(pytest_args, plugins=[collector])
    elapsed = time.time() - started
    if collector.collection_errors or code in (
        pytest.ExitCode.USAGE_ERROR,
        pytest.ExitCode.INTERNAL_ERROR,
    ):
        console.print(f"[red]the properties could not be collected (pytest exit {int(code)}):[/]")
        for error in collector.collection_errors:
            console.print(error)
        return 2

    entries = report.claim_entries(articles, claims, selected, collector.marks, collector.results)
    findings = report.finding_entries(collector.findings, collector.results)
    variants = None
    if args.no_variants or targets:
        why = "--no-variants" if args.no_variants else "--target: variants patch impl/ only"
        console.print(f"rejected variants not run ({why})")
    else:
        variants = run_variants(args.claims, out / "variants.json", console)
        if variants is None:
            return 2
        report.attach_variants(entries, variants)
    run = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m properties.audit "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "profile": args.profile,
        "targets": targets,
        "selection": args.claims,
        "duration_s": round(elapsed, 2),
        "variants": None
        if variants is None
        else {
            "duration_s": variants["duration_s"],
            "count": len(variants["variants"]),
            "unguarded": variants["unguarded"],
            "unrejected": variants["unrejected"],
        },
        "statistics": {
            "checks": stats.checks_made,
            "alpha_per_check": stats.ALPHA,
            "chance_failure_bound": stats.checks_made * stats.ALPHA,
            "budget": stats.SUITE_FALSE_ALARM,
        },
    }
    report.write(out, run, articles, entries, findings)
    report.print_table(Console(width=None if sys.stdout.isatty() else 160), articles, entries)
    bad = [e for e in entries if e["verdict"] == "error" or not e["matches"]]
    bad += [e for e in entries if e.get("guarded") is False]
    stale = [f for f in findings if f["outcome"] != "passed"]
    if args.strict:
        bad += [e for e in entries if e["verdict"] == "not checked" and e["id"] in selected]
    console.print(
        f"{len(collector.results)} properties in {elapsed:.0f} s; statistical checks "
        f"{stats.checks_made} (chance-failure bound {stats.checks_made * stats.ALPHA:.1e}); "
        f"report in {out}/"
    )
    if stats.checks_made > stats.MAX_CHECKS:
        console.print(
            f"[red]{stats.checks_made} statistical checks exceed the budget of "
            f"{stats.MAX_CHECKS} (properties/stats.py)[/]"
        )
        return 1
    if variants is not None and variants["unrejected"]:
        console.print(
            "[red]variants not rejected by the properties of a claim they name: "
            + ", ".join(f"{v} ({c})" for v, c in variants["unrejected"])
            + "[/]"
        )
    if stale:
        console.print(
            "[red]peer findings that no longer reproduce or broke: "
            + ", ".join(f["property"] for f in stale)
            + "[/]"
        )
    if bad:
        console.print(
            f"[red]{len(bad)} claim(s) differ from the catalogue, errored or are unguarded: "
            f"{', '.join(e['id'] for e in bad)}[/]"
        )
    if bad or stale or (variants is not None and variants["unrejected"]):
        return 1
    return 0


def run_variants(patterns, path, console):
    """Run `python -m properties.variants` for the selection in a fresh process (profile
    `variants`, whatever the audit's profile); its summary, or None when it could not start."""
    command = [sys.executable, "-m", "properties.variants", "--claims", *patterns]
    path = path.resolve()  # the variants run works in the checkout's root, not here
    command += ["--json", str(path)]
    console.print("rejected variants: " + " ".join(command[1:]))
    path.unlink(missing_ok=True)
    done = subprocess.run(command, cwd=HERE.parent, stdout=subprocess.DEVNULL, check=False)
    if done.returncode == 2 or not path.exists():
        console.print(f"[red]the variants run could not start (exit {done.returncode})[/]")
        return None
    return json.loads(path.read_text(encoding="utf-8"))


if __name__ == "__main__":
    sys.exit(main())
