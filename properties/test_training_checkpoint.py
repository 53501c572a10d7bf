"""CKPT-01..CKPT-06: gradient checkpointing plans on a chain of layers (family `training`;
reference impl/training/checkpoint.py, accumulate.py), with exact counts of saved bytes
(saved-tensor hooks) and of layer evaluations. The plans, the segment checkpoint, the recursive
plans' programme cost() and gradient accumulation come from the `training` fixture; the chain,
SavedBytes and the allocator probe are the measurement (impl, declared in training.TOOLS)."""

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from impl import _memory
from impl.training import accumulate as gradacc
from impl.training import checkpoint as ck
from properties.catalogue import claim
from properties.evidence import current, figure
from properties.strategies import Seed, seeds
from properties.threads import one_torch_thread

F64 = torch.float64
BATCH = 3


def run(plan, n, width, seed, dropout=0.0, rng_seed=0, **kw):
    """Gradients (input first, then parameters), peak saved bytes and layer evaluations of one
    forward and backward of `plan` on a fresh chain."""
    chain = ck.Chain(n, width, dropout=dropout, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, width, generator=g, dtype=F64).requires_grad_()
    dy = torch.randn(BATCH, width, generator=g, dtype=F64)  # dL/dy: nothing saved for a loss
    torch.manual_seed(rng_seed)
    with ck.SavedBytes(exclude=chain.parameters()) as saved:
        plan(chain, x, **kw).backward(dy)
    assert saved.live == 0, "saved tensors outlived the backward"
    return [x.grad, *(p.grad for p in chain.parameters())], saved.peak, chain.evaluations


_PLANS = {
    "segments": lambda t, chain, x, k: t.segments(chain, x, min(k, len(chain))),
    "sqrt_segments": lambda t, chain, x, k: t.sqrt_segments(chain, x),
    "recompute_all": lambda t, chain, x, k: t.recompute_all(chain, x),
    "revolve": lambda t, chain, x, k: t.revolve(chain, x, k),
    "bisection": lambda t, chain, x, k: t.bisection(chain, x),
}


def plan_of(training, name):
    """The adapter's plan `name` as plan(chain, x, k), or skip: an implementation without it
    cannot be asked."""
    if getattr(training, name, None) is None:
        pytest.skip(f"the adapter has no {name} plan")
    return functools.partial(_PLANS[name], training) if name in _PLANS else getattr(training, name)


def store_all(training):
    """The adapter's store-all plan (the baseline), or skip."""
    if getattr(training, "store_all", None) is None:
        pytest.skip("the adapter has no store_all plan")
    return training.store_all


@claim("CKPT-01")
@pytest.mark.parametrize("plan", _PLANS)
@given(n=st.integers(1, 12), width=st.integers(1, 6), k=st.integers(1, 6), seed=seeds)
def test_gradients_are_bit_identical_to_store_all(training, plan, n, width, k, seed):
    plan = plan_of(training, plan)
    grads, _, _ = run(store_all(training), n, width, seed)
    grads_plan, _, _ = run(plan, n, width, seed, k=k)
    for g, g_plan in zip(grads, grads_plan, strict=True):
        assert g_plan is not None, "a parameter of a checkpointed layer got no gradient"
        assert torch.equal(g, g_plan)
    current().summary = (
        "input and parameter gradients bit-identical (float64, CPU) for segments, sqrt(n), "
        "recompute-all, revolve and bisection plans"
    )


def unit_bytes(width):
    """a = bytes of one activation (BATCH x width float64); a layer saves b = 2a (the Linear's
    input and tanh's output)."""
    a = BATCH * width * 8
    return a, 2 * a


@claim("CKPT-02")
@given(n=st.integers(2, 8), k=st.integers(1, 4), seed=seeds)
def test_dropout_needs_the_random_state_restored(training, n, k, seed):
    """With dropout, checkpointed gradients equal store-all's when the recomputation restores the
    forward's random state, and differ when it does not (negative control)."""
    k = min(k, n)
    restored = lambda c, x: plan_of(training, "segments")(c, x, k)  # noqa: E731
    grads, _, _ = run(store_all(training), n, 4, seed, dropout=0.5)
    same, _, _ = run(restored, n, 4, seed, dropout=0.5)
    assert all(torch.equal(a, b) for a, b in zip(grads, same, strict=True))

    def not_restored(chain, x):
        for a in range(0, n, k):
            f = lambda x, a=a: chain.run(x, a, min(a + k, n))  # noqa: E731
            x = training.checkpoint(f, x, preserve_rng_state=False)
        return x

    differ, _, _ = run(not_restored, n, 4, seed, dropout=0.5)
    assert any(not torch.equal(a, b) for a, b in zip(grads, differ, strict=True))
    current().summary = (
        "dropout 0.5: checkpointed gradients equal store-all's with the forward's random state "
        "restored, differ without"
    )


@claim("CKPT-03")
@given(n=st.integers(1, 40), width=st.integers(1, 5))
def test_store_all_is_linear_and_recompute_all_is_constant_memory_quadratic_time(
    training, n, width
):
    a, b = unit_bytes(width)
    recompute_all = plan_of(training, "recompute_all")
    _, peak, evaluations = run(store_all(training), n, width, 0)
    assert (peak, evaluations) == (n * b, n)
    _, peak, evaluations = run(recompute_all, n, width, 0, k=1)
    # x_0 and one layer's saved tensors (for layer 1 its input is x_0 itself: a + b - a)
    assert peak == (a + b if n > 1 else b)
    assert evaluations == n * (n + 1) // 2  # the forward advances to x_{n-1} and tapes f_n
    current().summary = (
        "exact counts: store-all peak n b with n evaluations; recompute-all peak a + b with "
        "n (n + 1) / 2 evaluations"
    )


def segment_peak(n, k, a, b):
    """Segments j = 0..S-1 are backpropagated last first (the last one stored, the others
    recomputed); then the inputs of segments 0..j are stored and segment j's len_j layers save
    len_j b, one activation of which is its input (counted once): j a + len_j b."""
    lengths = [min(k, n - s) for s in range(0, n, k)]
    return max(j * a + L * b for j, L in enumerate(lengths))


@claim("CKPT-04")
@given(n=st.integers(1, 40), k=st.integers(1, 40), width=st.integers(1, 5))
def test_segments_store_about_k_plus_n_over_k_for_one_extra_forward(training, n, k, width):
    k = min(k, n)
    a, b = unit_bytes(width)
    _, peak, evaluations = run(plan_of(training, "segments"), n, width, 0, k=k)
    assert peak == segment_peak(n, k, a, b)
    last = n - (n - 1) // k * k
    assert evaluations == 2 * n - last  # the forward, and one recomputation of all but the last
    current().summary = (
        "segments of k: peak max_j (j a + len_j b) exactly, 2n - len_last evaluations (one extra "
        "forward); the best k lies within 2x of sqrt(n a / b)"
    )


@claim("CKPT-04")
def test_best_segment_length_is_near_sqrt_n_figure(training):
    """The k minimising segment_peak (a + b per layer... with b = 2a here) lies within a factor
    2 of sqrt(n a / b), the minimiser of n a / k + k b; measured peaks for n = 16, 64, 256."""
    a, b = unit_bytes(4)
    best = {}
    for n in (16, 64, 256):
        peaks = {k: segment_peak(n, k, a, b) for k in range(1, n + 1)}
        k_star = min(peaks, key=peaks.get)
        best[n] = (k_star, peaks[k_star] / (n * b))
        assert math.sqrt(n * a / b) / 2 <= k_star <= 2 * math.sqrt(n * a / b)
    _, measured, _ = run(plan_of(training, "sqrt_segments"), 64, 4, 0, k=1)
    assert measured == segment_peak(64, 8, a, b)
    current().record(**{f"n={n}: best k, peak / store-all": v for n, v in best.items()})

    def draw(fig):
        ns = [4, 8, 16, 32, 64, 128, 256]
        plans = {
            "store all": training.store_all,
            "segments, k = sqrt(n)": training.sqrt_segments,
            "bisection": training.bisection,
            "revolve, s = 2": training.revolve and (lambda c, x: training.revolve(c, x, 2)),
            "recompute all": training.recompute_all,
        }
        plans = {name: plan for name, plan in plans.items() if plan is not None}
        ax_mem, ax_eval = fig.subplots(1, 2)
        for name, plan in plans.items():
            measured = [run(plan, n, 4, 0)[1:] for n in ns]
            ax_mem.loglog(ns, [m[0] / a for m in measured], "o-", label=name)
            ax_eval.loglog(ns, [m[1] / n for m, n in zip(measured, ns, strict=True)], "o-",
                           label=name)  # fmt: skip
        ax_mem.set(xlabel="n layers", ylabel="peak saved bytes / one activation",
                   title="CKPT-03..05: measured memory")  # fmt: skip
        ax_eval.set(xlabel="n layers", ylabel="layer evaluations / n",
                    title="measured evaluations per layer")  # fmt: skip
        ax_mem.legend(fontsize=7)

    figure("ckpt_memory_vs_n", draw, size=(10, 4))


@claim("CKPT-05")
@given(n=st.integers(1, 64), width=st.integers(1, 3))
def test_bisection_is_log_memory_for_n_log_n_evaluations(training, n, width):
    a, b = unit_bytes(width)
    _, peak, evaluations = run(plan_of(training, "bisection"), n, width, 0, k=1)
    depth = math.ceil(math.log2(n)) if n > 1 else 0
    assert peak <= (1 + depth) * a + b
    assert evaluations == training.cost(n, None)[0]  # the forward sweep included
    assert evaluations - n <= n * depth // 2  # advances beyond one per layer: O(n log n)
    current().summary = (
        "bisection: peak <= (1 + ceil log2 n) a + b, <= n + (n / 2) ceil log2 n evaluations; "
        "revolve's programme = Griewank's binomial optimum; the optimal plan (taped sub-chains) "
        "is no worse than segments or revolve at equal memory"
    )


def allocated_peak(plan, n, width=32, batch=128):
    """Peak extra bytes torch's CPU allocator hands out during one forward + backward of `plan`
    (impl/_memory.py; gradient buffers made beforehand), in activations a = batch x width float64
    numbers; one thread, so that the measurement does not wait on a loaded machine's others."""
    chain = ck.Chain(n, width)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, width, generator=g, dtype=F64).requires_grad_()
    dy = torch.randn(batch, width, generator=g, dtype=F64)
    for p in (x, *chain.parameters()):
        p.grad = torch.zeros_like(p)
    with one_torch_thread():
        peak, _ = _memory.peak_extra_bytes(lambda: plan(chain, x).backward(dy))
    return peak / (batch * width * 8), chain.evaluations


@claim("CKPT-05")
def test_recursive_plans_log_memory_measured_by_the_allocator(training):
    """SavedBytes counts what a plan saves or declares (`_hold`); a plan that kept activations
    without declaring them would still look O(log n) there. Here the allocator measures every
    tensor, at n = 64 and 256 layers of width 32 on 128 rows (an activation a = 32 KiB, 4x a
    weight gradient, so activations dominate). Budget, derived from the recursion: frames nest
    only through right parts, d deep (d = ceil log2 n for bisection and for revolve with
    s = ceil log2 n), and each holds one checkpoint and one gradient: at most c = 2 activations
    per level, so the peak may grow by at most 2 (d_256 - d_64) = 4 activations from n = 64 to
    256 (a store-all plan grows by 2 x 192), plus 0.5 a for buffers smaller than an activation
    (weight-gradient temporaries, a / 4 each). With s fixed (revolve(2)), the budget does not
    depend on n: growth <= 0.5 a. Evaluations are the programme's, unchanged by the measurement."""
    c, small = 2, 0.5
    depth = {n: math.ceil(math.log2(n)) for n in (64, 256)}
    plan_of(training, "bisection"), plan_of(training, "revolve")  # or skip
    plans = {
        "bisection": (lambda c_, x: training.bisection(c_, x), lambda n: depth[n], None),
        "revolve(ceil log2 n)": (
            lambda c_, x: training.revolve(c_, x, math.ceil(math.log2(len(c_)))),
            lambda n: depth[n],
            lambda n: depth[n],
        ),
        "revolve(2)": (lambda c_, x: training.revolve(c_, x, 2), lambda n: 0, lambda n: 2),
    }
    measured = {}
    for name, (plan, levels, s) in plans.items():
        (p64, e64), (p256, e256) = (allocated_peak(plan, n) for n in (64, 256))
        measured[name] = (round(p64, 3), round(p256, 3))
        for n, e in ((64, e64), (256, e256)):
            assert e == training.cost(n, None if s is None else s(n))[0], (name, n, e)
        growth = p256 - p64
        assert growth <= c * (levels(256) - levels(64)) + small, (name, p64, p256)
    current().record(**{f"{k}: peak activations at n = 64, 256": v for k, v in measured.items()})


def binomial_steps(n, c):
    """Griewank's minimal number of forward steps to reverse n steps with c checkpoints:
    r n - C(c + r, c + 1)... written as r n - beta(c + 1, r - 1), beta(c, r) = C(c + r, c), with
    r the smallest integer such that beta(c, r) >= n."""
    r = 0
    while math.comb(c + r, c) < n:
        r += 1
    return r * n - math.comb(c + 1 + r - 1, c + 1)


@claim("CKPT-05")
@given(n=st.integers(1, 80), s=st.integers(1, 7), width=st.integers(1, 3))
def test_revolve_dynamic_programme_equals_the_binomial_optimum(training, n, s, width):
    """T(n, s) - n (evaluations beyond the one taped evaluation per layer) equals Griewank's
    closed form with s + 1 checkpoints (x_0 included); the run, forward sweep included, uses
    exactly T(n, s) evaluations and at most (1 + s) a + b saved bytes."""
    assert training.cost(n, s)[0] - n == binomial_steps(n, s + 1)
    if n <= 30:
        a, b = unit_bytes(width)
        _, peak, evaluations = run(plan_of(training, "revolve"), n, width, 0, k=s)
        assert evaluations == training.cost(n, s)[0]
        assert peak <= (1 + s) * a + b


@claim("CKPT-05")
@given(n=st.integers(1, 40), k=st.integers(1, 40), width=st.integers(1, 3))
def test_optimal_plan_is_no_worse_than_segments_or_revolve_at_equal_memory(training, n, k, width):
    """Budget s = the peak of segments(k) in activations, less x_0 and one layer's tape: the
    optimal plan fits in it and evaluates no more layers than segments(k) or revolve(s)."""
    k = min(k, n)
    a, b = unit_bytes(width)
    s = max(0, segment_peak(n, k, a, b) // a - 1 - b // a)
    plan_of(training, "optimal")  # or skip
    _, peak, evaluations = run(lambda c, x: training.optimal(c, x, s), n, width, 0)
    assert evaluations == training.cost(n, s, ck.Chain.TAPE)[0]
    assert peak <= segment_peak(n, k, a, b) and peak <= (1 + s) * a + b
    assert evaluations <= 2 * n - (n - (n - 1) // k * k)
    assert evaluations <= training.cost(n, s)[0]


def accumulation_case(sizes, seed):
    """A token-level squared loss of a linear model, micro-batches of `sizes` tokens; the
    full-batch mean-loss gradient by autograd on the concatenation (the reference)."""
    g = Seed(seed).torch()
    w = torch.randn(3, dtype=F64, generator=g).requires_grad_()
    batches = [(torch.randn(n, 3, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64))
               for n in sizes]  # fmt: skip

    def per_token_loss(batch):
        x, y = batch
        return (x @ w - y) ** 2

    full = torch.autograd.grad(torch.cat([per_token_loss(b) for b in batches]).mean(), w)[0]
    return w, batches, per_token_loss, full


def accumulated(training, sizes, seed, **kw):
    if getattr(training, "accumulate", None) is None:
        pytest.skip("the adapter has no gradient accumulation")
    w, batches, per_token_loss, full = accumulation_case(sizes, seed)
    (grad,) = training.accumulate(per_token_loss, [w], batches, sizes, **kw)
    return grad, full


@claim("CKPT-06")
@given(sizes=st.lists(st.integers(1, 6), min_size=1, max_size=4), seed=seeds)
def test_gradient_accumulation(training, sizes, seed):
    """impl.training.accumulate on micro-batches of `sizes` tokens. Default (token-sum
    normalisation): equals the full batch's mean gradient for any sizes. Loss / M: equal for
    equal sizes."""
    by_tokens, full = accumulated(training, sizes, seed)
    by_micro, _ = accumulated(training, sizes, seed, normalise="micro_batches")
    n_total = sum(sizes)
    # float64: each gradient entry is a sum of n_total <= 24 terms 2 (x.w - y) x / N, summed in
    # another order and with another division than the reference: 64 u (1 + |full|) per term
    tol = float(64 * 2.0**-53 * (1 + full.abs().max()) * n_total)
    assert torch.allclose(by_tokens, full, rtol=0, atol=tol)
    if len(set(sizes)) == 1:
        assert torch.allclose(by_micro, full, rtol=0, atol=tol)
    current().summary = (
        "impl.training.accumulate: token-sum normalisation (the default) equals the full-batch "
        "mean gradient for any micro-batch sizes; loss / M only for equal token counts"
    )


@claim("CKPT-06")
def test_loss_over_micro_batches_is_wrong_for_unequal_token_counts(training):
    """Sizes 1 and 2: loss / M weights micro-batch m by N / (M n_m) = 3/2 and 3/4, so its gradient
    misses the full batch's by far more than rounding; the default does not."""
    by_micro, full = accumulated(training, [1, 2], 0, normalise="micro_batches")
    by_tokens, _ = accumulated(training, [1, 2], 0)
    tol = float(64 * 2.0**-53 * (1 + full.abs().max()) * 3)
    assert (by_micro - full).abs().max() > 1e6 * tol
    assert torch.allclose(by_tokens, full, rtol=0, atol=tol)
    current().record(full_batch_gradient=full.tolist(), loss_over_micro_batches=by_micro.tolist())


def test_accumulate_accumulates_into_grad_and_checks_its_input():
    """accumulate adds to existing .grad (as a training loop's backward does) and names the bad
    argument."""
    w, batches, per_token_loss, full = accumulation_case([2, 3], 1)
    w.grad = torch.ones(3, dtype=F64)
    (grad,) = gradacc.accumulate(per_token_loss, [w], batches, [2, 3])
    assert torch.allclose(grad, full + 1, rtol=0, atol=1e-12)
    for call, argument in [
        (lambda: gradacc.accumulate(per_token_loss, [w], batches, [2, 3], "sum"), "normalise"),
        (lambda: gradacc.accumulate(per_token_loss, [w], [], []), "micro_batches"),
        (lambda: gradacc.accumulate(per_token_loss, [w], batches, [2]), "tokens"),
        (lambda: gradacc.accumulate(per_token_loss, [w], batches, [2, 0]), "tokens"),
        (lambda: gradacc.accumulate(per_token_loss, [w], batches, [3, 2]), "tokens"),
    ]:
        with pytest.raises(ValueError, match=f"^{argument}:"):
            call()


@claim("CKPT-06")
def test_accumulate_through_a_reentrant_checkpoint_reaches_every_layer(training):
    """Accumulation over checkpointed segments gives every layer the gradient of the plain chain
    (bit-identical in float64: the recomputation repeats the same operations). Regression: a
    backward(inputs=params) pruned the reentrant checkpoint's node, which has no parameter among
    its inputs, and the checkpointed layers' gradients stayed None."""
    if getattr(training, "accumulate", None) is None:
        pytest.skip("the adapter has no gradient accumulation")
    grads = []
    segments = plan_of(training, "segments")
    for plan in (store_all(training), lambda chain, x: segments(chain, x, 1)):
        chain = ck.Chain(2, 1)
        x = torch.ones(1, 1, dtype=F64, requires_grad=True)
        params = list(chain.parameters())
        loss = functools.partial(lambda plan, chain, x: plan(chain, x).sum(-1), plan, chain)
        grads.append(training.accumulate(loss, params, [x], [1]))
    assert all(g is not None for g in grads[1]), "a checkpointed layer got no gradient"
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))


def test_bad_input_names_the_argument():
    chain, x = ck.Chain(4, 2), torch.zeros(1, 2, dtype=F64)
    for call, argument in [
        (lambda: ck.segments(chain, x, 0), "k"),
        (lambda: ck.segments(chain, x, 5), "k"),
        (lambda: ck.segments(chain, x, 1.5), "k"),
        (lambda: ck.revolve(chain, x, -1), "s"),
        (lambda: ck.revolve(chain, x, 1.5), "s"),
        (lambda: ck.optimal(chain, x, -1), "s"),
        (lambda: ck.optimal(chain, x, 1.5), "s"),
        (lambda: ck.revolve(ck.Chain(3, 2, dropout=0.1), x, 1), "chain"),
    ]:
        with pytest.raises(ValueError, match=f"^{argument}:"):
            call()
    for plan in (ck.revolve, ck.optimal):  # s = 0 is allowed: recompute-all
        _, _, evaluations = run(lambda c, x, k, plan=plan: plan(c, x, k), 5, 1, 0, k=0)
        assert evaluations == 5 * 6 // 2


def test_recomputation_leaves_the_callers_random_state_alone():
    """The backward recomputes under the forward's random state inside a fork: afterwards the
    global generator continues exactly as if no backward had run. Without preservation there
    is no fork: the recomputation draws from the global generator and moves it on."""
    for preserve in (True, False):
        torch.manual_seed(3)
        x = torch.randn(4, 3, requires_grad=True)
        y = ck.checkpoint(
            lambda t: torch.nn.functional.dropout(t, 0.5), x, preserve_rng_state=preserve
        )
        state = torch.get_rng_state()
        y.sum().backward()
        assert torch.equal(torch.get_rng_state(), state) is preserve


def test_chain_layers_are_residual_tanh_with_dropout_p():
    """f_i(x) = x + dropout_p(tanh(W_i x + b_i)), W and b drawn as N(0, 1/width) in order from the
    seed's generator; dropout with the chain's p (0.3 here, not torch's default 0.5)."""
    chain = ck.Chain(3, 4, dropout=0.3, seed=5)
    g = torch.Generator().manual_seed(5)
    for p in chain.parameters():
        assert torch.equal(p, torch.randn(p.shape, generator=g, dtype=F64) / 2.0)
    x = torch.randn(2, 4, dtype=F64, generator=g)
    torch.manual_seed(11)
    got = chain.layer(1, x)
    torch.manual_seed(11)
    h = torch.tanh(x @ chain.layers[1].weight.T + chain.layers[1].bias)
    want = x + torch.nn.functional.dropout(h, 0.3, training=True)
    assert torch.allclose(got, want, rtol=1e-15, atol=1e-15)
    plain = ck.Chain(2, 4)
    assert plain.dropout == 0.0 and plain.layers[0].weight.dtype == F64
    assert torch.equal(plain.layers[0].weight, ck.Chain(2, 4, seed=0).layers[0].weight)
    assert not torch.equal(plain.layers[0].weight, ck.Chain(2, 4, seed=1).layers[0].weight)


@claim("CKPT-05")
def test_recursive_plans_on_long_chains_cost_exactly_their_programme(training):
    """Deterministic cases past the few examples a fast profile draws: revolve(s) evaluates
    exactly T(n, s) layers and its peak is exactly (1 + s) a + b when n > s + 1 (the forward sweep
    holds all s checkpoints at once), less otherwise; the optimal plan and bisection evaluate
    exactly their programme's count on 30 layers."""
    a, b = unit_bytes(1)
    revolve = plan_of(training, "revolve")
    bisection = plan_of(training, "bisection")
    plan_of(training, "optimal")  # or skip
    for n in range(2, 23, 4):
        for s in range(1, 6):
            _, peak, evaluations = run(revolve, n, 1, 0, k=s)
            assert evaluations == training.cost(n, s)[0], (n, s)
            assert (peak == (1 + s) * a + b) == (n > s + 1) and peak <= (1 + s) * a + b, (n, s)
    for s in (2, 5, 8):
        _, peak, evaluations = run(lambda c, x, s: training.optimal(c, x, s), 30, 1, 0, s=s)
        assert evaluations == training.cost(30, s, ck.Chain.TAPE)[0] and peak <= (1 + s) * a + b
    assert run(bisection, 30, 1, 0, k=1)[2] == training.cost(30, None)[0]


def test_recursive_plans_without_a_probe_and_without_an_input_gradient():
    """Outside a SavedBytes probe revolve runs the same; with an input that needs no gradient,
    the parameters still get theirs (the plan hands them to autograd); a probe around nothing
    reports peak 0."""
    chain, ref = ck.Chain(6, 3, seed=2), ck.Chain(6, 3, seed=2)
    x = torch.randn(2, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    ck.revolve(chain, x, 2).sum().backward()
    ck.store_all(ref, x).sum().backward()
    for p, r in zip(chain.parameters(), ref.parameters(), strict=True):
        assert p.grad is not None and torch.equal(p.grad, r.grad)
    with ck.SavedBytes() as nothing:
        pass
    assert nothing.peak == 0 and nothing.live == 0


def test_plans_and_chain_methods_refuse_wrong_input_by_name():
    """Issue 16: plans, Chain's methods, checkpoint and accumulate name the wrong argument; numpy
    integer counts are accepted like Python ones."""
    chain, x = ck.Chain(4, 2), torch.zeros(1, 2, dtype=F64)
    w = torch.zeros(2, dtype=F64, requires_grad=True)
    loss = lambda b: (b @ w + 1) ** 2  # noqa: E731
    batches = [torch.ones(2, 2, dtype=F64)]
    for call, argument in [
        (lambda: ck.store_all(chain, torch.full((1, 2), torch.nan, dtype=F64)), "x"),
        (lambda: ck.store_all(chain, torch.zeros(1, 3, dtype=F64)), "x"),
        (lambda: ck.bisection(chain, x.float()), "x"),
        (lambda: ck.recompute_all(chain.layers, x), "chain"),
        (lambda: chain.layer(4, x), "i"),
        (lambda: chain.run(x, 3, 2), "b"),
        (lambda: ck.Chain(0, 2), "n"),
        (lambda: ck.Chain(2, 2, dropout=1.0), "dropout"),
        (lambda: ck.checkpoint(torch.tanh), "args"),
        (lambda: ck.checkpoint(torch.tanh, 3), "args"),
        (lambda: ck.checkpoint(lambda t: 3.0, x), "fn"),
        (lambda: ck.SavedBytes(exclude=None), "exclude"),
        (lambda: ck.segments(chain, x, 2, checkpoint_fn=3), "checkpoint_fn"),
        (lambda: gradacc.accumulate(loss, [w], batches, [2.5]), "tokens"),
        (lambda: gradacc.accumulate(loss, [torch.zeros(2)], batches, [2]), "params"),
        (lambda: gradacc.accumulate(lambda b: loss(b) * torch.nan, [w], batches, [2]),
         "per_token_loss"),
    ]:  # fmt: skip
        with pytest.raises((ValueError, TypeError), match=f"^{argument}(:|\\[)"):
            call()
    k, s = np.int64(2), np.int32(1)
    expected = ck.store_all(chain, x)
    assert torch.allclose(ck.segments(chain, x, k), expected)
    assert torch.allclose(ck.revolve(chain, x, s), expected)
    assert torch.allclose(ck.optimal(chain, x, s), expected)


def test_saved_bytes_forgets_a_released_storage():
    """Once its last saved reference dies, a storage is forgotten, so a later storage that the
    allocator puts at the same address is counted with its own size. (A stale size made CKPT-04's
    exact peaks 16 bytes short on some examples, once the allocation pattern changed.)"""
    with ck.SavedBytes() as saved:
        wrapped = saved._pack(torch.zeros(2, dtype=F64))
        ptr = wrapped.ptr
        assert saved.live == 16 and saved.refs[ptr] == (1, 16)
        del wrapped
        assert saved.live == 0 and ptr not in saved.refs
