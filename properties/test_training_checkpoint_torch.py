"""torch.utils.checkpoint as a peer (CKPT-01, CKPT-02, CKPT-04): the adapters `torch-reentrant`,
`torch-non-reentrant` (checkpoint with use_reentrant True / False in our segment plan) and
`torch-sequential` (checkpoint_sequential over the plan's segments), properties/adapters/
training.py. The claim properties run on them in the peer matrix (python -m properties.audit
--target training=torch-reentrant --claims 'CKPT-01,CKPT-02,CKPT-04'); here, for the default gate,
a few examples of the same gradient, random-state and memory checks against impl/training/
checkpoint.py. Peer findings (@finding): what torch does is not evidence for the article's
claims, which rest on the properties of impl/ in test_training_checkpoint.py."""

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from impl._memory import peak_extra_bytes
from impl.training import checkpoint as ck
from properties.adapters.training import TorchNonReentrant, TorchReentrant, TorchSequential
from properties.catalogue import finding
from properties.evidence import current
from properties.strategies import seeds
from properties.test_training_checkpoint import run
from properties.threads import one_torch_thread

ADAPTERS = {
    "torch-reentrant": TorchReentrant,
    "torch-non-reentrant": TorchNonReentrant,
    "torch-sequential": TorchSequential,
}


@finding("CKPT-01")
@pytest.mark.parametrize("name", ADAPTERS)
@settings(max_examples=20)
@given(n=st.integers(1, 10), k=st.integers(1, 5), seed=seeds)
def test_torch_checkpoint_gradients_are_bit_identical(name, n, k, seed):
    """Smoke check of each adapter (CKPT-01's comparison): input and parameter gradients of the
    segment plan with torch's checkpoint equal store-all's bit for bit (float64, CPU)."""
    k, adapter = min(k, n), ADAPTERS[name]
    grads, _, _ = run(lambda c, x: ck.store_all(c, x), n, 4, seed)
    theirs, _, _ = run(lambda c, x: adapter.segments(c, x, k), n, 4, seed)
    assert all(torch.equal(a, b) for a, b in zip(grads, theirs, strict=True))


@finding("CKPT-02")
@pytest.mark.parametrize("adapter", [TorchReentrant, TorchNonReentrant], ids=["reentrant", "non"])
@settings(max_examples=10)
@given(n=st.integers(2, 8), seed=seeds)
def test_torch_checkpoint_restores_the_random_state_only_when_asked(adapter, n, seed):
    grads, _, _ = run(lambda c, x: ck.store_all(c, x), n, 4, seed, dropout=0.5)
    same, _, _ = run(lambda c, x: adapter.segments(c, x, 2), n, 4, seed, dropout=0.5)
    assert all(torch.equal(a, b) for a, b in zip(grads, same, strict=True))

    def not_restored(chain, x):
        for a in range(0, n, 2):
            f = functools.partial(chain.run, a=a, b=min(a + 2, n))
            x = adapter.checkpoint(f, x, preserve_rng_state=False)
        return x

    differ, _, _ = run(not_restored, n, 4, seed, dropout=0.5)
    assert any(not torch.equal(a, b) for a, b in zip(grads, differ, strict=True))


def allocated_activations(plan, n=64, width=256, batch=64):
    """Peak bytes torch's allocator hands out during forward + backward (gradient buffers made
    beforehand), in units of one activation a = batch x width float64 numbers; one thread."""
    chain = ck.Chain(n, width)
    x = torch.randn(batch, width, dtype=torch.float64).requires_grad_()
    dy = torch.randn(batch, width, dtype=torch.float64)
    for p in (x, *chain.parameters()):
        p.grad = torch.zeros_like(p)
    with one_torch_thread():
        peak, _ = peak_extra_bytes(lambda: plan(chain, x).backward(dy))
    return peak / (batch * width * 8)


@finding("CKPT-04")
def test_torch_checkpoint_memory_against_ours():
    """n = 64, k = 8, the same segment plan (the last segment not checkpointed), measured by the
    allocator (saved-tensor hooks cannot see inside torch's non-reentrant checkpoint, which
    installs hooks of its own: SavedBytes undercounts it, a measurement blind spot, not a saving;
    CKPT-04 is therefore not asked of that adapter). Ours equals torch's reentrant checkpoint and
    checkpoint_sequential; the non-reentrant one holds at most one activation less (it does not
    keep the recomputed segment's output alive during the inner backward)."""
    k = 8
    measured = {
        "store all": allocated_activations(lambda c, x: ck.store_all(c, x)),
        "ours, segments": allocated_activations(lambda c, x: ck.segments(c, x, k)),
        **{name: allocated_activations(lambda c, x, a=a: a.segments(c, x, k))
           for name, a in ADAPTERS.items()},
    }  # fmt: skip
    current().record(**{f"{name} (activations)": round(v, 3) for name, v in measured.items()})
    ours = measured["ours, segments"]
    assert ours <= measured["torch-reentrant"] + 0.05
    assert ours <= measured["torch-sequential"] + 0.05
    assert ours - measured["torch-non-reentrant"] <= 1.05  # + small buffers
    assert ours < measured["store all"] / 4
    current().record(
        finding=f"torch {torch.__version__}: non-reentrant checkpoint peaks "
        f"{ours - measured['torch-non-reentrant']:.2f} activations below the reentrant one and "
        "ours (n = 64, k = 8), and its saved-tensor hooks hide its tensors from outer hooks"
    )


@finding("CKPT-04")
@pytest.mark.parametrize("adapter", [TorchReentrant, TorchNonReentrant], ids=["reentrant", "non"])
def test_torch_checkpoint_evaluations(adapter):
    """torch's checkpoint recomputes every checkpointed layer once: every segment checkpointed,
    2n evaluations; checkpoint_sequential over the layers leaves its last segment unchecked
    (stored as in store-all, not recomputed): 2n - n/segments evaluations, as our plan."""
    n, k = 16, 4

    def every_segment(chain, x):
        for a in range(0, n, k):
            x = adapter.checkpoint(functools.partial(chain.run, a=a, b=min(a + k, n)), x)
        return x

    def sequential(chain, x):
        from torch.utils.checkpoint import checkpoint_sequential

        layers = [functools.partial(chain.layer, i) for i in range(len(chain))]
        return checkpoint_sequential(layers, n // k, x, use_reentrant=adapter.use_reentrant)

    assert run(every_segment, n, 4, 0)[2] == 2 * n
    assert run(sequential, n, 4, 0)[2] == 2 * n - k
    assert run(lambda c, x: adapter.segments(c, x, k), n, 4, 0)[2] == 2 * n - k
