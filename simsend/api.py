"""The public Python interface: one function per CLI command's core, each a thin call down.

``simsend.run`` is :func:`simsend.runner.forecast.run_forecast`; the rest of the recipe (overrides,
baseline, runs, parameter sources) is :func:`simsend.runner.plan.prepare`, shared by every way
of executing a run (in process, on Dask, streamed to Zarr, in a backtest).
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from simsend.config import ConfigError, SimConfig
from simsend.data import Baseline, DataError, Finding, Report, validate_data
from simsend.data.configured import data_spec, load_config_baseline
from simsend.rates.demography import demography_source
from simsend.rates.sources import FixedParameters
from simsend.runner.distributed import Cluster
from simsend.runner.forecast import run_forecast as run
from simsend.runner.plan import as_config, parameter_source, run_source
from simsend.runner.scenarios import select
from simsend.runner.stream import run_zarr

__all__ = ["Cluster", "data_spec", "load_baseline", "parameter_source", "provision_types",
           "returns", "run", "run_source", "run_zarr", "validate"]


def load_baseline(cfg: SimConfig | str | Path) -> Baseline:
    """Build the baseline (pupils, pool, history) that a config's ``[data]`` table names.

    See :func:`simsend.data.configured.load_config_baseline`.
    """
    return load_config_baseline(as_config(cfg))


def returns(results: xr.Dataset | str | Path, fmt: str, out: str | Path | None = None,
            **kwargs) -> list[Path]:
    """Fill a council return from a run: an Excel workbook laid out like it, and a tidy CSV.

    The Python twin of ``simsend returns RESULTS --format lsrp|scap|dsg``; see
    :func:`simsend.publish.returns.returns` for ``kwargs`` (``costs``, ``area``,
    ``scenario``, ``suppress``, ``round_base``).

    Parameters
    ----------
    results : xarray.Dataset or path
        A run's results (raw draws), or the NetCDF / Zarr file ``simsend run`` wrote.
    fmt : {"lsrp", "scap", "dsg"}
        The return.
    out : path, optional
        The workbook (default beside a results file, ``<name>_<fmt>.xlsx``).

    Returns
    -------
    list of Path
        The workbook and the tidy CSV beside it.

    Raises
    ------
    simsend.publish.returns.ReturnsError
        An unknown format, or results lacking what a table needs (the message names it).

    Examples
    --------
    >>> import simsend  # doctest: +SKIP
    >>> simsend.api.returns("results/council.nc", "lsrp")  # doctest: +SKIP
    [PosixPath('results/council_lsrp.xlsx'), PosixPath('results/council_lsrp_tables.csv')]

    """
    from simsend.publish import returns as rt  # pandas, openpyxl: only when asked for
    from simsend.results.manifest import read_results

    fmt = str(fmt).lower()
    if fmt not in rt.FORMATS:  # before reading anything
        raise rt.ReturnsError(f"unknown return format {fmt!r}; expected one of "
                              f"{', '.join(rt.FORMATS)}")
    if out is None:
        if isinstance(results, xr.Dataset):
            raise rt.ReturnsError("give out= (the workbook) when passing a Dataset")
        out = Path(results).with_name(f"{Path(results).stem}_{fmt}.xlsx")
    ds = results if isinstance(results, xr.Dataset) else read_results(results)
    return rt.returns(ds, fmt, out, **kwargs)


def provision_types(results: xr.Dataset | str | Path, year: int | None = None):
    """EHC plans by the LSRP's 14 provision types, with bands from the draws.

    The Python twin of ``simsend provision-types RESULTS [--year Y]``: the table of
    :func:`simsend.analysis.lsrp.provision_table` for :func:`simsend.analysis.lsrp.provision_view`
    (specialist tier, SEN2 shares of the census ``year``, default the run's start year).

    Parameters
    ----------
    results : xarray.Dataset or path
        A run's results by placement (``[outputs] by`` includes ``"placement"``), or the
        NetCDF / Zarr file ``simsend run`` wrote.
    year : int, optional
        January census of the SEN2 shares.

    Returns
    -------
    pandas.DataFrame
        One row per (scenario,) year, (area,) and provision type: ``no``, ``provision_type``,
        ``label``, ``median``, ``p05``, ``p25``, ``p75``, ``p95``; ``attrs["notes"]`` holds the
        shares' census and the ASSUMPTION.

    Raises
    ------
    ConfigError
        Results without a placement dimension (the message names ``[outputs] by``).
    DataError
        An area with no SEN2 establishment counts, or no census at or before ``year``.

    Examples
    --------
    >>> import simsend  # doctest: +SKIP
    >>> simsend.api.provision_types("results/council_returns.nc").head(2)  # doctest: +SKIP

    """
    from simsend.analysis.lsrp import provision_notes, provision_table, provision_view
    from simsend.results.manifest import read_results

    ds = results if isinstance(results, xr.Dataset) else read_results(results)
    view = provision_view(ds, year=year)
    table = provision_table(view)
    table.attrs["notes"] = provision_notes(view)
    return table


def validate(cfg: SimConfig | str | Path) -> Report:
    """Check a config and every data file it names, with every check ``simsend run`` makes.

    First each data file on its own (:func:`simsend.data.validate_data`: findings by file and
    row); then, when those hold no error, what a run does before its first draw, with the same
    code: the baseline (:func:`simsend.data.configured.load_config_baseline`) and each run's
    parameter source (:func:`simsend.runner.plan.run_source`: the posterior, the scenarios'
    modifiers against the run's areas, the provision plan).  What would stop a run is reported
    as error findings instead of raised, so that every problem is listed.

    Parameters
    ----------
    cfg : SimConfig or path
        The config (a path is loaded).

    Returns
    -------
    simsend.data.Report
        Findings (errors and warnings); ``report.ok`` is False when any error was found.

    Raises
    ------
    ConfigError
        When the config itself is invalid.

    """
    cfg = as_config(cfg)
    report = validate_data(data_spec(cfg))
    if not report.ok:
        parts = ["the baseline", *(["the scenarios"] if cfg.scenarios else []),
                 *(["the provision plan"] if cfg.provision is not None else [])]
        listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
        report.add("warning", cfg.source_path, None, None, None,
                   f"{listed} {'were' if len(parts) > 1 else 'was'} not checked: fix the "
                   "errors above first")
        return report
    try:
        base = load_config_baseline(cfg)
    except (ConfigError, DataError) as exc:
        _add_failure(report, cfg, exc)
        return report
    try:
        rates = parameter_source(cfg, base)  # the posterior, read once
    except ValueError as exc:
        _add_failure(report, cfg, exc)
        rates = FixedParameters(cfg.model, base.births)  # still check scenarios and the plan
    for scenario in select(cfg, None):
        try:
            run_source(cfg, base, scenario, rates)
        except ValueError as exc:  # ConfigError, DataError
            _add_failure(report, cfg, exc)
    try:  # births and migration: the population projection file, enough census years
        demography_source(cfg, base)
    except ValueError as exc:
        _add_failure(report, cfg, exc)
    return report


def _add_failure(report: Report, cfg: SimConfig, exc: ValueError) -> None:
    """Add what stopped a run's preparation to ``report`` (once; its own findings if it has any)."""
    findings = getattr(exc, "findings", ())
    if not findings:
        findings = (Finding("error", cfg.source_path, None, None, None,
                            f"simsend run stops here: {exc}"),)
    for f in findings:
        if f.format() not in {g.format() for g in report.findings}:
            report.findings.append(f)
