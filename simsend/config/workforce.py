"""The ``[workforce]`` table.

Assessing professions, their staff and hours (used by :mod:`simsend.statutory.workforce`), and
the checks of ``workforce.*`` scenario modifiers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import simsend.config.toml as toml
from simsend.config.toml import ConfigError

FIELDS = ("fte", "fte_per_10k", "hours_per_fte", "statutory_share", "hours_per_assessment")
"""Keys of a profession's table (exactly one of ``fte`` and ``fte_per_10k``)."""
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LIMITS = {"fte": 1e6, "fte_per_10k": 1e4, "hours_per_fte": 8784.0,
           "hours_per_assessment": 1e4}
"""Largest accepted value of each number (8,784 = hours in a leap year)."""


@dataclass(frozen=True)
class Profession:
    """One assessing profession (``[workforce.<name>]``).

    Attributes
    ----------
    name : str
    fte : float, mapping of area code to float, or None
        FTE of the whole run (a number) or of each area (a mapping); None with ``fte_per_10k``.
    fte_per_10k : float or None
        FTE per 10,000 residents aged 0-25 at the baseline census, in each area.
    hours_per_fte : float
    statutory_share : float
    hours_per_assessment : float

    """

    name: str
    fte: float | Mapping[str, float] | None
    fte_per_10k: float | None
    hours_per_fte: float
    statutory_share: float
    hours_per_assessment: float

    @property
    def staff_key(self) -> str:
        """``"fte"`` or ``"fte_per_10k"``: the key that gives this profession's staff."""
        return "fte" if self.fte is not None else "fte_per_10k"


@dataclass(frozen=True)
class WorkforceConfig:
    """The ``[workforce]`` table: assessing professions, in the order written."""

    professions: tuple[Profession, ...]
    enabled: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        """Profession names."""
        return tuple(p.name for p in self.professions)


def _staff_table(ctx: toml.Ctx, raw: dict, key: str) -> dict[str, float]:
    if not raw:
        raise ctx.fail(key, "expected a number or a non-empty table of area code = FTE")
    return {str(a): toml.number(ctx, v, f"{key}.{a}", 0.0, _LIMITS["fte"]) for a, v in raw.items()}


def _profession(ctx: toml.Ctx, name: str, raw: Any) -> Profession:
    key = f"workforce.{name}"
    if not _NAME.match(name):
        raise ctx.fail(key, "a profession name is lower-case letters, digits and '_', "
                            "starting with a letter")
    raw = toml.table(ctx, raw, key)
    toml.check_keys(ctx, raw, key, set(FIELDS))
    if ("fte" in raw) == ("fte_per_10k" in raw):
        raise ctx.fail(key, "give exactly one of 'fte' (FTE of the run, or a table by area "
                            "code) and 'fte_per_10k' (FTE per 10,000 residents aged 0-25)")
    for req in ("hours_per_fte", "statutory_share", "hours_per_assessment"):
        if req not in raw:
            raise ctx.fail(f"{key}.{req}", "missing required key")
    fte = per10k = None
    if "fte" in raw:
        fte = (_staff_table(ctx, raw["fte"], f"{key}.fte") if isinstance(raw["fte"], dict)
               else toml.number(ctx, raw["fte"], f"{key}.fte", 0.0, _LIMITS["fte"]))
    else:
        per10k = toml.number(ctx, raw["fte_per_10k"], f"{key}.fte_per_10k", 0.0,
                        _LIMITS["fte_per_10k"])
    return Profession(
        name=name, fte=fte, fte_per_10k=per10k,
        hours_per_fte=toml.number(ctx, raw["hours_per_fte"], f"{key}.hours_per_fte", 0.0,
                             _LIMITS["hours_per_fte"]),
        statutory_share=toml.prob(ctx, raw["statutory_share"], f"{key}.statutory_share"),
        hours_per_assessment=toml.number(ctx, raw["hours_per_assessment"],
                                    f"{key}.hours_per_assessment", 0.0,
                                    _LIMITS["hours_per_assessment"]),
    )


def parse_workforce(ctx: toml.Ctx, raw: Any) -> WorkforceConfig | None:
    """Parse ``[workforce]`` (None when the config has none: no constraint).

    Raises
    ------
    ConfigError
        Naming the key path of any unknown key or bad value.

    Examples
    --------
    >>> from simsend.config.toml import Ctx
    >>> w = parse_workforce(Ctx("x.toml"), {"ep": {"fte": 10, "hours_per_fte": 1300,
    ...     "statutory_share": 0.5, "hours_per_assessment": 20}})
    >>> w.names, w.professions[0].fte
    (('ep',), 10.0)

    """
    if raw is None:
        return None
    raw = dict(toml.table(ctx, raw, "workforce"))
    enabled = raw.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ctx.fail("workforce.enabled", f"expected true or false, got {enabled!r}")
    if not raw:
        raise ctx.fail("workforce", "expected at least one profession table, e.g. "
                                    "[workforce.educational_psychologist]")
    for name, v in raw.items():
        if not isinstance(v, dict):
            raise ctx.fail(f"workforce.{name}", "unknown key; expected 'enabled' or a "
                                                "profession table [workforce.<profession>]")
    return WorkforceConfig(tuple(_profession(ctx, n, v) for n, v in raw.items()), enabled)


def modifier_target(ctx: toml.Ctx, rate: str, key: str) -> tuple[str, str]:
    """Split and check the syntax of a modifier's ``workforce.<profession>.<key>`` rate."""
    parts = rate.split(".")
    if len(parts) != 3 or not _NAME.match(parts[1]) or parts[2] not in FIELDS:
        raise ctx.fail(f"{key}.rate", f"expected 'workforce.<profession>.<key>' with <key> one "
                                      f"of {list(FIELDS)}, got {rate!r}")
    return parts[1], parts[2]


def check_modifiers(ctx: toml.Ctx, wf: WorkforceConfig | None, scenarios: tuple) -> tuple:
    """Check that every ``workforce.*`` modifier names a profession and key of ``wf``.

    Returns ``scenarios`` unchanged.
    """
    for sc in scenarios:
        for m in sc.modifiers:
            if not m.rate.startswith("workforce."):
                continue
            name, key = m.rate.split(".")[1:]
            if wf is None:
                raise ctx.fail(f"{m.key}.rate", "this config has no [workforce] table to "
                                                "modify")
            if name not in wf.names:
                raise ctx.fail(f"{m.key}.rate", f"no profession {name!r} in [workforce]; "
                                                f"expected one of {list(wf.names)}")
            prof = wf.professions[wf.names.index(name)]
            if key in ("fte", "fte_per_10k") and key != prof.staff_key:
                raise ctx.fail(f"{m.key}.rate", f"[workforce.{name}] gives "
                                                f"{prof.staff_key!r}; modify "
                                                f"'workforce.{name}.{prof.staff_key}'")
    return scenarios


def check_areas(wf: WorkforceConfig | None, areas: Sequence[str], source: str) -> None:
    """Check that every ``fte`` table lists every area of the run (before it runs).

    Raises
    ------
    ConfigError
        Naming the profession's ``fte`` key and the missing areas.

    """
    if wf is None or not wf.enabled:
        return
    for p in wf.professions:
        if isinstance(p.fte, Mapping):
            missing = [str(a) for a in areas if str(a) not in p.fte]
            if missing:
                raise ConfigError(
                    f"{source}: [workforce.{p.name}.fte] no FTE for area(s) {missing[:10]}"
                    f"{' ...' if len(missing) > 10 else ''} of this run; list every area, "
                    f"give one number for the whole run, or use fte_per_10k")
