"""The audit report as one self-contained page: OUT/report.html.

Figures are embedded as data: URIs and the style is inline, so the file can be mailed, attached to
a CI run or opened offline; there is no script. Sections: a summary table by article with verdict
colours; every claim as a <details> element (statement, properties, evidence, counterexample,
figures, rejected variants); peer findings; mutation results (from OUT/mutation.json, written by
`python -m properties.mutation`); links to the asv dashboard.
"""

import base64
import json
from html import escape

from properties import catalogue

COLOURS = {
    "holds": "#1a7f37",
    "fails": "#cf222e",
    "conditional": "#bf8700",
    "not checked": "#6e7781",
    "error": "#8250df",
}
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#1f2328}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #d0d7de;padding:.3em .6em}
th{background:#f6f8fa;text-align:left}td.n{text-align:right}
.v{color:#fff;border-radius:.8em;padding:.05em .6em;font-size:90%;white-space:nowrap}
details{border:1px solid #d0d7de;border-radius:6px;margin:.4em 0;padding:.3em .8em}
summary{cursor:pointer}details[open]>summary{margin-bottom:.5em}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:85%}
img{max-width:100%;border:1px solid #d0d7de;margin:.4em 0}.differs{color:#cf222e;font-weight:bold}
code{font-size:90%}
.src{border:1px solid #8250df;color:#8250df;border-radius:.8em;padding:0 .5em;font-size:80%}
.error{border-left:4px solid #cf222e;padding:.1em 1em;margin:1em 0}
"""


FULL_TEXT = catalogue.SOURCES[1]  # "full text"
TARGETS_NOTE = (
    "Not listed: this audit ran other implementations (--target), so a claim that fails here is "
    "a finding about them, not an error of the article."
)


def _id_range(ids):
    """'DDIM-12..16' for consecutive ids of one article, '' for none."""
    if not ids:
        return ""
    return ids[0] if len(ids) == 1 else f"{ids[0]}..{ids[-1].split('-')[1]}"


def _value(v):
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _badge(verdict):
    colour = COLOURS[verdict]
    return f'<span class="v" style="background:{colour}" data-verdict="{escape(verdict)}">{escape(verdict)}</span>'


def _figure(out, path):
    file = out / path
    if not file.exists():
        return f"<p>(figure {escape(path)} missing)</p>"
    data = base64.b64encode(file.read_bytes()).decode()
    return f'<img alt="{escape(path)}" src="data:image/png;base64,{data}">'


def _summary_table(articles, entries):
    head = "".join(f"<th>{_badge(v)}</th>" for v in catalogue.VERDICTS)
    rows = []
    for key, title in articles.items():
        top = [e for e in entries if e["article"] == key and "parent" not in e]
        counts = {v: sum(e["verdict"] == v for e in top) for v in catalogue.VERDICTS}
        cells = "".join(f'<td class="n">{counts[v] or ""}</td>' for v in catalogue.VERDICTS)
        full = _id_range([e["id"] for e in top if e["source"] == FULL_TEXT])
        rows.append(
            f'<tr><td><a href="#article-{escape(key)}">{escape(title)}</a></td>'
            f'<td class="n">{len(top)}</td><td class="full">{escape(full)}</td>{cells}</tr>'
        )
    return (
        '<table id="summary"><tr><th>Article</th><th>claims</th><th>from the full text</th>'
        f"{head}</tr>" + "".join(rows) + "</table>"
    )


def _property(nodeid, ev):
    parts = [f"<li><code>{escape(nodeid)}</code>: {escape(ev['outcome'])} in {ev['time_s']:.2f} s"]
    if ev.get("summary"):
        parts.append(f"<br>{escape(ev['summary'])}")
    numbers = ev.get("numbers") or {}
    if numbers:
        text = "\n".join(
            f"{name}:\n{value}" if isinstance(value, str) and "\n" in value else f"{name}: {value}"
            for name, value in numbers.items()
        )
        parts.append(f"<pre>{escape(text)}</pre>")
    if ev.get("failure"):
        parts.append(f"<pre>{escape(str(ev['failure']))}</pre>")
    return "".join(parts) + "</li>"


def _claim(out, e):
    differs = "" if e["matches"] else ' <span class="differs">(differs from expected)</span>'
    first = e["evidence"]["summary"].split("; ")[0][:160]
    source = ' <span class="src">full text</span>' if e["source"] == FULL_TEXT else ""
    body = [f"<blockquote>{escape(e['statement'])}</blockquote>"]
    body.append(f"<p>Expected verdict: {_badge(e['expected'])}{differs}</p>")
    if e.get("revised"):
        body.append(
            f'<p class="revised">Expectation revised after a run: {escape(e["revised"])}</p>'
        )
    if e.get("parts"):
        body.append(
            "<p>Parts: " + ", ".join(f'<a href="#{p}">{p}</a>' for p in e["parts"]) + "</p>"
        )
    if e.get("beside"):
        body.append(
            "<p>Reported beside it (variants the article does not state, outside its verdict): "
            + ", ".join(f'<a href="#{p}">{p}</a>' for p in e["beside"])
            + "</p>"
        )
    if e.get("stated") is False:
        body.append(
            f'<p>Not stated by the article: reported beside <a href="#{e["parent"]}">'
            f"{e['parent']}</a>, outside its verdict.</p>"
        )
    if e["evidence"]["summary"]:
        body.append(f"<p>{escape(e['evidence']['summary'])}</p>")
    if e["evidence"]["by_property"]:
        items = "".join(_property(n, ev) for n, ev in e["evidence"]["by_property"].items())
        body.append(f'<ul class="properties">{items}</ul>')
    elif e["properties"]:
        items = "".join(f"<li><code>{escape(n)}</code></li>" for n in e["properties"])
        body.append(f'<ul class="properties">{items}</ul>')
    if e["evidence"]["counterexample"]:
        body.append(
            '<p>Minimal counterexample:</p><pre class="counterexample">'
            f"{escape(e['evidence']['counterexample'])}</pre>"
        )
    body += [_figure(out, f) for f in dict.fromkeys(e["evidence"]["figures"])]
    body.append(_variants(e))
    return (
        f'<details class="claim" id="{escape(e["id"])}" data-verdict="{escape(e["verdict"])}">'
        f"<summary><b>{escape(e['id'])}</b> {_badge(e['verdict'])}{differs}{source} "
        f"{escape(first)}</summary>{''.join(body)}</details>"
    )


def _variants(e):
    """A leaf claim's rejected variants, or its `unguarded` mark."""
    if "guarded" not in e:
        return ""
    items = "".join(
        f'<li class="variant" data-rejected="{str(v["rejected"]).lower()}">'
        f"<code>{escape(v['name'])}</code> "
        f"{'rejected' if v['rejected'] else '<b class=differs>not rejected</b>'} "
        f"(verdict {escape(v['verdict'])}): {escape(v['why'])}"
        + (f"<br><small>{escape(v['evidence'])}</small>" if v.get("evidence") else "")
        + "</li>"
        for v in e["variants"]
    )
    mark = "" if e["guarded"] else ' <b class="differs unguarded">unguarded</b>'
    return f'<p>Rejected variants{mark}:</p><ul class="variants">{items}</ul>'


def _errors(errors):
    """The section "What the articles get wrong": report.article_errors, one block each."""
    if not errors:
        return '<p id="errors-none">No claim of the selection fails.</p>'
    blocks = [
        f"<p>{len(errors)} statements that the audit finds false as the articles state them: the "
        "article's words (translated where the article is in Chinese), the value computed beside "
        "the article's, and the minimal case. Each is a claim, or a case of a claim the article "
        "states, with the verdict <code>fails</code>.</p>"
    ]
    for x in errors:
        source = "full text" if x["source"] == FULL_TEXT else "opening"
        body = [
            f'<h3><a href="#{escape(x["id"])}">{escape(x["id"])}</a> '
            f"<small>{escape(x['article_title'])}; {source}</small></h3>",
            f"<blockquote>{escape(x['words'])}</blockquote>",
        ]
        if x["case"]:
            body.append(f"<p>The case that fails: {escape(x['case'])}</p>")
        if x["discrepancies"]:
            rows = "".join(
                f"<tr><td>{escape(d['what'])}</td><td>{escape(_value(d['article']))}</td>"
                f'<td class="computed">{escape(_value(d["computed"]))}</td>'
                f"<td>{escape(str(d.get('case') or ''))}</td></tr>"
                for d in x["discrepancies"]
            )
            body.append(
                '<table class="discrepancies"><tr><th>quantity</th><th>the article says</th>'
                f"<th>computed</th><th>case</th></tr>{rows}</table>"
            )
        elif x["summary"]:
            body.append(f"<p>{escape(x['summary'])}</p>")
        if x["counterexample"]:
            body.append(
                f'<p>Minimal case:</p><pre class="minimal">{escape(x["counterexample"])}</pre>'
            )
        blocks.append(f'<div class="error" id="error-{escape(x["id"])}">{"".join(body)}</div>')
    return "".join(blocks)


def _peers(peers):
    """The peer matrix (OUT/peers.json): claims as rows, libraries as columns, verdict cells."""
    if peers is None:
        return "<p>No peer matrix in this report folder (run <code>tox -e peers</code>).</p>"
    cols = peers["columns"]
    keys = [f"{c['family']}={c['adapter']}" for c in cols]
    head = "".join(
        f'<th class="peer"><a href="{escape(c["report"])}">{escape(k)}</a><br>'
        f"<small>{escape(c['library'])} {escape(str(c['version']))}</small></th>"
        for k, c in zip(keys, cols, strict=True)
    )
    rows = []
    for row in peers["rows"]:
        cells = []
        for k in keys:
            cell = row["cells"].get(k)
            if cell is None:
                cells.append("<td></td>")
            elif cell["verdict"] == "not asked":
                cells.append(f'<td class="not-asked" title="{escape(cell["why"])}">not asked</td>')
            else:
                cells.append(f'<td class="cell">{_badge(cell["verdict"])}</td>')
        rows.append(
            f'<tr><td><a href="#{escape(row["id"])}">{escape(row["id"])}</a></td>'
            f"<td>{_badge(row['expected'])}</td>{''.join(cells)}</tr>"
        )
    reasons = sorted(
        {(k, c["why"]) for row in peers["rows"] for k, c in row["cells"].items()
         if c["verdict"] == "not asked"}
    )  # fmt: skip
    why = "".join(f"<li><code>{escape(k)}</code>: {escape(w)}</li>" for k, w in reasons)
    return (
        "<p>Each library audited by the claims' own properties (<code>python -m properties.peers"
        "</code>; each column links to that audit's report). A cell is the claim's verdict under "
        "the library; a <code>fails</code> is a finding about the library, never evidence about "
        "the article.</p>"
        '<div style="overflow-x:auto">'
        f'<table id="peers"><tr><th>claim</th><th>expected</th>{head}</tr>{"".join(rows)}</table>'
        "</div>" + (f"<p>Not asked:</p><ul>{why}</ul>" if why else "")
    )


def _findings(findings):
    if not findings:
        return "<p>No peer findings in this run.</p>"
    items = "".join(
        "<li>about "
        + ", ".join(f'<a href="#{escape(c)}">{escape(c)}</a>' for c in f["about"])
        + f" <code>{escape(f['property'].split('::')[-1])}</code> ({escape(f['outcome'])}): "
        f"{escape(f['text'])}</li>"
        for f in findings
    )
    return f'<ul id="findings">{items}</ul>'


def _mutation(mutation):
    if mutation is None:
        return (
            "<p>No mutation run recorded in this report folder "
            "(run <code>tox -e mutation</code>, then the audit).</p>"
        )
    head = "<tr><th>package</th><th>mutants</th><th>killed</th><th>equivalent</th>"
    head += "<th>message text</th><th>CUDA only</th><th>survived</th><th>not covered</th>"
    head += "<th>not checked</th>"
    head += "<th>score</th></tr>"
    rows = []
    for package, p in mutation["packages"].items():
        rows.append(
            f"<tr><td>{escape(package)}</td><td class=n>{p['total']}</td>"
            f"<td class=n>{p['killed']}</td><td class=n>{p['equivalent']}</td><td class=n>{p['message']}</td>"
            f"<td class=n>{p.get('cuda_only', 0)}</td>"
            f"<td class=n>{p['survived']}</td><td class=n>{p['no_tests']}</td>"
            f"<td class=n>{p['not_checked']}</td>"
            f"<td class=n>{p['score']:.1%}</td></tr>"
        )
    survivors = []
    modules = {m: ms for package in mutation["survivors"].values() for m, ms in package.items()}
    for module, mutants in sorted(modules.items()):
        items = "".join(
            f"<li><code>{escape(m['name'])}</code>"
            + (f" (equivalent: {escape(m['equivalent'])})" if m.get("equivalent") else "")
            + f"<pre>{escape(m['diff'])}</pre></li>"
            for m in mutants
        )
        survivors.append(
            f"<details><summary>{escape(module)}: {len(mutants)}</summary><ul>{items}</ul></details>"
        )
    return (
        f"<p>{escape(mutation['note'])}</p>"
        f'<table id="mutation">{head}{"".join(rows)}</table>'
        "<h3>Surviving mutants by module</h3>" + "".join(survivors)
    )


def _dashboard(dashboard):
    if dashboard is None:
        return "<p>No published asv dashboard found (run <code>tox -e benchmarks</code>).</p>"
    base, names = dashboard
    modules = sorted({n.split(".")[0] for n in names})
    links = "".join(
        f'<li><a href="{escape(base)}#{escape(next(n for n in names if n.startswith(m + ".")))}">'
        f"{escape(m)}</a></li>"
        for m in modules
    )
    return (
        f'<p><a id="dashboard" href="{escape(base)}">The asv dashboard</a> '
        f"({len(names)} benchmarks; serve it over HTTP, e.g. <code>asv preview</code>). "
        f"A graph of each benchmark module:</p><ul>{links}</ul>"
    )


def render(
    out, run, articles, entries, mutation=None, dashboard=None, findings=(), errors=(), peers=None
):
    """The page as a string. `dashboard` is (address relative to OUT, [benchmark names]);
    `errors` the section "What the articles get wrong" (report.article_errors)."""
    s = run["statistics"]
    intro = (
        f"Generated {escape(run['generated'])} by <code>{escape(run['command'].strip())}</code>: "
        f"Hypothesis profile <code>{escape(run['profile'])}</code>, implementations "
        f"{escape(json.dumps(run['targets']) if run['targets'] else 'reference (impl/)')}, "
        f"{run['duration_s']:.0f} s. Statistical checks: {s['checks']} at alpha = "
        f"{s['alpha_per_check']:g} each (false-alarm bound {s['chance_failure_bound']:.1e})."
    )
    v = run.get("variants")
    leaves = [e for e in entries if "guarded" in e]
    intro += (
        " Rejected variants: not run."
        if v is None
        else f" Rejected variants: {v['count']} in {v['duration_s']:.0f} s; "
        f"{sum(e['guarded'] for e in leaves)} of {len(leaves)} leaf claims guarded "
        f'(<span id="unguarded">{len(v["unguarded"])}</span> unguarded).'
    )
    claims = []
    for key, title in articles.items():
        rows = [e for e in entries if e["article"] == key]
        if rows:
            claims.append(f'<h3 id="article-{escape(key)}">{escape(title)}</h3>')
            claims += [_claim(out, e) for e in rows]
    return "\n".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8>",
            '<title>Audit of the articles\' claims</title><link rel=icon href="data:,">',
            f"<style>{STYLE}</style></head><body>",
            "<h1>Audit of the articles' claims</h1>",
            f"<p>{intro}</p>",
            "<h2>Summary</h2>",
            _summary_table(articles, entries),
            '<h2 id="errors">What the articles get wrong</h2>',
            f'<p id="errors-none">{escape(TARGETS_NOTE)}</p>'
            if run["targets"]
            else _errors(errors),
            '<h2 id="claims">Claims</h2>',
            *claims,
            '<h2 id="peers">Peer findings</h2>',
            _findings(findings),
            '<h2 id="peer-matrix">Peer matrix</h2>',
            _peers(peers),
            '<h2 id="mutants">Mutation testing</h2>',
            _mutation(mutation),
            '<h2 id="benchmarks">Benchmarks</h2>',
            _dashboard(dashboard),
            "</body></html>",
        ]
    )
