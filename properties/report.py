"""The audit's outputs: claims.json (a stable interface), report.md, report.html (one
self-contained page, properties/report_html.py) and the terminal table.

claims.json = {"run": {...}, "summary": {verdict: count}, "claims": [entry, ...]} where each entry
has the fields dashboards read: id, article, statement, verdict, expected, properties, evidence
(plus matches, time_s, and parts/parent for claims split into parts).
"""

import json
import math
import os
from pathlib import Path

import numpy as np
from rich.table import Table

from properties import catalogue, report_html
from properties.report_html import FULL_TEXT, TARGETS_NOTE, _id_range, _value

DASHBOARD = Path(__file__).resolve().parent.parent / ".asv" / "html"

COLOURS = {
    "holds": "green",
    "fails": "red",
    "conditional": "yellow",
    "not checked": "dim",
    "error": "magenta",
}


def _first_line(text):
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def _property_evidence(nodeid, result):
    ev, failure = result["evidence"] or {}, result["failure"]
    entry = {"outcome": result["outcome"], "time_s": round(result["duration"], 3)}
    entry.update({k: v for k, v in ev.items() if v})
    if failure:
        entry["failure"] = failure["message"]
        if failure.get("counterexample"):
            entry["counterexample"] = failure["counterexample"]
    return entry


def _leaf_entry(claim, marks, results, selected):
    nodeids = [n for n, (sup, ref) in marks.items() if claim.id in sup + ref and n in results]
    outcomes = [
        ("supports" if claim.id in marks[n][0] else "refutes", results[n]["outcome"])
        for n in nodeids
    ]
    verdict = catalogue.leaf_verdict(outcomes) if claim.id in selected else "not checked"
    by_property = {n: _property_evidence(n, results[n]) for n in nodeids}
    summaries, counterexamples, figures, discrepancies = [], [], [], []
    for n, ev in by_property.items():
        role = "supports" if claim.id in marks[n][0] else "refutes"
        if ev["outcome"] in ("assertion", "exception") and role == "supports":
            summaries.append(_first_line(ev.get("failure")))
        elif ev.get("summary"):
            summaries.append(ev["summary"])
        counterexamples += [ev[k] for k in ("counterexample",) if ev.get(k)]
        figures += [f"figures/{f}" for f in ev.get("figures", [])]
        discrepancies += [d for d in ev.get("discrepancies", []) if d not in discrepancies]
    return {
        "verdict": verdict,
        "properties": nodeids,
        "evidence": {
            "summary": "; ".join(dict.fromkeys(s for s in summaries if s)),
            "counterexample": "\n\n".join(counterexamples) or None,
            "figures": figures,
            "discrepancies": discrepancies,
            "by_property": by_property,
        },
        "time_s": round(sum(results[n]["duration"] for n in nodeids), 3),
    }


def claim_entries(articles, claims, selected, marks, results):
    """One entry per catalogue claim, parts after their parent, in catalogue order."""
    entries = {}
    for cid in catalogue.leaves(claims):
        entries[cid] = _leaf_entry(claims[cid], marks, results, selected)
    for cid in claims:
        parts = catalogue.stated_parts(claims, cid)
        beside = [p for p in catalogue.parts(claims, cid) if p not in parts]
        if parts:
            verdict = catalogue.aggregate([entries[p]["verdict"] for p in parts])
            entries[cid] = {
                "verdict": verdict,
                "properties": sorted({n for p in parts for n in entries[p]["properties"]}),
                "evidence": {
                    "summary": ""
                    if verdict == "not checked"
                    else "; ".join(f"{p.split('.', 1)[1]}: {entries[p]['verdict']}" for p in parts),
                    "counterexample": None,
                    "figures": [f for p in parts for f in entries[p]["evidence"]["figures"]],
                    "discrepancies": [],
                    "by_property": {},
                },
                "time_s": round(sum(entries[p]["time_s"] for p in parts), 3),
                "parts": parts,
                **({"beside": beside} if beside else {}),
            }
    out = []
    for cid, claim in claims.items():
        e = entries[cid]
        checked = e["verdict"] != "not checked"
        out.append(
            {
                "id": cid,
                "article": claim.article,
                "article_title": articles[claim.article],
                "statement": claim.statement,
                "source": claim.source,
                "verdict": e["verdict"],
                "expected": claim.expected,
                "matches": (not checked) or e["verdict"] == claim.expected,
                "properties": e["properties"],
                "evidence": e["evidence"],
                "time_s": e["time_s"],
                **({"parts": e["parts"]} if "parts" in e else {}),
                **({"beside": e["beside"]} if "beside" in e else {}),
                **({"parent": claim.parent} if claim.parent else {}),
                **({} if claim.stated else {"stated": False}),
                **({"revised": claim.revised} if claim.revised else {}),
            }
        )
    return out


def article_errors(entries):
    """The articles' errors that the audit confirms: every stated leaf claim (a claim without
    parts, or a part the article states) whose verdict is `fails`, with the article's words (the
    top-level statement, and the part's case), the values the properties set beside the article's
    (evidence `discrepancies`) and the minimal counterexample."""
    by_id = {e["id"]: e for e in entries}
    out = []
    for e in entries:
        if e["verdict"] != "fails" or "parts" in e or e.get("stated") is False:
            continue
        top = by_id[e["parent"]] if "parent" in e else e
        out.append(
            {
                "id": e["id"],
                "article": e["article"],
                "article_title": e["article_title"],
                "source": e["source"],
                "words": top["statement"],
                "case": e["statement"] if "parent" in e else None,
                "expected": e["expected"],
                "discrepancies": e["evidence"].get("discrepancies", []),
                "counterexample": e["evidence"]["counterexample"],
                "summary": e["evidence"]["summary"],
            }
        )
    return out


def finding_entries(findings, results):
    """One entry per peer finding: the claims it is about, its property, outcome and text.
    A finding is reported on its own, never as evidence for or against an article's claim."""
    out = []
    for nodeid, about in findings.items():
        if nodeid not in results:
            continue
        ev = _property_evidence(nodeid, results[nodeid])
        text = (ev.get("numbers") or {}).get("finding") or ev.get("summary") or ""
        out.append(
            {
                "about": list(about),
                "property": nodeid,
                "outcome": ev["outcome"],
                "text": str(text).removeprefix("finding: "),
                "evidence": ev,
            }
        )
    return out


def attach_variants(entries, variants):
    """Put each leaf claim's rejected-variant results (python -m properties.variants) into its
    entry: `variants` [{name, why, rejected, verdict, evidence}], and `guarded` (at least one
    variant rejected; False marks the claim `unguarded`)."""
    for e in entries:
        if "parts" in e or e["id"] not in variants["claims"]:
            continue
        e["variants"] = [
            {k: v[k] for k in ("name", "why", "rejected", "verdict", "evidence")}
            for v in variants["claims"][e["id"]]
        ]
        e["guarded"] = any(v["rejected"] for v in e["variants"])


def summary(entries):
    counts = {v: 0 for v in catalogue.VERDICTS}
    for e in entries:
        counts[e["verdict"]] += 1
    return counts


def _plain(value):
    """JSON-safe copy: numpy scalars as Python numbers, non-finite floats as strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def mutation_results(out):
    """OUT/mutation.json as `python -m properties.mutation` wrote it, or None."""
    path = out / "mutation.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def peer_matrix(out):
    """OUT/peers.json as `python -m properties.peers` wrote it, or None."""
    path = out / "peers.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def rewrite(out):
    """Write OUT/report.md and OUT/report.html again from OUT/claims.json (after a peer matrix
    or a mutation run was added to OUT)."""
    data = json.loads((out / "claims.json").read_text(encoding="utf-8"))
    articles, _ = catalogue.load()
    write(out, data["run"], articles, data["claims"], data["findings"])


def dashboard(out, html=DASHBOARD):
    """(address of the published asv dashboard relative to OUT, benchmark names), or None."""
    index = html / "index.json"
    if not index.exists():
        return None
    names = sorted(json.loads(index.read_text(encoding="utf-8"))["benchmarks"])
    return Path(os.path.relpath(html / "index.html", out.resolve())).as_posix(), names


def write(out, run, articles, entries, findings=()):
    out.mkdir(parents=True, exist_ok=True)
    data = _plain(
        {
            "run": run,
            "summary": summary(entries),
            "claims": entries,
            "findings": list(findings),
            # a failing claim under --target is about that implementation, not the article
            "article_errors": [] if run["targets"] else article_errors(entries),
        }
    )
    text = json.dumps(data, indent=1, allow_nan=False)
    (out / "claims.json").write_text(text + "\n", encoding="utf-8")
    mutation, peers = mutation_results(out), peer_matrix(out)
    (out / "report.md").write_text(
        markdown(run, articles, entries, mutation, data["findings"], peers), encoding="utf-8"
    )
    page = report_html.render(
        out,
        run,
        articles,
        data["claims"],
        mutation,
        dashboard(out),
        data["findings"],
        data["article_errors"],
        peers,
    )
    (out / "report.html").write_text(page, encoding="utf-8")


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _variant_lines(e):
    """The markdown lines of a leaf claim's rejected variants."""
    if "guarded" not in e:
        return []
    lines = ["", "Rejected variants" + ("" if e["guarded"] else " (**unguarded**: none)") + ":", ""]
    for v in e["variants"]:
        state = "rejected" if v["rejected"] else "**not rejected**"
        lines.append(f"- `{v['name']}` ({state}, verdict {v['verdict']}): {v['why']}")
    return lines


def markdown(run, articles, entries, mutation=None, findings=(), peers=None):
    s = run["statistics"]
    lines = [
        "# Audit of the articles' claims",
        "",
        f"Generated {run['generated']} by `{run['command'].strip()}`: "
        f"Hypothesis profile `{run['profile']}`, "
        f"implementations {run['targets'] or 'reference (impl/)'}, {run['duration_s']:.0f} s.",
        f"Statistical checks: {s['checks']} at alpha = {s['alpha_per_check']:g} each; the chance "
        f"of a false alarm in this run is at most {s['chance_failure_bound']:.1e} "
        f"(budget {s['budget']:g}).",
        _variants_line(run, entries),
        "",
        "## Summary",
        "",
        "| Article | claims | from the full text | " + " | ".join(catalogue.VERDICTS) + " |",
        "|---|---|---|" + "---|" * len(catalogue.VERDICTS),
    ]
    for key, title in articles.items():
        rows = [e for e in entries if e["article"] == key and "parent" not in e]
        counts = summary(rows)
        full = [e["id"] for e in rows if e["source"] == FULL_TEXT]
        lines.append(
            f"| {title} | {len(rows)} | {_id_range(full)} | "
            + " | ".join(str(counts[v]) for v in catalogue.VERDICTS)
            + " |"
        )
    lines += ["", "## What the articles get wrong", ""]
    if run["targets"]:
        lines.append(TARGETS_NOTE)
    else:
        lines += _errors_markdown(article_errors(entries))
    lines += ["", "## Claims", "", "| ID | Source | Verdict | Expected | Evidence |"]
    lines.append("|---|---|---|---|---|")
    for e in entries:
        mark = "" if e["matches"] else " **(differs)**"
        evidence = _cell(e["evidence"]["summary"])
        lines.append(
            f"| {e['id']} | {e['source']} | {e['verdict']}{mark} | {e['expected']} | {evidence} |"
        )
    lines += ["", "## Evidence of the checked claims", ""]
    for e in entries:
        if e["verdict"] == "not checked":
            continue
        source = " (from the full text)" if e["source"] == FULL_TEXT else ""
        lines += [
            f"### {e['id']}: {e['verdict']} (expected {e['expected']}){source}",
            "",
            f"> {e['statement']}",
            "",
        ]
        if e.get("revised"):
            lines += [f"Expectation revised after a run: {e['revised']}", ""]
        for nodeid, ev in e["evidence"]["by_property"].items():
            lines.append(f"- `{nodeid}`: {ev['outcome']} in {ev['time_s']:.2f} s")
            if ev.get("summary"):
                lines.append(f"  - {ev['summary']}")
            for name, value in ev.get("numbers", {}).items():
                if isinstance(value, str) and "\n" in value:  # a table: keep its layout
                    block = ["", "    ```", *("    " + ln for ln in value.strip("\n").splitlines())]
                    lines += [f"  - {name}:", *block, "    ```", ""]
                else:
                    lines.append(f"  - {name}: {value}")
            if ev.get("failure"):
                lines += [
                    "",
                    "  ```",
                    *("  " + ln for ln in str(ev["failure"]).splitlines()),
                    "  ```",
                ]
        if e["evidence"]["counterexample"]:
            lines += [
                "",
                "Minimal counterexample:",
                "",
                "```",
                e["evidence"]["counterexample"],
                "```",
            ]
        for fig in e["evidence"]["figures"]:
            lines += ["", f"![{fig}]({fig})"]
        lines += _variant_lines(e)
        lines.append("")
    lines += ["## Peer findings", ""]
    lines += [
        f"- about {', '.join(f['about'])}: `{f['property']}` ({f['outcome']}): {f['text']}"
        for f in findings
    ] or ["No peer findings in this run."]
    lines.append("")
    if peers is not None:
        lines += ["## Peer matrix", "", *_peers_markdown(peers), ""]
    if mutation is not None:
        lines += ["## Mutation testing", "", mutation["note"], ""]
        lines += [
            "| package | mutants | killed | equivalent | message text | survived | not covered | score |"
        ]
        lines += ["|---|---|---|---|---|---|---|---|"]
        for package, p in mutation["packages"].items():
            lines.append(
                f"| {package} | {p['total']} | {p['killed']} | {p['equivalent']} | {p['message']} | "
                f"{p.get('cuda_only', 0)} | "
                f"{p['survived']} | {p['no_tests']} | {p['not_checked']} | {p['score']:.1%} |"
            )
        lines += ["", "Survivors are listed with their diffs in report.html and mutation.json.", ""]
    return "\n".join(lines) + "\n"


def _errors_markdown(errors):
    if not errors:
        return ["No claim of the selection fails."]
    lines = [
        f"{len(errors)} statements that the audit finds false as the articles state them (the "
        "article's words, translated where the article is in Chinese; the value computed beside "
        "the article's; the minimal case). Each is a claim or a stated case of a claim with the "
        "verdict `fails`.",
        "",
    ]
    for x in errors:
        source = "full text" if x["source"] == FULL_TEXT else "opening"
        lines += [f"### {x['id']} ({x['article_title']}; {source})", "", f"> {x['words']}", ""]
        if x["case"]:
            lines += [f"The case that fails: {x['case']}", ""]
        for d in x["discrepancies"]:
            case = f" (case: {d['case']})" if d.get("case") else ""
            lines.append(
                f"- {d['what']}: the article says {_value(d['article'])}, computed "
                f"{_value(d['computed'])}{case}"
            )
        if not x["discrepancies"] and x["summary"]:
            lines.append(f"- {x['summary']}")
        if x["counterexample"]:
            lines += ["", "Minimal case:", "", "```", x["counterexample"], "```"]
        lines.append("")
    return lines


def _peers_markdown(peers):
    """The peer matrix: claims as rows, peers as columns (library and version), verdicts."""
    cols = peers["columns"]
    keys = [f"{c['family']}={c['adapter']}" for c in cols]
    head = [f"{k} ({c['library']} {c['version']})" for k, c in zip(keys, cols, strict=True)]
    lines = [
        "Each peer audited by the claims' own properties (`python -m properties.peers`); a cell "
        "is the claim's verdict under that library, `not asked` with the reason where the "
        "library cannot be asked it. A `fails` is a finding about the library, never evidence "
        "about the article.",
        "",
        "| claim | expected | " + " | ".join(head) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for row in peers["rows"]:
        cells = []
        for k in keys:
            cell = row["cells"].get(k)
            cells.append(
                ""
                if cell is None
                else f"not asked: {_cell(cell['why'])}"
                if cell["verdict"] == "not asked"
                else cell["verdict"]
            )
        lines.append(f"| {row['id']} | {row['expected']} | " + " | ".join(cells) + " |")
    for c in cols:
        if "error" in c:
            lines += ["", f"{c['family']}={c['adapter']} could not run (exit {c['exit']})."]
    return lines


def _variants_line(run, entries):
    v = run.get("variants")
    if v is None:
        return "Rejected variants: not run in this audit (`python -m properties.variants`)."
    leaves = [e for e in entries if "guarded" in e]
    return (
        f"Rejected variants: {v['count']} run in {v['duration_s']:.0f} s; "
        f"{sum(e['guarded'] for e in leaves)} of {len(leaves)} leaf claims guarded, "
        f"unguarded: {', '.join(v['unguarded']) or 'none'}."
    )


def _guard(e):
    """'k/n rejected' for a leaf claim whose variants ran, 'unguarded' in red when k = 0."""
    if "guarded" not in e:
        return ""
    k = sum(v["rejected"] for v in e["variants"])
    return f"{k}/{len(e['variants'])} rejected" if k else "[bold red]unguarded[/]"


def print_table(console, articles, entries):
    table = Table(title="Claims", show_lines=False)
    for name, width in (("ID", 24), ("Article", 7), ("Verdict", 11), ("Expected", 11)):
        table.add_column(name, min_width=width, no_wrap=True)
    table.add_column("Variants", min_width=10, no_wrap=True)
    table.add_column("Evidence", overflow="ellipsis", no_wrap=True, ratio=1)
    for e in entries:
        colour = COLOURS[e["verdict"]]
        expected = e["expected"] if e["matches"] else f"[bold red]{e['expected']}[/]"
        table.add_row(
            e["id"],
            e["article"],
            f"[{colour}]{e['verdict']}[/]",
            expected,
            _guard(e),
            _first_line(e["evidence"]["summary"])[:110],
        )
    console.print(table)
    counts = summary(entries)
    console.print(", ".join(f"[{COLOURS[v]}]{v}: {n}[/]" for v, n in counts.items()))
