"""FA-06 (extra memory O(N) against O(N^2)) measured from torch's allocator, and FA-07 (IO counts
of Algorithms 0 and 1 from impl/attention/io_model.py, and the reads and writes counted by the
loop of tiled.forward against the model of that loop), with the measured speed on this CPU; all
through the `attention` family (attention, forward, io_*), naive attention and the allocator's
meter being tools."""

import time

import torch
from hypothesis import given
from hypothesis import strategies as st

from impl._memory import peak_extra_bytes
from impl.attention import io_model, reference
from properties.catalogue import claim
from properties.evidence import current, figure
from properties.profiles import costly


def extra_bytes(N, H, d, block, backward, attention, causal=False):
    """Peak extra bytes of one forward (and backward) of attention on float32 (1, H, N, d):
    the family's (its forward loop without autograd, or attention() with the backward), or naive
    attention where `attention` is None."""
    g = torch.Generator().manual_seed(N)
    q, k, v, do = (torch.randn(1, H, N, d, generator=g) for _ in range(4))
    mask = reference.causal_mask(N, N) if causal else None
    qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))

    def run():
        if not backward:
            with torch.no_grad():
                if attention is not None:
                    return attention.forward(q, k, v, causal, None, d**-0.5, block, block)
                return reference.attention(q, k, v, mask)
        if attention is not None:
            o = attention.attention(qg, kg, vg, causal, None, block, block)[0]
        else:
            o = reference.attention(qg, kg, vg, mask)[0]
        return torch.autograd.grad(o, (qg, kg, vg), do)

    return peak_extra_bytes(run)[0]


def linear_bound(N, H, d, block):
    """Bytes tiled attention may hold (float32, d_v = d), forward and backward together.
    Per token and head: O (d), L (1), dQ, dK, dV (3d), the row-major copies K^T, V^T (2d), the
    backward's copy of L (1) and its mask (1/4 byte): at most 6d + 3 numbers. Per head,
    independent of N: the (block x block) scores and, in the backward, dP and the contiguous copy
    a matmul makes of a transposed block (3 block^2, measured at the peak), and per block row
    q_i, dO_i, dQ_i, the accumulator, m, l, D and row temporaries (< block (4d + 16)). Shared by
    the heads: a causal block's boolean mask (block^2 bytes) and its int64 row and column indices
    (16 block). 64 bytes of alignment for each of < 32 buffers."""
    per_head = N * (6 * d + 3) + 3 * block * block + block * (4 * d + 16)
    return 4 * H * per_head + block * block + 16 * block + 32 * 64


@claim("FA-06")
@costly()
@given(H=st.integers(1, 3), d=st.integers(1, 40), block=st.sampled_from([32, 64]),
       causal=st.booleans(), backward=st.booleans())  # fmt: skip
def test_tiled_extra_memory_is_linear_in_N_and_naive_is_quadratic(
    attention, H, d, block, causal, backward
):
    """Measured peak extra bytes at N = 2, 4, 16 blocks: tiled within linear_bound; naive at least
    one float32 N x N matrix per head, which exceeds linear_bound at 16 blocks (d <= 40): the
    bound rejects an implementation that materialises the scores."""
    for N in (2 * block, 4 * block, 16 * block):
        used = extra_bytes(N, H, d, block, backward, attention, causal)
        current().worst("tiled extra bytes / linear bound", used / linear_bound(N, H, d, block))
        assert used <= linear_bound(N, H, d, block), f"N = {N}: {used} bytes"
        naive_used = extra_bytes(N, H, d, block, backward, None, causal)
        assert naive_used >= 4 * H * N * N
    assert naive_used > linear_bound(N, H, d, block)


@claim("FA-06")
def test_memory_against_N_figure(attention):
    sizes = [128, 256, 512, 1024]
    rows = {
        (impl, backward): [extra_bytes(N, 2, 64, 128, backward, adapter) for N in sizes]
        for impl, adapter in (("tiled", attention), ("naive", None))
        for backward in (False, True)
    }
    for backward in (False, True):
        t, n = rows[("tiled", backward)][-1], rows[("naive", backward)][-1]
        assert n >= 8 * t, f"at N = 1024 naive needs {n} bytes, tiled {t}: not 1/8"
    current().record(**{f"{impl}{'+backward' if b else ''} bytes at N=1024": v[-1]
                        for (impl, b), v in rows.items()})  # fmt: skip
    current().summary = (
        "peak extra bytes from torch's allocator: tiled linear in N (fwd and fwd+bwd), "
        f"naive quadratic; N = 1024, 2 heads, d = 64: tiled {rows[('tiled', False)][-1] / 2**20:.1f}"
        f" MiB, naive {rows[('naive', False)][-1] / 2**20:.1f} MiB"
    )

    def draw(fig):
        ax = fig.subplots()
        for (impl, backward), values in rows.items():
            ax.loglog(sizes, [b / 2**20 for b in values], "o-" if impl == "tiled" else "s--",
                      label=f"{impl} {'forward + backward' if backward else 'forward'}")  # fmt: skip
        ax.set(xlabel="N (tokens), 2 heads, d = 64, float32", ylabel="peak extra MiB",
               title="FA-06: measured extra memory (torch CPU allocator)")  # fmt: skip
        ax.legend()

    figure("fa06_memory", draw)


@claim("FA-07")
@given(N=st.integers(1, 3000), d=st.integers(1, 128), M=st.integers(4, 200_000))
def test_io_counts_follow_the_loops_and_their_closed_forms(attention, N, d, M):
    M = max(M, 4 * d)
    reads, writes = attention.io_tiled(N, d, M)
    assert reads + writes == attention.io_tiled_closed_form(N, d, M)
    assert sum(attention.io_standard(N, d)) == 4 * N * d + 4 * N * N


@claim("FA-07")
@given(N=st.integers(4, 3000), d=st.integers(1, 128), M=st.floats(0, 1))
def test_tiled_io_is_theta_of_N2_d2_over_M(attention, N, d, M):
    """For 4d <= M <= Nd: 6 <= IO M / (N^2 d^2) <= 42. Lower: T_c >= N / B_c and B_c <= M / 2d.
    Upper: T_c <= 4Nd / M + 1, (T_c + 1)(3Nd + 4N) <= (4Nd / M + 2) 7Nd <= 42 N^2 d^2 / M."""
    M = int(4 * d + M * (N * d - 4 * d))
    if M < 4 * d:
        return
    ratio = sum(attention.io_tiled(N, d, M)) * M / (N * N * d * d)
    current().worst("IO M / (N^2 d^2), upper", ratio / 42)
    assert 6 <= ratio <= 42


@claim("FA-07")
@given(B=st.integers(1, 2), H=st.integers(1, 2), n_q=st.integers(1, 70), n_k=st.integers(1, 70),
       d=st.integers(1, 9), d_v=st.integers(1, 9), block_q=st.integers(1, 80),
       block_k=st.integers(1, 80), causal=st.booleans())  # fmt: skip
def test_tiled_forward_moves_what_the_io_model_counts(attention, B, H, n_q, n_k, d, d_v, block_q,
                                                      block_k, causal):  # fmt: skip
    """The counters of tiled.forward's own loop (reads and writes of the tensors it was given and
    returns, per batch and head) equal io_model.flash2, exactly, for every shape and block size."""
    g = torch.Generator().manual_seed(n_q * 100 + n_k)
    q, k = torch.randn(B, H, n_q, d, generator=g), torch.randn(B, H, n_k, d, generator=g)
    v = torch.randn(B, H, n_k, d_v, generator=g)
    io = {}
    attention.forward(q, k, v, causal, None, d**-0.5, block_q, block_k, io=io)
    model = attention.io_flash2(n_q, n_k, d, d_v, block_q, block_k, causal)
    assert (io["reads"], io["writes"]) == model, f"counted {io}, model {model}"


@claim("FA-07")
@given(N=st.integers(16, 96), d=st.integers(1, 8), M=st.floats(0, 1))
def test_counted_io_of_the_loop_is_theta_of_N2_d2_over_M(attention, N, d, M):
    """IO counted by tiled.forward (N_q = N_k = N, d_v = d, no mask) with square blocks
    B = floor(M / 6d), so that Q_i, the accumulator, K_j, V_j, m, l and S fit in M numbers, for
    12d <= M <= Nd: 12 <= IO M / (N^2 d^2) <= 30.
    IO = 2Nd + N(d + 1) + ceil(N / B) 2Nd. Lower: B <= M / 6d gives ceil(N / B) 2Nd >= 12 N^2 d^2
    / M. Upper: B >= M / 12d (as M >= 12d), so ceil(N / B) 2Nd <= 24 N^2 d^2 / M + 2Nd, and the
    rest 3Nd + N <= 4Nd; 6Nd <= 6 N^2 d^2 / M since M <= Nd."""
    M = int(12 * d + M * (N * d - 12 * d))
    if M < 12 * d:
        return
    block = M // (6 * d)
    io = {}
    x = torch.randn(1, 1, N, d, generator=torch.Generator().manual_seed(N))
    attention.forward(x, x, x, False, None, d**-0.5, block, block, io=io)
    ratio = (io["reads"] + io["writes"]) * M / (N * N * d * d)
    current().worst("counted IO M / (N^2 d^2), upper", ratio / 30)
    assert 12 <= ratio <= 30, f"N = {N}, d = {d}, M = {M}, B = {block}: ratio {ratio:.2f}"


@claim("FA-07")
def test_io_and_measured_speed_figure(attention):
    """IO of Algorithms 0 and 1 for d = 64 and fast memories of 25k and 100k numbers (the
    article's ~100 KB SRAM in float32, and an H100/H200-sized 228 KB in float16), beside the
    measured forward time of tiled, torch SDPA and naive attention on this CPU."""
    d, sizes = 64, [256, 512, 1024, 2048, 4096, 8192, 16384]
    io = {M: [sum(attention.io_tiled(N, d, M)) for N in sizes] for M in (25_000, 100_000)}
    standard = [sum(attention.io_standard(N, d)) for N in sizes]
    assert all(t < s for t, s in zip(io[100_000], standard, strict=True))
    ratios = {M: standard[-1] / v[-1] for M, v in io.items()}
    current().record(**{f"IO standard/tiled at N=16384, M={M}": r for M, r in ratios.items()})
    current().summary = (
        "IO of Alg. 0 = 4Nd + 4N^2 and of Alg. 1 = its loop count, within [6, 42] N^2 d^2 / M; "
        "standard/tiled at N = 16384, d = 64: "
        + ", ".join(f"{r:.1f}x (M = {M:,})" for M, r in ratios.items())
        + "; measured CPU speed in the figure"
    )

    def draw(fig):
        ax_io, ax_t = fig.subplots(1, 2)
        ax_io.loglog(sizes, standard, "s--", label="standard (Alg. 0)")
        for M, values in io.items():
            ax_io.loglog(sizes, values, "o-", label=f"tiled (Alg. 1), M = {M:,}")
        ax_io.set(xlabel="N", ylabel="numbers moved (slow memory)", title="IO model, d = 64")
        ax_io.legend(fontsize=7)
        times = measured_times(attention, [256, 512, 1024, 2048])
        for name, values in times.items():
            ax_t.loglog([256, 512, 1024, 2048], values, "o-", label=name)
        ax_t.set(xlabel="N", ylabel="forward seconds (best of 3)",
                 title="this CPU: 8 heads, d = 64, float32")  # fmt: skip
        ax_t.legend(fontsize=7)
        current().record(**{f"{k} forward s at N=2048": v[-1] for k, v in times.items()})

    figure("fa07_io_and_time", draw, size=(10, 4))


def measured_times(attention, sizes):
    from torch.nn.functional import scaled_dot_product_attention as sdpa

    implementations = {  # blocks of 256, tiled.attention's default
        "tiled (ours)": lambda q, k, v: attention.attention(q, k, v, False, None, 256, 256),
        "torch SDPA": sdpa,
        "naive": reference.attention,
    }
    out = {name: [] for name in implementations}
    for N in sizes:
        g = torch.Generator().manual_seed(0)
        qkv = [torch.randn(1, 8, N, 64, generator=g) for _ in range(3)]
        with torch.no_grad():
            for name, f in implementations.items():
                f(*qkv)
                out[name].append(min(_seconds(f, qkv) for _ in range(3)))
    return out


def _seconds(f, args):
    t0 = time.perf_counter()
    f(*args)
    return time.perf_counter() - t0


def test_io_model_needs_room_for_one_row_of_each_matrix():
    import pytest

    io_model.tiled(64, 8, 32)  # M = 4d: one row of Q, K, V and O fits
    with pytest.raises(ValueError, match="^M: fast memory of 31 numbers"):
        io_model.tiled(64, 8, 31)
