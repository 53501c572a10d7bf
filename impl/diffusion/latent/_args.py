"""Argument checks of the tiny latent diffusion model, on top of impl/_checks.py: every message
starts with the argument's name."""

import os

import torch

from impl import _checks


def sizes(name, v, n, multiple=1):
    """A tuple or list of `n` positive integers, each a multiple of `multiple`."""
    if not isinstance(v, (tuple, list)) or len(v) != n:
        raise TypeError(f"{name}: expected {n} positive integers, got {v!r:.60}")
    for k, c in enumerate(v):
        _checks.integer(f"{name}[{k}]", c, lo=1)
        if c % multiple:
            raise ValueError(f"{name}[{k}]: must be a multiple of {multiple}, got {c}")
    return tuple(int(c) for c in v)


def multiple(name, n, of, lo=1):
    """An integer >= lo that is a multiple of `of`."""
    n = _checks.integer(name, n, lo=lo)
    if n % of:
        raise ValueError(f"{name}: must be a multiple of {of}, got {n}")
    return n


def tensor(name, x, shape, dtype=None):
    """A finite floating tensor (_checks.tensor) of this shape (None: any size on that axis) and,
    if given, this dtype (a module's parameters' dtype)."""
    _checks.tensor(name, x, ndim=len(shape))
    if any(want is not None and got != want for got, want in zip(x.shape, shape, strict=True)):
        want = tuple("*" if s is None else s for s in shape)
        raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name}: dtype {x.dtype} does not match the module's {dtype}")
    return x


def dtype_of(module):
    return next(module.parameters()).dtype


def mask(name, m, shape):
    """None (no padding), or a bool key-padding mask of this shape (True on real tokens) with at
    least one real token per row: a query needs a key to attend to."""
    if m is None:
        return m
    if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
        raise TypeError(
            f"{name}: expected a bool tensor or None, got {getattr(m, 'dtype', m)!r:.60}"
        )
    if tuple(m.shape) != tuple(shape):
        raise ValueError(
            f"{name}: expected shape {tuple(shape)} (batch, tokens), got {tuple(m.shape)}"
        )
    if not m.any(dim=1).all():
        raise ValueError(f"{name}: a row without any True (real) token has nothing to attend to")
    return m


def float_dtype(name, d):
    if not isinstance(d, torch.dtype) or not d.is_floating_point:
        raise TypeError(f"{name}: expected a real floating torch dtype, got {d!r:.60}")
    return d


def path(name, p, *, existing):
    """A str or os.PathLike naming an existing file (existing=True) or a new file in an existing
    directory (existing=False)."""
    if not isinstance(p, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a str or os.PathLike path, got {type(p).__name__}")
    if existing and not os.path.isfile(p):
        raise ValueError(f"{name}: {p} is not a file")
    if not existing:
        if os.path.isdir(p):
            raise ValueError(f"{name}: {p} is a directory, not a file name")
        parent = os.path.dirname(os.fspath(p)) or "."
        if not os.path.isdir(parent):
            raise ValueError(f"{name}: the directory {parent} does not exist")
    return p


def seed(name, s):
    """torch.Generator().manual_seed accepts integers in [0, 2**64 - 1]."""
    return _checks.integer(name, s, lo=0, hi=2**64 - 1)
