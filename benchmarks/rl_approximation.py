"""Stochastic approximation (impl/rl/approximation): the streaming mean against numpy's batch mean.

Both see the same stream of N(0, 1) samples, generated in chunks of 10^6 from one seed. The
incremental (block) update keeps one chunk in memory whatever n is; the batch mean materialises
all n samples (8n bytes) before np.mean. `track_traced_peak_bytes` counts the bytes numpy
allocates (tracemalloc), an exact, machine-independent version of `peakmem_mean`, which is the
whole process's maximum RSS (interpreter and numpy included, about 40 MB here).
"""

import tracemalloc

import numpy as np

from impl.rl.approximation.mean import incremental_mean, streaming_mean

CHUNK = 10**6


def _chunks(n, seed=0):
    rng = np.random.default_rng(seed)
    for start in range(0, n, CHUNK):
        yield rng.standard_normal(min(CHUNK, n - start))


def incremental(n):
    return streaming_mean(_chunks(n))[0]


def numpy_batch(n):
    x = np.empty(n)
    start = 0
    for chunk in _chunks(n):
        x[start : start + chunk.size] = chunk
        start += chunk.size
    return np.mean(x)


METHODS = {"incremental": incremental, "numpy-batch": numpy_batch}


class StreamingMean:
    params = ([10**6, 10**7, 10**8], list(METHODS))
    param_names = ["n", "method"]
    timeout = 600
    number = 1
    repeat = (1, 5, 30.0)

    def time_mean(self, n, method):
        METHODS[method](n)

    def peakmem_mean(self, n, method):
        METHODS[method](n)

    def track_traced_peak_bytes(self, n, method):
        tracemalloc.start()
        try:
            METHODS[method](n)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    track_traced_peak_bytes.unit = "bytes"


class IncrementalMeanReference:
    """The readable per-sample reference loop (eq. 2), to show what the block form saves."""

    params = [10**4, 10**5]
    param_names = ["n"]

    def setup(self, n):
        self.x = np.random.default_rng(0).standard_normal(n)

    def time_per_sample_loop(self, n):
        incremental_mean(self.x)

    def time_block_form(self, n):
        streaming_mean([self.x])
