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

Scores (see :mod:`simsend.calibration.scores`) for EHC plans and new plans, summed over age
bands, per area and over all areas: coverage of the central 50 % and 90 % intervals, CRPS,
MAPE of the median and bias, plus MAPE and bias of two naive baselines (a straight line
through the last 5 years; the mean growth rate of the last 3 years compounded).
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
from simsend.calibration.targets import restrict
from simsend.dims import band_matrix, band_of_age
from simsend.runner.forecast import simulate_run
from simsend.runner.plan import prepare

LOG = logging.getLogger("simsend")

VARIABLES = ("ehcp", "new_plans")


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
    tr = st["escalation_trend"]
    trend = (tr.transpose("sample", "age_group").values[k] if "age_group" in tr.dims
             else np.repeat(tr.values[k][:, None], 5, axis=1))  # (D, G)
    cv_new = np.broadcast_to(st["new_plans_cv"].transpose("sample", ...).values[k].reshape(
        draws, -1), (draws, 5))[:, :, None]  # (D, G, 1)
    cv_stock = np.broadcast_to(st["ehcp_cv"].transpose("sample", ...).values[k].reshape(
        draws, -1), (draws, 5))[:, :, None]
    band = band_of_age()
    m = band_matrix()
    e_ref = const["escalation_ref"].transpose("age", "area").sel(area=areas).values  # (26, R)
    hazard = -np.log1p(-np.clip(const["exit_ref_specialist"].values, 1e-6, 1 - 1e-6))
    share = t["ehcp_age_share"].transpose("age", "area").values
    expo = t["exposure"].transpose("year", "age", "area").values
    last = np.flatnonzero(np.isfinite(expo).all(axis=(1, 2)))
    x = expo[last[-1]] if len(last) else np.zeros_like(share)
    s0 = t["ehcp"].sel(year=origin).transpose("age_group", "area").values
    stock = np.rint(s0[band] * share).astype(np.int64)[None].repeat(draws, 0)
    ref_year = int(post.attrs.get("reference_year", origin + 1))
    out_s = np.zeros((draws, horizon, 5, len(areas)))
    out_n = np.zeros_like(out_s)
    surv_p = np.exp(-kappa[:, band] * hazard[None, :, None])  # (D, 26, R)
    for h in range(1, horizon + 1):
        year = origin + h
        rate = theta[:, band] * np.exp(trend[:, band] * (year - ref_year))[:, :, None] * e_ref[None]
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
    ``(tier, age_group, area)``; what did not exist at the origin is left out: the provision
    plan, scenarios and the statutory pipeline (not scored).

    Returns ``ehcp`` (specialist-tier stock) and ``new_plans`` (escalations into the
    specialist tier) with dims ``(draw, year, age_group, area)``, as
    :func:`aggregate_forecast`.  ``progress(done, draws)`` is called after each draw.
    """
    c = dataclasses.replace(
        cfg.replace_run(start_year=origin, end_year=origin + horizon, draws=draws)
           .replace_outputs(by=("tier", "age_group", "area")),
        model=dataclasses.replace(cfg.model, posterior=str(path)), provision=None,
        scenarios=(), pipeline=dataclasses.replace(cfg.pipeline, enabled=False))
    plan = prepare(c)
    tick = None if progress is None else (lambda k: progress(k, draws))
    if progress is not None:
        progress(0, draws)  # the forecast's own clock starts here, not at calibration
    ds = plan.dataset(0, simulate_run(plan, 0, plan.draws, progress=tick), {})
    ds = ds.sel(year=slice(origin + 1, None), tier="specialist")
    return xr.Dataset(
        {"ehcp": ds["n_pupils"].astype(float).transpose("draw", "year", "age_group", "area"),
         "new_plans": ds["n_escalated"].astype(float).transpose("draw", "year", "age_group",
                                                                "area"),
         "param_draw": ds["param_draw"]},
        attrs={"method": "engine", "origin_year": origin})


def score_points(forecast: xr.Dataset, targets: xr.Dataset) -> pd.DataFrame:
    """One row per (variable, area, year) forecast with its observation and naive forecasts.

    Variables are summed over age bands.  Rows without a recorded value are dropped.
    """
    origin = int(forecast.attrs["origin_year"])
    years = forecast["year"].values
    horizon = len(years)
    rows = []
    for var in VARIABLES:
        sims = forecast[var].sum("age_group")  # (draw, year, area)
        obs_all = targets[var].sum("age_group", min_count=1)  # (year, area)
        for area in forecast["area"].values:
            hist = obs_all.sel(area=area, year=slice(None, origin)).dropna("year")
            yrs = hist["year"].values
            h = hist.values
            ok = len(h) >= 2 and np.all(np.diff(yrs) == 1) and yrs[-1] == origin
            lin = scores.naive_linear_trend(h, horizon) if ok else np.full(horizon, np.nan)
            gro = scores.naive_constant_growth(h, horizon) if ok and len(h) >= 3 \
                else np.full(horizon, np.nan)
            for j, y in enumerate(years):
                if y not in obs_all["year"].values:
                    continue
                obs = float(obs_all.sel(area=area, year=y))
                if not np.isfinite(obs):
                    continue
                x = sims.sel(area=area, year=y).values
                lo50, hi50 = scores.interval(x, 0.5)
                lo90, hi90 = scores.interval(x, 0.9)
                rows.append({
                    "variable": var, "area": str(area), "year": int(y), "lead": j + 1,
                    "observed": obs, "median": float(np.median(x)),
                    "lo50": float(lo50), "hi50": float(hi50), "lo90": float(lo90),
                    "hi90": float(hi90), "in50": bool(lo50 <= obs <= hi50),
                    "in90": bool(lo90 <= obs <= hi90), "crps": float(scores.crps_sample(x, obs)),
                    "naive_linear": float(lin[j]), "naive_growth": float(gro[j]),
                })
    return pd.DataFrame(rows)


def summarise(points: pd.DataFrame) -> pd.DataFrame:
    """Scores per (variable, area, method) and over all areas (``area = "all"``).

    Columns: ``variable``, ``area``, ``method`` (``simsend``, ``naive_linear``,
    ``naive_growth``), ``n``, ``coverage_50``, ``coverage_90``, ``crps`` (NaN for the naive
    point forecasts), ``mape``, ``bias`` (fractions).
    """
    rows = []
    for (var, area), grp in [*points.groupby(["variable", "area"]),
                             *(((v, "all"), g) for v, g in points.groupby("variable"))]:
        y = grp["observed"].values
        rows.append({"variable": var, "area": area, "method": "simsend", "n": len(grp),
                     "coverage_50": grp["in50"].mean(), "coverage_90": grp["in90"].mean(),
                     "crps": grp["crps"].mean(), "mape": scores.mape(grp["median"].values, y),
                     "bias": scores.bias(grp["median"].values, y)})
        for method in ("naive_linear", "naive_growth"):
            p = grp[method].values
            rows.append({"variable": var, "area": area, "method": method, "n": len(grp),
                         "coverage_50": np.nan, "coverage_90": np.nan, "crps": np.nan,
                         "mape": scores.mape(p, y), "bias": scores.bias(p, y)})
    return pd.DataFrame(rows)


def backtest(config: _config.SimConfig | str | Path, origin: int, horizon: int = 4,
             draws: int = 200, *, targets: xr.Dataset | None = None, method: str = "auto",
             calib_draws: int = 2000, tune: int = 1000, chains: int = 4,
             allow_failed_diagnostics: bool = False, random_seed: int | None = None,
             prior: PriorConfig | None = None, out: str | Path | None = None,
             progress=None, progressbar: bool = False) -> pd.DataFrame:
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
        All recorded targets (default: from the data layer); those after ``origin`` are used
        only for scoring.
    method : {"auto", "engine", "aggregate"}
        Forecast path; ``auto`` uses the engine when the data layer can build the origin-year
        baseline (and no ``targets`` were passed), otherwise the aggregate model.
    calib_draws, tune, chains, allow_failed_diagnostics, random_seed, prior
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
        :func:`summarise`'s table; ``attrs["points"]`` holds :func:`score_points`' rows and
        ``attrs["method"]`` the forecast path used.

    Examples
    --------
    >>> df = backtest("configs/base.toml", origin=2018, horizon=4)  # doctest: +SKIP
    >>> df.query("area == 'all' and variable == 'ehcp'")  # doctest: +SKIP

    """
    cfg = config if isinstance(config, _config.SimConfig) else _config.load(config)
    if targets is None:
        targets, _ = load_targets(cfg, origin=None)
        if method == "auto":
            method = "engine"
    elif method == "auto":
        method = "aggregate"
    if int(targets["year"].values[-1]) <= origin:
        raise ValueError(f"no recorded year after origin {origin} to score against")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(out) if out is not None else Path(tmp) / f"backtest_{origin}.nc"
        fit_targets = restrict(targets, origin=origin) if method == "aggregate" else None
        LOG.info("backtest origin %d: calibrating on census years up to %d", origin, origin)
        path = calibrate(cfg, path, draws=calib_draws, tune=tune, chains=chains,
                         allow_failed_diagnostics=allow_failed_diagnostics, origin=origin,
                         targets=fit_targets, random_seed=random_seed, prior=prior,
                         progressbar=progressbar)
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
    summary.attrs["points"] = points
    summary.attrs["method"] = method
    return summary


def rolling_backtest(config: _config.SimConfig | str | Path, origins, horizon: int = 4,
                     draws: int = 200, **kwargs) -> pd.DataFrame:
    """:func:`backtest` at each of ``origins``; one table with an ``origin`` column.

    ``attrs["points"]`` holds every origin's scored points (with ``origin``), and the
    summary rows with ``origin = "all"`` pool the points of every origin.
    """
    tables, points = [], []
    for origin in origins:
        t = backtest(config, int(origin), horizon, draws, **kwargs)
        p = t.attrs["points"].assign(origin=int(origin))
        tables.append(t.assign(origin=str(origin)))
        points.append(p)
    pts = pd.concat(points, ignore_index=True)
    out = [*tables]
    if len(tables) > 1:
        out.append(summarise(pts).assign(origin="all"))
    res = pd.concat(out, ignore_index=True)
    res = res[["origin", *[c for c in res.columns if c != "origin"]]]
    res.attrs["points"] = pts
    res.attrs["method"] = tables[0].attrs.get("method")
    return res


def plot_backtest(points: pd.DataFrame, path: str | Path, targets: xr.Dataset | None = None,
                  title: str = "simsend backtest") -> Path:
    """Chart the scored forecasts against what was recorded; written to ``path`` (PNG/SVG).

    One panel per variable.  A single area: the recorded series (black line and dots), each
    origin's median (dashed) with its 50 % and 90 % intervals (grey bands) and the two naive
    forecasts (dotted, dash-dot).  Several areas: recorded against forecast median per
    area and year on log axes, with the 90 % interval as a vertical bar, against the
    identity line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"ehcp": "EHC plans (specialist tier), January",
             "new_plans": "new EHC plans in the year"}
    variables = [v for v in VARIABLES if v in set(points["variable"])]
    fig, axes = plt.subplots(1, len(variables), figsize=(6.2 * len(variables), 4.6),
                             squeeze=False)
    single = points["area"].nunique() == 1
    if "origin" not in points:
        points = points.assign(origin=points["year"] - points["lead"])
    for ax, var in zip(axes[0], variables, strict=True):
        p = points[points["variable"] == var]
        if single:
            if targets is not None:
                obs = targets[var].sum("age_group", min_count=1).sel(area=p["area"].iloc[0])
                obs = obs.dropna("year")
                ax.plot(obs["year"], obs, "k-o", ms=4, lw=1.2, label="recorded", zorder=5)
            for i, (origin, g) in enumerate(p.groupby("origin")):
                g = g.sort_values("year")
                lab = i == 0
                ax.fill_between(g["year"], g["lo90"], g["hi90"], color="0.85",
                                label="90% interval" if lab else None)
                ax.fill_between(g["year"], g["lo50"], g["hi50"], color="0.65",
                                label="50% interval" if lab else None)
                ax.plot(g["year"], g["median"], "k--", lw=1.2,
                        label="simsend median" if lab else None)
                ax.plot(g["year"], g["naive_linear"], "k:", lw=1.2,
                        label="naive: linear trend" if lab else None)
                ax.plot(g["year"], g["naive_growth"], "k-.", lw=1.0,
                        label="naive: 3-year growth" if lab else None)
                ax.axvline(origin, color="0.5", lw=0.6)
            ax.set_xlabel("census year (forecast origins: thin vertical lines)")
        else:
            ax.errorbar(p["observed"], p["median"],
                        yerr=[p["median"] - p["lo90"], p["hi90"] - p["median"]],
                        fmt="o", ms=2.5, color="k", ecolor="0.6", elinewidth=0.6,
                        label="area x year: median, 90% interval")
            lo = max(1.0, float(min(p["observed"].min(), p["lo90"].min())))
            hi = float(max(p["observed"].max(), p["hi90"].max()))
            ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="forecast = recorded")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("recorded")
            ax.set_ylabel("forecast")
        ax.set_title(names.get(var, var), fontsize=11)
        ax.set_ylabel("children" if single else "forecast (children)")
        ax.legend(fontsize=8, frameon=False)
        ax.grid(True, color="0.9", lw=0.5)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
