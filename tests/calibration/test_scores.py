"""Scores and naive baselines against hand-computed values."""

import numpy as np
import pytest
from scipy import stats

from simsend.calibration import scores


def test_crps_point_mass_is_absolute_error():
    for x, y in [(3.0, 5.0), (-1.5, 2.0), (7.0, 7.0)]:
        assert scores.crps_sample(np.full(17, x), y) == pytest.approx(abs(x - y))


def test_crps_two_point_hand_value():
    # E|X - 0| = 0.5; E|X - X'| over all 4 ordered pairs = 2/4 = 0.5; CRPS = 0.5 - 0.25.
    assert scores.crps_sample([0.0, 1.0], 0.0) == pytest.approx(0.25)
    # Three points {0, 1, 3}, y = 2: E|X-y| = (2+1+1)/3; pairs sum = 2*(1+3+2) = 12 over 9.
    assert scores.crps_sample([3.0, 0.0, 1.0], 2.0) == pytest.approx(4 / 3 - 0.5 * 12 / 9)


def test_crps_matches_pairwise_definition_and_axis():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    y = np.array([0.1, -2.0, 1.0])
    direct = (np.abs(x - y).mean(0)
              - 0.5 * np.abs(x[:, None, :] - x[None, :, :]).mean(axis=(0, 1)))
    np.testing.assert_allclose(scores.crps_sample(x, y), direct)
    np.testing.assert_allclose(scores.crps_sample(x.T, y, axis=1), direct)


def test_crps_normal_closed_form():
    # CRPS(N(0,1), y) = y(2Phi(y)-1) + 2phi(y) - 1/sqrt(pi)
    y = 0.7
    exact = y * (2 * stats.norm.cdf(y) - 1) + 2 * stats.norm.pdf(y) - 1 / np.sqrt(np.pi)
    x = stats.norm.ppf((np.arange(20000) + 0.5) / 20000)
    assert scores.crps_sample(x, y) == pytest.approx(exact, abs=2e-4)


def test_coverage_constructed_case():
    x = np.arange(101.0)  # 5%..95% interval = [5, 95]; 25%..75% = [25, 75]
    obs = np.array([0.0, 5.0, 30.0, 80.0, 95.0, 100.0])
    assert scores.covered(x, obs, 0.9).tolist() == [False, True, True, True, True, False]
    assert scores.coverage(x, obs, 0.9) == pytest.approx(4 / 6)
    assert scores.coverage(x, obs, 0.5) == pytest.approx(1 / 6)
    # Per-cell samples along axis 0: each observation is scored against its own column.
    xs = np.stack([np.arange(101.0), np.arange(101.0) + 1000], axis=1)
    assert scores.covered(xs, np.array([50.0, 50.0]), 0.9).tolist() == [True, False]
    with pytest.raises(ValueError):
        scores.interval(x, 1.0)


def test_mape_and_bias_hand_values():
    assert scores.mape([110.0, 90.0, 100.0], [100.0, 100.0, 100.0]) == pytest.approx(0.2 / 3)
    assert scores.bias([110.0, 90.0, 130.0], [100.0, 100.0, 100.0]) == pytest.approx(0.1)
    assert np.isnan(scores.ape(1.0, 0.0))


def test_naive_linear_trend_exact_on_a_line_and_uses_last_five_years():
    line = 3.0 + 2.5 * np.arange(8)
    np.testing.assert_allclose(scores.naive_linear_trend(line, 3), 3.0 + 2.5 * np.arange(8, 11))
    # Values before the 5-year window must not matter.
    bent = line.copy()
    bent[:3] = [100.0, -50.0, 7.0]
    np.testing.assert_allclose(scores.naive_linear_trend(bent, 3), 3.0 + 2.5 * np.arange(8, 11))
    # Vectorised over leading axes.
    two = np.stack([line, 2 * line])
    np.testing.assert_allclose(scores.naive_linear_trend(two, 1)[:, 0], [23.0, 46.0])


def test_naive_constant_growth_exact_on_geometric_series_and_uses_last_three_years():
    geo = 50.0 * 1.07 ** np.arange(6)
    np.testing.assert_allclose(scores.naive_constant_growth(geo, 4),
                               50.0 * 1.07 ** np.arange(6, 10))
    # On a straight line it is not exact: growth of 3 years compounded overshoots.
    line = np.array([10.0, 20.0, 30.0, 40.0])
    fc = scores.naive_constant_growth(line, 1)
    assert fc[0] == pytest.approx(40.0 * 4.0 ** (1 / 3))
    bent = np.r_[1e6, geo[1:]]
    np.testing.assert_allclose(scores.naive_constant_growth(bent, 2),
                               50.0 * 1.07 ** np.arange(6, 8))


def test_naive_constant_growth_with_a_short_history_uses_what_there_is():
    """Three years (e.g. SEN2 new plans 2016-2018): both growth rates; fewer is refused."""
    fc = scores.naive_constant_growth([100.0, 121.0, 144.0], 2)
    np.testing.assert_allclose(fc, 144.0 * 1.2 ** np.arange(1, 3))
    with pytest.raises(ValueError, match="3 years"):
        scores.naive_constant_growth([100.0, 110.0], 2)


def test_mape_and_bias_without_any_scorable_pair_are_nan_quietly():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(scores.mape([np.nan, 1.0], [5.0, 0.0]))
        assert np.isnan(scores.bias([np.nan], [5.0]))
    assert scores.mape([110.0, np.nan], [100.0, 100.0]) == pytest.approx(0.1)


def test_pit_known_answers_and_ties():
    assert scores.pit(np.arange(100.0), 49.5) == pytest.approx(0.5)
    assert scores.pit(np.arange(100.0), 10.0) == pytest.approx(0.105)  # 10 below, 1 equal
    assert scores.pit([1.0, 2.0, 2.0, 3.0], 2.0) == pytest.approx(0.5)
    assert scores.pit([5.0, 6.0], 1.0) == 0.0 and scores.pit([5.0, 6.0], 9.0) == 1.0
    assert scores.pit(np.full(7, 3.0), 3.0) == pytest.approx(0.5)
    assert np.isnan(scores.pit([1.0, 2.0], np.nan))
    rng = np.random.default_rng(2)
    x = rng.integers(0, 20, size=(300, 4)).astype(float)
    y = np.array([3.0, 10.0, 10.5, 25.0])
    direct = (x < y).mean(0) + 0.5 * (x == y).mean(0)
    np.testing.assert_allclose(scores.pit(x, y), direct)
    np.testing.assert_allclose(scores.pit(x.T, y, axis=1), direct)


def test_pit_of_calibrated_forecasts_is_uniform():
    rng = np.random.default_rng(3)
    mu = rng.normal(0, 5, 4000)
    draws = mu + rng.normal(size=(500, 4000))
    obs = mu + rng.normal(size=4000)
    counts = np.histogram(scores.pit(draws, obs), bins=10, range=(0, 1))[0]
    assert np.abs(counts / 400 - 1).max() < 0.2


def test_finite_tail():
    assert scores.finite_tail([np.nan, 1.0, 2.0]).tolist() == [1.0, 2.0]
    assert scores.finite_tail([1.0, np.nan, 2.0, 3.0]).tolist() == [2.0, 3.0]
    assert scores.finite_tail([1.0, 2.0, np.nan]).size == 0
    assert scores.finite_tail([4.0, 5.0]).tolist() == [4.0, 5.0]


def test_naive_growth_log_errors_hand_series():
    # 100 x 4 then 200: from origins at index 2 and 3 the rule forecasts 100 (no growth).
    e = scores.naive_growth_log_errors([100.0, 100.0, 100.0, 100.0, 200.0], 3)
    np.testing.assert_allclose(e[0], [0.0, np.log(2)])
    np.testing.assert_allclose(e[1], [np.log(2)])
    assert e[2].size == 0
    # Exact on a geometric series: every past error is 0.
    geo = scores.naive_growth_log_errors(50.0 * 1.07 ** np.arange(8), 2)
    assert [len(x) for x in geo] == [5, 4]
    np.testing.assert_allclose(np.concatenate(geo), 0.0, atol=1e-12)
    # A gap restarts the history; zeros are skipped.
    gap = scores.naive_growth_log_errors([10.0, 10.0, 10.0, np.nan, 20.0, 20.0, 20.0, 40.0], 1)
    np.testing.assert_allclose(gap[0], [np.log(2)])
    assert scores.naive_growth_log_errors([1.0, 1.0, 1.0, 0.0], 1)[0].size == 0


def test_naive_growth_band_pools_errors_and_gives_known_quantiles():
    """A geometric series (errors 0) and a jump (errors 0, log 2): pooled, then scaled."""
    geo = 100.0 * 1.1 ** np.arange(5)
    jump = np.array([100.0, 100.0, 100.0, 100.0, 200.0])
    point, err = scores.naive_growth_band([geo, jump], 2)
    np.testing.assert_allclose(point[0], 100.0 * 1.1 ** np.arange(5, 7))
    np.testing.assert_allclose(point[1], 200.0 * 2 ** (np.arange(1, 3) / 3))
    np.testing.assert_allclose(np.sort(err[0]), [0.0, 0.0, 0.0, np.log(2)], atol=1e-12)
    np.testing.assert_allclose(np.sort(err[1]), [0.0, np.log(2)], atol=1e-12)
    # The band of the geometric series at lead 1: values p, p, p, 2p.
    sample = point[0, 0] * np.exp(err[0])
    lo, hi = scores.interval(sample, 0.9)
    assert lo == pytest.approx(point[0, 0]) and hi == pytest.approx(1.85 * point[0, 0])
    # Too short for the rule (fewer than 3 years): no point forecast, no errors.
    p, e = scores.naive_growth_band([[5.0, 6.0]], 1)
    assert np.isnan(p).all() and e[0].size == 0


def test_naive_growth_band_reads_only_the_histories_given():
    """Each history ends at the origin: truncating a longer series is all it takes."""
    rng = np.random.default_rng(4)
    ys = [100 * np.cumprod(1 + rng.normal(0.05, 0.03, 12)) for _ in range(3)]
    a = scores.naive_growth_band([y[:8] for y in ys], 3)
    moved = [np.r_[y[:8], y[8:] * 5] for y in ys]
    b = scores.naive_growth_band([y[:8] for y in moved], 3)
    np.testing.assert_array_equal(a[0], b[0])
    for x, z in zip(a[1], b[1], strict=True):
        np.testing.assert_array_equal(x, z)
