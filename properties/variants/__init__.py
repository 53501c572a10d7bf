"""Rejected variants: for every leaf claim, wrong implementations that its own properties reject.

A variant is a plausible bug or a tempting misreading of an article (a dropped factor, a swapped
coefficient, a missing rescale, an off-by-one, the wrong sign, a solver stopped early, a packer
that is really another packer), written once as a fault injection: a function that patches impl/
(or a family's reference adapter) through a pytest MonkeyPatch, kept in this package's module for
its article (variants/ddim.py, variants/rl.py, ...). It names the claims that must reject it:

    @variant("SDE-05.half", name="pf-ode-without-half", why="the PF-ODE drift f - g^2 score")
    def _(mp):
        mp.setattr(sde.SDE, "pf_drift", ...)

Rejected means: the claim's own properties (only those tagged with it), run with the patch
applied, give the claim a verdict (catalogue.leaf_verdict, crashes left out) other than its
expected one, and not `not checked` or `error`. A variant that only makes a property crash is not
rejected: the properties must see the wrong mathematics, not a TypeError. A leaf claim is
`guarded` when at least one variant is rejected by its properties, `unguarded` otherwise.

Run them with `python -m properties.variants` (properties/variants/__main__.py): one pytest
session parametrises every tagged property over the variants of its claims.
"""

import importlib
import pkgutil
from dataclasses import dataclass

REGISTRY = {}
_active = None


@dataclass(frozen=True)
class Variant:
    name: str
    claims: tuple
    why: str
    apply: object  # apply(mp: pytest.MonkeyPatch) -> None


def variant(*claims, name, why):
    """Register the decorated `apply(mp)` as the variant `name`, to be rejected by `claims`."""
    if not claims or not all(isinstance(c, str) for c in claims):
        raise TypeError(f"variant {name!r}: name the claim ids that must reject it")
    if not why:
        raise ValueError(f"variant {name!r}: say in `why` what the variant gets wrong")

    def register(apply):
        if name in REGISTRY:
            raise ValueError(f"variant {name!r} is registered twice")
        REGISTRY[name] = Variant(name, tuple(claims), why, apply)
        return apply

    return register


def load():
    """Import every variants module; {name: Variant}."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY


def of_claim(cid):
    """The variants that `cid`'s properties must reject."""
    return [v for v in load().values() if cid in v.claims]


def active():
    """The name of the variant applied right now, or None: key any cache that outlives a test
    on it, so that a variant never reads results computed by the clean code."""
    return _active


def set_active(name):
    global _active
    _active = name
