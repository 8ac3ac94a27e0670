"""Backtesting: calibrate on data up to an origin year, forecast, score against what happened.

Two forecast paths:

``engine``
    The engine runs from the data layer's baseline of the origin year with
    :class:`~simsend.rates.posterior.PosteriorParameters` (one posterior draw per
    replicate).  Used when the data layer can build that baseline.
``aggregate``
    The calibration model's own posterior predictive: the origin's banded EHC plans are
    spread over single ages, then aged, thinned by binomial exits and topped up with
    negative-binomial new plans year by year.  Exposure (children on SEN support by age) is
    held at its origin-year level: nothing recorded after the origin is used.

Variables scored (:data:`VARIABLES`), per area and census year, where both the forecast and
the record have them: EHC plans in total (``ehcp``), by SEN2 age group (``ehcp_under_5``
...) and by placement group (``ehcp_mainstream`` ..., the engine path only), SEN support
(``sen_support``: the targeted and targeted-plus tiers against the school census), new
plans (``new_plans``) and ceased plans (``ceased``).  Flows of calendar year ``Y`` are
scored at census ``Y + 1`` (:data:`~simsend.calibration.targets.NEW_PLANS_LAG`).

Methods: the forecast (``simsend``); ``naive_growth``, the mean growth of the last 3 years
compounded, with an empirical band from the log errors of the same rule issued at earlier
origins (pooled over the areas; :func:`~simsend.calibration.scores.naive_growth_band`); and
``naive_linear``, a straight line through the last 5 years (a point forecast only).  Each
point gets its median, 50 % and 90 % intervals, whether they hold the observation, CRPS and
PIT; :func:`summarise` pools them into coverage, CRPS, MAPE and bias per origin, lead,
method, council size band and area.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from simsend import config as _config
from simsend.calibration import scores
from simsend.calibration.fit import calibrate, load_targets
from simsend.calibration.model import PriorConfig
from simsend.calibration.targets import HISTORY_NAMES, NEW_PLANS_LAG, restrict
from simsend.data.configured import load_config_baseline
from simsend.dims import AGE_GROUPS, PLACEMENTS, band_matrix, band_of_age
from simsend.rates.parameters import damped_steps
from simsend.rates.posterior import sample_mean
from simsend.runner.forecast import simulate_run
from simsend.runner.plan import prepare

LOG = logging.getLogger("simsend")

TOTALS = ("ehcp", "sen_support", "new_plans", "ceased")
"""Series scored summed over ages (the SEN2 and school-census totals)."""
PLACEMENT_VARIABLES = tuple(f"ehcp_{p}" for p in PLACEMENTS)
"""EHC plans by placement group (SEN2 establishment types mapped to :data:`PLACEMENTS`)."""
VARIABLES = ("ehcp", *(f"ehcp_{g}" for g in AGE_GROUPS), *PLACEMENT_VARIABLES, "sen_support",
             "new_plans", "ceased")
"""Every variable a backtest scores, in table order."""
METHODS = ("simsend", "naive_growth", "naive_linear")
"""Forecast methods of the score tables, in table order."""
SIZE_BANDS = ("small", "medium", "large")
"""Terciles of the areas by recorded EHC plans at the origin (:func:`size_bands`)."""
MIN_BAND_ERRORS = 5
"""Fewest pooled past errors at a lead for the naive growth band (fewer: point forecast only)."""
RECORD_NAMES = {"sen_support": HISTORY_NAMES["sen_support"],
                "ceased": HISTORY_NAMES["ceased"], "ehcp_placement": ("ehcp_placement",)}
"""Names read from ``Baseline.history`` for the series the calibration targets lack."""
_SUMMARY_COLUMNS = ("origin", "variable", "lead", "method", "size_band", "area", "n",
                    "coverage_50", "coverage_90", "crps", "mape", "bias")


def aggregate_forecast(path: str | Path, targets: xr.Dataset, horizon: int, draws: int = 200,
                       seed: int = 0) -> xr.Dataset:
    """Posterior predictive of banded EHC plans and new plans after the posterior's origin.

    Parameters
    ----------
    path : str or Path
        Calibration artefact.
    targets : xarray.Dataset
        Targets up to (at least) the origin year; only the origin's stock, age shares and
        exposure are read.
    horizon : int
        Years ahead.
    draws : int
        Forecast replicates (posterior draws cycled, one replicate each).
    seed : int
        Seed of the process noise.

    Returns
    -------
    xarray.Dataset
        ``ehcp`` and ``new_plans`` with dims ``(draw, year, age_group, area)`` and
        ``param_draw`` (posterior index of each replicate).

    """
    with xr.open_dataset(path, group="posterior", engine="h5netcdf") as ds:
        post = ds.load()
    with xr.open_dataset(path, group="constant_data", engine="h5netcdf") as ds:
        const = ds.load()
    origin = int(post.attrs["origin_year"])
    areas = [str(a) for a in post["area"].values]
    t = targets.sel(year=slice(None, origin), area=areas)
    rng = np.random.default_rng(seed)
    st = post.stack(sample=("chain", "draw"))
    n_post = st.sizes["sample"]
    k = np.arange(draws) % n_post
    theta = st["escalation_multiplier"].transpose("sample", "age_group", "area").values[k]
    kappa = st["exit_multiplier"].transpose("sample", "age_group", "area").values[k]
    if "escalation_trend_ref" in st:  # the step at the reference year, damped after it
        trend = st["escalation_trend_ref"].sel(area=areas).transpose(
            "sample", "age_group", "area").values[k]  # (D, G, R)
    else:
        tr = st["escalation_trend"]
        trend = (tr.transpose("sample", "age_group").values[k] if "age_group" in tr.dims
                 else np.repeat(tr.values[k][:, None], 5, axis=1))[:, :, None]  # (D, G, 1)
    phi = (st["escalation_damping"].values.reshape(-1)[k] if "escalation_damping" in st
           else np.ones(draws))
    cv_new = np.broadcast_to(st["new_plans_cv"].transpose("sample", ...).values[k].reshape(
        draws, -1), (draws, 5))[:, :, None]  # (D, G, 1)
    cv_stock = np.broadcast_to(st["ehcp_cv"].transpose("sample", ...).values[k].reshape(
        draws, -1), (draws, 5))[:, :, None]
    band = band_of_age()
    m = band_matrix()
    e_ref = const["escalation_ref"].transpose("age", "area").sel(area=areas).values  # (26, R)
    hazard = -np.log1p(-np.clip(const["exit_ref_specialist"].values, 1e-6, 1 - 1e-6))
    share = (sample_mean(st["ehcp_age_share"]).sel(area=areas).transpose("age", "area").values
             if "ehcp_age_share" in st else t["ehcp_age_share"].transpose("age", "area").values)
    expo = t["exposure"].transpose("year", "age", "area").values
    last = np.flatnonzero(np.isfinite(expo).all(axis=(1, 2)))
    x = expo[last[-1]] if len(last) else np.zeros_like(share)
    s0 = t["ehcp"].sel(year=origin).transpose("age_group", "area").values
    stock = np.rint(s0[band] * share).astype(np.int64)[None].repeat(draws, 0)
    ref_year = int(post.attrs.get("reference_year", origin + 1))
    out_s = np.zeros((draws, horizon, 5, len(areas)))
    out_n = np.zeros_like(out_s)
    surv_p = np.exp(-kappa[:, band] * hazard[None, :, None])  # (D, 26, R)
    # escalation's within-band age shape, where fitted (D, 26, 1)
    age_fx = (st["escalation_age_effect"].transpose("sample", "age").values[k][:, :, None]
              if "escalation_age_effect" in st else np.zeros((draws, len(band), 1)))
    for h in range(1, horizon + 1):
        year = origin + h
        steps = damped_steps(phi, year - ref_year)[:, None, None]  # (D, 1, 1)
        rate = theta[:, band] * np.exp(trend[:, band] * steps + age_fx) * e_ref[None]
        mu_age = rate * x[None]  # (D, 26, R)
        mu_band = np.einsum("dar,ag->dgr", mu_age, m)
        shape = 1.0 / np.maximum(cv_new, 1e-6) ** 2
        lam = rng.gamma(shape, mu_band / shape)
        n_band = rng.poisson(lam)
        frac = mu_age / np.maximum(mu_band[:, band], 1e-300)
        new_age = np.zeros_like(stock)
        for g in range(5):
            ages = np.flatnonzero(band == g)
            p = np.moveaxis(frac[:, ages], 1, -1)  # (D, R, n_ages)
            p = p / np.maximum(p.sum(-1, keepdims=True), 1e-300)
            p = np.where(p.sum(-1, keepdims=True) > 0, p, 1.0 / len(ages))
            new_age[:, ages] = np.moveaxis(rng.multinomial(n_band[:, g], p), -1, 1)
        aged = np.zeros_like(stock)
        aged[:, 1:] = stock[:, :-1]
        stock = rng.binomial(aged, surv_p) + new_age
        true_band = np.einsum("dar,ag->dgr", stock, m)
        sd = np.sqrt(true_band + (cv_stock * true_band) ** 2)
        out_s[:, h - 1] = np.maximum(true_band + sd * rng.standard_normal(true_band.shape), 0)
        out_n[:, h - 1] = n_band
    coords = {"draw": np.arange(draws), "year": origin + np.arange(1, horizon + 1),
              "age_group": t["age_group"].values, "area": areas}
    dims = ("draw", "year", "age_group", "area")
    return xr.Dataset({"ehcp": (dims, out_s), "new_plans": (dims, out_n),
                       "param_draw": ("draw", k)}, coords=coords,
                      attrs={"method": "aggregate", "origin_year": origin})


def engine_forecast(path: str | Path, cfg: _config.SimConfig, origin: int, horizon: int,
                    draws: int = 200, progress=None) -> xr.Dataset:
    """Engine forecast from the data layer's origin-year baseline with posterior rates.

    The run recipe of every forecast (:func:`simsend.runner.plan.prepare`) on the config with
    the posterior at ``path``, the origin year as baseline, ``draws`` draws and the marginal
    ``(tier, age_group, area, placement)``; what did not exist at the origin is left out:
    the provision plan, scenarios and the statutory pipeline (not scored).

    Returns :func:`engine_variables` of the run: ``ehcp`` and ``new_plans`` with dims
    ``(draw, year, age_group, area)``, as :func:`aggregate_forecast`, ``ehcp_placement``
    ``(draw, year, placement, area)``, plus ``sen_support`` and ``ceased`` with dims
    ``(draw, year, area)``.  ``progress(done, draws)`` is called
    after each draw.
    """
    c = dataclasses.replace(
        cfg.replace_run(start_year=origin, end_year=origin + horizon, draws=draws)
           .replace_outputs(by=("tier", "age_group", "area", "placement")),
        model=dataclasses.replace(cfg.model, posterior=str(path)), provision=None,
        scenarios=(), pipeline=dataclasses.replace(cfg.pipeline, enabled=False))
    plan = prepare(c)
    tick = None if progress is None else (lambda k: progress(k, draws))
    if progress is not None:
        progress(0, draws)  # the forecast's own clock starts here, not at calibration
    ds = plan.dataset(0, simulate_run(plan, 0, plan.draws, progress=tick), {})
    return engine_variables(ds, origin)


def engine_variables(ds: xr.Dataset, origin: int) -> xr.Dataset:
    """Return the backtest's variables from engine results by ``(tier, age_group, area)``.

    ``ehcp``: the specialist tier at each census; ``new_plans``: moves into it during the
    year (``n_escalated``); both ``(draw, year, age_group, area)``, summed over ``placement``
    where the results have it; then also ``ehcp_placement``, ``(draw, year, placement,
    area)``, the specialist tier by placement group summed over ages.  ``sen_support``: the
    targeted and targeted-plus tiers summed over ages; ``ceased``: plans that left the
    specialist tier during the year (needs met, moved on or aged out, moved away with the
    child), from the stock-flow identity ``S[t-1] + new + moved in + residual in - residual
    out - S[t]`` summed over ages (a plan changes age group as its holder ages; the stock
    residual's moves are not endings); both ``(draw, year, area)``.  Years after
    ``origin`` only; ``param_draw`` is carried over.
    """
    sp = ds.sel(tier="specialist", drop=True)
    by_place = None
    if "placement" in sp.dims:
        by_place = sp["n_pupils"].astype(float).sum("age_group").sel(
            placement=list(PLACEMENTS))
        sp = sp.sum("placement")
    stock = sp["n_pupils"].astype(float)
    new = sp["n_escalated"].astype(float)
    total = stock.sum("age_group")
    # what arrived other than as a new plan: moved in, and the stock residual's net flow
    # (variation the rates do not explain, neither an ending nor a transfer)
    arrived = xr.zeros_like(total)
    for name, sign in (("n_moved_in", 1.0), ("n_residual_in", 1.0), ("n_residual_out", -1.0)):
        if name in sp:
            arrived = arrived + sign * sp[name].astype(float).sum("age_group")
    ceased = total.shift(year=1) + new.sum("age_group") + arrived - total
    support = ds["n_pupils"].sel(tier=["targeted", "targeted_plus"]).astype(float).sum(
        ["tier", "age_group", *(["placement"] if by_place is not None else [])])
    later = {"year": slice(origin + 1, None)}
    four = ("draw", "year", "age_group", "area")
    out = xr.Dataset(
        {"ehcp": stock.sel(later).transpose(*four),
         "new_plans": new.sel(later).transpose(*four),
         "sen_support": support.sel(later).transpose("draw", "year", "area"),
         "ceased": ceased.sel(later).transpose("draw", "year", "area"),
         "param_draw": ds["param_draw"]},
        attrs={"method": "engine", "origin_year": int(origin)})
    if by_place is not None:
        out["ehcp_placement"] = by_place.sel(later).transpose("draw", "year", "placement",
                                                             "area")
    return out


# ------------------------------------------------------------------------------- the record


def with_history(targets: xr.Dataset, history: xr.Dataset) -> xr.Dataset:
    """Targets plus the recorded series calibration does not read, from ``Baseline.history``.

    ``sen_support`` (year, area): pupils on SEN support at the January census;
    ``ceased`` (year, area): EHC plans ceased in calendar year ``Y``, placed at census
    ``Y + NEW_PLANS_LAG`` as new plans are; ``ehcp_placement`` (year, placement, area): EHC
    plans at the census by placement group.  All on the targets' years and areas (NaN where
    not recorded); a series the history lacks (see :data:`RECORD_NAMES`) is left out, and
    one ``targets`` already holds is kept as it is.
    """
    out = targets.copy()
    areas = [str(a) for a in targets["area"].values]
    for var, names in RECORD_NAMES.items():
        name = next((n for n in names if n in history.data_vars), None)
        dims = ("year", "placement", "area") if var == "ehcp_placement" else ("year", "area")
        if var in out or name is None or set(history[name].dims) != set(dims):
            continue
        da = history[name].astype(float)
        da = da.assign_coords(area=[str(a) for a in da["area"].values]).reindex(area=areas)
        if var == "ceased":
            da = da.assign_coords(year=da["year"].values + NEW_PLANS_LAG)
        out[var] = da.reindex(year=targets["year"].values).transpose(*dims)
    return out


def load_record(cfg: _config.SimConfig) -> xr.Dataset:
    """Everything recorded for ``cfg``'s areas: calibration targets plus :func:`with_history`.

    Built from the data layer's baseline of ``run.start_year`` (its history ends there).
    """
    targets, _ = load_targets(cfg, origin=None)
    return with_history(targets, load_config_baseline(cfg).history)


def _series(ds: xr.Dataset, draws: bool) -> dict[str, xr.DataArray]:
    """:data:`VARIABLES` found in a forecast (``draws``) or record, as (draw,) year, area."""
    out = {}
    for name in TOTALS:
        if name not in ds:
            continue
        da = ds[name].astype(float)
        if "age_group" in da.dims:
            if name == "ehcp":
                for g in da["age_group"].values:
                    out[f"ehcp_{g}"] = da.sel(age_group=g, drop=True)
            da = da.sum("age_group", min_count=1)
        out[name] = da
    if "ehcp_placement" in ds:
        da = ds["ehcp_placement"].astype(float)
        for p in da["placement"].values:
            out[f"ehcp_{p}"] = da.sel(placement=p, drop=True)
    dims = ("draw", "year", "area") if draws else ("year", "area")
    return {v: out[v].transpose(*dims) for v in VARIABLES if v in out}


def size_bands(ehcp) -> pd.Series:
    """Terciles of areas by size: ``small``, ``medium``, ``large`` (``unknown`` where NaN).

    Areas are ranked by ``ehcp`` (ties in order given); rank ``r`` (from 0) of ``n`` falls in
    tercile ``floor(3 r / n)``, so the bands hold equal numbers of areas (one area:
    ``small``).

    Examples
    --------
    >>> size_bands(pd.Series([50.0, 10.0, 90.0, np.nan], index=list("abcd"))).tolist()
    ['medium', 'small', 'large', 'unknown']

    """
    v = pd.Series(ehcp, dtype=float)
    out = pd.Series("unknown", index=v.index, dtype=object)
    ok = v.notna()
    if ok.any():
        r = v[ok].rank(method="first").to_numpy() - 1
        out[ok] = [SIZE_BANDS[int(i)] for i in np.floor(3 * r / ok.sum()).clip(0, 2)]
    return out


# ------------------------------------------------------------------------------- scoring

_NO_BAND = {"lo50": np.nan, "hi50": np.nan, "lo90": np.nan, "hi90": np.nan, "in50": pd.NA,
            "in90": pd.NA, "crps": np.nan, "pit": np.nan}
POINT_COLUMNS = ("origin", "variable", "area", "size_band", "year", "lead", "method",
                 "observed", "point", "median", "lo50", "hi50", "lo90", "hi90", "in50",
                 "in90", "crps", "pit")
"""Columns of :func:`score_points`' table."""


def _score_sample(x: np.ndarray, obs: float) -> dict:
    lo50, hi50 = scores.interval(x, 0.5)
    lo90, hi90 = scores.interval(x, 0.9)
    return {"median": float(np.median(x)), "lo50": float(lo50), "hi50": float(hi50),
            "lo90": float(lo90), "hi90": float(hi90), "in50": bool(lo50 <= obs <= hi50),
            "in90": bool(lo90 <= obs <= hi90), "crps": float(scores.crps_sample(x, obs)),
            "pit": float(scores.pit(x, obs))}


def score_points(forecast: xr.Dataset, targets: xr.Dataset) -> pd.DataFrame:
    """One row per (variable, area, year, method): the forecast against what was recorded.

    Parameters
    ----------
    forecast : xarray.Dataset
        From :func:`engine_forecast` or :func:`aggregate_forecast` (``attrs["origin_year"]``).
    targets : xarray.Dataset
        The record (targets, optionally with :func:`with_history`'s series).  Years after the
        origin are read only as observations; the naive forecasts and their bands see the
        years up to the origin only.

    Returns
    -------
    pandas.DataFrame
        :data:`POINT_COLUMNS`.  Every variable of :data:`VARIABLES` that both the forecast and
        the record hold is scored; rows without a recorded value are dropped.  ``method``:
        ``simsend`` (the forecast's draws), ``naive_growth`` (the 3-year growth rule; its
        sample is ``point * exp(past log errors)``, see
        :func:`~simsend.calibration.scores.naive_growth_band`, scored like the forecast where
        at least :data:`MIN_BAND_ERRORS` errors exist, else a point forecast) and
        ``naive_linear`` (point only: intervals, ``in50``/``in90``, CRPS and PIT are
        missing).  ``point`` is what MAPE and bias score: the forecast's median, the naive
        rule's value.  ``size_band``: :func:`size_bands` of the recorded EHC plans at the
        origin.  ``pit``: :func:`~simsend.calibration.scores.pit`.

    """
    origin = int(forecast.attrs["origin_year"])
    years = [int(y) for y in forecast["year"].values]
    horizon = max(years) - origin
    fc, rec = _series(forecast, True), _series(targets, False)
    areas = [str(a) for a in forecast["area"].values]
    rec_years = np.asarray(targets["year"].values, dtype=np.int64)
    hist_years = np.arange(int(rec_years.min()), origin + 1)
    if "ehcp" in rec:
        at_origin = rec["ehcp"].reindex(area=areas, year=[origin]).values[0]
        bands = dict(zip(areas, size_bands(pd.Series(at_origin, index=areas)), strict=True))
    else:
        bands = dict.fromkeys(areas, "unknown")
    rows = []
    for var in (v for v in VARIABLES if v in fc and v in rec):
        r = rec[var].reindex(area=areas)
        hist = r.reindex(year=hist_years).transpose("area", "year").values
        lin = np.full((len(areas), horizon), np.nan)
        for i, y in enumerate(hist):
            tail = scores.finite_tail(y)
            if len(tail) >= 2:
                lin[i] = scores.naive_linear_trend(tail, horizon)
        gro, errors = scores.naive_growth_band(list(hist), horizon)
        sims = fc[var].sel(area=areas).values  # (draw, year, area)
        obs = r.reindex(year=years).values  # (year, area)
        for i, area in enumerate(areas):
            for j, year in enumerate(years):
                o, lead = float(obs[j, i]), year - origin
                if not np.isfinite(o):
                    continue
                base = {"origin": origin, "variable": var, "area": area,
                        "size_band": bands[area], "year": year, "lead": lead, "observed": o}
                x = sims[:, j, i]
                rows.append({**base, "method": "simsend", "point": float(np.median(x)),
                             **_score_sample(x, o)})
                p, e = float(gro[i, lead - 1]), errors[lead - 1]
                band = (_score_sample(p * np.exp(e), o)
                        if np.isfinite(p) and len(e) >= MIN_BAND_ERRORS
                        else {"median": p, **_NO_BAND})
                rows.append({**base, "method": "naive_growth", "point": p, **band})
                q = float(lin[i, lead - 1])
                rows.append({**base, "method": "naive_linear", "point": q, "median": q,
                             **_NO_BAND})
    out = pd.DataFrame(rows, columns=list(POINT_COLUMNS))
    for col in ("in50", "in90"):
        out[col] = out[col].astype("boolean")
    return out


def _flag(s: pd.Series) -> np.ndarray:
    """Return in-interval flags (bool, nullable, or as read from CSV) as 1.0, 0.0 or NaN."""
    m = {True: 1.0, False: 0.0, "True": 1.0, "False": 0.0}
    return np.array([m.get(v, np.nan) if not pd.isna(v) else np.nan for v in s], float)


def _order(col: pd.Series) -> pd.Series:
    """Sort key of a summary column: the tables' own orders, ``all`` where it belongs."""
    name = col.name
    if name == "variable":
        return col.map({v: i for i, v in enumerate(VARIABLES)}).fillna(len(VARIABLES))
    if name == "method":
        return col.map({v: i for i, v in enumerate(METHODS)}).fillna(len(METHODS))
    if name == "size_band":
        return col.map({v: i for i, v in enumerate((*SIZE_BANDS, "unknown", "all"))})
    if name == "area":
        return col.where(col != "all", "")
    return col.map(lambda v: 10 ** 9 if v == "all" else int(v))  # origin, lead


def summarise(points: pd.DataFrame) -> pd.DataFrame:
    """Scores of :func:`score_points`' rows, pooled at several levels.

    Rows per (``origin``, ``variable``, ``lead``, ``method``, ``size_band``), each of
    ``origin``, ``lead`` and ``size_band`` also pooled (``"all"``), with ``area = "all"``;
    and per area (pooled over leads, per origin and over all origins; ``size_band`` the
    area's band where it is the same at every origin pooled, else ``"all"``).

    Columns: ``origin``, ``variable``, ``lead`` (strings, ``"all"`` when pooled),
    ``method``, ``size_band``, ``area``, ``n`` (points), ``coverage_50`` and
    ``coverage_90`` (share of points inside the central interval, over the points that have
    one: NaN for ``naive_linear``), ``crps`` (mean; NaN for ``naive_linear``), ``mape`` and
    ``bias`` (fractions, of the ``point`` forecast; zero observations skipped).
    """
    p = points
    origin = p["origin"] if "origin" in p else p["year"] - p["lead"]
    obs = p["observed"].to_numpy(float)
    point = p["point"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = np.where(obs != 0, np.abs(point - obs) / np.abs(obs), np.nan)
        rel = np.where(obs != 0, (point - obs) / obs, np.nan)
    work = pd.DataFrame({
        "origin": origin.astype(str).to_numpy(), "variable": p["variable"].to_numpy(),
        "lead": p["lead"].astype(str).to_numpy(), "method": p["method"].to_numpy(),
        "size_band": (p["size_band"].astype(str).to_numpy() if "size_band" in p
                      else "unknown"),
        "area": p["area"].astype(str).to_numpy(), "in50": _flag(p["in50"]),
        "in90": _flag(p["in90"]), "crps": p["crps"].to_numpy(float), "ape": ape, "rel": rel})
    agg = {"n": ("ape", "size"), "coverage_50": ("in50", "mean"),
           "coverage_90": ("in90", "mean"), "crps": ("crps", "mean"), "mape": ("ape", "mean"),
           "bias": ("rel", "mean")}
    frames = []
    for by_origin in (True, False):
        for by_lead in (True, False):
            for by_band in (True, False):
                keys = ["variable", "method", *(["origin"] if by_origin else []),
                        *(["lead"] if by_lead else []), *(["size_band"] if by_band else [])]
                g = work.groupby(keys, sort=False).agg(**agg).reset_index()
                frames.append(g.assign(**{k: "all" for k in ("origin", "lead", "size_band",
                                                              "area") if k not in keys}))
        keys = ["variable", "method", "area", *(["origin"] if by_origin else [])]
        g = work.groupby(keys, sort=False).agg(
            **agg, size_band=("size_band", "first"), bands=("size_band", "nunique"))
        g = g.reset_index()
        g["size_band"] = g["size_band"].where(g.pop("bands") == 1, "all")
        frames.append(g.assign(lead="all", **({} if by_origin else {"origin": "all"})))
    out = pd.concat(frames, ignore_index=True)[list(_SUMMARY_COLUMNS)]
    out = out.sort_values(["origin", "variable", "area", "lead", "size_band", "method"],
                          key=_order, kind="stable", ignore_index=True)
    out["n"] = out["n"].astype(int)
    return out


def backtest(config: _config.SimConfig | str | Path, origin: int, horizon: int = 3,
             draws: int = 200, *, targets: xr.Dataset | None = None, method: str = "auto",
             calib_draws: int = 2000, tune: int = 1000, chains: int = 4,
             allow_failed_diagnostics: bool = False, random_seed: int | None = None,
             prior: PriorConfig | None = None, out: str | Path | None = None,
             progress=None, progressbar: bool = False, sampler: str = "pymc",
             target_accept: float = 0.99) -> pd.DataFrame:
    """Calibrate on data up to ``origin``, forecast ``origin+1..origin+horizon``, score.

    Parameters
    ----------
    config : SimConfig or path
        Config naming the areas (``[data]``) and reference rates (``[model]``).
    origin : int
        Last census year the calibration may see.
    horizon : int
        Years forecast.
    draws : int
        Forecast replicates.
    targets : xarray.Dataset, optional
        Everything recorded (default: :func:`load_record` from the data layer); what comes
        after ``origin`` is used only for scoring.
    method : {"auto", "engine", "aggregate"}
        Forecast path; ``auto`` uses the engine when the data layer can build the origin-year
        baseline (and no ``targets`` were passed), otherwise the aggregate model.
    calib_draws, tune, chains, allow_failed_diagnostics, random_seed, prior, sampler,
    target_accept
        Passed to :func:`~simsend.calibration.fit.calibrate` (``calib_draws`` as ``draws``).
    out : path, optional
        Where to keep the calibration artefact (default: a temporary file).
    progress : callable, optional
        ``progress(done, draws)`` after each forecast draw (engine path).
    progressbar : bool
        Show the sampler's progress bar while calibrating.

    Returns
    -------
    pandas.DataFrame
        :func:`summarise`'s table; ``attrs["points"]`` holds :func:`score_points`' rows,
        ``attrs["method"]`` the forecast path used and ``attrs["record"]`` the record.

    Examples
    --------
    >>> df = backtest("configs/base.toml", origin=2018, horizon=3)  # doctest: +SKIP
    >>> df.query("origin == 'all' and lead == 'all' and area == 'all'")  # doctest: +SKIP

    """
    cfg = config if isinstance(config, _config.SimConfig) else _config.load(config)
    if targets is None:
        targets = load_record(cfg)
        if method == "auto":
            method = "engine"
    elif method == "auto":
        method = "aggregate"
    if int(targets["year"].values[-1]) <= origin:
        raise ValueError(f"no recorded year after origin {origin} to score against")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(out) if out is not None else Path(tmp) / f"backtest_{origin}.nc"
        fit_targets = None
        if method == "aggregate":
            fit_targets = restrict(targets.drop_vars([v for v in RECORD_NAMES if v in targets]),
                                   origin=origin)
        LOG.info("backtest origin %d: calibrating on census years up to %d", origin, origin)
        path = calibrate(cfg, path, draws=calib_draws, tune=tune, chains=chains,
                         allow_failed_diagnostics=allow_failed_diagnostics, origin=origin,
                         targets=fit_targets, random_seed=random_seed, prior=prior,
                         progressbar=progressbar, sampler=sampler,
                         target_accept=target_accept)
        LOG.info("backtest origin %d: forecasting %d-%d, %d draws (%s)", origin, origin + 1,
                 origin + horizon, draws, method)
        if method == "engine":
            fc = engine_forecast(path, cfg, origin, horizon, draws, progress=progress)
        elif method == "aggregate":
            fc = aggregate_forecast(path, targets, horizon, draws,
                                    seed=cfg.run.seed if random_seed is None else random_seed)
        else:
            raise ValueError(f"unknown method {method!r}")
    points = score_points(fc, targets)
    summary = summarise(points)
    summary.attrs.update(points=points, method=method, record=targets)
    return summary


def rolling_backtest(config: _config.SimConfig | str | Path, origins, horizon: int = 3,
                     draws: int = 200, **kwargs) -> pd.DataFrame:
    """:func:`backtest` at each of ``origins``; one :func:`summarise` table over them all.

    The record is loaded once (:func:`load_record`, unless ``targets`` is given) and every
    origin is checked against it before any calibration.  ``attrs["points"]`` holds every
    origin's scored points; the rows with ``origin = "all"`` pool the points of every origin.
    """
    cfg = config if isinstance(config, _config.SimConfig) else _config.load(config)
    origins = list(dict.fromkeys(int(o) for o in origins))
    if not origins:
        raise ValueError("no backtest origin given")
    if kwargs.get("targets") is None:
        kwargs["targets"] = load_record(cfg)
        if kwargs.get("method", "auto") == "auto":
            kwargs["method"] = "engine"
    last = int(kwargs["targets"]["year"].values[-1])
    late = [o for o in origins if o >= last]
    if late:
        raise ValueError(f"no recorded year after origin {late[0]} to score against (the "
                         f"record ends in {last})")
    points, method = [], None
    for origin in origins:
        t = backtest(cfg, origin, horizon, draws, **kwargs)
        points.append(t.attrs["points"])
        method = t.attrs.get("method")
    pts = pd.concat(points, ignore_index=True)
    res = summarise(pts)
    res.attrs.update(points=pts, method=method, record=kwargs["targets"])
    return res


# ------------------------------------------------------------------------------- charts

_NAMES = {"ehcp": "EHC plans (specialist tier), January",
          "sen_support": "SEN support (targeted tiers), January",
          "new_plans": "new EHC plans in the year", "ceased": "EHC plans ceased in the year"}


def _save(fig, path: str | Path) -> Path:
    """Write a figure atomically (a hidden temporary file renamed into place)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    tmp.replace(path)
    return path


def _grid(n: int, width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(n, 3) if n != 4 else 2
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def plot_backtest(points: pd.DataFrame, path: str | Path, targets: xr.Dataset | None = None,
                  title: str = "simsend backtest") -> Path:
    """Chart the scored forecasts against what was recorded; written to ``path`` (PNG/SVG).

    One panel per total (:data:`TOTALS` present in ``points``).  A single area: the recorded
    series (black line and dots), each origin's median (dashed) with its 50 % and 90 %
    intervals (grey bands) and the two naive forecasts (dotted, dash-dot).  Several areas:
    recorded against forecast median per area and year on log axes, with the 90 % interval
    as a vertical bar, against the identity line.
    """
    variables = [v for v in TOTALS if v in set(points["variable"])]
    fig, axes = _grid(max(len(variables), 1), 6.2, 4.6)
    single = points["area"].nunique() == 1
    if "origin" not in points:
        points = points.assign(origin=points["year"] - points["lead"])
    rec = _series(targets, False) if targets is not None else {}
    for ax, var in zip(axes, variables, strict=False):
        p = points[points["variable"] == var]
        sims = p[p["method"] == "simsend"]
        if single:
            if var in rec:
                obs = rec[var].sel(area=p["area"].iloc[0]).dropna("year")
                ax.plot(obs["year"], obs, "k-o", ms=4, lw=1.2, label="recorded", zorder=5)
            for i, (origin, g) in enumerate(sims.groupby("origin")):
                g = g.sort_values("year")
                lab = i == 0
                ax.fill_between(g["year"], g["lo90"], g["hi90"], color="0.85",
                                label="90% interval" if lab else None)
                ax.fill_between(g["year"], g["lo50"], g["hi50"], color="0.65",
                                label="50% interval" if lab else None)
                ax.plot(g["year"], g["median"], "k--", lw=1.2,
                        label="simsend median" if lab else None)
                naive = p[p["origin"] == origin]
                for m, style, text in (("naive_linear", "k:", "naive: linear trend"),
                                       ("naive_growth", "k-.", "naive: 3-year growth")):
                    n = naive[naive["method"] == m].sort_values("year")
                    ax.plot(n["year"], n["point"], style, lw=1.1, label=text if lab else None)
                ax.axvline(origin, color="0.5", lw=0.6)
            ax.set_xlabel("census year (forecast origins: thin vertical lines)")
            ax.set_ylabel("children")
        else:
            ax.errorbar(sims["observed"], sims["median"],
                        yerr=[sims["median"] - sims["lo90"], sims["hi90"] - sims["median"]],
                        fmt="o", ms=2.5, color="k", ecolor="0.6", elinewidth=0.6,
                        label="area x year: median, 90% interval")
            lo = max(1.0, float(min(sims["observed"].min(), sims["lo90"].min())))
            hi = float(max(sims["observed"].max(), sims["hi90"].max()))
            ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="forecast = recorded")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("recorded")
            ax.set_ylabel("forecast (children)")
        ax.set_title(_NAMES.get(var, var), fontsize=11)
        ax.legend(fontsize=8, frameon=False)
        ax.grid(True, color="0.9", lw=0.5)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


PIT_GROUPS = (
    ("ehcp", ("ehcp",), "EHC plans, total"),
    ("ehcp_by_age", tuple(f"ehcp_{g}" for g in AGE_GROUPS), "EHC plans by age group (pooled)"),
    ("ehcp_by_placement", PLACEMENT_VARIABLES, "EHC plans by placement group (pooled)"),
    ("sen_support", ("sen_support",), "SEN support"),
    ("new_plans", ("new_plans",), "new EHC plans"),
    ("ceased", ("ceased",), "ceased EHC plans"),
)
"""Panels of :func:`plot_pit`: (key, variables pooled, title)."""


def plot_pit(points: pd.DataFrame, path: str | Path, title: str = "simsend backtest: PIT",
             bins: int = 10) -> Path:
    """PIT histograms of the forecast and the banded naive growth rule; written to ``path``.

    One panel per group of :data:`PIT_GROUPS` with scored points, pooling every origin,
    lead and area: the density of the ``pit`` values of ``simsend`` (grey bars) and of
    ``naive_growth`` (black outline) in ``bins`` equal bins, and the uniform density (dashed)
    that calibrated forecasts follow.  Mass piled at both ends: bands too narrow; in the
    middle: too wide; sloping: biased (mass near 1: the record above the forecast).
    Written atomically, as :func:`plot_backtest`.
    """
    groups = [(key, vs, name) for key, vs, name in PIT_GROUPS
              if points["variable"].isin(vs).any()]
    fig, axes = _grid(max(len(groups), 1), 4.6, 3.5)
    edges = np.linspace(0.0, 1.0, bins + 1)
    styles = (("simsend", "simsend", {"color": "0.72", "edgecolor": "0.45"}),
              ("naive_growth", "naive 3-year growth, banded",
               {"histtype": "step", "color": "k", "lw": 1.8}))
    for ax, (_, vs, name) in zip(axes, groups, strict=False):
        p = points[points["variable"].isin(vs)]
        top, counts = 1.0, []
        for method, label, style in styles:
            v = p.loc[p["method"] == method, "pit"].to_numpy(float)
            v = v[np.isfinite(v)]
            counts.append(f"{v.size:,}")
            if v.size:
                h, _, _ = ax.hist(v, bins=edges, density=True, label=label, **style)
                top = max(top, float(h.max()))
        ax.axhline(1.0, color="k", ls="--", lw=1.0, label="uniform: calibrated")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, top * 1.08)
        ax.set_xticks(edges[::2])
        ax.set_xlabel("PIT: share of forecast below the record")
        ax.set_ylabel("density")
        ax.set_title(f"{name}\nn = {counts[0]} simsend, {counts[1]} naive", fontsize=10)
        ax.grid(True, axis="y", color="0.9", lw=0.5)
    legend = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=len(legend),
                   frameon=False, fontsize=9)
    return _save(fig, path)
