"""TOML configuration parsed at the edge into frozen, typed objects.

A config has four tables: ``[run]`` (years, draws, seed, threads), ``[outputs]`` (where and
which marginals), ``[data]`` (baseline source and areas) and ``[model]`` (rates), and
optionally ``[reform]`` (the reform timeline), ``[pipeline]`` (statutory pipeline rates),
``[workforce]`` (assessing staff, :mod:`simsend.workforce`) and
``[scenarios.NAME]`` (named modifiers, :mod:`simsend.scenarios`).  ``extends = "base.toml"``
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simsend.dims import AGES, MAX_AGE, NEEDS, PLACEMENTS, TIERS

MARGINALS = ("tier", "plan", "age", "age_group", "need", "area", "placement")
"""Dimensions a run may tally its outputs over (besides ``draw`` and ``year``)."""


class ConfigError(ValueError):
    """A user mistake in a config file: message names the file, key path and expectation."""


# --------------------------------------------------------------------------- typed objects


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


@dataclass(frozen=True)
class PlacementRule:
    """At ages in ``ages``, pupils of ``tier`` in ``src`` move to ``dst`` with probability ``p``."""

    tier: str
    ages: tuple[int, int]
    src: str
    dst: str
    p: float


@dataclass(frozen=True)
class ModelConfig:
    """Rates of the fixed-parameter model, as age profiles (arrays over ages 0-25).

    Attributes
    ----------
    identification : ndarray (26,)
        Annual probability that a universal-tier child is identified (moves to targeted).
    leaving : ndarray (4, 26)
        Annual probability of leaving the system (moving away, death) by tier and age.
    tiers : ndarray (4, 4, 26)
        ``tiers[src, dst, age]``: annual probability of a move from ``src`` to ``dst``
        (diagonal = stay, filled in so each row sums to 1; row 0 unused).
    need_multiplier : ndarray (13,)
        Multiplier on escalation probabilities (moves to a higher tier) by need.
    need_mix : ndarray (26, 13)
        Need of newly identified children by age (rows sum to 1).
    placement_new : ndarray (26, 7)
        Placement of newly identified children by age (rows sum to 1).
    placement_rules : tuple of PlacementRule
        Placement moves (mostly at phase transfer).
    births_growth : float
        Annual growth factor applied to age-0 entrants after the baseline year.
    posterior : str or None
        Calibrated posterior artefact (``simsend calibrate``); each Monte Carlo draw then
        takes one posterior draw for the calibrated rates.  In the TOML either a file path
        (relative to the config file) or the name of an artefact shipped under ``models/``
        (e.g. ``"england_2022"``); parsed to the file's path.
    replicates_per_draw : int
        Monte Carlo replicates per posterior draw (process uncertainty within a parameter
        draw); ignored without ``posterior``.

    """

    identification: np.ndarray
    leaving: np.ndarray
    tiers: np.ndarray
    need_multiplier: np.ndarray
    need_mix: np.ndarray
    placement_new: np.ndarray
    placement_rules: tuple[PlacementRule, ...]
    births_growth: float = 1.0
    posterior: str | None = None
    replicates_per_draw: int = 1


@dataclass(frozen=True)
class ReformConfig:
    """The reform timeline (``[reform]``): dates and the review of existing EHC plans.

    Census years ``<= legislation_year`` run under current law.  In the years after it the
    targeted tiers hold ISPs instead of SEN support (new moves only: dual running), and up to
    and including ``steady_state_year`` specialist-tier pupils reaching a ``review_ages`` age
    (phase transfer) who would otherwise stay are moved to targeted-plus with probability
    ``review_share``; escalation into the specialist tier is multiplied by ``entry_factor``
    after the legislation year.  The defaults change no rate (current-law rates continue):
    a stricter threshold is a scenario (see :mod:`simsend.reform`).
    """

    legislation_year: int = 2029
    steady_state_year: int = 2035
    review_share: float = 0.0
    review_ages: tuple[int, ...] = (5, 11, 16)
    entry_factor: float = 1.0


PIPELINE_RATES = ("p_refuse", "p_not_issue", "p_within_20_weeks", "p_appeal_refusal",
                  "p_appeal_not_issue", "p_appeal_content", "p_upheld",
                  "mean_weeks_within", "mean_weeks_over")
"""Rates of the statutory pipeline, in the order of :attr:`PipelineConfig.rates`."""


@dataclass(frozen=True)
class PipelineConfig:
    """Rates of the statutory EHC pipeline (``[pipeline]``); see :mod:`simsend.pipeline`.

    Defaults: England in calendar 2021 from DfE's SEN2 2022 release: 20,830 of 93,302 initial
    requests refused an assessment (0.223) and 3,903 of 66,083 assessments ended without a
    plan (0.059), both in the shipped extract (``simsend/data/builtin/flows.csv.gz``); 59.9%
    of plans issued within 20 weeks (the release's headline, not in the extract).  Tribunal
    and weeks figures are ASSUMPTIONS of the published size (see :mod:`simsend.pipeline`).
    """

    p_refuse: float = 0.223
    p_not_issue: float = 0.059
    p_within_20_weeks: float = 0.599
    p_appeal_refusal: float = 0.04
    p_appeal_not_issue: float = 0.10
    p_appeal_content: float = 0.05
    p_upheld: float = 0.95
    mean_weeks_within: float = 16.0
    mean_weeks_over: float = 12.0
    enabled: bool = True

    @property
    def rates(self) -> np.ndarray:
        """The rates as a float64 array in :data:`PIPELINE_RATES` order."""
        return np.array([getattr(self, k) for k in PIPELINE_RATES], np.float64)


@dataclass(frozen=True)
class SimConfig:
    """A whole parsed config: run, outputs, data and model, plus its canonical text and hash.

    ``reform``, ``pipeline`` and ``scenarios`` hold the reform timeline, the statutory
    pipeline's rates and the named scenarios (:class:`simsend.scenarios.Scenario`) run
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
    scenarios: tuple = ()
    workforce: Any = None  # simsend.workforce.WorkforceConfig; None: no constraint
    provision: Any = None

    def replace_run(self, **changes: Any) -> SimConfig:
        """Return a copy with ``[run]`` fields replaced (used by CLI overrides)."""
        return dataclasses.replace(self, run=dataclasses.replace(self.run, **changes))

    def replace_outputs(self, **changes: Any) -> SimConfig:
        """Return a copy with ``[outputs]`` fields replaced."""
        return dataclasses.replace(self, outputs=dataclasses.replace(self.outputs, **changes))

    def replace_data(self, **changes: Any) -> SimConfig:
        """Return a copy with ``[data]`` fields replaced."""
        return dataclasses.replace(self, data=dataclasses.replace(self.data, **changes))


# --------------------------------------------------------------------------- parsing helpers


class _Ctx:
    """Carries the file name so every error names it."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.path}: [{key}] {msg}")


def _table(ctx: _Ctx, raw: Any, key: str) -> dict:
    if not isinstance(raw, dict):
        raise ctx.fail(key, f"expected a table, got {type(raw).__name__} {raw!r}")
    return raw


def _check_keys(ctx: _Ctx, raw: dict, key: str, allowed: set[str]) -> None:
    for k in raw:
        if k not in allowed:
            path = f"{key}.{k}" if key else k
            raise ctx.fail(path, f"unknown key; expected one of {sorted(allowed)}")


def _int(ctx: _Ctx, v: Any, key: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ctx.fail(key, f"expected an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ctx.fail(key, f"value {v} out of range: expected {lo} <= value <= {hi}")
    return v


def _float(ctx: _Ctx, v: Any, key: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ctx.fail(key, f"expected a number, got {v!r}")
    v = float(v)
    if not np.isfinite(v):
        raise ctx.fail(key, f"expected a finite number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ctx.fail(key, f"value {v} out of range: expected {lo} <= value <= {hi}")
    return v


def _prob(ctx: _Ctx, v: Any, key: str) -> float:
    v2 = _float(ctx, v, key)
    if not 0.0 <= v2 <= 1.0:
        raise ctx.fail(key, f"probability {v2} outside [0, 1]")
    return v2


def _str(ctx: _Ctx, v: Any, key: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(v, str):
        raise ctx.fail(key, f"expected a string, got {v!r}")
    if choices is not None and v not in choices:
        raise ctx.fail(key, f"unknown value {v!r}; expected one of {list(choices)}")
    return v


def _age_range(ctx: _Ctx, s: str, key: str) -> tuple[int, int]:
    """Parse ``"5-10"`` or ``"11"`` into an inclusive age range within 0-25."""
    parts = s.split("-")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None or hi is None or not 0 <= lo <= hi <= MAX_AGE:
        raise ctx.fail(key, f"age range {s!r}: expected 'A-B' or 'A' with 0 <= A <= B <= {MAX_AGE}")
    return lo, hi


def _age_profile(ctx: _Ctx, raw: Any, key: str, kind: str = "prob") -> np.ndarray:
    """Parse a number (all ages) or ``{"lo-hi" = value}`` covering 0-25 exactly once."""
    out = np.full(len(AGES), np.nan)
    if not isinstance(raw, dict):
        val = _prob(ctx, raw, key) if kind == "prob" else _float(ctx, raw, key, lo=0.0)
        out[:] = val
        return out
    for rng, v in raw.items():
        lo, hi = _age_range(ctx, rng, f"{key}.{rng}")
        val = _prob(ctx, v, f'{key}."{rng}"') if kind == "prob" else _float(
            ctx, v, f'{key}."{rng}"', lo=0.0)
        if not np.all(np.isnan(out[lo:hi + 1])):
            raise ctx.fail(f'{key}."{rng}"', "age range overlaps another range")
        out[lo:hi + 1] = val
    missing = [a for a in AGES if np.isnan(out[a])]
    if missing:
        raise ctx.fail(key, f"age ranges must cover ages 0-{MAX_AGE}; missing ages {missing}")
    return out


def _mix_by_age(ctx: _Ctx, raw: Any, key: str, labels: tuple[str, ...]) -> np.ndarray:
    """Parse ``{"lo-hi" = {label = share, ...}}`` into a (26, len(labels)) row-stochastic array."""
    raw = _table(ctx, raw, key)
    out = np.full((len(AGES), len(labels)), np.nan)
    for rng, mix in raw.items():
        k = f'{key}."{rng}"'
        lo, hi = _age_range(ctx, rng, k)
        mix = _table(ctx, mix, k)
        row = np.zeros(len(labels))
        for lab, v in mix.items():
            if lab not in labels:
                raise ctx.fail(f"{k}.{lab}", f"unknown label; expected one of {list(labels)}")
            row[labels.index(lab)] = _prob(ctx, v, f"{k}.{lab}")
        if abs(row.sum() - 1.0) > 1e-6:
            raise ctx.fail(k, f"shares must sum to 1, got {row.sum():.6g}")
        if not np.all(np.isnan(out[lo:hi + 1])):
            raise ctx.fail(k, "age range overlaps another range")
        out[lo:hi + 1] = row / row.sum()
    missing = [a for a in AGES if np.isnan(out[a, 0])]
    if missing:
        raise ctx.fail(key, f"age ranges must cover ages 0-{MAX_AGE}; missing ages {missing}")
    return out


# --------------------------------------------------------------------------- sections


def _parse_run(ctx: _Ctx, raw: dict) -> RunConfig:
    d = RunConfig()
    _check_keys(ctx, raw, "run", {f.name for f in dataclasses.fields(RunConfig)})
    start = _int(ctx, raw.get("start_year", d.start_year), "run.start_year", 2000, 2100)
    end = _int(ctx, raw.get("end_year", d.end_year), "run.end_year", 2000, 2100)
    if end <= start:
        raise ctx.fail("run.end_year", f"{end} must be after run.start_year {start}")
    return RunConfig(
        start_year=start,
        end_year=end,
        draws=_int(ctx, raw.get("draws", d.draws), "run.draws", 1, 10_000_000),
        seed=_int(ctx, raw.get("seed", d.seed), "run.seed", 0, 2**63 - 1),
        threads=_int(ctx, raw.get("threads", d.threads), "run.threads", 0, 4096),
    )


def _parse_outputs(ctx: _Ctx, raw: dict) -> OutputConfig:
    d = OutputConfig()
    _check_keys(ctx, raw, "outputs", {"path", "by"})
    path = _str(ctx, raw.get("path", d.path), "outputs.path")
    by_raw = raw.get("by", list(d.by))
    if not isinstance(by_raw, list) or not by_raw:
        raise ctx.fail("outputs.by", f"expected a non-empty list of {list(MARGINALS)}")
    by = tuple(_str(ctx, b, f"outputs.by[{i}]", MARGINALS) for i, b in enumerate(by_raw))
    if "tier" not in by:
        raise ctx.fail("outputs.by", "must include 'tier'")
    if "age" in by and "age_group" in by:
        raise ctx.fail("outputs.by", "use either 'age' or 'age_group', not both")
    if len(set(by)) != len(by):
        raise ctx.fail("outputs.by", f"repeated dimension in {by_raw}")
    return OutputConfig(path=path, by=by)


def _parse_data(ctx: _Ctx, raw: dict, base: Path) -> DataConfig:
    d = DataConfig()
    _check_keys(ctx, raw, "data", {f.name for f in dataclasses.fields(DataConfig)})
    source = _str(ctx, raw.get("source", d.source), "data.source", ("builtin", "files"))
    areas_raw = raw.get("areas", list(d.areas))
    if isinstance(areas_raw, str):
        areas_raw = [areas_raw]
    if not isinstance(areas_raw, list) or not areas_raw:
        raise ctx.fail("data.areas", "expected an area code, 'all', or a list of area codes")
    areas = tuple(_str(ctx, a, f"data.areas[{i}]") for i, a in enumerate(areas_raw))
    files_raw = _table(ctx, raw.get("files", {}), "data.files")
    files = {}
    for name, p in files_raw.items():
        p = Path(_str(ctx, p, f"data.files.{name}"))
        p = p if p.is_absolute() else base / p
        if not p.exists():
            raise ctx.fail(f"data.files.{name}", f"file not found: {p}")
        files[name] = p
    if source == "files" and not files:
        raise ctx.fail("data.files", "source = 'files' needs at least one file")
    return DataConfig(
        source=source,
        areas=areas,
        targeted_plus_share=_prob(ctx, raw.get("targeted_plus_share", d.targeted_plus_share),
                                  "data.targeted_plus_share"),
        files=files,
    )


def _replicates(ctx: _Ctx, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ctx.fail("model.replicates_per_draw",
                       f"expected an integer >= 1 (Monte Carlo replicates per posterior draw),"
                       f" got {v!r}")
    return v


SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "models"
"""Where calibrated artefacts shipped with simsend live (``model.posterior = "<name>"``)."""

def shipped_or_path(ctx: _Ctx, name: str, key: str, folder: Path, suffix: str, base: Path,
                    what: str) -> Path:
    """Resolve a file a config names; it must exist.

    A bare name (no slash, no ``suffix``) is ``folder/<name><suffix>`` shipped beside the
    package; anything else is a path, relative to the config's folder.
    """
    if name and "/" not in name and "\\" not in name and not name.endswith(suffix):
        p = folder / f"{name}{suffix}"
        if not p.is_file():
            have = sorted(q.stem for q in folder.glob(f"*{suffix}"))
            where = folder.relative_to(SHIPPED_MODELS.parent).as_posix()
            raise ctx.fail(key, f"no shipped {what} {name!r} ({where}/ has {have}); give a "
                                "file path instead")
        return p
    p = Path(name)
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise ctx.fail(key, f"file not found: {p}")
    return p


_MODEL_KEYS = {"identification", "leaving", "tiers", "need_multiplier", "need_mix",
               "placement_new", "placement_moves", "births_growth", "posterior",
               "replicates_per_draw"}


def _parse_tiers(ctx: _Ctx, raw: Any) -> np.ndarray:
    raw = _table(ctx, raw, "model.tiers")
    _check_keys(ctx, raw, "model.tiers", set(TIERS[1:]))
    tiers = np.zeros((len(TIERS), len(TIERS), len(AGES)))
    for src_name in TIERS[1:]:
        src = TIERS.index(src_name)
        row = _table(ctx, raw.get(src_name, {}), f"model.tiers.{src_name}")
        _check_keys(ctx, row, f"model.tiers.{src_name}", set(TIERS) - {src_name})
        for dst_name, prof in row.items():
            tiers[src, TIERS.index(dst_name)] = _age_profile(
                ctx, prof, f"model.tiers.{src_name}.{dst_name}")
        moving = tiers[src].sum(axis=0)
        if np.any(moving > 1.0 + 1e-12):
            a = int(np.argmax(moving))
            raise ctx.fail(f"model.tiers.{src_name}",
                           f"probabilities of leaving the tier sum to {moving[a]:.6g} at age {a};"
                           " expected a row sum <= 1")
        tiers[src, src] = np.clip(1.0 - moving, 0.0, 1.0)
    return tiers


def _parse_placement_rules(ctx: _Ctx, raw: Any) -> tuple[PlacementRule, ...]:
    if not isinstance(raw, list):
        raise ctx.fail("model.placement_moves",
                       "expected an array of tables [[model.placement_moves]]")
    rules = []
    total = np.zeros((len(TIERS), len(AGES), len(PLACEMENTS)))
    for i, r in enumerate(raw):
        k = f"model.placement_moves[{i}]"
        r = _table(ctx, r, k)
        _check_keys(ctx, r, k, {"tier", "ages", "from", "to", "p"})
        for req in ("tier", "ages", "from", "to", "p"):
            if req not in r:
                raise ctx.fail(f"{k}.{req}", "missing required key")
        tier = _str(ctx, r["tier"], f"{k}.tier", TIERS[1:])
        ages = _age_range(ctx, _str(ctx, r["ages"], f"{k}.ages"), f"{k}.ages")
        src = _str(ctx, r["from"], f"{k}.from", PLACEMENTS)
        dst = _str(ctx, r["to"], f"{k}.to", PLACEMENTS)
        if src == dst:
            raise ctx.fail(f"{k}.to", f"'to' must differ from 'from' ({src})")
        p = _prob(ctx, r["p"], f"{k}.p")
        total[TIERS.index(tier), ages[0]:ages[1] + 1, PLACEMENTS.index(src)] += p
        if np.any(total > 1.0 + 1e-12):
            raise ctx.fail(k, f"moves out of {src!r} for tier {tier!r} at ages {r['ages']} sum to "
                              f"{total.max():.6g}; expected <= 1")
        rules.append(PlacementRule(tier, ages, src, dst, p))
    return tuple(rules)


def _parse_model(ctx: _Ctx, raw: dict, base: Path) -> ModelConfig:
    _check_keys(ctx, raw, "model", _MODEL_KEYS)
    for req in ("identification", "tiers", "need_mix", "placement_new"):
        if req not in raw:
            raise ctx.fail(f"model.{req}", "missing required key")
    leaving = np.zeros((len(TIERS), len(AGES)))
    lv = _table(ctx, raw.get("leaving", {}), "model.leaving")
    _check_keys(ctx, lv, "model.leaving", set(TIERS))
    for t, prof in lv.items():
        leaving[TIERS.index(t)] = _age_profile(ctx, prof, f"model.leaving.{t}")
    nm = np.ones(len(NEEDS))
    nm_raw = _table(ctx, raw.get("need_multiplier", {}), "model.need_multiplier")
    _check_keys(ctx, nm_raw, "model.need_multiplier", set(NEEDS))
    for n, v in nm_raw.items():
        nm[NEEDS.index(n)] = _float(ctx, v, f"model.need_multiplier.{n}", lo=0.0, hi=100.0)
    posterior = raw.get("posterior")
    if posterior is not None:
        posterior = str(shipped_or_path(ctx, _str(ctx, posterior, "model.posterior"),
                                        "model.posterior", SHIPPED_MODELS, ".nc", base,
                                        "posterior"))
    tiers = _parse_tiers(ctx, raw["tiers"])
    # Escalation scaled by need must still leave each row a probability distribution.
    up = np.triu(np.ones((len(TIERS), len(TIERS))), 1).astype(bool)
    worst = (tiers * up[:, :, None]).sum(axis=1).max(axis=1) * nm.max()
    down = (tiers * np.tril(np.ones((len(TIERS), len(TIERS))), -1)[:, :, None]).sum(axis=1)
    if np.any(worst[:, None] + down > 1.0 + 1e-12):
        raise ctx.fail("model.need_multiplier",
                       "escalation times the largest need multiplier makes a tier row sum over 1")
    return ModelConfig(
        identification=_age_profile(ctx, raw["identification"], "model.identification"),
        leaving=leaving,
        tiers=tiers,
        need_multiplier=nm,
        need_mix=_mix_by_age(ctx, raw["need_mix"], "model.need_mix", NEEDS),
        placement_new=_mix_by_age(ctx, raw["placement_new"], "model.placement_new", PLACEMENTS),
        placement_rules=_parse_placement_rules(ctx, raw.get("placement_moves", [])),
        births_growth=_float(ctx, raw.get("births_growth", 1.0), "model.births_growth", 0.5, 2.0),
        posterior=posterior,
        replicates_per_draw=_replicates(ctx, raw.get("replicates_per_draw", 1)),
    )


def _parse_reform(ctx: _Ctx, raw: dict, key: str = "reform",
                  base: ReformConfig | None = None) -> ReformConfig:
    """Parse a ``[reform]`` table; keys left out keep ``base``'s values."""
    d = base or ReformConfig()
    _check_keys(ctx, raw, key, {f.name for f in dataclasses.fields(ReformConfig)})
    leg = _int(ctx, raw.get("legislation_year", d.legislation_year),
               f"{key}.legislation_year", 2000, 2100)
    steady = _int(ctx, raw.get("steady_state_year", d.steady_state_year),
                  f"{key}.steady_state_year", 2000, 2100)
    if steady < leg:
        raise ctx.fail(f"{key}.steady_state_year",
                       f"{steady} must not be before legislation_year {leg}")
    ages_raw = raw.get("review_ages", list(d.review_ages))
    if not isinstance(ages_raw, list):
        raise ctx.fail(f"{key}.review_ages", f"expected a list of ages 0-{MAX_AGE}")
    ages = tuple(_int(ctx, a, f"{key}.review_ages[{i}]", 0, MAX_AGE)
                 for i, a in enumerate(ages_raw))
    return ReformConfig(
        legislation_year=leg, steady_state_year=steady,
        review_share=_prob(ctx, raw.get("review_share", d.review_share), f"{key}.review_share"),
        review_ages=ages,
        entry_factor=_float(ctx, raw.get("entry_factor", d.entry_factor), f"{key}.entry_factor",
                            0.0, 10.0),
    )


def _parse_pipeline(ctx: _Ctx, raw: dict) -> PipelineConfig:
    d = PipelineConfig()
    _check_keys(ctx, raw, "pipeline", {f.name for f in dataclasses.fields(PipelineConfig)})
    vals = {}
    for k in PIPELINE_RATES:
        v = raw.get(k, getattr(d, k))
        vals[k] = (_float(ctx, v, f"pipeline.{k}", 0.0, 104.0) if k.startswith("mean_")
                   else _prob(ctx, v, f"pipeline.{k}"))
    for k in ("p_refuse", "p_not_issue"):
        if vals[k] >= 1.0:
            raise ctx.fail(f"pipeline.{k}", "must be below 1 (plans are issued at all)")
    enabled = raw.get("enabled", d.enabled)
    if not isinstance(enabled, bool):
        raise ctx.fail("pipeline.enabled", f"expected true or false, got {enabled!r}")
    return PipelineConfig(**vals, enabled=enabled)


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge TOML tables: tables merge key by key, anything else in ``over`` replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve_extends(ctx: _Ctx, raw: dict, text: str, base: Path,
                     seen: tuple[Path, ...] = ()) -> tuple[dict, str]:
    """Apply ``extends = "other.toml"``: the other file's tables, overridden by this one's."""
    if "extends" not in raw:
        return raw, text
    parent = Path(_str(ctx, raw.pop("extends"), "extends"))
    parent = (parent if parent.is_absolute() else base / parent).resolve()
    if parent in seen:
        raise ctx.fail("extends", f"circular extends through {parent}")
    if not parent.is_file():
        raise ctx.fail("extends", f"file not found: {parent}")
    ptext = parent.read_text(encoding="utf-8")
    try:
        praw = tomllib.loads(ptext)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{parent}: not valid TOML: {exc}") from None
    praw, ptext = _resolve_extends(_Ctx(str(parent)), praw, ptext, parent.parent,
                                   (*seen, parent))
    merged_text = (f"{text}\n\n# ---- simsend: the file above extends {parent.name}, "
                   f"whose text follows ----\n{ptext}")
    return _merge(praw, raw), merged_text


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
    ctx = _Ctx(source_path)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source_path}: not valid TOML: {exc}") from None
    raw, text = _resolve_extends(ctx, raw, text, base)
    _check_keys(ctx, raw, "", {"run", "outputs", "data", "model", "reform", "pipeline",
                               "scenarios", "provision", "workforce"})
    if "model" not in raw:
        raise ctx.fail("model", "missing required table")
    from simsend.provision import parse_provision
    from simsend.scenarios import parse_scenarios
    from simsend.workforce import check_modifiers, parse_workforce

    reform = _parse_reform(ctx, _table(ctx, raw.get("reform", {}), "reform"))
    workforce = parse_workforce(ctx, raw.get("workforce"))
    cfg_run = _parse_run(ctx, _table(ctx, raw.get("run", {}), "run"))
    return SimConfig(
        run=cfg_run,
        outputs=_parse_outputs(ctx, _table(ctx, raw.get("outputs", {}), "outputs")),
        data=_parse_data(ctx, _table(ctx, raw.get("data", {}), "data"), base),
        model=_parse_model(ctx, _table(ctx, raw["model"], "model"), base),
        source_path=source_path,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        reform=reform,
        pipeline=_parse_pipeline(ctx, _table(ctx, raw.get("pipeline", {}), "pipeline")),
        scenarios=check_modifiers(ctx, workforce, parse_scenarios(
            ctx, _table(ctx, raw.get("scenarios", {}), "scenarios"), reform)),
        workforce=workforce,
        provision=parse_provision(ctx, raw.get("provision"), base),
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


def read_text(path: Path, what: str) -> str:
    """Read a UTF-8 file the user named; a missing or unreadable one is a :class:`ConfigError`."""
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None
