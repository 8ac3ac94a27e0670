"""Execute a prepared run in memory: every draw in this process, or as Dask tasks."""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from simsend.config import SimConfig
from simsend.engine.loop import Outputs, simulate
from simsend.runner.distributed import Cluster, simulate_distributed
from simsend.runner.plan import RunPlan, ScenarioArg, prepare


def simulate_run(plan: RunPlan, k: int, draws: np.ndarray, cluster: Cluster | None = None,
                 progress: Callable[[int], None] | None = None) -> Outputs:
    """Raw tallies of run ``k`` of ``plan`` for ``draws``: in this process or on ``cluster``."""
    if cluster is not None and cluster.named:
        return simulate_distributed(plan.job, plan.sources[k], draws, cluster, progress)
    return simulate(plan.job, plan.sources[k], draws, progress=progress)


def run_forecast(cfg: SimConfig | str | Path, *, draws: int | None = None,
                 seed: int | None = None, areas: Sequence[str] | None = None,
                 scenario: ScenarioArg = None,
                 progress: Callable[[int, int], None] | None = None,
                 cluster: Cluster | None = None) -> xr.Dataset:
    """Run a config's forecast and return the results Dataset (every draw in memory).

    Parameters
    ----------
    cfg : SimConfig or path
        A parsed config or the path of a TOML file.
    draws, seed : int, optional
        Override ``run.draws`` / ``run.seed``.
    areas : sequence of str, optional
        Override ``data.areas`` (area codes, or ``("all",)``).
    scenario : str, sequence of str or Scenario, optional
        Scenarios of the config's ``[scenarios]`` to run against the baseline (default: all).
        When the config has scenarios (or one is named) the result has a leading
        ``scenario`` dimension, ``"baseline"`` first.  A
        :class:`~simsend.config.scenarios.Scenario` object runs that one scenario alone (no
        ``scenario`` dimension), as goal-seek does.
    progress : callable, optional
        ``progress(done, total)`` after each draw; with scenarios ``total`` counts every
        run's draws (one count, not one per run).
    cluster : Cluster, optional
        Run chunks of draws (and areas) as ``dask.distributed`` tasks; the result is
        bit-identical to the single-process run (:mod:`simsend.runner.distributed`).

    Returns
    -------
    xarray.Dataset
        See :func:`simsend.results.dataset.to_dataset`; with scenarios, stacked along
        ``scenario``.

    """
    plan = prepare(cfg, draws=draws, seed=seed, areas=areas, scenario=scenario)
    plan.check_memory()  # every draw is held here: refuse before simulating what cannot fit
    per_run = plan.cfg.run.draws
    total = per_run * len(plan.runs)  # one count over every run: one bar for a scenario run
    results = []
    for k in range(len(plan.runs)):
        tick = None if progress is None else (
            lambda done, base=k * per_run: progress(base + done, total))
        t0 = _time.perf_counter()
        out = simulate_run(plan, k, plan.draws, cluster, tick)
        attrs = plan.provenance(k, plan.timings(_time.perf_counter() - t0))
        results.append(plan.dataset(k, out, attrs))
        del out
    return plan.combine(results)
