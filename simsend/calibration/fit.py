"""Run the sampler, gate on convergence diagnostics, and save the posterior as a model artefact.

The artefact is an ArviZ InferenceData NetCDF file with groups ``posterior`` (dims ``chain``,
``draw``, ``age_group``, ``area``), ``sample_stats``, ``observed_data`` (the targets, with the
engine's dims ``year``, ``age_group``, ``area``) and ``constant_data`` (reference rates and
likelihood masks).  Provenance lives in the ``posterior`` group's attrs: config TOML and
SHA-256, data provenance and file hashes, diagnostics, package versions, sampler, wall time
and origin year.

Diagnostics gate: the artefact is written only if max r-hat <= 1.01, min bulk ESS >=
:func:`ess_threshold` and there are no divergent transitions.  Otherwise
:class:`CalibrationError` is raised with the numbers, unless ``allow_failed_diagnostics``
is set, which is then recorded in the attrs.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import time
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from simsend import config as _config
from simsend._version import __version__
from simsend.calibration.exits import sample_share
from simsend.calibration.model import (
    PriorConfig,
    build_identification_model,
    build_model,
    constants,
    has_sen_support,
    identification_scaled,
)
from simsend.calibration.targets import restrict, targets_from_baseline
from simsend.data.configured import load_config_baseline
from simsend.io import atomic_write

LOG = logging.getLogger("simsend")

RHAT_MAX = 1.01
"""Largest acceptable rank-normalised split r-hat."""
ESS_MIN = 400.0
"""Smallest acceptable bulk ESS (see :func:`ess_threshold`)."""

MODEL_NAME = "simsend.calibration.model:stock_flow_v1"


ENGINE_VARIABLES = (
    "escalation_multiplier", "exit_multiplier", "escalation_trend", "escalation_trend_area",
    "escalation_innovation_sd", "escalation_noise_sd", "identification_multiplier",
    "identification_trend_area", "identification_innovation_sd", "deescalation_share",
    "ehcp_age_share", "escalation_trend_ref", "escalation_damping", "identification_trend_ref",
    "identification_damping", "new_plans_cv", "ehcp_cv", "sen_support_cv",
    "escalation_common_sd", "identification_common_sd", "identification_drift",
    "escalation_age_effect")
"""Posterior variables :class:`~simsend.rates.posterior.PosteriorParameters` reads."""


SLIM_DRAWS = 400
"""A slim artefact keeps about this many posterior draws (every k-th of each chain)."""


def slim_posterior(posterior: xr.Dataset) -> xr.Dataset:
    """Keep what a forecast reads: :data:`ENGINE_VARIABLES` as float32, every k-th draw.

    A trend per area (``*_trend_area``) is left out where its step at the reference year
    (``*_trend_ref``), which the engine reads instead, is there.

    ``k`` is chosen so that about :data:`SLIM_DRAWS` draws remain (all when fewer).
    """
    # The engine reads a trend's step at the reference year where the posterior has it, and
    # the trend itself only from older artefacts (1 MB of every council's file).
    superseded = {f"{x}_trend_area" for x in ("escalation", "identification")
                  if f"{x}_trend_ref" in posterior}
    out = posterior[[v for v in ENGINE_VARIABLES
                     if v in posterior and v not in superseded]].astype(np.float32)
    step = max(1, out.sizes["chain"] * out.sizes["draw"] // SLIM_DRAWS)
    return out.isel(draw=slice(None, None, step))


class CalibrationError(RuntimeError):
    """The sampler's diagnostics failed the gate; ``.diagnostics`` holds the numbers."""

    def __init__(self, message: str, diagnostics: dict):
        super().__init__(message)
        self.diagnostics = diagnostics


def ess_threshold(draws: int, chains: int) -> float:
    """Minimum bulk ESS required: ``min(400, 0.4 * draws * chains)``.

    400 is the usual absolute floor (100 per chain for 4 chains); runs with fewer than
    1,000 retained draws in total are held to the same 40 % relative efficiency instead.

    Examples
    --------
    >>> ess_threshold(500, 2), ess_threshold(200, 2)
    (400.0, 160.0)

    """
    return float(min(ESS_MIN, 0.4 * draws * chains))


def diagnose(idata: az.InferenceData, var_names: list[str] | None = None) -> dict:
    """Convergence numbers of a fit: max r-hat, min bulk ESS, divergences.

    Every element of every posterior variable (deterministics included) counts; elements
    that are constant over all draws (no r-hat defined) are skipped, including those that vary
    only by floating-point rounding (sd below 1e-10 of their magnitude: an empty age band's
    within-band shares, for one, are 1/width in every draw up to the last bit).

    Returns
    -------
    dict
        ``max_rhat``, ``max_rhat_var``, ``min_ess_bulk``, ``min_ess_bulk_var``,
        ``min_ess_tail``, ``n_divergent``, ``chains``, ``draws``.

    """
    post = idata.posterior
    names = var_names or list(post.data_vars)
    rh = az.rhat(post[names])
    ess = az.ess(post[names], method="bulk")
    ess_t = az.ess(post[names], method="tail")
    worst_r, worst_rv, worst_e, worst_ev, worst_t = -np.inf, "", np.inf, "", np.inf
    for v in names:
        sd = np.asarray(post[v].std(("chain", "draw")).values)
        size = np.abs(np.asarray(post[v].mean(("chain", "draw")).values))
        keep = sd > 1e-10 * np.maximum(size, np.finfo(float).tiny)
        if not keep.any():
            continue
        r = np.asarray(rh[v].values)[keep]
        e = np.asarray(ess[v].values)[keep]
        et = np.asarray(ess_t[v].values)[keep]
        r = np.where(np.isfinite(r), r, np.inf)
        if r.max() > worst_r:
            worst_r, worst_rv = float(r.max()), v
        if np.nanmin(e) < worst_e:
            worst_e, worst_ev = float(np.nanmin(e)), v
        worst_t = min(worst_t, float(np.nanmin(et)))
    stats = idata.sample_stats if "sample_stats" in idata.groups() else xr.Dataset()
    n_div = int(stats["diverging"].sum()) if "diverging" in stats else 0
    return {"max_rhat": worst_r, "max_rhat_var": worst_rv, "min_ess_bulk": worst_e,
            "min_ess_bulk_var": worst_ev, "min_ess_tail": worst_t, "n_divergent": n_div,
            "chains": int(post.sizes["chain"]), "draws": int(post.sizes["draw"])}


def failures(diag: dict, ess_min: float | None = None, rhat_max: float = RHAT_MAX) -> list[str]:
    """List the gate's failed checks (empty when the fit passes)."""
    ess_min = ess_threshold(diag["draws"], diag["chains"]) if ess_min is None else ess_min
    out = []
    if not diag["max_rhat"] <= rhat_max:
        out.append(f"max r-hat {diag['max_rhat']:.4f} > {rhat_max} ({diag['max_rhat_var']})")
    if not diag["min_ess_bulk"] >= ess_min:
        out.append(f"min bulk ESS {diag['min_ess_bulk']:.0f} < {ess_min:.0f} "
                   f"({diag['min_ess_bulk_var']})")
    if diag["n_divergent"] > 0:
        out.append(f"{diag['n_divergent']} divergent transitions")
    return out


def gate(idata: az.InferenceData, allow_failed_diagnostics: bool = False) -> dict:
    """Diagnose ``idata`` and raise :class:`CalibrationError` if it fails (unless allowed).

    Returns
    -------
    dict
        :func:`diagnose`'s numbers plus ``ess_threshold``, ``rhat_threshold``, ``passed``
        and ``failures``.

    """
    diag = diagnose(idata)
    diag["ess_threshold"] = ess_threshold(diag["draws"], diag["chains"])
    diag["rhat_threshold"] = RHAT_MAX
    fails = failures(diag)
    diag["passed"] = not fails
    diag["failures"] = fails
    if fails and not allow_failed_diagnostics:
        raise CalibrationError("calibration failed its diagnostics: " + "; ".join(fails)
                               + " (more draws/tune, a better-identified model, or "
                                 "allow_failed_diagnostics=True to keep it anyway)", diag)
    return diag


def sample(model: pm.Model, *, draws: int = 500, tune: int = 500, chains: int = 2,
           random_seed: int | None = None, sampler: str = "pymc", target_accept: float = 0.95,
           progressbar: bool = False) -> tuple[az.InferenceData, float]:
    """Run NUTS on ``model``; returns ``(idata, wall seconds)``.

    ``sampler="pymc"`` is PyMC's own NUTS (C backend); ``"nutpie"`` uses nutpie's
    Numba-compiled NUTS when it is installed.
    """
    t0 = time.perf_counter()
    if sampler == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model)
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains,
                              seed=random_seed, progress_bar=progressbar,
                              target_accept=target_accept)
    elif sampler == "pymc":
        try:
            n_cpu = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            n_cpu = os.cpu_count() or 1
        with model:
            idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=min(chains, n_cpu),
                              random_seed=random_seed,
                              target_accept=target_accept, progressbar=progressbar,
                              compute_convergence_checks=False)
    else:
        raise ValueError(f"unknown sampler {sampler!r}; expected 'pymc' or 'nutpie'")
    return idata, time.perf_counter() - t0


def calibration_versions() -> dict:
    """Versions of the packages a calibration artefact depends on (recorded in its attrs)."""
    import pytensor

    return {"pymc": pm.__version__, "arviz": az.__version__, "numpy": np.__version__,
            "pytensor": pytensor.__version__, "xarray": xr.__version__, "simsend": __version__}


def _constant_data(targets: xr.Dataset, prior: PriorConfig) -> xr.Dataset:
    c = constants(targets, prior)
    tr = ("year", "age_group", "area")
    ty = targets["year"].values[1:]
    return xr.Dataset(
        {"esc_ref_targeted": ("age", prior.esc_targeted),
         "esc_ref_targeted_plus": ("age", prior.esc_targeted_plus),
         "exit_ref_specialist": ("age", prior.exit_specialist),
         **({} if prior.identification is None else
            {"identification_ref": ("age", prior.identification),
             "identification_scaled": ("age", identification_scaled(prior).astype(np.int8))}),
         "escalation_ref": (("age", "area"), c.e_cfg),
         "ehcp_age_share": (("age", "area"),
                            targets["ehcp_age_share"].transpose("age", "area").values),
         "need_factor": (("age", "area"), targets["need_factor"].transpose("age",
                                                                           "area").values),
         "new_plans_in_likelihood": (tr, c.new_mask.astype(np.int8)),
         "ehcp_in_likelihood": (tr, c.stock_mask.astype(np.int8))},
        coords={"age": np.arange(26), "area": c.areas, "year": ty,
                "age_group": targets["age_group"].values})


def write_artefact(idata: az.InferenceData, path: str | Path, attrs: dict) -> Path:
    """Write ``idata`` to ``path`` atomically, with ``attrs`` on the ``posterior`` group.

    Non-string attribute values are stored as JSON.
    """
    attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in attrs.items()}
    clean = {k: v if isinstance(v, str | int | float) and not isinstance(v, bool)
             else json.dumps(v, default=str) for k, v in attrs.items()}
    idata.posterior.attrs.update(clean)

    def write(tmp):
        # Group by group, compressed (shuffle + zlib): a posterior of every council to ship.
        for i, group in enumerate(idata.groups()):
            ds = idata[group]
            enc = {v: {"zlib": True, "complevel": 6, "shuffle": True} for v in ds.data_vars}
            ds.to_netcdf(tmp, group=group, mode="w" if i == 0 else "a", engine="h5netcdf",
                         encoding=enc)

    return atomic_write(path, write)


def default_path(areas, origin: int) -> Path:
    """``models/<name>_<origin>.nc``; the name is ``england`` for E92000001.

    Examples
    --------
    >>> default_path(["E92000001"], 2022).as_posix()
    'models/england_2022.nc'

    """
    areas = list(areas)
    if areas == ["E92000001"]:
        name = "england"
    elif len(areas) <= 3:
        name = "_".join(areas)
    else:
        name = f"{len(areas)}areas"
    return Path("models") / f"{name}_{origin}.nc"


def load_targets(cfg: _config.SimConfig, origin: int | None = None,
                 first_year: int = 2015) -> tuple[xr.Dataset, dict]:
    """Targets from the data layer for ``cfg``'s areas, data up to census ``origin``.

    The baseline (for the age profiles of SEN support and EHC plans) is built for the origin
    year.  Returns ``(targets, provenance)``.
    """
    origin = cfg.run.start_year if origin is None else int(origin)
    c = cfg if origin == cfg.run.start_year else cfg.replace_run(
        start_year=origin, end_year=max(cfg.run.end_year, origin + 1))
    base = load_config_baseline(c)
    t = targets_from_baseline(base, cfg.model, first_year=first_year, origin=origin)
    return t, dict(getattr(base, "provenance", {}) or {})


def calibrate(config: _config.SimConfig | str | Path, out: str | Path | None = None, *,
              draws: int = 2000, tune: int = 1000, chains: int = 4,
              allow_failed_diagnostics: bool = False, origin: int | None = None,
              targets: xr.Dataset | None = None, prior: PriorConfig | None = None,
              random_seed: int | None = None, sampler: str = "pymc",
              target_accept: float = 0.99, progressbar: bool = False,
              slim: bool = False) -> Path:
    """Calibrate the transition rates of a config to observed series and save the posterior.

    Parameters
    ----------
    config : SimConfig or path
        The config whose ``[data]`` areas are calibrated and whose ``[model]`` rates are the
        reference (prior centre) for the multipliers.
    out : path, optional
        Output NetCDF (default :func:`default_path`, under ``models/``).
    draws, tune, chains : int
        NUTS settings.  The defaults (2,000 draws after 1,000 tuning steps, 4 chains) pass
        the gate for England at every origin 2017-2022; with fewer draws the exit
        multiplier of the under-5 band (weakly identified: few plans, fast ageing out)
        mixed too slowly for r-hat <= 1.01 at some origins.
    allow_failed_diagnostics : bool
        Write the artefact even if the diagnostics gate fails (recorded in the attrs).
    origin : int, optional
        Use data up to this census year only (default ``run.start_year``), e.g. for
        backtesting.
    targets : xarray.Dataset, optional
        Observed targets to use instead of the data layer's (e.g. synthetic data).
    prior : PriorConfig, optional
        Priors (default :meth:`PriorConfig.from_model` of the config).
    random_seed : int, optional
        Sampler seed (default: the config's ``run.seed``, so a calibration is repeatable).
    sampler : {"pymc", "nutpie"}
        NUTS implementation.
    target_accept : float
        NUTS target acceptance rate (0.99: at 0.95 the England fits to origin 2018 had
        divergent transitions).
    progressbar : bool
        Show the sampler's progress bar.
    slim : bool
        Keep only the posterior variables a forecast reads (:data:`ENGINE_VARIABLES`), as
        float32, thinned to about :data:`SLIM_DRAWS` draws (diagnostics are computed before
        thinning): a posterior of every council to ship.  The walk's innovations and the
        other latent variables of every area and year are left out; diagnostics, data and
        settings are kept.

    Returns
    -------
    Path
        The written artefact.

    Raises
    ------
    CalibrationError
        When the diagnostics gate fails and ``allow_failed_diagnostics`` is False; nothing
        is written then.

    Examples
    --------
    >>> from simsend.calibration import calibrate
    >>> calibrate("configs/base.toml")  # doctest: +SKIP
    PosixPath('models/england_2022.nc')

    """
    t_start = time.perf_counter()
    cfg = config if isinstance(config, _config.SimConfig) else _config.load(config)
    if targets is None:
        targets, provenance = load_targets(cfg, origin)
    else:
        provenance = json.loads(targets.attrs.get("sources", "{}") or "{}")
        targets = restrict(targets, origin=origin)
    origin = int(targets["year"].values[-1])
    prior = PriorConfig.from_model(
        cfg.model, targeted_plus_share=float(targets.attrs.get("targeted_plus_share", 0.25))) \
        if prior is None else prior
    random_seed = cfg.run.seed if random_seed is None else int(random_seed)
    model = build_model(targets, prior)
    LOG.info("calibrating %d area(s), census years %d-%d: %s, %d chains x %d draws after %d "
             "tuning steps", targets.sizes["area"], int(targets["year"].values[0]), origin,
             sampler, chains, draws, tune)
    idata, wall = sample(model, draws=draws, tune=tune, chains=chains, random_seed=random_seed,
                         sampler=sampler, target_accept=target_accept, progressbar=progressbar)
    share = sample_share(targets, idata.posterior.sizes["chain"],
                         idata.posterior.sizes["draw"], random_seed)
    if has_sen_support(targets, prior):
        # Second stage: identification from SEN support, given the first stage's flows.
        mean = idata.posterior[["targeted_escalations", "specialist_moved_down",
                                "specialist_exits"]].mean(("chain", "draw"))
        down = mean["specialist_moved_down"].values
        if share is not None:  # plans moving down: the recorded needs-met share of exits
            down = mean["specialist_exits"].values * share.mean(("chain", "draw")).values
        second = build_identification_model(targets, prior,
                                            mean["targeted_escalations"].values, down)
        LOG.info("calibrating identification to SEN support (second stage)")
        id_data, wall2 = sample(second, draws=draws, tune=tune, chains=chains,
                                random_seed=random_seed + 1, sampler=sampler,
                                target_accept=target_accept, progressbar=progressbar)
        wall += wall2
        # Draw i of chain c of each stage are paired: the stages are independent given
        # the first stage's mean flows.
        post = idata.posterior.drop_vars(["targeted_escalations", "specialist_moved_down",
                                          "specialist_exits"])
        stats = xr.concat([idata.sample_stats[["diverging"]],
                           id_data.sample_stats[["diverging"]]], "stage").any("stage")
        idata = az.InferenceData(
            posterior=xr.merge([post, id_data.posterior.drop_vars(
                [c for c in id_data.posterior.coords if c in post.coords
                 and c not in ("chain", "draw")], errors="ignore")], compat="override"),
            sample_stats=idata.sample_stats.assign(diverging=stats["diverging"]))
    if share is not None:
        # Drawn apart (conjugate, independent of NUTS): not part of the diagnostics.
        share = share.assign_coords(chain=idata.posterior["chain"].values,
                                    draw=idata.posterior["draw"].values)
    try:
        diag = gate(idata, allow_failed_diagnostics)
    finally:
        LOG.info("sampling took %.0f s", wall)
    LOG.info("diagnostics %s: max r-hat %.4f, min bulk ESS %.0f, %d divergent",
             "passed" if diag["passed"] else "FAILED (kept: allow_failed_diagnostics)",
             diag["max_rhat"], diag["min_ess_bulk"], diag["n_divergent"])
    # Groups: posterior, sample_stats from the sampler; observed data in the engine's dims.
    posterior = idata.posterior
    if share is not None:
        posterior = posterior.assign(deescalation_share=share)
    if "ehcp_age_share" in posterior:
        # (age, area) per draw tripled a posterior of every council (9.7 MB); the engine
        # reads its mean only (simsend.data.band_ages), so only the mean is kept.
        posterior = posterior.assign(
            ehcp_age_share=posterior["ehcp_age_share"].mean(("chain", "draw")))
    if slim:
        posterior = slim_posterior(posterior)
    else:  # float32 halves the file; diagnostics were computed above at full precision
        posterior = posterior.assign({v: x.astype(np.float32)
                                      for v, x in posterior.data_vars.items()
                                      if x.dtype == np.float64})
    observed = [v for v in ("ehcp", "new_plans", "exposure", "sen_support", "exits",
                            "needs_met", "exits_age") if v in targets]
    keep = {"posterior": posterior, "sample_stats": idata.sample_stats,
            "observed_data": targets[observed],
            "constant_data": _constant_data(targets, prior)}
    idata = az.InferenceData(**keep)
    areas = [str(a) for a in targets["area"].values]
    path = Path(out) if out is not None else default_path(areas, origin)
    attrs = {
        "title": "simsend calibrated posterior",
        "model": MODEL_NAME,
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "config_path": cfg.source_path,
        "config_toml": cfg.text,
        "config_sha256": cfg.sha256,
        "data_provenance": provenance,
        "data_sha256": {k: v for k, v in provenance.items() if "sha" in str(k).lower()}
        or provenance,
        "areas": areas,
        "origin_year": origin,
        "first_year": int(targets["year"].values[0]),
        "reference_year": origin + 1,
        "targeted_plus_share": float(targets.attrs.get("targeted_plus_share", 0.25)),
        "diagnostics": diag,
        "diagnostics_passed": int(diag["passed"]),
        "allow_failed_diagnostics": int(bool(allow_failed_diagnostics)),
        "max_rhat": diag["max_rhat"],
        "min_ess_bulk": diag["min_ess_bulk"],
        "n_divergent": diag["n_divergent"],
        "versions": calibration_versions(),
        **{f"{k}_version": v for k, v in calibration_versions().items()},
        "sampler": sampler,
        "slim": int(bool(slim)),
        "draws": draws, "tune": tune, "chains": chains,
        "random_seed": random_seed,
        "target_accept": target_accept,
        "sampling_wall_time_s": round(wall, 2),
        "wall_time_s": round(time.perf_counter() - t_start, 2),
        "prior": {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                  for k, v in prior.__dict__.items()},
    }
    return write_artefact(idata, path, attrs)
