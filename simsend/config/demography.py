"""The ``[demography]`` table: how the population moves (births, migration, plan transfers).

Applied by :mod:`simsend.rates.demography`; estimated by :mod:`simsend.data.demography`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import simsend.config.toml as toml

MODES = ("trend", "observed", "off")
"""``trend``: births projected from their trend and net migration from the recent ONS
estimates (the default); ``observed``: ONS estimates after the baseline are used for the years
they cover (a check of the demography against what happened, not a forecast); ``off``: the old
fixed entrants (age 0 at the baseline census times ``model.births_growth``) and no migration."""


@dataclass(frozen=True)
class DemographyConfig:
    """How the population moves (``[demography]``).

    Attributes
    ----------
    mode : str
        One of :data:`MODES`.
    projection : Path or None
        A ``population_projection.csv`` (a council's own or ONS projected population, or
        births and net migration) that replaces the trend for the years it covers.
    recent_years : int
        Year-to-year steps of ONS estimates (the last ones up to the baseline, the 2021-Census
        rebasing left out) whose net migration rates the forecast resamples.  The default, 8,
        takes every usable step since 2016 for a 2025 baseline: the band then spans both the
        quieter years and the 2022-2024 surge in international migration.
    transfers : bool
        Model EHC plans moving with children between councils (SEN2 plans ceased on transfer
        to another council) for council areas.

    """

    mode: str = "trend"
    projection: Path | None = None
    recent_years: int = 8
    transfers: bool = True


def parse_demography(ctx: toml.Ctx, raw: dict, base: Path) -> DemographyConfig:
    """Parse a ``[demography]`` table; relative paths resolve against ``base``."""
    d = DemographyConfig()
    toml.check_keys(ctx, raw, "demography", {f.name for f in dataclasses.fields(d)})
    mode = toml.string(ctx, raw.get("mode", d.mode), "demography.mode", MODES)
    projection = None
    if "projection" in raw:
        p = Path(toml.string(ctx, raw["projection"], "demography.projection"))
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            raise ctx.fail("demography.projection", f"file not found: {p}")
        projection = p
    transfers = raw.get("transfers", d.transfers)
    if not isinstance(transfers, bool):
        raise ctx.fail("demography.transfers", f"expected true or false, got {transfers!r}")
    return DemographyConfig(
        mode=mode, projection=projection,
        recent_years=toml.integer(ctx, raw.get("recent_years", d.recent_years),
                                  "demography.recent_years", 1, 20),
        transfers=transfers,
    )
