r"""Statutory pipeline rates estimated per council: hierarchical binomial models in PyMC.

Four rates, each fitted alone to the counts of every council and calendar year from
``first_year`` to the origin:

========================  ==========================================  ===========================
rate                      successes / trials                          years (builtin extract)
========================  ==========================================  ===========================
``p_refuse``              requests refused / initial requests         2019-2024
``p_not_issue``           assessed, no plan / (no plan + plan issued)  2019-2024
``p_within_20_weeks``     plans issued within 20 weeks / plans issued  2022-2024 (first published)
``p_appeal``              tribunal appeals / appealable decisions      2019-2024
========================  ==========================================  ===========================

Model (logit scale, council :math:`c`, year :math:`t`; the first year's walk is 0):

.. math::

    \eta_{ct} = \mu + a_c + w_t, \quad a \sim \mathrm{ZeroSumNormal}(\sigma_c), \quad
    w_t = w_{t-1} + \sigma_w \epsilon_t, \qquad
    k_{ct} \sim \mathrm{BetaBinomial}(n_{ct}, \pi_{ct}\kappa, (1 - \pi_{ct})\kappa),
    \quad \pi_{ct} = \mathrm{logit}^{-1}(\eta_{ct}),

i.e. a level, council effects pooled with an estimated sd (summing to zero, so the level is
the mean council's logit in the first year), a random walk in years common to
councils, and the per-council-year over-dispersion of a beta rate of concentration
:math:`\kappa` (integrated out).  Priors: :math:`\mu \sim N(\mathrm{logit}\,\bar p, 2)`
(:math:`\bar p` the pooled rate), :math:`\sigma_c \sim N^+(1)`, :math:`\sigma_w \sim N^+(0.5)`,
:math:`\log\kappa \sim N(5, 2)`.

**First year.**  2019 by default: the window of the SEN2 2025 release (2019-2021 equal in both
releases); 2014-2015 are the transition from statements (requests are not published before
2016), and the walk absorbs the series break DfE marks at calendar 2022 (person-level flows).

**Forecast** (what the artefact holds): for each of ``n_out`` posterior draws, the walk carried
one step, :math:`w_{T+1} = w_T + \sigma_w \epsilon`, then each council's rate for year
:math:`T + 1` drawn from :math:`\mathrm{Beta}(\pi\kappa, (1 - \pi)\kappa)`, so parameter, trend
and council-year uncertainty all reach the engine.  England and the regions are the sums:
their councils' rates weighted by the councils' trials of the last year.

**Appeals** (no split of appeals by type is published): ``p_appeal_refusal`` and
``p_appeal_not_issue`` are the council's appeal rate per appealable decision :math:`q`;
``p_appeal_content`` (appeals against plans, per plan issued) is :math:`q` times the council's
ratio of its other appealable decisions (EHC plans held plus plans ceased because needs are
met) to its plans issued in the last year, capped at 1 (ASSUMPTION: every kind of appealable
decision is appealed at the same rate, and plans held stay in that ratio to plans issued), so
that expected appeals equal :math:`q` times all appealable decisions in the last year.

PyMC is imported here (the calibration layer); :mod:`simsend.rates.pipeline` reads the
artefact with xarray alone.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import resource
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy.special import expit, logit

from simsend import config as _config
from simsend.calibration.fit import calibration_versions, diagnose, sample
from simsend.config.toml import ConfigError
from simsend.data.baseline import builtin_dir, builtin_paths
from simsend.data.errors import DataError
from simsend.data.tidy import read_tidy
from simsend.data.tribunals import read_tribunals, tribunals_path
from simsend.io import atomic_write, file_sha256

LOG = logging.getLogger(__name__)

RATES = ("p_refuse", "p_not_issue", "p_within_20_weeks", "p_appeal")
"""Rates fitted, each by its own model."""
FIRST_YEAR = 2019
"""Default first calendar year fitted (see the module docstring)."""
ENGLAND = "E92000001"
_MISSING_FLAGS = ("not_applicable", "not_available", "recording_error", "suppressed")
_FLOWS = ("requests", "requests_refused", "assessed_no_plan", "assessed_plan_issued",
          "plans_issued", "plans_issued_within_20_weeks")
N_SAVED = 300
"""Posterior draws saved in the artefact (float32: about 0.2 MB per rate for 170 areas)."""
TARGET_ACCEPT = 0.99
"""NUTS target acceptance rate."""
QUANTILES = (0.05, 0.5, 0.95)
"""Quantiles of the fitted rates by year kept in the artefact (for checking against data)."""


def _grid(df: pd.DataFrame, value: str, years: Sequence[int], areas: Sequence[str]
          ) -> np.ndarray:
    """``(year, area)`` float array of ``value`` (NaN where not given)."""
    g = df.pivot_table(index="year", columns="area", values=value, aggfunc="sum",
                       dropna=False, min_count=1)
    return g.reindex(index=list(years), columns=list(areas)).to_numpy(np.float64)


def pipeline_counts(flows: pd.DataFrame, tribunals: pd.DataFrame, areas: Sequence[str],
                    years: Sequence[int]) -> xr.Dataset:
    """Successes and trials of each rate per year and council.

    Parameters
    ----------
    flows : DataFrame
        Tidy flows (``year, area, flow, age_group, need, placement, count, flag``); the
        totals (``all`` breakdowns) of :data:`_FLOWS` are used.  Flagged cells (not
        published, not applicable, recording errors) are missing, never 0.
    tribunals : DataFrame
        :func:`simsend.data.tribunals.read_tribunals`.
    areas, years : sequence
        Councils (GSS codes) and calendar years.

    Returns
    -------
    xarray.Dataset
        ``k_<rate>``, ``n_<rate>`` (``year, area``; NaN = missing; a cell with more successes
        than trials, or no trials, is missing in both) and the last year's ``issued``,
        ``refused``, ``not_issued`` and ``decisions`` per area (for the appeal mapping).

    """
    f = flows
    for c in ("age_group", "need", "placement"):
        if c in f:
            f = f[f[c].astype(str) == "all"]
    if "age" in f:
        f = f[f["age"].astype(str) == "all"]
    f = f[f["flow"].isin(_FLOWS)].copy()
    f.loc[f["flag"].astype(str).isin(_MISSING_FLAGS), "count"] = np.nan
    v = {name: _grid(f[f["flow"] == name], "count", years, areas) for name in _FLOWS}
    a = _grid(tribunals, "appeals", years, areas)
    d = _grid(tribunals, "appealable_decisions", years, areas)
    pairs = {"p_refuse": (v["requests_refused"], v["requests"]),
             "p_not_issue": (v["assessed_no_plan"],
                             v["assessed_no_plan"] + v["assessed_plan_issued"]),
             "p_within_20_weeks": (v["plans_issued_within_20_weeks"], v["plans_issued"]),
             "p_appeal": (a, d)}
    out = {}
    for r, (k, n) in pairs.items():
        bad = ~(k <= n) | ~(n > 0)  # NaN either side, no trials, or more successes than trials
        out[f"k_{r}"] = (("year", "area"), np.where(bad, np.nan, k))
        out[f"n_{r}"] = (("year", "area"), np.where(bad, np.nan, n))
    out["issued"] = ("area", v["assessed_plan_issued"][-1])
    out["refused"] = ("area", v["requests_refused"][-1])
    out["not_issued"] = ("area", v["assessed_no_plan"][-1])
    out["decisions"] = ("area", d[-1])
    return xr.Dataset(out, coords={"year": list(years), "area": list(areas)})


def build_model(k: np.ndarray, n: np.ndarray, areas: Sequence[str],
                years: Sequence[int]) -> pm.Model:
    """Hierarchical beta-binomial model of one rate (see the module docstring).

    Parameters
    ----------
    k, n : float arrays (year, area)
        Successes and trials; NaN cells are left out of the likelihood.
    areas, years : sequence
        Coordinates (a council with no data keeps its prior effect).

    Returns
    -------
    pymc.Model
        Free variables ``level``, ``sd_area``, ``area_effect`` (zero-sum), ``sd_walk``,
        ``z_walk``, ``log_conc``; deterministic ``walk`` (0 in the first year).

    """
    ok = np.isfinite(k) & np.isfinite(n)
    if not ok.any():
        raise ValueError("no counts to fit")
    yi, ai = np.nonzero(ok)
    pooled = np.clip(k[ok].sum() / n[ok].sum(), 1e-4, 1 - 1e-4)
    coords = {"area": list(areas), "year": list(years), "step": list(years[1:])}
    with pm.Model(coords=coords) as model:
        # Priors
        # Council effects centred (each council has hundreds of trials a year, so the data
        # pin them: the non-centred form gave divergences) and summing to zero (else the
        # level trades off against their mean and mixes slowly); the walk non-centred (a
        # handful of steps of sd about 0.05-0.2 barely inform its sd: the centred form gave
        # divergences).
        level = pm.Normal("level", float(logit(pooled)), 2.0)
        sd_area = pm.HalfNormal("sd_area", 1.0)
        effect = pm.ZeroSumNormal("area_effect", sigma=sd_area, dims="area")
        sd_walk = pm.HalfNormal("sd_walk", 0.5)
        z_walk = pm.Normal("z_walk", 0.0, 1.0, dims="step")
        walk = pm.Deterministic("walk", pt.concatenate([pt.zeros(1),
                                                        pt.cumsum(sd_walk * z_walk)]),
                                dims="year")
        log_conc = pm.Normal("log_conc", 5.0, 2.0)
        # Likelihood
        p = pm.math.invlogit(level + effect[ai] + walk[yi])
        conc = pm.math.exp(log_conc)
        pm.BetaBinomial("obs", n=n[ok].astype(np.int64), alpha=p * conc,
                        beta=(1.0 - p) * conc, observed=k[ok].astype(np.int64))
    return model


def fit_rate(k: np.ndarray, n: np.ndarray, areas: Sequence[str], years: Sequence[int], *,
             draws: int, tune: int, chains: int, seed: int) -> tuple:
    """Sample :func:`build_model` with NUTS; returns ``(idata, wall seconds, diagnostics)``.

    Diagnostics (:func:`simsend.calibration.fit.diagnose`) are of the free variables.
    """
    idata, wall = sample(build_model(k, n, areas, years), draws=draws, tune=tune,
                         chains=chains, random_seed=seed, target_accept=TARGET_ACCEPT)
    return idata, wall, diagnose(idata, ["level", "sd_area", "area_effect", "sd_walk",
                                         "z_walk", "log_conc"])


def loglik_reference(k, n, level, effect, walk, conc) -> float:
    """NumPy beta-binomial log-likelihood of the counts (the model's, for tests)."""
    from scipy.special import betaln, gammaln

    ok = np.isfinite(k) & np.isfinite(n)
    yi, ai = np.nonzero(ok)
    p = expit(level + effect[ai] + walk[yi])
    kk, nn = k[ok], n[ok]
    a, b = p * conc, (1.0 - p) * conc
    return float(np.sum(gammaln(nn + 1) - gammaln(kk + 1) - gammaln(nn - kk + 1)
                        + betaln(kk + a, nn - kk + b) - betaln(a, b)))


def _flat(idata, name: str) -> np.ndarray:
    """Posterior samples of ``name`` with chains and draws stacked first."""
    v = idata.posterior[name].values
    return v.reshape(-1, *v.shape[2:])


def forecast_rate(idata, pick: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r"""Each council's rate in the year after the data, ``(len(pick), area)``.

    The walk is carried one step (:math:`w_T + \sigma_w \epsilon`) and the council-year
    beta is drawn around the council's mean rate.
    """
    level, eff = _flat(idata, "level")[pick], _flat(idata, "area_effect")[pick]
    walk, sdw = _flat(idata, "walk")[pick, -1], _flat(idata, "sd_walk")[pick]
    conc = np.exp(_flat(idata, "log_conc")[pick])
    step = walk + sdw * rng.standard_normal(len(pick))
    mean = expit(level[:, None] + eff + step[:, None])
    return rng.beta(mean * conc[:, None], (1.0 - mean) * conc[:, None])


def fitted_by_year(idata, pick: np.ndarray) -> np.ndarray:
    """Mean rate of each council by year, ``(len(pick), year, area)`` (no council-year beta)."""
    level, eff = _flat(idata, "level")[pick], _flat(idata, "area_effect")[pick]
    walk = _flat(idata, "walk")[pick]
    return expit(level[:, None, None] + walk[:, :, None] + eff[:, None, :])


def _weights(n: np.ndarray) -> np.ndarray:
    """Each council's last published trials ``(area,)`` (0 where it has none)."""
    w = np.zeros(n.shape[1])
    for t in range(n.shape[0]):
        w = np.where(np.isfinite(n[t]), n[t], w)
    return w


def _groups(areas: Sequence[str], table: pd.DataFrame) -> dict[str, np.ndarray]:
    """England and each region with a member mask over ``areas`` (the sums' areas)."""
    region = table.set_index("code")["region_code"].reindex(list(areas)).to_numpy()
    out = {ENGLAND: np.ones(len(areas), bool)}
    for r in sorted({str(x) for x in region if isinstance(x, str) and x}):
        out[r] = region == r
    return out


def _summed(per_area: np.ndarray, weights: np.ndarray, groups: dict) -> np.ndarray:
    """Trial-weighted means over each group's councils: ``(..., len(groups))``."""
    cols = []
    for mask in groups.values():
        w = weights * mask
        cols.append((per_area * w).sum(-1) / max(w.sum(), 1e-300))
    return np.stack(cols, -1)


def _appeal_ratio(counts: xr.Dataset, groups: dict) -> np.ndarray:
    """Other appealable decisions per plan issued, councils then groups (NaN -> England's)."""
    d, f, ni, i = (counts[v].values for v in ("decisions", "refused", "not_issued", "issued"))
    other = d - f - ni
    r = np.where((i > 0) & (other >= 0), other / np.where(i > 0, i, 1.0), np.nan)
    ok = np.isfinite(r)
    grp = [np.nansum(np.where(m & ok, other, 0)) / max(np.nansum(np.where(m & ok, i, 0)), 1.0)
           for m in groups.values()]
    eng = grp[0]
    return np.concatenate([np.where(ok, r, eng), grp])


def _area_table() -> pd.DataFrame:
    return pd.read_csv(builtin_dir() / "areas.csv", dtype=str, keep_default_na=False)


def load_counts(origin: int | None = None, first_year: int = FIRST_YEAR
                ) -> tuple[xr.Dataset, dict]:
    """Return the counts of the shipped extract for current councils, ``first_year`` to ``origin``.

    Returns the counts (:func:`pipeline_counts`) and the data hashes.
    """
    paths = builtin_paths()
    last = int(json.loads((builtin_dir() / "PROVENANCE.json").read_text())["last_flow_year"])
    origin = last if origin is None else int(origin)
    if not first_year < origin <= last:  # checked before the slow read of the flows
        raise ConfigError(f"origin {origin}: expected a calendar year after the first year "
                          f"fitted ({first_year}) and up to {last}, the last the extract holds")
    flows, report = read_tidy(paths["flows"], "flows")
    report.raise_errors(paths["flows"].name)
    trib = read_tribunals()
    t = _area_table()
    areas = t.loc[(t["level"] == "la") & (t["status"] == "current"), "code"].tolist()
    counts = pipeline_counts(flows, trib, areas, list(range(first_year, origin + 1)))
    hashes = {"flows.csv.gz": file_sha256(paths["flows"]),
              "tribunals.csv": file_sha256(tribunals_path()),
              "areas.csv": file_sha256(builtin_dir() / "areas.csv")}
    return counts, hashes


def fit_rates(counts: xr.Dataset, *, draws: int = 300, tune: int = 500, chains: int = 2,
              seed: int = 0, n_out: int = N_SAVED) -> xr.Dataset:
    """Fit every rate of ``counts`` and return the forecast draws and fit summaries.

    Parameters
    ----------
    counts : xarray.Dataset
        :func:`pipeline_counts` (rates whose ``k_`` variable is absent are skipped).
    draws, tune, chains, seed
        NUTS settings (PyMC; target acceptance :data:`TARGET_ACCEPT`).
    n_out : int
        Posterior draws kept (taken at random, without replacement while there are enough).

    Returns
    -------
    xarray.Dataset
        ``<rate>`` ``(draw, area)`` float32 rates of the year after the data (councils, then
        England and the regions as their sums); ``<rate>_fit`` ``(quantile, year, area)`` mean
        rates by year; ``<rate>_obs`` ``(year, area)`` recorded rates; per-rate diagnostics,
        hyperparameter summaries and wall times in ``attrs["fits"]``.

    """
    areas = [str(a) for a in counts["area"].values]
    years = [int(y) for y in counts["year"].values]
    groups = _groups(areas, _area_table()) if ENGLAND not in areas else {ENGLAND: np.ones(
        len(areas), bool)}
    names = areas + list(groups)
    rng = np.random.default_rng(seed)
    out, fits = {}, {}
    for r in RATES:
        if f"k_{r}" not in counts:
            continue
        k, n = counts[f"k_{r}"].values, counts[f"n_{r}"].values
        # the walk starts at the rate's first published year (timeliness: 2022), so that
        # the level is a year with data and no step is drawn from the prior alone
        t1 = int(np.argmax(np.isfinite(k).any(1)))
        kt, nt, yt = k[t1:], n[t1:], years[t1:]
        t0 = time.perf_counter()
        idata, wall, diag = fit_rate(kt, nt, areas, yt, draws=draws, tune=tune, chains=chains,
                                     seed=int(seed) + RATES.index(r))
        total = chains * draws
        pick = rng.permutation(total)[:n_out] if n_out <= total else rng.integers(0, total,
                                                                                  n_out)
        w = _weights(nt)
        fc = forecast_rate(idata, pick, rng)
        out[r] = (("draw", "area"), np.concatenate([fc, _summed(fc, w, groups)], -1))
        fy = fitted_by_year(idata, pick)
        wy = np.where(np.isfinite(nt), nt, 0.0)
        sums = np.stack([_summed(fy[:, t], wy[t], groups) for t in range(len(yt))], 1)
        fit = np.full((len(QUANTILES), len(years), len(names)), np.nan)
        fit[:, t1:] = np.quantile(np.concatenate([fy, sums], -1), QUANTILES, axis=0)
        out[f"{r}_fit"] = (("quantile", "year", "area"), fit)
        kg = np.stack([np.nansum(np.where(m, k, 0), 1) for m in groups.values()], -1)
        ng = np.stack([np.nansum(np.where(m & np.isfinite(k), n, 0), 1)
                       for m in groups.values()], -1)
        obs = np.concatenate([k / n, np.where(ng > 0, kg / np.where(ng > 0, ng, 1), np.nan)], -1)
        out[f"{r}_obs"] = (("year", "area"), obs)
        post = idata.posterior
        fits[r] = {"diagnostics": diag, "sampling_wall_time_s": round(wall, 2),
                   "fit_wall_time_s": round(time.perf_counter() - t0, 2),
                   "n_cells": int(np.isfinite(k).sum()),
                   "years": [int(y) for y in yt],
                   **{v: {"median": float(np.median(post[v])),
                          "q05": float(np.quantile(post[v], 0.05)),
                          "q95": float(np.quantile(post[v], 0.95))}
                      for v in ("level", "sd_area", "sd_walk", "log_conc")}}
        LOG.info("%s: max r-hat %.3f, min bulk ESS %.0f, %d divergent, %.1f s", r,
                 diag["max_rhat"], diag["min_ess_bulk"], diag["n_divergent"], wall)
    ds = xr.Dataset(out, coords={"draw": np.arange(n_out), "area": names, "year": years,
                                 "quantile": list(QUANTILES)})
    if "p_appeal" in ds:
        q = ds["p_appeal"]
        ds["p_appeal_refusal"] = q
        ds["p_appeal_not_issue"] = q
        ratio = xr.DataArray(_appeal_ratio(counts, groups), dims="area")
        ds["p_appeal_content"] = (q * ratio).clip(0.0, 1.0)
        ds["appeal_content_ratio"] = ratio
    ds.attrs["fits"] = fits
    return ds


def calibrate_pipeline(config: _config.SimConfig | str | Path,
                       out: str | Path | None = None, *,
                       origin: int | None = None, first_year: int = FIRST_YEAR,
                       draws: int = 1000, tune: int = 1000, chains: int = 2,
                       seed: int | None = None) -> Path:
    """Fit the pipeline's rates of every council and write the artefact.

    The Python twin of ``simsend calibrate-pipeline``.

    Parameters
    ----------
    config : SimConfig or path
        Its ``[data] source`` must be ``builtin`` (the counts are the shipped extract's);
        ``run.seed`` is the default seed.
    out : path, optional
        NetCDF file written (atomically); default ``models/pipeline_<origin + 1>.nc``.
    origin : int, optional
        Last calendar year fitted (default: the last in the extract, 2024).
    first_year : int
        First calendar year fitted (default :data:`FIRST_YEAR`).
    draws, tune, chains, seed
        Sampler settings (NUTS); :data:`N_SAVED` draws are saved.

    Returns
    -------
    Path
        The artefact: ``(draw, area)`` float32 rates named as in
        :data:`simsend.config.statutory.PIPELINE_RATES` for calendar ``origin + 1``.

    """
    cfg = config if isinstance(config, _config.SimConfig) else _config.load(config)
    if cfg.data.source != "builtin":
        raise ConfigError(f"{cfg.source_path}: [data.source] calibrate-pipeline fits the "
                          f"shipped extract: expected 'builtin', got {cfg.data.source!r}")
    seed = cfg.run.seed if seed is None else int(seed)
    t_start = time.perf_counter()
    try:
        counts, hashes = load_counts(origin, first_year)
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    n_out = min(N_SAVED, draws * chains)
    ds = fit_rates(counts, draws=draws, tune=tune, chains=chains, seed=seed, n_out=n_out)
    # peak resident memory of this process and of the sampler's worker processes (Linux: KiB)
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    years = [int(y) for y in counts["year"].values]
    out = Path("models") / f"pipeline_{years[-1] + 1}.nc" if out is None else out
    for v in ds.data_vars:
        ds[v] = ds[v].astype(np.float32)
    fits = ds.attrs.pop("fits")
    ds.attrs = {
        "title": "simsend statutory pipeline rates per council (posterior draws)",
        "model": "pipeline_betabinomial_v1",
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "config_path": cfg.source_path, "config_sha256": cfg.sha256,
        "data_sha256": json.dumps(hashes),
        "first_year": years[0], "origin_year": years[-1], "rate_year": years[-1] + 1,
        "fits": json.dumps(fits),
        "max_rhat": max(f["diagnostics"]["max_rhat"] for f in fits.values()),
        "min_ess_bulk": min(f["diagnostics"]["min_ess_bulk"] for f in fits.values()),
        "n_divergent": sum(f["diagnostics"]["n_divergent"] for f in fits.values()),
        "sampler": "pymc NUTS", "draws": draws, "tune": tune, "chains": chains,
        "random_seed": seed, "n_draws_saved": int(n_out), "target_accept": TARGET_ACCEPT,
        "versions": json.dumps(calibration_versions()),
        "wall_time_s": round(time.perf_counter() - t_start, 2),
        "peak_memory_mib": round(peak / 1024, 1),
        "appeal_mapping": "p_appeal_refusal = p_appeal_not_issue = p_appeal (appeals per "
                          "appealable decision); p_appeal_content = p_appeal x "
                          "appeal_content_ratio (plans held + ceased needs met per plan "
                          "issued, last year), capped at 1 (ASSUMPTION)",
        "england_and_regions": "trial-weighted means of their councils' rates (last year's "
                               "trials)",
    }
    enc = {v: {"zlib": True, "complevel": 6, "shuffle": True} for v in ds.data_vars}
    return atomic_write(out, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf", encoding=enc))
