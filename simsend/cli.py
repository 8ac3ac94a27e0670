"""Command line: thin shells over :mod:`simsend.api` (parse, validate, call, write)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from simsend import api
from simsend.config import ConfigError
from simsend.io import OutputPathError, WriteError, check_output, write_netcdf
from simsend.progress import Progress, configure_logging

USER_ERROR = 2
ENVIRONMENT_ERROR = 1
RESULT_SUFFIXES = (".nc", ".nc4", ".netcdf", ".zarr")
"""What `simsend run` writes: NetCDF, or a Zarr store."""


def _check_outputs(inputs, *outputs) -> None:
    """Refuse output paths that would destroy an input or cannot be written, before any work.

    One line naming the path and exit status 2 (through :func:`_user_errors` and
    :func:`_output_errors`).  ``outputs`` are ``(option, path)`` pairs; ``None`` paths are
    skipped; a ``.zarr`` path may be an existing store.  The rules are
    :func:`simsend.io.check_output`'s.
    """
    for option, path in outputs:
        if path is not None:
            check_output(path, inputs, option=option, store=Path(path).suffix == ".zarr")


def _user_errors(fn):
    """Turn user mistakes (bad config or data) into a clear message and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from simsend.data import DataError

        try:
            return fn(*args, **kwargs)
        except (ConfigError, DataError, OutputPathError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(USER_ERROR)
        except WriteError as exc:  # the machine's fault (disk full, I/O), not the user's
            click.echo(f"error: {exc}", err=True)
            sys.exit(ENVIRONMENT_ERROR)

    return wrapper


CALIBRATION_LIBRARIES = ("pymc", "arviz")
"""What ``calibrate`` and ``backtest`` need beyond the core (the ``calib`` extra)."""


def _need_calibration(command: str) -> None:
    """Stop with one line and exit status 2 when the calibration libraries are not installed."""
    import importlib.util

    missing = [m for m in CALIBRATION_LIBRARIES if importlib.util.find_spec(m) is None]
    if missing:
        click.echo(f"error: simsend {command} needs {' and '.join(missing)}, which the core "
                   "install leaves out; install them with: pip install 'simsend[calib]' "
                   "(in a clone: pip install -e '.[calib]')", err=True)
        sys.exit(USER_ERROR)


@click.group()
@click.version_option(package_name="simsend")
def main() -> None:
    """simsend: probabilistic demand simulation for England's SEND system."""


@main.command("run")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--draws", type=click.IntRange(min=1),
              help="Monte Carlo draws (overrides run.draws).")
@click.option("--seed", type=click.IntRange(min=0), help="Root seed (overrides run.seed).")
@click.option("--area", "areas", multiple=True,
              help="Area code to run (repeatable; 'all' = every council). Overrides data.areas.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Output path (overrides outputs.path): NetCDF, or Zarr if it ends in .zarr.")
@click.option("--quiet", is_flag=True, help="No progress bar or messages.")
@click.option("--verbose", is_flag=True, help="Debug log lines too.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Run draws as Dask tasks on a local cluster of this many processes.")
@click.option("--scheduler", help="Run draws as Dask tasks on the cluster at this address.")
@click.option("--draw-chunk", type=click.IntRange(min=1),
              help="Draws per Dask task, and per chunk streamed into a .zarr output.")
@click.option("--area-chunk", type=click.IntRange(min=1), help="Areas per Dask task.")
@click.option("--scenario", "scenarios", multiple=True,
              help="Scenario of the config to run against the baseline (repeatable; "
                   "default: every scenario).")
@_user_errors
def run_cmd(config: Path, draws, seed, areas, out, quiet, workers, scheduler, draw_chunk,
            area_chunk, scenarios, verbose=False) -> None:
    """Run the forecast in CONFIG and write its results as NetCDF (or Zarr)."""
    from simsend.config import load

    if workers is not None and scheduler is not None:
        raise click.UsageError("give --workers or --scheduler, not both")
    cfg = load(config)
    path = out or Path(cfg.outputs.path)
    _check_outputs([config], ("--out" if out else "outputs.path", path))
    if path.suffix.lower() not in RESULT_SUFFIXES:
        click.echo(f"error: {'--out' if out else 'outputs.path'} {path}: results are written "
                   f"as NetCDF or Zarr ({', '.join(RESULT_SUFFIXES)}); for CSV, Parquet or "
                   "Excel run simsend export on the results", err=True)
        sys.exit(USER_ERROR)
    zarr, cluster = path.suffix == ".zarr", workers is not None or scheduler is not None
    if area_chunk and not cluster or draw_chunk and not (cluster or zarr):
        raise click.UsageError("--area-chunk needs --workers or --scheduler; --draw-chunk "
                               "needs one of them or a .zarr output")
    log = configure_logging(quiet, verbose)
    log.debug("config %s (sha256 %s), seed %s", config, cfg.sha256,
              cfg.run.seed if seed is None else seed)
    kw = dict(draws=draws, seed=seed, areas=tuple(areas) or None,
              scenario=list(scenarios) or None,
              cluster=api.Cluster(workers=workers, scheduler=scheduler, draw_chunk=draw_chunk,
                                  area_chunk=area_chunk))
    from simsend.runner.distributed import ClusterError

    try:
        with Progress("draws", quiet=quiet) as bar:
            if zarr:  # streamed chunk by chunk: memory does not grow with draws
                api.run_zarr(cfg, path, progress=bar, **kw)
            else:
                write_netcdf(api.run(cfg, progress=bar, **kw), path)
    except ClusterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USER_ERROR)
    if not quiet:
        click.echo(f"wrote {path} ({draws or cfg.run.draws} draws, years "
                   f"{cfg.run.start_year}-{cfg.run.end_year})")


def _log_options(fn):
    fn = click.option("--verbose", is_flag=True, help="Debug log lines too.")(fn)
    return click.option("--quiet", is_flag=True, help="Errors only; no progress.")(fn)


def _areas_label(cfg) -> str:
    areas = cfg.data.areas
    if tuple(areas) == ("all",):
        return "every council"
    if tuple(areas) == ("E92000001",):
        return "England"
    return ", ".join(areas) if len(areas) <= 3 else f"{len(areas)} areas"


def _with_areas(config: Path, areas):
    """Parse CONFIG; ``--area`` options replace its ``data.areas``."""
    from simsend.config import load as _load

    cfg = _load(config)
    return cfg.replace_data(areas=tuple(areas)) if areas else cfg


@main.command("calibrate")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path),
              help="Artefact path (default models/<areas>_<year>.nc).")
@click.option("--origin", type=int, help="Last census year used (default run.start_year).")
@click.option("--area", "areas", multiple=True,
              help="Area code(s) to calibrate instead of data.areas ('all' = every council).")
@click.option("--draws", type=click.IntRange(min=50), default=2000, show_default=True)
@click.option("--tune", type=click.IntRange(min=50), default=1000, show_default=True)
@click.option("--chains", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), help="Sampler seed (default run.seed).")
@click.option("--allow-failed-diagnostics", is_flag=True,
              help="Write the artefact even if r-hat/ESS/divergences fail (recorded in it).")
@click.option("--sampler", type=click.Choice(["pymc", "nutpie"]), default="pymc",
              show_default=True, help="NUTS implementation (nutpie: faster on many areas).")
@click.option("--target-accept", type=click.FloatRange(0.5, 0.999), default=0.99,
              show_default=True, help="NUTS target acceptance rate.")
@click.option("--slim", is_flag=True,
              help="Keep only what a forecast reads, as float32 (a posterior to ship).")
@_log_options
@_user_errors
def calibrate_cmd(config: Path, out, origin, areas, draws, tune, chains, seed,
                  allow_failed_diagnostics, sampler, target_accept, slim, quiet=False,
                  verbose=False) -> None:
    """Fit the transition rates of CONFIG to its data with PyMC and save the posterior."""
    _check_outputs([config], ("--out", out))
    _need_calibration("calibrate")
    from simsend.calibration import CalibrationError, calibrate
    from simsend.calibration.targets import TargetsError

    configure_logging(quiet, verbose)
    cfg = _with_areas(config, areas)
    try:
        path = calibrate(cfg, out, draws=draws, tune=tune, chains=chains, origin=origin,
                         random_seed=seed, allow_failed_diagnostics=allow_failed_diagnostics,
                         sampler=sampler, target_accept=target_accept, slim=slim,
                         progressbar=Progress("sampling", quiet=quiet).mode == "bar")
    except (CalibrationError, TargetsError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USER_ERROR)
    if not quiet:
        click.echo(f"wrote {path}")


@main.command("calibrate-pipeline")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path),
              help="Artefact path (default models/pipeline_<origin + 1>.nc).")
@click.option("--origin", type=int, help="Last calendar year fitted (default: the last in "
              "the extract, 2024).")
@click.option("--draws", type=click.IntRange(min=50), default=1000, show_default=True,
              help="NUTS tuning steps and draws per chain (300 draws are saved).")
@click.option("--chains", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), help="Sampler seed (default run.seed).")
@_log_options
@_user_errors
def calibrate_pipeline_cmd(config: Path, out, origin, draws, chains, seed, quiet=False,
                           verbose=False) -> None:
    """Estimate the statutory pipeline's rates of every council (PyMC) and save the draws."""
    _check_outputs([config], ("--out", out))
    _need_calibration("calibrate-pipeline")
    from simsend.calibration.pipeline import calibrate_pipeline

    configure_logging(quiet, verbose)
    path = calibrate_pipeline(config, out, origin=origin, draws=draws, tune=draws,
                              chains=chains, seed=seed)
    if not quiet:
        click.echo(f"wrote {path}")


@main.command("backtest")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--origin", "origins", type=int, multiple=True,
              help="Last census year the fit may see; repeat for rolling origins.")
@click.option("--origins", "origin_range", metavar="FIRST-LAST",
              help="Every origin from FIRST to LAST (e.g. 2019-2024), instead of --origin.")
@click.option("--horizon", type=click.IntRange(min=1), default=3, show_default=True,
              help="Years forecast from each origin.")
@click.option("--draws", type=click.IntRange(min=10), default=200, show_default=True,
              help="Forecast replicates per origin.")
@click.option("--area", "areas", multiple=True,
              help="Area code(s) instead of data.areas ('all' = every council).")
@click.option("--out", type=click.Path(path_type=Path),
              help="CSV of the score table (default results/backtest_<origins>.csv); the "
                   "scored points go to <out>_points.csv, the chart to <out>.png and the PIT "
                   "histograms to <out>_pit.png.")
@click.option("--allow-failed-diagnostics", is_flag=True,
              help="Score fits whose diagnostics failed (otherwise they stop the backtest).")
@click.option("--calib-draws", type=click.IntRange(min=50), default=2000, show_default=True,
              help="Posterior draws per chain of each origin's calibration.")
@click.option("--tune", type=click.IntRange(min=50), default=1000, show_default=True)
@click.option("--chains", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--sampler", type=click.Choice(["pymc", "nutpie"]), default="pymc",
              show_default=True, help="NUTS implementation (nutpie: faster on many areas).")
@click.option("--target-accept", type=click.FloatRange(0.5, 0.999), default=0.99,
              show_default=True, help="NUTS target acceptance rate.")
@_log_options
@_user_errors
def backtest_cmd(config: Path, origins, origin_range, horizon: int, draws: int, areas, out,
                 allow_failed_diagnostics, calib_draws, tune, chains, sampler, target_accept,
                 quiet=False, verbose=False) -> None:
    """Calibrate on data up to each origin, forecast the years after, score against the record.

    Scores EHC plans (in total and by age group), SEN support, new and ceased plans per
    origin, area and lead, against two naive baselines (3-year growth with a band from its
    own past errors; a 5-year linear trend).
    """
    import re

    if origins and origin_range:
        raise click.UsageError("give --origin or --origins, not both")
    if not origins and not origin_range:
        raise click.UsageError("give the backtest origins: --origin YEAR (repeatable) or "
                               "--origins FIRST-LAST")
    if origin_range:
        m = re.fullmatch(r"\s*(\d{4})\s*-\s*(\d{4})\s*", origin_range)
        if not m or int(m[1]) > int(m[2]):
            raise click.BadParameter(
                f"{origin_range!r} is not a range of census years FIRST-LAST with FIRST <= LAST"
                " (e.g. 2019-2024)", param_hint="'--origins'")
        origins = list(range(int(m[1]), int(m[2]) + 1))
        tag = f"{origins[0]}-{origins[-1]}"
    else:
        origins = list(dict.fromkeys(origins))
        tag = "_".join(str(o) for o in origins)
    path = out or Path("results") / f"backtest_{tag}.csv"
    points_path = path.with_name(f"{path.stem}_points.csv")
    chart_path = path.with_suffix(".png")
    pit_path = path.with_name(f"{path.stem}_pit.png")
    _check_outputs([config], ("--out", path), ("--out", points_path), ("--out", chart_path),
                   ("--out", pit_path))
    _need_calibration("backtest")
    import pandas as pd

    from simsend.calibration import CalibrationError
    from simsend.calibration.backtest import plot_backtest, plot_pit, rolling_backtest
    from simsend.calibration.targets import TargetsError

    configure_logging(quiet, verbose)
    cfg = _with_areas(config, areas)
    try:
        with Progress("forecast draws", quiet=quiet) as bar:
            table = rolling_backtest(cfg, origins, horizon, draws,
                                     allow_failed_diagnostics=allow_failed_diagnostics,
                                     calib_draws=calib_draws, tune=tune, chains=chains,
                                     sampler=sampler, target_accept=target_accept,
                                     progress=bar,
                                     progressbar=bar.mode == "bar")
    except (CalibrationError, TargetsError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USER_ERROR)
    except ValueError as exc:  # e.g. no recorded year after the origin
        click.echo(f"error: {exc}", err=True)
        sys.exit(USER_ERROR)
    points = table.attrs["points"]
    _write_csv(table, path)
    _write_csv(points, points_path)
    label = (f"{_areas_label(cfg)}, origin{'s' if len(origins) > 1 else ''} "
             f"{tag.replace('_', ', ')}")
    chart = plot_backtest(points, chart_path, table.attrs.get("record"),
                          title=f"simsend backtest, {label}")
    pit = plot_pit(points, pit_path, title=f"simsend backtest, {label}: PIT histograms")
    if quiet:
        return
    pooled = table[(table["origin"] == "all") & (table["lead"] == "all")
                   & (table["size_band"] == "all") & (table["area"] == "all")]
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.float_format", "{:.3f}".format):
        click.echo(pooled.drop(columns=["origin", "lead", "size_band", "area"])
                   .to_string(index=False))
    click.echo(f"pooled over origins, leads and areas; per origin, lead, size band and area "
               f"in {path}")
    click.echo(f"wrote {path}, {points_path}, {chart} and {pit}")


@main.command("validate")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_user_errors
def validate_cmd(config: Path) -> None:
    """Check CONFIG and every data file it names, without running."""
    report = api.validate(config)
    click.echo(report.format())
    if not report.ok:
        sys.exit(USER_ERROR)


def _parse_selects(items) -> dict:
    """``("tier=specialist", "area=E06000017")`` -> ``{"tier": ["specialist"], ...}``."""
    out: dict = {}
    for item in items:
        dim, sep, val = item.partition("=")
        if not sep or not dim or not val:
            raise click.BadParameter(f"{item!r}: expected DIM=VALUE", param_hint="--select")
        out.setdefault(dim, []).append(val)
    return out


def _fmt(v: float) -> str:
    """Format counts as whole numbers with thousands separators; shares to three figures."""
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _show_table(table, csv_path: Path | None) -> None:
    """Print a compare/monitor table; also write it as CSV when asked."""
    click.echo(table.to_string(index=False, float_format=_fmt))
    if csv_path is not None:
        _write_csv(table, csv_path)
        click.echo(f"wrote {csv_path}")


def _write_csv(table, path: Path) -> None:
    """Write a table atomically (temporary file, then rename)."""
    from simsend.io import atomic_write

    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


@main.command("compare")
@click.argument("results", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--variable", default="n_pupils", show_default=True,
              help="Result variable to compare.")
@click.option("--by", "by", multiple=True, help="Dimension to keep (repeatable; default year).")
@click.option("--select", "selects", multiple=True,
              help="Keep only DIM=VALUE before summing (repeatable), e.g. tier=specialist.")
@click.option("--baseline", default="baseline", show_default=True,
              help="Scenario the others are compared with.")
@click.option("--scenario", "scenarios", multiple=True, help="Scenario to compare (repeatable).")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path),
              help="Also write the table as CSV.")
@_user_errors
def compare_cmd(results, variable, by, selects, baseline, scenarios, csv_path) -> None:
    """Differences scenario minus baseline per draw in RESULTS, with bands (paired draws)."""
    from simsend.analysis.compare import CompareError, compare

    _check_outputs(results, ("--csv", csv_path))
    try:
        table = compare(list(results), variable=variable, by=tuple(by) or ("year",),
                        select=_parse_selects(selects), baseline=baseline,
                        scenarios=list(scenarios) or None)
    except CompareError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USER_ERROR)
    _show_table(table, csv_path)


@main.command("monitor")
@click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("actuals", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--counterfactual", default="baseline", show_default=True,
              help="Scenario standing for 'no reform' (observed minus its draws).")
@click.option("--forecast", help="Scenario to rank the records in (default: counterfactual).")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path),
              help="Also write the table as CSV.")
@_user_errors
def monitor_cmd(results, actuals, counterfactual, forecast, csv_path) -> None:
    """Rank the recorded figures in ACTUALS within the forecast draws in RESULTS."""
    from simsend.analysis.compare import CompareError
    from simsend.analysis.monitor import monitor

    _check_outputs([results, actuals], ("--csv", csv_path))
    try:
        table = monitor(results, actuals, forecast=forecast, counterfactual=counterfactual)
    except CompareError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USER_ERROR)
    _show_table(table, csv_path)


# ----------------------------------------------------------------------------- outputs
# plot / export / report / info: thin shells over simsend.publish.plot, .export, .report, .manifest.


def _output_errors(fn):
    """Unreadable results or impossible charts/exports: a clear message and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from simsend.publish.export import ExportError
        from simsend.publish.plot import PlotError
        from simsend.results.manifest import ResultsError

        try:
            return fn(*args, **kwargs)
        except (ResultsError, ExportError, PlotError, OutputPathError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(USER_ERROR)
        except WriteError as exc:  # the machine's fault (disk full, I/O), not the user's
            click.echo(f"error: {exc}", err=True)
            sys.exit(ENVIRONMENT_ERROR)

    return wrapper


def _results_arg(fn):
    fn = _log_options(fn)
    return click.argument("results", type=click.Path(path_type=Path))(fn)


def _split(items) -> list[str]:
    """``("tier,need", "area")`` -> ``["tier", "need", "area"]``."""
    return [x.strip() for item in items for x in item.split(",") if x.strip()]


def _chart_paths(out: Path, formats) -> list[Path]:
    """Return the files ``plot`` writes for ``--out`` (without suffix, or with the format's)."""
    base = Path(out)
    fmts = formats or ("png",)
    base = base.with_suffix("") if base.suffix.lower().lstrip(".") in ("png", "svg") else base
    return [base.with_name(f"{base.name}.{f}") for f in fmts]


@main.command("plot")
@_results_arg
@click.option("--variable", default="n_pupils", show_default=True, help="Variable to chart.")
@click.option("--by", "facet", help="Marginal drawn as small multiples (default tier).")
@click.option("--select", "selects", multiple=True,
              help="Keep only DIM=VALUE (repeatable; VALUE a+b sums several).")
@click.option("--format", "formats", multiple=True, type=click.Choice(["png", "svg"]),
              help="Image format (repeatable; default png).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Output path without suffix (default beside RESULTS).")
@click.option("--no-history", is_flag=True, help="Do not plot the recorded figures.")
@_output_errors
def plot_cmd(results, quiet, verbose, variable, facet, selects, formats, out, no_history):
    """Fan charts (median, 50% and 90% bands, recorded history) of RESULTS."""
    from simsend.publish.plot import plot
    from simsend.results.manifest import read_results

    configure_logging(quiet, verbose)
    sel = _parse_selects(selects)
    if out is not None:
        _check_outputs([results], *(("--out", p) for p in _chart_paths(out, formats)))
    ds = read_results(results)
    if facet is None and variable in ds and "tier" in ds[variable].dims and "tier" not in sel:
        facet = "tier"
    name = "_".join([variable, *(f"{k}-{'+'.join(v)}" for k, v in sel.items())]
                    + ([f"by_{facet}"] if facet else []))
    if out is None:
        out = Path(results).with_name(f"{Path(results).stem}_{name}")
        _check_outputs([results], *(("--out", p) for p in _chart_paths(out, formats)))
    for p in plot(ds, out, variable, facet=facet, select=sel, formats=formats or ("png",),
                  history=not no_history):
        if not quiet:
            click.echo(f"wrote {p}")


@main.command("export")
@_results_arg
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "xlsx"]), default="csv",
              show_default=True)
@click.option("--out", type=click.Path(path_type=Path),
              help="Output file (default beside RESULTS with the format's suffix).")
@click.option("--variable", "variables", multiple=True, help="Variable (repeatable; default all).")
@click.option("--by", "by", multiple=True,
              help="Marginals to keep, e.g. tier,area; the others are summed ('all' keeps every "
                   "one). Default: every marginal for a single run; for results with scenarios, "
                   "scenario x year x tier (x area when there are several areas).")
@click.option("--quantile", "quantiles", multiple=True, type=click.FloatRange(0, 1),
              help="Quantile to report beside the mean (repeatable; default .05 .25 .5 .75 .95).")
@click.option("--suppress", type=click.FloatRange(min=0),
              help="Suppress values between 0 and N, with secondary suppression (default 5 for "
                   "results of any area below England, whatever --by keeps; else 0).")
@click.option("--round", "round_base", type=click.FloatRange(min=0),
              help="Round published values to the nearest multiple (e.g. 5).")
@click.option("--no-disclosure", is_flag=True,
              help="No suppression or rounding, even for council tables (not for sharing).")
@click.option("--no-totals", is_flag=True, help="Leave out the 'total' rows.")
@click.option("--max-gib", type=click.FloatRange(min=0, min_open=True), default=2.0,
              show_default=True,
              help="Refuse an export whose table would take more memory than this (estimated "
                   "before any row is built; CSV and Parquet are written in chunks).")
@_output_errors
def export_cmd(results, quiet, verbose, fmt, out, variables, by, quantiles, suppress,
               round_base, no_disclosure, no_totals, max_gib):
    """Tidy long tables of the bands in RESULTS for Excel, Power BI and R.

    By default a single run's table keeps every marginal; results with scenarios keep
    scenario x year x tier (and area when they hold several areas): use --by to choose.
    """
    from simsend.publish.export import ExportError, plan, write_plan
    from simsend.results.manifest import read_results
    from simsend.results.summary import DEFAULT_QUANTILES

    log = configure_logging(quiet, verbose)
    if no_disclosure and (suppress or round_base):
        raise click.UsageError("--no-disclosure cannot be combined with --suppress/--round")
    out = out or Path(results).with_suffix(f".{fmt}")
    _check_outputs([results], ("--out", out), ("--out", out.with_name(
        f"{out.stem}.manifest.json") if fmt == "csv" else None))
    ds = read_results(results)
    try:
        p = plan(ds, variables=_split(variables) or None, by=_split(by) or None,
                 quantiles=quantiles or DEFAULT_QUANTILES,
                 suppress=0 if no_disclosure else suppress,
                 round_base=0 if no_disclosure else round_base, totals=not no_totals)
        p.check(max_gib * 2**30)
    except ExportError as exc:
        raise ExportError(f"{results}: {exc}") from None
    log.info("%s", p.disclosure.describe())
    for path in write_plan(p, out, fmt):
        if not quiet:
            click.echo(f"wrote {path}")


@main.command("report")
@_results_arg
@click.option("--out", type=click.Path(path_type=Path),
              help="HTML file (default beside RESULTS, .html).")
@click.option("--backtest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Backtest score CSV (simsend backtest) to show as forecast skill.")
@click.option("--no-history", is_flag=True, help="Do not plot the recorded figures.")
@_output_errors
def report_cmd(results, quiet, verbose, out, backtest, no_history):
    """One self-contained HTML report of RESULTS (charts embedded; no server needed)."""
    from simsend.publish.report import report
    from simsend.results.manifest import read_results

    configure_logging(quiet, verbose)
    out = out or Path(results).with_suffix(".html")
    _check_outputs([results, backtest], ("--out", out))
    ds = read_results(results)
    path = report(ds, out, backtest=backtest, history=not no_history)
    if not quiet:
        click.echo(f"wrote {path}")


@main.command("returns")
@_results_arg
@click.option("--format", "fmt", required=True, metavar="lsrp|scap|dsg",
              help="lsrp: local SEND reform plan tables; scap: specialist place forecasts; "
                   "dsg: DSG management plan (needs --costs).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Workbook (.xlsx; default beside RESULTS, <name>_<format>.xlsx); the tidy "
                   "CSV goes beside it as <name>_tables.csv.")
@click.option("--area", help="Council (GSS code) when RESULTS hold several areas.")
@click.option("--scenario", help="Scenario to report (lsrp, scap; default baseline).")
@click.option("--costs", type=click.Path(dir_okay=False, path_type=Path),
              help="Cost file with a [dsg] table (dsg), e.g. configs/costs/council_2021_22.toml.")
@click.option("--suppress", type=click.FloatRange(min=0),
              help="Suppress counts between 0 and N, as export does (default 5 below England).")
@click.option("--round", "round_base", type=click.FloatRange(min=0),
              help="Round published counts to the nearest multiple.")
@click.option("--no-disclosure", is_flag=True, help="No suppression or rounding (not for sharing).")
@_output_errors
@_user_errors
def returns_cmd(results, fmt, out, **opts):
    """Fill a return from RESULTS: an Excel workbook laid out like it, and a tidy CSV."""
    from simsend.publish.returns import tables_path

    quiet = opts.pop("quiet")
    configure_logging(quiet, opts.pop("verbose"))
    if opts.pop("no_disclosure"):
        if opts["suppress"] or opts["round_base"]:
            raise click.UsageError("--no-disclosure cannot be combined with --suppress/--round")
        opts.update(suppress=0, round_base=0)
    out = out or Path(results).with_name(f"{Path(results).stem}_{str(fmt).lower()}.xlsx")
    _check_outputs([results, opts["costs"]], ("--out", out), ("--out", tables_path(out)))
    for p in api.returns(results, fmt, out, **opts):
        if not quiet:
            click.echo(f"wrote {p}")


@main.command("info")
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--config", "show_config", is_flag=True, help="Also print the config TOML.")
@click.option("--json", "as_json", is_flag=True, help="The manifest as JSON.")
@_output_errors
def info_cmd(results, show_config, as_json):
    """Print the run manifest of RESULTS: config, hashes, seed, versions, commit, timings."""
    import json

    from simsend.results.manifest import format_manifest, manifest, read_results

    m = manifest(read_results(results))
    click.echo(json.dumps(m, indent=1, default=str) if as_json
               else format_manifest(m, config=show_config))


@main.command("goalseek")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--event", type=click.Choice(["early_intervention", "request_surge"]),
              default="early_intervention", show_default=True,
              help="Modifier whose size is sought (effect, or surge factor).")
@click.option("--years", help="Census years the modifier applies, e.g. 2026-2030.")
@click.option("--variable", default="n_pupils", show_default=True, help="Target variable.")
@click.option("--select", "selects", multiple=True,
              help="Target filter DIM=VALUE (repeatable; default tier=specialist).")
@click.option("--target-year", type=int, required=True, help="Census year of the target.")
@click.option("--limit", type=float, required=True, help="Keep the target at or under this.")
@click.option("--prob", type=click.FloatRange(0, 1, min_open=True), default=0.9,
              show_default=True, help="Required probability.")
@click.option("--lo", type=float, default=0.0, show_default=True)
@click.option("--hi", type=float, default=0.9, show_default=True)
@click.option("--tol", type=float, default=0.01, show_default=True)
@click.option("--draws", type=click.IntRange(min=1), help="Draws per evaluation.")
@click.option("--area", "areas", multiple=True,
              help="Area code to run (repeatable; 'all' = every council). Overrides data.areas.")
@click.option("--seed", type=click.IntRange(min=0), help="Root seed (overrides run.seed).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Also write the search (each size tried, its probability) as CSV.")
@_user_errors
def goalseek_cmd(config, event, years, variable, selects, target_year, limit, prob, lo, hi,
                 tol, draws, areas, seed, out) -> None:
    """Smallest size of a modifier keeping a target under LIMIT with probability PROB."""
    from simsend.analysis.compare import CompareError
    from simsend.analysis.goalseek import goal_seek_scenario, target_of
    from simsend.config.scenarios import early_intervention, request_surge

    span = None
    if years:
        a, _, b = years.partition("-")
        try:
            span = (int(a), int(b or a))
        except ValueError:
            raise click.BadParameter(f"{years!r}: expected YYYY-YYYY",
                                     param_hint="--years") from None
    make = {"early_intervention": lambda x: early_intervention(x, span),
            "request_surge": lambda x: request_surge(x, span)}[event]
    select = _parse_selects(selects) or {"tier": ["specialist"]}
    _check_outputs([config], ("--out", out))
    kw = {k: v for k, v in (("draws", draws), ("seed", seed),
                            ("areas", tuple(areas) or None)) if v is not None}
    try:
        res = goal_seek_scenario(config, make, target_of(variable, target_year, select), limit,
                                 prob, lo, hi, tol, run_kwargs=kw)
    except (CompareError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(USER_ERROR)
    for x, p in res.history:
        click.echo(f"size {x:.4g}: P(target <= {limit:g}) = {p:.3f}")
    where = ", ".join(f"{k}={'+'.join(map(str, v)) if isinstance(v, list | tuple) else v}"
                      for k, v in select.items())
    click.echo(f"{event} size {res.size:.4g} keeps {variable} ({where}) in {target_year} at or "
               f"under {limit:g} with probability {res.prob:.3f} (goal {prob:g})")
    if out is not None:
        import pandas as pd

        from simsend.io import atomic_write

        table = pd.DataFrame(res.history, columns=["size", "probability"])
        table.insert(0, "event", event)
        table["chosen"] = table["size"] == res.size
        atomic_write(out, lambda tmp: table.to_csv(tmp, index=False))
        click.echo(f"wrote {out}")


@main.command("costs")
@_results_arg
@click.argument("costs_toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path),
              help="NetCDF of the spend draws (default beside RESULTS, <name>_costs.nc).")
@click.option("--seed", type=click.IntRange(min=0),
              help="Seed of the cost draws (default: the run's root seed).")
@click.option("--budget-threshold", type=float,
              help="Deficit size in GBP for P(spend - budget > X) (default 0; needs [budget]).")
@_output_errors
@_user_errors
def costs_cmd(results, costs_toml, quiet, verbose, out, seed, budget_threshold):
    """Spend in pounds, with bands, from RESULTS and the unit costs in COSTS_TOML."""
    from simsend.analysis.costs import load_costs, spend, spend_table
    from simsend.results.manifest import read_results

    configure_logging(quiet, verbose)
    out = out or Path(results).with_name(f"{Path(results).stem}_costs.nc")
    _check_outputs([results, costs_toml], ("--out", out))
    costs = load_costs(costs_toml)
    if budget_threshold is not None and costs.budget is None:
        raise click.UsageError(f"--budget-threshold needs a [budget] table in {costs_toml}")
    ds = spend(read_results(results), costs, seed=seed, threshold=budget_threshold or 0.0)
    path = write_netcdf(ds, out)
    if not quiet:
        click.echo(f"total spend, {ds.attrs['price_basis']}:")
        table = spend_table(ds)
        click.echo(table.to_string(index=False, na_rep="-", float_format=lambda v:
                                   f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"))
        if table.isna().to_numpy().any():
            click.echo("(-: not simulated, e.g. assessments in the baseline year, which has no "
                       "flows)")
        click.echo(f"wrote {path}")


@main.command("sensitivity")
@_results_arg
@click.option("--costs", "costs_toml", type=click.Path(dir_okay=False, path_type=Path),
              help="Cost file: adds total spend as an output and unit costs as inputs.")
@click.option("--year", type=int, help="Census year of the outputs (default: the last).")
@click.option("--scenario", help="Scenario to analyse (default baseline).")
@click.option("--posterior", type=click.Path(dir_okay=False, path_type=Path),
              help="Posterior artefact that fed the run (default: the shipped one it names).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the bootstrap and permutation draws.")
@click.option("--no-delta", is_flag=True, help="Skip SALib's delta index (faster).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Inputs per output in the chart.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="CSV of the indices, one row per output and input.")
@click.option("--chart", type=click.Path(path_type=Path),
              help="Ranked bar chart (.png or .svg).")
@_output_errors
@_user_errors
def sensitivity_cmd(results, quiet, verbose, costs_toml, year, scenario, posterior, seed,
                    no_delta, top, out, chart):
    """Which rates and costs drive specialist demand and spend in RESULTS (Sobol' S1)."""
    from simsend.analysis.sensitivity import SensitivityError, save_chart, sensitivity, to_table
    from simsend.results.manifest import read_results

    configure_logging(quiet, verbose)
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise click.BadParameter(f"{chart}: expected a .png or .svg path", param_hint="--chart")
    _check_outputs([results, costs_toml, posterior], ("--out", out), ("--chart", chart))
    try:
        res = sensitivity(read_results(results), costs_toml, year=year, scenario=scenario,
                          posterior=posterior, seed=seed, delta=not no_delta)
    except SensitivityError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USER_ERROR)
    table = to_table(res)
    _write_csv(table, out)
    paths = [out] + ([save_chart(res, chart, top=top)] if chart is not None else [])
    if not quiet:
        cols = ["output", "rank", "input", "S1", "S1_low", "S1_high", "p_value"]
        click.echo(table[table["rank"] <= top][cols].to_string(index=False,
                                                               float_format="{:.3f}".format))
        click.echo(f"wrote {', '.join(map(str, paths))}")


@main.command("indicators")
@_results_arg
@click.option("--by", "by", multiple=True, help="Result dims to keep, e.g. --by area.")
@click.option("--years", help="Census years to show, comma-separated (default: all).")
@click.option("--out", type=click.Path(path_type=Path),
              help="CSV of the bands (5%, median, 95%) per indicator, scenario and year.")
@_output_errors
@_user_errors
def indicators_cmd(results, quiet, verbose, by, years, out):
    """Outcome indicators of RESULTS with bands: inclusion, timeliness, places, out of area."""
    from simsend.analysis.indicators import IndicatorError, indicator_table, indicators
    from simsend.results.manifest import read_results

    configure_logging(quiet, verbose)
    _check_outputs([results], ("--out", out))
    try:
        yrs = None if not years else [int(y) for y in _split([years])]
    except ValueError:
        raise click.BadParameter(f"{years!r}: expected years like 2025,2030",
                                 param_hint="--years") from None
    ds = read_results(results)
    if yrs is not None and (bad := [y for y in yrs if y not in ds["year"].values]):
        click.echo(f"error: {results}: years {bad} not in the results "
                   f"({int(ds['year'].min())}-{int(ds['year'].max())})", err=True)
        sys.exit(USER_ERROR)
    try:
        ind = indicators(ds, by=_split(by))
    except IndicatorError as exc:
        click.echo(f"error: {results}: {exc}", err=True)
        sys.exit(USER_ERROR)
    table = indicator_table(ind, years=yrs)
    if not quiet:
        click.echo(table.to_string(index=False, float_format=_fmt))
        if ind.attrs.get("not_available"):
            click.echo(f"not available: {ind.attrs['not_available']}")
    if out is not None:
        _write_csv(table, out)
        if not quiet:
            click.echo(f"wrote {out}")


@main.command("provision-types")
@_results_arg
@click.option("--year", type=int,
              help="January census of the SEN2 shares (default: the run's start year; the "
                   "latest complete census at or before it is used).")
@click.option("--out", type=click.Path(path_type=Path),
              help="CSV of the bands (median, 5%, 25%, 75%, 95%) per year and provision type.")
@_output_errors
@_user_errors
def provision_types_cmd(results, quiet, verbose, year, out):
    """EHC plans in RESULTS by the LSRP's 14 provision types, with bands from the draws."""
    configure_logging(quiet, verbose)
    _check_outputs([results], ("--out", out))
    table = api.provision_types(results, year=year)
    if not quiet:
        click.echo(table.drop(columns="label").to_string(index=False, float_format=_fmt))
        for line in table.attrs["notes"]:
            click.echo(line)
    if out is not None:
        _write_csv(table, out)
        if not quiet:
            click.echo(f"wrote {out}")


@main.command("dsg")
@_results_arg
@click.argument("costs_toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path),
              help="NetCDF of the balance draws (default beside RESULTS, <name>_dsg.nc).")
@click.option("--seed", type=click.IntRange(min=0),
              help="Seed of the cost draws (default: the run's root seed).")
@click.option("--threshold", "thresholds", type=click.FloatRange(min=0), multiple=True,
              help="Cumulative deficit in GBP for P(deficit > X) (repeatable; default: the "
                   "cost file's [dsg] thresholds).")
@_output_errors
@_user_errors
def dsg_cmd(results, costs_toml, quiet, verbose, out, seed, thresholds):
    """Each council's DSG high-needs balance by year, with bands, from RESULTS and COSTS_TOML."""
    from simsend.analysis.dsg import dsg_forecast, dsg_table
    from simsend.results.manifest import read_results

    configure_logging(quiet, verbose)
    out = out or Path(results).with_name(f"{Path(results).stem}_dsg.nc")
    _check_outputs([results, costs_toml], ("--out", out))
    ds = dsg_forecast(read_results(results), costs_toml, seed=seed,
                      thresholds=list(thresholds) or None)
    path = write_netcdf(ds, out)
    if not quiet:
        click.echo(f"DSG high-needs balance at 31 March (negative = deficit), "
                   f"{ds.attrs.get('price_basis', '')}:")
        click.echo(dsg_table(ds).to_string(index=False, float_format=lambda v: f"{v:,.1f}"
                                           if abs(v) >= 10 else f"{v:.2f}"))
        if ds.attrs.get("dsg_override_note"):
            click.echo(ds.attrs["dsg_override_note"])
        click.echo(f"wrote {path}")
