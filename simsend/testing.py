"""Helpers for tests (ours and users'): a tiny synthetic population and exact expected counts.

:func:`expected_counts` propagates expected numbers of children through one year's
transition tables exactly (the Markov chain's mean), in the same step order as the engine.
A simulation's mean over draws must match it within Monte Carlo error.
"""

from __future__ import annotations

import re

import numpy as np

from simsend.dims import AGES, NEEDS, PLACEMENTS, TIERS
from simsend.rates.demography import YearMoves, with_net_flow
from simsend.rates.parameters import ParameterSet

N_T, N_A, N_N, N_P = len(TIERS), len(AGES), len(NEEDS), len(PLACEMENTS)


def toy_baseline(n_areas: int = 2, scale: int = 200, seed: int = 0):
    """Build a small synthetic baseline: ``(individuals, pool, births)``.

    ``individuals`` has shape (4, 26, 13, n_areas, 7) with zero universal tier; ``pool`` is
    (26, n_areas); ``births`` is (n_areas,).  Counts are random but fixed by ``seed``.
    """
    rng = np.random.default_rng(seed)
    ind = np.zeros((N_T, N_A, N_N, n_areas, N_P), np.int64)
    ind[1:] = rng.poisson(scale / 50, size=ind[1:].shape) * (rng.random(ind[1:].shape) < 0.3)
    pool = rng.poisson(scale * 10, size=(N_A, n_areas)).astype(np.int64)
    births = pool[0].copy()
    return ind, pool, births


def tier_probs(tier_cdf: np.ndarray) -> np.ndarray:
    """Probabilities ``[age, need, area, src, dst]`` from the kernel's cumulative table."""
    return np.diff(tier_cdf, axis=-1, prepend=0.0)


def expected_step(ind: np.ndarray, pool: np.ndarray, ps: ParameterSet,
                  year_index: int, moves: YearMoves | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Propagate expected (individuals, pool) to the next census, given expected counts now.

    Follows the engine's step order: migration (with ``moves``); age and leave; entrants;
    identification (from the pool after ageing); tier moves (returns to the pool); placement
    moves by the new tier.
    """
    tab = ps.year_tables(year_index)
    # 0. migration: each child leaves with probability out or brings ``in`` arrivals (the
    # year's net flow of individuals, ``tab.net_flow``, added to both)
    if moves is not None or tab.net_flow is not None:
        q_out = q_in = np.zeros((ind.shape[0], ind.shape[1], ind.shape[3]))
        if moves is not None:
            pool = pool * (1.0 - moves.pool_out[year_index] + moves.pool_in[year_index])
            q_out, q_in = moves.ind_out[year_index], moves.ind_in[year_index]
        q_out, q_in = with_net_flow(q_out, q_in, tab.net_flow)
        f = (1.0 - q_out) * (1.0 + q_in)  # (tier, age, area): arrivals copy stayers
        ind = ind * f[:, :, None, :, None]
    # 1. ageing and leaving
    aged = np.zeros_like(pool, dtype=float)
    aged[1:] = pool[:-1] * (1.0 - tab.p_leave[0, 1:, None])
    # 2. entrants
    if moves is None:
        aged[0] = tab.births
    else:
        f = 1.0 if tab.births_factor is None else tab.births_factor
        aged[0] = np.rint(moves.births[year_index] * f)
    # 3. identification
    ident = aged * tab.p_identify
    aged = aged - ident
    need = np.diff(tab.need_cdf, axis=-1, prepend=0.0)
    plac_new = np.diff(tab.place_new_cdf, axis=-1, prepend=0.0)
    new = np.zeros(ind.shape)
    new[1] = ident[:, None, :, None] * need[:, :, None, None] * plac_new[:, None, None, :]
    new[2] = new[1] * tab.identify_tp  # a balanced split's share enters targeted-plus
    new[1] *= 1.0 - tab.identify_tp
    # individuals age and leave (with a demography, leavers before 26 return to the pool)
    x = np.zeros(ind.shape)
    x[:, 1:] = ind[:, :-1] * (1.0 - tab.p_leave[:, 1:, None, None, None])
    if moves is not None:
        left = ind[:, :-1] * tab.p_leave[:, 1:, None, None, None]
        aged[1:] += left.sum(axis=(0, 2, 4))
    # 4. tier moves: y[d, a, n, r, p] = sum_t x[t, a, n, r, p] * P[a, n, r, t, d]
    pt = tier_probs(tab.tier_cdf)
    y = np.einsum("tanrp,anrtd->danrp", x, pt)
    # children entering the specialist tier from below take its entry rows (index 4)
    enter = np.einsum("tanrp,anrt->anrp", x[:3], pt[..., :3, 3])
    y[3] -= enter
    aged = aged + y[0].sum(axis=(1, 3))
    y[0] = 0.0
    # 5. placement moves by the new tier (calibrated specialist rows per area where given)
    pp = np.diff(tab.place_cdf, axis=-1, prepend=0.0)  # [tier, age, src, dst]
    z = np.einsum("danrp,dapq->danrq", y, pp)
    if len(tab.spec_cdf):
        stay = np.diff(tab.spec_cdf, axis=-1, prepend=0.0)  # [area, age, src, dst]
        entry = np.diff(tab.entry_cdf, axis=-1, prepend=0.0)  # [area, age, dst]
        z[3] = (np.einsum("anrp,rapq->anrq", y[3], stay)
                + np.einsum("anrp,raq->anrq", enter, entry))
    else:
        z[3] += np.einsum("anrp,apq->anrq", enter, pp[3])
    return z + new, aged


def expected_states(ind: np.ndarray, pool: np.ndarray, ps: ParameterSet,
                    n_years: int, moves: YearMoves | None = None):
    """Propagate expected children by (tier, age, need, area, placement) and pool exactly.

    Returns ``(states (n_years, *ind.shape), pools (n_years, *pool.shape))``, baseline first.
    """
    e_ind, e_pool = ind.astype(float), pool.astype(float)
    states, pools = [e_ind], [e_pool]
    for yi in range(1, n_years):
        e_ind, e_pool = expected_step(e_ind, e_pool, ps, yi, moves)
        states.append(e_ind)
        pools.append(e_pool)
    return np.array(states), np.array(pools)


def expected_counts(ind: np.ndarray, pool: np.ndarray, ps: ParameterSet,
                    n_years: int, moves: YearMoves | None = None) -> np.ndarray:
    """Propagate expected children by (year, tier) exactly, baseline year first."""
    states, pools = expected_states(ind, pool, ps, n_years, moves)
    out = np.zeros((n_years, N_T))
    out[:, 0] = pools.reshape(n_years, -1).sum(1)
    out[:, 1:] = states[:, 1:].sum(axis=(2, 3, 4, 5))
    return out


def pin_2022(text: str) -> str:
    """Return a config text derived from ``configs/base.toml`` moved back to January 2022.

    The shipped default starts in January 2025; tests written against the 2022 baseline (and
    the backtests) run from 2022 with the posterior and provision plan built for it
    (``england_2022``), which ship alongside.
    """
    text = re.sub(r"(?m)^start_year = .*$", "start_year = 2022", text, count=1)
    return (text.replace('posterior = "england_2025"', 'posterior = "england_2022"')
            .replace('plan = "england_2025"', 'plan = "england_2022"'))


def scaled_scenario(ds, factor: float, name: str):
    """Return ``ds`` with a ``scenario`` dim: the run itself (``baseline``) and ``name``.

    ``name`` is the run with every ``n_pupils`` count scaled by ``factor`` (rounded); the
    other variables are the run's, and the attributes are kept.
    """
    import pandas as pd
    import xarray as xr

    alt = ds.assign(n_pupils=(ds["n_pupils"] * factor).round().astype("int32"))
    out = xr.concat([ds, alt], dim=pd.Index(["baseline", name], name="scenario"),
                    data_vars="all", coords="minimal", compat="override")
    out.attrs = ds.attrs
    return out
