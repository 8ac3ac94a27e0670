"""Scenarios: named, composable modifiers of the per-year rate tables.

A scenario is a list of modifiers, each of which multiplies, adds to or sets one rate table
over a filtered part of its cells, in a range of census years, stepped or ramped in; policy
events (a request surge, early intervention, a threshold change) are shorthands for such
modifiers or for reform settings.  Modifiers act only on the tables that
:meth:`simsend.rates.parameters.ParameterSet.year_tables` hands the engine each year, so the
engine loop and its step order are the same for every scenario, and (the random numbers being
keyed by seed, draw, year, stream and pupil, never by scenario) a scenario and its baseline
share random numbers wherever they agree: common random numbers.

TOML::

    [scenarios.surge]
    description = "EHC needs assessment requests up a third in 2023-2025"
    events = [{ type = "request_surge", factor = 1.33, years = "2023-2025" }]

    [[scenarios.early_help.modify]]
    rate = "escalation"       # identification | leaving | tier | escalation | placement
    op = "multiply"           #   | births | pipeline.<rate>;  op: multiply | add | set
    value = 0.8
    tier = ["targeted"]       # filters (each optional): tier, to, from, ages, needs, areas
    ages = "5-15"
    years = "2026-2035"       # census years (inclusive); default every simulated year
    ramp = 3                  # years to reach full strength (0 = stepped)

    [scenarios.both]
    include = ["surge", "early_help"]   # composition: the named scenarios' modifiers first

    [scenarios.stricter]
    reform = { review_share = 0.2, entry_factor = 0.8 }   # overrides [reform] keys

Which filters apply to which rate:

============== =========================================================================
rate           filters
============== =========================================================================
identification ``ages``, ``areas``
leaving        ``tier``, ``ages``
tier           ``tier`` (from), ``to`` (tiers), ``ages``, ``needs``, ``areas``
escalation     as ``tier``, restricted to moves to a higher tier
placement      ``tier``, ``from``, ``to`` (placements), ``ages``
births         ``areas``
places         ``to`` (placements), ``areas``: places of a provision plan
               (:mod:`simsend.rates.provision`); ``op = "hold"`` keeps them at the level of the
               census year before ``years`` begins (no new places)
pipeline.<r>   none (a rate of :mod:`simsend.statutory.ehc_pipeline`, e.g. ``pipeline.p_refuse``)
workforce.*    none: ``workforce.<profession>.<key>``, a key of ``[workforce.<profession>]``
               (:mod:`simsend.statutory.workforce`), e.g. ``workforce.educational_psychologist.fte``
============== =========================================================================

Tier moves do not depend on placement in the engine, so a placement filter on a tier rate is
an error; use ``rate = "placement"`` for placement rules.  Probabilities of moving stay
distributions: the stay probability absorbs every change, negative values are clipped to 0,
and a row whose moves would exceed 1 is scaled back to 1 (staying becomes 0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import simsend.config.toml as toml
from simsend.config.reform import ReformConfig, parse_reform
from simsend.config.statutory import PIPELINE_RATES
from simsend.config.workforce import modifier_target
from simsend.dims import NEEDS, PLACEMENTS, TIERS

RATES = ("identification", "leaving", "tier", "escalation", "placement", "births", "places")
"""Rate tables a modifier may act on (besides ``pipeline.<rate>``)."""
OPS = ("multiply", "add", "set")
EVENTS = ("request_surge", "early_intervention", "threshold_change")
"""Policy events: shorthands for modifiers or reform settings."""

_FILTERS = {
    "identification": {"ages", "areas"},
    "leaving": {"tier", "ages"},
    "tier": {"tier", "to", "ages", "needs", "areas"},
    "escalation": {"tier", "to", "ages", "needs", "areas"},
    "placement": {"tier", "from", "to", "ages"},
    "births": {"areas"},
    "places": {"to", "areas"},
}


@dataclass(frozen=True)
class Modifier:
    """One change to a rate table.

    Attributes
    ----------
    rate : str
        One of :data:`RATES` or ``pipeline.<rate>``.
    op : {"multiply", "add", "set"}
    value : float
    tier, to, frm, needs, areas : tuple of str or None
        Filters (None = every value); ``to`` holds tiers or placements, ``frm`` placements.
    ages : (int, int) or None
        Inclusive age range (the age reached at the census closing the year).
    years : (int, int) or None
        Inclusive census years; None = every simulated year.
    ramp : int
        Years over which the change grows linearly to full strength (0 = at once).
    key : str
        Key path in the config (for messages).

    """

    rate: str
    op: str
    value: float
    tier: tuple[str, ...] | None = None
    to: tuple[str, ...] | None = None
    frm: tuple[str, ...] | None = None
    ages: tuple[int, int] | None = None
    needs: tuple[str, ...] | None = None
    areas: tuple[str, ...] | None = None
    years: tuple[int, int] | None = None
    ramp: int = 0
    key: str = ""

    def strength(self, year: int) -> float:
        """Share of the full change in force at census ``year`` (0 outside ``years``).

        Examples
        --------
        >>> Modifier("births", "multiply", 2.0, years=(2025, 2030), ramp=4).strength(2026)
        0.5

        """
        if self.years is not None and not self.years[0] <= year <= self.years[1]:
            return 0.0
        if self.ramp <= 0 or self.years is None:
            return 1.0
        return min(1.0, (year - self.years[0] + 1) / self.ramp)


@dataclass(frozen=True)
class Scenario:
    """A named scenario: modifiers (in order) and the reform settings it runs under.

    ``reform`` None runs under the config's ``[reform]``.
    """

    name: str
    description: str = ""
    modifiers: tuple[Modifier, ...] = ()
    reform: ReformConfig | None = None


def early_intervention(effect: float, years: tuple[int, int] | None = None, ramp: int = 0,
                       name: str = "early_intervention") -> Scenario:
    """Scenario: every escalation (move to a higher tier) cut by the share ``effect``.

    Examples
    --------
    >>> early_intervention(0.2, (2026, 2030)).modifiers[0].value
    0.8

    """
    return Scenario(name, f"escalation cut by {effect:.3g}",
                    (Modifier("escalation", "multiply", 1.0 - effect, years=years, ramp=ramp,
                              key=name),))


def request_surge(factor: float, years: tuple[int, int] | None = None, ramp: int = 0,
                  name: str = "request_surge") -> Scenario:
    """Scenario: moves into the specialist tier (requests assessed and issued) times ``factor``."""
    return Scenario(name, f"requests x{factor:.3g}",
                    (Modifier("tier", "multiply", factor, tier=("targeted", "targeted_plus"),
                              to=("specialist",), years=years, ramp=ramp, key=name),))


# --------------------------------------------------------------------------- parsing


def _names(ctx: toml.Ctx, v: Any, key: str, choices: Sequence[str] | None) -> tuple[str, ...]:
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not items:
        raise ctx.fail(key, "expected a name or a non-empty list of names")
    return tuple(toml.string(ctx, x, f"{key}[{i}]", None if choices is None else tuple(choices))
                 for i, x in enumerate(items))


def _years(ctx: toml.Ctx, v: Any, key: str) -> tuple[int, int]:
    if isinstance(v, int) and not isinstance(v, bool):
        return toml.integer(ctx, v, key, 2000, 2100), v
    s = toml.string(ctx, v, key)
    parts = s.split("-")
    try:
        lo, hi = int(parts[0]), int(parts[-1])
    except ValueError:
        lo = hi = -1
    if len(parts) not in (1, 2) or not 2000 <= lo <= hi <= 2100:
        raise ctx.fail(key, f"year range {s!r}: expected 'YYYY-YYYY' or 'YYYY'")
    return lo, hi


def _parse_modifier(ctx: toml.Ctx, raw: Any, key: str) -> Modifier:
    raw = toml.table(ctx, raw, key)
    base = {"rate", "op", "value", "years", "ramp"}
    rate = toml.string(ctx, raw.get("rate"), f"{key}.rate") if "rate" in raw else None
    if rate is None:
        raise ctx.fail(f"{key}.rate", "missing required key")
    if rate.startswith("pipeline."):
        if rate[9:] not in PIPELINE_RATES:
            raise ctx.fail(f"{key}.rate", f"unknown pipeline rate {rate[9:]!r}; expected one "
                                          f"of {list(PIPELINE_RATES)}")
        allowed = base
    elif rate.startswith("workforce."):
        modifier_target(ctx, rate, key)  # the profession is checked against [workforce]
        allowed = base
    elif rate in _FILTERS:
        allowed = base | _FILTERS[rate]
    else:
        raise ctx.fail(f"{key}.rate", f"unknown rate {rate!r}; expected one of "
                                      f"{[*RATES, 'pipeline.<rate>', 'workforce.<p>.<key>']}")
    for k in raw:
        if k not in allowed:
            raise ctx.fail(f"{key}.{k}", f"not a filter of rate {rate!r}; expected one of "
                                         f"{sorted(allowed)}")
    if "op" not in raw:
        raise ctx.fail(f"{key}.op", "missing required key")
    op = toml.string(ctx, raw["op"], f"{key}.op", (*OPS, "hold") if rate == "places" else OPS)
    if "value" not in raw and op != "hold":
        raise ctx.fail(f"{key}.value", "missing required key")
    if op == "hold":
        if "years" not in raw:
            raise ctx.fail(f"{key}.years", "op 'hold' needs 'years' (places are held at the "
                                           "level of the year before they begin)")
        raw = {**raw, "value": raw.get("value", 0.0)}
    value = toml.number(ctx, raw["value"], f"{key}.value", -1e9, 1e9)
    if op == "multiply" and value < 0:
        raise ctx.fail(f"{key}.value", "a multiplier must be >= 0")
    to_choices = PLACEMENTS if rate in ("placement", "places") else TIERS
    if raw.get("ramp", 0) and "years" not in raw:
        raise ctx.fail(f"{key}.ramp", "a ramp needs 'years' (the first year it starts from)")
    return Modifier(
        rate=rate, op=op, value=value,
        tier=_names(ctx, raw["tier"], f"{key}.tier", TIERS) if "tier" in raw else None,
        to=_names(ctx, raw["to"], f"{key}.to", to_choices) if "to" in raw else None,
        frm=_names(ctx, raw["from"], f"{key}.from", PLACEMENTS) if "from" in raw else None,
        ages=toml.age_range(ctx, toml.string(ctx, raw["ages"], f"{key}.ages"), f"{key}.ages")
        if "ages" in raw else None,
        needs=_names(ctx, raw["needs"], f"{key}.needs", NEEDS) if "needs" in raw else None,
        areas=_names(ctx, raw["areas"], f"{key}.areas", None) if "areas" in raw else None,
        years=_years(ctx, raw["years"], f"{key}.years") if "years" in raw else None,
        ramp=toml.integer(ctx, raw.get("ramp", 0), f"{key}.ramp", 0, 100),
        key=key,
    )


_EVENT_KEYS = {
    "request_surge": {"type", "factor", "years", "ramp", "areas"},
    "early_intervention": {"type", "effect", "years", "ramp", "ages", "needs", "areas"},
    "threshold_change": {"type", "review_share", "entry_factor", "legislation_year"},
}


def _parse_event(ctx: toml.Ctx, raw: Any, key: str, reform: dict) -> list[Modifier]:
    """Expand one policy event into modifiers (or reform settings, written into ``reform``)."""
    raw = toml.table(ctx, raw, key)
    kind = toml.string(ctx, raw.get("type"), f"{key}.type", EVENTS) if "type" in raw else None
    if kind is None:
        raise ctx.fail(f"{key}.type", f"missing required key; expected one of {list(EVENTS)}")
    toml.check_keys(ctx, raw, key, _EVENT_KEYS[kind])
    common = {}
    if "years" in raw:
        common["years"] = _years(ctx, raw["years"], f"{key}.years")
    common["ramp"] = toml.integer(ctx, raw.get("ramp", 0), f"{key}.ramp", 0, 100)
    if common["ramp"] and "years" not in common:
        raise ctx.fail(f"{key}.ramp", "a ramp needs 'years' (the first year it starts from)")
    if "areas" in raw:
        common["areas"] = _names(ctx, raw["areas"], f"{key}.areas", None)
    if kind == "request_surge":
        # More requests, assessed and refused at the same rates: more moves into the
        # specialist tier (plans issued), and the pipeline counts more requests around them.
        f = toml.number(ctx, raw.get("factor", 1.0), f"{key}.factor", 0.0, 10.0)
        return [Modifier("tier", "multiply", f, tier=("targeted", "targeted_plus"),
                         to=("specialist",), key=key, **common)]
    if kind == "early_intervention":
        e = toml.number(ctx, raw.get("effect", 0.0), f"{key}.effect", 0.0, 1.0)
        if "ages" in raw:
            common["ages"] = toml.age_range(ctx, toml.string(ctx, raw["ages"], f"{key}.ages"),
                                        f"{key}.ages")
        if "needs" in raw:
            common["needs"] = _names(ctx, raw["needs"], f"{key}.needs", NEEDS)
        return [Modifier("escalation", "multiply", 1.0 - e, key=key, **common)]
    # checked here, so a bad value is named at the event's own key path
    readers = {"review_share": lambda v, k: toml.prob(ctx, v, k),
               "entry_factor": lambda v, k: toml.number(ctx, v, k, 0.0, 10.0),
               "legislation_year": lambda v, k: toml.integer(ctx, v, k, 2000, 2100)}
    for k, read in readers.items():
        if k in raw:
            reform[k] = read(raw[k], f"{key}.{k}")
    return []


def _parse_one(ctx: toml.Ctx, name: str, raw: Any, all_raw: dict, base_reform: ReformConfig,
               stack: tuple[str, ...] = ()) -> Scenario:
    key = f"scenarios.{name}"
    raw = toml.table(ctx, raw, key)
    toml.check_keys(ctx, raw, key, {"description", "include", "modify", "events", "reform"})
    if name == "baseline":
        raise ctx.fail(key, "'baseline' is reserved for the run without modifiers")
    mods: list[Modifier] = []
    reform_raw: dict = {}
    for i, inc in enumerate(_names(ctx, raw["include"], f"{key}.include", None)
                            if "include" in raw else ()):
        if inc not in all_raw:
            raise ctx.fail(f"{key}.include[{i}]", f"no scenario named {inc!r}; expected one "
                                                  f"of {sorted(all_raw)}")
        if inc in (*stack, name):
            raise ctx.fail(f"{key}.include[{i}]", f"circular include of {inc!r}")
        sub = _parse_one(ctx, inc, all_raw[inc], all_raw, base_reform, (*stack, name))
        mods.extend(sub.modifiers)
        for f in dataclasses.fields(ReformConfig):  # reform settings the included one changed
            v = getattr(sub.reform, f.name)
            if v != getattr(base_reform, f.name):
                reform_raw[f.name] = list(v) if isinstance(v, tuple) else v
    events = raw.get("events", [])
    if not isinstance(events, list):
        raise ctx.fail(f"{key}.events", "expected an array of tables")
    for i, ev in enumerate(events):
        mods.extend(_parse_event(ctx, ev, f"{key}.events[{i}]", reform_raw))
    modify = raw.get("modify", [])
    if not isinstance(modify, list):
        raise ctx.fail(f"{key}.modify", "expected an array of tables [[scenarios.NAME.modify]]")
    mods.extend(_parse_modifier(ctx, m, f"{key}.modify[{i}]") for i, m in enumerate(modify))
    reform_raw.update(toml.table(ctx, raw.get("reform", {}), f"{key}.reform"))
    reform = parse_reform(ctx, reform_raw, f"{key}.reform", base_reform)
    desc = toml.string(ctx, raw.get("description", ""), f"{key}.description")
    return Scenario(name=name, description=desc, modifiers=tuple(mods), reform=reform)


def parse_scenarios(ctx: toml.Ctx, raw: dict, base_reform: ReformConfig) -> tuple[Scenario, ...]:
    """Parse the ``[scenarios]`` table into scenarios, in the order they are written."""
    return tuple(_parse_one(ctx, name, r, raw, base_reform) for name, r in raw.items())


def check_years(ctx: toml.Ctx, scenarios: tuple[Scenario, ...], start_year: int,
                end_year: int) -> tuple[Scenario, ...]:
    """Return ``scenarios`` once every modifier's years meet the run's census years.

    A modifier whose ``years`` lie wholly outside ``start_year``-``end_year`` (``[run]``)
    would never be in force, so the scenario would silently equal the baseline.

    Raises
    ------
    ConfigError
        Naming the modifier's ``years`` key path, its years and the run's years.

    """
    for s in scenarios:
        for m in s.modifiers:
            if m.years is not None and (m.years[1] < start_year or m.years[0] > end_year):
                lo, hi = m.years
                span = str(lo) if lo == hi else f"{lo}-{hi}"
                raise ctx.fail(f"{m.key}.years",
                               f"years {span} lie wholly outside the run's years "
                               f"{start_year}-{end_year} (run.start_year-run.end_year), so "
                               "the modifier would never act; expected years that overlap "
                               "the run")
    return scenarios


BASELINE = "baseline"
"""Name of the run without modifiers in a results file's ``scenario`` coordinate."""
BASELINE_RUN = Scenario(BASELINE, "no modifiers")
"""Stands for the baseline run (the config's own ``[reform]``, no modifiers)."""


def is_baseline(scenario: Scenario | None) -> bool:
    """Return True for the baseline run (None or the run named :data:`BASELINE`)."""
    return scenario is None or scenario.name == BASELINE


