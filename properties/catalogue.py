"""The claim catalogue (catalogue.toml) and the rules that turn property results into verdicts.

A property names the claims it checks with the pytest marker `claim`:
    @claim("SA-01")                  the test passes  <=> the claim holds on every generated case
    @claim(refutes="SA-03.cubic")    the test passes  <=> it exhibited a counterexample to the claim
A claim with parts ("SA-03.tanh", "SA-03.cubic", ...) is checked through its parts only.
"""

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

PATH = Path(__file__).with_name("catalogue.toml")
VERDICTS = ("holds", "fails", "conditional", "not checked", "error")
EXPECTABLE = ("holds", "fails", "conditional")

claim = pytest.mark.claim


@dataclass(frozen=True)
class Claim:
    id: str
    article: str
    statement: str
    expected: str

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
        claims[cid] = Claim(cid, key, entry["statement"], entry["expected"])
    return articles, claims


def parts(claims, cid):
    return [c for c in claims if c.startswith(cid + ".")]


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


def check_marks(claims, marks):
    """Raise ValueError for a property naming an unknown claim, or a claim that has parts."""
    known, problems = set(leaves(claims)), []
    for nodeid, (supports, refutes) in marks.items():
        for cid in supports + refutes:
            if cid in claims and cid not in known:
                problems.append(f"{nodeid}: {cid} has parts {parts(claims, cid)}; name a part")
            elif cid not in claims:
                problems.append(f"{nodeid}: unknown claim id {cid!r} (not in {PATH.name})")
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
