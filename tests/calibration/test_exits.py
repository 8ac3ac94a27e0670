"""Needs-met share of EHC plan endings: counts, prior fit and posterior (exact answers)."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from simsend.calibration.exits import recent_counts, sample_share, share_posterior, share_prior


def _targets(nm, ex):
    nm, ex = np.asarray(nm, float), np.asarray(ex, float)
    return xr.Dataset({"needs_met": (("year", "area"), nm), "exits": (("year", "area"), ex)},
                      coords={"year": np.arange(2018, 2018 + nm.shape[0]),
                              "area": [f"A{i}" for i in range(nm.shape[1])]})


def test_recent_counts_take_each_areas_last_three_usable_years():
    nm = [[1, 5], [2, np.nan], [3, 6], [4, 7], [np.nan, 8]]
    ex = [[10, 50], [20, 60], [30, 70], [40, 5], [50, 90]]  # area B 2021: needs met > exits
    k, n = recent_counts(_targets(nm, ex))
    # A: 2019-2021 (2022 missing); B: 2018, 2020, 2022 (2019 missing, 2021 inconsistent)
    np.testing.assert_array_equal(k, [2 + 3 + 4, 5 + 6 + 8])
    np.testing.assert_array_equal(n, [20 + 30 + 40, 50 + 70 + 90])
    assert recent_counts(xr.Dataset()) is None


def test_one_area_posterior_is_beta_with_a_uniform_prior():
    a, b = share_posterior(_targets([[np.nan], [10], [30]], [[np.nan], [100], [200]]))
    np.testing.assert_array_equal(a, [41.0])
    np.testing.assert_array_equal(b, [261.0])


def test_prior_over_areas_recovers_a_known_beta():
    rng = np.random.default_rng(3)
    a0, b0 = 6.0, 34.0  # mean 0.15, the spread councils show
    n = rng.integers(50, 2000, size=400).astype(float)
    k = rng.binomial(n.astype(int), rng.beta(a0, b0, size=400)).astype(float)
    a, b = share_prior(k, n)
    assert a / (a + b) == pytest.approx(a0 / (a0 + b0), abs=0.01)
    assert a + b == pytest.approx(a0 + b0, rel=0.35)
    # a small area is pulled towards the others, a large one keeps its own share
    post_a, post_b = a + np.array([0.0, 500.0]), b + np.array([10.0, 500.0])
    assert post_a[0] / (post_a[0] + post_b[0]) > 0.05
    assert post_a[1] / (post_a[1] + post_b[1]) == pytest.approx(0.5, abs=0.02)


def test_draws_are_seeded_and_follow_the_posterior():
    t = _targets([[np.nan, np.nan], [40, 5], [60, 1]], [[np.nan, np.nan], [400, 30], [600, 40]])
    d1 = sample_share(t, 2, 4000, seed=7)
    d2 = sample_share(t, 2, 4000, seed=7)
    assert d1.dims == ("chain", "draw", "area")
    np.testing.assert_array_equal(d1.values, d2.values)
    alpha, beta = share_posterior(t)
    for j in range(2):
        x = d1.values[..., j].ravel()
        assert stats.kstest(x, stats.beta(alpha[j], beta[j]).cdf).pvalue > 1e-3
    assert sample_share(xr.Dataset({"area": ["A"]}), 1, 5, 0) is None
