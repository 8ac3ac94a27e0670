r"""PyMC model of the engine's specialist-tier stock and flows at aggregate level.

The engine moves children between tiers once a year after ageing and leaving (see
:mod:`simsend.engine.loop`).  Summed over needs and single years of age, its expected dynamics for
the specialist tier (EHC plans) in area ``r`` over the year ending at census ``t`` are

.. math::

    N_{g r t} &= \theta_{g r} e^{\beta_{g r} (t - \bar t) + w_{r t}}
                 \sum_{a \in g} X_{a r t} \, e^{cfg}_{a r} \, e^{n_{r t}}

    S_{g r t} &= \sum_{a \in g} A_{a r t} \, e^{-\kappa_{g r} h_a} + N_{g r t}

with

* ``X[a, r, t]`` children in the targeted tiers (SEN support) of age ``a`` exposed during the
  year (survivors after ageing), ``e_cfg[a, r]`` the config's escalation rate into the
  specialist tier averaged over the targeted / targeted-plus split and the need mix
  (``need_factor``), so that ``theta`` is a multiplier on the config's whole escalation table
  (need multipliers and the targeted / targeted-plus ratio are kept from the config: the
  published aggregates do not separate them);
* ``beta`` the log-linear trend in escalation, per age group ``g`` (partially pooled around
  a common trend; :attr:`ParameterSet.escalation_trend`) and area ``r`` (areas' trends
  partially pooled around their age group's: ``beta_gr = beta_g + tau u_r``);
* ``w`` a random walk per area, ``w_{r t} = w_{r, t-1} + sigma_w z_{r t}`` with ``w`` = 0
  at the first transition year: the year-to-year change in escalation that a trend does
  not explain.  ``sigma_w`` (``escalation_innovation_sd``) is estimated; the forecast
  continues the walk from its last fitted value with fresh innovations, so bands widen
  with the horizon;
* with new plans by single age at issue in the targets (``new_plans_age``), a within-band
  age shape ``delta_a`` (``escalation_age_effect``, common to the areas) multiplies each
  single age's rate: ``N`` is then ``sum_a theta_{g(a) r} e^{delta_a} X e^{cfg} ...``
  (see :func:`age_shape_basis` and :data:`AGE_SHAPE_PRIOR`), and those years' new plans
  enter the likelihood by single age (0-2, 3, ..., 19, 20-25; :func:`issue_bin_matrix`)
  instead of by band;
* ``n_{r t} ~ N(0, sigma_n)`` a transient shock of the area's year that does not persist
  (``escalation_noise_sd``), added to ``w`` in the rate of that year only;
* ``A[a, r, t]`` EHC plans of census ``t - 1`` aged one year: the recorded band stocks spread
  over single ages by ``ehcp_age_share`` (fixed), or with ``PriorConfig.propagate_ages`` by the
  model's own within-band profile of census ``t - 1``, carried from year to year (the
  survivors aged on plus the new plans of each age, started from ``ehcp_age_share`` at the
  first census): SEN2 published age bands only before 2024, and a flat spread over a band
  puts too many plans at its oldest ages, where they leave the band by ageing and not by
  ending (England fitted to 2022 took 16-19 exits at a fifth of SEN2's rate);
  ``h[a] = -log(1 - c_cfg[a])`` the config's exit hazard (leaving plus de-escalation)
  of the specialist tier and ``kappa`` its multiplier
  (proportional hazards, so exit probabilities stay in (0, 1)); with
  ``PriorConfig.exit_walk_sd`` ``log kappa`` also follows a random walk over the years per
  age group (``exit_walk``, common to the areas), and the engine takes its last value.

Each stock equation conditions on the recorded stock of the previous census (a one-step-ahead
likelihood: model error does not accumulate over the window) and on the recorded new plans
of the year where they exist.  Likelihood: new plans ~ NegativeBinomial (or Poisson) around
``N`` moved from census-age bands to the age bands SEN2 records at issue
(:func:`issue_matrix`); stocks ~ Normal with variance ``S + (cv S)^2`` around ``S`` (where
recorded new plans enter ``S`` they are moved back to census-age bands by the model's
expected ratio).

Partial pooling: ``log theta[g, r] = a_g + sigma_area u_r + sigma_ga v_gr`` with
``a_g ~ N(mu, age_sd)`` (age groups share the common mean ``mu``) and ``u``, ``v``
zero-sum over areas (area terms only with more than one area; areas share the age-group
effects and are shrunk towards them).  ``log kappa`` has the same area structure, no trend,
and independent age-group terms (see :class:`PriorConfig`).

Not estimated (kept from the config, because aggregate series cannot separate them):
identification and its trend (SEN support flows are not published), the split of exits
between leaving and de-escalation (they enter only as a product), need multipliers, and the
targeted / targeted-plus ratio of escalation rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from simsend.calibration.targets import GROUPS, NEW_PLANS_LAG, band_matrix, band_of_age
from simsend.config import ModelConfig
from simsend.dims import TIER

_FLOOR = 1e-6


@dataclass(frozen=True)
class PriorConfig:
    """Config reference rates and prior scales of the calibration model.

    Attributes
    ----------
    esc_targeted, esc_targeted_plus : ndarray (26,)
        Config probabilities of moving from the targeted / targeted-plus tier to the
        specialist tier, by age (before need multipliers).
    exit_specialist : ndarray (26,)
        Config probability that an EHC plan ends during the year (leaving or de-escalation),
        by age.
    level_sd : float
        Normal prior sd of the common log escalation multiplier (centred on 0: the config).
    age_sd, area_sd, area_age_sd : float
        Half-normal prior scales of the spreads of age-group, area and area-by-age effects.
    trend_sd : float
        Normal prior sd of the common escalation trend ``escalation_trend_mu`` (per year,
        log scale).
    trend_age_sd : float
        Spread of the age groups' trends around the common trend (fixed, like
        ``age_sd``: five groups cannot learn it).  ``escalation_trend`` is per age group;
        0 gives one trend shared by every age.
    exit_level_sd, exit_age_sd, exit_area_sd : float
        As above for the exit-hazard multiplier (``exit_age_sd`` only with a hierarchical
        ``exit_age_form``).
    dispersion_sd : float
        Half-normal prior scale of the new-plans coefficient of variation beyond Poisson
        (one per age band).
    stock_cv_sd : float
        Half-normal prior scale of the stock coefficient of variation beyond Poisson (one
        per age band).
    likelihood : {"negbin", "poisson"}
        Distribution of new plans.
    area_age_interaction : bool
        Include area-by-age-group effects (only used with more than one area).
    issue_age_lag : float
        Share of new plans recorded (by age at issue) one year younger than their age at
        the next census, see :func:`issue_matrix`.
    issue_age_lead : float
        Share recorded one year older (SEN2's caseload ages are ages at the 31 August before
        the census: a child issued a plan in the autumn after a birthday since 31 August is
        older at issue than at the census), see :func:`issue_matrix`.
    escalation_age_form, exit_age_form : str
        How age groups share information (one of :data:`AGE_FORMS`).
        ``fixed_spread``: ``a_g ~ N(mu, age_sd)`` around a
        learned common mean with a fixed spread; ``centred`` / ``non_centred``: the spread
        is learned too; ``independent``: ``a_g ~ N(0, level_sd)``.  Defaults: escalation
        ``fixed_spread``, exits ``independent``.  With only five age groups a learned spread
        is weakly identified, and neither hierarchical form samples cleanly both on England
        (strong data: non-centred mixes slowly and diverges) and on a council (weaker data:
        centred diverges in the funnel); a fixed spread has no funnel.  Exit rates differ
        by orders of magnitude between age groups, so they are not pooled.
    centred_area : bool
        Centred area effects (both blocks).  Off by default: with few or similar areas the
        spread of area effects can be near zero, where the centred form diverges (and on
        every council it mixed no better: r-hat 1.53 on the spread of the main effects).
    area_trend_sd : float
        Half-normal prior scale of the spread of areas' escalation trends around their age
        group's trend (per year, log scale; only with more than one area).  Councils' EHC
        plans grew at very different rates over 2015-2025, so each area gets its own trend,
        shrunk towards the common one.
    innovation_sd : float
        Half-normal prior scale of ``escalation_innovation_sd``, the year-to-year innovation
        of each area's log escalation rate (a random walk around its trend).  It is
        estimated: it is what makes forecast bands widen with the horizon.
    random_walk : bool
        Include the random walks (needs at least three census years and more than one
        area).  One area's series cannot separate a walk from its trend: on synthetic data
        with a true walk the single-area fits mixed badly (bulk ESS 41-384 of 2,000-4,000
        draws, divergences), so a one-area posterior has trends only and its bands lack the
        year-to-year change in rates.
    year_noise_sd : float
        Half-normal prior scale of ``escalation_noise_sd``, a transient shock of each area and
        year (independent between years) on top of the walk; 0 leaves it out.  Only with
        more than one area: one area's short series cannot tell it from the walk and the
        new plans' own over-dispersion (the sampler mixes badly), many areas can.
    identification : ndarray (26,) or None
        Config probability that a universal child is identified (moves to the targeted
        tiers) during the year, by age.  With it (and targets holding ``sen_support``) the
        SEN support block is fitted; None leaves it out.
    identification_from_age : int
        First age whose identification the block's multiplier, trend, walk and drift act
        on; younger ages keep ``identification`` (0: every age).  :meth:`from_model` uses
        :data:`IDENTIFICATION_FROM_AGE`.
    deidentify : ndarray (26,) or None
        Config probability that a targeted-tier child returns to the universal tier, by age
        (averaged over targeted / targeted-plus by the targeted-plus share).
    deescalate_share : ndarray (26,) or None
        Share of the config's specialist-tier exits that are moves down to a targeted tier.
    id_level_sd, id_area_sd, id_innovation_sd : float
        Prior scales of the identification multiplier's level (normal, log scale), spread
        of areas' levels and trends (half-normal, trends at ``area_trend_sd``), and the
        innovation sd of its random walk (half-normal).
    sen_support_cv_sd : float
        Half-normal prior scale of SEN support's coefficient of variation beyond Poisson.
    exits_cv_sd : float
        Half-normal prior scale of the coefficient of variation beyond Poisson of plans
        ending (recorded from :data:`EXITS_FIRST_FLOW_YEAR`).
    estimate_issue_lag : bool
        Estimate the issue-age lag (``issue_age_lag``, uniform prior on [0, 1]) instead of
        fixing it at ``issue_age_lag``.  :meth:`from_model` turns it on: SEN2's ages at the
        census and at issue (or ending) need not follow the same convention, and a fixed 0.5
        left England's under-5 plans unexplained (the fit pushed their exit multiplier to 16,
        or their stock's extra variation to 0.30; with the lag at 0 it was 0.19).
    damping_prior : (float, float) or None
        Beta prior ``(a, b)`` of the escalation trend's damping ``phi``
        (``escalation_damping``): the step from year ``k`` after the first fitted year to the
        next is ``trend * phi^k``, and the forecast goes on damping it (``escalation_trend_ref`` is
        the step at the first year after the data).  Identification's trend is damped the same
        way with its own ``identification_damping`` (``identification_trend_ref``).  None keeps
        the linear trends.
        :meth:`from_model` uses :data:`DAMPING_PRIOR`.
    propagate_ages : bool
        Carry the within-band age profile of EHC plans from census to census by the model's
        own survival and new plans (see the module docstring) instead of keeping
        ``ehcp_age_share`` for every year; the profile at the last census is recorded as
        ``ehcp_age_share`` (age, area) for the engine's baseline.  :meth:`from_model` turns
        it on.
    exit_walk_sd : float
        Half-normal prior scale of the innovation sd of a random walk in each age group's
        log exit hazard over the transition years (``exit_innovation_sd``, per age group;
        common to the areas), so that exits may change over time (plans at 20-25 were new
        after the 2014 reform and ended ever more often as the band filled).  The engine
        takes the walk's last fitted value (``exit_multiplier``) without further innovations.
        0 (the default, also of :meth:`from_model`) = constant exits.  Tried on England
        2015-2022 (scale 0.15): the 20-25 walk stayed at 0 (-0.03) and the forecast of
        20-25 plans with it, while under-5 exits fell (-0.27) and 16-19 rose (+0.22); the
        sampler then met divergences (16 of 1,000 draws at nutpie's quick settings).
    common_trend_sd : float
        Half-normal prior scale of ``escalation_common_sd``, the innovation sd of a random
        walk in the log escalation rate common to every area (on top of each area's own
        walk): what independent walks cannot give, all councils' rates moving together, as
        new plans did after 2022 (England +27% in calendar 2023 after +3.5% in 2021).  The
        forecast walks it on with fresh innovations shared by every area, so councils'
        bands move together and England's band (their sum) keeps the common part.  Only
        with more than one area; 0 leaves it out (the default; :meth:`from_model` uses
        :data:`COMMON_TREND_PRIOR`).  The SEN support block's identification gets its own
        (``identification_common_sd``, same prior).  A common change in the trend's slope
        (a local linear trend, damped with the trend) was tried first: fitted to every
        council to 2022 it traded against the trend (trend 0.21 a year, damping 0.98, the
        common path falling 0.74 over the years, its last step -0.20 carried on) and the
        three-year medians got worse (median error of councils' EHC plans 10.2% against
        8.9%).
    age_shape_sd : float
        Half-normal prior scale of the sd of the steps of escalation's within-band age walk
        (``escalation_age_sd``; the effects are ``escalation_age_effect``, see
        :func:`age_shape_basis`).  Fitted only where the targets hold new plans by single
        age (``new_plans_age``); 0 leaves the shape to the config (the default;
        :meth:`from_model` uses :data:`AGE_SHAPE_PRIOR`).
    id_drift_sd : float
        Normal prior sd (centred on 0) of ``identification_drift``, a constant yearly change
        in the log identification rate common to every area, on top of the damped trend:
        each year's step is ``drift + trend * damping^k``, so the trend carries a burst that
        fades and the drift the growth that goes on, which a forecast carries forward (a
        walk forecasts no change).  0 leaves it out (the default; :meth:`from_model` uses
        :data:`IDENTIFICATION_DRIFT_PRIOR`).

    """

    esc_targeted: np.ndarray
    esc_targeted_plus: np.ndarray
    exit_specialist: np.ndarray
    level_sd: float = 1.0
    age_sd: float = 0.5
    area_sd: float = 0.5
    area_age_sd: float = 0.25
    trend_sd: float = 0.1
    trend_age_sd: float = 0.05
    exit_level_sd: float = 1.5
    exit_age_sd: float = 0.5
    exit_area_sd: float = 0.5
    dispersion_sd: float = 0.5
    stock_cv_sd: float = 0.1
    likelihood: str = "negbin"
    area_age_interaction: bool = True
    issue_age_lag: float = 0.5
    issue_age_lead: float = 0.0
    escalation_age_form: str = "fixed_spread"
    exit_age_form: str = "independent"
    centred_area: bool = False
    area_trend_sd: float = 0.03
    innovation_sd: float = 0.05
    random_walk: bool = True
    year_noise_sd: float = 0.1
    identification: np.ndarray | None = None
    identification_from_age: int = 0
    deidentify: np.ndarray | None = None
    deescalate_share: np.ndarray | None = None
    id_level_sd: float = 1.0
    id_area_sd: float = 0.5
    id_innovation_sd: float = 0.05
    sen_support_cv_sd: float = 0.05
    exits_cv_sd: float = 0.3
    estimate_issue_lag: bool = False
    propagate_ages: bool = False
    damping_prior: tuple[float, float] | None = None
    exit_walk_sd: float = 0.0
    common_trend_sd: float = 0.0
    id_drift_sd: float = 0.0
    age_shape_sd: float = 0.0

    @classmethod
    def from_model(cls, model: ModelConfig, **overrides) -> PriorConfig:
        """Take reference rates from a parsed ``[model]`` table; ``overrides`` set prior scales.

        Examples
        --------
        >>> from simsend.config import load
        >>> prior = PriorConfig.from_model(load("configs/base.toml").model)  # doctest: +SKIP
        >>> prior.exit_specialist.shape  # doctest: +SKIP
        (26,)

        """
        s = TIER["specialist"]
        t, tp, u = TIER["targeted"], TIER["targeted_plus"], TIER["universal"]
        stay = model.tiers[s, s]
        exit_p = 1.0 - (1.0 - model.leaving[s]) * stay
        share = float(overrides.pop("targeted_plus_share", 0.25))
        down = model.tiers[s, t] + model.tiers[s, tp]
        kw = dict(estimate_issue_lag=True, propagate_ages=True, damping_prior=DAMPING_PRIOR,
                  common_trend_sd=COMMON_TREND_PRIOR, id_drift_sd=IDENTIFICATION_DRIFT_PRIOR,
                  age_shape_sd=AGE_SHAPE_PRIOR, identification_from_age=IDENTIFICATION_FROM_AGE,
                  identification=np.asarray(model.identification, float).copy(),
                  deidentify=(1 - share) * model.tiers[t, u] + share * model.tiers[tp, u],
                  deescalate_share=np.where(exit_p > 0, down / np.maximum(exit_p, 1e-300),
                                            0.0))
        kw.update(overrides)
        return cls(esc_targeted=model.tiers[t, s].copy(),
                   esc_targeted_plus=model.tiers[tp, s].copy(),
                   exit_specialist=exit_p, **kw)


@dataclass(frozen=True)
class Constants:
    """NumPy inputs of the likelihood derived from targets and priors (see module docstring).

    Arrays are indexed ``[t, ...]`` over transition years (census years after the first).
    """

    years: np.ndarray  # (T,) transition census years
    areas: list
    e_cfg: np.ndarray  # (26, R) config escalation per exposed child
    xe: np.ndarray  # (T, 26, R) X e_cfg by single age (config-expected new plans)
    x_cfg: np.ndarray  # (T, 5, R) xe summed over census-age bands
    issue: np.ndarray  # (26, 5) census age -> recorded (issue-age) band
    x_band: np.ndarray  # (T, 5, R) exposed children per band
    aged: np.ndarray  # (T, 26, R) previous stock aged one year
    hazard: np.ndarray  # (26,) config exit hazard of the specialist tier
    new_obs: np.ndarray  # (T, 5, R)
    stock_obs: np.ndarray  # (T, 5, R)
    new_mask: np.ndarray  # (T, 5, R) bool: new plans enter the likelihood
    new_known: np.ndarray  # (T, 5, R) bool: recorded new plans used in the stock equation
    stock_mask: np.ndarray  # (T, 5, R) bool: stock enters the likelihood
    t_centre: float
    ref_year: int
    exits_obs: np.ndarray | None = None  # (T, R) plans ended (not transferred), recorded
    exits_mask: np.ndarray | None = None  # (T, R) bool: exits enter the likelihood
    aged_out: np.ndarray | None = None  # (T, R) plans of the last census at age 25
    exits_age_obs: np.ndarray | None = None  # (T, 5, R) plans ended by age band at ending
    exits_age_mask: np.ndarray | None = None  # (T, 5, R) bool
    prev_band: np.ndarray | None = None  # (T, 5, R) recorded stock of the previous census
    share0: np.ndarray | None = None  # (26, R) within-band age shares at the first census
    new_age_obs: np.ndarray | None = None  # (T, N_BINS, R) new plans by single-age bin
    new_age_mask: np.ndarray | None = None  # (T, R) bool: those enter instead of the bands


def issue_matrix(lag: float, lead: float = 0.0) -> np.ndarray:
    """``B[a, g]``: share of plans of census age ``a`` recorded in SEN2 age band ``g``.

    SEN2 records a new plan by the child's age when it is issued; the engine counts it by
    its age at the next January census, which SEN2's caseload takes at the 31 August before
    it.  A share ``lag`` of children are recorded one year younger (issued before a
    birthday that falls before 31 August) and a share ``lead`` one year older (issued in the
    autumn after a birthday since 31 August: a reception child of census age 4 issued a plan
    at 5).  With issue dates and birthdays spread evenly over the year, ``lag`` is about 0.22
    and ``lead`` 0.06.

    Examples
    --------
    >>> issue_matrix(0.5)[5].tolist()  # census age 5: half issued at 4 (under_5), half at 5
    [0.5, 0.5, 0.0, 0.0, 0.0]
    >>> issue_matrix(0.0, 0.3)[4].tolist()  # census age 4: 30% issued at 5
    [0.7, 0.3, 0.0, 0.0, 0.0]

    """
    return issue_shift(lag, lead) @ band_matrix()


def issue_shift(lag, lead=0.0):
    """``S[a, b]``: share of plans of census age ``a`` recorded at age ``b`` when issued.

    ``(1 - lag - lead)`` at ``b = a``, ``lag`` at ``a - 1`` and ``lead`` at ``a + 1`` (ages 0
    and 25 stay put).  ``lag`` and ``lead`` may be PyTensor scalars (the estimated shares).
    """
    n = 26
    younger = np.eye(n, k=-1)
    younger[0, 0] = 1.0
    older = np.eye(n, k=1)
    older[-1, -1] = 1.0
    return (1.0 - lag - lead) * np.eye(n) + lag * younger + lead * older


SINGLE_AGES = (3, 19)
"""Ages at issue SEN2 publishes singly (calendar 2022 on); its end rows are 'age 2 and under'
and 'age 20 and over'."""

N_BINS = SINGLE_AGES[1] - SINGLE_AGES[0] + 3
"""Bins of new plans by age at issue: 0-2, each single age 3-19, 20-25."""


def _bin_of_issue_age() -> np.ndarray:
    """Bin (0..N_BINS-1) of each age at issue 0-25."""
    lo, hi = SINGLE_AGES
    return np.clip(np.arange(26) - lo + 1, 0, hi - lo + 2)


def issue_bin_matrix(lag: float, lead: float = 0.0) -> np.ndarray:
    """``K[a, j]``: share of new plans of census age ``a`` recorded in single-age bin ``j``.

    As :func:`issue_matrix`, with the recorded ages in the bins of :data:`N_BINS`; summing
    its columns over each band's bins gives :func:`issue_matrix`.

    Examples
    --------
    >>> k = issue_bin_matrix(0.5)
    >>> k[5, 1:4].tolist()  # census age 5: half issued at 4 (bin 2), half at 5 (bin 3)
    [0.0, 0.5, 0.5]

    """
    return issue_shift(lag, lead) @ _bin_matrix()


def _bin_matrix() -> np.ndarray:
    """(26, N_BINS): 1 where an age at issue falls in a bin."""
    bins = np.zeros((26, N_BINS))
    bins[np.arange(26), _bin_of_issue_age()] = 1.0
    return bins


def age_shape_basis() -> np.ndarray:
    """``P`` (26, 17): escalation's within-band log age effects are ``delta = P z``.

    A random walk over single ages, one step per age SEN2 publishes singly (3-19), from 0 at
    age 2: ``delta_a = sum_{3 <= b <= a} z_b``.  New plans recorded by age at issue mix two
    census ages (the issue-age lag), so their counts are a moving average of the census ages'
    rates and cannot pin an age against its neighbour; independent effects left a +-0.8
    alternation unresolved on synthetic data, a walk's smoothness removes it.  Ages 0-2 and
    20-25, recorded only as ranges, keep the config's shape (``delta = 0`` at 0-2; at 20-25
    the band's multiplier alone).  In a band whose every age is free (5-10, 11-15, 16-19)
    the effects are centred, so the band's multiplier keeps its level; under 5 keeps 0-2 at
    0, which pins the band's level instead.

    Examples
    --------
    >>> p = age_shape_basis()
    >>> p.shape, float(abs(p[5:11].sum(axis=0)).max()) < 1e-12
    ((26, 17), True)

    """
    lo, hi = SINGLE_AGES
    free = np.arange(lo, hi + 1)
    p = np.zeros((26, len(free)))
    p[lo:hi + 1] = np.tril(np.ones((len(free), len(free))))  # walk: cumulative steps
    band = band_of_age()
    for g in range(len(GROUPS)):
        ages = np.flatnonzero(band == g)
        if np.isin(ages, free).all():
            p[ages] -= p[ages].mean(axis=0)
    return p


def _single_age_bins(targets: xr.Dataset, years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return recorded new plans by bin (T, N_BINS, R) and where every bin is known (T, R).

    Bins 3-19 are the published single ages; 0-2 is the under-5 band less ages 3 and 4, and
    20-25 the 20-25 band.  A year and area enter only when all are known and non-negative.
    """
    lo, hi = SINGLE_AGES
    single = targets["new_plans_age"].transpose("year", "age", "area").values[1:]
    band = targets["new_plans"].transpose("year", "age_group", "area").values[1:]
    out = np.full((len(years), N_BINS, single.shape[2]), np.nan)
    out[:, 1:-1] = single[:, lo:hi + 1]
    out[:, 0] = band[:, 0] - single[:, lo:5].sum(axis=1)
    out[:, -1] = band[:, -1]
    ok = (np.isfinite(out) & (out >= 0)).all(axis=1)
    return np.nan_to_num(out), ok


def constants(targets: xr.Dataset, prior: PriorConfig) -> Constants:
    """Derive the likelihood's constant arrays from ``targets`` (no PyTensor involved)."""
    m = band_matrix()
    s_tp = float(targets.attrs.get("targeted_plus_share", 0.25))
    nf = targets["need_factor"].transpose("age", "area").values
    e_cfg = nf * ((1.0 - s_tp) * prior.esc_targeted + s_tp * prior.esc_targeted_plus)[:, None]
    e_cfg = np.maximum(e_cfg, _FLOOR)
    ehcp = targets["ehcp"].transpose("year", "age_group", "area").values
    new = targets["new_plans"].transpose("year", "age_group", "area").values[1:]
    expo = targets["exposure"].transpose("year", "age", "area").values[1:]
    share = targets["ehcp_age_share"].transpose("age", "area").values
    years = targets["year"].values[1:].astype(np.int64)
    xe = expo * e_cfg[None]
    x_cfg = np.einsum("tar,ag->tgr", xe, m)
    x_band = np.einsum("tar,ag->tgr", expo, m)
    prev_by_age = ehcp[:-1][:, band_of_age(), :] * share[None]  # (T, 26, R)
    aged = np.zeros_like(prev_by_age)
    aged[:, 1:] = prev_by_age[:, :-1]
    hazard = -np.log1p(-np.clip(prior.exit_specialist, _FLOOR, 1.0 - _FLOOR))
    stock = ehcp[1:]
    prev_ok = np.isfinite(ehcp[:-1]).all(axis=1, keepdims=True)
    expo_ok = np.isfinite(x_cfg)
    new_known = np.isfinite(new)
    new_mask = new_known & expo_ok
    stock_mask = np.isfinite(stock) & prev_ok & (new_known | expo_ok)
    if not new_mask.any() and not stock_mask.any():
        raise ValueError("no observation enters the likelihood (all targets missing)")
    exits = {}
    if "exits" in targets:
        ex = targets["exits"].transpose("year", "area").values[1:].astype(float)
        person_level = (years - NEW_PLANS_LAG >= EXITS_FIRST_FLOW_YEAR)[:, None]
        ok = prev_ok[:, 0, :] & person_level
        exits = {"exits_obs": np.nan_to_num(ex), "exits_mask": np.isfinite(ex) & (ex >= 0) & ok,
                 "aged_out": np.nan_to_num(prev_by_age[:, -1, :])}
        if "exits_age" in targets:
            # By age band where every band is recorded; the total is then left out.
            eg = targets["exits_age"].transpose("year", "age_group", "area").values[1:]
            whole = (np.isfinite(eg) & (eg >= 0)).all(axis=1) & ok  # (T, R)
            exits["exits_age_obs"] = np.nan_to_num(eg)
            exits["exits_age_mask"] = np.broadcast_to(whole[:, None, :], eg.shape).copy()
            exits["exits_mask"] = exits["exits_mask"] & ~whole
    if "new_plans_age" in targets and prior.age_shape_sd > 0:
        obs, ok = _single_age_bins(targets, years)
        ok &= new_mask.all(axis=1)
        if ok.any():
            # Those years' new plans enter by single age instead of by band.
            exits["new_age_obs"], exits["new_age_mask"] = obs, ok
            new_mask = new_mask & ~ok[:, None, :]
    return Constants(
        years=years, areas=[str(a) for a in targets["area"].values], e_cfg=e_cfg,
        xe=np.nan_to_num(xe), x_cfg=np.nan_to_num(x_cfg),
        issue=issue_matrix(prior.issue_age_lag, prior.issue_age_lead),
        x_band=np.nan_to_num(x_band),
        aged=np.nan_to_num(aged), hazard=hazard, new_obs=np.nan_to_num(new),
        stock_obs=np.nan_to_num(stock), new_mask=new_mask, new_known=new_known,
        stock_mask=stock_mask, t_centre=float(np.mean(years)),
        ref_year=int(targets["year"].values[-1]) + 1, prev_band=ehcp[:-1], share0=share,
        **exits)


DAMPING_PRIOR = (1.0, 1.0)
"""Beta prior of the trends' damping (ASSUMPTION): uniform on [0, 1], no preference between a
trend that goes on and one that fades.  Fitted to 2015-2019 the linear trend carried the 2014
reform's build-up (11-13% a year) into forecasts that ran 21-25% above the new plans recorded a
year later; a damped trend lets the data say whether growth in the rate has been slowing.  The
prior before, Beta(4, 1) (mode 1, mean 0.8), let the walk common to every council take the
slowing while the trend went on undamped (every council to 2019: damping 0.97, the common walk
falling 0.18 over four years); with the uniform prior the fit to 2019 damps (0.79, 0.60-0.96) and
councils' EHC plans three years ahead summed came out 4.8% high, not 9.4% (median council error
8.7%, not 12.7%); fitted to 2022 the damping stays 0.97 and the sum moved from +2.6% to -0.1%
(single-origin backtests, 200 draws)."""


COMMON_TREND_PRIOR = 0.05
"""Half-normal prior scale of the common walk's innovation sd (``escalation_common_sd``;
ASSUMPTION on the prior only, the sd is estimated): mean 0.04 a year on the log rate, about
the size of the changes in England's yearly growth of new plans per child before 2022."""


IDENTIFICATION_DRIFT_PRIOR = 0.05
"""Normal prior sd of identification's drift (``identification_drift``, ASSUMPTION on the
prior only, the drift is estimated): 95% of its mass within +-10% a year on the rate.  Without a
drift the growth of identification went into the walks, which forecast no change: from January
2021 and 2022, councils' SEN support three years ahead summed came out 13% and 10% below the
school census while it rose 4-5% a year."""


IDENTIFICATION_FROM_AGE = 4
"""First age whose identification the SEN support block scales (``identification_scaled``).
The school census counts SEN support from reception (age 4); identification before it is not
recorded anywhere in the data, so it stays the config's (ASSUMPTION), as in the early-years fill
the baseline starts from (:mod:`simsend.data.early_years`) and the exposure the escalation at
ages 3-5 is fitted on.  Scaling it too moved England's SEN support at age 3 from 25,800 to
35,100 in the first forecast year and 46,400 in the third (multiplier 1.89), and with it the
under-5 plans from 26,800 to 45,600 in two years: the escalation at age 4 was fitted on the
config's early-years exposure, not on the scaled one."""


AGE_SHAPE_PRIOR = 0.5
"""Half-normal prior scale of ``escalation_age_sd``, the sd of the steps of escalation's
within-band age walk from one single age to the next (:func:`age_shape_basis`; ASSUMPTION on
the prior only: the steps and their sd are estimated from SEN2's new plans by single age at
issue).  The config's shape put 3,500 of England's 2024 new plans at age 5 (SEN2: 13,207) and
6,000 at age 3 (2,134); steps of about 0.4 a year of age let the rate of one age differ from
its band's by a factor of 2-3 where the data say so."""


EXITS_FIRST_FLOW_YEAR = 2022
"""First calendar year whose plan endings enter the likelihood.  SEN2 counted ceased plans
in councils' aggregate returns to 2021 and from person-level records from 2022 (DfE marks a
break in series): England's endings other than transfers were 3.3% of plans in 2021 and 5.5%
in 2023, a jump no rate in the model has; the earlier years still inform the needs-met
share (:mod:`simsend.calibration.exits`)."""

AGE_FORMS = ("fixed_spread", "centred", "non_centred", "independent")


def _effects(prefix: str, n_areas: int, level_sd: float, age_sd: float, area_sd: float,
             area_age_sd: float | None, age_form: str,
             centred_area: bool) -> pt.TensorVariable:
    """Log multiplier ``(age_group, area)`` with partial pooling.

    Age groups: ``centred`` / ``non_centred`` hierarchical (common mean ``mu``, learned
    spread), or ``independent`` (each ``N(0, level_sd)``).  The centred form suits effects
    the data pin down, the non-centred form weakly identified ones (it avoids the funnel
    between a spread and its effects); independent priors have no funnel at all.
    """
    if age_form == "independent":
        age = pm.Normal(f"{prefix}_age", 0.0, level_sd, dims="age_group")
    elif age_form == "fixed_spread":
        mu = pm.Normal(f"{prefix}_mu", 0.0, level_sd)
        age = pm.Normal(f"{prefix}_age", mu, age_sd, dims="age_group")
    elif age_form in ("centred", "non_centred"):
        mu = pm.Normal(f"{prefix}_mu", 0.0, level_sd)
        sd_age = pm.HalfNormal(f"{prefix}_age_sd", age_sd)
        if age_form == "centred":
            age = pm.Normal(f"{prefix}_age", mu, sd_age, dims="age_group")
        else:
            age = mu + sd_age * pm.Normal(f"{prefix}_age_z", 0.0, 1.0, dims="age_group")
    else:
        raise ValueError(f"unknown age_form {age_form!r}; expected one of {AGE_FORMS}")
    out = age[:, None] * pt.ones((1, n_areas))
    if n_areas > 1:
        sd_area = pm.HalfNormal(f"{prefix}_area_sd", area_sd)
        if centred_area:
            out = out + pm.ZeroSumNormal(f"{prefix}_area", sigma=sd_area, dims="area")[None, :]
        else:
            z_area = pm.ZeroSumNormal(f"{prefix}_area_z", sigma=1.0, dims="area")
            out = out + sd_area * z_area[None, :]
        if area_age_sd is not None:
            sd_ga = pm.HalfNormal(f"{prefix}_area_age_sd", area_age_sd)
            # Always non-centred: interactions are the least identified effects.  Zero-sum
            # over age groups as well as areas, so that an area's mean over age groups is its
            # main effect alone (zero-sum over areas only left that direction to the prior:
            # r-hat 1.15-1.53 on the spread of 153 councils' main effects).
            z_ga = pm.ZeroSumNormal(f"{prefix}_area_age_z", sigma=1.0,
                                    dims=("age_group", "area"), n_zerosum_axes=2)
            out = out + sd_ga * z_ga
    return out


def damped_times(phi, steps: np.ndarray):
    """Return a damped trend's centred times: ``(dt, ref, step_ref)``.

    ``steps`` (int, ascending from 0) are the fitted years' and, last, the reference year's
    years since the first.  The step from year ``k`` to ``k + 1`` is ``trend * phi^k``, so the
    log rate at step ``s`` moves by ``trend * sum_{i<s} phi^i``: ``dt`` is that sum at the
    fitted years centred over them (as a linear trend's ``t - tbar``), ``ref`` the same at
    the reference year, ``step_ref = phi^s_ref`` the step there as a share of the first.
    """
    cum = pt.concatenate([pt.zeros(1), pt.cumsum(phi ** np.arange(steps.max()))])[steps]
    centre = pt.mean(cum[:-1])
    return cum[:-1] - centre, cum[-1] - centre, phi ** float(steps[-1])


def build_model(targets: xr.Dataset, prior_cfg: PriorConfig) -> pm.Model:
    """Build the PyMC calibration model (see the module docstring for the equations).

    Parameters
    ----------
    targets : xarray.Dataset
        Observed series, see :mod:`simsend.calibration.targets`.
    prior_cfg : PriorConfig
        Config reference rates and prior scales.

    Returns
    -------
    pymc.Model
        Coordinates ``year`` (transition census years), ``age_group``, ``area``.  Posterior
        quantities used by :class:`~simsend.rates.posterior.PosteriorParameters`:
        ``escalation_multiplier`` and ``exit_multiplier`` (age_group, area) at the first year
        after the data (``ref_year``, the random walk's last fitted value included),
        ``escalation_trend`` (age_group), ``escalation_trend_area`` (age_group, area),
        ``escalation_innovation_sd``, ``escalation_noise_sd`` and ``escalation_walk``
        (year, area); ``escalation_age_effect`` (age), escalation's within-band shape, where
        the targets hold new plans by single age; ``issue_age_lag`` and ``issue_age_lead``
        where estimated; also the interpretable rates
        ``escalation`` (expected new plans per targeted-tier child) and ``exit_specialist``.

    Examples
    --------
    >>> from simsend.calibration.synthetic import synthetic_targets
    >>> t, truth, prior = synthetic_targets(n_areas=1, n_years=5, seed=0)
    >>> m = build_model(t, prior)
    >>> sorted(m.coords)
    ['age_group', 'area', 'obs_ehcp', 'obs_new', 'step', 'year']

    """
    c = constants(targets, prior_cfg)
    n_t, n_g, n_r = c.x_cfg.shape
    band = band_of_age()
    new_idx = np.flatnonzero(c.new_mask.ravel())
    stock_idx = np.flatnonzero(c.stock_mask.ravel())
    coords = {"year": c.years, "age_group": list(GROUPS), "area": c.areas,
              "obs_new": new_idx, "obs_ehcp": stock_idx, "step": c.years[1:]}
    if c.new_age_mask is not None:
        coords["age"] = np.arange(len(band))
    inter = prior_cfg.area_age_sd if prior_cfg.area_age_interaction else None
    with pm.Model(coords=coords) as model:
        # Priors
        centred = bool(prior_cfg.centred_area)
        log_theta = _effects("esc", n_r, prior_cfg.level_sd, prior_cfg.age_sd,
                             prior_cfg.area_sd, inter, prior_cfg.escalation_age_form,
                             centred)
        trend_mu = pm.Normal("escalation_trend_mu", 0.0, prior_cfg.trend_sd)
        if prior_cfg.trend_age_sd > 0:
            # non-centred: the data pin the common trend far better than the differences
            z_trend = pm.Normal("escalation_trend_z", 0.0, 1.0, dims="age_group")
            trend = pm.Deterministic("escalation_trend",
                                     trend_mu + prior_cfg.trend_age_sd * z_trend,
                                     dims="age_group")
        else:
            trend = pm.Deterministic("escalation_trend", trend_mu * pt.ones(n_g),
                                     dims="age_group")
        if n_r > 1 and prior_cfg.area_trend_sd > 0:
            sd_tr = pm.HalfNormal("escalation_trend_area_sd", prior_cfg.area_trend_sd)
            z_tr = pm.ZeroSumNormal("escalation_trend_area_z", sigma=1.0, dims="area")
            trend_ar = trend[:, None] + sd_tr * z_tr[None, :]
        else:
            trend_ar = trend[:, None] * pt.ones((1, n_r))
        trend_ar = pm.Deterministic("escalation_trend_area", trend_ar,
                                    dims=("age_group", "area"))
        noisy = prior_cfg.year_noise_sd > 0 and n_r > 1
        walking = prior_cfg.random_walk and n_t >= 2 and n_r > 1
        if walking and noisy:
            # The walk's lasting change and the year's transient shock share the year-to-year
            # variance; sampled as a total and a split (the two sds alone mixed slowly).
            sd_tot = pm.HalfNormal("escalation_change_sd",
                                   np.hypot(prior_cfg.innovation_sd, prior_cfg.year_noise_sd))
            split = pm.Beta("escalation_walk_share", 2.0, 2.0)
            sd_w = pm.Deterministic("escalation_innovation_sd", sd_tot * pt.sqrt(split))
            sd_n = pm.Deterministic("escalation_noise_sd", sd_tot * pt.sqrt(1.0 - split))
        else:
            sd_w = (pm.HalfNormal("escalation_innovation_sd", prior_cfg.innovation_sd)
                    if walking else pm.Deterministic("escalation_innovation_sd",
                                                     pt.as_tensor_variable(0.0)))
            sd_n = (pm.HalfNormal("escalation_noise_sd", prior_cfg.year_noise_sd)
                    if noisy else pm.Deterministic("escalation_noise_sd",
                                                   pt.as_tensor_variable(0.0)))
        if walking:
            # Non-centred (a centred walk diverged in the funnel even on one area's data).
            e_w = sd_w * pm.Normal("escalation_innovation_z", 0.0, 1.0, dims=("step", "area"))
            walk = pt.concatenate([pt.zeros((1, n_r)), pt.cumsum(e_w, axis=0)], axis=0)
        else:
            walk = pt.zeros((n_t, n_r))
        walk = pm.Deterministic("escalation_walk", walk, dims=("year", "area"))
        if noisy:
            # A transient shock of the year (common to the area's age bands): recording and
            # timing that does not persist, apart from the walk's lasting change.
            noise = sd_n * pm.Normal("escalation_noise_z", 0.0, 1.0, dims=("year", "area"))
        else:
            noise = pt.zeros((n_t, n_r))
        if c.new_age_mask is not None:
            # Within-band age shape of escalation, common to the areas: a random walk over
            # single ages (non-centred steps).
            basis = age_shape_basis()
            sd_d = pm.HalfNormal("escalation_age_sd", prior_cfg.age_shape_sd)
            z_d = pm.Normal("escalation_age_z", 0.0, 1.0, shape=basis.shape[1])
            delta = pm.Deterministic("escalation_age_effect",
                                     sd_d * pt.dot(pt.as_tensor_variable(basis), z_d),
                                     dims="age")
        else:
            delta = pt.zeros(len(band))
        log_kappa = _effects("exit", n_r, prior_cfg.exit_level_sd, prior_cfg.exit_age_sd,
                             prior_cfg.exit_area_sd, inter, prior_cfg.exit_age_form,
                             centred)
        # Extra-Poisson variation by age band (the 16-25 bands carry the 2014 reform's
        # transition and are far noisier than the school-age bands).
        cv_new = pm.HalfNormal("new_plans_cv", prior_cfg.dispersion_sd, dims="age_group")
        cv_stock = pm.HalfNormal("ehcp_cv", prior_cfg.stock_cv_sd, dims="age_group")
        cv_new_f = pt.broadcast_to(cv_new[None, :, None], (n_t, n_g, n_r)).ravel()[new_idx]
        cv_stock_f = pt.broadcast_to(cv_stock[None, :, None], (n_t, n_g, n_r)).ravel()[stock_idx]

        # Likelihood
        dt = pt.as_tensor_variable(c.years - c.t_centre)
        steps = np.append(c.years, c.ref_year) - c.years[0]  # years since the first, and ref
        if prior_cfg.damping_prior is not None:
            # Damped trend: the step from year k to k + 1 is trend * phi^k, so the log rate moves by
            # trend * sum_{i<k} phi^i (centred over the fitted years like the linear trend).
            phi = pm.Beta("escalation_damping", *prior_cfg.damping_prior)
            dt_esc, ref_esc, step = damped_times(phi, steps)
            slope_ref = trend_ar * step
        else:
            dt_esc = dt
            ref_esc = float(c.ref_year - c.t_centre)
            slope_ref = trend_ar
        pm.Deterministic("escalation_trend_ref", slope_ref, dims=("age_group", "area"))
        common = _common_trend(prior_cfg, n_t, n_r)
        rate = pt.exp(log_theta[band][None] + delta[None, :, None]
                      + trend_ar[band][None] * dt_esc[:, None, None]
                      + (walk + noise + common[:, None])[:, None, :])  # (T, 26, R)
        mu_age = rate * c.xe  # expected escalations by census age
        mu_new = pt.tensordot(mu_age, band_matrix(), axes=[[1], [0]]).dimshuffle(0, 2, 1)
        if prior_cfg.estimate_issue_lag:
            # the recorded age shifted by the estimated shares (the lead takes a uniform
            # share of what the lag leaves)
            lag = pm.Beta("issue_age_lag", 1.0, 1.0)
            lead = pm.Deterministic("issue_age_lead",
                                    (1.0 - lag) * pm.Beta("issue_age_lead_share", 1.0, 1.0))
            shift = issue_shift(lag, lead)
            issue = pt.dot(shift, band_matrix())
            bins = pt.dot(shift, _bin_matrix())
        else:
            issue = pt.as_tensor_variable(c.issue)
            bins = pt.as_tensor_variable(issue_bin_matrix(prior_cfg.issue_age_lag,
                                                          prior_cfg.issue_age_lead))
        mu_rec = pt.tensordot(mu_age, issue, axes=[[1], [0]]).dimshuffle(0, 2, 1) + 1e-9
        if prior_cfg.exit_walk_sd > 0 and n_t >= 2:
            # Exits that change over time: a walk per age group, common to the areas,
            # starting at 0 in the first transition year (non-centred).
            sd_x = pm.HalfNormal("exit_innovation_sd", prior_cfg.exit_walk_sd,
                                 dims="age_group")
            z_x = pm.Normal("exit_innovation_z", 0.0, 1.0, dims=("step", "age_group"))
            x_walk = pt.concatenate([pt.zeros((1, n_g)), pt.cumsum(sd_x * z_x, axis=0)],
                                    axis=0)
            x_walk = pm.Deterministic("exit_walk", x_walk, dims=("year", "age_group"))
            kappa_t = pt.exp(log_kappa[None] + x_walk[:, :, None])  # (T, G, R)
        else:
            kappa_t = pt.exp(log_kappa)[None] * pt.ones((n_t, 1, 1))
        kappa = kappa_t[-1]  # the last fitted year's, carried on
        surv_t = pt.exp(-kappa_t[:, band] * c.hazard[None, :, None])  # (T, 26, R)
        surv = surv_t[-1]
        # Recorded new plans (by issue age) moved to census-age bands in expectation.
        new_used = pt.where(c.new_known, c.new_obs * (mu_new + 1e-9) / mu_rec, mu_new)
        if prior_cfg.propagate_ages:
            aged, aged_out, share_last = propagated_ages(c, surv_t, mu_age, new_used)
            if "age" not in model.coords:
                model.add_coord("age", np.arange(len(band)))
            pm.Deterministic("ehcp_age_share", share_last, dims=("age", "area"))
        else:
            aged, aged_out = pt.as_tensor_variable(c.aged), c.aged_out
        survivors = pt.tensordot(aged * surv_t, band_matrix(), axes=[[1], [0]])
        survivors = survivors.dimshuffle(0, 2, 1)  # (T, G, R)
        mu_stock = survivors + new_used
        mu_new_f = mu_rec.ravel()[new_idx]
        if prior_cfg.likelihood == "poisson":
            pm.Poisson("new_plans", mu=mu_new_f, observed=c.new_obs.ravel()[new_idx],
                       dims="obs_new")
        elif prior_cfg.likelihood == "negbin":
            pm.NegativeBinomial("new_plans", mu=mu_new_f, alpha=1.0 / cv_new_f ** 2,
                                observed=c.new_obs.ravel()[new_idx], dims="obs_new")
        else:
            raise ValueError(f"unknown likelihood {prior_cfg.likelihood!r}")
        if c.new_age_mask is not None:
            # New plans by single age at issue where published: bins 0-2, 3, ..., 19, 20-25,
            # each with its band's over-dispersion.
            ia_idx = np.flatnonzero(np.broadcast_to(c.new_age_mask[:, None, :],
                                                    c.new_age_obs.shape).ravel())
            model.add_coord("obs_new_age", ia_idx)
            mu_bin = pt.tensordot(mu_age, bins, axes=[[1], [0]]).dimshuffle(0, 2, 1) + 1e-9
            mu_bin_f = mu_bin.ravel()[ia_idx]
            obs_bin = c.new_age_obs.ravel()[ia_idx]
            if prior_cfg.likelihood == "poisson":
                pm.Poisson("new_plans_age", mu=mu_bin_f, observed=obs_bin, dims="obs_new_age")
            else:
                bin_band = band[np.arange(N_BINS) + SINGLE_AGES[0] - 1]  # 2, 3, ..., 20
                cv_bin = pt.broadcast_to(cv_new[bin_band][None, :, None],
                                         c.new_age_obs.shape).ravel()[ia_idx]
                pm.NegativeBinomial("new_plans_age", mu=mu_bin_f, alpha=1.0 / cv_bin ** 2,
                                    observed=obs_bin, dims="obs_new_age")
        mu_s = mu_stock.ravel()[stock_idx]
        pm.Normal("ehcp", mu=mu_s, sigma=pt.sqrt(mu_s + 1.0 + (cv_stock_f * mu_s) ** 2),
                  observed=c.stock_obs.ravel()[stock_idx], dims="obs_ehcp")
        ended = aged * (1.0 - surv_t)  # (T, 26, R) plans ending by census age
        if c.exits_mask is not None and c.exits_mask.any():
            # Plans ending (other than by transfer): the exit hazard applied to the aged
            # stock, plus plans ageing past 25; this is what pins the exit multipliers
            # (stocks alone trade them against escalation).
            ex_idx = np.flatnonzero(c.exits_mask.ravel())
            model.add_coord("obs_exits", ex_idx)
            mu_ex = pt.sum(ended, axis=1) + aged_out + 1e-9
            cv_ex = pm.HalfNormal("exits_cv", prior_cfg.exits_cv_sd)
            pm.NegativeBinomial("exits", mu=mu_ex.ravel()[ex_idx], alpha=1.0 / cv_ex ** 2,
                                observed=c.exits_obs.ravel()[ex_idx], dims="obs_exits")
        if c.exits_age_mask is not None and c.exits_age_mask.any():
            # By age band when the plan ended: like new plans, about half a year younger
            # than the age at the next census (the issue matrix), ageing out past 25 in the
            # 20-25 band.
            eg_idx = np.flatnonzero(c.exits_age_mask.ravel())
            model.add_coord("obs_exits_age", eg_idx)
            mu_eg = pt.tensordot(ended, issue, axes=[[1], [0]]).dimshuffle(0, 2, 1)
            mu_eg = pt.set_subtensor(mu_eg[:, -1, :], mu_eg[:, -1, :] + aged_out) + 1e-9
            cv_eg = pm.HalfNormal("exits_age_cv", prior_cfg.exits_cv_sd, dims="age_group")
            cv_eg_f = pt.broadcast_to(cv_eg[None, :, None], (n_t, n_g, n_r)).ravel()[eg_idx]
            pm.NegativeBinomial("exits_age", mu=mu_eg.ravel()[eg_idx],
                                alpha=1.0 / cv_eg_f ** 2,
                                observed=c.exits_age_obs.ravel()[eg_idx], dims="obs_exits_age")

        if has_sen_support(targets, prior_cfg):
            # What the SEN support model takes from this one (its second stage).
            pm.Deterministic("targeted_escalations", mu_age.sum(axis=1), dims=("year", "area"))
            pm.Deterministic("specialist_exits", ended.sum(axis=1), dims=("year", "area"))
            down = pt.sum(ended * prior_cfg.deescalate_share[None, :, None], axis=1)
            pm.Deterministic("specialist_moved_down", down, dims=("year", "area"))

        # Quantities handed to the engine (rates of the first year after the data)
        # The walk's last fitted value carries on; the innovation of the year ahead is the
        # forecast's (see simsend.rates.posterior).
        theta_ref = pm.Deterministic("escalation_multiplier",
                                     pt.exp(log_theta + trend_ar * ref_esc
                                            + (walk[-1] + common[-1])[None, :]),
                                     dims=("age_group", "area"))
        pm.Deterministic("exit_multiplier", kappa, dims=("age_group", "area"))
        w_new = c.x_cfg[-1] / np.where(c.x_band[-1] > 0, c.x_band[-1], 1.0)
        pm.Deterministic("escalation", theta_ref * w_new, dims=("age_group", "area"))
        if prior_cfg.propagate_ages:
            w = aged[-1] + 1e-6  # the model's own profile (empty band: equal weights)
            kept = pt.tensordot((w * surv).T, band_matrix(), axes=[[1], [0]]).T  # (G, R)
            whole = pt.tensordot(w.T, band_matrix(), axes=[[1], [0]]).T
        else:
            w = c.aged[-1] if c.aged[-1].sum() > 0 else np.ones_like(c.aged[-1])
            w = np.where(band_matrix().T @ w > 0, 0, 1)[band] + w  # empty band: equal weights
            kept = pt.tensordot((w * surv).T, band_matrix(), axes=[[1], [0]]).T  # (G, R)
            whole = band_matrix().T @ w
        pm.Deterministic("exit_specialist", 1.0 - kept / whole, dims=("age_group", "area"))
    return model


def _common_trend(prior_cfg: PriorConfig, n_t: int, n_r: int, prefix: str = "escalation"):
    """Return the change in a log rate common to every area by transition year, (T,).

    A random walk: ``g[0] = 0``, ``g[t] = g[t-1] + sd z[t]`` with ``sd`` the estimated
    ``{prefix}_common_sd``; recorded as ``{prefix}_common`` (year).  Zeros when left out.
    """
    if prior_cfg.common_trend_sd <= 0 or n_r < 2 or n_t < 2 or not prior_cfg.random_walk:
        return pt.zeros(n_t)
    sd = pm.HalfNormal(f"{prefix}_common_sd", prior_cfg.common_trend_sd)
    z = pm.Normal(f"{prefix}_common_z", 0.0, 1.0, dims="step")
    # cumsum of the joined steps, not a join of zeros and a cumsum: PyTensor 2.38.3 rewrites
    # ``join(zeros(1), cumsum(x))[-1] + y`` (a vector y) to ``y`` (checked by hand: [1, 1]
    # for [4, 4]), which dropped the walk's last value from the multiplier handed on.
    g = pt.cumsum(pt.concatenate([pt.zeros(1), sd * z]))
    return pm.Deterministic(f"{prefix}_common", g, dims="year")


def propagated_ages(c: Constants, surv, mu_age, new_band):
    """Previous stocks by single age, carried from census to census by the model itself.

    Each year's recorded band stocks (the model's own where a census is unrecorded) are
    spread over single ages by the within-band profile of the model's expected stock at
    that census: survivors of the year before aged on, plus the band's new plans dealt over
    its ages in proportion to the expected new plans ``mu_age`` (evenly where none are
    expected).  The first census uses ``c.share0``.

    Parameters
    ----------
    c : Constants
        Needs ``prev_band`` (T, 5, R) (NaN where unrecorded) and ``share0`` (26, R).
    surv : tensor or array (T, 26, R)
        One-year survival of a plan by census age in each transition year.
    mu_age : tensor or array (T, 26, R)
        Expected new plans by census age.
    new_band : tensor or array (T, 5, R)
        New plans used in the stock equation, by band.

    Returns
    -------
    aged : tensor (T, 26, R)
        Stock of the previous census aged one year (age 0 empty).
    aged_out : tensor (T, R)
        Stock of the previous census at age 25 (ageing out).
    share : tensor (26, R)
        Within-band age profile of the expected stock at the last census.

    """
    m = band_matrix()
    band = band_of_age()
    width = m.sum(axis=0)[band][:, None]
    share = pt.as_tensor_variable(c.share0)
    pred = None
    aged, out = [], []
    for t in range(c.prev_band.shape[0]):
        rec = c.prev_band[t]
        known = np.isfinite(rec)
        prev = (pt.as_tensor_variable(np.nan_to_num(rec)) if pred is None
                else pt.where(known, np.nan_to_num(rec), pred))
        prev_age = prev[band] * share  # (26, R)
        aged_t = pt.concatenate([pt.zeros_like(prev_age[:1]), prev_age[:-1]], axis=0)
        aged.append(aged_t)
        out.append(prev_age[-1])
        expected = pt.dot(m.T, mu_age[t])[band]  # (26, R) the band's expected new plans
        stock_age = aged_t * surv[t] + new_band[t][band] * (mu_age[t] + 1e-9) / (expected
                                                                              + 1e-9 * width)
        pred = pt.dot(m.T, stock_age)  # (5, R)
        # a tiny floor keeps an empty band's profile flat (and shares summing to 1)
        share = (stock_age + 1e-6) / (pred[band] + 1e-6 * width)
    return pt.stack(aged), pt.stack(out), share


def identification_scaled(prior_cfg: PriorConfig) -> np.ndarray:
    """Return (26,) 1.0 at the ages the identification multiplier acts on, 0.0 below them.

    Examples
    --------
    >>> identification_scaled(PriorConfig(np.zeros(26), np.zeros(26), np.zeros(26),
    ...                                   identification_from_age=4))[:6].tolist()
    [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]

    """
    n = 26 if prior_cfg.identification is None else len(prior_cfg.identification)
    return (np.arange(n) >= int(prior_cfg.identification_from_age)).astype(float)


def has_sen_support(targets: xr.Dataset, prior_cfg: PriorConfig) -> bool:
    """Whether the SEN support block can be fitted (config rates and recorded SEN support)."""
    return (prior_cfg.identification is not None and "sen_support" in targets
            and "universal" in targets and bool(_sen_support_mask(targets).any()))


def _sen_support_mask(targets: xr.Dataset) -> np.ndarray:
    """Return (T, R): transition years whose SEN support enters the likelihood.

    Those where it and the last census's are recorded and the exposures are known.
    """
    ss = targets["sen_support"].transpose("year", "area").values
    uni = targets["universal"].transpose("year", "age", "area").values[1:]
    expo = targets["exposure"].transpose("year", "age", "area").values[1:]
    return (np.isfinite(ss[1:]) & np.isfinite(ss[:-1]) & np.isfinite(uni).all(axis=1)
            & np.isfinite(expo).all(axis=1))


def build_identification_model(targets: xr.Dataset, prior_cfg: PriorConfig,
                               escalations: np.ndarray, moved_down: np.ndarray) -> pm.Model:
    r"""Build the SEN support model (the calibration's second stage): identification by area.

    .. math::

        SS_{r t} = \sum_a X_{a r t} (1 - u_a) - E_{r t}
                   + \phi_{r t} \sum_{a \ge a_0} \iota_a U_{a r t}
                   + \sum_{a < a_0} \iota_a U_{a r t} + D_{r t}

    ``X`` the exposure (last census's SEN support aged and past leaving), ``u`` the config's
    return to the universal tier, ``E`` the expected escalations to EHC plans and ``D`` the
    EHC plans ended by a move down, both (T, R) posterior means from the first stage
    (:func:`build_model`'s ``targeted_escalations`` and ``specialist_moved_down``),
    ``iota`` the config's identification by age, ``U`` the children who could be identified,
    ``a_0`` :attr:`PriorConfig.identification_from_age` (the multiplier acts on the ages the
    school census records; see :data:`IDENTIFICATION_FROM_AGE`).
    ``log phi_rt = lambda + lambda_r + (gamma + gamma_r)(t - tbar) + v_rt + g_t`` with ``v``
    a random walk (``identification_innovation_sd``; more than one area only), ``g`` the
    change in the trend common to the areas (``identification_common_sd``, see
    :attr:`PriorConfig.common_trend_sd`), plus ``d (t - t_0)`` with ``d`` the drift common
    to the areas (``identification_drift``, :attr:`PriorConfig.id_drift_sd`), the trend's
    ``t - tbar`` damped where a damping prior is set, areas partially pooled.  Likelihood:
    recorded SEN support ~ Normal(mu, sqrt(mu + (cv mu)^2)).

    Fitted apart from the first stage: fitted jointly, one of two chains on every council
    settled in a far mode (escalation trend 0.8 a year, r-hat 2.25), so the first stage's
    uncertainty in ``E`` and ``D`` (small beside SEN support) is left out here.

    Returns
    -------
    pymc.Model
        With ``identification_multiplier`` (area) for the first year after the data,
        ``identification_trend_area`` (area) and ``identification_innovation_sd``.

    """
    c = constants(targets, prior_cfg)
    coords = {"year": c.years, "area": c.areas, "step": c.years[1:],
              "obs_sen_support": np.flatnonzero(_sen_support_mask(targets).ravel())}
    with pm.Model(coords=coords) as model:
        dt = pt.as_tensor_variable(c.years - c.t_centre)
        _sen_support_block(targets, prior_cfg, c, np.asarray(escalations, float),
                           np.asarray(moved_down, float), dt)
    return model


def _sen_support_block(targets, prior_cfg, c, esc, down, dt) -> None:
    """Add SEN support's likelihood and identification (:func:`build_identification_model`)."""
    n_t, _, n_r = c.x_cfg.shape
    ss = targets["sen_support"].transpose("year", "area").values[1:]
    uni = targets["universal"].transpose("year", "age", "area").values[1:]
    expo = targets["exposure"].transpose("year", "age", "area").values[1:]
    mask = _sen_support_mask(targets)
    idx = np.flatnonzero(mask.ravel())
    # identification the multiplier scales (school ages) and the config's own (younger)
    scaled = identification_scaled(prior_cfg)
    iu = np.nan_to_num((uni * (prior_cfg.identification * scaled)[None, :, None]).sum(axis=1))
    iu_fixed = np.nan_to_num((uni * (prior_cfg.identification * (1.0 - scaled))[None, :, None]
                              ).sum(axis=1))  # (T, R)
    x_stay = np.nan_to_num((expo * (1.0 - prior_cfg.deidentify)[None, :, None]).sum(axis=1))
    lam = pm.Normal("identification_mu", 0.0, prior_cfg.id_level_sd)
    gam = pm.Normal("identification_trend_mu", 0.0, prior_cfg.trend_sd)
    steps = np.append(c.years, c.ref_year) - c.years[0]
    if prior_cfg.damping_prior is not None:
        # damped like escalation's trend, with its own damping
        rho = pm.Beta("identification_damping", *prior_cfg.damping_prior)
        dt, ref, step_ref = damped_times(rho, steps)
    else:
        ref = float(c.ref_year - c.t_centre)
        step_ref = 1.0
    log_phi = lam + gam * dt[:, None] * pt.ones((1, n_r))
    trend_r = gam * pt.ones(n_r)
    level_r = lam * pt.ones(n_r)
    if n_r > 1:
        sd_a = pm.HalfNormal("identification_area_sd", prior_cfg.id_area_sd)
        z_a = pm.ZeroSumNormal("identification_area_z", sigma=1.0, dims="area")
        sd_t = pm.HalfNormal("identification_trend_area_sd", prior_cfg.area_trend_sd)
        z_t = pm.ZeroSumNormal("identification_trend_area_z", sigma=1.0, dims="area")
        level_r = level_r + sd_a * z_a
        trend_r = trend_r + sd_t * z_t
        log_phi = level_r[None, :] + trend_r[None, :] * dt[:, None]
    trend_r = pm.Deterministic("identification_trend_area", trend_r, dims="area")
    if prior_cfg.random_walk and n_t >= 2 and n_r > 1:
        sd_v = pm.HalfNormal("identification_innovation_sd", prior_cfg.id_innovation_sd)
        z_v = pm.Normal("identification_innovation_z", 0.0, 1.0, dims=("step", "area"))
        walk = pt.concatenate([pt.zeros((1, n_r)), sd_v * pt.cumsum(z_v, axis=0)], axis=0)
    else:
        pm.Deterministic("identification_innovation_sd", pt.as_tensor_variable(0.0))
        walk = pt.zeros((n_t, n_r))
    common = _common_trend(prior_cfg, n_t, n_r, prefix="identification")
    log_phi = log_phi + walk + common[:, None]
    drift_ref = 0.0
    if prior_cfg.id_drift_sd > 0:
        drift = pm.Normal("identification_drift", 0.0, prior_cfg.id_drift_sd)
        log_phi = log_phi + drift * pt.as_tensor_variable(
            (c.years - c.years[0]).astype(float))[:, None]
        drift_ref = drift * float(c.ref_year - c.years[0])
    phi = pt.exp(log_phi)
    mu = x_stay - esc + phi * iu + iu_fixed + down
    # Kept positive smoothly (a hard floor has no gradient: a chain that strays there sticks).
    mu_f = 10.0 * pt.softplus(mu.ravel()[idx] / 10.0) + 1.0
    cv = pm.HalfNormal("sen_support_cv", prior_cfg.sen_support_cv_sd)
    pm.Normal("sen_support", mu=mu_f, sigma=pt.sqrt(mu_f + (cv * mu_f) ** 2),
              observed=np.nan_to_num(ss).ravel()[idx], dims="obs_sen_support")
    pm.Deterministic("identification_trend_ref", trend_r * step_ref, dims="area")
    pm.Deterministic("identification_multiplier",
                     pt.exp(level_r + trend_r * ref + walk[-1] + common[-1] + drift_ref),
                     dims="area")
