"""The public pipeline: config -> baseline -> parameters -> engine -> Dataset.

Every CLI command is a thin shell over one function here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numba
import xarray as xr

from simsend import config as _config
from simsend.engine import simulate
from simsend.io import file_sha256
from simsend.params import FixedParameters, ParameterSource
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
    """Build the baseline (pupils, pool, history) that a config's ``[data]`` table names."""
    from simsend.data import load_baseline as _load

    cfg = _as_config(cfg)
    return _load(data_spec(cfg))


def parameter_source(cfg: _config.SimConfig, baseline) -> ParameterSource:
    """Return the source of one parameter set per draw.

    ``model.posterior`` names a calibrated artefact: each Monte Carlo draw then takes one
    posterior draw (rates not calibrated come from ``[model]``). Without it every draw uses
    the fixed ``[model]`` rates.
    """
    if cfg.model.posterior:
        from simsend.calibration.posterior import PosteriorParameters

        return PosteriorParameters(cfg.model.posterior, cfg.model, baseline.births,
                                   areas=tuple(str(a) for a in baseline.areas),
                                   start_year=cfg.run.start_year)
    return FixedParameters(cfg.model, baseline.births)


def run(cfg: _config.SimConfig | str | Path, *, draws: int | None = None,
        seed: int | None = None, areas: tuple[str, ...] | None = None,
        progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
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
    cfg = _as_config(cfg)
    if draws is not None:
        cfg = cfg.replace_run(draws=draws)
    if seed is not None:
        cfg = cfg.replace_run(seed=seed)
    if areas is not None:
        cfg = cfg.replace_data(areas=tuple(areas))
    if cfg.run.threads:
        numba.set_num_threads(min(cfg.run.threads, numba.config.NUMBA_NUM_THREADS))
    base = load_baseline(cfg)
    layout = make_layout(cfg.outputs.by, base.areas)
    years = list(range(cfg.run.start_year, cfg.run.end_year + 1))
    source = parameter_source(cfg, base)
    total = cfg.run.draws
    out = simulate(base.individuals, base.pool, source, range(total), len(years), cfg.run.seed,
                   layout, progress=None if progress is None else (lambda k: progress(k, total)))
    inputs = {name: file_sha256(p) for name, p in cfg.data.files.items()}
    attrs = {
        "config_path": cfg.source_path,
        "config_toml": cfg.text,
        "config_sha256": cfg.sha256,
        "root_seed": cfg.run.seed,
        "draws": total,
        "areas": json.dumps(list(base.areas)),
        "area_names": json.dumps(list(base.area_names)),
        "input_sha256": json.dumps(inputs),
        "data_provenance": json.dumps(dict(base.provenance), default=str),
    }
    return to_dataset(out, layout, years, attrs)


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
