"""The ``[provision]`` table: the provision plan a run is limited by, and its allocation rule.

What the plan and rules do is described in :mod:`simsend.rates.provision`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simsend.config.toml as toml
from simsend.dims import NEEDS, PLACEMENTS, TIERS

SHIPPED_PLANS = toml.PROJECT_ROOT / "configs" / "provision"
"""Where provision plans shipped with simsend live (``provision.plan = "<name>"``)."""
OUT_OF_AREA = "out_of_area"
"""Overflow option: the same placement type in another area (unlimited)."""

@dataclass(frozen=True)
class ProvisionConfig:
    """The ``[provision]`` table.

    Attributes
    ----------
    plan : Path
        The provision plan CSV (``area,placement,year,places``).
    overflow : dict
        Placement -> tuple of options (placements or ``out_of_area``), in order.
    tiers : tuple of str
        Tier priority, highest first.
    needs : tuple of str
        Needs with priority, highest first (others after them, equal).
    waiting_placement : str
        Where a newly identified pupil waits.

    """

    plan: Path
    overflow: dict = dataclasses.field(default_factory=dict)
    tiers: tuple[str, ...] = ("specialist", "targeted_plus", "targeted")
    needs: tuple[str, ...] = ()
    waiting_placement: str = "mainstream"


def parse_provision(ctx: toml.Ctx, raw: Any, base: Path) -> ProvisionConfig | None:
    """Parse ``[provision]`` (None when absent)."""
    if raw is None:
        return None
    raw = toml.table(ctx, raw, "provision")
    toml.check_keys(ctx, raw, "provision", {"plan", "overflow", "priority", "waiting_placement"})
    if "plan" not in raw:
        raise ctx.fail("provision.plan", "missing required key (the provision plan CSV)")
    plan = toml.shipped_or_path(ctx, toml.string(ctx, raw["plan"], "provision.plan"),
                                "provision.plan", SHIPPED_PLANS, ".csv", base, "plan")
    over = toml.table(ctx, raw.get("overflow", {}), "provision.overflow")
    overflow = {}
    for p, opts in over.items():
        if p not in PLACEMENTS:
            raise ctx.fail(f"provision.overflow.{p}", f"unknown placement; expected one of "
                                                       f"{list(PLACEMENTS)}")
        if not isinstance(opts, list) or not opts:
            raise ctx.fail(f"provision.overflow.{p}", "expected a non-empty list of "
                                                       "placements or 'out_of_area'")
        names = tuple(toml.string(ctx, o, f"provision.overflow.{p}[{i}]",
                                  (*PLACEMENTS, OUT_OF_AREA))
                      for i, o in enumerate(opts))
        if p in names or len(set(names)) != len(names):
            raise ctx.fail(f"provision.overflow.{p}", "options must differ from each other "
                                                       "and from the placement itself")
        overflow[p] = names
    pri = toml.table(ctx, raw.get("priority", {}), "provision.priority")
    toml.check_keys(ctx, pri, "provision.priority", {"tiers", "needs"})
    d = ProvisionConfig(plan=plan)
    tiers = _names(ctx, pri.get("tiers", list(d.tiers)), "provision.priority.tiers", TIERS[1:])
    needs = _names(ctx, pri.get("needs", []), "provision.priority.needs", NEEDS, empty=True)
    wait = toml.string(ctx, raw.get("waiting_placement", d.waiting_placement),
                "provision.waiting_placement", PLACEMENTS)
    return ProvisionConfig(plan=plan, overflow=overflow, tiers=tiers, needs=needs,
                           waiting_placement=wait)


def _names(ctx: toml.Ctx, v: Any, key: str, choices: tuple[str, ...],
           empty: bool = False) -> tuple[str, ...]:
    if not isinstance(v, list) or (not v and not empty):
        raise ctx.fail(key, f"expected a list of names from {list(choices)}")
    out = tuple(toml.string(ctx, x, f"{key}[{i}]", choices) for i, x in enumerate(v))
    if len(set(out)) != len(out):
        raise ctx.fail(key, "names repeat")
    return out
