"""Join the reports of audit shards (or of any audits with disjoint selections) into one report.

    python -m properties.audit --shard 1/2 --out shard-1      # e.g. two CI jobs
    python -m properties.audit --shard 2/2 --out shard-2
    python -m properties.audit merge shard-1 shard-2 --out report

Each DIR holds a claims.json (and figures/) written by `python -m properties.audit`, or a
mutation.json written by `python -m properties.mutation report` (a mutation shard), or both.
Every claim's entry comes from the one audit that selected it (the claim, with its parts, belongs
to exactly one; overlapping selections, a missing shard, or audits of different profiles or
targets exit 2). The statistical checks are summed and held to the budget of properties/stats.py
(the union bound adds over the shards as it adds over properties); findings are joined (a finding
on claims of two shards ran in both: it is kept once); the rejected variants' counts are summed.
OUT gets claims.json, report.md, report.html, figures/ and mutation.json, and the exit status is
the audit's (0, 1, or 2 when the inputs cannot be merged).
"""

import argparse
import json
import shutil
import time
from pathlib import Path

from rich.console import Console

from properties import catalogue, mutation, report
from properties.audit import conclude, statistics


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m properties.audit merge", description=__doc__.split("\n")[0]
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="the shards' OUTs")
    parser.add_argument(
        "--out", type=Path, default=Path("report"), help="report folder (default: report)"
    )
    return parser.parse_args(argv)


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _roots(run):
    """The top-level claims an audit selected (a shard holds each with all its parts)."""
    return sorted({c.split(".")[0] for c in run["run"]["selected"]})


def problems(runs):
    """Why these audits' claims.json cannot be merged (empty when they can)."""
    found = []
    for key in ("profile", "targets"):
        values = {json.dumps(r["run"][key], sort_keys=True) for r in runs}
        if len(values) > 1:
            found.append(f"the audits differ in {key}: {', '.join(sorted(values))}")
    if len({tuple(e["id"] for e in r["claims"]) for r in runs}) > 1:
        found.append("the audits' catalogues differ (audits of different commits?)")
    owner = {}
    for i, r in enumerate(runs):
        for root in _roots(r):
            if root in owner:
                found.append(f"{root} was selected by two audits ({owner[root]} and {i + 1})")
            owner[root] = i + 1
    shards = [r["run"].get("shard") for r in runs]
    if all(shards):
        counts = {s.split("/")[1] for s in shards}
        n = int(counts.pop())
        if counts:
            found.append(f"the shards split into different counts: {', '.join(sorted(shards))}")
        missing = sorted(set(range(1, n + 1)) - {int(s.split("/")[0]) for s in shards})
        found += [f"shard {k}/{n} is missing" for k in missing]
    return found


def merge_runs(runs, command):
    """(run, entries, findings) of the merged report; entries in catalogue order."""
    owner = {root: r for r in runs for root in _roots(r)}
    by_id = {id(r): {e["id"]: e for e in r["claims"]} for r in runs}
    entries = [by_id[id(owner.get(cid.split(".")[0], runs[0]))][cid] for cid in by_id[id(runs[0])]]
    findings = list({f["property"]: f for r in runs for f in r["findings"]}.values())
    ran = [r["run"]["variants"] for r in runs if r["run"]["variants"] is not None]
    first = runs[0]["run"]
    run = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
        "profile": first["profile"],
        "targets": first["targets"],
        "selection": list(dict.fromkeys(p for r in runs for p in r["run"]["selection"])),
        "shard": None,
        "selected": sorted(c for r in runs for c in r["run"]["selected"]),
        "shards": [{k: r["run"][k] for k in ("command", "shard", "duration_s")} for r in runs],
        "duration_s": round(sum(r["run"]["duration_s"] for r in runs), 2),
        "variants": None
        if not ran
        else {
            "duration_s": round(sum(v["duration_s"] for v in ran), 1),
            "count": sum(v["count"] for v in ran),
            "unguarded": [c for v in ran for c in v["unguarded"]],
            "unrejected": [x for v in ran for x in v["unrejected"]],
        },
        "statistics": statistics(sum(r["run"]["statistics"]["checks"] for r in runs)),
    }
    return run, entries, findings


def main(argv):
    args = parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    runs, mutations = [], []
    for d in args.dirs:
        found = [d / name for name in ("claims.json", "mutation.json") if (d / name).exists()]
        if not found:
            console.print(f"[red]{d}: neither claims.json nor mutation.json[/]")
            return 2
        runs += [_load(p) | {"dir": d} for p in found if p.name == "claims.json"]
        mutations += [_load(p) for p in found if p.name == "mutation.json"]
    wrong = problems(runs)
    if wrong:
        console.print("[red]cannot merge: " + "; ".join(wrong) + "[/]")
        return 2
    out = args.out
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for r in runs:
        for figure in (r["dir"] / "figures").glob("*.png"):
            if figure.resolve() != (out / "figures" / figure.name).resolve():
                shutil.copyfile(figure, out / "figures" / figure.name)
    if mutations:
        merged = mutation.merge(mutations)
        (out / "mutation.json").write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
    if not runs:
        mutation.print_summary(merged)
        return 0
    run, entries, findings = merge_runs(runs, "python -m properties.audit merge " + " ".join(argv))
    articles, _ = catalogue.load()
    report.write(out, run, articles, entries, findings)
    return conclude(console, articles, run, entries, findings, out=out)
