"""Command line: thin shells over :mod:`simsend.api` (parse, validate, call, write)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from simsend import api
from simsend.config import ConfigError
from simsend.io import write_netcdf

USER_ERROR = 2


def _user_errors(fn):
    """Turn user mistakes (bad config or data) into a clear message and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from simsend.data import DataError

        try:
            return fn(*args, **kwargs)
        except (ConfigError, DataError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(USER_ERROR)

    return wrapper


@click.group()
@click.version_option(package_name="simsend")
def main() -> None:
    """simsend: probabilistic demand simulation for England's SEND system."""


class _Progress:
    """A rich progress bar with ETA on a terminal; silent otherwise."""

    def __init__(self, enabled: bool, label: str):
        self.bar = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                transient=True)
            self.task = None

    def __enter__(self):
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            return
        if self.task is None:
            self.task = self.bar.add_task("draws", total=total)
        self.bar.update(self.task, completed=done)


@main.command("run")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--draws", type=click.IntRange(min=1),
              help="Monte Carlo draws (overrides run.draws).")
@click.option("--seed", type=click.IntRange(min=0), help="Root seed (overrides run.seed).")
@click.option("--area", "areas", multiple=True,
              help="Area code to run (repeatable; 'all' = every council). Overrides data.areas.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Output NetCDF path (overrides outputs.path).")
@click.option("--quiet", is_flag=True, help="No progress bar or messages.")
@_user_errors
def run_cmd(config: Path, draws, seed, areas, out, quiet) -> None:
    """Run the forecast in CONFIG and write its results as NetCDF."""
    from simsend.config import load

    cfg = load(config)
    path = out or Path(cfg.outputs.path)
    show = not quiet and sys.stderr.isatty()
    with _Progress(show, "simulating") as bar:
        ds = api.run(cfg, draws=draws, seed=seed, areas=tuple(areas) or None, progress=bar)
    write_netcdf(ds, path)
    if not quiet:
        click.echo(f"wrote {path} ({ds.sizes['draw']} draws, years {int(ds.year[0])}-"
                   f"{int(ds.year[-1])})")


@main.command("calibrate")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Artefact path (default models/<areas>_<year>.nc).")
@click.option("--draws", type=click.IntRange(min=50), default=500, show_default=True)
@click.option("--tune", type=click.IntRange(min=50), default=500, show_default=True)
@click.option("--chains", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--allow-failed-diagnostics", is_flag=True,
              help="Write the artefact even if r-hat/ESS/divergences fail (recorded in it).")
@_user_errors
def calibrate_cmd(config: Path, out, draws, tune, chains, allow_failed_diagnostics) -> None:
    """Fit the transition rates of CONFIG to its data with PyMC and save the posterior."""
    from simsend.calibration import CalibrationError, calibrate

    try:
        path = calibrate(config, out, draws=draws, tune=tune, chains=chains,
                         allow_failed_diagnostics=allow_failed_diagnostics)
    except CalibrationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USER_ERROR)
    click.echo(f"wrote {path}")


@main.command("backtest")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--origin", type=int, required=True, help="Last census year the fit may see.")
@click.option("--horizon", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--draws", type=click.IntRange(min=10), default=200, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV of the score table (default results/backtest_<origin>.csv).")
@_user_errors
def backtest_cmd(config: Path, origin: int, horizon: int, draws: int, out) -> None:
    """Calibrate on data up to ORIGIN, forecast the years after, score against the record."""
    from simsend.calibration import backtest

    table = backtest(config, origin=origin, horizon=horizon, draws=draws)
    path = out or Path("results") / f"backtest_{origin}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(path)
    click.echo(table.to_string(index=False))
    click.echo(f"wrote {path}")


@main.command("validate")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_user_errors
def validate_cmd(config: Path) -> None:
    """Check CONFIG and every data file it names, without running."""
    report = api.validate(config)
    click.echo(report.format())
    if not report.ok:
        sys.exit(USER_ERROR)
