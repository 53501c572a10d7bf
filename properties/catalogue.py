"""The claim catalogue (catalogue.toml) and the rules that turn property results into verdicts.

A property names the claims it checks with the pytest marker `claim`:
    @claim("SA-01")                  the test passes  <=> the claim holds on every generated case
    @claim(refutes="SA-03.cubic")    the test passes  <=> it exhibited a counterexample to the claim
    @finding("DDIM-08.linear")       a finding about a peer library (diffusers, torch, ...) on the
                                     subject of that claim: reported on its own, never evidence for
                                     or against the article's claim
A claim with parts ("SA-03.tanh", "SA-03.cubic", ...) is checked through its parts only.

Parts and variants. A part is a case of the article's own statement; a claim's verdict is the
aggregate of its parts' verdicts. An entry with `stated = false` is a variant the article does not
state (a circulating misreading such as the PF-ODE without its 1/2, or a case the audit adds such
as a smaller gain): it gets its own verdict, is reported beside its parent, and never enters the
parent's verdict.

Verdict rule of a leaf claim (`leaf_verdict`): a supporting property that passes supports it, one
that fails by an assertion refutes it; a refuting property that exhibits its counterexample refutes
it, one that finds none ("not-refuted") supports it. Anything else is `error`: an exception, a
refuting property failing by another assertion, and a supporting property failing by "no
counterexample found" (a support cannot be earned by a refutation that came up empty).
"""

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

PATH = Path(__file__).with_name("catalogue.toml")
VERDICTS = ("holds", "fails", "conditional", "not checked", "error")
EXPECTABLE = ("holds", "fails", "conditional")
SOURCES = ("opening", "full text")

claim = pytest.mark.claim
finding = pytest.mark.finding


@dataclass(frozen=True)
class Claim:
    id: str
    article: str
    statement: str
    expected: str
    stated: bool = True  # False: a variant the article does not state, reported beside its parent
    source: str = "opening"  # "full text": a claim of CLAIMS-FULLTEXT.md (parts: their parent's)
    revised: str | None = None  # why the expectation was changed after a run, if it was

    @property
    def parent(self):
        return self.id.split(".")[0] if "." in self.id else None


def load(path=PATH):
    """Articles (key -> title) and claims (id -> Claim, in catalogue order)."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    articles = data["articles"]
    claims = {}
    for entry in data["claims"]:
        cid = entry["id"]
        key = cid.split("-")[0]
        if key not in articles:
            raise ValueError(f"catalogue: claim {cid} belongs to no article in [articles]")
        if cid in claims:
            raise ValueError(f"catalogue: duplicate claim id {cid}")
        if entry["expected"] not in EXPECTABLE:
            raise ValueError(
                f"catalogue: {cid} expects {entry['expected']!r}, not one of {EXPECTABLE}"
            )
        stated = entry.get("stated", True)
        if not isinstance(stated, bool) or (not stated and "." not in cid):
            raise ValueError(f"catalogue: {cid}: `stated = false` is for parts (ID.name) only")
        parent = claims.get(cid.split(".")[0]) if "." in cid else None
        if "source" in entry and (parent or entry["source"] not in SOURCES):
            raise ValueError(
                f"catalogue: {cid}: `source` is {SOURCES} on a top-level claim (parts inherit it)"
            )
        source = parent.source if parent else entry.get("source", "opening")
        revised = entry.get("revised")
        if revised is not None and not (isinstance(revised, str) and revised.strip()):
            raise ValueError(f"catalogue: {cid}: `revised` says why, in words")
        claims[cid] = Claim(
            cid, key, entry["statement"], entry["expected"], stated, source, revised
        )
    return articles, claims


def parts(claims, cid):
    """Every entry ID.name under `cid`: its parts and the variants reported beside it."""
    return [c for c in claims if c.startswith(cid + ".")]


def stated_parts(claims, cid):
    """The parts whose verdicts make `cid`'s verdict (the cases the article states)."""
    return [c for c in parts(claims, cid) if claims[c].stated]


def leaves(claims):
    """Claims that properties name: those without parts."""
    return [c for c in claims if not parts(claims, c)]


def select(claims, patterns):
    """Leaf ids matched by any glob pattern (a pattern matching a claim selects its parts)."""
    chosen = set()
    for cid in claims:
        if any(fnmatch.fnmatchcase(cid, p) for p in patterns):
            chosen.update(parts(claims, cid) or [cid])
    return chosen


def marked(item):
    """(supports, refutes): the claim ids an item's `claim` markers name."""
    supports, refutes = [], []
    for mark in item.iter_markers("claim"):
        supports += mark.args
        r = mark.kwargs.get("refutes", ())
        refutes += [r] if isinstance(r, str) else list(r)
    return tuple(supports), tuple(refutes)


def findings_of(item):
    """The claim ids an item's `finding` markers name (peer findings on those claims' subject)."""
    return tuple(cid for mark in item.iter_markers("finding") for cid in mark.args)


def check_marks(claims, marks, findings=None):
    """Raise ValueError for a property naming an unknown claim, or a claim that has parts, and
    for a peer finding that names an unknown claim or is also marked as a claim's property."""
    known, problems = set(leaves(claims)), []
    for nodeid, (supports, refutes) in marks.items():
        for cid in supports + refutes:
            if cid in claims and cid not in known:
                problems.append(f"{nodeid}: {cid} has parts {parts(claims, cid)}; name a part")
            elif cid not in claims:
                problems.append(f"{nodeid}: unknown claim id {cid!r} (not in {PATH.name})")
    for nodeid, ids in (findings or {}).items():
        problems += [f"{nodeid}: finding on unknown claim id {c!r}" for c in ids if c not in claims]
        if ids and sum(marks.get(nodeid, ((), ())), ()):
            problems.append(f"{nodeid}: a peer finding is not evidence: drop its claim marker")
    if problems:
        raise ValueError("claim markers name unknown claims:\n  " + "\n  ".join(problems))


def leaf_verdict(results):
    """Verdict of one claim from its properties' results.

    Each result is (role, outcome) with role "supports" or "refutes" and outcome one of
    "passed", "assertion" (the property failed), "not-refuted" (a refutation found no
    counterexample), "exception" (the property broke), "skipped".
    """
    ran = [(role, out) for role, out in results if out != "skipped"]
    if not ran:
        return "not checked"
    if any(out == "exception" for _, out in ran):
        return "error"
    if any(role == "supports" and out == "not-refuted" for role, out in ran):
        return "error"  # a support cannot be earned by a refutation that found nothing
    fails = any(
        (role == "supports" and out == "assertion") or (role == "refutes" and out == "passed")
        for role, out in ran
    )
    if not fails and any(role == "refutes" and out == "assertion" for role, out in ran):
        return "error"  # a refutation that failed by an assertion other than "no counterexample"
    return "fails" if fails else "holds"


def aggregate(verdicts):
    """Verdict of a claim from its parts' verdicts."""
    if not verdicts or "not checked" in verdicts:
        return "not checked"
    if "error" in verdicts:
        return "error"
    distinct = set(verdicts)
    return distinct.pop() if len(distinct) == 1 else "conditional"
