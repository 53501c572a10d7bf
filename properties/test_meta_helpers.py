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
