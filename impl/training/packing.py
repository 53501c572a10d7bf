"""Packing variable-length samples into sequences of at most C tokens (seed article 4).

A packer takes sample lengths L_1..L_n (integers >= 0) and a capacity C (packing_length) and
returns pack_of, the pack of every sample (packs numbered 0, 1, ... in the order they are
opened; -1 for a sample filtered out). Every pack's lengths sum to at most C; a sample longer
than C forms a pack of its own (oversize="alone") or is dropped (oversize="filter").

next_fit          the engine's in-order buffer (lmms-engine calls it "first_fit"): append the next
                  sample while it fits, else close the pack and open a new one.
window(W)         the same buffer, but when the next sample does not fit, the first of the W
                  pending samples after it that fits is appended instead; the pack is closed only
                  when none of them fits.
first_fit_decreasing (FFD)   longest first; each sample goes to the oldest pack with room.
                  FFD(I) <= 11/9 OPT(I) + 6/9 packs (Dosa 2007).
best_fit_decreasing (BFD)    longest first; each sample goes to the fullest pack with room.

Efficiency = sum of lengths / (packs x C); no packer beats ceil(sum of lengths / C) packs.
The loops are compiled with numba (a segment tree over the packs' free space for FFD, buckets by
free space for BFD: O(n log n)), which packs millions of samples per second.
"""

import numpy as np
from numba import njit

from impl._checks import positive_int

OVERSIZE = ("alone", "filter")


def next_fit(lengths, capacity, oversize="alone"):
    lengths, capacity = _check(lengths, capacity, oversize)
    return _next_fit(lengths, capacity, oversize == "filter")


def window(lengths, capacity, W, oversize="alone"):
    lengths, capacity = _check(lengths, capacity, oversize)
    if isinstance(W, bool) or not isinstance(W, (int, np.integer)) or W < 0:
        raise ValueError(f"W: must be an integer >= 0, got {W!r}")
    return _window(lengths, capacity, int(W), oversize == "filter")


def first_fit_decreasing(lengths, capacity, oversize="alone"):
    lengths, capacity = _check(lengths, capacity, oversize)
    return _first_fit(_decreasing(lengths, capacity), lengths, capacity, oversize == "filter")


def best_fit_decreasing(lengths, capacity, oversize="alone"):
    lengths, capacity = _check(lengths, capacity, oversize)
    return _best_fit(_decreasing(lengths, capacity), lengths, capacity, oversize == "filter")


PACKERS = {
    "next_fit": next_fit,
    "first_fit_decreasing": first_fit_decreasing,
    "best_fit_decreasing": best_fit_decreasing,
}


def packs(pack_of):
    """pack_of -> list of packs, each the list of its sample indices in increasing order."""
    pack_of = np.asarray(pack_of)
    kept = np.flatnonzero(pack_of >= 0)
    order = kept[np.argsort(pack_of[kept], kind="stable")]
    bounds = np.flatnonzero(np.diff(pack_of[order])) + 1
    return [part.tolist() for part in np.split(order, bounds)] if order.size else []


def pack_lengths(lengths, pack_of):
    """Tokens in each pack."""
    pack_of = np.asarray(pack_of)
    kept = pack_of >= 0
    return np.bincount(pack_of[kept], weights=np.asarray(lengths)[kept]).astype(np.int64)


def efficiency(lengths, pack_of, capacity):
    """Real tokens / (packs x capacity)."""
    sizes = pack_lengths(lengths, pack_of)
    return float(sizes.sum() / (len(sizes) * capacity)) if len(sizes) else 1.0


def lower_bound(lengths, capacity):
    """ceil(sum of lengths / C): no packing uses fewer packs (samples longer than C excluded)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return int(-(-lengths[lengths <= capacity].sum() // capacity))


@njit(cache=True)
def _next_fit(lengths, capacity, drop):
    pack_of = np.full(len(lengths), -1, np.int64)
    pack, used = -1, capacity + 1  # no open pack
    for i in range(len(lengths)):
        L = lengths[i]
        if L > capacity:
            if not drop:
                pack += 1
                pack_of[i] = pack
                used = capacity + 1  # the over-long sample's pack is closed
            continue
        if used + L > capacity:
            pack += 1
            used = 0
        pack_of[i] = pack
        used += L
    return pack_of


@njit(cache=True)
def _window(lengths, capacity, W, drop):
    n = len(lengths)
    pack_of = np.full(n, -1, np.int64)
    nxt = np.arange(1, n + 1)  # doubly linked list of the pending samples
    prev = np.arange(-1, n - 1)
    head, pack, used = 0, -1, capacity + 1  # no open pack
    while head < n:
        i, chosen = head, -1
        for _ in range(W + 1):  # the head and the W pending samples after it
            if i >= n:
                break
            if lengths[i] <= capacity and used + lengths[i] <= capacity:
                chosen = i
                break
            i = nxt[i]
        if chosen >= 0:
            pack_of[chosen] = pack
            used += lengths[chosen]
        else:  # nothing fits: the head opens a new pack (alone, or dropped, if over-long)
            chosen = head
            if lengths[chosen] <= capacity:
                pack += 1
                pack_of[chosen] = pack
                used = lengths[chosen]
            elif not drop:
                pack += 1
                pack_of[chosen] = pack
                used = capacity + 1
        if prev[chosen] >= 0:
            nxt[prev[chosen]] = nxt[chosen]
        if nxt[chosen] < n:
            prev[nxt[chosen]] = prev[chosen]
        if chosen == head:
            head = nxt[chosen]
    return pack_of


@njit(cache=True)
def _decreasing(lengths, capacity):
    """Sample indices by decreasing length, ties in index order (a counting sort, O(n + C));
    over-long samples first, in index order."""
    count = np.zeros(capacity + 2, np.int64)
    for L in lengths:
        count[min(L, capacity + 1)] += 1
    start = np.zeros(capacity + 2, np.int64)
    for key in range(capacity, -1, -1):  # keys C + 1, C, ..., 0 laid out in that order
        start[key] = start[key + 1] + count[key + 1] if key + 1 <= capacity + 1 else 0
    order = np.empty(len(lengths), np.int64)
    for i in range(len(lengths)):
        key = min(lengths[i], capacity + 1)
        order[start[key]] = i
        start[key] += 1
    return order


@njit(cache=True)
def _first_fit(order, lengths, capacity, drop):
    """Leaves of a max segment tree hold the free space of packs 0..n-1 (unopened ones: C), so
    the leftmost leaf with free space >= L is the oldest open pack with room, or the next new one.
    Samples of equal length come in runs; the pack found takes floor(free / L) of them at once
    (after each, it is still the oldest pack with room while free >= L): exactly FFD."""
    n = len(order)
    # an upper bound on the packs: all but one are more than half full (any-fit), plus one per
    # over-long sample
    total, oversize = 0, 0
    for L in lengths:
        if L > capacity:
            oversize += 1
        else:
            total += L
    leaves = min(n, 2 * (total // capacity + 1) + oversize)
    size = 1
    while size < max(leaves, 1):
        size *= 2
    tree = np.full(2 * size, -1, np.int64)
    tree[size : size + leaves] = capacity
    for node in range(size - 1, 0, -1):
        tree[node] = max(tree[2 * node], tree[2 * node + 1])
    pack_of = np.full(n, -1, np.int64)
    n_packs, i = 0, 0
    while i < n:
        L = lengths[order[i]]
        if L > capacity:
            if not drop:  # a pack of its own, closed (free -1: not even an empty sample joins)
                pack_of[order[i]] = n_packs
                _set_max(tree, size + n_packs, -1)
                n_packs += 1
            i += 1
            continue
        node = 1
        while node < size:
            node = 2 * node if tree[2 * node] >= L else 2 * node + 1
        pack = node - size
        take = tree[node] // L if L > 0 else n
        while take > 0 and i < n and lengths[order[i]] == L:
            pack_of[order[i]] = pack
            i += 1
            take -= 1
        n_packs = max(n_packs, pack + 1)
        used = L * (tree[node] // L - take) if L > 0 else 0
        _set_max(tree, node, tree[node] - used)
    return pack_of


@njit(cache=True)
def _set_max(tree, node, value):
    tree[node] = value
    node //= 2
    while node:
        tree[node] = max(tree[2 * node], tree[2 * node + 1])
        node //= 2


@njit(cache=True)
def _best_fit(order, lengths, capacity, drop):
    """Open packs in buckets by free space r (linked lists); a count tree over r finds the
    smallest r >= L with a pack, O(log C). As in FFD a run of equal lengths fills the pack found
    with floor(r / L) samples at once (it stays the best fit while its free space is >= L)."""
    n = len(order)
    size = 1
    while size < capacity + 1:
        size *= 2
    count = np.zeros(2 * size, np.int64)  # packs per free space r, summed up the tree
    head = np.full(capacity + 1, -1, np.int64)  # bucket r: a stack of packs
    below = np.full(n, -1, np.int64)
    free = np.zeros(n, np.int64)
    pack_of = np.full(n, -1, np.int64)
    n_packs, i = 0, 0
    while i < n:
        L = lengths[order[i]]
        if L > capacity:
            if not drop:
                pack_of[order[i]] = n_packs
                n_packs += 1
            i += 1
            continue
        r = _smallest_at_least(count, size, L, capacity)
        if r < 0:  # no open pack has room: open one
            pack = n_packs
            n_packs += 1
            free[pack] = capacity
        else:  # pop the pack on top of bucket r
            pack = head[r]
            head[r] = below[pack]
            _add(count, size, r, -1)
        while i < n and lengths[order[i]] == L and free[pack] >= L:
            pack_of[order[i]] = pack
            free[pack] -= L
            i += 1
            if L == 0:
                while i < n and lengths[order[i]] == 0:
                    pack_of[order[i]] = pack
                    i += 1
        r = free[pack]
        below[pack] = head[r]
        head[r] = pack
        _add(count, size, r, 1)
    return pack_of


@njit(cache=True)
def _add(count, size, r, delta):
    node = size + r
    while node:
        count[node] += delta
        node //= 2


@njit(cache=True)
def _smallest_at_least(count, size, L, capacity):
    """Smallest r in [L, capacity] with count > 0, or -1: walk up from leaf L, then down."""
    node = size + L
    if count[node] > 0:
        return L
    while node > 1:  # climb until a right sibling holds a pack at r > L
        if node % 2 == 0 and count[node + 1] > 0:
            node += 1
            break
        node //= 2
    if node == 1:
        return -1
    while node < size:
        node = 2 * node if count[2 * node] > 0 else 2 * node + 1
    r = node - size
    return r if r <= capacity else -1


def _check(lengths, capacity, oversize):
    capacity = positive_int("capacity", capacity)
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or (lengths.size and lengths.dtype.kind not in "iu"):
        raise ValueError("lengths: expected a 1-D sequence of integers")
    if lengths.size and lengths.min() < 0:
        raise ValueError(f"lengths: must be >= 0, got {int(lengths.min())}")
    if oversize not in OVERSIZE:
        raise ValueError(f"oversize: expected one of {OVERSIZE}, got {oversize!r}")
    return lengths.astype(np.int64), capacity
