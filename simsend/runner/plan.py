"""One run recipe: a config prepared once into a :class:`RunPlan`, then executed anywhere.

:func:`prepare` applies the overrides, loads the baseline, picks the runs (the baseline and
the scenarios asked for), builds each run's parameter source and the tally layout.  Every
execution path uses the same plan and the same :meth:`RunPlan.dataset` to turn any subset of
one run's draws into results:

- :func:`simsend.runner.forecast.run_forecast`: every draw in this process or as Dask tasks;
- :func:`simsend.runner.stream.run_zarr`: chunks of draws streamed into a Zarr store;
- :func:`simsend.calibration.backtest.engine_forecast`: a forecast from a backtest origin.

A draw's results depend only on (seed, draw), never on which draws share its chunk or
process, so every path gives the same numbers.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import xarray as xr

from simsend.config import SimConfig, load
from simsend.config.scenarios import BASELINE, BASELINE_RUN, Scenario, is_baseline
from simsend.config.toml import ConfigError
from simsend.data import Baseline, Report
from simsend.data.band_ages import respread_bands
from simsend.data.baseline import area_table, councils_history
from simsend.data.configured import data_spec, load_config_baseline
from simsend.data.geography import csv_area_rows, unknown_area_findings
from simsend.engine.loop import Job, Outputs
from simsend.engine.tally import Layout, make_layout
from simsend.io import file_sha256
from simsend.rates.demography import DemographySource, demography_source
from simsend.rates.placements import PlacementSource, fit_for_run
from simsend.rates.posterior import PosteriorParameters
from simsend.rates.provision import plan_hash, provision_source
from simsend.rates.scenario import scenario_source
from simsend.rates.sources import FixedParameters, ParameterSource, SplitSource, innermost
from simsend.results.dataset import places_variable, to_dataset
from simsend.results.manifest import run_attrs, with_total_time
from simsend.runner.scenarios import select, stack_runs
from simsend.statutory.ehc_pipeline import statutory_variables

LOG = logging.getLogger("simsend")

BYTES_PER_CELL = 4 * 24
"""Bytes held per (draw, year, marginal cell) while a chunk is built: about 17 float32/int32
result variables per cell (census stock, flows, pipeline, ceased plans), the engine's raw
tallies and the conversion temporaries, rounded up (allocation tallies add four more)."""


ScenarioArg = str | Sequence[str] | Scenario | None
"""Which scenarios to run: None (every scenario of the config), names, or one
:class:`~simsend.config.scenarios.Scenario` object run alone (no ``scenario`` dimension)."""


def as_config(cfg: SimConfig | str | Path) -> SimConfig:
    """Return ``cfg`` parsed (a path is loaded)."""
    return cfg if isinstance(cfg, SimConfig) else load(cfg)


def with_overrides(cfg: SimConfig | str | Path, draws: int | None = None,
                   seed: int | None = None, areas: Sequence[str] | None = None) -> SimConfig:
    """Return the config with ``run.draws``, ``run.seed`` and ``data.areas`` overridden."""
    cfg = as_config(cfg)
    if draws is not None:
        cfg = cfg.replace_run(draws=draws)
    if seed is not None:
        cfg = cfg.replace_run(seed=seed)
    if areas is not None:
        cfg = cfg.replace_data(areas=tuple(areas))
    if cfg.run.end_year <= cfg.run.start_year:  # a config replaced in Python skips parse's check
        raise ConfigError(f"{cfg.source_path}: [run.end_year] {cfg.run.end_year} must be after "
                          f"run.start_year {cfg.run.start_year}")
    return cfg


def parameter_source(cfg: SimConfig, baseline: Baseline) -> ParameterSource:
    """Return the source of one parameter set per draw.

    ``model.posterior`` names a calibrated artefact: each Monte Carlo draw then takes one
    posterior draw (rates not calibrated come from ``[model]``).  Without it every draw uses
    the fixed ``[model]`` rates.  ``model.placements = "calibrated"`` wraps either in each
    draw's walk of the calibrated placement effects (:mod:`simsend.rates.placements`);
    ``model.targeted_split = "balanced"`` holds the targeted-plus share of SEN support at the
    baseline's (:mod:`simsend.rates.split`).
    """
    n_years = cfg.run.end_year - cfg.run.start_year + 1
    if cfg.model.posterior:
        try:
            source = PosteriorParameters(cfg.model.posterior, cfg.model, baseline.births,
                                         cfg.model.replicates_per_draw,
                                         areas=tuple(str(a) for a in baseline.areas),
                                         start_year=cfg.run.start_year, seed=cfg.run.seed,
                                         n_years=n_years)
        except ConfigError as exc:  # name the config key as well as the posterior file
            raise ConfigError(f"{cfg.source_path}: [model.posterior] {exc}") from None
    else:
        source = FixedParameters(cfg.model, baseline.births)
    if cfg.model.placements == "calibrated" and not has_placement_history(baseline.history):
        # a council's own tidy files often hold no placements: the rules, said and recorded
        LOG.warning("%s: [model.placements] \"calibrated\" needs EHC plans by placement, which "
                    "the data do not have for these areas; the placement_moves rules are used",
                    cfg.source_path)
    elif cfg.model.placements == "calibrated":
        try:
            fit = fit_for_run(baseline.history, baseline.areas,
                              councils_history(data_spec(cfg)))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{cfg.source_path}: [model.placements] \"calibrated\" needs EHC "
                              f"plans by placement and age band in the data: {exc}") from None
        source = PlacementSource(source, fit, cfg.run.seed, n_years)
    if cfg.model.targeted_split == "balanced":
        if not baseline.targeted_plus_share < 1.0:
            raise ConfigError(f"{cfg.source_path}: [model.targeted_split] \"balanced\" needs "
                              f"[data.targeted_plus_share] below 1 (some SEN support in the "
                              f"targeted tier), got {baseline.targeted_plus_share}")
        source = SplitSource(source, baseline.targeted_plus_share)
    return source


def has_placement_history(history: xr.Dataset) -> bool:
    """Whether a baseline's history holds any EHC plans by placement group."""
    return "ehcp_placement" in history and bool(np.isfinite(history["ehcp_placement"]).any())


def run_source(cfg: SimConfig, baseline: Baseline, scenario: Scenario | None = None,
               rates: ParameterSource | None = None) -> ParameterSource:
    """Return one run's parameter source: its rates, then ``scenario``, then the provision plan.

    ``rates`` is the :func:`parameter_source` to wrap (default: built here); the runs of one
    config share it, so a posterior is read once, not once per scenario.
    """
    areas = tuple(str(a) for a in baseline.areas)
    rates = parameter_source(cfg, baseline) if rates is None else rates
    source = scenario_source(rates, cfg, areas, scenario)
    check_plan_areas(cfg, baseline)
    return provision_source(source, cfg, areas)


def check_plan_areas(cfg: SimConfig, baseline: Baseline) -> None:
    """Stop when a row of the provision plan names an area that neither the run nor its data know.

    The plan's reader keeps the rows of the run's areas and skips the others (a plan of every
    council run on one), so a mistyped code would leave that council's places unlimited
    without a word.  Codes of the data's other areas (``areas.csv``, and a council's own
    files' areas) are still skipped.

    Raises
    ------
    DataError
        Listing each such row: the file, line, column ``area``, the code, the closest codes
        and the run's areas (:func:`simsend.data.geography.unknown_area_findings`).

    """
    if cfg.provision is None:
        return
    path, run = cfg.provision.plan, tuple(str(a) for a in baseline.areas)
    rows = [r for r in csv_area_rows(path) if r[1] not in run]
    if not rows:
        return
    table = area_table(baseline.spec, shipped_only=True)
    if not {c for _, c in rows} <= set(table["code"]):
        table = area_table(baseline.spec)  # a council's own files: their areas too
    found = unknown_area_findings(rows, str(path), "area", run, table)
    if found:
        Report(findings=found, files=[str(path)]).raise_errors("provision plan")


@dataclass
class RunPlan:
    """Everything a run's draws share, prepared once (see :func:`prepare`).

    Attributes
    ----------
    cfg : SimConfig
        The config with overrides applied.
    baseline : Baseline
        The baseline census every draw starts from.
    layout : Layout
        The marginal tallied (``outputs.by``).
    years : list of int
        Census years, baseline first.
    runs : tuple of (Scenario or None)
        The runs: None is the baseline.
    sources : tuple of ParameterSource
        One parameter source per run.
    stacked : bool
        Whether the results carry a ``scenario`` dimension.
    demography : DemographySource or None
        Births, migration and plan transfers of each draw, shared by every run (scenarios
        change rates, not the population); None = fixed entrants, no migration.
    clock : dict
        ``started`` (datetime), ``t0`` and ``baseline_s`` for the provenance timings.

    """

    cfg: SimConfig
    baseline: Baseline
    layout: Layout
    years: list[int]
    runs: tuple[Scenario | None, ...]
    sources: tuple[ParameterSource, ...]
    stacked: bool
    demography: DemographySource | None = None
    clock: dict = field(default_factory=dict)

    @property
    def draws(self) -> np.ndarray:
        """Every Monte Carlo draw number of the run."""
        return np.arange(self.cfg.run.draws, dtype=np.int64)

    @property
    def job(self) -> Job:
        """What the engine shares between this plan's draws (baseline, years, seed, marginal)."""
        return Job(np.asarray(self.baseline.individuals), np.asarray(self.baseline.pool),
                   len(self.years), self.cfg.run.seed, self.layout,
                   demography=self.demography)

    @property
    def areas(self) -> tuple[str, ...]:
        """The run's area codes."""
        return tuple(str(a) for a in self.baseline.areas)

    def result_bytes(self, n_draws: int | None = None) -> int:
        """Return about how many bytes the results of ``n_draws`` draws (default: all) take."""
        d = self.cfg.run.draws if n_draws is None else n_draws
        return len(self.runs) * d * len(self.years) * self.layout.size * BYTES_PER_CELL

    def check_memory(self, total: int | None = None) -> None:
        """Refuse a run whose results would not fit in memory, before anything is allocated.

        Raises
        ------
        ConfigError
            With the estimate and what shrinks it (streaming to Zarr, fewer draws or
            marginals), when the in-memory results would exceed ``total`` bytes (default:
            this machine's physical memory).

        """
        total = machine_memory() if total is None else total
        need = self.result_bytes()
        if total and need > total:
            cfg = self.cfg
            raise ConfigError(
                f"{cfg.source_path}: the results of {len(self.runs)} run(s) x "
                f"{cfg.run.draws:,} draws x {len(self.years)} years x {self.layout.size:,} "
                f"cells need about {need / 2**30:,.1f} GiB in memory, more than this "
                f"machine's {total / 2**30:,.1f} GiB; stream them to a Zarr store instead "
                "(--out results.zarr), or ask for fewer draws (--draws) or fewer marginals "
                "([outputs] by)")

    def provenance(self, k: int, timings: dict) -> dict[str, str | int]:
        """Return the provenance attrs of run ``k`` (config, inputs, versions, ``timings``)."""
        cfg, base = self.cfg, self.baseline
        inputs = {name: file_sha256(p) for name, p in cfg.data.files.items()}
        if cfg.model.posterior:
            inputs["posterior"] = file_sha256(cfg.model.posterior)
        if cfg.pipeline.enabled and cfg.pipeline.posterior:  # the pipeline's rates per area
            inputs["pipeline_posterior"] = file_sha256(cfg.pipeline.posterior)
        inputs.update(plan_hash(cfg.provision))
        if cfg.demography.projection is not None:
            inputs["population_projection"] = file_sha256(cfg.demography.projection)
        demography = {"mode": "off: fixed entrants, no migration"} if self.demography is None \
            else self.demography.notes
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
            "demography": json.dumps(demography, default=str),
            **self._posterior_attrs(k),
            **run_attrs(timings),
        }

    def _posterior_attrs(self, k: int) -> dict[str, str | int]:
        """Which calibrated posterior fed the run, and which of its areas each run area used."""
        cfg = self.cfg
        placements = {"placements": "placement moves of [model] (placement_moves)"}
        if cfg.model.placements == "calibrated":
            placements["placements"] += (": the data have no EHC plans by placement, so "
                                         "[model] placements = \"calibrated\" was not used")
        src = self.sources[k]
        while hasattr(src, "source"):
            if isinstance(src, PlacementSource):
                placements = {"placements": src.describe()}
                break
            src = src.source
        if not cfg.model.posterior:
            return {"parameters": "fixed rates of [model]", **placements}
        inner = innermost(self.sources[k])  # under the scenario and provision wrappers
        return {"parameters": "calibrated posterior (one posterior draw per replicate; "
                              "variable param_draw)",
                "posterior_file": Path(cfg.model.posterior).name,
                "replicates_per_draw": int(cfg.model.replicates_per_draw),
                "posterior_area_source": json.dumps(getattr(inner, "area_source", {})),
                **placements}

    def timings(self, simulate_s: float, **extra) -> dict:
        """Return the provenance timings of a run whose draws took ``simulate_s`` seconds."""
        return {"started_at": self.clock["started"].isoformat(timespec="seconds"),
                "baseline_s": self.clock["baseline_s"],
                "simulate_s": round(simulate_s, 3),
                "threads": numba.get_num_threads(), **extra}

    def dataset(self, k: int, out: Outputs, attrs: dict) -> xr.Dataset:
        """Return run ``k``'s results Dataset for the draws in ``out`` (any subset).

        The tallies (:func:`simsend.results.dataset.to_dataset`), the provision plan's
        places, the statutory pipeline (keyed by draw, so a chunk of draws gives exactly those
        draws of the whole run) and the scenario's name.
        """
        ds = to_dataset(out, self.layout, self.years, attrs)
        if self.cfg.provision is not None:
            ds["places"] = places_variable(self.sources[k], self.areas, self.years)
        scenario = self.runs[k]
        ds = statutory_variables(ds, self.cfg, self.layout, scenario)
        ds.attrs["scenario"] = BASELINE if is_baseline(scenario) else scenario.name
        return ds

    def combine(self, datasets: list[xr.Dataset]) -> xr.Dataset:
        """Return the run's results from each run's Dataset (stacked along ``scenario``)."""
        if not self.stacked:
            return datasets[0]
        ds = stack_runs(self.runs, datasets)
        return with_total_time(ds, _time.perf_counter() - self.clock["t0"])


def machine_memory() -> int:
    """Physical memory of this machine in bytes (0 when the system does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def prepare(cfg: SimConfig | str | Path, *, draws: int | None = None,
            seed: int | None = None, areas: Sequence[str] | None = None,
            scenario: ScenarioArg = None) -> RunPlan:
    """Prepare a run: overrides, threads, baseline, runs, parameter sources and layout.

    Parameters
    ----------
    cfg : SimConfig or path
    draws, seed : int, optional
        Override ``run.draws`` / ``run.seed``.
    areas : sequence of str, optional
        Override ``data.areas`` (area codes, or ``("all",)``).
    scenario : str, sequence of str, Scenario or None
        See :data:`ScenarioArg`.  A config with scenarios, or any name given, runs the
        baseline first and stacks the runs along ``scenario``.

    """
    cfg = with_overrides(cfg, draws, seed, areas)
    stacked = not isinstance(scenario, Scenario) and (bool(cfg.scenarios)
                                                      or scenario is not None)
    if stacked:
        runs = tuple(s or BASELINE_RUN for s in select(cfg, scenario))
    else:
        runs = (scenario if isinstance(scenario, Scenario) else None,)
    if cfg.run.threads:
        numba.set_num_threads(min(cfg.run.threads, numba.config.NUMBA_NUM_THREADS))
    t0, started = _time.perf_counter(), _dt.datetime.now(_dt.UTC)
    base = load_config_baseline(cfg)
    if (cfg.pipeline.enabled and cfg.pipeline.posterior and len(base.areas) > 1
            and "area" not in cfg.outputs.by):
        # said before the simulation, not after it: each council's pipeline draws with its
        # own rates, so a cell of the results may not mix councils
        raise ConfigError(f"{cfg.source_path}: [pipeline.posterior] needs 'area' in "
                          f"outputs.by when a run holds several areas ({len(base.areas)}); "
                          "add it, or remove the posterior to run the config's rates")
    clock = {"t0": t0, "started": started, "baseline_s": round(_time.perf_counter() - t0, 3)}
    rates = parameter_source(cfg, base)  # one read of a posterior for every run
    inner = innermost(rates)  # the posterior under the placement walk, if any
    if getattr(inner, "age_share", None) is not None:
        # the calibration's within-band age profile at its origin, for plans SEN2 banded
        base = respread_bands(base, inner.age_share, source=Path(cfg.model.posterior).name)
    return RunPlan(cfg=cfg, baseline=base, layout=make_layout(cfg.outputs.by, base.areas),
                   years=list(range(cfg.run.start_year, cfg.run.end_year + 1)), runs=runs,
                   sources=tuple(run_source(cfg, base, s, rates) for s in runs), stacked=stacked,
                   demography=demography_source(cfg, base), clock=clock)
