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
