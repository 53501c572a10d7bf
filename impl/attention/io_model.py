"""IO model of attention: numbers moved between slow memory (HBM) and a fast memory (SRAM) of M
numbers, counted by running the loops of FlashAttention's Algorithms 0 and 1 (Dao et al. 2022).

Standard attention (Algorithm 0), N tokens, head dim d:
    read Q, K, write S = Q K^T;  read S, write P = softmax(S);  read P, V, write O = P V
    reads 2Nd + N^2 + N^2 + Nd,  writes N^2 + N^2 + Nd,  total 4Nd + 4N^2 = Theta(Nd + N^2).
The loop of impl/attention/tiled.forward (FlashAttention-2's order: query blocks outside, key
blocks inside, so O_i, l_i, m_i stay in fast memory), query blocks of B_q rows, key blocks of B_k:
    K^T copied once (N_k d read, N_k d written); per query block read Q_i (B_q d) and, for each key
    block it can see, K_j and V_j (B_k (d + d_v)); write O_i and L_i (B_q (d_v + 1)) once:
    reads N_k d + N_q d + sum_i keys_i (d + d_v),  writes N_k d + N_q (d_v + 1),
    keys_i = N_k without a causal mask: T_r = ceil(N_q / B_q) passes over K and V, and with
    B_q = Theta(M / d) that is Theta(N^2 d^2 / M) as for Algorithm 1.
Tiled attention (Algorithm 1), blocks B_c = ceil(M / 4d) keys and B_r = min(B_c, d) queries:
    write O, l, m (Nd + 2N); for each of T_c = ceil(N / B_c) key blocks read K_j, V_j, and for
    each query block read Q_i, O_i, l_i, m_i and write O_i, l_i, m_i:
    total 3Nd + 2N + T_c (3Nd + 4N) = Theta(N^2 d^2 / M) for d <= M <= Nd.

On-chip footprint of the tiled forward (FA-13; the note's Algorithm "FlashAttention (Tiling)":
"the overall SRAM memory footprint depends only on B and D and is not related to L"), sequence
length L, head dim D, square blocks of B queries and B keys. Counted by running the loop: per
query block load Q_i (B D) and set up O_i (B D), m_i and l_i (B each); per key block load K_j and
V_j (B D each) and form S_ij = Q_i K_j^T (B B, overwritten by P_ij); free K_j, V_j, S_ij; write O_i
back, free the query block's buffers. Every on-chip number counts as one element:
    peak = 4 B D + B^2 + 2 B     for L >= B   (4 L D + L^2 + 2 L for L < B: one ragged block),
and its bytes are peak x (bytes per element) in one storage width (2 for 16-bit, 4 for 32-bit).

Every size is a positive integer (Python or numpy); M >= 4d; causal a bool.
"""

from impl._checks import flag, positive_int


def standard(N, d):
    """(reads, writes) of Algorithm 0."""
    N, d = positive_int("N", N), positive_int("d", d)
    return 2 * N * d + 2 * N * N + N * d, 2 * N * N + N * d


def tiled(N, d, M):
    """(reads, writes) of Algorithm 1, counted over its key blocks (ragged last block included).
    B_r = min(B_c, d) sizes the query blocks so that they fit in M; the count does not depend on it."""
    N, d, M = _sizes(N, d, M)
    B_c = -(-M // (4 * d))
    reads, writes = 0, N * d + 2 * N
    for j0 in range(0, N, B_c):
        reads += 2 * (min(j0 + B_c, N) - j0) * d  # K_j, V_j
        # the inner loop's query blocks (B_r rows each, the last one ragged) cover the N rows once
        reads += N * (2 * d + 2)  # Q_i, O_i, l_i, m_i
        writes += N * (d + 2)  # O_i, l_i, m_i
    return reads, writes


def tiled_closed_form(N, d, M):
    """Total of Algorithm 1 in closed form: 3Nd + 2N + T_c (3Nd + 4N), T_c = ceil(N / B_c)."""
    N, d, M = _sizes(N, d, M)
    T_c = -(-N // -(-M // (4 * d)))
    return 3 * N * d + 2 * N + T_c * (3 * N * d + 4 * N)


def flash2(n_q, n_k, d, d_v, block_q, block_k, causal=False):
    """(reads, writes) per batch and head of the loop of tiled.forward (docstring above). With a
    bottom-right causal mask, query block [i0, i1) sees keys j < i1 + n_k - n_q, and the loop
    reads the key blocks that hold one of them: the first min(n_k, ceil(stop / B_k) B_k) keys."""
    n_q, n_k = positive_int("n_q", n_q), positive_int("n_k", n_k)
    d, d_v = positive_int("d", d), positive_int("d_v", d_v)
    block_q, block_k = positive_int("block_q", block_q), positive_int("block_k", block_k)
    flag("causal", causal)
    reads, writes = n_k * d + n_q * d, n_k * d + n_q * (d_v + 1)
    for i0 in range(0, n_q, block_q):
        stop = min(n_k, min(i0 + block_q, n_q) + n_k - n_q) if causal else n_k
        keys = min(n_k, -(-stop // block_k) * block_k) if stop > 0 else 0
        reads += keys * (d + d_v)
    return reads, writes


def _sizes(N, d, M):
    """N, d, M of Algorithm 1: positive integers with M >= 4d."""
    N, d, M = positive_int("N", N), positive_int("d", d), positive_int("M", M)
    if M < 4 * d:
        raise ValueError(f"M: fast memory of {M} numbers cannot hold one row of Q, K, V, O (4d)")
    return N, d, M


def sram_footprint(L, B, D):
    """The most elements on chip at once in the loop of the tiled forward (docstring above)."""
    L, B, D = positive_int("L", L), positive_int("B", B), positive_int("D", D)
    held, peak = 0, 0

    def load(n):
        nonlocal held, peak
        held += n
        peak = max(peak, held)
        return n

    for i0 in range(0, L, B):
        rows = min(i0 + B, L) - i0
        query_block = load(rows * D) + load(rows * D) + load(rows) + load(rows)  # Q_i O_i m_i l_i
        for j0 in range(0, L, B):
            cols = min(j0 + B, L) - j0
            key_block = load(cols * D) + load(cols * D) + load(rows * cols)  # K_j V_j S_ij
            held -= key_block
        held -= query_block
    return peak


def largest_block(capacity_bytes, D, bytes_per_element):
    """The largest B whose footprint at L = B (its value for every L >= B),
    sram_footprint(B, B, D) x bytes_per_element, fits in capacity_bytes; 0 if B = 1 does not.
    The footprint grows with B: doubling, then bisection."""
    capacity = positive_int("capacity_bytes", capacity_bytes)
    D, size = positive_int("D", D), positive_int("bytes_per_element", bytes_per_element)

    def fits(B):
        return sram_footprint(B, B, D) * size <= capacity

    if not fits(1):
        return 0
    lo, hi = 1, 2  # fits(lo), and hi to be found with not fits(hi)
    while fits(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
