"""Running a first-order recursion and keeping chosen iterates (shared by impl/ modules)."""

import numpy as np

from impl import _checks


def iterate(step, x1, n, keep=None):
    """x_1 = x1 and x_{k+1} = step(x_k, k) for k = 1..n.

    Returns x_k for k in `keep` (1-based indices in [1, n + 1], default all), stacked along
    axis 0, so that long runs need not store every iterate.
    """
    keep = _checks.keep_indices("keep", keep, n + 1)
    x = np.asarray(x1, dtype=float)
    out = np.empty((keep.size, *x.shape))
    slot = {int(k): i for i, k in enumerate(keep)}
    if 1 in slot:
        out[slot[1]] = x
    for k in range(1, n + 1):
        x = step(x, k)
        if k + 1 in slot:
            out[slot[k + 1]] = x
    return out
