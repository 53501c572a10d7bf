"""Which impl/ code a claim's property reaches around its family (test_meta_peers checks none).

A property is a function marked @claim(...) in properties/test_*.py. With the local helpers it
uses (module functions and classes it names, the fixtures it takes, and functions it imports from
other properties modules, followed transitively) it may name impl/ code in three ways only:
- through its family's fixture (`rl.returns(...)`): then `--target` reaches it;
- as a *tool*: impl code that is not an algorithm a family wraps (a model or data it builds, an
  exact oracle, a schedule it feeds in), declared in its family module's TOOLS,
  {dotted impl name or module: why};
- as the *reference* the code under test is compared with: the test module's REFERENCE_CALLS,
  {property name: why}, lets that property name anything in impl/.
A name a family's Reference adapter wraps (interface(): by functools.wraps identity, or by the
impl names its method body calls) is never a tool.
"""

import ast
import importlib
import inspect
import sys
import textwrap
import types
from pathlib import Path

from properties import adapters

ROOT = Path(__file__).resolve().parent.parent


def _impl_names_in(fn):
    """Dotted impl names that the body of function `fn` names (module attribute chains resolved
    through fn's globals, e.g. `tiled.attention` -> impl.attention.tiled.attention)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError):
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            base = fn.__globals__.get(node.value.id)
            if isinstance(base, types.ModuleType) and base.__name__.startswith("impl."):
                found.add(f"{base.__name__}.{node.attr}")
        elif isinstance(node, ast.Name):
            obj = fn.__globals__.get(node.id)
            module = getattr(obj, "__module__", None) or ""
            if callable(obj) and module.startswith("impl."):
                found.add(f"{module}.{obj.__name__}")
    return found


def interface(family):
    """{dotted impl name: 'family.function'} of what the family's Reference adapter wraps."""
    reference = importlib.import_module(adapters.FAMILIES[family]).ADAPTERS["reference"]
    found = {}
    for name in dir(reference):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(reference, name)
        fn = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
        module = getattr(fn, "__module__", None) or ""
        if not callable(fn):
            continue
        if module.startswith("impl."):  # impl's own function, or late(...) carrying its identity
            found[f"{module}.{fn.__name__}"] = f"{family}.{name}"
        else:
            for dotted in _impl_names_in(fn):
                found.setdefault(dotted, f"{family}.{name}")
    return found


def tools():
    """{dotted impl name or module: why} over every family's TOOLS."""
    found = {}
    for family, path in adapters.FAMILIES.items():
        for name, why in getattr(importlib.import_module(path), "TOOLS", {}).items():
            found[name] = why
    return found


def _covered(dotted, table):
    """The key of `table` that is `dotted` or one of its dotted prefixes, or None."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in table:
            return key
    return None


class _Module:
    """A parsed properties module: its impl imports, its functions and classes, its properties."""

    def __init__(self, path):
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.impl, self.local_imports = {}, {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    target = f"{node.module}.{a.name}"
                    if node.module == "impl" or node.module.startswith("impl."):
                        self.impl[a.asname or a.name] = target
                    elif node.module.startswith("properties") and ".adapters" not in node.module:
                        self.local_imports[a.asname or a.name] = (node.module, a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "impl" or a.name.startswith("impl."):
                        self.impl[a.asname or a.name.split(".")[0]] = a.asname and a.name or "impl"
        self.defs = {
            n.name: n for n in self.tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
        }
        self.claims = [
            n
            for n in self.defs.values()
            if isinstance(n, ast.FunctionDef)
            and any("claim" in ast.unparse(d) for d in n.decorator_list)
        ]
        self.reference_calls = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "REFERENCE_CALLS" for t in node.targets
            ):
                self.reference_calls = ast.literal_eval(node.value)

    def impl_name(self, node):
        """The dotted impl name an ast Name / Attribute chain denotes here, or None."""
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.impl:
            return None
        return ".".join([self.impl[node.id], *reversed(chain)])


_MODULES = {}


def _module(path):
    if path not in _MODULES:
        _MODULES[path] = _Module(path)
    return _MODULES[path]


def _reached(module, claim):
    """[(module, def node)] of the property and every local helper it reaches."""
    todo = [(module, claim)]
    todo += [(module, module.defs[a.arg]) for a in claim.args.args if a.arg in module.defs]
    seen, out = set(), []
    while todo:
        mod, node = todo.pop()
        if (mod.path, node.name) in seen:
            continue
        seen.add((mod.path, node.name))
        out.append((mod, node))
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Name):
                continue
            if sub.id in mod.defs and sub.id != node.name:
                todo.append((mod, mod.defs[sub.id]))
            elif sub.id in mod.local_imports:
                name, attr = mod.local_imports[sub.id]
                path = ROOT / (name.replace(".", "/") + ".py")
                if path.exists() and attr in _module(path).defs:
                    todo.append((_module(path), _module(path).defs[attr]))
    return out


def violations(path, wrapped, declared):
    """['file::property: ...'] for each impl name a property of test file `path` reaches around
    its family: a wrapped one (wrapped: {dotted: 'family.fn'}) outside REFERENCE_CALLS, or one
    that is neither wrapped nor a declared tool (declared: {dotted or module: why})."""
    module = _module(Path(path))
    bad = []
    for claim in module.claims:
        if claim.name in module.reference_calls:
            continue
        found = {}
        for mod, node in _reached(module, claim):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Attribute, ast.Name)):
                    dotted = mod.impl_name(sub)
                    if dotted:
                        found.setdefault(dotted, f"{mod.path.name}:{node.name}")
        reported = set()
        for dotted, where in sorted(found.items()):
            key = _covered(dotted, wrapped)
            if key and key not in reported:
                reported.add(key)
                bad.append(f"{module.path.name}::{claim.name}: {dotted} in {where} "
                           f"(call {wrapped[key]} through the fixture)")  # fmt: skip
            elif (
                not key
                and not _covered(dotted, declared)
                and not any(dotted.startswith(r + ".") for r in reported)
            ):
                if any(other.startswith(dotted + ".") for other in found):
                    continue  # a module named on the way to one of its functions
                reported.add(dotted)
                bad.append(f"{module.path.name}::{claim.name}: {dotted} in {where} is in no "
                           "family and no family's TOOLS")  # fmt: skip
    return bad


def wrapped():
    """{dotted impl name: 'family.fn'} over every family ('a.fn or b.fn' where two wrap it)."""
    found = {}
    for family in adapters.FAMILIES:
        for dotted, name in interface(family).items():
            found[dotted] = f"{found[dotted]} or {name}" if dotted in found else name
    return found


def all_violations():
    wrapped_names, declared = wrapped(), tools()
    bad = []
    for path in sorted(ROOT.glob("properties/test_*.py")):
        bad += violations(path, wrapped_names, declared)
    return bad


if __name__ == "__main__":
    found = all_violations()
    print("\n".join(found))
    print(f"{len(found)} property/name pairs around their families", file=sys.stderr)
