"""Synthetic aggregate data with known rates, for parameter-recovery checks.

:func:`simulate_stock_flow` runs the specialist tier's stock and flows by single year of age
as a direct binomial simulation of the engine's equations (age, survive the year's exits,
then escalate from the targeted tiers), and reports them the way SEN2 does: banded stocks at
each census and banded new plans in each year by age at issue (a binomial share
``issue_age_lag`` of each census age is recorded one year younger).  The calibration model
sees only the bands, and approximates the within-band age mix by one fixed profile, as it
does on real data.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import xarray as xr

from simsend.calibration.model import PriorConfig
from simsend.calibration.targets import band_matrix, band_of_age, make_targets
from simsend.dims import TIER

N_A = 26

#: Reference rates (an illustrative England-like config): targeted -> specialist,
#: targeted-plus -> specialist and specialist exits by age.
REF_ESC_T = np.r_[np.full(5, 0.12), np.full(6, 0.02), np.full(5, 0.015), np.full(10, 0.005)]
REF_ESC_TP = np.r_[np.full(5, 0.30), np.full(6, 0.12), np.full(5, 0.09), np.full(10, 0.03)]
REF_EXIT = np.r_[np.full(16, 0.02), np.full(3, 0.05), np.full(7, 0.13)]


def _sen_support_profile() -> np.ndarray:
    """Relative SEN support by age (school ages dominate)."""
    a = np.arange(N_A)
    prof = np.where(a < 2, 0.02, np.where(a < 5, 0.3, np.where(a < 16, 1.0, 0.5)))
    return np.where(a > 19, 0.05, prof)


def simulate_stock_flow(theta: np.ndarray, trend, kappa: np.ndarray, *,
                        n_years: int = 8, last_year: int = 2022, sen_support: float = 8000.0,
                        sen_growth: float = 0.01, area_scale=None, prior: PriorConfig | None = None,
                        targeted_plus_share: float = 0.25, burn_in: int = 30,
                        innovation_sd: float = 0.0, age_effect=None,
                        single_ages_from: int | None = None, seed: int = 0) -> xr.Dataset:
    """Simulate banded EHC plan stocks and new plans with known rates.

    Parameters
    ----------
    theta : array (5, R)
        Escalation multiplier on the reference rates at year ``last_year + 1``.
    trend : float or array (R,)
        Log-linear annual trend of escalation (one for every area, or one per area).
    kappa : array (5, R)
        Exit-hazard multiplier on the reference exits.
    n_years : int
        Census years reported (ending at ``last_year``).
    last_year : int
        Last census year reported.
    sen_support : float
        SEN support children per area (all ages) at the first reported census.
    sen_growth : float
        Annual growth of SEN support.
    area_scale : array (R,), optional
        Relative size of each area (default all 1).
    prior : PriorConfig, optional
        Reference rates (default: :data:`REF_ESC_T` etc.).
    targeted_plus_share : float
        Share of SEN support in the targeted-plus tier.
    burn_in : int
        Years simulated before the reported window, so the age mix settles.
    innovation_sd : float
        Year-to-year innovation sd of each area's log escalation rate (a random walk around
        the trend, pinned so that ``theta`` holds at ``last_year + 1`` before that year's
        own innovation).
    age_effect : array (26,), optional
        Log multiplier of escalation by single census age (the calibration's
        ``escalation_age_effect``); default none.
    single_ages_from : int, optional
        First census year whose new plans are also reported by single age at issue 3-19
        (``new_plans_age``, as SEN2 from calendar 2022); default none.
    seed : int
        Seed of the binomial draws.

    Returns
    -------
    xarray.Dataset
        Targets as from :func:`simsend.calibration.targets.make_targets`; the within-band age
        shares are taken from the last census (as the data layer takes them from the
        baseline), ``need_factor`` is 1.  ``attrs["true_walk"]`` (JSON, years x areas) is
        the simulated walk of log escalation at each reported census (0 at the last).

    """
    prior = prior or PriorConfig(REF_ESC_T, REF_ESC_TP, REF_EXIT)
    rng = np.random.default_rng(seed)
    theta = np.asarray(theta, float)
    kappa = np.asarray(kappa, float)
    n_r = theta.shape[1]
    scale = np.ones(n_r) if area_scale is None else np.asarray(area_scale, float)
    band = band_of_age()
    e_ref = (1 - targeted_plus_share) * prior.esc_targeted \
        + targeted_plus_share * prior.esc_targeted_plus
    hazard = -np.log1p(-prior.exit_specialist)
    p_surv = np.exp(-kappa[band] * hazard[:, None])  # (26, R)
    prof = _sen_support_profile()
    total = burn_in + n_years
    first_census = last_year - n_years + 1
    trend = np.broadcast_to(np.asarray(trend, float), (n_r,))
    # Random walk of log escalation by year, zero at the last census (theta's reference).
    steps = rng.normal(0.0, innovation_sd, (total, n_r)) if innovation_sd > 0 \
        else np.zeros((total, n_r))
    walk = np.cumsum(steps, axis=0)
    walk -= walk[-1]
    stock = np.zeros((N_A, n_r), np.int64)
    ss_prev = None
    rows_stock, rows_new, rows_exp, rows_age = [], [], [], []
    age_fx = np.zeros(N_A) if age_effect is None else np.asarray(age_effect, float)
    for k in range(total):
        year = first_census - burn_in + k
        ss = np.rint(sen_support * scale[None] * prof[:, None] / prof.sum()
                     * (1 + sen_growth) ** (year - first_census)).astype(np.int64)
        if ss_prev is not None:
            exposed = np.zeros_like(ss_prev)
            exposed[1:] = rng.binomial(ss_prev[:-1], 0.97)
            rate = (e_ref * np.exp(age_fx))[:, None] * theta[band] * np.exp(
                trend[None] * (year - (last_year + 1)) + walk[k][None])
            new = rng.binomial(exposed, np.clip(rate, 0, 1))
            aged = np.zeros_like(stock)
            aged[1:] = stock[:-1]
            stock = rng.binomial(aged, p_surv) + new
            if year > first_census:
                # SEN2 records the age at issue: a share lag of children are a year younger.
                younger = rng.binomial(new, prior.issue_age_lag)
                rec = band_matrix().T @ (new - younger)
                rec += band_matrix()[np.maximum(np.arange(N_A) - 1, 0)].T @ younger
                rows_new.append(rec)
                rows_exp.append(exposed.astype(float))
                by_age = np.full((N_A, n_r), np.nan)
                if single_ages_from is not None and year >= single_ages_from:
                    rec_age = (new - younger).astype(float)
                    rec_age[:-1] += younger[1:]
                    rec_age[0] += younger[0]
                    by_age[3:20] = rec_age[3:20]  # published singly: 3-19
                rows_age.append(by_age)
        if year >= first_census:
            rows_stock.append(band_matrix().T @ stock)
            if year == first_census:
                rows_new.append(np.full((5, n_r), np.nan))
                rows_exp.append(np.full((N_A, n_r), np.nan))
                rows_age.append(np.full((N_A, n_r), np.nan))
        ss_prev = ss
    m = band_matrix()
    share = stock / np.maximum(m @ (m.T @ stock), 1)
    share = np.where((m @ (m.T @ stock)) > 0, share, (1.0 / m.sum(0)[band])[:, None])
    years = np.arange(first_census, last_year + 1)
    ds = make_targets(np.array(rows_stock, float), np.array(rows_new, float),
                        np.array(rows_exp, float), share, np.ones(N_A), years,
                        [f"A{r}" for r in range(n_r)], targeted_plus_share,
                        sources={"synthetic": f"seed={seed}"},
                        new_plans_age=(np.array(rows_age, float) if single_ages_from is not None
                                       else None))
    # The true walk by reported census year (0 at ``last_year``), for recovery checks.
    ds.attrs["true_walk"] = json.dumps(walk[burn_in:].tolist())
    return ds


def synthetic_targets(n_areas: int = 2, n_years: int = 8, seed: int = 0,
                      sen_support: float = 8000.0, innovation_sd: float = 0.0,
                      area_trend_sd: float = 0.0):
    """Make a ready-made recovery problem: ``(targets, truth, prior)``.

    Truth: escalation multipliers that differ by age group and area around 1.3, a trend of
    0.06 per year, exit multipliers around 0.8.  ``truth`` maps the posterior variable names
    ``escalation_multiplier``, ``escalation_trend`` and ``exit_multiplier`` to true values.

    Examples
    --------
    >>> t, truth, prior = synthetic_targets(n_areas=2, n_years=5, seed=1)
    >>> t["ehcp"].shape, truth["escalation_multiplier"].shape
    ((5, 5, 2), (5, 2))

    """
    rng = np.random.default_rng(10_000 + seed)
    age_eff = np.array([0.25, -0.1, 0.1, -0.2, 0.0])
    area_eff = rng.normal(0.0, 0.2, n_areas) if n_areas > 1 else np.zeros(1)
    area_eff -= area_eff.mean()
    theta = np.exp(np.log(1.3) + age_eff[:, None] + area_eff[None])
    kappa = np.exp(np.log(0.8) + np.array([0.1, 0.0, -0.1, 0.15, -0.05])[:, None]
                   + 0.5 * area_eff[None])
    trend = 0.06
    scale = np.exp(rng.normal(0, 0.3, n_areas)) if n_areas > 1 else np.ones(1)
    dev = np.zeros(n_areas)
    if area_trend_sd > 0 and n_areas > 1:
        dev = rng.normal(0.0, area_trend_sd, n_areas)
        dev -= dev.mean()
    prior = PriorConfig(REF_ESC_T, REF_ESC_TP, REF_EXIT)
    t = simulate_stock_flow(theta, trend + dev, kappa, n_years=n_years, sen_support=sen_support,
                            area_scale=scale, prior=prior, innovation_sd=innovation_sd,
                            seed=seed)
    truth = {"escalation_multiplier": theta, "escalation_trend": trend,
             "exit_multiplier": kappa,
             "escalation_trend_area": np.broadcast_to(trend + dev, (5, n_areas)).copy(),
             "escalation_innovation_sd": innovation_sd}
    return t, truth, prior


class _Fixed:
    """A parameter source handing every draw the same set."""

    def __init__(self, ps):
        self.ps = ps

    def get(self, draw: int):
        return self.ps


ENGINE_BURN_IN = 26
"""Years :func:`engine_targets` simulates before it reports (a plan's whole span of ages)."""
ENGINE_LAST_YEAR = 2022
"""Last census year :func:`engine_targets` reports."""
ENGINE_TP_SHARE = 0.25
"""Targeted-plus share of the targeted tiers the targets of :func:`engine_targets` state."""


@dataclasses.dataclass(frozen=True)
class EngineTruth:
    """Escalation over time in :func:`engine_targets`'s truth (log scale, per area).

    Attributes
    ----------
    trend : float or array (R,)
        Log-linear trend, one or one per area; the step from year ``k`` to ``k + 1`` is
        ``trend * damping^k``.
    damping : float
    innovation_sd : float
        Sd of a random walk's steps per area (a lasting change).
    noise_sd : float
        Sd of a transient shock per year and area (common to the age bands, not carried
        on), as the calibration's ``escalation_noise_z``.
    common_sd : float
        Innovation sd of a random walk common to every area (the calibration's
        ``escalation_common_sd``), from the second reported year.

    """

    trend: float | np.ndarray = 0.0
    damping: float = 1.0
    innovation_sd: float = 0.0
    noise_sd: float = 0.0
    common_sd: float = 0.0


def engine_targets(model, theta: np.ndarray, baseline, truth: EngineTruth = EngineTruth(), *,
                   n_years: int = 10, seed: int = 0):
    """Targets simulated by the engine itself with known escalation: ``(targets, truth)``.

    One Monte Carlo draw of :func:`simsend.engine.loop.simulate` from ``baseline``
    (``(individuals, pool, births)``, e.g. :func:`simsend.testing.toy_baseline`'s) with the
    ``[model]`` rates of ``model``, except that moves into the specialist tier are multiplied
    by ``theta`` (5, R) by age group and area and by :class:`EngineTruth` ``truth``'s damped
    trend, random walk and transient yearly shocks (trend and walk 0 in the first reported
    year, as the calibration's).  The first :data:`ENGINE_BURN_IN` years, at
    ``theta`` alone, let the baseline's age mix settle and are not reported.  Reported as
    SEN2 would be, by census age (issue-age lag 0): EHC plans by band at each census, new
    plans by band in each year.  ``exposure`` is the targeted-tier children exposed in each
    year (survivors of the last census, aged) weighted by their config escalation rate (tier
    and need) over the calibration's reference rate, so that exposure times the reference is
    the config's expected new plans exactly; ``need_factor`` is 1.  Exits are the config's.
    No demography (nobody migrates).

    Returns
    -------
    targets : xarray.Dataset
    truth : dict
        ``escalation_multiplier`` (5, R) at the first year after the data (trend and walk
        included; a transient shock is not carried on), ``escalation_trend_area`` (5, R, the
        first step), ``escalation_damping``, ``exit_multiplier`` 1,
        ``escalation_innovation_sd``, ``escalation_noise_sd``, ``area_effect`` (R,) the mean
        over age groups of log ``theta`` less its mean over areas, ``walk`` (the common
        walk included) and ``noise`` (n_years, R) by census year; ``escalation_common_sd``
        and ``escalation_common`` (by transition year).

    """
    from simsend.engine.loop import Job, simulate
    from simsend.engine.tally import FLOW, make_layout
    from simsend.rates.parameters import damped_steps
    from simsend.rates.sources import FixedParameters

    theta = np.asarray(theta, float)
    n_r = theta.shape[1]
    areas = tuple(f"A{r}" for r in range(n_r))
    rng = np.random.default_rng([seed, 77])
    ind, pool, births = baseline
    burn_in, last_year, targeted_plus_share = ENGINE_BURN_IN, ENGINE_LAST_YEAR, ENGINE_TP_SHARE
    ps = FixedParameters(model, births).params
    band = band_of_age()
    s, t, tp = TIER["specialist"], TIER["targeted"], TIER["targeted_plus"]
    base, tiers = ps.tiers, ps.tiers.copy()
    for src in (t, tp):
        add = tiers[src, s] * (theta[band][:, None, :] - 1.0)  # (age, need, area)
        tiers[src, s] += add
        tiers[src, src] -= add
    if (tiers < 0).any():
        raise ValueError("theta pushes a row of the tier table past 1")
    damping, innovation_sd = truth.damping, truth.innovation_sd
    # walk[k] of reported census k (0 at the first two: the first transition year is 1)
    walk = np.zeros((n_years, n_r))
    if innovation_sd > 0:
        walk[2:] = np.cumsum(rng.normal(0.0, innovation_sd, (n_years - 2, n_r)), axis=0)
    noise = np.zeros((n_years, n_r))  # the year ending at census k (none before the first)
    if truth.noise_sd > 0:
        noise[1:] = rng.normal(0.0, truth.noise_sd, (n_years - 1, n_r))
    common = np.zeros(n_years)  # the common walk at census k (0 at the first two, as walk)
    if truth.common_sd > 0:
        common[2:] = np.cumsum(rng.normal(0.0, truth.common_sd, n_years - 2))
    walk = walk + common[:, None]
    total = burn_in + n_years
    shock = np.zeros((total, n_r))  # the trend, walk and shocks as the engine's log factor
    trend = np.broadcast_to(np.asarray(truth.trend, float), (n_r,))
    steps = damped_steps(damping, np.maximum(np.arange(n_years) - 1, 0))  # (Y,)
    shock[burn_in:] = trend[None] * steps[:, None] + walk + noise
    top = np.exp(shock.max(axis=0))  # (R,) the largest factor each area meets
    for src in (t, tp):
        if (tiers[src, s] * (top - 1.0) > tiers[src, src]).any():
            raise ValueError("theta, trend and walk push a row of the tier table past 1 "
                             "(the engine would cap it, and the truth would not hold)")
    ps = dataclasses.replace(ps, tiers=tiers, escalation_shock=shock)
    layout = make_layout(("tier", "age", "need", "area"), areas)
    out = simulate(Job(ind, pool, total, seed, layout), _Fixed(ps), [0])
    shape = (total, *layout.shape)  # needs, then "none" (universal children)
    n_need = len(model.need_multiplier)
    stock = out.stock[0].reshape(shape)[burn_in:, :, :, :n_need].astype(float)
    new = out.flows[0, burn_in:, FLOW["n_escalated"]].reshape(
        (n_years, *layout.shape))[:, s].sum(axis=2)  # (Y, 26, R)
    m = band_matrix()
    ehcp = np.einsum("yar,ag->ygr", stock[:, s].sum(axis=2), m)
    new_plans = np.einsum("yar,ag->ygr", new.astype(float), m)
    new_plans[0] = np.nan
    e_ref = (1 - targeted_plus_share) * model.tiers[t, s] \
        + targeted_plus_share * model.tiers[tp, s]
    exposure = np.full((n_years, N_A, n_r), np.nan)
    for y in range(1, n_years):
        x = np.zeros((N_A, n_r))
        for src in (t, tp):
            kept = stock[y - 1, src, :-1] * (1.0 - ps.leaving[src, 1:])[:, None, None]
            x[1:] += (kept * base[src, s, 1:]).sum(axis=1)  # config escalations by age
        exposure[y] = x / np.where(e_ref > 0, e_ref, 1.0)[:, None]
    sp0 = stock[0, s].sum(axis=1)  # (26, R)
    tot = m @ (m.T @ sp0)
    share = np.where(tot > 0, sp0 / np.maximum(tot, 1), (1.0 / m.sum(0)[band])[:, None])
    years = np.arange(last_year - n_years + 1, last_year + 1)
    targets = make_targets(ehcp, new_plans, exposure, share, np.ones(N_A), years, list(areas),
                           targeted_plus_share, sources={"engine": f"seed={seed}"})
    log_t = np.log(theta).mean(axis=0)
    ref = float(damped_steps(damping, n_years - 1))  # the first year after the data
    known = {"escalation_multiplier": theta * np.exp(trend[None] * ref + walk[-1][None]),
             "escalation_damping": damping,
             "escalation_trend_area": np.broadcast_to(trend, theta.shape).copy(),
             "exit_multiplier": np.ones_like(theta), "escalation_innovation_sd": innovation_sd,
             "escalation_noise_sd": truth.noise_sd, "area_effect": log_t - log_t.mean(),
             "walk": walk, "noise": noise, "escalation_common_sd": truth.common_sd,
             "escalation_common": common[1:]}
    return targets, known
