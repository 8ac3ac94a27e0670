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
    >>> round(float(lo), 9), round(float(hi), 9)
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


def pit(samples, obs, axis: int = 0) -> np.ndarray:
    """Probability integral transform of ``obs`` under a sample forecast (mid-rank form).

    The share of draws below the observation plus half the share equal to it: uniform on
    (0, 1) over many forecasts when the forecasts are calibrated, piled near 0 or 1 when the
    bands are too narrow, near 0.5 when they are too wide.  NaN where the observation is NaN.

    Examples
    --------
    >>> float(pit(np.arange(100.0), 49.5))
    0.5
    >>> float(pit([1.0, 2.0, 2.0, 3.0], 2.0))
    0.5

    """
    x = np.moveaxis(np.asarray(samples, float), axis, 0)
    y = np.asarray(obs, float)
    out = (x < y).mean(axis=0) + 0.5 * (x == y).mean(axis=0)
    return np.where(np.isfinite(y), out, np.nan)


def finite_tail(history) -> np.ndarray:
    """Return the trailing run of finite values of a 1-D series (empty if the last is NaN).

    A naive forecast issued at the series' last year uses only this run: years before a gap
    are not joined across it.

    Examples
    --------
    >>> finite_tail([1.0, np.nan, 3.0, 4.0]).tolist()
    [3.0, 4.0]
    >>> finite_tail([1.0, 2.0, np.nan]).size
    0

    """
    y = np.asarray(history, float).ravel()
    bad = np.flatnonzero(~np.isfinite(y))
    return y[bad[-1] + 1:] if bad.size else y


def naive_growth_log_errors(history, horizon: int, window: int = 3) -> list[np.ndarray]:
    """Past log errors of :func:`naive_constant_growth` issued at every origin of one series.

    For each year ``o`` of ``history`` with at least 3 finite years ending at ``o`` (see
    :func:`finite_tail`) and each lead ``h`` with year ``o + h`` still in ``history`` and
    finite, ``log(y[o + h] / naive_o[h])``; pairs with a non-positive value are skipped.
    Only ``history`` is read, so passing a series that ends at a forecast origin uses no
    data after it.

    Parameters
    ----------
    history : array (T,)
        Annual values, most recent last (NaN = not recorded).
    horizon : int
        Leads 1..horizon.
    window : int
        The naive method's window (default 3).

    Returns
    -------
    list of ndarray
        ``horizon`` arrays: the log errors at lead 1, 2, ...

    Examples
    --------
    >>> e = naive_growth_log_errors([100.0, 100.0, 100.0, 100.0, 200.0], 3)
    >>> [np.round(x, 4).tolist() for x in e]
    [[0.0, 0.6931], [0.6931], []]

    """
    y = np.asarray(history, float).ravel()
    out: list[list[float]] = [[] for _ in range(horizon)]
    for o in range(2, len(y) - 1):
        tail = finite_tail(y[:o + 1])
        if len(tail) < 3:
            continue
        leads = min(horizon, len(y) - 1 - o)
        fc = naive_constant_growth(tail, leads, window)
        for h in range(1, leads + 1):
            obs, f = y[o + h], fc[h - 1]
            if np.isfinite(obs) and np.isfinite(f) and obs > 0 and f > 0:
                out[h - 1].append(float(np.log(obs / f)))
    return [np.asarray(e, float) for e in out]


def naive_growth_band(histories, horizon: int,
                      window: int = 3) -> tuple[np.ndarray, list[np.ndarray]]:
    """Naive growth forecasts of several series with an empirical band from their own past.

    Each series ends at the forecast origin.  The point forecast is
    :func:`naive_constant_growth` of the series' :func:`finite_tail` (NaN with fewer than 3
    years); the band's log errors at each lead are those of the same method issued at the
    earlier origins of every series (:func:`naive_growth_log_errors`), pooled over the
    series (one area alone has too few).  The sample forecast of series ``r`` at lead ``h``
    is ``point[r, h - 1] * exp(errors[h - 1])``; nothing after the origin is read.

    Parameters
    ----------
    histories : sequence of 1-D arrays
        One series per area, each ending at the origin (lengths may differ).
    horizon : int
        Years ahead.
    window : int
        Years of growth averaged (default 3).

    Returns
    -------
    point : ndarray (R, horizon)
    errors : list of ndarray
        Pooled log errors, one array per lead.

    Examples
    --------
    >>> p, e = naive_growth_band([[100.0, 110.0, 121.0, 133.1]], 1)
    >>> np.round(p, 2).tolist(), bool(np.allclose(e[0], 0.0))
    ([[146.41]], True)

    """
    histories = [np.asarray(h, float).ravel() for h in histories]
    point = np.full((len(histories), horizon), np.nan)
    pooled: list[list[np.ndarray]] = [[] for _ in range(horizon)]
    for r, y in enumerate(histories):
        tail = finite_tail(y)
        if len(tail) >= 3:
            point[r] = naive_constant_growth(tail, horizon, window)
        for h, e in enumerate(naive_growth_log_errors(y, horizon, window)):
            pooled[h].append(e)
    errors = [np.concatenate(e) if e else np.zeros(0) for e in pooled]
    return point, errors
