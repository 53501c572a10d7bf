"""Mutation testing of impl/: does the suite notice when the mathematics is changed?

    python -m properties.mutation run rl flows     # re-run the shards of two packages
    python -m properties.mutation run              # every package
    python -m properties.mutation rerun rl         # only the survivors, after a property changed
    python -m properties.mutation report           # summarise the last runs into report/

The tool is mutmut 3 (https://github.com/boxed/mutmut). It fits torch on 2 cores: it imports the
suite once and runs each mutant's properties in a forked child, and it runs for each mutant only
the properties that reached the mutated function when the clean suite ran. cosmic-ray, by
contrast, starts a fresh test process per mutant (a torch import of seconds each).

The run is sharded by impl/ package: each shard lives in .mutation/PACKAGE/ with its own mutmut
configuration (mutate only that package; collect only the properties that mirror it), so a
package re-runs on its own, and mutmut's cache there keeps the results of unchanged functions.
A change to a shard's selection (a new test file that its globs match) is a change of mutmut's
configuration: mutmut then checks that shard's mutants again from the start. When a property
file changed after mutmut traced which properties reach which function, the trace is redone
first (refresh_stats): mutmut itself only adds new test names to it.
Properties run under the Hypothesis profile `mutation` (derandomized, so a survivor is
reproducible; 10 examples per property, 2 per statistical one: a mutant usually breaks a
property on its first examples, and the run executes the properties once per mutant).

Forking has a consequence for the properties: whatever a test module computes at import, or
caches across tests, comes from the clean code. A mutant of a function that only such a value
goes through survives unseen, so the properties call impl where they check it (e.g. the default
schedules and SDEs), and a cross-test cache is keyed by MUTANT_UNDER_TEST, which mutmut sets in
each child.

mutmut leaves decorated functions alone (@njit, @triton.jit, @torch.no_grad, ...): their bodies
are not mutated and are in no count (the numba packing kernels and the Triton kernel among them).

The score of a package is killed / (checked mutants - equivalent - message - CUDA only), where killed
includes timeouts (a mutant whose properties need more than twice their CPU time, plus 2 s, is
stopped and counted caught: an endless loop, or a slowdown a benchmark would flag), and
survivors that no property reaches count against it. Counted apart:
- message: survivors that change only text for a person: the wording of an error (a string
  inside a raise statement, or the argument name handed to an input check or named in a
  `for name, x in (("x", x), ...)` loop, which only the messages use), printed progress, and
  command-line help. The properties check that bad input raises the right exception naming
  the argument, not the wording. Found by comparing the syntax trees of original and mutant
  with such strings blanked.
- equivalent: recorded in properties/mutation_equivalents.toml with the reason, or equivalent
  by rule (zip's strict default, astype(None) = astype(float)), found on the syntax tree.
- CUDA only: survivors in code that runs only with a GPU (recorded in the same file).
Any other survivor is a weakness of the properties; the report lists each with its diff.
"""

import argparse
import ast
import difflib
import functools
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARDS = ROOT / ".mutation"
EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.toml")
AIM = 0.90

# package -> (what to mutate, what not to, the properties that check it)
PACKAGES = {
    "core": (
        ["impl/*.py"],
        ["impl/*/*"],
        [
            "test_ode.py",
            "test_rl_approximation_*.py",
            "test_training_checkpoint*.py",
            "test_attention_memory_io.py",
            "test_diffusion_sde.py",  # the likelihood along the ODE (solve_with_divergence)
            "test_flows_cnf.py",
            "test_impl_helpers.py",
        ],
    ),
    "rl": (["impl/rl/*"], [], ["test_rl_*.py"]),
    "diffusion": (
        ["impl/diffusion/*"],
        ["impl/diffusion/latent/*"],
        ["test_diffusion_*.py", "test_sd_fulltext_guidance.py"],  # thresholding.py: SD-13, SD-18
    ),
    "latent": (["impl/diffusion/latent/*"], [], ["test_sd_*.py"]),
    "flows": (["impl/flows/*"], [], ["test_flows_*.py"]),
    "attention": (["impl/attention/*"], [], ["test_attention_*.py"]),
    "training": (["impl/training/*"], [], ["test_training_*.py"]),
}
KILLED = {"killed", "timeout", "caught by type check"}


def _toml_list(items):
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(package):
    """.mutation/PACKAGE/ with links to impl/ and properties/ and a mutmut configuration."""
    mutate, exclude, tests = PACKAGES[package]
    shard = SHARDS / package
    shard.mkdir(parents=True, exist_ok=True)
    for name in ("impl", "properties"):
        link = shard / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name, target_is_directory=True)
    selection = sorted(
        {str(p.relative_to(ROOT)) for t in tests for p in ROOT.glob(f"properties/{t}")}
    )
    (shard / "pyproject.toml").write_text(
        "# written by properties/mutation.py: one shard of the mutation run\n"
        "[tool.mutmut]\n"
        'source_paths = ["impl"]\n'
        f"only_mutate = {_toml_list(mutate)}\n"
        f"do_not_mutate = {_toml_list(exclude)}\n"
        'also_copy = ["properties"]\n'
        f"pytest_add_cli_args_test_selection = {_toml_list(selection)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        # a mutant may make a loop run forever: stop it (and count it caught) at 2 x (its
        # properties' time + 1 s) of CPU; mutmut's default, 30 x, spends most of a run waiting
        "timeout_multiplier = 1.0\n",
        encoding="utf-8",
    )
    return shard


def refresh_stats(shard):
    """Drop mutmut's map from functions to the properties that reach them when a property file
    changed after it was made: mutmut adds only new test names to it, so a property that starts
    calling a function would otherwise never run against that function's mutants (found with
    first_visit_values, whose mutants survived a property that kills them). mutmut then traces
    the shard's properties once more before it checks mutants; their results are kept."""
    stats = shard / "mutants" / "mutmut-stats.json"
    if stats.exists():
        made = stats.stat().st_mtime
        if any(p.stat().st_mtime > made for p in (ROOT / "properties").rglob("*.py")):
            stats.unlink()


def run(package, max_children, mutants=(), budget=None):
    """mutmut run in the package's shard: the mutants not yet checked, or exactly `mutants`.

    With `budget` (seconds), mutmut is interrupted after that long; what it checked is kept
    (mutmut records each result as it comes) and the next run goes on from there."""
    shard = prepare(package)
    refresh_stats(shard)
    log = shard / "mutmut.log"
    # one thread per worker: mutmut's time limit is CPU time, which a multi-threaded torch
    # would spend twice as fast as the wall-clock time its estimate is measured in
    threads = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
    env = dict(os.environ, HYPOTHESIS_PROFILE="mutation", MPLBACKEND="Agg", **threads)
    started = time.time()
    print(f"[{package}] mutmut run (log: {log.relative_to(ROOT)})", flush=True)
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, *mutants], cwd=shard, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            code = process.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # mutmut stops its workers and keeps the results
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            subprocess.run(["pkill", "-9", "-f", "mutmut: impl[.]"], check=False)  # stray workers
            print(f"[{package}] stopped after its budget of {budget:.0f} s", flush=True)
            return
    print(f"[{package}] finished in {time.time() - started:.0f} s (exit {code})", flush=True)
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"mutmut failed for {package} (exit {code}):\n{tail}")


def timeouts(package):
    """The mutants of a package that mutmut stopped at its time limit."""
    from mutmut.stats import status_by_exit_code

    names = []
    for meta in (SHARDS / package / "mutants" / "impl").rglob("*.py.meta"):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        names += [n for n, c in codes.items() if status_by_exit_code[c] == "timeout"]
    return sorted(names)


def package_of(mutant):
    """The shard a mutant name (impl.<package>.<module>.<function>__mutmut_<n>) belongs to."""
    parts = mutant.split(".")
    if parts[1:3] == ["diffusion", "latent"]:
        return "latent"
    return parts[1] if parts[1] in PACKAGES else "core"


def equivalents():
    """{mutant: reason} of the survivors recorded in mutation_equivalents.toml: equivalent ones
    ([[equivalent]]) and, marked "CUDA only: ", those in code that runs only with a GPU
    ([[cuda_only]]), which no property can reach on a CPU machine."""
    data = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))
    known = {e["mutant"]: e["reason"] for e in data.get("equivalent", [])}
    known |= {e["mutant"]: "CUDA only: " + e["reason"] for e in data.get("cuda_only", [])}
    return known


@functools.cache
def message_helpers(root=ROOT / "impl"):
    """Names of impl's input checks: the functions whose first parameter is `name`, the argument
    name they put in their error messages and use for nothing else (impl's convention)."""
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                params = [a.arg for a in node.args.args]
                if params[:1] == ["self"]:  # a method: its first argument after self
                    params = params[1:]
                if params[:1] == ["name"]:
                    found.add(node.name)
    return found


class _BlankMessages(ast.NodeTransformer):
    """Blank the strings (and None) that only reach a message for a person: the arguments of
    the exception in a raise statement, the name handed to an input check (also through a loop
    `for name, x in (("x", x), ...)`, impl's convention), the text given to print or to a
    progress callback `log`, and argparse's description= and help= texts."""

    TEXT_SINKS = {"print", "log"}
    TEXT_KEYWORDS = {"description", "help"}

    BLANK = ast.Constant("<message>")

    def __init__(self, helpers):
        self.helpers = helpers

    def _text(self, node):
        is_text = isinstance(node, ast.JoinedStr) or (
            isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str))
        )
        return self.BLANK if is_text else node

    def visit_Raise(self, node):
        for call in ast.walk(node):
            if isinstance(call, ast.Call):
                call.args = [self._text(a) for a in call.args]
        return node

    def visit_For(self, node):
        target = node.target
        named = isinstance(target, ast.Tuple) and target.elts[:1]
        if named and isinstance(named[0], ast.Name) and named[0].id == "name":
            if isinstance(node.iter, ast.Tuple | ast.List):
                for pair in node.iter.elts:
                    if isinstance(pair, ast.Tuple) and pair.elts:
                        pair.elts[0] = self._text(pair.elts[0])
        self.generic_visit(node)
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        callee = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
        if callee in self.helpers and node.args:
            node.args[0] = self._text(node.args[0])
        if callee in self.TEXT_SINKS:
            node.args = [self._text(a) for a in node.args]
        for k in node.keywords:
            if k.arg in self.TEXT_KEYWORDS:
                k.value = self._text(k.value)
        return node


_functions = {}


def _function(mutated_file, name):
    if mutated_file not in _functions:
        tree = ast.parse(mutated_file.read_text(encoding="utf-8"))
        _functions[mutated_file] = {
            n.name: n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
    return _functions[mutated_file].get(name)


def _pair(mutated_file, name):
    """(original, mutant) function of mutant `name`, both named after the original, or None."""
    generated = name.rpartition(".")[-1]
    mangled = generated.rpartition("__mutmut_")[0]
    found = (_function(mutated_file, mangled + "__mutmut_orig"), _function(mutated_file, generated))
    if None in found:
        return None
    out = []
    for node in found:
        node = ast.parse(ast.unparse(node)).body[0]
        node.name = mangled.rpartition("ǁ")[-1].removeprefix("x_")
        out.append(node)
    return out


def message_only(mutated_file, name):
    """Whether mutant `name` differs from its original only in error-message text."""
    pair = _pair(mutated_file, name)
    if pair is None:
        return False
    helpers = message_helpers()
    original, mutant = (ast.dump(_BlankMessages(helpers).visit(node)) for node in pair)
    return original == mutant


class _Canonical(ast.NodeTransformer):
    """Spell language and numpy facts one way: zip(..., strict=False) and strict=None are zip's
    default; ndarray.astype(None) is astype(float), i.e. float64."""

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Name) and f.id == "zip":
            node.keywords = [
                k
                for k in node.keywords
                if not (
                    k.arg == "strict" and isinstance(k.value, ast.Constant) and not k.value.value
                )
            ]
        if isinstance(f, ast.Attribute) and f.attr == "astype" and len(node.args) == 1:
            arg = node.args[0]
            if (isinstance(arg, ast.Constant) and arg.value is None) or (
                isinstance(arg, ast.Name) and arg.id == "float"
            ):
                node.args = [ast.Constant("float64")]
        return node


CANONICAL = (
    "equivalent by rule: zip's strict=False, strict=None and no strict are the same, and "
    "ndarray.astype(None) is astype(float)"
)


def canonically_equal(mutated_file, name):
    """Whether mutant `name` is its original spelt another way (_Canonical's rules)."""
    pair = _pair(mutated_file, name)
    if pair is None:
        return False
    original, mutant = (ast.dump(_Canonical().visit(node)) for node in pair)
    return original == mutant


def diff(mutated_file, name):
    """The mutation as a unified diff of the function (as ast.unparse writes it)."""
    pair = _pair(mutated_file, name)
    if pair is None:
        return "(source not found)"
    a, b = (ast.unparse(node).splitlines() for node in pair)
    return "\n".join(list(difflib.unified_diff(a, b, lineterm="", n=1))[2:])


def summarise(package, known):
    """Counts and survivors of one shard, from mutmut's result files."""
    from mutmut.stats import status_by_exit_code

    shard = SHARDS / package
    metas = sorted((shard / "mutants" / "impl").rglob("*.py.meta"))
    counts = dict.fromkeys(["total", "killed", "equivalent", "message", "survived", "no_tests"], 0)
    counts |= {"cuda_only": 0, "other": 0, "not_checked": 0}
    survivors = {}
    for meta in metas:
        source = meta.with_suffix("")  # .../mutants/impl/x.py
        module = str(source.relative_to(shard / "mutants"))
        data = json.loads(meta.read_text())
        for name, code in sorted(data["exit_code_by_key"].items()):
            status = status_by_exit_code[code]
            counts["total"] += 1
            if status in KILLED:
                kind = "killed"
            elif status == "not checked":
                kind = "not_checked"
            elif status == "survived" and name not in known and canonically_equal(source, name):
                known[name] = CANONICAL
                kind = "equivalent"
            elif status == "survived" and known.get(name, "").startswith("CUDA only: "):
                kind = "cuda_only"
            elif status == "survived" and name in known:
                kind = "equivalent"
            elif status == "survived" and message_only(source, name):
                kind = "message"
            elif status in ("survived", "no tests"):
                kind = status.replace(" ", "_")
            else:  # suspicious, segfault, skipped, interrupted
                kind = "other"
            counts[kind] += 1
            if kind in ("equivalent", "cuda_only", "survived", "no_tests", "other"):
                entry = {"name": name, "status": status, "diff": diff(source, name)}
                if name in known:
                    entry["equivalent"] = known[name]
                survivors.setdefault(module, []).append(entry)
    apart = counts["equivalent"] + counts["message"] + counts["cuda_only"]
    checked = counts["total"] - counts["not_checked"] - apart
    counts["score"] = counts["killed"] / checked if checked else 0.0
    return counts, survivors


def report(out, packages):
    """Merge the shards' results into OUT/mutation.json (a package not run keeps its old entry)."""
    known = equivalents()
    path = out / "mutation.json"
    old = json.loads(path.read_text()) if path.exists() else {"packages": {}, "survivors": {}}
    result = {"packages": dict(old["packages"]), "survivors": dict(old["survivors"])}
    for package in packages:
        if not (SHARDS / package / "mutants").exists():
            continue
        counts, survivors = summarise(package, known)
        counts["when"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        result["packages"][package] = counts
        result["survivors"][package] = survivors
    seen = {
        m["name"] for modules in result["survivors"].values() for ms in modules.values() for m in ms
    }
    result["stale_equivalents"] = sorted(set(known) - seen)
    result["aim"] = AIM
    result["note"] = (
        "mutmut 3 over impl/, one shard per package (python -m properties.mutation run); "
        "score = killed / (checked mutants - equivalent - message - CUDA only); timeouts "
        "(over 2 x the properties' CPU time) count as killed, mutants "
        "that no property reaches count against the score; 'message' mutants change only the "
        f"wording of an error message. Aim: {AIM:.0%} in every package."
    )
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def merge(results):
    """One mutation.json of several (mutation shards, e.g. one CI job per package; `python -m
    properties.audit merge`): each package as its latest run left it; an equivalent is stale
    when no shard that gave a package saw it survive (each shard's list also holds those of the
    packages it did not run)."""
    latest = {}
    for result in results:
        for package, counts in result["packages"].items():
            if (
                package not in latest
                or counts["when"] > latest[package]["packages"][package]["when"]
            ):
                latest[package] = result
    order = sorted(
        latest, key=lambda p: list(PACKAGES).index(p) if p in PACKAGES else len(PACKAGES)
    )
    used = [r for r in results if any(latest[p] is r for p in order)]
    return {
        "packages": {p: latest[p]["packages"][p] for p in order},
        "survivors": {p: latest[p]["survivors"].get(p, {}) for p in order},
        "stale_equivalents": sorted(set.intersection(*(set(r["stale_equivalents"]) for r in used))),
        "aim": AIM,
        "note": results[0]["note"],
    }


COLUMNS = [
    "total",
    "killed",
    "equivalent",
    "message",
    "cuda_only",
    "survived",
    "no_tests",
    "not_checked",
]


def print_summary(result):
    print(
        f"{'package':<10}"
        + "".join(f"{c.replace('_', ' '):>12}" for c in COLUMNS)
        + f"{'score':>8}"
    )
    for package, p in result["packages"].items():
        flag = "" if p["score"] >= AIM and not p["not_checked"] else "  below the aim or incomplete"
        cells = "".join(f"{p.get(c, 0):>12}" for c in COLUMNS)
        print(f"{package:<10}{cells}{p['score']:>8.1%}{flag}")
    if result["stale_equivalents"]:
        print(
            "recorded as equivalent but no longer surviving:",
            ", ".join(result["stale_equivalents"]),
        )


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m properties.mutation", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "command",
        choices=["run", "rerun", "report"],
        help="run: the mutants not checked yet; rerun: the survivors again (after strengthening "
        "a property); report: summarise into OUT/mutation.json",
    )
    parser.add_argument(
        "packages", nargs="*", metavar="PACKAGE", help=f"of {', '.join(PACKAGES)} (default: all)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("report"), help="report folder (default: report)"
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--timeouts", action="store_true", help="rerun: also the mutants that timed out"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop each package's run after this long (the next run goes on where it stopped)",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.packages) - set(PACKAGES))
    if unknown:
        parser.error(f"unknown package(s) {unknown}; choose from {list(PACKAGES)}")
    packages = args.packages or list(PACKAGES)
    failed = []
    if args.command == "run":
        for package in packages:
            try:
                run(package, args.max_children, budget=args.budget)
            except RuntimeError as e:  # go on with the other packages, report at the end
                print(e, file=sys.stderr)
                failed.append(package)
    if args.command == "rerun":
        known = equivalents()
        for package in packages:
            if (SHARDS / package / "mutants").exists():
                _, survivors = summarise(package, known)
                names = [
                    m["name"] for ms in survivors.values() for m in ms if "equivalent" not in m
                ]
                if names:
                    run(package, args.max_children, names, budget=args.budget)
    print_summary(report(args.out, packages))
    if failed:
        print(f"mutmut failed for {', '.join(failed)} (see .mutation/PACKAGE/mutmut.log)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
