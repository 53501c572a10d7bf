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
The loops are compiled with numba, O(n log n), and pack millions of samples per second: FFD a
segment tree over the packs' free space, fed by the histogram of lengths (the samples of one
length, equal and consecutive in FFD's order, fill the packs found for them together: the cost
goes with the runs of one length in one pack, not with the samples, as in Graphcore's histogram
packing), BFD two heaps of packs (or, when C <= n, buckets by free space, the same choices
faster). Memory is O(n) whatever the capacity (C may be 10**12): nothing
is indexed by a length or a free space unless C <= n.

Domains: lengths a 1-D sequence of integers >= 0; capacity an integer in [1, 2**62]; oversize
"alone" or "filter"; W an integer >= 0; pack_of a 1-D sequence of integers >= -1 numbering the
packs 0, 1, ..., P - 1 with none skipped (what the packers return), one entry per sample.
"""

import numpy as np
from numba import njit

from impl._checks import choice, positive_int

OVERSIZE = ("alone", "filter")
MAX_CAPACITY = 2**62  # C + 1 and sums of lengths up to C stay within int64


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
    values, counts, rank = _histogram(lengths, capacity)
    leaves = _max_packs(lengths, capacity)
    first, packs, taken = _first_fit(values, counts, capacity, oversize == "filter", leaves)
    return _deal(rank, first, packs, taken)


def best_fit_decreasing(lengths, capacity, oversize="alone"):
    lengths, capacity = _check(lengths, capacity, oversize)
    fit = _best_fit_buckets if capacity <= len(lengths) else _best_fit
    return fit(_decreasing(lengths, capacity), lengths, capacity, oversize == "filter")


PACKERS = {
    "next_fit": next_fit,
    "first_fit_decreasing": first_fit_decreasing,
    "best_fit_decreasing": best_fit_decreasing,
}


def packs(pack_of):
    """pack_of -> list of packs, each the list of its sample indices in increasing order."""
    pack_of = _pack_of(pack_of)
    kept = np.flatnonzero(pack_of >= 0)
    order = kept[np.argsort(pack_of[kept], kind="stable")]
    bounds = np.flatnonzero(np.diff(pack_of[order])) + 1
    return [part.tolist() for part in np.split(order, bounds)] if order.size else []


def pack_lengths(lengths, pack_of):
    """Tokens in each pack."""
    lengths, pack_of = _lengths(lengths), _pack_of(pack_of, len(lengths))
    kept = pack_of >= 0
    totals = np.zeros(int(pack_of.max(initial=-1)) + 1, np.int64)
    np.add.at(totals, pack_of[kept], lengths[kept])  # int64: exact (float weights are not)
    return totals


def efficiency(lengths, pack_of, capacity):
    """Real tokens / (packs x capacity)."""
    capacity = _capacity(capacity)
    sizes = pack_lengths(lengths, pack_of)
    return float(sizes.sum() / (len(sizes) * capacity)) if len(sizes) else 1.0


def lower_bound(lengths, capacity):
    """ceil(sum of lengths / C): no packing uses fewer packs (samples longer than C excluded)."""
    capacity, lengths = _capacity(capacity), _lengths(lengths)
    fits = lengths[lengths <= capacity]
    total = int((fits >> 31).sum()) * 2**31 + int((fits & (2**31 - 1)).sum())  # no overflow
    return -(-total // capacity)


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


def _decreasing(lengths, capacity):
    """Sample indices by decreasing length, ties in index order; over-long samples first, in
    index order. A counting sort (O(n + C)) when C <= n, else a stable sort (O(n log n)): the
    same order, in O(n) memory either way."""
    keys = np.minimum(lengths, capacity + 1)
    if capacity <= len(lengths):
        return _counting_order(keys, capacity + 1)
    return np.argsort(-keys, kind="stable")


@njit(cache=True)
def _counting_order(keys, top):
    """Indices by decreasing key in [0, top], ties in index order."""
    count = np.zeros(top + 2, np.int64)
    for key in keys:
        count[key] += 1
    start = np.zeros(top + 2, np.int64)  # keys top, top - 1, ..., 0 laid out in that order
    for key in range(top - 1, -1, -1):
        start[key] = start[key + 1] + count[key + 1]
    order = np.empty(len(keys), np.int64)
    for i in range(len(keys)):
        order[start[keys[i]]] = i
        start[keys[i]] += 1
    return order


@njit(cache=True)
def _max_packs(lengths, capacity):
    """An upper bound on the packs of an any-fit packer (FFD, BFD), at most n: all but one are
    more than half full, plus one per over-long sample (float sum: no int64 overflow)."""
    total, oversize = 0.0, 0
    for L in lengths:
        if L > capacity:
            oversize += 1
        else:
            total += L
    return min(len(lengths), 2 * (int(total / capacity) + 2) + oversize)


def _histogram(lengths, capacity):
    """The distinct keys min(L, C + 1) in decreasing order (over-long samples share the key
    C + 1), how many samples have each, and each sample's rank in that order. Counting (O(n + C))
    when C <= n, else a sort (O(n log n)): O(n) memory either way."""
    keys = np.minimum(lengths, capacity + 1)
    if capacity > len(lengths):
        values, rank, counts = np.unique(-keys, return_inverse=True, return_counts=True)
        return -values, counts, rank
    counts = np.bincount(keys, minlength=capacity + 2)
    values = np.flatnonzero(counts)[::-1]
    rank_of = np.empty(capacity + 2, np.int64)
    rank_of[values] = np.arange(len(values))
    return values, counts[values], rank_of[keys]


@njit(cache=True)
def _first_fit(values, counts, capacity, drop, leaves):
    """FFD on the histogram: the c samples of length L = values[j] (longest first) go, in index
    order, to the oldest pack with room, floor(free / L) of them (after each it is still the
    oldest pack with room while free >= L), the rest likewise to the next: exactly the packs of
    FFD placing one sample at a time. Leaves of a max segment tree hold the free space of packs
    0..leaves-1 (unopened ones C, over-long ones -1), so the leftmost leaf with free >= L is that
    pack, found in O(log n); once it is an unopened one, the rest open new packs of floor(C / L)
    samples each, set in one sweep. The cost is O(runs x log n), a run being the samples of one
    length that go to one pack (runs <= n). Returns the runs: the samples of values[j], in index
    order, go taken[r] at a time to packs[r], r = first[j] .. first[j + 1] - 1 (-1: dropped)."""
    size = 1
    while size < max(leaves, 1):
        size *= 2
    tree = np.full(2 * size, -1, np.int64)
    tree[size : size + leaves] = capacity
    _set_range(tree, size, 0, size)
    n = counts.sum()
    first = np.empty(len(values) + 1, np.int64)
    packs, taken = np.empty(n, np.int64), np.empty(n, np.int64)
    runs, n_packs = 0, 0
    for j in range(len(values)):
        L, c = values[j], counts[j]
        first[j] = runs
        if L > capacity and drop:
            packs[runs], taken[runs] = -1, c
            runs += 1
            continue
        while c > 0:
            pack = n_packs
            if tree[1] >= L:  # the leftmost leaf with free >= L
                node = 1
                while node < size:
                    node = 2 * node if tree[2 * node] >= L else 2 * node + 1
                pack = node - size
            if pack < n_packs:  # the oldest open pack with room
                free = tree[size + pack]
                take = min(c, free // L) if L > 0 else c
                packs[runs], taken[runs] = pack, take
                runs += 1
                c -= take
                _set_max(tree, size + pack, free - take * L)
                continue
            # no open pack has room: new packs, floor(C / L) samples each (over-long: one, closed)
            per = 1 if L > capacity else capacity // L if L > 0 else c
            opened = n_packs
            while c > 0:
                take = min(c, per)
                packs[runs], taken[runs] = n_packs, take
                tree[size + n_packs] = capacity - take * L if L <= capacity else -1
                runs += 1
                n_packs += 1
                c -= take
            _set_range(tree, size, opened, n_packs)
    first[len(values)] = runs
    return first, packs[:runs], taken[:runs]


@njit(cache=True)
def _deal(rank, first, packs, taken):
    """pack_of from _first_fit's runs: samples in index order, each of length values[rank[i]]
    taking the next place in its length's current run."""
    run = first[:-1].copy()
    left = taken.copy()
    pack_of = np.empty(len(rank), np.int64)
    for i in range(len(rank)):
        r = run[rank[i]]
        pack_of[i] = packs[r]
        left[r] -= 1
        if left[r] == 0:
            run[rank[i]] = r + 1
    return pack_of


@njit(cache=True)
def _set_range(tree, size, lo, hi):
    """Recompute the maxima above leaves lo..hi-1 after they were set."""
    lo, hi = lo + size, hi + size
    while lo > 1:
        lo, hi = lo // 2, (hi + 1) // 2
        for node in range(lo, hi):
            tree[node] = max(tree[2 * node], tree[2 * node + 1])


@njit(cache=True)
def _set_max(tree, node, value):
    tree[node] = value
    node //= 2
    while node:
        tree[node] = max(tree[2 * node], tree[2 * node + 1])
        node //= 2


@njit(cache=True)
def _best_fit(order, lengths, capacity, drop):
    """Best fit: the open pack with the least free space r >= L; among equal r, the one whose
    free space was set last (a stack per r). Samples come longest first, so a pack with room for
    the current length has room for every later one: such packs are kept in a min-heap by
    (r, -stamp), whose top is the best fit; packs with r < L wait in a max-heap by r and move over
    when L drops to r. Filling the top lowers its key, so it stays on top until r < L. As in FFD a
    run of equal lengths fills the pack found with floor(r / L) samples at once."""
    n = len(order)
    leaves = _max_packs(lengths, capacity)
    # heaps of (free space, stamp, pack) in three arrays; stamp: when the free space was set
    fitting = (np.empty(leaves, np.int64), np.empty(leaves, np.int64), np.empty(leaves, np.int64))
    waiting = (np.empty(leaves, np.int64), np.empty(leaves, np.int64), np.empty(leaves, np.int64))
    n_fitting, n_waiting, clock = 0, 0, 0
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
        while n_waiting and waiting[0][0] >= L:  # packs that now have room
            r, t, pack = waiting[0][0], waiting[1][0], waiting[2][0]
            n_waiting = _pop(waiting, n_waiting, -1)
            n_fitting = _push(fitting, n_fitting, r, t, pack, 1)
        if n_fitting:
            r, pack = fitting[0][0], fitting[2][0]
        else:  # no open pack has room: open one
            r, pack = capacity, n_packs
            n_packs += 1
            n_fitting = _push(fitting, n_fitting, r, clock, pack, 1)
        while i < n and lengths[order[i]] == L and r >= L:
            pack_of[order[i]] = pack
            r -= L
            i += 1
            if L == 0:
                while i < n and lengths[order[i]] == 0:
                    pack_of[order[i]] = pack
                    i += 1
        if r >= L:  # a lower key (less room, a later stamp): still the top
            fitting[0][0], fitting[1][0] = r, clock
        else:
            n_fitting = _pop(fitting, n_fitting, 1)
            n_waiting = _push(waiting, n_waiting, r, clock, pack, -1)
        clock += 1
    return pack_of


@njit(cache=True)
def _before(r, t, r2, t2, sign):
    """(r, t) above (r2, t2) in the heap: sign 1, less free space r, then the later stamp t
    (min-heap); sign -1, more free space (max-heap)."""
    if r != r2:
        return sign * r < sign * r2
    return sign * t > sign * t2


@njit(cache=True)
def _push(heap, size, r, t, pack, sign):
    free, stamp, packs = heap
    k = size
    while k > 0:
        parent = (k - 1) // 2
        if not _before(r, t, free[parent], stamp[parent], sign):
            break
        free[k], stamp[k], packs[k] = free[parent], stamp[parent], packs[parent]
        k = parent
    free[k], stamp[k], packs[k] = r, t, pack
    return size + 1


@njit(cache=True)
def _pop(heap, size, sign):
    """Remove the top: the last entry sinks from the root."""
    free, stamp, packs = heap
    size -= 1
    r, t, pack = free[size], stamp[size], packs[size]
    k = 0
    while True:
        child = 2 * k + 1
        if child >= size:
            break
        if child + 1 < size and _before(
            free[child + 1], stamp[child + 1], free[child], stamp[child], sign
        ):
            child += 1
        if not _before(free[child], stamp[child], r, t, sign):
            break
        free[k], stamp[k], packs[k] = free[child], stamp[child], packs[child]
        k = child
    free[k], stamp[k], packs[k] = r, t, pack
    return size


@njit(cache=True)
def _best_fit_buckets(order, lengths, capacity, drop):
    """_best_fit's choices in O(C + n) memory, for C <= n (faster): open packs in buckets by free
    space r (stacks); a count tree over r finds the smallest r >= L with a pack, O(log C). A run
    of equal lengths fills the pack found with floor(r / L) samples at once."""
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
    capacity = _capacity(capacity)
    lengths = _lengths(lengths)
    choice("oversize", oversize, OVERSIZE)
    return lengths, capacity


def _capacity(capacity):
    capacity = positive_int("capacity", capacity)
    if capacity > MAX_CAPACITY:
        raise ValueError(f"capacity: must be at most 2**62, got {capacity}")
    return capacity


def _lengths(lengths):
    """1-D integers >= 0, as int64."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or (lengths.size and lengths.dtype.kind not in "iu"):
        raise ValueError("lengths: expected a 1-D sequence of integers")
    if lengths.size and lengths.min() < 0:
        raise ValueError(f"lengths: must be >= 0, got {int(lengths.min())}")
    if lengths.size and lengths.max() > np.iinfo(np.int64).max:
        raise ValueError(f"lengths: must fit int64, got {int(lengths.max())}")
    return lengths.astype(np.int64)


def _pack_of(pack_of, n=None):
    """1-D integers >= -1 numbering the packs 0..P-1 with none skipped (n entries, if given)."""
    pack_of = np.asarray(pack_of)
    if pack_of.ndim != 1 or (pack_of.size and pack_of.dtype.kind not in "iu"):
        raise ValueError("pack_of: expected a 1-D sequence of integer pack numbers")
    if n is not None and len(pack_of) != n:
        raise ValueError(f"pack_of: {len(pack_of)} entries for {n} lengths")
    pack_of = pack_of.astype(np.int64)
    kept = pack_of[pack_of >= 0]
    if pack_of.size and pack_of.min() < -1:
        raise ValueError(f"pack_of: must be >= -1 (-1: filtered out), got {int(pack_of.min())}")
    if kept.size and (kept.max() >= kept.size or np.unique(kept).size != kept.max() + 1):
        raise ValueError("pack_of: packs must be numbered 0, 1, ..., P - 1 with none skipped")
    return pack_of
