"""The peer matrix: every library behind an adapter, audited by the claims' own properties.

    python -m properties.peers                      # every peer of every family, into report/
    python -m properties.peers --peers sde=torchsde rl=mdptoolbox-hiive --out /tmp/r

Each family module (properties/adapters/<family>.py) lists its PEERS: {name: Peer(library,
claims, not_asked)}, the adapter registered under the same name in its ADAPTERS. For each peer this
runs `python -m properties.audit --target FAMILY=NAME --claims CLAIMS --no-variants -n 1` into
OUT/peers/FAMILY-NAME/ (a report of its own, with its minimal counterexamples), then writes
OUT/peers.json: the matrix of claims (rows) by peers (columns, each with the library's version),
every cell the claim's verdict under that peer, or `not asked` with the reason. A peer audit that
gives a verdict other than the catalogue's expected one exits 1: that is a result (the library
breaks the claim), not a failure of this command; exit 2 of an audit (it could not start) is.
When OUT holds an audit's claims.json, its report.md and report.html are written again with the
matrix (the audit itself adds the matrix whenever OUT/peers.json exists).

Exit status: 0 when every peer's audit ran (whatever its verdicts), 2 when one could not start or
a peer names an adapter or claim that does not exist.
"""

import argparse
import fnmatch
import importlib
import json
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from properties import adapters, catalogue, report

ROOT = Path(__file__).resolve().parent.parent


def registered():
    """[(family, name, Peer)] of every family module's PEERS, in FAMILIES order."""
    found = []
    for family, module in adapters.FAMILIES.items():
        peers = getattr(importlib.import_module(module), "PEERS", {})
        for name, peer in peers.items():
            found.append((family, name, peer))
    return found


def check(found, claims):
    """ValueError naming every peer whose adapter or claims do not exist."""
    problems = []
    for family, name, peer in found:
        module = importlib.import_module(adapters.FAMILIES[family])
        if name not in module.ADAPTERS:
            problems.append(f"{family}={name}: not in {module.__name__}.ADAPTERS")
        for pattern in (*peer.claims, *peer.not_asked):
            if not any(fnmatch.fnmatchcase(c, pattern) for c in claims):
                problems.append(f"{family}={name}: claim {pattern!r} matches no catalogue claim")
    if problems:
        raise ValueError("peers: " + "; ".join(problems))


def version(library):
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return None


def audit_peer(family, name, peer, out, profile):
    """Run the audit of one peer; (column entry, {claim id: cell})."""
    folder = out / "peers" / f"{family}-{name}"
    command = [
        sys.executable, "-m", "properties.audit", "--target", f"{family}={name}",
        "--claims", *peer.claims, "--no-variants", "-n", "1", "--out", str(folder),
        "--profile", profile,
    ]  # fmt: skip
    start = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    column = {
        "family": family,
        "adapter": name,
        "library": peer.library,
        "version": version(peer.library),
        "claims": list(peer.claims),
        "exit": run.returncode,
        "time_s": round(time.perf_counter() - start, 1),
        "report": f"peers/{family}-{name}/report.html",
    }
    cells = {cid: {"verdict": "not asked", "why": why} for cid, why in peer.not_asked.items()}
    if run.returncode == 2 or not (folder / "claims.json").exists():
        column["error"] = (run.stdout + run.stderr)[-2000:]
        return column, cells
    for e in json.loads((folder / "claims.json").read_text(encoding="utf-8"))["claims"]:
        if e["verdict"] != "not checked":
            cells[e["id"]] = {
                "verdict": e["verdict"],
                "expected": e["expected"],
                "summary": e["evidence"]["summary"],
            }
    return column, cells


def matrix(columns, cells_by_column, claims):
    """{"columns": [...], "rows": [{id, expected, cells: {column key: cell}}]} in catalogue order."""
    rows = []
    for cid, claim in claims.items():
        keyed = zip(_keys(columns), cells_by_column, strict=True)
        cells = {key: cells[cid] for key, cells in keyed if cid in cells}
        if cells:
            rows.append({"id": cid, "expected": claim.expected, "cells": cells})
    return {"columns": columns, "rows": rows}


def _keys(columns):
    return [f"{c['family']}={c['adapter']}" for c in columns]


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m properties.peers", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=Path("report"), help="report folder (default report)"
    )
    parser.add_argument("--peers", nargs="+", metavar="FAMILY=NAME", help="only these peers")
    parser.add_argument(
        "--profile", default="ci", help="Hypothesis profile of the peer audits (default ci)"
    )
    return parser.parse_args(argv)  # fmt: skip


def main(argv=None):
    args = parse_args(argv)
    _, claims = catalogue.load()
    found = registered()
    try:
        check(found, claims)
        if args.peers:
            known = {f"{family}={name}" for family, name, _ in found}
            unknown = sorted(set(args.peers) - known)
            if unknown:
                raise ValueError(f"--peers: unknown {unknown}; registered: {sorted(known)}")
            found = [(f, n, p) for f, n, p in found if f"{f}={n}" in args.peers]
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    columns, cells = [], []
    for family, name, peer in found:
        print(
            f"peer {family}={name} ({peer.library} {version(peer.library)}): {' '.join(peer.claims)}"
        )
        column, cell = audit_peer(family, name, peer, args.out, args.profile)
        verdicts = [c["verdict"] for c in cell.values()]
        print(f"  {column['time_s']} s, exit {column['exit']}: "
              + ", ".join(f"{v} {verdicts.count(v)}" for v in dict.fromkeys(verdicts)))  # fmt: skip
        columns.append(column)
        cells.append(cell)
    data = matrix(columns, cells, claims)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(
        f"peer matrix: {len(data['rows'])} claims x {len(columns)} peers in {args.out}/peers.json"
    )
    if (args.out / "claims.json").exists():
        report.rewrite(args.out)
        print(f"with the audit's report: {args.out}/report.md, {args.out}/report.html")
    broken = [c for c in columns if "error" in c]
    for c in broken:
        print(f"peer {c['family']}={c['adapter']} could not run:\n{c['error']}", file=sys.stderr)
    return 2 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
