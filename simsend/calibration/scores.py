"""Forecast scores and naive baselines (pure NumPy).

Sample arrays hold forecast draws along ``axis`` (default 0); observations broadcast against
the remaining axes.
"""

from __future__ import annotations

import numpy as np


def crps_sample(samples, obs, axis: int = 0) -> np.ndarray:
    """Continuous ranked probability score of a sample forecast (energy form).

    ``CRPS = E|X - y| - 0.5 E|X - X'|`` with ``X, X'`` independent draws of the forecast;
    ``E|X - X'|`` is computed exactly over all pairs from the sorted sample.

    Examples
    --------
    >>> float(crps_sample([3.0, 3.0, 3.0], 5.0))
    2.0
    >>> float(crps_sample([0.0, 1.0], 0.0))
    0.25

    """
    x = np.moveaxis(np.asarray(samples, float), axis, 0)
    y = np.asarray(obs, float)
    n = x.shape[0]
    term1 = np.abs(x - y).mean(axis=0)
    xs = np.sort(x, axis=0)
    i = np.arange(1, n + 1).reshape((n,) + (1,) * (x.ndim - 1))
    mean_pair = 2.0 * ((2 * i - n - 1) * xs).sum(axis=0) / n ** 2
    return term1 - 0.5 * mean_pair


def interval(samples, level: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` interval ``(lower, upper)`` from sample quantiles.

    Examples
    --------
    >>> lo, hi = interval(np.arange(101.0), 0.9)
    >>> float(lo), float(hi)
    (5.0, 95.0)

    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    q = np.quantile(np.asarray(samples, float), [(1 - level) / 2, (1 + level) / 2], axis=axis)
    return q[0], q[1]


def covered(samples, obs, level: float, axis: int = 0) -> np.ndarray:
    """Whether each observation lies inside the central ``level`` interval (bool array).

    Examples
    --------
    >>> covered(np.arange(101.0), np.array([50.0, 99.0]), 0.9).tolist()
    [True, False]

    """
    lo, hi = interval(samples, level, axis)
    y = np.asarray(obs, float)
    return (y >= lo) & (y <= hi)


def coverage(samples, obs, level: float, axis: int = 0) -> float:
    """Share of observations inside their central ``level`` interval."""
    return float(np.mean(covered(samples, obs, level, axis)))


def ape(point, obs) -> np.ndarray:
    """Absolute percentage error ``|point - obs| / |obs|`` (as a fraction; NaN where obs=0).

    Examples
    --------
    >>> ape(110.0, 100.0).round(6).tolist()
    0.1

    """
    p, y = np.asarray(point, float), np.asarray(obs, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y != 0, np.abs(p - y) / np.abs(y), np.nan)


def _mean_finite(x) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def mape(point, obs) -> float:
    """Mean absolute percentage error (fraction), ignoring zero observations.

    NaN when no pair can be scored (e.g. a naive baseline with too short a history).
    """
    return _mean_finite(ape(point, obs))


def bias(point, obs) -> float:
    """Mean relative error ``(point - obs) / obs`` (fraction; positive = over-forecast).

    Examples
    --------
    >>> bias([110.0, 90.0, 120.0], [100.0, 100.0, 100.0])
    0.06666666666666667

    """
    p, y = np.asarray(point, float), np.asarray(obs, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _mean_finite(np.where(y != 0, (p - y) / y, np.nan))


def naive_linear_trend(history, horizon: int, window: int = 5) -> np.ndarray:
    """Least-squares straight line through the last ``window`` values, extrapolated.

    Parameters
    ----------
    history : array (..., T)
        Annual values, last axis time, most recent last.
    horizon : int
        Years ahead.
    window : int
        Years fitted (default 5).

    Returns
    -------
    ndarray (..., horizon)

    Examples
    --------
    >>> naive_linear_trend([1.0, 2.0, 3.0, 4.0, 5.0], 2).tolist()
    [6.0, 7.0]

    """
    y = np.asarray(history, float)[..., -window:]
    k = y.shape[-1]
    if k < 2:
        raise ValueError("need at least two years of history")
    x = np.arange(k) - (k - 1) / 2.0
    slope = (y * x).sum(axis=-1) / (x ** 2).sum()
    level = y.mean(axis=-1)
    ahead = (k - 1) / 2.0 + np.arange(1, horizon + 1)
    return level[..., None] + slope[..., None] * ahead


def naive_constant_growth(history, horizon: int, window: int = 3) -> np.ndarray:
    """Compound the mean annual growth rate of the last ``window`` years forward.

    The rate is ``(y_T / y_{T-window}) ** (1 / window)``: exact on a geometric series.
    A series shorter than ``window + 1`` years but with at least 3 uses every year it has
    (``window = len - 1``), as a spreadsheet with only that history would.

    Examples
    --------
    >>> naive_constant_growth([10.0, 20.0, 40.0, 80.0], 2).tolist()
    [160.0, 320.0]

    """
    y = np.asarray(history, float)
    if y.shape[-1] < 3:
        raise ValueError("need at least 3 years of history (2 growth rates)")
    window = min(window, y.shape[-1] - 1)
    last, first = y[..., -1], y[..., -1 - window]
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(first > 0, (last / first) ** (1.0 / window), 1.0)
    return last[..., None] * g[..., None] ** np.arange(1, horizon + 1)
