"""Statistical checks with a stated false-alarm probability, inside a suite-wide budget.

Budget: one run of the whole suite may fail by chance with probability at most
SUITE_FALSE_ALARM = 1e-3. Each check runs at ALPHA = SUITE_FALSE_ALARM / MAX_CHECKS = 1e-7, and
the conftest fails the run if it made more than MAX_CHECKS checks, so by the union bound a run
with every claim true fails by chance with probability <= checks * ALPHA <= 1e-3. A run's checks
are those of all its pytest-xdist workers together (the conftest sums them), and of all the shards
an audit report merges (`python -m properties.audit merge` sums them and holds them to the same
MAX_CHECKS). Under the `ci`
profile every seed comes from a derandomized Hypothesis draw, so CI runs are reproducible.

Every check raises AssertionError (a property failure) with the statistic, the p-value and
the sample size, and records the smallest p-value it saw as evidence. Samples with a NaN or an
infinity fail before any test: they are draws of no law, and a NaN p-value compares False with
every alpha, so without that check a sampler that returns NaN would pass.
"""

import numpy as np
from scipy import stats as sps

from properties import evidence

SUITE_FALSE_ALARM = 1e-3
MAX_CHECKS = 10_000
ALPHA = SUITE_FALSE_ALARM / MAX_CHECKS

checks_made = 0


def reset():
    global checks_made
    checks_made = 0


def finite_samples(x, what):
    """x as a float array; AssertionError when a sample is NaN or infinite."""
    x = np.asarray(x, dtype=float)
    bad = np.size(x) - int(np.isfinite(x).sum())
    if bad:
        raise AssertionError(f"{what}: {bad} of {np.size(x)} samples are NaN or infinite")
    return x


def _check(p_value, what, detail, alpha):
    """Count one check; fail when p < alpha (or p is NaN)."""
    global checks_made
    checks_made += 1
    evidence.current().worst(f"{what}: min p-value", float(p_value), larger_is_worse=False)
    if not p_value >= alpha:
        raise AssertionError(f"{what}: {detail}; p = {p_value:.3g} < alpha = {alpha:g}")


def binomial_at_most(count, n, p0, *, what, alpha=ALPHA):
    """Exact one-sided test of H0: count ~ Binomial(n, p) with p <= p0 (rejects large counts)."""
    p_value = sps.binom.sf(count - 1, n, p0)
    _check(
        p_value, what, f"{count} of {n} events where p <= {p0:g} allows about {n * p0:.1f}", alpha
    )


def binomial_exceeds(count, n, p0, *, what, alpha=ALPHA):
    """Negative control: assert that H0 (p <= p0) IS rejected by the count (at level alpha).

    It fails (AssertionError) when the count is too small to reject H0, i.e. the wrong variant
    would have passed the property. Its own chance failure is 1 - power; see binomial_power.
    """
    global checks_made
    checks_made += 1
    p_value = sps.binom.sf(count - 1, n, p0)
    evidence.current().worst(f"{what}: max p-value", float(p_value))
    if p_value >= alpha:
        raise AssertionError(
            f"{what}: {count} of {n} events do not reject p <= {p0:g} "
            f"(p = {p_value:.3g} >= {alpha:g})"
        )


def binomial_two_sided(count, n, p, *, what, alpha=ALPHA):
    """Exact two-sided test of H0: count ~ Binomial(n, p)."""
    p_value = sps.binomtest(count, n, p).pvalue
    _check(p_value, what, f"{count} of {n} events where about {n * p:.1f} are expected", alpha)


def hoeffding_radius(n, lo, hi, alpha=ALPHA):
    """t with P(|mean of n i.i.d. draws in [lo, hi] - their expectation| >= t) <= alpha."""
    return (hi - lo) * np.sqrt(np.log(2 / alpha) / (2 * n))


def mean_within(mean, expected, n, lo, hi, *, what, slack=0.0, alpha=ALPHA):
    """Hoeffding's two-sided test that a mean of n draws in [lo, hi] has expectation within
    `slack` of `expected` (slack covers a known bias bound, e.g. truncation)."""
    mean = float(finite_samples(mean, what))  # max(0.0, NaN) would be 0.0: a pass
    radius = hoeffding_radius(n, lo, hi, alpha)
    gap = max(0.0, abs(mean - expected) - slack)
    p_value = min(1.0, 2 * np.exp(-2 * n * (gap / (hi - lo)) ** 2)) if gap > 0 else 1.0
    _check(p_value, what, f"mean {mean:.6g} vs {expected:.6g} +- {slack:.2g} (Hoeffding radius "
           f"{radius:.3g} at n = {n})", alpha)  # fmt: skip


def mean_negative(d, *, what, alpha=ALPHA):
    """One-sided test that i.i.d. draws d have a negative mean (normal approximation of the mean:
    asymptotic, for n in the thousands and light tails). Fails unless H0: E d >= 0 is rejected."""
    global checks_made
    checks_made += 1
    d = finite_samples(d, what)
    with np.errstate(divide="ignore", invalid="ignore"):  # constant d: z = -inf, 0/0 or +inf
        z = d.mean() / (d.std(ddof=1) / np.sqrt(d.size))
    p_value = float(sps.norm.cdf(z))
    evidence.current().worst(f"{what}: max p-value", p_value)
    if not p_value < alpha:  # NaN too: constant draws d = 0 give z = 0/0
        raise AssertionError(
            f"{what}: mean {d.mean():.4g} (z = {z:.2f}) is not significantly < 0; p = {p_value:.3g}"
        )


def mean_equals(x, expected, *, what, alpha=ALPHA):
    """Two-sided test that i.i.d. draws x have mean `expected` (normal approximation of the mean:
    asymptotic, for n in the thousands and light tails)."""
    x = finite_samples(x, what)
    z = (x.mean() - expected) / (x.std(ddof=1) / np.sqrt(x.size))
    _check(
        2 * float(sps.norm.sf(abs(z))),
        what,
        f"mean {x.mean():.6g} vs {expected:.6g} (z = {z:.2f}, n = {x.size})",
        alpha,
    )


def ks_law(x, cdf, *, what, alpha=ALPHA):
    """Kolmogorov-Smirnov test that the samples x are i.i.d. draws of the law with this cdf."""
    from scipy.stats import kstest

    result = kstest(finite_samples(x, what), cdf)
    _check(
        result.pvalue, what, f"KS distance {result.statistic:.4f} on {np.size(x)} samples", alpha
    )


def binomial_power(n, p0, p1, alpha=ALPHA):
    """P(binomial_at_most rejects) when the true probability is p1."""
    critical = sps.binom.isf(alpha, n, p0)  # smallest c with P(X > c | p0) <= alpha
    while sps.binom.sf(critical - 1, n, p0) >= alpha:
        critical += 1
    return float(sps.binom.sf(critical - 1, n, p1))


def normal_law(x, mean, var, *, what, alpha=ALPHA):
    """Test that x holds i.i.d. draws of N(mean, var): z-test of the mean and chi-square test of
    the spread, each two-sided at alpha/2 (one check)."""
    x = finite_samples(x, what)
    n = x.size
    z = (x - mean) / np.sqrt(var)
    z_mean = z.mean() * np.sqrt(n)
    p_mean = 2 * sps.norm.sf(abs(z_mean))
    q = float(np.sum(z**2))
    p_var = 2 * min(sps.chi2.cdf(q, n), sps.chi2.sf(q, n))
    p_value = min(1.0, 2 * min(p_mean, p_var))
    _check(
        p_value,
        what,
        f"n = {n}, standardized mean {z_mean:.2f} (N(0,1) expected), "
        f"sum z^2 = {q:.1f} (chi2({n}) expected, mean {n})",
        alpha,
    )
