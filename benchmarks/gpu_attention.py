"""The Triton FlashAttention forward (impl/attention/triton_kernel.py) on a CUDA GPU.

    python benchmarks/gpu_attention.py [--out gpu_attention.json] [--cpu-interpret]

(i) Correctness against torch SDPA's math backend in float32 (bottom-right causal masks passed as
    attn_mask; torch's is_causal is top-left, equal to ours only for N_q = N_k, where it is used)
    and against logsumexp(scale Q K^T) for L. float32 inputs must be within the error budget of
    properties/test_attention_triton.py; float16/bfloat16 inputs within 2x the error of naive
    attention computed in that dtype, plus u |V|_max (FA-05's rule).
(ii) Speed, bfloat16, B = 4, H = 16, d = 128, N in {1024, 4096, 8192, 16384}, causal and not: ours,
    SDPA's flash and cuDNN backends, and a square bfloat16 matmul of the same FLOP count (the
    tensor cores' practical peak). FLOPs 4 N^2 d per head (two N x N x d products), halved for
    causal; TFLOP/s from the median of CUDA-event timings of CUDA-graph replays, after warm-up.
(iii) Ours at N = 8192 with a few other block sizes than the default, for later tuning.

Prints a table and writes everything as JSON to --out. Without CUDA it says so and exits 0;
--cpu-interpret runs part (i) on small shapes in Triton's interpreter instead (a debug aid).
This file is a script, not an asv benchmark: asv finds nothing to run in it.
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

B, H, D = 4, 16, 128
LENGTHS = (1024, 4096, 8192, 16384)
U = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
# (B, H, N_q, N_k, d, d_v, causal, dtype): causal with N_q != N_k and N_q = 1, odd d, ragged N.
GPU_CASES = [
    (2, 3, 257, 257, 64, 64, False, torch.float32),
    (2, 3, 257, 257, 64, 64, True, torch.float32),
    (1, 4, 100, 333, 128, 128, True, torch.float32),
    (2, 3, 257, 257, 64, 64, True, torch.float16),
    (1, 2, 200, 77, 33, 33, False, torch.float16),
    (2, 3, 257, 257, 64, 64, False, torch.bfloat16),
    (1, 4, 100, 333, 128, 128, True, torch.bfloat16),
    (2, 2, 1, 513, 80, 80, True, torch.bfloat16),
    (1, 2, 1024, 1024, 128, 128, True, torch.bfloat16),
    (1, 2, 1000, 1000, 256, 256, True, torch.bfloat16),
]
# (block_m, block_n) tried at N = SWEEP_N (warps and stages: the kernel's config for d = 128)
SWEEP_N, SWEEP_BLOCKS = 8192, [(128, 64), (64, 64), (128, 32), (64, 128), (128, 128)]
CPU_CASES = [
    (1, 2, 37, 37, 16, 16, True, torch.float32),
    (1, 2, 23, 41, 33, 5, True, torch.float32),
    (2, 1, 1, 40, 8, 8, True, torch.float16),
    (1, 2, 40, 40, 32, 32, False, torch.bfloat16),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gpu_attention.json", help="JSON results path")
    parser.add_argument(
        "--cpu-interpret", action="store_true", help="only (i), small shapes, Triton's interpreter"
    )
    args = parser.parse_args()
    if args.cpu_interpret:
        os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported
        device, cases = "cpu", CPU_CASES
    elif torch.cuda.is_available():
        device, cases = "cuda", GPU_CASES
    else:
        print("no CUDA GPU: nothing to measure (use --cpu-interpret to check correctness on CPU)")
        return 0

    from impl.attention import triton_kernel

    results = {"environment": environment(device)}
    results["correctness"] = [guarded(check_case, triton_kernel, device, *case) for case in cases]
    print_correctness(results["correctness"])
    if device == "cuda":
        results["speed"] = [
            guarded(speed, triton_kernel, n, causal) for n in LENGTHS for causal in (0, 1)
        ]
        print_speed(results["speed"])
        results["block_sweep"] = [
            guarded(sweep_point, triton_kernel, *blocks, causal)
            for causal in (0, 1)
            for blocks in SWEEP_BLOCKS
        ]
        print_sweep(results["block_sweep"])
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")
    failed = [c for c in results["correctness"] if not c["ok"]]
    if failed:
        print(f"{len(failed)} correctness check(s) FAILED")
    return 1 if failed else 0


def guarded(fn, triton_kernel, *case):
    """fn's row, or a row that records its exception: one failure must not end the only run."""
    try:
        return fn(triton_kernel, *case)
    except Exception as e:  # noqa: BLE001 - reported in the table and the JSON
        print(f"{fn.__name__}{case[1:] if fn is check_case else case}: {type(e).__name__}: {e}")
        return dict(case=[str(x) for x in case], error=f"{type(e).__name__}: {e}"[:2000], ok=False)


def environment(device):
    import triton

    env = {
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (interpreter)",
    }
    if device == "cuda":
        env["cudnn"] = torch.backends.cudnn.version()
        env["float32_matmul_precision"] = torch.get_float32_matmul_precision()  # "highest": no TF32
    return env


def bottom_right_mask(n_q, n_k, device):
    i = torch.arange(n_q, device=device)[:, None]
    return torch.arange(n_k, device=device)[None, :] <= i + (n_k - n_q)


def check_case(triton_kernel, device, b, h, n_q, n_k, d, d_v, causal, dtype):
    """Errors of ours (and of naive attention in dtype) against the float32 SDPA math reference."""
    gen = torch.Generator(device=device).manual_seed(n_q * 1000 + n_k + d)
    q, k, v = (
        torch.randn(b, h, n, e, generator=gen, device=device).to(dtype)
        for n, e in ((n_q, d), (n_k, d), (n_k, d_v))
    )
    o, lse = triton_kernel.forward(q, k, v, causal=bool(causal))
    scale = d**-0.5
    mask = bottom_right_mask(n_q, n_k, device) if causal else None
    q32, k32, v32 = q.float(), k.float(), v.float()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        if causal and n_q == n_k:
            o_ref = torch.nn.functional.scaled_dot_product_attention(q32, k32, v32, is_causal=True)
        else:
            o_ref = torch.nn.functional.scaled_dot_product_attention(q32, k32, v32, attn_mask=mask)
    s = scale * (q32 @ k32.transpose(-2, -1))
    if mask is not None:
        s = s.masked_fill(~mask, -torch.inf)
    lse_ref = torch.logsumexp(s, dim=-1)
    err_o = (o.float() - o_ref).abs().max().item()
    err_l = (lse - lse_ref).abs().max().item()
    v_max = v32.abs().max().item()
    if dtype == torch.float32:
        # the budget of properties/test_attention_triton.py: 4 u ((d + 4) sigma + N_k + 4) |V|_max
        sigma = (scale * (q32.abs() @ k32.abs().transpose(-2, -1))).amax().item()
        terms = (d + 4) * sigma + n_k + 4
        tol_o = 4 * U[dtype] * terms * v_max
        tol_l = 4 * U[dtype] * (terms + lse_ref.abs().max().item())
        naive_o = naive_l = None
    else:
        o_low, lse_low = naive(q, k, v, mask, scale)
        naive_o = (o_low.float() - o_ref).abs().max().item()
        naive_l = (lse_low - lse_ref).abs().max().item()
        tol_o = 2 * naive_o + U[dtype] * v_max
        tol_l = 2 * naive_l + U[dtype] * v_max
    ok = o.dtype == dtype and lse.dtype == torch.float32 and err_o <= tol_o and err_l <= tol_l
    return dict(
        shape=[b, h, n_q, n_k, d, d_v], causal=bool(causal), dtype=str(dtype)[6:],
        err_o=err_o, tol_o=tol_o, naive_err_o=naive_o, err_lse=err_l, tol_lse=tol_l,
        naive_err_lse=naive_l, ok=bool(ok),
    )  # fmt: skip


def naive(q, k, v, mask, scale):
    """Standard attention with every tensor in the input's (low) dtype."""
    s = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        s = s.masked_fill(~mask, -torch.inf)
    return torch.softmax(s, dim=-1) @ v, torch.logsumexp(s, dim=-1).float()


def measure_ms(fn, min_ms=25.0, reps=7):
    """(median ms per call, "graph" or "loop"). A sample is `calls` calls (>= min_ms together)
    replayed as one CUDA graph, so that Python and launch overheads (ours validates its inputs)
    do not count at small N; if capture fails, the calls run back to back instead. CUDA events
    time each sample; the first call (compilation) and three more are warm-up."""
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(3):
        fn()
    end.record()
    end.synchronize()
    calls = max(1, math.ceil(min_ms / (start.elapsed_time(end) / 3)))

    def loop():
        for _ in range(calls):
            fn()

    run, how = loop, "loop"
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):  # outputs freed inside the capture reuse one block
            loop()
        run, how = graph.replay, "graph"
    except Exception:  # noqa: BLE001 - fall back to plain launches
        torch.cuda.synchronize()
    run()
    samples = []
    for _ in range(reps):
        start.record()
        run()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / calls)
    return statistics.median(samples), how


def sdpa(backend, q, k, v, causal):
    from torch.nn.attention import sdpa_kernel

    def run():
        with sdpa_kernel(backend):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run()
        torch.cuda.synchronize()
    except RuntimeError as e:  # this backend cannot run these inputs here
        return None, str(e).splitlines()[0][:200]
    return run, None


def speed(triton_kernel, n, causal):
    from torch.nn.attention import SDPBackend

    causal = bool(causal)
    gen = torch.Generator(device="cuda").manual_seed(n)
    q, k, v = (
        torch.randn(B, H, n, D, generator=gen, device="cuda", dtype=torch.bfloat16)
        for _ in range(3)
    )
    flops = 4 * n * n * D * B * H / (2 if causal else 1)
    row = dict(N=n, causal=causal, B=B, H=H, d=D, gflop=flops / 1e9)
    runs = {"ours": lambda: triton_kernel.forward(q, k, v, causal=causal)}
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}
    for name, backend in backends.items():
        runs[name], why = sdpa(backend, q, k, v, causal)
        if why:
            row[f"{name}_skipped"] = why
    for name, fn in runs.items():
        try:
            ms, row[f"{name}_timing"] = measure_ms(fn) if fn is not None else (None, None)
        except Exception as e:  # noqa: BLE001 - recorded; the other columns still run
            ms, row[f"{name}_error"] = None, f"{type(e).__name__}: {e}"[:2000]
            print(f"N={n} causal={causal} {name}: {row[f'{name}_error'][:300]}")
        row[f"{name}_ms"] = ms
        row[f"{name}_tflops"] = flops / ms / 1e9 if ms else None
    # a square bfloat16 matmul of (about) the same FLOP count: 2 m^3 = flops, m a multiple of 256
    m = max(256, round((flops / 2) ** (1 / 3) / 256) * 256)
    a, b = (torch.randn(m, m, generator=gen, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    c = torch.empty(m, m, device="cuda", dtype=torch.bfloat16)
    ms, how = measure_ms(lambda: torch.mm(a, b, out=c))
    row.update(matmul_m=m, matmul_ms=ms, matmul_tflops=2 * m**3 / ms / 1e9, matmul_timing=how)
    for name in ("flash", "cudnn", "matmul"):
        other = row.get(f"{name}_tflops")
        ours = row["ours_tflops"]
        row[f"ours/{name}"] = ours / other if ours and other else None
    return row


def sweep_point(triton_kernel, block_m, block_n, causal):
    """Our TFLOP/s at N = SWEEP_N with other block sizes than the default (for later tuning)."""
    causal = bool(causal)
    gen = torch.Generator(device="cuda").manual_seed(SWEEP_N)
    q, k, v = (
        torch.randn(B, H, SWEEP_N, D, generator=gen, device="cuda", dtype=torch.bfloat16)
        for _ in range(3)
    )
    flops = 4 * SWEEP_N**2 * D * B * H / (2 if causal else 1)
    fn = lambda: triton_kernel.forward(q, k, v, causal, block_m=block_m, block_n=block_n)  # noqa: E731
    ms, how = measure_ms(fn, min_ms=10.0, reps=5)
    return dict(N=SWEEP_N, causal=causal, block_m=block_m, block_n=block_n, ms=ms,
                tflops=flops / ms / 1e9, timing=how)  # fmt: skip


def print_correctness(rows):
    print("(i) correctness: max |error| vs the float32 SDPA math reference")
    print(f"{'shape B,H,Nq,Nk,d,dv':>26} {'causal':>6} {'dtype':>8} {'err O':>9} {'tol O':>9} "
          f"{'naive O':>9} {'err L':>9} {'tol L':>9}  ok")  # fmt: skip
    for r in rows:
        if "error" in r:
            print(f"{','.join(r['case'][1:]):>26}  ERROR {r['error'][:150]}")
            continue
        naive_o = f"{r['naive_err_o']:9.2e}" if r["naive_err_o"] is not None else f"{'-':>9}"
        print(
            f"{','.join(map(str, r['shape'])):>26} {str(r['causal']):>6} {r['dtype']:>8} "
            f"{r['err_o']:9.2e} {r['tol_o']:9.2e} {naive_o} {r['err_lse']:9.2e} "
            f"{r['tol_lse']:9.2e}  {'ok' if r['ok'] else 'FAIL'}"
        )


def print_speed(rows):
    print(f"\n(ii) speed, bfloat16, B={B}, H={H}, d={D}: TFLOP/s (4 N^2 d per head, /2 causal)")
    cols = ["ours", "flash", "cudnn", "matmul", "ours/flash", "ours/cudnn", "ours/matmul"]
    print(f"{'N':>6} {'causal':>6} " + " ".join(f"{c:>11}" for c in cols))
    for r in rows:
        if "error" in r:
            print(f"{','.join(r['case']):>13}  ERROR {r['error'][:150]}")
            continue
        cells = [r.get(f"{c}_tflops") for c in cols[:4]] + [r.get(c) for c in cols[4:]]
        text = [f"{x:11.1f}" if x is not None and i < 4 else f"{x:11.2f}" if x is not None
                else f"{'-':>11}" for i, x in enumerate(cells)]  # fmt: skip
        print(f"{r['N']:>6} {str(r['causal']):>6} " + " ".join(text))
    for r in rows:
        for name in ("flash", "cudnn"):
            if r.get(f"{name}_skipped"):
                print(f"N={r['N']} causal={r['causal']}: {name} skipped: {r[f'{name}_skipped']}")
        for name in ("ours", "flash", "cudnn", "matmul"):
            if r.get(f"{name}_timing") == "loop":
                print(f"N={r['N']} causal={r['causal']}: {name} timed as a loop (no CUDA graph)")


def print_sweep(rows):
    print(f"\nblock sizes at N={SWEEP_N} (ours, TFLOP/s):")
    for r in rows:
        if "error" in r:
            print(f"  {','.join(r['case'])}: ERROR {r['error'][:150]}")
        else:
            print(
                f"  causal={r['causal']!s:5} {r['block_m']:>3} x {r['block_n']:<3} {r['tflops']:7.1f}"
            )


if __name__ == "__main__":
    sys.exit(main())
