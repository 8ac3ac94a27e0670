"""Plain NumPy implementations of the per-pupil step, for tests and as the benchmark baseline.

They take the uniforms as arrays (drawn by whatever generator the caller likes), so a test
can feed them the kernels' counter-based numbers and demand identical results, and a benchmark
can time a competent vectorised NumPy version of the same step.
"""

from __future__ import annotations

import numpy as np

MAX_AGE = 25


def categorical(u: np.ndarray, cdf_rows: np.ndarray) -> np.ndarray:
    """Smallest ``k`` with ``u < cdf_rows[:, k]`` (row-wise; last column taken as 1)."""
    k = (u[:, None] >= cdf_rows[:, :-1]).sum(axis=1)
    return k


def step_pupils(tier, plan, age, need, area, placement, u, tables, reformed=False):
    """One year for arrays of pupils: ageing, leaving, tier and placement moves.

    Parameters
    ----------
    tier, plan, age, need, area, placement : int arrays (N,)
    u : float array (3, N)
        Uniforms for the leave, tier and placement streams.
    tables : tuple (tier_cdf (26,13,A,4,4), place_cdf (4,26,7,7), p_leave (4,26),
        spec_cdf (A_p,26,7,7), entry_cdf (A_p,26,7)); see YearTables

    Returns
    -------
    dict
        ``tier`` (-1 = left or returned to the pool), ``plan``, ``age``, ``placement`` after
        the year, ``left`` (bool), ``to_pool`` (bool).

    """
    tier_cdf, place_cdf, p_leave, spec_cdf, entry_cdf = tables
    a = age.astype(np.int64) + 1
    out_age = np.minimum(a, MAX_AGE)
    t = tier.astype(np.int64)
    left = (a > MAX_AGE) | (u[0] < p_leave[t, out_age])
    rows = tier_cdf[out_age, need, area, t]
    nt = categorical(u[1], rows)
    to_pool = ~left & (nt == 0)
    stay = ~left & ~to_pool
    prow = place_cdf[nt, out_age, placement]
    if len(spec_cdf):  # calibrated specialist rows by area: staying, or entering the tier
        spec = nt == 3
        prow = np.where((spec & (t == 3))[:, None], spec_cdf[area, out_age, placement], prow)
        prow = np.where((spec & (t < 3))[:, None], entry_cdf[area, out_age], prow)
    npl = np.where(stay, categorical(u[2], prow), placement)
    new_plan = np.where(nt == 3, 3, 2 if reformed else 1)
    plan_out = np.where(stay & (nt != t), new_plan, plan)
    return {
        "tier": np.where(stay, nt, -1),
        "plan": plan_out,
        "age": np.where(stay, a, age),
        "placement": npl,
        "left": left,
        "to_pool": to_pool,
    }


def step_tally(tier, age, need, area, u_tier, tier_cdf):
    """Draw each pupil's new tier and count by cell.

    Gathers each pupil's cumulative row, compares with its uniform and tallies
    ``(new tier, age, need, area)`` with ``bincount``: the NumPy reference that the fused
    kernel is measured against.
    """
    rows = tier_cdf[age, need, area, tier]
    nt = (u_tier[:, None] >= rows[:, :-1]).sum(axis=1)
    n_age, n_need, n_area = tier_cdf.shape[:3]
    idx = ((nt * n_age + age) * n_need + need) * n_area + area
    return nt, np.bincount(idx, minlength=4 * n_age * n_need * n_area)
