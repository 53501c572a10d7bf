"""The shared helpers: tolerances, statistics, evidence and refutation, adapters, profiles."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import strategies as st
from scipy import stats as sps

from properties import adapters, evidence, profiles, stats
from properties.strategies import Seed
from properties.tolerances import assert_close, unit_roundoff


def test_assert_close_within_and_beyond_the_budget():
    one_ulp = np.nextafter(1.0, 2.0)
    assert_close(np.array([one_ulp]), np.array([1.0]), ulps=2, scale=1.0, what="x")  # 1 ulp = 2u
    with pytest.raises(AssertionError, match="^x: .* exceeds the tolerance"):
        assert_close(np.array([one_ulp]), np.array([1.0]), ulps=1, scale=1.0, what="x")
    with pytest.raises(AssertionError, match="exceeds"):
        assert_close(np.array([one_ulp]), np.array([1.0]), ulps=0, what="x")


def test_assert_close_is_exact_against_fractions():
    third = np.array([Fraction(1, 3)], dtype=object)
    assert_close(third, third, ulps=0, what="exact")
    with pytest.raises(AssertionError, match="exceeds"):
        assert_close(np.array([1 / 3]), third, ulps=0, what="exact")
    assert_close(np.array([1 / 3]), third, ulps=1, scale=1 / 3, what="rounded")  # |err| <= u/3


def test_a_float_result_against_an_exact_reference_says_exactness_is_required():
    """A float implementation checked exactly fails with the reason, not only a tiny error."""
    exact = np.array([Fraction(1, 3)], dtype=object)
    with pytest.raises(AssertionError, match="needs exact arithmetic on Fraction input"):
        assert_close(np.array([1 / 3]), exact, ulps=0, what="mean")
    with pytest.raises(AssertionError) as wrong_fraction:
        assert_close(np.array([Fraction(1, 2)], dtype=object), exact, ulps=0, what="mean")
    assert "exact arithmetic" not in str(wrong_fraction.value)


def test_assert_close_rejects_nan_and_shape_mismatch():
    with pytest.raises(AssertionError, match="NaN"):
        assert_close(np.array([np.nan]), np.array([1.0]), ulps=4, what="v")
    with pytest.raises(AssertionError, match="shape"):
        assert_close(np.ones(2), np.ones(3), ulps=4, what="v")


def test_unit_roundoff():
    assert unit_roundoff(np.float64) == 2.0**-53 and unit_roundoff(np.float32) == 2.0**-24


def test_binomial_checks_and_their_count():
    before = stats.checks_made
    stats.binomial_at_most(25, 100, 0.25, what="typical count")
    with pytest.raises(AssertionError, match="p = .* < alpha"):
        stats.binomial_at_most(100, 100, 0.25, what="every run exceeds")
    stats.binomial_exceeds(100, 100, 0.25, what="control rejected")
    with pytest.raises(AssertionError, match="do not reject"):
        stats.binomial_exceeds(25, 100, 0.25, what="control not rejected")
    stats.binomial_two_sided(50, 100, 0.5, what="fair coin")
    with pytest.raises(AssertionError):
        stats.binomial_two_sided(95, 100, 0.5, what="biased coin")
    assert stats.checks_made == before + 6


def test_binomial_power():
    assert stats.binomial_power(400, 0.25, 0.25) <= stats.ALPHA
    assert stats.binomial_power(400, 0.25, 0.9) > 1 - 1e-12
    assert stats.binomial_power(400, 0.25, 0.3) < stats.binomial_power(400, 0.25, 0.4)


def test_normal_law_accepts_the_law_and_rejects_a_shift_or_a_wrong_spread():
    z = np.random.default_rng(12345).standard_normal(2000)
    stats.normal_law(3 + 2 * z, 3.0, 4.0, what="right law")
    with pytest.raises(AssertionError, match="standardized mean"):
        stats.normal_law(3.5 + 2 * z, 3.0, 4.0, what="shifted")
    with pytest.raises(AssertionError):
        stats.normal_law(3 + 2.5 * z, 3.0, 4.0, what="too wide")


def test_a_nan_or_infinite_sample_fails_every_statistical_check():
    """A NaN p-value compares False with alpha: without the finiteness check a sampler that
    returns NaN passed the KS test (found by mutating reverse Euler-Maruyama's dt to 1/dt)."""
    z = np.random.default_rng(7).standard_normal(2000)
    stats.ks_law(z, sps.norm.cdf, what="right law")
    checks = {
        "ks": lambda x: stats.ks_law(x, sps.norm.cdf, what="ks"),
        "normal": lambda x: stats.normal_law(x, 0.0, 1.0, what="normal"),
        "mean": lambda x: stats.mean_equals(x, 0.0, what="mean"),
        "negative": lambda x: stats.mean_negative(x - 1, what="negative"),
        "hoeffding": lambda x: stats.mean_within(x.mean(), 0.0, x.size, -5, 5, what="hoeffding"),
    }
    for bad in (np.nan, np.inf):
        x = z.copy()
        x[3] = bad
        for name, check in checks.items():
            with pytest.raises(AssertionError, match=f"{name}: 1 of (2000|1) samples are NaN"):
                check(x)
    with pytest.raises(AssertionError, match="p = nan"):
        stats._check(float("nan"), "nan p-value", "detail", stats.ALPHA)


def test_refute_finds_the_minimal_counterexample():
    with evidence.collecting() as ev:
        found = evidence.refute(st.integers(0, 100), lambda n: n < 10, claim="all below 10")
    assert found == 10 and ev.counterexample == "10"
    with pytest.raises(evidence.ClaimNotRefuted, match="no counterexample"):
        evidence.refute(
            st.integers(0, 100), lambda n: n <= 100, claim="true claim", max_examples=50
        )


def test_evidence_worst_and_figures(tmp_path, monkeypatch):
    with evidence.collecting() as ev:
        ev.worst("e", 1.0)
        ev.worst("e", 0.5)
        ev.worst("p", 0.2, larger_is_worse=False)
        ev.worst("p", 0.1, larger_is_worse=False)
        evidence.figure("skipped", lambda fig: pytest.fail("drawn without FIGURE_DIR"))
        monkeypatch.setattr(evidence, "FIGURE_DIR", tmp_path)
        evidence.figure("line", lambda fig: fig.subplots().plot([0, 1]))
    assert ev.numbers == {"e": 1.0, "p": 0.1}
    assert ev.figures == ["line.png"] and (tmp_path / "line.png").stat().st_size > 1000


def test_adapters_parse_and_resolve():
    assert adapters.parse(["sa=off-by-one-mean"]) == {"sa": "off-by-one-mean"}
    for bad in ("sa", "sa=", "nope=x"):
        with pytest.raises(ValueError, match="--target"):
            adapters.parse([bad])
    assert adapters.resolve("sa").__name__ == "Reference"
    assert adapters.resolve("sa", "properties.adapters.sa:OffByOneMean").__name__ == "OffByOneMean"
    with pytest.raises(ValueError, match="no adapter"):
        adapters.resolve("sa", "missing")


def test_profiles_follow_the_environment(monkeypatch):
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    monkeypatch.setenv("CI", "true")
    assert profiles.active() == "ci"
    monkeypatch.delenv("CI")
    assert profiles.active() == "dev"
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "thorough")
    assert profiles.active() == "thorough"
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "fast")
    with pytest.raises(ValueError, match="HYPOTHESIS_PROFILE"):
        profiles.active()


def test_seed_prints_and_seeds_generators():
    seed = Seed(7)
    assert repr(seed) == "Seed(7)"
    assert seed.numpy().integers(1000) == np.random.default_rng(7).integers(1000)
    assert seed.torch().initial_seed() == 7


# Power of the statistical checks -------------------------------------------------------------
# Each check is shown to reject a shifted law and a wider law at the sample sizes its callers
# use (found with `grep -rn "stats\.<helper>" properties`), with the power computed here, before
# the draw: exactly (binomial, chi-square), by a rigorous bound (DKW for KS, Hoeffding), or by
# the normal approximation of a mean (stated where used). Each design asserts a power of at least
# 1 - POWER_MISS, so each seeded draw below misses with probability <= 1e-6 under its law.

POWER_MISS = 1e-6


def ks_critical(n):
    """The KS distance above which ks_law's p-value is below ALPHA at n samples (the larger of
    the exact and the asymptotic critical values: kstest picks either, by n)."""
    return max(sps.kstwo.isf(stats.ALPHA, n), sps.kstwobign.isf(stats.ALPHA) / np.sqrt(n))


def ks_power(distance, n):
    """Lower bound on P(ks_law rejects) for samples of a law at KS distance `distance` from the
    tested one: the empirical cdf is within t of its own law except with probability
    2 exp(-2 n t^2) (Dvoretzky-Kiefer-Wolfowitz, Massart's constant), so the observed distance
    exceeds the critical value c unless the sample strays by distance - c."""
    margin = distance - ks_critical(n)
    return max(0.0, 1 - 2 * np.exp(-2 * n * margin**2)) if margin > 0 else 0.0


def ks_distance_shift(d):
    """sup_x |Phi(x - d) - Phi(x)| = 2 Phi(d/2) - 1 (at x = d/2)."""
    return 2 * sps.norm.cdf(d / 2) - 1


def ks_distance_wider(sigma):
    """sup_x |Phi(x / sigma) - Phi(x)|, at x^2 = 2 ln(sigma) / (1 - 1/sigma^2) (densities equal)."""
    x = np.sqrt(2 * np.log(sigma) / (1 - sigma**-2))
    return sps.norm.cdf(x) - sps.norm.cdf(x / sigma)


# n: 2000 (test_diffusion_sde PF-ODE), 4000 (test_diffusion_sde reverse SDE and PC,
# test_flows_matching), 20000 (test_diffusion_ddim); the smallest shift / widening of N(0, 1)
# (to 0.05 / 0.1) that the DKW bound certifies at power >= 1 - 1e-6.
KS_DESIGNS = [(2000, 0.35, 1.7), (4000, 0.25, 1.5), (20000, 0.1, 1.2)]


@pytest.mark.parametrize("n, shift, sigma", KS_DESIGNS)
def test_ks_law_rejects_a_shifted_and_a_wider_law(n, shift, sigma):
    """Powers (DKW lower bounds): shift 0.35 / 0.25 / 0.1 at n = 2000 / 4000 / 20000:
    1 - 6e-10 / 1 - 2e-10 / 1 - 6e-7; sigma 1.7 / 1.5 / 1.2: 1 - 8e-7 / 1 - 2e-9 / 1 - 5e-10."""
    for distance in (ks_distance_shift(shift), ks_distance_wider(sigma)):
        assert ks_power(distance, n) >= 1 - POWER_MISS, "design: the alternative must have power"
    z = np.random.default_rng(n).standard_normal(n)
    stats.ks_law(z, sps.norm.cdf, what="right law")
    with pytest.raises(AssertionError, match=f"KS distance .* on {n} samples"):
        stats.ks_law(z + shift, sps.norm.cdf, what="shifted")
    with pytest.raises(AssertionError, match=f"KS distance .* on {n} samples"):
        stats.ks_law(sigma * z, sps.norm.cdf, what="wider")


def test_ks_power_bound_matches_a_simulation():
    """The DKW bound is a lower bound: at n = 2000, a shift of 0.25 has bound 0.98; in 200
    seeded draws ks_law rejects at least 0.98 of them (binomial, alpha 1e-7)."""
    n, shift = 2000, 0.25
    bound = ks_power(ks_distance_shift(shift), n)
    assert 0.98 < bound < 0.99
    rng = np.random.default_rng(99)
    misses = sum(
        sps.kstest(rng.standard_normal(n) + shift, sps.norm.cdf).pvalue >= stats.ALPHA
        for _ in range(200)
    )
    stats.binomial_at_most(int(misses), 200, 1 - bound, what="KS misses at the DKW bound")


def z_power(effect, n, sigma, z_crit):
    """Normal approximation of P(|xbar - mu0| / (sigma / sqrt n) > z_crit) for a mean off by
    `effect` (one side; the other side adds < Phi(-z_crit) = alpha / 2)."""
    return float(sps.norm.sf(z_crit - abs(effect) * np.sqrt(n) / sigma))


# n: 3000 (test_flows_matching, test_diffusion_sde log-likelihood), 20000 (test_diffusion_sde
# Hutchinson), 200000 (test_rl_approximation_robbins_monro noise law); shift = (z_c + 5) / sqrt n
# standard deviations with z_c = Phi^-1(1 - alpha/2) = 5.33: power Phi(5) = 1 - 2.9e-7.
MEAN_SIZES = [3000, 20000, 200_000]


@pytest.mark.parametrize("n", MEAN_SIZES)
def test_mean_equals_rejects_a_shifted_law_also_when_wider(n):
    """mean_equals tests the mean only: a wider law with the right mean is (rightly) accepted; a
    shifted one is rejected, and widening the law does not hide a shift scaled with its spread.
    Powers (normal approximation of the mean): Phi(5) = 1 - 2.9e-7 at every n."""
    z_crit = sps.norm.isf(stats.ALPHA / 2)
    shift = (z_crit + 5) / np.sqrt(n)
    z = np.random.default_rng(n).standard_normal(n)
    for sigma in (1.0, 3.0):
        assert z_power(sigma * shift, n, sigma, z_crit) >= 1 - POWER_MISS
        stats.mean_equals(sigma * z, 0.0, what="right mean")
        with pytest.raises(AssertionError, match=f"n = {n}\\); p = "):
            stats.mean_equals(sigma * (z + shift), 0.0, what="shifted")
    assert z_power(shift, n, 3.0, z_crit) < 0.5  # the same shift in a 3x wider law: no power


# (n, lo, hi): test_rl_monte_carlo (100 and 1600 returns in [-g, g]; 4000 episodes in [1, 10]),
# test_diffusion_sde (20000 Rademacher probes in [-b, b]).
HOEFFDING_DESIGNS = [(100, -1.0, 1.0), (1600, -1.0, 1.0), (4000, 1.0, 10.0), (20000, -3.0, 3.0)]


@pytest.mark.parametrize("n, lo, hi", HOEFFDING_DESIGNS)
def test_mean_within_rejects_a_shifted_law_whatever_its_spread(n, lo, hi):
    """mean_within sees a mean, n and the range [lo, hi] only (Hoeffding). It rejects when the
    gap exceeds the radius r = (hi - lo) sqrt(ln(2/alpha) / (2n)); a law whose mean is off by
    slack + r + t is rejected with probability >= 1 - 2 exp(-2 n t^2 / (hi - lo)^2) (Hoeffding
    again), 1 - 1e-6 for t = r_6 (the radius at 1e-6): at n = 100 that is a shift of 0.56 of the
    range (0.66 with slack), at n = 20000 of 0.040. Laws: uniform on [lo, hi] and the wider
    two-point law on {lo, hi} (variance (hi - lo)^2 / 4); the shifted law is either one mapped onto
    [lo + shift, hi] and tested against the mean mid - shift / 2."""
    width = hi - lo
    radius = stats.hoeffding_radius(n, lo, hi)
    t = stats.hoeffding_radius(n, lo, hi, alpha=POWER_MISS)
    assert 1 - 2 * np.exp(-2 * n * t**2 / width**2) >= 1 - POWER_MISS * (1 + 1e-9)
    rng = np.random.default_rng(n)
    for slack in (0.0, 0.1 * width):
        shift = slack + radius + t
        assert shift < width, "design: the shifted law must fit inside [lo, hi]"
        for law in ("uniform", "two-point"):
            u = rng.uniform(size=n) if law == "uniform" else rng.integers(0, 2, n).astype(float)
            mid = (lo + hi) / 2
            right = lo + width * u  # mean mid
            shifted = lo + shift + (width - shift) * u  # in [lo + shift, hi], mean mid + shift / 2
            stats.mean_within(right.mean(), mid, n, lo, hi, slack=slack, what="right mean")
            with pytest.raises(AssertionError, match="Hoeffding radius"):
                stats.mean_within(
                    shifted.mean(), mid - shift / 2, n, lo, hi, slack=slack, what="shifted"
                )


# n: 2400 (test_sd_latent, 24 prompts x 100), 4000 (test_diffusion_guidance).
@pytest.mark.parametrize("n", [2400, 4000])
def test_mean_negative_fails_a_zero_or_positive_mean_and_passes_a_negative_one(n):
    """mean_negative asserts E d < 0; it must fail for a law with mean 0 (probability 1 - alpha)
    or a shifted positive mean, also when the law is 3x wider, and pass for a mean of
    -(z_c + 5) sd / sqrt n (power Phi(5) = 1 - 2.9e-7, normal approximation; z_c = 5.20)."""
    z_crit = sps.norm.isf(stats.ALPHA)
    effect = (z_crit + 5) / np.sqrt(n)
    z = np.random.default_rng(n).standard_normal(n)
    for sigma in (1.0, 3.0):
        assert z_power(sigma * effect, n, sigma, z_crit) >= 1 - POWER_MISS
        stats.mean_negative(sigma * (z - effect), what="negative mean")
        for mean in (0.0, effect):
            with pytest.raises(AssertionError, match="not significantly < 0"):
                stats.mean_negative(sigma * (z + mean), what="zero or positive mean")


def test_mean_negative_fails_constant_zero_differences():
    """Identical paired samples (a variant that ignores the parameter compared) give d = 0 and
    z = 0/0: the test must fail, not pass on a NaN p-value; constant negative d passes."""
    with pytest.raises(AssertionError, match="not significantly < 0"):
        stats.mean_negative(np.zeros(100), what="identical pairs")
    stats.mean_negative(np.full(100, -1.0), what="all negative")


# n: 400 (test_rl_approximation_robbins_monro), 4000 (test_diffusion_ddpm / ddim / sde).
NORMAL_DESIGNS = [(400, 0.53, 1.5), (4000, 0.17, 1.15)]


@pytest.mark.parametrize("n, shift, sigma", NORMAL_DESIGNS)
def test_normal_law_power_at_the_callers_sizes(n, shift, sigma):
    """normal_law rejects when the standardized mean or sum z^2 is outside its two-sided
    alpha/4 range. Power for a shift d: >= Phi(d sqrt n - z_(alpha/4)) (normal approximation of
    the mean test alone): 1 - 1.3e-7 (n = 400, d = 0.53), 1 - 5.8e-8 (n = 4000, d = 0.17). For a
    law sigma times wider, sum z^2 = sigma^2 chi2(n) exactly: power chi2.sf(c / sigma^2, n)
    with c the upper alpha/4 point: 1 - 1.8e-9 (n = 400, sigma 1.5), 1 - 1.6e-12 (n = 4000,
    sigma 1.15)."""
    z_mean_crit = sps.norm.isf(stats.ALPHA / 4)
    assert z_power(shift, n, 1.0, z_mean_crit) >= 1 - POWER_MISS
    wide_power = sps.chi2.sf(sps.chi2.isf(stats.ALPHA / 4, n) / sigma**2, n)
    assert wide_power >= 1 - POWER_MISS
    z = np.random.default_rng(n).standard_normal(n)
    stats.normal_law(z, 0.0, 1.0, what="right law")
    with pytest.raises(AssertionError, match=f"n = {n}, standardized mean"):
        stats.normal_law(z + shift, 0.0, 1.0, what="shifted")
    with pytest.raises(AssertionError, match=f"n = {n}, standardized mean"):
        stats.normal_law(sigma * z, 0.0, 1.0, what="wider")


def binomial_two_sided_power(n, p0, p1):
    """Lower bound on P(binomial_two_sided rejects) under p1 > p0, exactly: P(count >= c) with c
    the smallest count above n p0 whose two-sided p-value under p0 is below ALPHA (found by
    bisection: the p-value falls as the count moves up from the mode); the lower tail is left
    out."""
    lo, hi = int(n * p0), n  # p-value(lo) >= ALPHA > p-value(hi)
    assert sps.binomtest(hi, n, p0).pvalue < stats.ALPHA <= sps.binomtest(lo, n, p0).pvalue
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if sps.binomtest(mid, n, p0).pvalue < stats.ALPHA else (mid, hi)
    return float(sps.binom.sf(hi - 1, n, p1))


def test_binomial_checks_power_at_the_callers_sizes():
    """A count has no spread of its own (its law is fixed by p), so 'shifted' is the only
    alternative. Exact powers at the callers' (n, p0): binomial_at_most / binomial_exceeds at
    (200, 0.25) (test_rl_approximation_*) against p1 = 0.6: 1 - 2.1e-7 (against 0.5 only
    0.986); binomial_two_sided at (400, 0.5) (test_rl_converters) and (4000, 0.2)
    (test_sd_latent) against p0 + 0.25 and p0 + 0.07: 1 - 1.3e-7 each. At (20, 0.1) (test_rl_monte_carlo) the
    power is weak, and pinned here so that it is visible: 0.25 against a failure rate of 0.5,
    1 - 6e-5 against 0.9 (the count must reach 12 of 20 to reject)."""
    assert stats.binomial_power(200, 0.25, 0.6) >= 1 - POWER_MISS
    assert 0.985 < stats.binomial_power(200, 0.25, 0.5) < 0.987
    assert 0.25 < stats.binomial_power(20, 0.1, 0.5) < 0.26
    assert 1 - 7e-5 < stats.binomial_power(20, 0.1, 0.9) < 1 - 5e-5
    for n, p0, p1 in [(400, 0.5, 0.75), (4000, 0.2, 0.27)]:
        assert binomial_two_sided_power(n, p0, p1) >= 1 - POWER_MISS
    rng = np.random.default_rng(5)
    with pytest.raises(AssertionError, match="p = .* < alpha"):
        stats.binomial_at_most(int(rng.binomial(200, 0.6)), 200, 0.25, what="shifted")
    stats.binomial_exceeds(int(rng.binomial(200, 0.6)), 200, 0.25, what="control, shifted")
    with pytest.raises(AssertionError, match="do not reject"):
        stats.binomial_exceeds(int(rng.binomial(200, 0.25)), 200, 0.25, what="control, H0")
    for n, p0, p1 in [(400, 0.5, 0.75), (4000, 0.2, 0.27)]:
        stats.binomial_two_sided(int(rng.binomial(n, p0)), n, p0, what="right p")
        with pytest.raises(AssertionError, match=f"of {n} events"):
            stats.binomial_two_sided(int(rng.binomial(n, p1)), n, p0, what="shifted")


@pytest.mark.parametrize("n, p0", [(20, 0.1), (200, 0.25)])
def test_binomial_power_is_the_rejection_probability_of_binomial_at_most(n, p0):
    """binomial_power (which the negative controls' designs rest on) equals the Binomial(n, p1)
    probability of the counts that binomial_at_most itself rejects, found by calling it on
    every count 0..n (exact sums; relative tolerance 1e-9 covers the two summation orders)."""
    rejected = []
    for count in range(n + 1):
        try:
            stats.binomial_at_most(count, n, p0, what="every count")
        except AssertionError:
            rejected.append(count)
    assert rejected == list(range(rejected[0], n + 1)), "the rejected counts form an upper tail"
    for p1 in (p0, 0.5, 0.6, 0.9):
        exact = float(sps.binom.pmf(rejected, n, p1).sum())
        assert stats.binomial_power(n, p0, p1) == pytest.approx(exact, rel=1e-9, abs=1e-300)


def test_a_failure_group_keeps_every_falsifying_example():
    """Hypothesis raises an ExceptionGroup when it finds several distinct failures; each
    sub-exception carries its own "Falsifying example" note, and the report keeps them all."""
    from properties.conftest import _falsifying_notes

    a, b = AssertionError("first\nmore"), ValueError("second")
    a.add_note("Falsifying example: f(x=0)")
    b.add_note("Falsifying example: f(x=1)")
    b.add_note("unrelated")
    notes = _falsifying_notes(ExceptionGroup("two", [a, b]))
    assert notes == [
        "AssertionError: first",
        "Falsifying example: f(x=0)",
        "ValueError: second",
        "Falsifying example: f(x=1)",
    ]
