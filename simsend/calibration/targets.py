"""Calibration targets: the observed aggregate series the stock-and-flow likelihood reads.

A target set is an :class:`xarray.Dataset` with the engine's dimension names:

``ehcp`` (year, age_group, area)
    EHC plans at the January census ``year`` (SEN2 caseload, by SEN2 age band).
``new_plans`` (year, age_group, area)
    Plans issued during the year that ends at census ``year`` (SEN2 new plans of calendar
    year ``year - 1``); NaN where not recorded and at the first year.
``exposure`` (year, age, area)
    Children in the targeted tiers (SEN support) who could move to the specialist tier during
    the year ending at census ``year``: SEN support pupils of age ``a - 1`` at census
    ``year - 1`` who survive to age ``a`` (the engine applies tier moves after ageing and
    leaving).  NaN at the first year.
``ehcp_age_share`` (age, area)
    Share of each age band's EHC plans held at each single year of age (sums to 1 within a
    band).  Used to age banded stocks by one year; held fixed over time.
``need_factor`` (age, area)
    Mean need multiplier of the targeted tiers at each age (the config's
    ``need_multiplier`` weighted by the need mix), so that config escalation rates by need
    can be averaged to the aggregate.
``sen_support`` (year, area), optional
    Recorded SEN support (the targeted tiers) at the January census; NaN where not recorded.
``universal`` (year, age, area), optional
    Children outside the targeted and specialist tiers who could be identified during the
    year ending at census ``year``: the population of age ``a - 1`` at census ``year - 1``
    less its SEN support and EHC plans, by the age reached (age 0: the census's own
    population).  NaN at the first year.
``new_plans_age`` (year, age, area), optional
    ``new_plans`` by single age at issue where published (SEN2: ages 3-19 from calendar 2022;
    NaN elsewhere); the calibration then fits new plans by single age (0-2, 3, ..., 19, 20-25)
    instead of by band, which estimates escalation's shape within the bands.

Attributes: ``targeted_plus_share`` (the data assumption splitting SEN support into
targeted / targeted-plus), ``origin`` (last census year used), ``sources`` (JSON provenance).

:func:`targets_from_baseline` is the single adapter between the data layer
(:func:`simsend.data.load_baseline`) and calibration; every name it reads from the data layer
is listed in :data:`HISTORY_NAMES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import xarray as xr

from simsend.config import ModelConfig
from simsend.dims import AGE_GROUPS, AGES, TIER, band_matrix, band_of_age

N_A = len(AGES)
GROUPS = tuple(AGE_GROUPS)
N_G = len(GROUPS)

HISTORY_NAMES = {
    "ehcp": ("ehcp", "ehc_plans", "n_ehcp"),
    "new_plans": ("new_plans", "new_ehcp", "n_new_plans"),
    "sen_support": ("sen_support", "n_sen_support"),
    "requests": ("requests", "n_requests"),
    "ceased": ("ceased", "total_ceased", "n_ceased"),
    "ceased_moved_la": ("ceased_moved_la",),
    "ceased_needs_met": ("ceased_needs_met",),
    "ceased_age": ("ceased_age",),
    "ceased_moved_la_age": ("ceased_moved_la_age",),
    "new_plans_age": ("new_plans_age",),
}
"""Accepted variable names in ``Baseline.history`` (first match wins), per series."""

NEW_PLANS_LAG = 1
"""New plans of calendar year ``Y`` flow into the census of January ``Y + NEW_PLANS_LAG``."""


class TargetsError(ValueError):
    """Observed data cannot be turned into calibration targets (missing or malformed series)."""


def need_factor_from_mix(model: ModelConfig, mix: np.ndarray | None = None) -> np.ndarray:
    """Mean need multiplier by age: ``sum_n mix[a, n] * need_multiplier[n]``.

    Parameters
    ----------
    model : ModelConfig
        Supplies ``need_multiplier`` and, when ``mix`` is None, ``need_mix``.
    mix : ndarray (26, 13[, n_areas]), optional
        Need mix of the targeted tiers by age (counts or shares); rows with no children fall
        back to the config's ``need_mix``.

    Returns
    -------
    ndarray
        (26,) or (26, n_areas).

    """
    cfg = model.need_mix @ model.need_multiplier
    if mix is None:
        return cfg
    mix = np.asarray(mix, float)
    tot = mix.sum(axis=1)
    num = np.einsum("an...,n->a...", mix, model.need_multiplier)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = num / tot
    fallback = cfg if f.ndim == 1 else cfg[:, None]
    return np.where(tot > 0, f, fallback)


def make_targets(ehcp: np.ndarray, new_plans: np.ndarray, exposure: np.ndarray,
                 ehcp_age_share: np.ndarray, need_factor: np.ndarray, years, areas,
                 targeted_plus_share: float,
                 sources: Mapping[str, object] | None = None,
                 sen_support: np.ndarray | None = None,
                 universal: np.ndarray | None = None,
                 exits: np.ndarray | None = None,
                 needs_met: np.ndarray | None = None,
                 exits_age: np.ndarray | None = None,
                 new_plans_age: np.ndarray | None = None) -> xr.Dataset:
    """Assemble and check a target Dataset from plain arrays.

    Parameters
    ----------
    ehcp : array (Y, 5, R)
        EHC plans at each census.
    new_plans : array (Y, 5, R)
        New plans during the year ending at each census (NaN where unknown; row 0 ignored).
    exposure : array (Y, 26, R)
        Targeted-tier children exposed to escalation during the year ending at each census.
    ehcp_age_share : array (26, R)
        Within-band age distribution of EHC plans.
    need_factor : array (26,) or (26, R)
        Mean need multiplier of the targeted tiers by age.
    years, areas : sequence
        Census years (consecutive) and area codes.
    targeted_plus_share : float
        Share of SEN support in the targeted-plus tier (data assumption).
    sources : mapping, optional
        Provenance (file hashes etc.), stored as JSON in ``attrs["sources"]``.
    sen_support : array (Y, R), optional
        Recorded SEN support at each census (NaN where unknown).
    universal : array (Y, 26, R), optional
        Children exposed to identification during the year ending at each census (row 0
        ignored).  Given together with ``sen_support``.
    exits, needs_met : array (Y, R), optional
        EHC plans that ended during the year ending at each census other than by a transfer
        to another council, and those of them whose needs were met (SEN2 ceased plans by
        reason; NaN where unknown; row 0 ignored).  Given together.
    exits_age : array (Y, 5, R), optional
        ``exits`` by age band when the plan ended (NaN where unknown; row 0 ignored).
    new_plans_age : array (Y, 26, R), optional
        ``new_plans`` by single age at issue (NaN where unpublished: SEN2 publishes ages
        3-19 singly from calendar 2022, its end rows are ranges; row 0 ignored).

    Returns
    -------
    xarray.Dataset

    Examples
    --------
    >>> import numpy as np
    >>> t = make_targets(np.ones((2, 5, 1)), np.ones((2, 5, 1)), np.ones((2, 26, 1)),
    ...                  (band_matrix() / band_matrix().sum(0)).sum(1, keepdims=True),
    ...                  np.ones(26), [2020, 2021], ["X"], 0.25)
    >>> t["ehcp"].dims
    ('year', 'age_group', 'area')

    """
    years = np.asarray(years, dtype=np.int64)
    areas = [str(a) for a in areas]
    y, r = len(years), len(areas)
    if y < 2 or np.any(np.diff(years) != 1):
        raise TargetsError(f"need at least two consecutive census years, got {years.tolist()}")
    ehcp = np.asarray(ehcp, float)
    new_plans = np.array(new_plans, float)
    exposure = np.array(exposure, float)
    share = np.asarray(ehcp_age_share, float)
    nf = np.asarray(need_factor, float)
    if nf.ndim == 1:
        nf = np.repeat(nf[:, None], r, axis=1)
    for name, arr, shape in (("ehcp", ehcp, (y, N_G, r)), ("new_plans", new_plans, (y, N_G, r)),
                             ("exposure", exposure, (y, N_A, r)),
                             ("ehcp_age_share", share, (N_A, r)), ("need_factor", nf, (N_A, r))):
        if arr.shape != shape:
            raise TargetsError(f"{name}: expected shape {shape}, got {arr.shape}")
    for name, arr in (("ehcp", ehcp), ("new_plans", new_plans), ("exposure", exposure)):
        if np.any(arr[np.isfinite(arr)] < 0):
            raise TargetsError(f"{name}: negative counts")
    band_sums = band_matrix().T @ share
    if not np.allclose(band_sums, 1.0, atol=1e-6):
        raise TargetsError("ehcp_age_share must sum to 1 within every age band and area")
    if (sen_support is None) != (universal is None):
        raise TargetsError("sen_support and universal are given together or not at all")
    extra = {}
    if sen_support is not None:
        sen_support = np.asarray(sen_support, float)
        universal = np.array(universal, float)
        for name, arr, shape in (("sen_support", sen_support, (y, r)),
                                 ("universal", universal, (y, N_A, r))):
            if arr.shape != shape:
                raise TargetsError(f"{name}: expected shape {shape}, got {arr.shape}")
            if np.any(arr[np.isfinite(arr)] < 0):
                raise TargetsError(f"{name}: negative counts")
        universal[0] = np.nan
        extra = {
            "sen_support": (("year", "area"), sen_support,
                            {"long_name": "SEN support (targeted tiers) at the January census",
                             "units": "1"}),
            "universal": (("year", "age", "area"), universal,
                          {"long_name": "children exposed to identification during the year"
                                        " ending at the census", "units": "1"}),
        }
    if (exits is None) != (needs_met is None):
        raise TargetsError("exits and needs_met are given together or not at all")
    if exits is not None:
        exits, needs_met = np.array(exits, float), np.array(needs_met, float)
        for name, arr in (("exits", exits), ("needs_met", needs_met)):
            if arr.shape != (y, r):
                raise TargetsError(f"{name}: expected shape {(y, r)}, got {arr.shape}")
            if np.any(arr[np.isfinite(arr)] < 0):
                raise TargetsError(f"{name}: negative counts")
            arr[0] = np.nan
        extra["exits"] = (("year", "area"), exits,
                          {"long_name": "EHC plans ended during the year ending at the census, "
                                        "other than by transfer to another council",
                           "units": "1 year-1"})
        if exits_age is not None:
            exits_age = _flow_rows("exits_age", exits_age, (y, N_G, r))
            extra["exits_age"] = (("year", "age_group", "area"), exits_age,
                                  {"long_name": "EHC plans ended during the year ending at "
                                                "the census, other than by transfer, by age "
                                                "band when the plan ended", "units": "1 year-1"})
        extra["needs_met"] = (("year", "area"), needs_met,
                              {"long_name": "EHC plans ended during the year ending at the "
                                            "census because the needs were met",
                               "units": "1 year-1"})
    if new_plans_age is not None:
        new_plans_age = _flow_rows("new_plans_age", new_plans_age, (y, N_A, r))
        extra["new_plans_age"] = (("year", "age", "area"), new_plans_age,
                                  {"long_name": "new EHC plans during the year ending at the "
                                                "census by single age at issue",
                                   "units": "1 year-1"})
    new_plans[0] = np.nan
    exposure[0] = np.nan
    ds = xr.Dataset(
        {
            "ehcp": (("year", "age_group", "area"), ehcp,
                     {"long_name": "EHC plans at the January census", "units": "1"}),
            "new_plans": (("year", "age_group", "area"), new_plans,
                          {"long_name": "new EHC plans during the year ending at the census",
                           "units": "1 year-1"}),
            "exposure": (("year", "age", "area"), exposure,
                         {"long_name": "targeted-tier children exposed to escalation during the"
                                       " year ending at the census (after ageing and leaving)",
                          "units": "1"}),
            "ehcp_age_share": (("age", "area"), share,
                               {"long_name": "within-band age distribution of EHC plans"}),
            "need_factor": (("age", "area"), nf,
                            {"long_name": "mean need multiplier of the targeted tiers"}),
            **extra,
        },
        coords={"year": years, "age_group": list(GROUPS), "age": np.arange(N_A),
                "area": areas},
    )
    ds.attrs = {"targeted_plus_share": float(targeted_plus_share), "origin": int(years[-1]),
                "sources": json.dumps(dict(sources or {}), default=str)}
    return ds


def _flow_rows(name: str, arr, shape: tuple) -> np.ndarray:
    """Check a flow by year (row 0, the first census, has none: set to NaN); return a copy."""
    arr = np.array(arr, float)
    if arr.shape != shape:
        raise TargetsError(f"{name}: expected shape {shape}, got {arr.shape}")
    if np.any(arr[np.isfinite(arr)] < 0):
        raise TargetsError(f"{name}: negative counts")
    arr[0] = np.nan
    return arr


def restrict(targets: xr.Dataset, first_year: int | None = None,
             origin: int | None = None) -> xr.Dataset:
    """Keep census years ``first_year..origin`` (data known at the origin census only).

    Examples
    --------
    >>> import numpy as np
    >>> t = make_targets(np.ones((3, 5, 1)), np.ones((3, 5, 1)), np.ones((3, 26, 1)),
    ...                  (band_matrix() / band_matrix().sum(0)).sum(1, keepdims=True),
    ...                  np.ones(26), [2019, 2020, 2021], ["X"], 0.25)
    >>> restrict(t, origin=2020).year.values.tolist()
    [2019, 2020]

    """
    lo = int(targets.year[0]) if first_year is None else first_year
    hi = int(targets.year[-1]) if origin is None else origin
    out = targets.sel(year=slice(lo, hi))
    if out.sizes["year"] < 2:
        raise TargetsError(f"fewer than two census years in {lo}-{hi}")
    out = out.copy()
    out["new_plans"][0] = np.nan
    out["exposure"][0] = np.nan
    for v in ("universal", "exits", "needs_met", "exits_age", "new_plans_age"):
        if v in out:
            out[v][0] = np.nan
    out.attrs = {**targets.attrs, "origin": int(out.year[-1])}
    return out


# --------------------------------------------------------------------------- data-layer adapter


def _pick(history: xr.Dataset, series: str, required: bool = True) -> xr.DataArray | None:
    for name in HISTORY_NAMES[series]:
        if name in history.data_vars:
            return history[name]
    if required:
        raise TargetsError(f"Baseline.history has no {series!r} series (looked for "
                           f"{list(HISTORY_NAMES[series])}; has {list(history.data_vars)})")
    return None


def _exposure_by_age(ss: np.ndarray, pop: np.ndarray, prevalence: np.ndarray,
                     survive: np.ndarray) -> np.ndarray:
    """Targeted-tier children exposed during each year, by age (see module docstring).

    ``ss`` (Y, R) SEN support totals (NaN-free), ``pop`` (Y, 26, R) population,
    ``prevalence`` (26, R) relative SEN support prevalence by age, ``survive`` (26,) chance
    that a targeted-tier child survives the year's leaving at each (new) age.
    """
    w = pop * prevalence[None]
    by_age = ss[:, None, :] * w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    out = np.full_like(by_age, np.nan)
    out[1:, 1:] = by_age[:-1, :-1] * survive[None, 1:, None]
    out[1:, 0] = 0.0
    return out


def targets_from_baseline(baseline, model: ModelConfig, *, first_year: int = 2015,
                          origin: int | None = None) -> xr.Dataset:
    """Build calibration targets from a data-layer ``Baseline`` and its ``history``.

    Parameters
    ----------
    baseline : simsend.data.Baseline
        Needs ``history`` (see :data:`HISTORY_NAMES`), ``population`` (year, age, area),
        ``individuals`` (4, 26, 13, n_areas, 7), ``areas`` and ``provenance``; the targeted
        share is read from ``baseline.targeted_plus_share`` or its ``spec``.
    model : ModelConfig
        Supplies leaving rates of the targeted tiers and the need multipliers.
    first_year : int
        First census year used (default 2015: the SEN2 series before then counts statements
        under the pre-2014 system, and population by age starts mid-2014).
    origin : int, optional
        Last census year used (default: the last year in the history).

    Returns
    -------
    xarray.Dataset
        See the module docstring.

    Notes
    -----
    * SEN support by age is not published.  It is spread over ages by population times the
      baseline's own SEN-support prevalence by age (the targeted tiers of
      ``baseline.individuals`` over population at the baseline year), so exposure is measured
      on the same age profile the engine starts from.
    * Where SEN support is not recorded for an area and year it is replaced by population
      times the prevalence pooled over that area's recorded years (or over all areas).
    * New plans of calendar year ``Y`` count as flowing into census ``Y + 1``.

    """
    hist = baseline.history
    areas = [str(a) for a in baseline.areas]
    ehcp = _pick(hist, "ehcp")
    new = _pick(hist, "new_plans")
    ss = _pick(hist, "sen_support")
    pop = baseline.population
    if "area" in pop.dims:
        pop = pop.sel(area=areas)
    years_all = np.asarray(ehcp["year"].values, dtype=np.int64)
    hi = int(years_all.max()) if origin is None else int(origin)
    lo = max(int(first_year), int(years_all.min()))
    years = np.arange(lo, hi + 1)
    if len(years) < 2:
        raise TargetsError(f"fewer than two census years in {lo}-{hi}")

    def grid(da: xr.DataArray, yrs) -> np.ndarray:
        da = da.sel(area=areas) if "area" in da.dims else da.expand_dims(area=areas)
        return da.reindex(year=yrs).transpose("year", ..., "area").values.astype(float)

    e = grid(ehcp.sel(age_group=list(GROUPS)), years)
    n = grid(new.sel(age_group=list(GROUPS)), years - NEW_PLANS_LAG)
    s = grid(ss, years)
    pop_years = np.asarray(pop["year"].values, dtype=np.int64)
    p = pop.reindex(year=np.clip(years, pop_years.min(), pop_years.max())).transpose(
        "year", "age", "area").values.astype(float)

    ind = np.asarray(baseline.individuals, float)  # (tier, age, need, area, placement)
    targ = ind[TIER["targeted"]] + ind[TIER["targeted_plus"]]  # (age, need, area, placement)
    targ_age = targ.sum(axis=(1, 3))  # (age, area)
    base_year = int(getattr(baseline, "year", getattr(getattr(baseline, "spec", None),
                                                      "baseline_year", years[-1])))
    p_base = pop.sel(year=np.clip(base_year, pop_years.min(), pop_years.max())).transpose(
        "age", "area").values.astype(float)
    prevalence = targ_age / np.maximum(p_base, 1.0)
    # Fill unrecorded SEN support with population x pooled prevalence.
    implied = (p * prevalence[None]).sum(axis=1)  # (Y, R)
    ratio = s / np.where(implied > 0, implied, np.nan)
    pooled_all = np.nanmean(ratio) if np.isfinite(ratio).any() else 1.0
    with np.errstate(invalid="ignore"):
        pooled = np.where(np.isfinite(ratio).any(axis=0), np.nanmean(
            np.where(np.isfinite(ratio), ratio, np.nan), axis=0), pooled_all)
    s_filled = np.where(np.isfinite(s), s, implied * pooled[None])
    share_tp = float(getattr(baseline, "targeted_plus_share",
                             getattr(getattr(baseline, "spec", None), "targeted_plus_share",
                                     0.25)))
    leave_t = ((1 - share_tp) * model.leaving[TIER["targeted"]]
               + share_tp * model.leaving[TIER["targeted_plus"]])
    exposure = _exposure_by_age(s_filled, p, prevalence, 1.0 - leave_t)
    # Children who could be identified: last census's population less its SEN support and
    # EHC plans, aged one year (age 0: this census's population).
    w = p * prevalence[None]
    ss_age = s_filled[:, None, :] * w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    e_age = np.nan_to_num(e)[:, band_of_age(), :] * _age_share(ind)[None]
    outside = np.maximum(p - ss_age - e_age, 0.0)
    universal = np.full_like(outside, np.nan)
    universal[1:, 1:] = outside[:-1, :-1]
    universal[1:, 0] = p[1:, 0]

    share = _age_share(ind)
    mix = targ.sum(axis=3)  # (age, need, area)
    nf = need_factor_from_mix(model, mix)
    prov = dict(getattr(baseline, "provenance", {}) or {})
    flows = {}
    ceased = _pick(hist, "ceased", required=False)
    moved = _pick(hist, "ceased_moved_la", required=False)
    met = _pick(hist, "ceased_needs_met", required=False)
    if ceased is not None and moved is not None and met is not None:
        # Plans ended other than by transfer (a transfer is not an ending in the engine:
        # the plan moves with the child), by calendar year, placed at the next census.
        flows = {"exits": grid(ceased, years - NEW_PLANS_LAG)
                 - grid(moved, years - NEW_PLANS_LAG),
                 "needs_met": grid(met, years - NEW_PLANS_LAG)}
        c_age = _pick(hist, "ceased_age", required=False)
        m_age = _pick(hist, "ceased_moved_la_age", required=False)
        if c_age is not None and m_age is not None:
            flows["exits_age"] = (grid(c_age.sel(age_group=list(GROUPS)), years - NEW_PLANS_LAG)
                                  - grid(m_age.sel(age_group=list(GROUPS)),
                                         years - NEW_PLANS_LAG))
    n_age = _pick(hist, "new_plans_age", required=False)
    if n_age is not None and np.isfinite(n_age.values).any():
        flows["new_plans_age"] = grid(n_age, years - NEW_PLANS_LAG)
    return make_targets(e, n, exposure, share, nf, years, areas, share_tp, sources=prov,
                        sen_support=s, universal=universal, **flows)


def _age_share(ind: np.ndarray) -> np.ndarray:
    """Within-band age shares of the baseline's EHC plans, (26, R) (equal where a band is empty)."""
    spec = ind[TIER["specialist"]].sum(axis=(1, 3))  # (age, area)
    m = band_matrix()
    band_tot = m.T @ spec
    width = m.sum(axis=0)
    return np.where((m @ band_tot) > 0, spec / np.maximum(m @ band_tot, 1e-300),
                    (1.0 / width[band_of_age()])[:, None])
