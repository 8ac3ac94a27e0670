"""The public Python interface: one function per CLI command's core, each a thin call down.

``simsend.run`` is :func:`simsend.runner.forecast.run_forecast`; the rest of the recipe (overrides,
baseline, runs, parameter sources) is :func:`simsend.runner.plan.prepare`, shared by every way
of executing a run (in process, on Dask, streamed to Zarr, in a backtest).
"""

from __future__ import annotations

from pathlib import Path

from simsend.config import SimConfig
from simsend.data import Baseline, Report, validate_data
from simsend.data.configured import data_spec, load_config_baseline
from simsend.runner.distributed import Cluster
from simsend.runner.forecast import run_forecast as run
from simsend.runner.plan import as_config, parameter_source, run_source
from simsend.runner.stream import run_zarr

__all__ = ["Cluster", "data_spec", "load_baseline", "parameter_source", "run", "run_source",
           "run_zarr", "validate"]


def load_baseline(cfg: SimConfig | str | Path) -> Baseline:
    """Build the baseline (pupils, pool, history) that a config's ``[data]`` table names.

    See :func:`simsend.data.configured.load_config_baseline`.
    """
    return load_config_baseline(as_config(cfg))


def validate(cfg: SimConfig | str | Path) -> Report:
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
    return validate_data(data_spec(as_config(cfg)))
