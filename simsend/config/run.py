"""The ``[run]``, ``[outputs]`` and ``[data]`` tables: horizon, randomness, marginals, baseline."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import simsend.config.toml as toml

MARGINALS = ("tier", "plan", "age", "age_group", "need", "area", "placement")
"""Dimensions a run may tally its outputs over (besides ``draw`` and ``year``)."""


@dataclass(frozen=True)
class RunConfig:
    """Run settings: horizon, Monte Carlo size and randomness."""

    start_year: int = 2022
    end_year: int = 2035
    draws: int = 1000
    seed: int = 20260123
    threads: int = 0


@dataclass(frozen=True)
class OutputConfig:
    """Where results go and which marginals are tallied."""

    path: str = "results/simsend.nc"
    by: tuple[str, ...] = ("tier", "age_group", "need", "placement", "area")


@dataclass(frozen=True)
class DataConfig:
    """The ``[data]`` table, handed to :func:`simsend.data.load_baseline` as a ``DataSpec``.

    The baseline census year is ``run.start_year``.
    """

    source: str = "builtin"
    areas: tuple[str, ...] = ("E92000001",)
    targeted_plus_share: float = 0.25
    files: Mapping[str, Path] = field(default_factory=dict)
    sen_support_ages: str = "profile"
    """How SEN support (one total per area) is spread over ages: ``"profile"`` by population x
    the cohort profile of the config's rates (:mod:`simsend.data.support_ages`), ``"flat"`` by
    population x school-roll participation (flat over 4-15; what posteriors fitted before the
    profile existed were fitted on, so a run on one should keep it)."""


def parse_run(ctx: toml.Ctx, raw: dict) -> RunConfig:
    """Parse the ``[run]`` table."""
    d = RunConfig()
    toml.check_keys(ctx, raw, "run", {f.name for f in dataclasses.fields(RunConfig)})
    start = toml.integer(ctx, raw.get("start_year", d.start_year), "run.start_year", 2000, 2100)
    end = toml.integer(ctx, raw.get("end_year", d.end_year), "run.end_year", 2000, 2100)
    if end <= start:
        raise ctx.fail("run.end_year", f"{end} must be after run.start_year {start}")
    return RunConfig(
        start_year=start,
        end_year=end,
        draws=toml.integer(ctx, raw.get("draws", d.draws), "run.draws", 1, 10_000_000),
        seed=toml.integer(ctx, raw.get("seed", d.seed), "run.seed", 0, 2**63 - 1),
        threads=toml.integer(ctx, raw.get("threads", d.threads), "run.threads", 0, 4096),
    )


def parse_outputs(ctx: toml.Ctx, raw: dict) -> OutputConfig:
    """Parse the ``[outputs]`` table."""
    d = OutputConfig()
    toml.check_keys(ctx, raw, "outputs", {"path", "by"})
    path = toml.string(ctx, raw.get("path", d.path), "outputs.path")
    by_raw = raw.get("by", list(d.by))
    if not isinstance(by_raw, list) or not by_raw:
        raise ctx.fail("outputs.by", f"expected a non-empty list of {list(MARGINALS)}")
    by = tuple(toml.string(ctx, b, f"outputs.by[{i}]", MARGINALS) for i, b in enumerate(by_raw))
    if "tier" not in by:
        raise ctx.fail("outputs.by", "must include 'tier'")
    if "age" in by and "age_group" in by:
        raise ctx.fail("outputs.by", "use either 'age' or 'age_group', not both")
    if len(set(by)) != len(by):
        raise ctx.fail("outputs.by", f"repeated dimension in {by_raw}")
    return OutputConfig(path=path, by=by)


SEN_SUPPORT_AGES = ("profile", "flat")
"""Values of ``[data] sen_support_ages``."""


def parse_data(ctx: toml.Ctx, raw: dict, base: Path) -> DataConfig:
    """Parse the ``[data]`` table; relative file paths resolve against ``base``."""
    d = DataConfig()
    toml.check_keys(ctx, raw, "data", {f.name for f in dataclasses.fields(DataConfig)})
    source = toml.string(ctx, raw.get("source", d.source), "data.source", ("builtin", "files"))
    areas_raw = raw.get("areas", list(d.areas))
    if isinstance(areas_raw, str):
        areas_raw = [areas_raw]
    if not isinstance(areas_raw, list) or not areas_raw:
        raise ctx.fail("data.areas", "expected an area code, 'all', or a list of area codes")
    areas = tuple(toml.string(ctx, a, f"data.areas[{i}]") for i, a in enumerate(areas_raw))
    files_raw = toml.table(ctx, raw.get("files", {}), "data.files")
    files = {}
    for name, p in files_raw.items():
        p = Path(toml.string(ctx, p, f"data.files.{name}"))
        p = p if p.is_absolute() else base / p
        if not p.exists():
            raise ctx.fail(f"data.files.{name}", f"file not found: {p}")
        files[name] = p
    if source == "files" and not files:
        raise ctx.fail("data.files", "source = 'files' needs at least one file")
    return DataConfig(
        source=source,
        areas=areas,
        targeted_plus_share=toml.prob(ctx, raw.get("targeted_plus_share", d.targeted_plus_share),
                                  "data.targeted_plus_share"),
        files=files,
        sen_support_ages=toml.string(ctx, raw.get("sen_support_ages", d.sen_support_ages),
                                     "data.sen_support_ages", SEN_SUPPORT_AGES),
    )
