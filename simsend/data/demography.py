"""Births and net migration for a run: estimated from ONS population estimates, or a projection.

The engine ages each cohort one year per step.  What it needs from demography is, for each
future January census year ``y``:

* ``births[y, area]``: the age-0 population at census ``y`` (children entering the model);
* ``net_rate[y, a, area]``: the net change of the cohort aged ``a-1`` at census ``y-1`` on its
  way to age ``a`` at census ``y``, as a rate, so that
  ``pop(a, y) = pop(a-1, y-1) * (1 + net_rate(y, a))`` (``net_rate[:, 0] = 0``).

Both are estimated from the population itself by the **cohort residual**: nothing else is
needed, and applying observed rates to the observed population reproduces it exactly.  The
residual folds deaths in with net migration (internal, international and ONS's "other"); at
ages 1-25 deaths are small (infant deaths are the largest, about 0.3 % at the step 0 -> 1).

Population labels follow the rest of the data layer: the ONS estimate for mid-year ``Y-1`` is
the population at the January census ``Y``.  ONS rebased its estimates on the 2021 Census:
mid-2020 (census 2021) is on the 2011-Census basis and mid-2021 (census 2022) on the 2021-Census
basis, so the cohort change 2021 -> 2022 mixes a revision of levels (about -5 % at ages 3-9 for
England) with migration, and is never used as migration (:data:`REBASED`).

Everything here is pure functions over arrays; nothing reads files except
:func:`read_population_projection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from simsend.data.errors import DataError, Report
from simsend.dims import AGES, MAX_AGE

N_A = len(AGES)

REBASED = {2022: "mid-2020 (2011-Census basis) -> mid-2021 (2021-Census basis)"}
"""Census years ``y`` whose transition from ``y-1`` crosses an ONS rebasing, with what changed."""

TAG = 0x64656D6F
"""Fixed spawn-key tag of demography's random streams (``b"demo"``), so they are independent of
every other stream drawn from the same ``(seed, draw)``."""

MEASURES = ("population", "births", "net_migration")
"""Measures of a population projection file (``population`` when the column is absent/empty)."""

BIRTHS_YEARS = 11
"""Census years the births trend is fitted on (the last ones up to the fit year)."""

COMPONENT_COLUMNS = ("area", "births", "deaths", "internal_net", "international_net", "other",
                     "population_mid2022", "population_mid2023")
"""Columns :func:`components_check` needs from an ONS MYE3 components table."""


# ----------------------------------------------------------------------------- cohort residual


def _yaa(population: xr.DataArray) -> xr.DataArray:
    """Return ``population`` as float (year, age, area), ages 0, 1, ..., years increasing."""
    missing = {"year", "age", "area"} - set(population.dims)
    if missing:
        raise ValueError(f"population needs dims year, age, area; missing {sorted(missing)}")
    pop = population.transpose("year", "age", "area").sortby("year").astype(float)
    ages = pop["age"].values
    if not np.array_equal(ages, np.arange(len(ages))):
        raise ValueError(f"population ages must be 0, 1, 2, ... in order; got {ages.tolist()}")
    return pop


def rebased_transitions(years, rebased: dict[int, str] | None = None) -> list[int]:
    """Census years among ``years`` whose change from the year before crosses a rebasing.

    Parameters
    ----------
    years : iterable of int
        January census years.
    rebased : dict of int to str, optional
        Rebasing years (default :data:`REBASED`).

    Returns
    -------
    list of int
        The years ``y`` (sorted) with ``y-1`` also in ``years`` and ``y`` in ``rebased``.

    Examples
    --------
    >>> rebased_transitions(range(2015, 2026))
    [2022]

    """
    rebased = REBASED if rebased is None else rebased
    ys = {int(y) for y in years}
    return sorted(y for y in ys if y in rebased and y - 1 in ys)


def cohort_rates(population: xr.DataArray, rebased: dict[int, str] | None = None) -> xr.DataArray:
    """Net change rate of each cohort over the year to each census (the cohort residual).

    ``rate(y, a) = pop(a, y) / pop(a-1, y-1) - 1`` for ``a >= 1``: the share of the cohort
    aged ``a-1`` at census ``y-1`` gained (lost) by census ``y``.  It is net migration *minus
    deaths*: ONS's components are not split by age, so the two cannot be separated here.

    Parameters
    ----------
    population : xarray.DataArray
        Persons by (year, age, area), ages 0, 1, 2, ... (any dim order).
    rebased : dict of int to str, optional
        Census years whose transition crosses an ONS rebasing (default :data:`REBASED`).

    Returns
    -------
    xarray.DataArray
        ``net_rate`` (year, age, area) with the coordinates of ``population``; NaN at age 0,
        at a year whose previous year is not in ``population`` (the first one), and where
        ``pop(a-1, y-1)`` is 0 or missing.  Coordinate ``crosses_rebasing`` (year, bool) marks
        the transitions that mix a rebasing of ONS's levels with migration: they reproduce the
        estimates but must not be used as migration.

    Examples
    --------
    >>> pop = xr.DataArray([[[100.0], [50.0]], [[90.0], [110.0]]], dims=("year", "age", "area"),
    ...                    coords={"year": [2020, 2021], "age": [0, 1], "area": ["X"]})
    >>> round(cohort_rates(pop).sel(year=2021, age=1, area="X").item(), 6)
    0.1

    """
    pop = _yaa(population)
    v = pop.values
    years = pop["year"].values.astype(int)
    out = np.full(v.shape, np.nan)
    for i in range(1, len(years)):
        if years[i] - years[i - 1] != 1:
            continue
        den = v[i - 1, :-1, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = v[i, 1:, :] / den - 1.0
        r[~(den > 0) | ~np.isfinite(r)] = np.nan
        out[i, 1:, :] = r
    crosses = np.isin(years, rebased_transitions(years, rebased))
    return xr.DataArray(
        out, dims=("year", "age", "area"),
        coords={"year": pop["year"].values, "age": pop["age"].values,
                "area": pop["area"].values, "crosses_rebasing": ("year", crosses)},
        name="net_rate",
        attrs={"long_name": "cohort residual: pop(a, y) / pop(a-1, y-1) - 1 (net migration "
                            "minus deaths over the year to census y)", "units": "1"})


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class Demography:
    """Births and net rates for census years ``years`` (one draw, or the expected table).

    Attributes
    ----------
    years : int ndarray (n_years,)
        January census years, consecutive.
    areas : tuple of str
        Area codes (the order of ``population``'s area coordinate).
    births : float ndarray (n_years, n_areas)
        Age-0 population at each census, >= 0.
    net_rate : float ndarray (n_years, 26, n_areas)
        Cohort net change rate to age ``a`` at census ``y``; ``net_rate[:, 0, :] = 0``,
        values >= -1.

    """

    years: np.ndarray
    areas: tuple[str, ...]
    births: np.ndarray
    net_rate: np.ndarray

    def to_dataset(self) -> xr.Dataset:
        """Return the tables as an ``xarray.Dataset`` (``births``, ``net_rate``)."""
        coords = {"year": self.years, "age": np.arange(N_A), "area": list(self.areas)}
        return xr.Dataset({"births": (("year", "area"), self.births),
                           "net_rate": (("year", "age", "area"), self.net_rate)}, coords=coords)


def project_population(start: np.ndarray, demography: Demography) -> np.ndarray:
    """Roll a population forward with ``demography`` (what the engine does, without SEND).

    Parameters
    ----------
    start : float ndarray (26, n_areas)
        Population at the census before ``demography.years[0]``.
    demography : Demography
        Births and net rates.

    Returns
    -------
    float ndarray (n_years, 26, n_areas)
        ``out[t, 0] = births[t]``, ``out[t, a] = out[t-1, a-1] * (1 + net_rate[t, a])``.

    """
    prev = np.asarray(start, dtype=float)
    out = np.empty((len(demography.years), *prev.shape))
    for t in range(len(demography.years)):
        out[t, 0] = demography.births[t]
        out[t, 1:] = prev[:-1] * (1.0 + demography.net_rate[t, 1:])
        prev = out[t]
    return out


def observed_demography(population: xr.DataArray, start_year: int, end_year: int) -> Demography:
    """Births and net rates read off ``population`` itself for census years after ``start_year``.

    Applied to the population at ``start_year`` (:func:`project_population`) they reproduce
    ``population`` at ``start_year + 1 .. end_year`` exactly (rebasing steps included).

    Parameters
    ----------
    population : xarray.DataArray
        Persons by (year, age, area), ages 0-25, covering ``start_year .. end_year``.
    start_year, end_year : int
        The tables are for census years ``start_year + 1 .. end_year``.

    Returns
    -------
    Demography
        ``births`` = age-0 population, ``net_rate`` = :func:`cohort_rates` (0 where undefined).

    Raises
    ------
    DataError
        When a year of ``start_year .. end_year`` is not in ``population``.

    """
    pop = _yaa(population)
    _check_ages(pop)
    have = set(pop["year"].values.astype(int).tolist())
    lacking = [y for y in range(start_year, end_year + 1) if y not in have]
    if lacking:
        raise DataError(f"observed demography {start_year + 1}-{end_year}: population has no "
                        f"estimates for census years {lacking} (it covers {_span(have)})")
    years = np.arange(start_year + 1, end_year + 1)
    rates = cohort_rates(pop).sel(year=years).values
    return Demography(years, _areas(pop), _births_obs(pop, years), _clean_rates(rates))


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True, eq=False)
class DemographyModel:
    """Fitted births trend and net migration rates, with their uncertainty.

    Attributes
    ----------
    areas : tuple of str
        Area codes.
    years : int ndarray (n_years,)
        Census years ``start_year + 1 .. end_year`` the tables are for.
    births_years : int ndarray (n_fit,)
        Census years the births trend is fitted on.
    births_coef : float ndarray (2, n_areas)
        ``log(births)`` at ``births_years[-1]`` and its slope per year (OLS per area).
    births_resid : float ndarray (n_fit, n_areas)
        OLS residuals of ``log(births)``.
    births_xtx_inv : float ndarray (2, 2)
        ``(X'X)^-1`` of the design ``[1, year - births_years[-1]]``.
    rate_years : int ndarray (k,)
        Census years whose cohort rates are resampled (transitions ``y-1 -> y``).
    rate_tables : float ndarray (k, 26, n_areas)
        Cohort rates of those years (0 at age 0 and where undefined).
    fixed_births : float ndarray (n_years, n_areas)
        Births taken from observed estimates or a projection; NaN where the trend applies.
    fixed_rates : float ndarray (n_years, 26, n_areas)
        Rates taken from observed estimates or a projection; NaN where resampled.
    births_source, rate_source : str ndarray (n_years, n_areas)
        Where each year's births / rates come from: ``trend`` / ``recent``, ``observed``,
        ``projection``.
    notes : tuple of str
        Assumptions applied (for provenance).

    """

    areas: tuple[str, ...]
    years: np.ndarray
    births_years: np.ndarray
    births_coef: np.ndarray
    births_resid: np.ndarray
    births_xtx_inv: np.ndarray
    rate_years: np.ndarray
    rate_tables: np.ndarray
    fixed_births: np.ndarray
    fixed_rates: np.ndarray
    births_source: np.ndarray
    rate_source: np.ndarray
    notes: tuple[str, ...]

    @property
    def births_dof(self) -> int:
        """Residual degrees of freedom of the births trend (years - 2)."""
        return len(self.births_years) - 2

    @property
    def births_sigma(self) -> np.ndarray:
        """Residual standard deviation of ``log(births)`` by area, shape (n_areas,)."""
        return np.sqrt((self.births_resid ** 2).sum(axis=0) / self.births_dof)

    @property
    def births_slope(self) -> np.ndarray:
        """Fitted slope of ``log(births)`` per year by area, shape (n_areas,)."""
        return self.births_coef[1]

    @property
    def births_slope_se(self) -> np.ndarray:
        """OLS standard error of :attr:`births_slope`, shape (n_areas,)."""
        return self.births_sigma * np.sqrt(self.births_xtx_inv[1, 1])

    def births_trend(self) -> np.ndarray:
        """Central births trend ``exp(fitted log births)`` for :attr:`years`, (n_years, n_areas).

        The median of the drawn trends (their mean is higher by about ``sigma^2 / 2``, under
        0.1 % for an English council).
        """
        return np.exp(self._design() @ self.births_coef)

    def expected(self) -> Demography:
        """Central tables: births on the fitted trend, rates the mean of :attr:`rate_tables`.

        Observed and projected years are as fixed.
        """
        births = self.births_trend()
        rates = np.broadcast_to(self.rate_tables.mean(axis=0), self.fixed_rates.shape)
        return self._finish(births, rates)

    def draw(self, draw: int, seed: int, *, noise: bool = True) -> Demography:
        """One Monte Carlo draw of births and net rates.

        Births: a trend drawn from the OLS posterior of every area's ``log(births)`` line (flat
        prior: the residual variance scaled by ``dof / chi2(dof)``, one factor for all areas,
        then the coefficients), plus, with ``noise``, independent year-to-year noise with the
        residual variance.  Areas share the draw through their residuals (random combinations
        of the fitted years' residuals), so areas whose births moved together in the past move
        together in the draws, and a sum of areas has the uncertainty of its own series.
        The 90 % band of the draws is, per area, the exact 90 % prediction interval (with
        ``noise``) or confidence interval of the line (without) of a normal linear trend.

        Rates: each future year takes the whole table (all ages and areas) of one of
        :attr:`rate_years`, chosen uniformly at random and independently per year (a bootstrap
        over years), so between-year variation is the band.

        Parameters
        ----------
        draw : int
            Draw number (>= 0).
        seed : int
            Run seed.  The draw uses ``SeedSequence(seed, spawn_key=(draw, TAG))``: the same
            ``(seed, draw)`` gives the same tables, other draws are independent; the first
            years of a draw do not depend on ``end_year``.
        noise : bool
            Add the year-to-year noise to the drawn trend (default True).

        Returns
        -------
        Demography

        """
        b_ss, r_ss = np.random.SeedSequence(seed, spawn_key=(int(draw), TAG)).spawn(2)
        rng = np.random.default_rng(b_ss)
        e = self.births_resid
        n, dof, n_y = e.shape[0], self.births_dof, len(self.years)
        if dof < 1:  # births held (too few years for a trend): nothing to draw
            births = np.full((n_y, e.shape[1]), np.nan)
        else:
            g = dof / rng.chisquare(dof)  # sigma^2 / s^2 under the flat prior
            w = rng.standard_normal((2, n))
            chol = np.linalg.cholesky(self.births_xtx_inv)
            # chol @ w @ e has covariance (X'X)^-1 * (e_i . e_j) across areas i, j
            coef = self.births_coef + np.sqrt(g / dof) * (chol @ w @ e)
            logb = self._design() @ coef
            if noise:
                logb = logb + np.sqrt(g / dof) * (rng.standard_normal((n_y, n)) @ e)
            births = np.exp(logb)
        pick = np.random.default_rng(r_ss).integers(0, len(self.rate_tables), size=n_y)
        return self._finish(births, self.rate_tables[pick])

    def _design(self) -> np.ndarray:
        x = (self.years - self.births_years[-1]).astype(float)
        return np.column_stack([np.ones_like(x), x])

    def _finish(self, births: np.ndarray, rates: np.ndarray) -> Demography:
        births = np.where(np.isnan(self.fixed_births), births, self.fixed_births)
        rates = np.where(np.isnan(self.fixed_rates), rates, self.fixed_rates)
        rates = np.clip(rates, -1.0, None)
        rates[:, 0, :] = 0.0
        return Demography(self.years.copy(), self.areas, np.maximum(births, 0.0), rates)


def fit_demography(population: xr.DataArray, start_year: int, end_year: int, *,
                   projection: pd.DataFrame | str | Path | None = None, recent_years: int = 3,
                   births_years: int = BIRTHS_YEARS, observed: bool = False,
                   rebased: dict[int, str] | None = None) -> DemographyModel:
    """Fit births and net migration for census years ``start_year + 1 .. end_year``.

    * **Births** (age-0 population at each census), by area: a log-linear trend fitted by OLS
      on the last ``births_years`` census years up to the fit year.  No step is fitted at the
      2021-Census rebasing: age-0 estimates rest on registered births in both bases, and the
      step at age 0 is small next to the year-to-year noise (the rebasing moved ages 3-9).
    * **Net migration rates** by (age 1-25, area): the cohort rates (:func:`cohort_rates`) of
      the last ``recent_years`` transitions up to the fit year that do not cross a rebasing.
      :meth:`DemographyModel.expected` takes their mean, :meth:`DemographyModel.draw`
      resamples one observed year per future year.

    The fit year is ``start_year``: only population estimates up to it are used.  With
    ``observed=True`` the census years after ``start_year`` that ``population`` has (up to
    ``end_year``) take their observed births and rates (the same in every draw, and they
    reproduce the estimates), and the fit uses every year up to the last of them.

    Parameters
    ----------
    population : xarray.DataArray
        Persons by (year, age, area), ages 0-25 (e.g. ``Baseline.population``).
    start_year : int
        Census year the run starts from (in ``population``).
    end_year : int
        Last census year of the run (> ``start_year``).
    projection : pandas.DataFrame or path, optional
        A population projection (:func:`read_population_projection`).  For each of its
        (year, area) after ``start_year``: ``population`` rows give births (age 0) and rates
        (cohort residual against the population the run reaches the year before: observed,
        projected, or the central model path), so a run reproduces the projected population;
        ``births`` / ``net_migration`` rows give births / rates (``net_migration`` divided by
        that population).  Years, areas or components the projection does not cover come from
        the fitted trend and rates.  Observed years (``observed=True``) win over it.
    recent_years : int
        Number of recent transitions the rates are resampled from.
    births_years : int
        Number of census years the births trend is fitted on (at least 3 present).
    observed : bool
        Use observed estimates after ``start_year`` (see above).
    rebased : dict of int to str, optional
        Rebasing transitions (default :data:`REBASED`).

    Returns
    -------
    DemographyModel

    Raises
    ------
    DataError
        Too few years to fit, missing estimates in the fitted years, a projection naming none
        of the areas.

    """
    pop = _yaa(population)
    _check_ages(pop)
    if end_year <= start_year:
        raise ValueError(f"end_year {end_year} must be after start_year {start_year}")
    have = pop["year"].values.astype(int)
    if start_year not in have:
        raise DataError(f"demography: start year {start_year} not in the population estimates "
                        f"({_span(have)})")
    years = np.arange(start_year + 1, end_year + 1)
    areas = _areas(pop)
    n_y, n_r = len(years), len(areas)
    notes = ["cohort residual: net rates = pop(a, y) / pop(a-1, y-1) - 1, net migration minus "
             "deaths"]

    obs_years = []
    if observed:
        for y in years:  # consecutive from start_year + 1
            if y not in have:
                break
            obs_years.append(int(y))
    fit_to = obs_years[-1] if obs_years else start_year

    # births trend
    cand = have[have <= fit_to][-births_years:]
    b = pop.sel(age=0, year=cand).values
    _require_finite(b, cand, areas, "age-0 population (births trend)")
    held = len(cand) < 3  # a line through two points has no uncertainty to draw from
    if held:
        xtx_inv = np.eye(2)
        coef = np.zeros((2, n_r))
        resid = np.zeros((len(cand), n_r))
        notes.append(f"ASSUMPTION births: held at the age-0 population of census {cand[-1]} "
                     f"(a trend needs 3 census years; the data has {cand.tolist()} up to "
                     f"{fit_to}), with no uncertainty")
    else:
        x = (cand - cand[-1]).astype(float)
        xm = np.column_stack([np.ones_like(x), x])
        xtx_inv = np.linalg.inv(xm.T @ xm)
        logb = np.log(np.maximum(b, 0.5))  # an empty area has log(0): half a birth instead
        if (b <= 0).any():
            notes.append("births trend: zero age-0 counts taken as 0.5")
        coef = xtx_inv @ xm.T @ logb
        resid = logb - xm @ coef
        notes.append(f"births: log-linear OLS trend per area on census years {_span(cand)}, "
                     "no step at the 2021-Census rebasing")

    # recent cohort rates
    rates_all = cohort_rates(pop, rebased)
    usable = [int(y) for y in have if y <= fit_to and y - 1 in have and y not in
              set(rebased_transitions(have, rebased))]
    rate_years = np.array(usable[-recent_years:], dtype=int)
    if len(rate_years) == 0:
        rate_tables = np.zeros((1, N_A, n_r))
        notes.append(f"ASSUMPTION net migration: none (no year-to-year step of the estimates up "
                     f"to {fit_to} outside a rebasing; population: {_span(have)})")
    else:
        prev_pop = pop.sel(year=rate_years - 1).values
        _require_finite(prev_pop, rate_years - 1, areas, "population (migration rates)")
        _require_finite(pop.sel(year=rate_years).values, rate_years, areas,
                        "population (migration rates)")
        rate_tables = _clean_rates(rates_all.sel(year=rate_years).values)
        skipped = [y for y in rebased_transitions(have, rebased) if y <= fit_to]
        notes.append(f"net migration: cohort rates of census years {rate_years.tolist()} "
                     "resampled by year" + (f"; {skipped} skipped (rebasing)" if skipped else ""))

    fixed_b = np.full((n_y, n_r), np.nan)
    fixed_r = np.full((n_y, N_A, n_r), np.nan)
    b_src = np.full((n_y, n_r), "held" if held else "trend", dtype=object)
    r_src = np.full((n_y, n_r), "recent" if len(rate_years) else "none", dtype=object)
    if held:
        fixed_b[:] = b[-1][None, :]
    if obs_years:
        k = len(obs_years)
        fixed_b[:k] = _births_obs(pop, obs_years)
        fixed_r[:k] = _clean_rates(rates_all.sel(year=obs_years).values)
        b_src[:k] = r_src[:k] = "observed"
        notes.append(f"observed births and rates for census years {_span(obs_years)}")

    if projection is not None:
        proj = (read_population_projection(projection) if isinstance(projection, (str, Path))
                else projection)
        _apply_projection(proj, pop, (start_year, years, areas, obs_years),
                          (coef, xtx_inv, cand[-1], rate_tables.mean(axis=0)),
                          (fixed_b, fixed_r, b_src, r_src), notes)

    return DemographyModel(areas=areas, years=years, births_years=cand.astype(int),
                           births_coef=coef, births_resid=resid, births_xtx_inv=xtx_inv,
                           rate_years=rate_years, rate_tables=rate_tables,
                           fixed_births=fixed_b, fixed_rates=fixed_r,
                           births_source=b_src.astype(str), rate_source=r_src.astype(str),
                           notes=tuple(notes))


def _apply_projection(proj, pop, run, fit, fixed, notes) -> None:
    """Fill ``fixed_*`` from a projection, walking the central population path year by year.

    ``run`` is (start_year, years, areas, observed years); ``fit`` the births trend and mean
    rates (coef, xtx_inv, reference year, mean rate table); ``fixed`` the tables filled in
    place (fixed births, fixed rates, births source, rates source).
    """
    start_year, years, areas, obs_years = run
    coef, xtx_inv, ref, mean_rate = fit
    fixed_b, fixed_r, b_src, r_src = fixed
    if "measure" not in proj.columns:  # a frame built by hand: population rows only
        proj = proj.assign(measure="population")
    proj = proj[proj["area"].isin(areas)]
    if not len(proj):
        raise DataError(f"population projection: none of its areas is in the run ({list(areas)})")
    ai = {a: i for i, a in enumerate(areas)}
    prev = pop.sel(year=start_year).values.copy()
    trend = np.exp((years - ref)[:, None] * coef[1] + coef[0])
    used = set()
    for t, y in enumerate(years):
        if int(y) in obs_years:
            prev = pop.sel(year=y).values.copy()
            continue
        rows = proj[proj["year"] == y]
        cur_pop = np.full((N_A, len(areas)), np.nan)
        births = np.full(len(areas), np.nan)
        net = np.full((N_A, len(areas)), np.nan)
        for measure, target in (("population", cur_pop), ("net_migration", net)):
            m = rows[rows["measure"] == measure]
            target[m["age"].to_numpy(int), m["area"].map(ai).to_numpy(int)] = m["count"]
        m = rows[rows["measure"] == "births"]
        births[m["area"].map(ai).to_numpy(int)] = m["count"]
        births = np.where(np.isnan(cur_pop[0]), births, cur_pop[0])
        den = prev[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(np.isnan(cur_pop[1:]), net[1:], cur_pop[1:] - den) / den
        r[(den <= 0) & ~np.isnan(r)] = 0.0  # nobody to migrate: rate 0
        has_b, has_r = ~np.isnan(births), ~np.isnan(r).any(axis=0)
        fixed_b[t, has_b] = births[has_b]
        fixed_r[t, 1:, has_r] = np.clip(r[:, has_r], -1.0, None).T
        fixed_r[t, 0, has_r] = 0.0
        b_src[t, has_b] = "projection"
        r_src[t, has_r] = "projection"
        if has_b.any() or has_r.any():
            used.add(int(y))
        # central path for the next year's denominators
        nxt = np.empty_like(prev)
        nxt[0] = np.where(has_b, births, trend[t])
        rate = np.where(has_r, np.nan_to_num(fixed_r[t, 1:]), mean_rate[1:])
        nxt[1:] = prev[:-1] * (1.0 + rate)
        prev = nxt
    if used:
        notes.append(f"projection: births and rates for census years {_span(used)} where the "
                     "file covers them; the fitted trend and recent rates elsewhere")


# ----------------------------------------------------------------------------- projection file


def read_population_projection(path: str | Path) -> pd.DataFrame:
    """Read and check a population projection CSV (a council's replacement for the trend).

    Columns ``year, area, age, count`` and optionally ``measure``:

    * ``population`` (or empty / no ``measure`` column): projected persons by single age 0-25,
      labelled by January census year (mid-year ``Y-1`` -> ``Y``); every age 0-25 for each
      (year, area) given;
    * ``births``: the age-0 population at the census (age 0 or empty);
    * ``net_migration``: net change of the cohort reaching age 1-25 at the census other than
      ageing, in people (net migrants minus deaths; may be negative); ages 1-25 for each
      (year, area) given.

    A (year, area) has either ``population`` rows or ``births`` / ``net_migration`` rows.
    Other columns (``area_name``, ``flag``, ...) are ignored.

    Parameters
    ----------
    path : str or Path
        CSV file (optionally gzip-compressed).

    Returns
    -------
    pandas.DataFrame
        Columns ``year`` (int), ``area`` (str), ``age`` (int), ``measure`` (str), ``count``
        (float), in file order.

    Raises
    ------
    DataError
        Naming file, row (line number, header = 1), column, value and what was expected, for:
        missing columns, non-whole years, empty areas, unknown measures, ages outside 0-25 (or
        outside a measure's ages), non-numeric, infinite or negative counts, duplicated rows,
        incomplete ages, and a (year, area) with both population and component rows.

    """
    name = Path(path).name
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.EmptyDataError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(f"{name}: not a readable CSV with columns year, area, age, count "
                        f"({exc})") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    rep = Report(files=[name])
    need = ("year", "area", "age", "count")
    lacking = [c for c in need if c not in raw.columns]
    for c in lacking:
        rep.add("error", name, 1, c, list(raw.columns),
                f"column missing; expected columns {', '.join(need)} (and optionally measure)")
    rep.raise_errors(f"{name}")
    n = len(raw)
    measure = (raw["measure"].str.strip().str.lower() if "measure" in raw.columns
               else pd.Series([""] * n, index=raw.index))
    measure = measure.replace("", "population")
    year = pd.to_numeric(raw["year"].str.strip(), errors="coerce")
    age_s = raw["age"].str.strip()
    age = pd.to_numeric(age_s.where(~((age_s == "") & (measure == "births")), "0"),
                        errors="coerce")
    count = pd.to_numeric(raw["count"].str.strip(), errors="coerce")
    area = raw["area"].str.strip()
    bad = pd.Series(False, index=raw.index)
    for i in range(n):
        row, m = i + 2, measure.iat[i]
        err = []
        if not (np.isfinite(year.iat[i]) and year.iat[i] == int(year.iat[i])):
            err.append(("year", raw["year"].iat[i], "a whole census year"))
        if area.iat[i] == "":
            err.append(("area", raw["area"].iat[i], "an area code"))
        if m not in MEASURES:
            err.append(("measure", raw["measure"].iat[i], f"one of {', '.join(MEASURES)}"))
        lo, hi = {"births": (0, 0), "net_migration": (1, MAX_AGE)}.get(m, (0, MAX_AGE))
        a = age.iat[i]
        if not (np.isfinite(a) and a == int(a) and lo <= a <= hi):
            what = {"births": "0 (births are the age-0 population)",
                    "net_migration": f"a whole age 1-{MAX_AGE} (age 0 is the births row)"}.get(
                        m, f"a whole age 0-{MAX_AGE}")
            err.append(("age", raw["age"].iat[i], what))
        c = count.iat[i]
        if not np.isfinite(c):
            err.append(("count", raw["count"].iat[i], "a number"))
        elif c < 0 and m != "net_migration":
            err.append(("count", raw["count"].iat[i],
                        "a number >= 0 (only net_migration may be negative)"))
        for col, val, what in err:
            rep.add("error", name, row, col, val, f"expected {what}", area.iat[i] or None)
        bad.iat[i] = bool(err)
    df = pd.DataFrame({"year": year, "area": area, "age": age, "measure": measure,
                       "count": count})
    ok = df[~bad].copy()
    ok["year"] = ok["year"].astype(int)
    ok["age"] = ok["age"].astype(int)
    ok["row"] = ok.index + 2
    key = ["year", "area", "measure", "age"]
    first = ok.drop_duplicates(key).set_index(key)["row"]
    for _, r in ok[ok.duplicated(key)].iterrows():
        was = first.loc[(r["year"], r["area"], r["measure"], r["age"])]
        rep.add("error", name, int(r["row"]), "age", int(r["age"]),
                f"duplicated row: year {r['year']}, area {r['area']}, measure {r['measure']}, "
                f"age {r['age']} already on row {was}; expected one row each", r["area"])
    for (y, ar), g in ok.groupby(["year", "area"], sort=False):
        ms = set(g["measure"])
        if "population" in ms and ms & {"births", "net_migration"}:
            rep.add("error", name, int(g["row"].iat[0]), "measure", sorted(ms),
                    f"year {y}, area {ar} has population rows and births/net_migration rows; "
                    "expected one or the other", ar)
        for m, want in (("population", set(AGES)), ("net_migration", set(AGES[1:]))):
            ages = set(g.loc[g["measure"] == m, "age"])
            if ages and ages != want:
                miss = sorted(want - ages)
                rep.add("error", name, int(g.loc[g["measure"] == m, "row"].iat[0]), "age",
                        _span(miss), f"year {y}, area {ar}, measure {m}: ages {miss} missing; "
                        f"expected every age {min(want)}-{MAX_AGE}", ar)
    if n == 0:
        rep.add("error", name, None, None, None, "no rows; expected projected population by "
                "year, area and age")
    rep.raise_errors(f"{name}: population projection")
    return ok.drop(columns="row").reset_index(drop=True)


# ----------------------------------------------------------------------------- components check


def components_check(population: xr.DataArray, components: pd.DataFrame,
                     year: int = 2024) -> pd.DataFrame:
    """Compare the cohort residual over mid-``year-2`` -> mid-``year-1`` with ONS MYE3 components.

    ONS publishes the components of change (births, deaths, internal, international and other
    net migration) for all ages only, so the comparison per area is: the age-0 population at
    census ``year`` against the year's births (their ratio is about 0.99: infant deaths and
    migration), and the net change of ages 1-25 the cohort residual implies, against the
    all-age net migration and deaths rates, for scale.

    Parameters
    ----------
    population : xarray.DataArray
        Persons by (year, age, area), ages 0-25, with census years ``year - 1`` and ``year``
        (default 2024: mid-2022 -> mid-2023).
    components : pandas.DataFrame
        MYE3 components by area: columns :data:`COMPONENT_COLUMNS` (and optionally
        ``area_name``), all ages, for the year to mid-``year-1``.
    year : int
        Census year at the end of the year compared.

    Returns
    -------
    pandas.DataFrame
        One row per area in both: ``area``, ``area_name``, ``births``, ``age0`` (population
        aged 0 at census ``year``), ``births_ratio`` (age0 / births), ``net_change_1_25``
        (people: sum over ages 1-25 of ``pop(a, year) - pop(a-1, year-1)``), ``net_rate_1_25``
        (that over the population aged 0-24 a year before), ``net_migration_rate_all`` (internal
        + international + other over ``population_mid2022``), ``deaths_rate_all``,
        ``net_rate_all`` (the difference of the two), ``population_balance`` (MYE3's own
        ``mid2023 - mid2022 - births + deaths - migration``; 0 when the table is consistent).

    Raises
    ------
    DataError
        Missing columns, or population lacking the two census years or every area.

    """
    lacking = [c for c in COMPONENT_COLUMNS if c not in components.columns]
    if lacking:
        raise DataError(f"components table: columns {lacking} missing; expected "
                        f"{', '.join(COMPONENT_COLUMNS)}")
    pop = _yaa(population)
    have = pop["year"].values.astype(int)
    if year not in have or year - 1 not in have:
        raise DataError(f"components check needs population at census years {year - 1} and "
                        f"{year}; it covers {_span(have)}")
    comp = components[components["area"].isin(list(_areas(pop)))].copy()
    if not len(comp):
        raise DataError("components check: no area of the components table is in the "
                        "population")
    num = [c for c in COMPONENT_COLUMNS if c != "area"]
    comp[num] = comp[num].apply(pd.to_numeric, errors="coerce")
    p1 = pop.sel(year=year, area=comp["area"].tolist()).values
    p0 = pop.sel(year=year - 1, area=comp["area"].tolist()).values
    mig = comp["internal_net"] + comp["international_net"] + comp["other"]
    out = pd.DataFrame({
        "area": comp["area"].to_numpy(),
        "area_name": (comp["area_name"] if "area_name" in comp else comp["area"]).to_numpy(),
        "births": comp["births"].to_numpy(float),
        "age0": p1[0],
    })
    out["births_ratio"] = out["age0"] / out["births"]
    out["net_change_1_25"] = (p1[1:] - p0[:-1]).sum(axis=0)
    out["net_rate_1_25"] = out["net_change_1_25"] / p0[:-1].sum(axis=0)
    base = comp["population_mid2022"].to_numpy(float)
    out["net_migration_rate_all"] = mig.to_numpy(float) / base
    out["deaths_rate_all"] = comp["deaths"].to_numpy(float) / base
    out["net_rate_all"] = out["net_migration_rate_all"] - out["deaths_rate_all"]
    out["population_balance"] = (comp["population_mid2023"] - comp["population_mid2022"]
                                 - comp["births"] + comp["deaths"] - mig).to_numpy(float)
    return out


# ----------------------------------------------------------------------------- helpers


def _areas(pop: xr.DataArray) -> tuple[str, ...]:
    return tuple(str(a) for a in pop["area"].values)


def _check_ages(pop: xr.DataArray) -> None:
    if pop.sizes["age"] != N_A:
        raise ValueError(f"population needs ages 0-{MAX_AGE}; got {pop.sizes['age']} ages")


def _births_obs(pop: xr.DataArray, years) -> np.ndarray:
    b = pop.sel(age=0, year=list(years)).values
    _require_finite(b, years, _areas(pop), "age-0 population")
    return b


def _clean_rates(rates: np.ndarray) -> np.ndarray:
    """Rates as the engine takes them: 0 at age 0 and where undefined, >= -1."""
    r = np.clip(np.nan_to_num(rates, nan=0.0), -1.0, None)
    r[:, 0, :] = 0.0
    return r


def _require_finite(values: np.ndarray, years, areas, what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        idx = np.argwhere(bad)[0]
        y = list(years)[idx[0]]
        raise DataError(f"demography: {what} missing for census year {y}, area "
                        f"{areas[idx[-1]]} ({int(bad.sum())} cells missing)")


def _span(years) -> str:
    ys = sorted(int(y) for y in years)
    if not ys:
        return "none"
    if ys == list(range(ys[0], ys[-1] + 1)) and len(ys) > 1:
        return f"{ys[0]}-{ys[-1]}"
    return ", ".join(map(str, ys))
