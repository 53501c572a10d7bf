"""Tiled matrix multiplication, a model of what sits on chip (FA-12; the FlashAttention explainer's
"with T x T tiles only 3T^2 elements are stored on-chip, regardless of the matrix shape ... valid
because addition is associative").

C = A B with A (M, K), B (K, N), and M, K, N multiples of the tile size T. With tiles
A_ik = A[iT:(i+1)T, kT:(k+1)T] (and B_kj, C_ij likewise):
(1) C_ij = sum_{k=1..K/T} P_ijk,   P_ijk = A_ik B_kj       (a sum of tile-wise products)
The kernel modelled here, per output tile (i, j): C_ij = 0 on chip (T^2); for each k, load A_ik and
B_kj (2 T^2); for each entry (r, c) form p = sum_{t=1..T} a_rt b_tc in one scalar register, in t
order, and add it: c_rc <- c_rc + p; free A_ik and B_kj; write C_ij back. On chip: 3 T^2 tile
elements (and the one scalar p), whatever M, K, N.
In exact arithmetic (1) is A B. In floating point each entry of C is
(2) tiled       (...((0 + p_1) + p_2) + ...) + p_{K/T},  p_k = (...(a_1 b_1 + a_2 b_2) + ...)
                within the k-th tile,
whereas the untiled product sums the same K products in one order:
(3) sequential  c = (...((0 + a_1 b_1) + a_2 b_2) + ...) + a_K b_K.
(2) regroups (3) wherever T > 1 and K > T; float addition is not associative, so the two may
differ in the last bits. (A kernel that adds every product a_rt b_tc straight into c_rc instead of
forming p keeps the order (3): there the tiling needs no associativity at all.)

Entries are numpy arrays: float (each operation rounded in the array's dtype, as numpy does it
elementwise, with no fused multiply-add) or object arrays of Python ints or Fractions (exact).
Inputs: A, B 2-D numpy arrays of one dtype (float16/32/64, or object of ints and Fractions), with
A's columns = B's rows, finite; T a positive integer dividing M, K and N.
"""

from fractions import Fraction

import numpy as np

from impl._checks import positive_int


def tiled(A, B, T):
    """(1)/(2): (C, peak), peak = the most tile elements on chip at once."""
    A, B, T = _check(A, B, T)
    (M, K), N = A.shape, B.shape[1]
    C = np.empty((M, N), dtype=A.dtype)
    chip = _Chip()
    for i in range(0, M, T):
        for j in range(0, N, T):
            c = chip.load(_zeros(A, T, T))
            for k in range(0, K, T):
                a = chip.load(A[i : i + T, k : k + T])
                b = chip.load(B[k : k + T, j : j + T])
                c[...] = _accumulate(c, a, b)
                chip.free(a), chip.free(b)
            C[i : i + T, j : j + T] = c
            chip.free(c)
    return C, chip.peak


def _accumulate(c, a, b):
    """(2): c + P, the tile product P = a b formed first, then added to the accumulator c."""
    return c + _tile_product(a, b)


def _tile_product(a, b):
    """P = a b for one pair of tiles, each entry p_rc = sum_t a_rt b_tc summed in t order; the
    entries are independent, so they are formed side by side (numpy's elementwise ops)."""
    p = _zeros(a, a.shape[0], b.shape[1])
    for t in range(a.shape[1]):
        p = p + a[:, t, None] * b[None, t, :]
    return p


def sequential(A, B):
    """(3): every c_rc = sum_k a_rk b_kc summed in k order, in the arithmetic of A's dtype."""
    A, B, _ = _check(A, B, 1)
    C = _zeros(A, A.shape[0], B.shape[1])
    for k in range(A.shape[1]):
        C = C + A[:, k, None] * B[None, k, :]
    return C


class _Chip:
    """The tile elements held on chip: loaded and freed by the kernel, peak kept."""

    def __init__(self):
        self.held, self.peak = 0, 0

    def load(self, tile):
        self.held += tile.size
        self.peak = max(self.peak, self.held)
        return tile.copy()

    def free(self, tile):
        self.held -= tile.size


def _zeros(like, rows, cols):
    z = np.zeros((rows, cols), dtype=like.dtype)
    return z if like.dtype != object else np.full((rows, cols), 0, dtype=object)


def _check(A, B, T):
    for name, X in (("A", A), ("B", B)):
        if not isinstance(X, np.ndarray):
            raise TypeError(f"{name}: expected a numpy array, got {type(X).__name__}")
        if X.ndim != 2 or 0 in X.shape:
            raise ValueError(f"{name}: expected a non-empty 2-D array, got shape {X.shape}")
        if X.dtype == object:
            if not all(isinstance(v, (int, Fraction)) and not isinstance(v, bool)
                       for v in X.flat):  # fmt: skip
                raise TypeError(f"{name}: an object array must hold Python ints or Fractions")
        elif X.dtype not in (np.float16, np.float32, np.float64):
            raise TypeError(f"{name}: expected float16/32/64 or object entries, got {X.dtype}")
        elif not np.isfinite(X).all():
            raise ValueError(f"{name}: has a non-finite entry (nan or inf)")
    if B.dtype != A.dtype:
        raise TypeError(f"B: dtype {B.dtype} differs from A's {A.dtype}")
    if B.shape[0] != A.shape[1]:
        raise ValueError(f"B: {B.shape[0]} rows do not match A's {A.shape[1]} columns")
    T = positive_int("T", T)
    if any(n % T for n in (*A.shape, B.shape[1])):
        raise ValueError(f"T: tile size {T} does not divide M, K, N = {(*A.shape, B.shape[1])}")
    return A, B, T
