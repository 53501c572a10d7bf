"""Attention on the CPU, side by side: our tiled attention (impl/attention/tiled.py) against
torch's scaled_dot_product_attention (its C++ CPU flash kernel) and naive attention, float32,
batch 1, 8 heads, d = 64. Forward and forward + backward times; tracked GFLOP/s of the forward
(4 N^2 d per head) and forward + backward seconds, each the best of 3 after a warm-up (asv's
--quick times a single call); exact peak extra bytes of the forward from torch's allocator;
peakmem_ is asv's whole-process max RSS. Naive forward + backward at N = 8192 (about 10 GB) is
not run. `python -m benchmarks.attention [N [repeats]]` prints the tiled/SDPA ratios of the
forward and of forward + backward, measured side by side in one process (N = 4096, best of 5).

GPUAttention (skipped without CUDA): the Triton forward against SDPA's flash backend, bf16,
batch 4, 16 heads, d = 128; benchmarks/gpu_attention.py is the one-shot script with checks.
"""

import time

import torch
from torch.nn.functional import scaled_dot_product_attention as sdpa

from impl._memory import peak_extra_bytes
from impl.attention import reference, tiled

H, D = 8, 64
IMPLEMENTATIONS = {
    "tiled (ours)": lambda q, k, v: tiled.attention(q, k, v)[0],
    "torch SDPA": sdpa,
    "naive": lambda q, k, v: reference.attention(q, k, v)[0],
}


class _Problem:
    """Inputs and the calls timed; benchmark classes add the time_/peakmem_/track_ methods."""

    params = (list(IMPLEMENTATIONS), [512, 1024, 2048, 4096, 8192])
    param_names = ["implementation", "N"]
    timeout = 600

    def setup(self, implementation, N):
        g = torch.Generator().manual_seed(0)
        self.q, self.k, self.v, self.do = (torch.randn(1, H, N, D, generator=g) for _ in range(4))
        self.f = IMPLEMENTATIONS[implementation]
        warm = torch.randn(1, H, 256, D, generator=g)  # one-time initialisation out of the timing
        self.f(warm, warm, warm)

    def forward(self):
        with torch.no_grad():
            return self.f(self.q, self.k, self.v)

    def forward_backward(self):
        q, k, v = (t.detach().requires_grad_() for t in (self.q, self.k, self.v))
        self.f(q, k, v).backward(self.do)


class CPUAttention(_Problem):
    def time_forward(self, implementation, N):
        self.forward()

    def peakmem_forward(self, implementation, N):
        self.forward()

    def track_forward_gflops(self, implementation, N):
        self.forward()
        best = min(_seconds(self.forward) for _ in range(3))
        return 4 * N * N * D * H / best / 1e9

    track_forward_gflops.unit = "GFLOP/s"

    def track_forward_extra_mib(self, implementation, N):
        return peak_extra_bytes(self.forward)[0] / 2**20

    track_forward_extra_mib.unit = "MiB"


class CPUAttentionBackward(_Problem):
    """Forward + backward; naive at N = 8192 (about 10 GB of saved scores) is not run."""

    def setup(self, implementation, N):
        if implementation == "naive" and N > 4096:
            raise NotImplementedError("naive forward + backward at N = 8192 needs about 10 GB")
        super().setup(implementation, N)

    def time_forward_backward(self, implementation, N):
        self.forward_backward()

    def peakmem_forward_backward(self, implementation, N):
        self.forward_backward()

    def track_forward_backward_seconds(self, implementation, N):
        """Best of 3 after a warm-up (asv --quick times one call)."""
        self.forward_backward()
        return min(_seconds(self.forward_backward) for _ in range(3))

    track_forward_backward_seconds.unit = "s"


class GPUAttention:
    params = (["triton (ours)", "SDPA flash"], [1024, 4096, 8192, 16384], [False, True])
    param_names = ["implementation", "N", "causal"]

    def setup(self, implementation, N, causal):
        if not torch.cuda.is_available():
            raise NotImplementedError("no CUDA device")
        from torch.nn.attention import SDPBackend, sdpa_kernel

        from impl.attention import triton_kernel

        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(4, 16, N, 128, generator=g, device="cuda", dtype=torch.bfloat16)
                   for _ in range(3))  # fmt: skip
        if implementation == "triton (ours)":
            self.run = lambda: triton_kernel.forward(q, k, v, causal)
        else:

            def run():
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    return sdpa(q, k, v, is_causal=causal)

            self.run = run

    def track_tflops(self, implementation, N, causal):
        self.run()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(10):
            self.run()
        end.record()
        torch.cuda.synchronize()
        seconds = start.elapsed_time(end) / 1e3 / 10
        return 4 * 4 * 16 * N * N * 128 / (2 if causal else 1) / seconds / 1e12

    track_tflops.unit = "TFLOP/s"


def _seconds(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def ratios(N=4096, repeats=5):
    """{method: (tiled seconds, SDPA seconds)}: CPUAttention.forward and
    CPUAttentionBackward.forward_backward side by side in one process, interleaved, each the best
    of `repeats` after a warm-up."""
    out = {}
    for cls, method in ((CPUAttention, "forward"), (CPUAttentionBackward, "forward_backward")):
        runs = []
        for implementation in ("tiled (ours)", "torch SDPA"):
            problem = cls()
            problem.setup(implementation, N)
            runs.append(getattr(problem, method))
            runs[-1]()
        best = [float("inf")] * len(runs)
        for _ in range(repeats):
            best = [min(b, _seconds(f)) for b, f in zip(best, runs, strict=True)]
        out[method] = tuple(best)
    return out


if __name__ == "__main__":
    import sys

    N = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    for method, (ours, theirs) in ratios(N, repeats).items():
        print(f"{method}: tiled {ours:.3f} s, SDPA {theirs:.3f} s, ratio {ours / theirs:.2f} "
              f"(N = {N}, {torch.get_num_threads()} threads, best of {repeats})")  # fmt: skip
