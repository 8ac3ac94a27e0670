"""TOML configuration parsed at the edge into frozen, typed objects.

A config has four tables: ``[run]`` (years, draws, seed, threads), ``[outputs]`` (where and
which marginals), ``[data]`` (baseline source and areas) and ``[model]`` (rates), and
optionally ``[reform]`` (the reform timeline), ``[pipeline]`` (statutory pipeline rates),
``[workforce]`` (assessing staff, :mod:`simsend.statutory.workforce`), ``[demography]``
(births, migration and plan transfers, :mod:`simsend.config.demography`) and
``[scenarios.NAME]`` (named modifiers, :mod:`simsend.config.scenarios`).  ``extends = "base.toml"``
at the top takes every table of another config (relative to this file) and overrides it
key by key with this file's. Defaults live
in code; every key is checked: unknown keys, wrong types, out-of-range values, probabilities
outside [0, 1] and rows summing over 1 raise :class:`ConfigError` naming the file and the key
path.  The canonical TOML text and its SHA-256 are kept on the parsed object so that every
output can carry them.

Rates are written per age range, e.g. ``specialist = { "0-4" = 0.04, "5-25" = 0.01 }``; ranges
must cover 0-25 exactly once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simsend.config.toml as toml
from simsend.config.demography import DemographyConfig, parse_demography
from simsend.config.model import ModelConfig, parse_model
from simsend.config.provision import ProvisionConfig, parse_provision
from simsend.config.reform import ReformConfig, parse_reform
from simsend.config.run import (
    DataConfig,
    OutputConfig,
    RunConfig,
    parse_data,
    parse_outputs,
    parse_run,
)
from simsend.config.scenarios import Scenario, check_years, parse_scenarios
from simsend.config.statutory import PipelineConfig, parse_pipeline
from simsend.config.toml import ConfigError, read_text
from simsend.config.workforce import WorkforceConfig, check_modifiers, parse_workforce


@dataclass(frozen=True)
class SimConfig:
    """A whole parsed config: run, outputs, data and model, plus its canonical text and hash.

    ``reform``, ``pipeline`` and ``scenarios`` hold the reform timeline, the statutory
    pipeline's rates and the named scenarios (:class:`simsend.config.scenarios.Scenario`) run
    against the same baseline.
    """

    run: RunConfig
    outputs: OutputConfig
    data: DataConfig
    model: ModelConfig
    source_path: str
    text: str
    sha256: str
    reform: ReformConfig = field(default_factory=ReformConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    scenarios: tuple[Scenario, ...] = ()
    workforce: WorkforceConfig | None = None  # None: no constraint on assessing staff
    provision: ProvisionConfig | None = None  # None: unlimited places
    demography: DemographyConfig = field(default_factory=DemographyConfig)

    def replace_run(self, **changes: Any) -> SimConfig:
        """Return a copy with ``[run]`` fields replaced (used by CLI overrides)."""
        return dataclasses.replace(self, run=dataclasses.replace(self.run, **changes))

    def replace_outputs(self, **changes: Any) -> SimConfig:
        """Return a copy with ``[outputs]`` fields replaced."""
        return dataclasses.replace(self, outputs=dataclasses.replace(self.outputs, **changes))

    def replace_data(self, **changes: Any) -> SimConfig:
        """Return a copy with ``[data]`` fields replaced."""
        return dataclasses.replace(self, data=dataclasses.replace(self.data, **changes))


def merge(base: dict, over: dict) -> dict:
    """Deep-merge TOML tables: tables merge key by key, anything else in ``over`` replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve_extends(ctx: toml.Ctx, raw: dict, text: str, base: Path,
                     seen: tuple[Path, ...] = ()) -> tuple[dict, str]:
    """Apply ``extends = "other.toml"``: the other file's tables, overridden by this one's."""
    if "extends" not in raw:
        return raw, text
    parent = Path(toml.string(ctx, raw.pop("extends"), "extends"))
    parent = (parent if parent.is_absolute() else base / parent).resolve()
    if parent in seen:
        raise ctx.fail("extends", f"circular extends through {parent}")
    if not parent.is_file():
        raise ctx.fail("extends", f"file not found: {parent}")
    ptext = read_text(parent, "config file (extends)")
    try:
        praw = tomllib.loads(ptext)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{parent}: not valid TOML: {exc}") from None
    praw, ptext = resolve_extends(toml.Ctx(str(parent)), praw, ptext, parent.parent,
                                   (*seen, parent))
    merged_text = (f"{text}\n\n# ---- simsend: the file above extends {parent.name}, "
                   f"whose text follows ----\n{ptext}")
    return merge(praw, raw), merged_text


def parse(text: str, source_path: str = "<string>", base_dir: Path | None = None) -> SimConfig:
    """Parse config TOML text into a :class:`SimConfig`.

    Parameters
    ----------
    text : str
        The TOML text.
    source_path : str
        Name used in error messages and provenance.
    base_dir : Path, optional
        Directory against which relative data paths resolve (default: current directory).

    Raises
    ------
    ConfigError
        On any invalid key or value, naming the file and key path.

    """
    ctx = toml.Ctx(source_path)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    text = text.removeprefix(toml.BOM)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source_path}: not valid TOML: {exc}") from None
    raw, text = resolve_extends(ctx, raw, text, base)
    toml.check_keys(ctx, raw, "", {"run", "outputs", "data", "model", "reform", "pipeline",
                               "scenarios", "provision", "workforce", "demography"})
    if "model" not in raw:
        raise ctx.fail("model", "missing required table")
    reform = parse_reform(ctx, toml.table(ctx, raw.get("reform", {}), "reform"))
    workforce = parse_workforce(ctx, raw.get("workforce"))
    cfg_run = parse_run(ctx, toml.table(ctx, raw.get("run", {}), "run"))
    return SimConfig(
        run=cfg_run,
        outputs=parse_outputs(ctx, toml.table(ctx, raw.get("outputs", {}), "outputs")),
        data=parse_data(ctx, toml.table(ctx, raw.get("data", {}), "data"), base),
        model=parse_model(ctx, toml.table(ctx, raw["model"], "model"), base),
        source_path=source_path,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        reform=reform,
        pipeline=parse_pipeline(ctx, toml.table(ctx, raw.get("pipeline", {}), "pipeline"),
                                base),
        scenarios=check_years(ctx, check_modifiers(ctx, workforce, parse_scenarios(
            ctx, toml.table(ctx, raw.get("scenarios", {}), "scenarios"), reform)),
            cfg_run.start_year, cfg_run.end_year),
        workforce=workforce,
        provision=parse_provision(ctx, raw.get("provision"), base),
        demography=parse_demography(
            ctx, toml.table(ctx, raw.get("demography", {}), "demography"), base),
    )


def load(path: str | Path) -> SimConfig:
    """Read and validate a config file; relative paths inside it resolve against its folder.

    Examples
    --------
    >>> from simsend.config import load
    >>> cfg = load("configs/base.toml")  # doctest: +SKIP
    >>> cfg.run.end_year  # doctest: +SKIP
    2035

    """
    p = Path(path)
    return parse(read_text(p, "config file"), source_path=str(p), base_dir=p.resolve().parent)
