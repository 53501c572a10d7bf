"""Implementations under test.

A *family* is the set of functions that one topic's properties call (for example `sa`,
stochastic approximation; see sa.py for its interface). An *adapter* is any object with those
functions. Every property receives its family's adapter from a fixture of the same name, so the
same properties audit another implementation when it is selected:

    pytest --target sa=off-by-one-mean            # an adapter registered in ADAPTERS
    pytest --target sa=mypackage.adapters:Mine    # any importable object
    python -m properties.audit --target sa=...    # the same, for the audit report

Without --target each family runs against the project's reference implementation (impl/).

A family module also lists its PEERS: the adapters of libraries people use (registered in its
ADAPTERS under the same name), each with the claims it is audited on and the claims it cannot be
asked (and why). `python -m properties.peers` audits every peer and writes the peer matrix.
"""

import functools
import importlib
from dataclasses import dataclass, field

FAMILIES = {
    "sa": "properties.adapters.sa",
    "rl": "properties.adapters.rl",
    "diffusion": "properties.adapters.diffusion",
    "attention": "properties.adapters.attention",
    "sde": "properties.adapters.sde",
    "flows": "properties.adapters.flows",
    "training": "properties.adapters.training",
    "latent": "properties.adapters.latent",
}


@dataclass(frozen=True)
class Peer:
    """A library's adapter in the peer matrix.

    library: its distribution name (the matrix reads its version with importlib.metadata);
    claims: the claim ids or globs its adapter is audited on (python -m properties.audit --target
    FAMILY=NAME --claims ...); not_asked: {claim id: why the library cannot be asked it}."""

    library: str
    claims: tuple
    not_asked: dict = field(default_factory=dict)


def parse(specs):
    """['family=adapter', ...] -> {family: adapter spec}; ValueError on malformed input."""
    targets = {}
    for spec in specs:
        family, sep, name = spec.partition("=")
        if not sep or not name:
            raise ValueError(f"--target: expected FAMILY=ADAPTER, got {spec!r}")
        if family not in FAMILIES:
            raise ValueError(f"--target: unknown family {family!r}; known: {sorted(FAMILIES)}")
        targets[family] = name
    return targets


def resolve(family, name="reference"):
    """The adapter object `name` of `family`: a registered name or 'module:attribute'."""
    module = importlib.import_module(FAMILIES[family])
    if name in module.ADAPTERS:
        return module.ADAPTERS[name]
    if ":" in name:
        path, attr = name.split(":", 1)
        return getattr(importlib.import_module(path), attr)
    raise ValueError(
        f"--target: {family} has no adapter {name!r}; registered: {sorted(module.ADAPTERS)}"
    )


def late(module, name):
    """A static method calling module.name as it is at call time (a rejected variant's patch of
    impl/ reaches the adapter), carrying impl's name and module (functools.wraps), by which
    test_meta_peers finds a property that calls it around its family. module: a module or its
    dotted name."""
    if isinstance(module, str):
        module = importlib.import_module(module)

    @functools.wraps(getattr(module, name))
    def call(*args, **kwargs):
        return getattr(module, name)(*args, **kwargs)

    return staticmethod(call)
