"""The ``[model]`` table.

The reference rates (age profiles) and the calibrated posterior it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import simsend.config.toml as toml
from simsend.dims import AGES, NEEDS, PLACEMENTS, TIERS


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
    placements : {"rules", "calibrated"}
        Where the specialist tier's placement moves come from: ``placement_rules`` for every
        area (``"rules"``), or each area's calibrated placement mix and its drift, estimated
        from SEN2 up to the baseline census when the run is prepared
        (``"calibrated"``, :mod:`simsend.rates.placements`; the targeted tiers keep the rules).
    targeted_split : {"rates", "balanced"}
        ``"rates"``: the moves between the targeted tiers as ``tiers`` gives them, every
        identified child entering the targeted tier.  ``"balanced"``: the targeted-plus share
        of SEN support held at ``[data] targeted_plus_share`` (the share the baseline splits by
        and the calibration reads escalation with): identified children enter targeted-plus
        with that probability and the move from targeted to targeted-plus is derived each
        year (:mod:`simsend.rates.split`), replacing ``tiers.targeted.targeted_plus``.

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
    placements: str = "rules"
    targeted_split: str = "rates"


SHIPPED_MODELS = toml.PROJECT_ROOT / "models"
"""Where calibrated artefacts shipped with simsend live (``model.posterior = "<name>"``)."""


def _replicates(ctx: toml.Ctx, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ctx.fail("model.replicates_per_draw",
                       f"expected an integer >= 1 (Monte Carlo replicates per posterior draw),"
                       f" got {v!r}")
    return v


_MODEL_KEYS = {"identification", "leaving", "tiers", "need_multiplier", "need_mix",
               "placement_new", "placement_moves", "births_growth", "posterior",
               "replicates_per_draw", "placements", "targeted_split"}
PLACEMENT_SOURCES = ("rules", "calibrated")
TARGETED_SPLITS = ("rates", "balanced")


def _parse_tiers(ctx: toml.Ctx, raw: Any) -> np.ndarray:
    raw = toml.table(ctx, raw, "model.tiers")
    toml.check_keys(ctx, raw, "model.tiers", set(TIERS[1:]))
    tiers = np.zeros((len(TIERS), len(TIERS), len(AGES)))
    for src_name in TIERS[1:]:
        src = TIERS.index(src_name)
        row = toml.table(ctx, raw.get(src_name, {}), f"model.tiers.{src_name}")
        toml.check_keys(ctx, row, f"model.tiers.{src_name}", set(TIERS) - {src_name})
        for dst_name, prof in row.items():
            tiers[src, TIERS.index(dst_name)] = toml.age_profile(
                ctx, prof, f"model.tiers.{src_name}.{dst_name}")
        moving = tiers[src].sum(axis=0)
        if np.any(moving > 1.0 + 1e-12):
            a = int(np.argmax(moving))
            raise ctx.fail(f"model.tiers.{src_name}",
                           f"probabilities of leaving the tier sum to {moving[a]:.6g} at age {a};"
                           " expected a row sum <= 1")
        tiers[src, src] = np.clip(1.0 - moving, 0.0, 1.0)
    return tiers


def _parse_placement_rules(ctx: toml.Ctx, raw: Any) -> tuple[PlacementRule, ...]:
    if not isinstance(raw, list):
        raise ctx.fail("model.placement_moves",
                       "expected an array of tables [[model.placement_moves]]")
    rules = []
    total = np.zeros((len(TIERS), len(AGES), len(PLACEMENTS)))
    for i, r in enumerate(raw):
        k = f"model.placement_moves[{i}]"
        r = toml.table(ctx, r, k)
        toml.check_keys(ctx, r, k, {"tier", "ages", "from", "to", "p"})
        for req in ("tier", "ages", "from", "to", "p"):
            if req not in r:
                raise ctx.fail(f"{k}.{req}", "missing required key")
        tier = toml.string(ctx, r["tier"], f"{k}.tier", TIERS[1:])
        ages = toml.age_range(ctx, toml.string(ctx, r["ages"], f"{k}.ages"), f"{k}.ages")
        src = toml.string(ctx, r["from"], f"{k}.from", PLACEMENTS)
        dst = toml.string(ctx, r["to"], f"{k}.to", PLACEMENTS)
        if src == dst:
            raise ctx.fail(f"{k}.to", f"'to' must differ from 'from' ({src})")
        p = toml.prob(ctx, r["p"], f"{k}.p")
        total[TIERS.index(tier), ages[0]:ages[1] + 1, PLACEMENTS.index(src)] += p
        if np.any(total > 1.0 + 1e-12):
            raise ctx.fail(k, f"moves out of {src!r} for tier {tier!r} at ages {r['ages']} sum to "
                              f"{total.max():.6g}; expected <= 1")
        rules.append(PlacementRule(tier, ages, src, dst, p))
    return tuple(rules)


def _check_escalation(ctx: toml.Ctx, tiers: np.ndarray, nm: np.ndarray) -> None:
    """Escalation scaled by need must leave each tier row a distribution, age by age.

    At each age, a tier's escalation (moves to a higher tier) at that age times the largest
    need multiplier, plus its moves down at that age, must be at most 1.
    """
    n = len(TIERS)
    up = (tiers * np.triu(np.ones((n, n)), 1)[:, :, None]).sum(axis=1)  # (src, age)
    down = (tiers * np.tril(np.ones((n, n)), -1)[:, :, None]).sum(axis=1)
    worst = up * nm.max() + down
    if np.any(worst > 1.0 + 1e-12):
        s, a = np.unravel_index(int(np.argmax(worst)), worst.shape)
        raise ctx.fail("model.need_multiplier",
                       f"at age {a}, escalation from {TIERS[s]!r} ({up[s, a]:.6g}) times the "
                       f"largest need multiplier ({NEEDS[int(np.argmax(nm))]} = {nm.max():.6g}) "
                       f"plus the moves down ({down[s, a]:.6g}) sums to {worst[s, a]:.6g}; "
                       "expected at most 1 (lower the multiplier or the tier's rates at that "
                       "age)")


def parse_model(ctx: toml.Ctx, raw: dict, base: Path) -> ModelConfig:
    """Parse the ``[model]`` table (``base``: the config's folder, for the posterior path)."""
    toml.check_keys(ctx, raw, "model", _MODEL_KEYS)
    for req in ("identification", "tiers", "need_mix", "placement_new"):
        if req not in raw:
            raise ctx.fail(f"model.{req}", "missing required key")
    leaving = np.zeros((len(TIERS), len(AGES)))
    lv = toml.table(ctx, raw.get("leaving", {}), "model.leaving")
    toml.check_keys(ctx, lv, "model.leaving", set(TIERS))
    for t, prof in lv.items():
        leaving[TIERS.index(t)] = toml.age_profile(ctx, prof, f"model.leaving.{t}")
    nm = np.ones(len(NEEDS))
    nm_raw = toml.table(ctx, raw.get("need_multiplier", {}), "model.need_multiplier")
    toml.check_keys(ctx, nm_raw, "model.need_multiplier", set(NEEDS))
    for n, v in nm_raw.items():
        nm[NEEDS.index(n)] = toml.number(ctx, v, f"model.need_multiplier.{n}", lo=0.0, hi=100.0)
    posterior = raw.get("posterior")
    if posterior is not None:
        posterior = str(toml.shipped_or_path(ctx, toml.string(ctx, posterior, "model.posterior"),
                                        "model.posterior", SHIPPED_MODELS, ".nc", base,
                                        "posterior",
                                        lambda stem: not stem.startswith("pipeline_")))
    tiers = _parse_tiers(ctx, raw["tiers"])
    _check_escalation(ctx, tiers, nm)
    return ModelConfig(
        identification=toml.age_profile(ctx, raw["identification"], "model.identification"),
        leaving=leaving,
        tiers=tiers,
        need_multiplier=nm,
        need_mix=toml.mix_by_age(ctx, raw["need_mix"], "model.need_mix", NEEDS),
        placement_new=toml.mix_by_age(ctx, raw["placement_new"], "model.placement_new", PLACEMENTS),
        placement_rules=_parse_placement_rules(ctx, raw.get("placement_moves", [])),
        births_growth=toml.number(ctx, raw.get("births_growth", 1.0), "model.births_growth",
                                  0.5, 2.0),
        posterior=posterior,
        replicates_per_draw=_replicates(ctx, raw.get("replicates_per_draw", 1)),
        placements=toml.string(ctx, raw.get("placements", "rules"), "model.placements",
                               PLACEMENT_SOURCES),
        targeted_split=toml.string(ctx, raw.get("targeted_split", "rates"),
                                   "model.targeted_split", TARGETED_SPLITS),
    )
