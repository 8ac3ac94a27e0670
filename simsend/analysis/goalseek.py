"""Goal-seek: the smallest modifier size that keeps a target under a limit with a probability.

For a size ``x`` (for example the early-intervention effect on escalation), the target's
Monte Carlo draws ``T_d(x)`` give the probability ``P(T(x) <= limit)`` as the share of draws
at or under the limit.  :func:`goal_seek` finds, by bisection on ``[lo, hi]``, the smallest
``x`` at which that probability reaches ``prob``, assuming it grows with ``x``.  Every
evaluation runs with the same seed and draws, so the draws at two sizes are paired (common
random numbers) and the estimated probability moves smoothly with ``x`` rather than by
Monte Carlo noise.

:func:`goal_seek_scenario` does it for a simulation: it builds a scenario for each size,
runs it and reads the target from the results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from simsend.analysis.compare import marginal
from simsend.runner.forecast import run_forecast


@dataclass(frozen=True)
class GoalSeekResult:
    """Outcome of a goal-seek.

    Attributes
    ----------
    size : float
        Smallest size found (within ``tol``) with ``P(target <= limit) >= prob``.
    prob : float
        The estimated probability at ``size``.
    history : list of (size, probability)
        Every evaluation, in order.

    """

    size: float
    prob: float
    history: list = field(default_factory=list)


def share_under(draws: np.ndarray, limit: float) -> float:
    """Share of draws at or under ``limit`` (the estimate of ``P(T <= limit)``)."""
    draws = np.asarray(draws, dtype=float).ravel()
    if draws.size == 0 or np.isnan(draws).any():
        raise ValueError("the target has no draws or NaN draws")
    return float(np.mean(draws <= limit))


def goal_seek(evaluate: Callable[[float], np.ndarray], limit: float, prob: float,
              lo: float, hi: float, tol: float = 1e-3, max_iter: int = 60) -> GoalSeekResult:
    """Smallest ``x`` in ``[lo, hi]`` with ``P(evaluate(x) <= limit) >= prob``, by bisection.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(x)`` returns the target's Monte Carlo draws at size ``x``.
    limit : float
        The target must stay at or under this.
    prob : float
        Required probability, in (0, 1].
    lo, hi : float
        Search interval; ``P`` is assumed to grow with ``x`` on it.
    tol : float
        Stop when the bracket is narrower than this.
    max_iter : int
        Bisection steps at most.

    Returns
    -------
    GoalSeekResult

    Raises
    ------
    ValueError
        When even ``hi`` misses the goal (no size in the interval does it), or on bad input.

    Examples
    --------
    >>> z = np.linspace(0.005, 0.995, 199)            # fixed draws, shifted by the size
    >>> r = goal_seek(lambda x: 10 - x + z, limit=8.0, prob=0.5, lo=0.0, hi=10.0, tol=1e-6)
    >>> round(r.size, 4)
    2.5

    """
    if not 0.0 < prob <= 1.0:
        raise ValueError(f"prob must be in (0, 1], got {prob}")
    if not hi > lo:
        raise ValueError(f"need lo < hi, got [{lo}, {hi}]")
    history = []

    def p_at(x: float) -> float:
        p = share_under(evaluate(x), limit)
        history.append((float(x), p))
        return p

    p_lo = p_at(lo)
    if p_lo >= prob:
        return GoalSeekResult(float(lo), p_lo, history)
    p_hi = p_at(hi)
    if p_hi < prob:
        raise ValueError(f"even size {hi} keeps the target under {limit} with probability "
                         f"{p_hi:.3g} < {prob}: widen the interval or relax the goal")
    for _ in range(max_iter):
        if hi - lo <= tol:
            break
        mid = 0.5 * (lo + hi)
        p_mid = p_at(mid)
        if p_mid >= prob:
            hi, p_hi = mid, p_mid
        else:
            lo = mid
    return GoalSeekResult(float(hi), p_hi, history)


def goal_seek_scenario(cfg, make_scenario: Callable[[float], object],
                       target: Callable[[xr.Dataset], np.ndarray], limit: float, prob: float,
                       lo: float, hi: float, tol: float = 0.01,
                       run_kwargs: Mapping | None = None) -> GoalSeekResult:
    """Goal-seek over a simulated scenario.

    Parameters
    ----------
    cfg : SimConfig or path
    make_scenario : callable
        ``make_scenario(x)`` returns the :class:`simsend.config.scenarios.Scenario` of size ``x``.
    target : callable
        ``target(ds)`` returns the target's draws from one run's results.
    limit, prob, lo, hi, tol
        As for :func:`goal_seek`.
    run_kwargs : mapping, optional
        Passed to :func:`simsend.run` (``draws``, ``seed``, ...).

    Examples
    --------
    >>> from simsend.config.scenarios import early_intervention  # doctest: +SKIP
    >>> res = goal_seek_scenario(
    ...     "configs/base.toml", lambda x: early_intervention(x, years=(2026, 2030)),
    ...     lambda ds: specialist_in(ds, 2030), limit=500_000, prob=0.9, lo=0, hi=0.9,
    ...     run_kwargs={"draws": 100})  # doctest: +SKIP

    """
    kw = dict(run_kwargs or {})

    def evaluate(x: float) -> np.ndarray:
        return np.asarray(target(run_forecast(cfg, scenario=make_scenario(x), **kw)))

    return goal_seek(evaluate, limit, prob, lo, hi, tol)


def specialist_in(ds: xr.Dataset, year: int) -> np.ndarray:
    """Specialist-tier children at census ``year``, one number per draw."""
    da = ds["n_pupils"].sel(year=year, tier="specialist")
    return da.sum([d for d in da.dims if d != "draw"]).values


def target_of(variable: str, year: int, select=None) -> Callable[[xr.Dataset], np.ndarray]:
    """Return a target: ``variable`` at ``year``, filtered by ``select`` and summed, per draw."""
    def target(ds: xr.Dataset) -> np.ndarray:
        da = marginal(ds, variable, by=("year",), select=select)
        return da.sel(year=year).values

    return target
