"""The two pages people read, rendered offline in headless Chromium (properties/browser.py): the
published asv dashboard and the audit's report.html. Screenshots go to report/browser/.

Without Chromium these skip (install Debian's `chromium`, or run `tox -e browser`, which installs
it and fails instead of skipping). The dashboard check needs a published dashboard: `.asv/html`
(from `tox -e benchmarks` or `tox -e browser`) or the folder in $ASV_DASHBOARD.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from properties import browser, report_html

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = Path(os.environ.get("ASV_DASHBOARD", ROOT / ".asv" / "html"))
# claims that audit in ~20 s and cover every section: holds, fails with a minimal
# counterexample, conditional parts, figures, a peer finding (RL-03: pymdptoolbox), claims from the
# full texts that the articles get wrong, with the article's value beside the computed one (SD-06,
# FA-08)
REPORT_CLAIMS = ["SA-02", "SA-03*", "DDIM-08*", "RL-03", "SD-06", "FA-08"]
REPORT_PEERS = ["attention=sdpa-math"]
RESOURCES = {"script": "src", "link": "href", "img": "src", "iframe": "src"}


def external_resources(html):
    """Addresses of the scripts, styles, images and frames a page loads from another host
    (a plain <a href> is a link a person may follow, not something the page loads)."""
    found, _ = browser.elements(html)
    addresses = [a.get(RESOURCES[t]) or "" for t, a in found if t in RESOURCES]
    return [u for u in addresses if re.match(r"(https?:)?//", u) and "//127.0.0.1" not in u]


def _unavailable(request, why):
    if request.config.getoption("--require-browser"):
        pytest.fail(f"{why} (--require-browser)")
    pytest.skip(why)


@pytest.fixture
def chromium(request):
    if browser.chromium() is None:
        _unavailable(
            request,
            "Chromium is not installed: the offline dashboard and report.html are not checked "
            "(apt-get install chromium, or tox -e browser)",
        )


@pytest.fixture
def dashboard(request, chromium):
    if not (DASHBOARD / "index.json").exists():
        _unavailable(
            request,
            f"no published asv dashboard in {DASHBOARD} (tox -e benchmarks, or tox -e browser)",
        )
    return DASHBOARD


def test_dashboard_pages_load_nothing_from_the_internet(dashboard):
    pages = sorted(dashboard.glob("*.html"))
    assert pages
    for page in pages:
        external = external_resources(page.read_text(encoding="utf-8"))
        assert not external, f"{page.name} still loads {external}: run python -m benchmarks.offline"


def test_dashboard_renders_offline_list_and_graph(dashboard):
    names = sorted(json.loads((dashboard / "index.json").read_text())["benchmarks"])
    # index.json lists every benchmark found; graphs/ holds those with results
    measured = {
        f.stem for f in (dashboard / "graphs").rglob("*.json") if f.parent.name != "summary"
    }
    graph = next(n for n in names if ".time_" in n and n in measured)
    with browser.serve(dashboard) as (base, requests):
        grid_dom = browser.render(
            base + "index.html", screenshot=browser.SHOTS / "dashboard_grid.png"
        )
        graph_dom = browser.render(
            f"{base}index.html#{graph}", screenshot=browser.SHOTS / "dashboard_graph.png"
        )
    grid, grid_text = browser.elements(grid_dom)
    assert "continental origin of swallow" not in grid_text, "asv's error page: a script failed"
    listed = [a for _, a in browser.with_class(grid, "benchmark-container")]
    assert len(listed) == len(names), f"{len(listed)} benchmarks listed of {len(names)}"
    shown, shown_text = browser.elements(graph_dom)
    assert graph in shown_text  # the graph's title
    assert browser.with_class(shown, "flot-base", tag="canvas"), "no flot graph drawn"
    ticks = browser.with_class(shown, "flot-tick-label")
    assert len(ticks) >= 4, f"the graph has {len(ticks)} axis tick labels"
    # asv asks for the graph of every environment combination and shows the ones that exist, so
    # a missing graphs/*.json is normal; every script, style and image must load
    failed = [(p, s) for p, s in requests if s != "200" and not p.startswith("/graphs/")]
    assert not failed, f"requests that failed: {failed}"
    assert any(p.startswith("/vendor/") for p, _ in requests)


@pytest.fixture(scope="module")
def audit_report(tmp_path_factory):
    """report.html of a small real audit (and report/mutation.json, if a mutation run left one)."""
    out = tmp_path_factory.mktemp("audit")
    mutation = ROOT / "report" / "mutation.json"
    if mutation.exists():
        shutil.copy(mutation, out / "mutation.json")
    cmd = [sys.executable, "-m", "properties.audit", "--claims", *REPORT_CLAIMS, "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # the peer matrix, with one cheap peer (torch's SDPA, math backend, on three FA claims)
    cmd = [sys.executable, "-m", "properties.peers", "--peers", *REPORT_PEERS, "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_audit_report_renders_offline(chromium, audit_report):
    out = audit_report
    data = json.loads((out / "claims.json").read_text())
    claims = data["claims"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert not external_resources(page), "report.html loads something from another host"
    failing = next(
        c["id"] for c in claims if c["verdict"] == "fails" and c["evidence"]["counterexample"]
    )
    # the failing claim alone, expanded, for a screenshot of what a reader sees on opening it
    start = page.index(f'<details class="claim" id="{failing}"')
    claim_html = page[start : page.index("</details>", start) + len("</details>")]
    head = page[: page.index("<body>") + len("<body>")]
    opened = head + claim_html.replace("<details ", "<details open ", 1) + "</body></html>"
    (out / "report_open.html").write_text(opened, encoding="utf-8")
    with browser.serve(out) as (base, requests):
        dom = browser.render(base + "report.html", screenshot=browser.SHOTS / "report.png")
        browser.render(
            f"{base}report_open.html",
            screenshot=browser.SHOTS / "report_claim_open.png",
            size=(1280, 700),
        )
    found, text = browser.elements(dom)
    assert {a.get("id") for _, a in found} >= {
        "summary",
        "errors",
        "claims",
        "peers",
        "peer-matrix",
        "mutants",
        "benchmarks",
    }
    articles = [a for t, a in found if t == "a" and (a.get("href") or "").startswith("#article-")]
    assert len(articles) == len({c["article"] for c in claims})
    details = browser.with_class(found, "claim", tag="details")
    assert [a["id"] for _, a in details] == [c["id"] for c in claims]
    assert [a["data-verdict"] for _, a in details] == [c["verdict"] for c in claims]
    figures = sum(len(set(c["evidence"]["figures"])) for c in claims)  # a parent shows its parts'
    images = [
        a for t, a in found if t == "img" and a.get("src", "").startswith("data:image/png;base64,")
    ]
    assert len(images) == figures > 0
    counterexamples = browser.with_class(found, "counterexample", tag="pre")
    assert len(counterexamples) == sum(bool(c["evidence"]["counterexample"]) for c in claims) > 0
    assert "pymdptoolbox" in text.split("Peer findings", 1)[1].split("Mutation testing", 1)[0]
    # what the articles get wrong: one block per stated failing claim, in claims.json's order, each
    # with the article's words, and the computed values beside the article's where recorded
    errors = data["article_errors"]
    assert [x["id"] for x in errors] == [
        c["id"]
        for c in claims
        if c["verdict"] == "fails" and "parts" not in c and c.get("stated", True)
    ]
    blocks = [a["id"] for _, a in browser.with_class(found, "error", tag="div")]
    assert blocks == [f"error-{x['id']}" for x in errors]
    full = [x for x in errors if x["source"] == "full text"]
    assert {x["id"].split(".")[0] for x in full} >= {"SD-06", "FA-08"}
    assert all(x["discrepancies"] for x in full)
    computed = browser.with_class(found, "computed", tag="td")
    assert len(computed) == sum(len(x["discrepancies"]) for x in errors) > 0
    section = text.split("What the articles get wrong", 1)[1].split("Claims", 1)[0]
    for x in full:
        assert x["words"][:60] in section
        for d in x["discrepancies"]:
            assert report_html._value(d["computed"]) in section
    assert len(browser.with_class(found, "src", tag="span")) == sum(
        c["source"] == "full text" for c in claims
    )
    # the peer matrix: a column per peer with its library's version, a verdict badge per cell
    matrix = json.loads((out / "peers.json").read_text())
    heads = browser.with_class(found, "peer", tag="th")
    assert len(heads) == len(matrix["columns"]) == len(REPORT_PEERS)
    section = text.split("Peer matrix", 1)[1].split("Mutation testing", 1)[0]
    for c in matrix["columns"]:
        assert (
            f"{c['family']}={c['adapter']}" in section
            and f"{c['library']} {c['version']}" in section
        )
    asked = [cell for r in matrix["rows"] for cell in r["cells"].values()]
    assert (
        len(browser.with_class(found, "cell", tag="td"))
        == sum(c["verdict"] != "not asked" for c in asked)
        > 0
    )
    assert len(browser.with_class(found, "not-asked", tag="td")) == sum(
        c["verdict"] == "not asked" for c in asked
    )
    # every leaf claim lists its rejected variants, each marked rejected
    leaves = [c for c in claims if "guarded" in c]
    assert len(browser.with_class(found, "variants", tag="ul")) == len(leaves) > 0
    shown = browser.with_class(found, "variant", tag="li")
    assert len(shown) == sum(len(c["variants"]) for c in leaves)
    assert all(a["data-rejected"] == "true" for _, a in shown)
    mutation = out / "mutation.json"
    if mutation.exists():
        packages = json.loads(mutation.read_text())["packages"]
        assert all(package in text.split("Mutation testing", 1)[1] for package in packages)
    else:
        assert "No mutation run recorded" in text
    assert not [(p, s) for p, s in requests if s != "200"]
