"""Training-memory techniques, side by side.

Packing: next-fit (the engine's buffer), window-4, first-fit-decreasing and best-fit-decreasing
on 1e5 and 1e6 lognormal lengths (median 500, sigma 1, clipped to [1, 4096]), capacity 4096:
time, efficiency (real tokens / packs x C) and samples per second (best of 3).

Padding removal: forward + backward of a float32 tiny LM (d = 256, 4 heads, 2 layers, vocab 1024)
on 8 rows of 512 tokens at padding fractions 0.25 / 0.5 / 0.75, padded against unpadded, on one
torch thread: time, peak RSS, the measured speed-up (best of 5 each, alternating, after a warm-up)
and the ideal one (counted FLOP ratio).

Checkpointing: a chain of n in {16, 64, 256} blocks x + tanh(W x + b), width 256, batch 256,
float32: store-all, segments of sqrt(n), the optimal plan with the memory of the sqrt(n) segments,
bisection (log n memory) and torch's checkpoint_sequential with sqrt(n) segments: time, peak RSS,
the exact peak bytes torch's allocator hands out during forward + backward, layer evaluations.
"""

import functools
import math
import time

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint_sequential
from torch.utils.flop_counter import FlopCounterMode

from impl._memory import peak_extra_bytes
from impl.training import checkpoint as ck
from impl.training import lm, packing

C = 4096
PACKERS = dict(packing.PACKERS, window_4=lambda L, C: packing.window(L, C, 4))


def lognormal_lengths(n):
    rng = np.random.default_rng(0)
    return np.clip(np.rint(np.exp(rng.normal(math.log(500), 1.0, n))), 1, C).astype(np.int64)


class Packing:
    params = (list(PACKERS), [100_000, 1_000_000])
    param_names = ["packer", "samples"]

    def setup(self, packer, samples):
        self.lengths = lognormal_lengths(samples)
        self.pack = PACKERS[packer]
        self.pack(self.lengths[:100], C)  # numba compiles on the first call

    def time_pack(self, packer, samples):
        self.pack(self.lengths, C)

    def track_efficiency(self, packer, samples):
        return packing.efficiency(self.lengths, self.pack(self.lengths, C), C)

    def track_samples_per_second(self, packer, samples):
        return samples / min(_seconds(self.pack, self.lengths, C) for _ in range(3))

    track_samples_per_second.unit = "samples/s"


class PaddingRemoval:
    """One torch thread: the measured speed-up is compared with the FLOP ratio, which intra-op
    threads would mix with how well each size splits over the cores, and on a shared 2-core
    machine a two-thread step waits for whichever core is busy elsewhere."""

    params = (["padded", "unpadded"], [0.25, 0.5, 0.75])
    param_names = ["run", "padding"]
    REPEATS = 5

    def setup(self, run, padding):
        torch.set_num_threads(1)
        B, T = 8, 512
        g = torch.Generator().manual_seed(0)
        lengths = torch.full((B,), round((1 - padding) * T))
        lengths[0] = T
        lengths[1:] = round(((1 - padding) * B * T - T) / (B - 1))
        self.mask = (torch.arange(T)[None] < lengths[:, None]).long()
        self.ids = torch.randint(0, 1024, (B, T), generator=g)
        self.model = lm.TinyLM(vocab=1024, d=256, heads=4, layers=2, dtype=torch.float32)
        self.runs = {"padded": self.model.forward_padded, "unpadded": self.model.forward_unpadded}
        self.step(run)

    def step(self, run):
        self.runs[run](self.ids, self.mask).sum().backward()

    def time_forward_backward(self, run, padding):
        self.step(run)

    def peakmem_forward_backward(self, run, padding):
        self.step(run)

    def track_speedup_measured(self, run, padding):
        """padded time / unpadded time, best of REPEATS each after a warm-up of each, the two runs
        alternating (a slow spell of the machine slows both); the same number for both rows."""
        times = {r: [] for r in self.runs}
        for _ in range(self.REPEATS + 1):
            for r in self.runs:
                times[r].append(_seconds(self.step, r))
        best = {r: min(t[1:]) for r, t in times.items()}
        return best["padded"] / best["unpadded"]

    def track_speedup_ideal(self, run, padding):
        flops = {}
        for r in self.runs:
            with FlopCounterMode(display=False) as counter:
                self.step(r)
            flops[r] = counter.get_total_flops()
        return flops["padded"] / flops["unpadded"]


def same_memory(n, k):
    """The budget s with the peak of sqrt(n) segments: segments peak at max_j (j + 2 len_j)
    activations (a layer saves two), the recursive plans at most at 1 + s + 2."""
    lengths = [min(k, n - a) for a in range(0, n, k)]
    return max(0, max(j + 2 * L for j, L in enumerate(lengths)) - 3)


def torch_sequential(chain, x, segments):
    layers = [functools.partial(chain.layer, i) for i in range(len(chain))]
    return checkpoint_sequential(layers, segments, x, use_reentrant=False)


PLANS = {
    "store all": lambda chain, x, k: ck.store_all(chain, x),
    "sqrt(n) segments": lambda chain, x, k: ck.segments(chain, x, k),
    "optimal, same memory": lambda chain, x, k: ck.optimal(chain, x, same_memory(len(chain), k)),
    "bisection (log n memory)": lambda chain, x, k: ck.bisection(chain, x),
    "torch checkpoint_sequential": lambda chain, x, k: torch_sequential(chain, x, len(chain) // k),
}


class Checkpointing:
    params = (list(PLANS), [16, 64, 256])
    param_names = ["plan", "n"]
    timeout = 300

    def setup(self, plan, n):
        self.chain = ck.Chain(n, 256, dtype=torch.float32)
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(256, 256, generator=g).requires_grad_()
        self.dy = torch.randn(256, 256, generator=g)
        self.k = max(1, round(math.sqrt(n)))
        self.plan = PLANS[plan]
        ck.cost(n, same_memory(n, self.k), ck.Chain.TAPE)  # the dynamic programme, untimed
        self.step()

    def step(self):
        self.plan(self.chain, self.x, self.k).backward(self.dy)

    def time_forward_backward(self, plan, n):
        self.step()

    def peakmem_forward_backward(self, plan, n):
        self.step()

    def track_peak_allocated_mib(self, plan, n):
        return peak_extra_bytes(self.step)[0] / 2**20

    track_peak_allocated_mib.unit = "MiB"

    def track_layer_evaluations(self, plan, n):
        self.chain.evaluations = 0
        self.step()
        return self.chain.evaluations


def _seconds(f, *args):
    t0 = time.perf_counter()
    f(*args)
    return time.perf_counter() - t0
