"""The audit: run the properties of the selected claims, give each claim a verdict, write a report.

    python -m properties.audit                       # every claim, profile ci, into report/
    python -m properties.audit --claims 'SA-*' --profile thorough --out /tmp/sa
    python -m properties.audit --target sa=off-by-one-mean --claims SA-01
    python -m properties.audit -n 1                  # in this process, no pytest-xdist workers
    python -m properties.audit --shard 2/3 --out shard-2        # one CI job's third of the claims
    python -m properties.audit merge shard-1 shard-2 shard-3 --out report   # properties/audit/merge.py

Writes OUT/claims.json (the interface dashboards read), OUT/report.md and OUT/figures/*.png, and
prints a table of every claim. Verdicts: holds, fails, conditional (parts disagree), not checked
(no property ran), error (a property broke). Exit status 1 when a checked claim's verdict differs
from the catalogue's expected verdict or a property errors (with --strict, also when a selected
claim is not checked); 2 when the run itself could not start (bad arguments, collection errors).

Workers (-n, default one per core): the properties run on pytest-xdist workers, and the rejected
variants (python -m properties.variants, one process) run beside them. Each worker collects the
properties itself, so the selection is a plugin every worker loads (properties/audit/selection.py);
the reports reach this process with their evidence and claim tags in user_properties, and the
workers' statistical checks are summed into this process's budget (properties/conftest.py). Draws
are derandomized per property, so the verdicts and evidence do not depend on the workers.

Shards (--shard K/N) split the selection by top-level claim (a claim and its parts stay together):
claim C goes to shard sha256(C) mod N + 1, which depends on C alone, so the split is stable when
the catalogue is reordered or grows. Each shard writes its own OUT; `merge` joins them.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from properties import adapters, catalogue, profiles, report, stats

ROOT = Path(__file__).resolve().parents[2]
PROPERTIES = ROOT / "properties"


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
    """pytest plugin in the audit's process: shows progress and gathers the results and claim
    tags (properties/audit/selection.py) of the properties, run here or on pytest-xdist workers."""

    def __init__(self, progress):
        self.progress, self.task = progress, progress.add_task("properties", total=None)
        self.marks, self.findings, self.results, self.collection_errors = {}, {}, {}, []
        self.order = {}

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext}")

    def pytest_collection_finish(self, session):
        self._collected([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self._collected(ids)  # every worker collects the same items, in the same order

    def _collected(self, nodeids):
        self.order = {n: i for i, n in enumerate(nodeids)}
        self.progress.update(self.task, total=len(nodeids))

    def pytest_sessionfinish(self):
        """Put the properties in collection order (workers report them as they finish)."""
        for found in (self.marks, self.findings):
            ordered = sorted(found.items(), key=lambda pair: self.order[pair[0]])
            found.clear()
            found.update(ordered)

    def pytest_runtest_logstart(self, nodeid, location):
        self.progress.update(self.task, description=nodeid.split("::", 1)[-1][:60])

    def pytest_runtest_logreport(self, report):
        result = record(self.results, report)
        tag = dict(report.user_properties).get("claims")
        if tag and (tag["supports"] or tag["refutes"]):
            self.marks[report.nodeid] = (tuple(tag["supports"]), tuple(tag["refutes"]))
        elif tag:
            self.findings[report.nodeid] = tuple(tag["findings"])
        if report.when == "teardown":
            self.progress.advance(self.task)
            if not self.progress.console.is_terminal:  # a log, not a live bar: one line each
                task = self.progress.tasks[self.task]
                self.progress.console.print(
                    f"[{int(task.completed)}/{int(task.total or 0)}] {report.nodeid} "
                    f"{result['outcome']} ({result['duration']:.1f} s)",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )

    def lost(self):
        """Properties with results but no claim tag: a crashed xdist worker's (xdist reports them
        failed, without the item's user_properties)."""
        return sorted(set(self.results) - set(self.marks) - set(self.findings))


class _Marks:
    def __init__(self):
        self.marks = {}

    def pytest_collection_modifyitems(self, items):
        self.marks.update({item.nodeid: catalogue.marked(item) for item in items})


def collect_marks():
    """{nodeid: (supports, refutes)} for every property of the suite, without running them."""
    plugin = _Marks()
    args = [str(PROPERTIES), "--collect-only", "-p", "no:terminal", "--rootdir", str(ROOT)]
    code = pytest.main(args, plugins=[plugin])
    if code != pytest.ExitCode.OK:
        raise RuntimeError(f"collecting the properties failed (pytest exit {int(code)})")
    return plugin.marks


def shard_spec(text):
    """'K/N' -> (K, N) with 1 <= K <= N (argparse type: a bad one exits 2 with the message)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (e.g. 2/3: the second of three)")
    k, n = int(match[1]), int(match[2])
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{text!r}: K must be between 1 and N")
    return k, n


def shard_of(cid, n):
    """The shard (1..n) of claim `cid`, from a hash of its top-level id (its parts go with it)."""
    return int(hashlib.sha256(cid.split(".")[0].encode()).hexdigest(), 16) % n + 1


def worker_count(text):
    """-n: 'auto' (one per core this process may use) or a count >= 1."""
    if text == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'auto' or a count >= 1")
    return int(text)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m properties.audit",
        description=__doc__.split("\n")[0]
        + " (`python -m properties.audit merge --help`: join shards' reports)",
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
    parser.add_argument(
        "-n",
        dest="workers",
        type=worker_count,
        default="auto",
        metavar="N",
        help="pytest-xdist workers, the variants run beside them (default auto: one per core; "
        "1: everything in this process, one after the other)",
    )
    parser.add_argument(
        "--shard",
        type=shard_spec,
        default=None,
        metavar="K/N",
        help="run only shard K of N of the selected claims (merge the shards' OUTs with "
        "`python -m properties.audit merge`)",
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
    if args.shard:
        k, n = args.shard
        selected = {c for c in selected if shard_of(c, n) == k}
    try:
        targets = adapters.parse(args.target)
        for family, name in targets.items():
            adapters.resolve(family, name)
    except (ValueError, ImportError, AttributeError) as e:
        console.print(f"[red]--target: {e}[/]" if "--target" not in str(e) else f"[red]{e}[/]")
        return 2
    os.environ["HYPOTHESIS_PROFILE"] = args.profile  # for this process and the workers
    out = args.out
    figures = out / "figures"
    if figures.exists():
        for old in figures.glob("*.png"):
            old.unlink()

    started = time.time()
    columns = [
        TextColumn("{task.description:<60}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        variants = None
        if args.no_variants or targets:
            why = "--no-variants" if args.no_variants else "--target: variants patch impl/ only"
            console.print(f"rejected variants not run ({why})")
        elif selected:
            patterns = sorted(selected) if args.shard else args.claims
            variants = Variants(patterns, out / "variants.json", progress)
            if args.workers > 1:  # beside the properties; else after them
                variants.start()
        collector = Collector(progress)
        pytest_args = [str(PROPERTIES), "-p", "no:terminal", "--rootdir", str(ROOT)]
        pytest_args += ["-p", "properties.audit.selection", "--audit-claims", ",".join(selected)]
        pytest_args += ["--audit-figures", str(figures.resolve())]
        pytest_args += ["-n", str(args.workers if args.workers > 1 else 0)]
        pytest_args += [f"--target={t}" for t in args.target]
        if selected:
            code = pytest.main(pytest_args, plugins=[collector])
        else:
            console.print(f"shard {args.shard[0]}/{args.shard[1]} holds no selected claim")
            code = pytest.ExitCode.NO_TESTS_COLLECTED
        elapsed = time.time() - started
        broken = collector.collection_errors or code in (
            pytest.ExitCode.USAGE_ERROR,
            pytest.ExitCode.INTERNAL_ERROR,
        )
        if variants is not None:
            variants = variants.cancel() if broken else variants.finish(console)
            if variants is None and not broken:
                return 2
    if broken:
        console.print(f"[red]the properties could not be collected (pytest exit {int(code)}):[/]")
        for error in collector.collection_errors:
            console.print(error)
        if args.workers > 1 and not collector.collection_errors:
            console.print("(xdist hides a worker's usage error: collecting here to show it)")
            pytest.main(
                [str(PROPERTIES), "--collect-only", "-p", "no:terminal", "--rootdir", str(ROOT)]
            )
        return 2

    entries = report.claim_entries(articles, claims, selected, collector.marks, collector.results)
    findings = report.finding_entries(collector.findings, collector.results)
    if variants is not None:
        report.attach_variants(entries, variants)
    run = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": "python -m properties.audit "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "profile": args.profile,
        "targets": targets,
        "selection": args.claims,
        "shard": f"{args.shard[0]}/{args.shard[1]}" if args.shard else None,
        "selected": sorted(selected),
        "workers": args.workers,
        "duration_s": round(elapsed, 2),
        "variants": None
        if variants is None
        else {
            "duration_s": variants["duration_s"],
            "count": len(variants["variants"]),
            "unguarded": variants["unguarded"],
            "unrejected": variants["unrejected"],
        },
        "statistics": statistics(stats.checks_made),
    }
    report.write(out, run, articles, entries, findings)
    missing = [e["id"] for e in entries if e["id"] in selected and e["verdict"] == "not checked"]
    return conclude(
        console,
        articles,
        run,
        entries,
        findings,
        out=out,
        lost=collector.lost(),
        missing=missing if args.strict else (),
    )


def statistics(checks):
    """run.statistics of `checks` statistical checks (properties/stats.py's budget)."""
    return {
        "checks": checks,
        "alpha_per_check": stats.ALPHA,
        "chance_failure_bound": checks * stats.ALPHA,
        "budget": stats.SUITE_FALSE_ALARM,
    }


def conclude(console, articles, run, entries, findings, *, out, lost=(), missing=()):
    """Print the table and what went wrong; the exit status (0 or 1) of a finished audit."""
    report.print_table(Console(width=None if sys.stdout.isatty() else 160), articles, entries)
    properties = {n for e in entries for n in e["properties"]} | {f["property"] for f in findings}
    s = run["statistics"]
    console.print(
        f"{len(properties)} properties in {run['duration_s']:.0f} s; statistical checks "
        f"{s['checks']} (chance-failure bound {s['chance_failure_bound']:.1e}); report in {out}/"
    )
    errors = [] if run["targets"] else report.article_errors(entries)
    if errors:
        console.print(
            f"what the articles get wrong ({len(errors)}, report.md and report.html): "
            + ", ".join(x["id"] for x in errors)
        )
    if s["checks"] > stats.MAX_CHECKS:
        console.print(
            f"[red]{s['checks']} statistical checks exceed the budget of "
            f"{stats.MAX_CHECKS} (properties/stats.py)[/]"
        )
        return 1
    bad = [e for e in entries if e["verdict"] == "error" or not e["matches"]]
    bad += [e for e in entries if e.get("guarded") is False]
    bad += [e for e in entries if e["id"] in missing]
    stale = [f for f in findings if f["outcome"] != "passed"]
    unrejected = (run["variants"] or {}).get("unrejected", [])
    if unrejected:
        console.print(
            "[red]variants not rejected by the properties of a claim they name: "
            + ", ".join(f"{v} ({c})" for v, c in unrejected)
            + "[/]"
        )
    if stale:
        console.print(
            "[red]peer findings that no longer reproduce or broke: "
            + ", ".join(f["property"] for f in stale)
            + "[/]"
        )
    if lost:
        console.print("[red]properties lost with a crashed pytest-xdist worker: " + ", ".join(lost))
    if bad:
        console.print(
            f"[red]{len(bad)} claim(s) differ from the catalogue, errored or are unguarded: "
            f"{', '.join(e['id'] for e in bad)}[/]"
        )
    return 1 if bad or stale or unrejected or lost else 0


class Variants:
    """`python -m properties.variants` for the selection in a fresh process (profile `variants`,
    whatever the audit's profile), with a progress bar of its own (or its lines, in a log)."""

    LINE = re.compile(r"\[(\d+)/(\d+)\] (\S+)")

    def __init__(self, patterns, path, progress):
        self.path = path.resolve()  # the variants run works in the checkout's root
        self.command = [sys.executable, "-m", "properties.variants", "--claims", *patterns]
        self.command += ["--json", str(self.path)]
        self.progress, self.process, self.reader = progress, None, None

    def start(self):
        self.progress.console.print("rejected variants: " + " ".join(self.command[1:]))
        self.path.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._follow, daemon=True)
        self.reader.start()

    def _follow(self):
        task = self.progress.add_task("rejected variants", total=None)
        for line in self.process.stderr:
            match = self.LINE.match(line)
            if match and self.progress.console.is_terminal:
                done, total, name = match.groups()
                self.progress.update(
                    task,
                    completed=int(done),
                    total=int(total),
                    description="variants: " + name[:50],
                )
            else:
                self.progress.console.print(
                    "variants " + line.rstrip(), markup=False, highlight=False, soft_wrap=True
                )

    def cancel(self):
        """Stop the run (the properties could not be collected)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait()
            self.reader.join()

    def finish(self, console):
        """Its summary (variants.json), or None when it could not start."""
        if self.process is None:
            self.start()
        code = self.process.wait()
        self.reader.join()
        if code == 2 or not self.path.exists():
            console.print(f"[red]the variants run could not start (exit {code})[/]")
            return None
        return json.loads(self.path.read_text(encoding="utf-8"))
