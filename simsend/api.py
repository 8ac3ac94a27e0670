"""The public pipeline: config -> baseline -> parameters -> engine -> Dataset.

Every CLI command is a thin shell over one function here.
"""

from __future__ import annotations

import datetime as _dt
import json
import time as _time
from collections.abc import Callable
from pathlib import Path

import numba
import xarray as xr

from simsend import config as _config
from simsend.engine import simulate
from simsend.io import file_sha256
from simsend.manifest import run_attrs, with_total_time
from simsend.params import FixedParameters, ParameterSource
from simsend.provision import places_variable, plan_hash, provision_source
from simsend.recorder import make_layout
from simsend.results import to_dataset


def _as_config(cfg: _config.SimConfig | str | Path) -> _config.SimConfig:
    return cfg if isinstance(cfg, _config.SimConfig) else _config.load(cfg)


def data_spec(cfg: _config.SimConfig):
    """Return the :class:`simsend.data.DataSpec` a config's ``[data]`` table describes."""
    from simsend.data import DataSpec

    d = cfg.data
    return DataSpec(source=d.source, areas=tuple(d.areas), baseline_year=cfg.run.start_year,
                    targeted_plus_share=d.targeted_plus_share, files=dict(d.files))


def load_baseline(cfg: _config.SimConfig | str | Path):
    """Build the baseline (pupils, pool, history) that a config's ``[data]`` table names.

    Ages the school census does not cover start with the identified children the config's
    identification rates imply (see :mod:`simsend.early_years`).
    """
    from simsend.data import load_baseline as _load
    from simsend.early_years import fill_early_years

    cfg = _as_config(cfg)
    return fill_early_years(_load(data_spec(cfg)), cfg.model)


def parameter_source(cfg: _config.SimConfig, baseline) -> ParameterSource:
    """Return the source of one parameter set per draw.

    ``model.posterior`` names a calibrated artefact: each Monte Carlo draw then takes one
    posterior draw (rates not calibrated come from ``[model]``). Without it every draw uses
    the fixed ``[model]`` rates.
    """
    if cfg.model.posterior:
        from simsend.calibration.posterior import PosteriorParameters

        return PosteriorParameters(cfg.model.posterior, cfg.model, baseline.births,
                                   cfg.model.replicates_per_draw,
                                   areas=tuple(str(a) for a in baseline.areas),
                                   start_year=cfg.run.start_year)
    return FixedParameters(cfg.model, baseline.births)


def run(cfg: _config.SimConfig | str | Path, *, draws: int | None = None,
        seed: int | None = None, areas: tuple[str, ...] | None = None,
        progress: Callable[[int, int], None] | None = None, workers: int | None = None,
        scheduler: str | None = None, draw_chunk: int | None = None,
        area_chunk: int | None = None, scenario=None) -> xr.Dataset:
    """Run a config's forecast and return the results Dataset.

    Parameters
    ----------
    cfg : SimConfig or path
        A parsed config or the path of a TOML file.
    draws, seed : int, optional
        Override ``run.draws`` / ``run.seed``.
    areas : tuple of str, optional
        Override ``data.areas`` (area codes, or ``("all",)``).
    progress : callable, optional
        ``progress(done, total)`` after each draw.
    workers, scheduler : optional
        Run chunks of draws (and areas) as ``dask.distributed`` tasks on a local cluster of
        ``workers`` processes or on the cluster at ``scheduler`` (an address); the result is
        bit-identical to the single-process run (:mod:`simsend.distributed`).
    draw_chunk, area_chunk : int, optional
        Draws and areas per distributed task (defaults in
        :func:`simsend.distributed.simulate_distributed`).
    scenario : str, sequence of str or Scenario, optional
        Scenarios of the config's ``[scenarios]`` to run against the baseline (default: all).
        When the config has scenarios (or one is named) the result has a leading
        ``scenario`` dimension, ``"baseline"`` first; see :mod:`simsend.scenarios`.  A
        :class:`simsend.scenarios.Scenario` object runs that one scenario alone (no
        ``scenario`` dimension), as goal-seek does.

    Returns
    -------
    xarray.Dataset
        See :func:`simsend.results.to_dataset`.

    Examples
    --------
    >>> import simsend
    >>> ds = simsend.run("configs/base.toml", draws=2)  # doctest: +SKIP
    >>> ds["n_pupils"].dims[:3]  # doctest: +SKIP
    ('draw', 'year', 'tier')

    """
    cfg = _with_overrides(cfg, draws, seed, areas)
    from simsend.scenarios import BASELINE_RUN, Scenario, run_scenarios

    if not isinstance(scenario, Scenario) and (cfg.scenarios or scenario is not None):
        t_all = _time.perf_counter()
        ds = run_scenarios(cfg, scenario, lambda s: run(
            cfg, progress=progress, workers=workers, scheduler=scheduler,
            draw_chunk=draw_chunk, area_chunk=area_chunk, scenario=s or BASELINE_RUN))
        return with_total_time(ds, _time.perf_counter() - t_all)
    if cfg.run.threads:
        numba.set_num_threads(min(cfg.run.threads, numba.config.NUMBA_NUM_THREADS))
    t0, started = _time.perf_counter(), _dt.datetime.now(_dt.UTC)
    base = load_baseline(cfg)
    t_base = _time.perf_counter()
    layout = make_layout(cfg.outputs.by, base.areas)
    years = list(range(cfg.run.start_year, cfg.run.end_year + 1))
    source = run_source(cfg, base, scenario if isinstance(scenario, Scenario) else None)
    total = cfg.run.draws
    tick = None if progress is None else (lambda k: progress(k, total))
    if workers is not None or scheduler is not None:
        from simsend.distributed import simulate_distributed

        out = simulate_distributed(base.individuals, base.pool, source, range(total),
                                   len(years), cfg.run.seed, layout, workers=workers,
                                   scheduler=scheduler, draw_chunk=draw_chunk,
                                   area_chunk=area_chunk, progress=tick)
    else:
        out = simulate(base.individuals, base.pool, source, range(total), len(years),
                       cfg.run.seed, layout, progress=tick)
    attrs = run_provenance(cfg, base, source, {
        "started_at": started.isoformat(timespec="seconds"),
        "baseline_s": round(t_base - t0, 3),
        "simulate_s": round(_time.perf_counter() - t_base, 3),
        "threads": numba.get_num_threads()})
    return run_dataset(out, cfg, base, layout, years, source, attrs,
                       scenario if isinstance(scenario, Scenario) else None)


def run_dataset(out, cfg: _config.SimConfig, base, layout, years: list[int], source,
                attrs: dict, scenario=None) -> xr.Dataset:
    """Return one run's results Dataset from its raw tallies (any subset of draws).

    :func:`simsend.results.to_dataset`, the provision plan's places, then
    :func:`simsend.scenarios.finish_run` (the statutory pipeline, keyed by draw, so a chunk of
    draws gives exactly those draws of the whole run).  Shared by :func:`run` and the
    streamed Zarr run (:mod:`simsend.stream`).
    """
    from simsend.scenarios import finish_run

    ds = to_dataset(out, layout, years, attrs)
    if cfg.provision is not None:
        ds["places"] = places_variable(source, tuple(str(a) for a in base.areas), years)
    return finish_run(ds, cfg, layout, scenario)


def _with_overrides(cfg, draws: int | None, seed: int | None,
                    areas: tuple[str, ...] | None) -> _config.SimConfig:
    """Return the config with ``run.draws``, ``run.seed`` and ``data.areas`` overridden."""
    cfg = _as_config(cfg)
    if draws is not None:
        cfg = cfg.replace_run(draws=draws)
    if seed is not None:
        cfg = cfg.replace_run(seed=seed)
    if areas is not None:
        cfg = cfg.replace_data(areas=tuple(areas))
    return cfg


def run_source(cfg: _config.SimConfig, base, scenario=None) -> ParameterSource:
    """Return the parameter source of one run: its rates, ``scenario`` and provision plan.

    Parameters
    ----------
    cfg : SimConfig
    base : simsend.data.Baseline
        From :func:`load_baseline`.
    scenario : simsend.scenarios.Scenario, optional
        The scenario the run applies (None: the baseline).

    """
    from simsend.scenarios import scenario_source

    source = scenario_source(parameter_source(cfg, base), cfg, base.areas, scenario)
    return provision_source(source, cfg, tuple(str(a) for a in base.areas))


def run_provenance(cfg: _config.SimConfig, base, source,
                   timings: dict) -> dict[str, str | int]:
    """Return the provenance attrs of one run's results (config, inputs, versions, timings).

    Shared by :func:`run` and the streamed Zarr run (:mod:`simsend.stream`), so both write
    the same manifest.
    """
    inputs = {name: file_sha256(p) for name, p in cfg.data.files.items()}
    if cfg.model.posterior:
        inputs["posterior"] = file_sha256(cfg.model.posterior)
    inputs.update(plan_hash(cfg.provision))
    return {
        "config_path": cfg.source_path,
        "config_toml": cfg.text,
        "config_sha256": cfg.sha256,
        "root_seed": cfg.run.seed,
        "draws": cfg.run.draws,
        "areas": json.dumps(list(base.areas)),
        "area_names": json.dumps(list(base.area_names)),
        "input_sha256": json.dumps(inputs),
        "data_provenance": json.dumps(dict(base.provenance), default=str),
        **_posterior_attrs(cfg, source),
        **run_attrs(timings),
    }


def _posterior_attrs(cfg: _config.SimConfig, source) -> dict[str, str | int]:
    """Which calibrated posterior fed the run, and which of its areas each run area used."""
    if not cfg.model.posterior:
        return {"parameters": "fixed rates of [model]"}
    inner = getattr(source, "source", source)  # a scenario wraps the posterior source
    return {"parameters": "calibrated posterior (one posterior draw per replicate; "
                          "variable param_draw)",
            "posterior_file": Path(cfg.model.posterior).name,
            "replicates_per_draw": int(cfg.model.replicates_per_draw),
            "posterior_area_source": json.dumps(getattr(inner, "area_source", {}))}


def validate(cfg: _config.SimConfig | str | Path):
    """Check a config and every data file it names.

    Returns
    -------
    simsend.data.Report
        Findings (errors and warnings); ``report.ok`` is False when any error was found.

    Raises
    ------
    ConfigError
        When the config itself is invalid.

    """
    from simsend.data import validate_data

    cfg = _as_config(cfg)
    return validate_data(data_spec(cfg))
