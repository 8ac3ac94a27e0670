"""Scenarios: named, composable modifiers of the per-year rate tables.

A scenario is a list of modifiers, each of which multiplies, adds to or sets one rate table
over a filtered part of its cells, in a range of census years, stepped or ramped in; policy
events (a request surge, early intervention, a threshold change) are shorthands for such
modifiers or for reform settings.  Modifiers act only on the tables that
:meth:`simsend.params.ParameterSet.year_tables` hands the engine each year, so the engine loop
and its step order are the same for every scenario, and (the random numbers being keyed by
seed, draw, year, stream and pupil, never by scenario) a scenario and its baseline share
random numbers wherever they agree: common random numbers.

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
               (:mod:`simsend.provision`); ``op = "hold"`` keeps them at the level of the
               census year before ``years`` begins (no new places)
pipeline.<r>   none (a rate of :mod:`simsend.pipeline`, e.g. ``pipeline.p_refuse``)
workforce.*    none: ``workforce.<profession>.<key>``, a key of ``[workforce.<profession>]``
               (:mod:`simsend.workforce`), e.g. ``workforce.educational_psychologist.fte``
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

import numpy as np

from simsend.config import (
    PIPELINE_RATES,
    ConfigError,
    ReformConfig,
    _age_range,
    _check_keys,
    _Ctx,
    _float,
    _int,
    _parse_reform,
    _str,
    _table,
)
from simsend.dims import NEEDS, PLACEMENTS, TIERS
from simsend.params import WrappedSource

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


def _names(ctx: _Ctx, v: Any, key: str, choices: Sequence[str] | None) -> tuple[str, ...]:
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not items:
        raise ctx.fail(key, "expected a name or a non-empty list of names")
    return tuple(_str(ctx, x, f"{key}[{i}]", None if choices is None else tuple(choices))
                 for i, x in enumerate(items))


def _years(ctx: _Ctx, v: Any, key: str) -> tuple[int, int]:
    if isinstance(v, int) and not isinstance(v, bool):
        return _int(ctx, v, key, 2000, 2100), v
    s = _str(ctx, v, key)
    parts = s.split("-")
    try:
        lo, hi = int(parts[0]), int(parts[-1])
    except ValueError:
        lo = hi = -1
    if len(parts) not in (1, 2) or not 2000 <= lo <= hi <= 2100:
        raise ctx.fail(key, f"year range {s!r}: expected 'YYYY-YYYY' or 'YYYY'")
    return lo, hi


def _parse_modifier(ctx: _Ctx, raw: Any, key: str) -> Modifier:
    raw = _table(ctx, raw, key)
    base = {"rate", "op", "value", "years", "ramp"}
    rate = _str(ctx, raw.get("rate"), f"{key}.rate") if "rate" in raw else None
    if rate is None:
        raise ctx.fail(f"{key}.rate", "missing required key")
    if rate.startswith("pipeline."):
        if rate[9:] not in PIPELINE_RATES:
            raise ctx.fail(f"{key}.rate", f"unknown pipeline rate {rate[9:]!r}; expected one "
                                          f"of {list(PIPELINE_RATES)}")
        allowed = base
    elif rate.startswith("workforce."):
        from simsend.workforce import modifier_target

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
    for req in ("op", "value"):
        if req not in raw and not (req == "value" and raw.get("op") == "hold"):
            raise ctx.fail(f"{key}.{req}", "missing required key")
    if raw.get("op") == "hold" and rate == "places":
        if "years" not in raw:
            raise ctx.fail(f"{key}.years", "op 'hold' needs 'years' (places are held at the "
                                           "level of the year before they begin)")
        raw = {**raw, "value": raw.get("value", 0.0)}
        op = "hold"
    else:
        op = _str(ctx, raw["op"], f"{key}.op", OPS)
    value = _float(ctx, raw["value"], f"{key}.value", -1e9, 1e9)
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
        ages=_age_range(ctx, _str(ctx, raw["ages"], f"{key}.ages"), f"{key}.ages")
        if "ages" in raw else None,
        needs=_names(ctx, raw["needs"], f"{key}.needs", NEEDS) if "needs" in raw else None,
        areas=_names(ctx, raw["areas"], f"{key}.areas", None) if "areas" in raw else None,
        years=_years(ctx, raw["years"], f"{key}.years") if "years" in raw else None,
        ramp=_int(ctx, raw.get("ramp", 0), f"{key}.ramp", 0, 100),
        key=key,
    )


_EVENT_KEYS = {
    "request_surge": {"type", "factor", "years", "ramp", "areas"},
    "early_intervention": {"type", "effect", "years", "ramp", "ages", "needs", "areas"},
    "threshold_change": {"type", "review_share", "entry_factor", "legislation_year"},
}


def _parse_event(ctx: _Ctx, raw: Any, key: str, reform: dict) -> list[Modifier]:
    """Expand one policy event into modifiers (or reform settings, written into ``reform``)."""
    raw = _table(ctx, raw, key)
    kind = _str(ctx, raw.get("type"), f"{key}.type", EVENTS) if "type" in raw else None
    if kind is None:
        raise ctx.fail(f"{key}.type", f"missing required key; expected one of {list(EVENTS)}")
    _check_keys(ctx, raw, key, _EVENT_KEYS[kind])
    common = {}
    if "years" in raw:
        common["years"] = _years(ctx, raw["years"], f"{key}.years")
    common["ramp"] = _int(ctx, raw.get("ramp", 0), f"{key}.ramp", 0, 100)
    if common["ramp"] and "years" not in common:
        raise ctx.fail(f"{key}.ramp", "a ramp needs 'years' (the first year it starts from)")
    if "areas" in raw:
        common["areas"] = _names(ctx, raw["areas"], f"{key}.areas", None)
    if kind == "request_surge":
        # More requests, assessed and refused at the same rates: more moves into the
        # specialist tier (plans issued), and the pipeline counts more requests around them.
        f = _float(ctx, raw.get("factor", 1.0), f"{key}.factor", 0.0, 10.0)
        return [Modifier("tier", "multiply", f, tier=("targeted", "targeted_plus"),
                         to=("specialist",), key=key, **common)]
    if kind == "early_intervention":
        e = _float(ctx, raw.get("effect", 0.0), f"{key}.effect", 0.0, 1.0)
        if "ages" in raw:
            common["ages"] = _age_range(ctx, _str(ctx, raw["ages"], f"{key}.ages"),
                                        f"{key}.ages")
        if "needs" in raw:
            common["needs"] = _names(ctx, raw["needs"], f"{key}.needs", NEEDS)
        return [Modifier("escalation", "multiply", 1.0 - e, key=key, **common)]
    for k in ("review_share", "entry_factor", "legislation_year"):
        if k in raw:
            reform[k] = raw[k]
    return []


def _parse_one(ctx: _Ctx, name: str, raw: Any, all_raw: dict, base_reform: ReformConfig,
               stack: tuple[str, ...] = ()) -> Scenario:
    key = f"scenarios.{name}"
    raw = _table(ctx, raw, key)
    _check_keys(ctx, raw, key, {"description", "include", "modify", "events", "reform"})
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
    reform_raw.update(_table(ctx, raw.get("reform", {}), f"{key}.reform"))
    reform = _parse_reform(ctx, reform_raw, f"{key}.reform", base_reform)
    desc = _str(ctx, raw.get("description", ""), f"{key}.description")
    return Scenario(name=name, description=desc, modifiers=tuple(mods), reform=reform)


def parse_scenarios(ctx: _Ctx, raw: dict, base_reform: ReformConfig) -> tuple[Scenario, ...]:
    """Parse the ``[scenarios]`` table into scenarios, in the order they are written."""
    return tuple(_parse_one(ctx, name, r, raw, base_reform) for name, r in raw.items())


# --------------------------------------------------------------------------- applying


@dataclass(frozen=True)
class Compiled:
    """A modifier with its filters turned into index arrays for one run's areas.

    ``index`` holds one index array per table dimension; the area entry is None when the
    modifier has no area filter (every area of whatever table it meets), so that it applies
    unchanged to a chunk of areas.  ``n_areas`` is the area count filtered indices refer to
    (see :func:`slice_modifiers`).
    """

    mod: Modifier
    index: tuple
    n_areas: int = 0


_AREA_AXIS = {"identification": 1, "tier": 4, "escalation": 4, "births": 0, "places": 0}
"""Axis of the area dimension in each area-indexed table."""


def slice_modifiers(compiled: Sequence[Compiled], lo: int, hi: int) -> tuple[Compiled, ...]:
    """Restrict compiled modifiers to the areas ``lo .. hi - 1`` of their run.

    Use it with tables restricted to those areas (a chunk of a run's areas, as in
    :mod:`simsend.distributed`): area-filtered indices are renumbered from ``lo`` and a
    modifier that filters only areas outside the chunk is dropped.
    """
    out = []
    for c in compiled:
        ax = _AREA_AXIS.get(c.mod.rate)
        if ax is None or c.index[ax] is None:
            out.append(Compiled(c.mod, c.index, hi - lo))
            continue
        r = c.index[ax]
        r = r[(r >= lo) & (r < hi)] - lo
        if len(r):
            out.append(Compiled(c.mod, (*c.index[:ax], r, *c.index[ax + 1:]), hi - lo))
    return tuple(out)


def _sel(names: tuple[str, ...] | None, labels: Sequence[str]) -> np.ndarray:
    if names is None:
        return np.arange(len(labels))
    return np.array([list(labels).index(n) for n in names], np.int64)


def compile_modifiers(mods: Sequence[Modifier], areas: Sequence[str]) -> tuple[Compiled, ...]:
    """Resolve the filters of ``mods`` against a run's area codes.

    Raises
    ------
    ConfigError
        When an ``areas`` filter names an area the run does not hold.

    """
    areas = [str(a) for a in areas]
    out = []
    for m in mods:
        if m.areas is not None:
            for a in m.areas:
                if a not in areas:
                    raise ConfigError(f"[{m.key}.areas] area {a!r} is not in this run's areas "
                                      f"{areas[:10]}{' ...' if len(areas) > 10 else ''}")
        ages = np.arange(26) if m.ages is None else np.arange(m.ages[0], m.ages[1] + 1)
        r = None if m.areas is None else _sel(m.areas, areas)
        if m.rate == "identification":
            idx = (ages, r)
        elif m.rate == "leaving":
            idx = (_sel(m.tier, TIERS), ages)
        elif m.rate in ("tier", "escalation"):
            src = _sel(m.tier or TIERS[1:], TIERS)
            idx = (src, _sel(m.to, TIERS), ages, _sel(m.needs, NEEDS), r)
        elif m.rate == "placement":
            idx = (_sel(m.tier or TIERS[1:], TIERS), ages, _sel(m.frm, PLACEMENTS),
                   _sel(m.to, PLACEMENTS))
        elif m.rate == "births":
            idx = (r,)
        elif m.rate == "places":
            idx = (r, _sel(m.to, PLACEMENTS))
        elif m.rate.startswith("workforce."):
            idx = ()  # applied by simsend.workforce, not to the engine's tables
        else:
            idx = (np.array([PIPELINE_RATES.index(m.rate[9:])]),)
        out.append(Compiled(m, idx, len(areas)))
    return tuple(out)


def _change(old: np.ndarray, op: str, value: float, s: float) -> np.ndarray:
    if op == "multiply":
        return old * (1.0 + s * (value - 1.0))
    if op == "add":
        return old + s * value
    return old + s * (value - old)


def _fix_rows(new: np.ndarray, old: np.ndarray, diag_axes: tuple[int, int]) -> np.ndarray:
    """Make rows of a transition table distributions again after changes off the diagonal.

    ``diag_axes`` are the (source, destination) axes.  Rows with no change keep their bits.
    """
    a, b = diag_axes
    new = np.clip(new, 0.0, None)
    n = new.shape[a]
    eye = np.eye(n, dtype=bool)
    shape = [1] * new.ndim
    shape[a], shape[b] = n, n
    off = np.where(eye.reshape(shape), 0.0, new)
    moving = off.sum(axis=b, keepdims=True)
    scale = np.where(moving > 1.0, 1.0 / np.where(moving > 0, moving, 1.0), 1.0)
    off = off * scale
    stay = 1.0 - off.sum(axis=b, keepdims=True)
    changed = (new != old).any(axis=b, keepdims=True)
    diag = np.where(changed, np.clip(stay, 0.0, 1.0), old)
    out = np.where(eye.reshape(shape), diag, off)
    return np.where(changed, out, old)


def apply_modifiers(compiled: Sequence[Compiled], year: int, tables: dict) -> dict:
    """Apply compiled modifiers in force at census ``year`` to rate tables.

    Parameters
    ----------
    compiled : sequence of Compiled
    year : int
        Census year closing the simulated year.
    tables : dict
        ``identification (26, A)``, ``leaving (4, 26)``, ``tiers (4, 4, 26, 13, A)``,
        ``placement (4, 26, 7, 7)``, ``births (A,)`` (float), ``pipeline (K,)`` (or None).
        Arrays are not modified; changed tables are new arrays.

    Returns
    -------
    dict
        The tables, changed where a modifier was in force.

    """
    out = dict(tables)
    for c in compiled:
        s = c.mod.strength(year)
        if s == 0.0:
            continue
        rate = c.mod.rate
        if rate.startswith("workforce."):
            continue  # applied to the assessing staff by simsend.workforce
        key = {"tier": "tiers", "escalation": "tiers"}.get(rate, rate)
        if rate.startswith("pipeline."):
            key = "pipeline"
            if out["pipeline"] is None:
                continue
        if rate == "places" and (out.get("places") is None or c.mod.op == "hold"):
            continue  # no provision plan; "hold" acts in hold_places
        old = out[key]
        new = old.copy()
        index = list(c.index)
        ax = _AREA_AXIS.get(rate)
        if ax is not None:
            if index[ax] is None:
                index[ax] = np.arange(old.shape[ax])
            elif old.shape[ax] != c.n_areas:
                raise ValueError(f"[{c.mod.key}] compiled for {c.n_areas} areas, applied to a "
                                 f"table of {old.shape[ax]}: restrict it with slice_modifiers")
        ix = np.ix_(*index)
        sub = _change(old[ix], c.mod.op, c.mod.value, s)
        if rate in ("tier", "escalation"):
            src, dst = c.index[0], c.index[1]
            keep = dst[None, :] == src[:, None] if rate == "tier" else (
                dst[None, :] <= src[:, None])
            sub = np.where(keep[:, :, None, None, None], old[ix], sub)
            new[ix] = sub
            new = _fix_rows(new, old, (0, 1))
        elif rate == "placement":
            keep = c.index[2][:, None] == c.index[3][None, :]
            sub = np.where(keep[None, None], old[ix], sub)
            new[ix] = sub
            new = _fix_rows(new, old, (2, 3))
        elif rate == "births":
            new[ix] = np.clip(sub, 0.0, None)
        elif rate == "places":
            if c.mod.op != "set":  # unlimited places stay unlimited (inf * 0 would be NaN)
                sub = np.where(np.isinf(old[ix]), old[ix], sub)
            new[ix] = np.clip(sub, 0.0, None)
        elif rate == "pipeline" or key == "pipeline":
            lim = None if PIPELINE_RATES[c.index[0][0]].startswith("mean_") else 1.0
            new[ix] = np.clip(sub, 0.0, lim)
        else:
            new[ix] = np.clip(sub, 0.0, 1.0)
        out[key] = new
    return out


def hold_places(compiled: Sequence[Compiled], year: int, series: np.ndarray,
                start_year: int) -> np.ndarray:
    """Places of census ``year`` after the ``hold`` modifiers in force (no new places).

    ``series`` is the plan's places ``(Y, A, P)`` from ``start_year``; a held cell keeps the
    lower of its planned places and those of the census year before the hold begins.
    """
    yi = year - start_year
    out = series[yi]
    for c in compiled:
        if c.mod.rate != "places" or c.mod.op != "hold" or c.mod.strength(year) == 0.0:
            continue
        y0 = min(max(c.mod.years[0] - 1 - start_year, 0), len(series) - 1)
        index = list(c.index)
        if index[0] is None:
            index[0] = np.arange(out.shape[0])
        ix = np.ix_(*index)
        out = out.copy()
        out[ix] = np.minimum(out[ix], series[y0][ix])
    return out


# --------------------------------------------------------------------------- running

BASELINE = "baseline"
"""Name of the run without modifiers in a results file's ``scenario`` coordinate."""
BASELINE_RUN = Scenario(BASELINE, "no modifiers")
"""Stands for the baseline run (the config's own ``[reform]``, no modifiers)."""


def _is_baseline(scenario: Scenario | None) -> bool:
    return scenario is None or scenario.name == BASELINE


class ScenarioSource(WrappedSource):
    """Wraps a :class:`simsend.params.ParameterSource`: every draw's set runs a scenario.

    Each parameter set gets the run's start year, the reform timeline, the scenario's
    compiled modifiers and the pipeline rates; the rates of the set are untouched, so
    parameter draws (e.g. posterior draws) are shared across scenarios.

    Parameters
    ----------
    source : ParameterSource
    start_year : int
    reform : ReformConfig
    modifiers : tuple of Compiled
    pipeline : ndarray (K,) or None

    """

    def __init__(self, source, start_year: int, reform: ReformConfig,
                 modifiers: tuple = (), pipeline: np.ndarray | None = None):
        self.source = source
        self.start_year = start_year
        self.reform = reform
        self.modifiers = modifiers
        self.pipeline = pipeline

    def wrap(self, ps):
        """Return ``ps`` running this scenario."""
        import dataclasses

        return dataclasses.replace(ps, start_year=self.start_year, reform=self.reform,
                                   modifiers=self.modifiers, pipeline=self.pipeline)


def scenario_source(source, cfg, areas: Sequence[str], scenario: Scenario | None = None):
    """Wrap ``source`` so that it runs ``scenario`` (None: the baseline) under ``cfg``."""
    base = _is_baseline(scenario)
    reform = cfg.reform if base or scenario.reform is None else scenario.reform
    mods = () if base else compile_modifiers(scenario.modifiers, areas)
    from simsend.workforce import check_areas

    check_areas(cfg.workforce, areas, cfg.source_path)  # before the run, not after it
    return ScenarioSource(source, cfg.run.start_year, reform, mods,
                          cfg.pipeline.rates if cfg.pipeline.enabled else None)


def select(cfg, names: str | Sequence[str] | None) -> list[Scenario | None]:
    """Return the runs asked for: None (the baseline) first, then the named scenarios.

    ``names`` None runs every scenario of ``cfg``; ``"baseline"`` may be named too.

    Raises
    ------
    ConfigError
        For a name the config does not define.

    """
    known = {s.name: s for s in cfg.scenarios}
    if names is None:
        return [None, *cfg.scenarios]
    names = [names] if isinstance(names, str) else list(names)
    out: list[Scenario | None] = [None]
    for n in names:
        if n == BASELINE:
            continue
        if n not in known:
            raise ConfigError(f"{cfg.source_path}: no scenario named {n!r}; expected one of "
                              f"{[BASELINE, *known]}")
        if known[n] not in out:
            out.append(known[n])
    return out


def run_scenarios(cfg, names, run_one) -> Any:
    """Run the baseline and scenarios and stack them along a ``scenario`` dimension.

    Parameters
    ----------
    cfg : SimConfig
    names : str, sequence of str or None
        Scenarios to run (None: all); the baseline always runs.
    run_one : callable
        ``run_one(scenario)`` returns one run's Dataset (scenario None = baseline).

    Returns
    -------
    xarray.Dataset
        Every variable gains a leading ``scenario`` dimension (``"baseline"`` first).  All
        runs share the seed, so draws are paired: common random numbers.

    """
    import json

    import xarray as xr

    runs = select(cfg, names)
    results = [run_one(s) for s in runs]
    labels = [BASELINE if s is None else s.name for s in runs]
    ds = xr.concat(results, dim="scenario", data_vars="all", coords="minimal",
                   compat="override", combine_attrs="override")
    ds = ds.assign_coords(scenario=labels)
    ds.attrs.pop("scenario", None)  # the runs' own names are the coordinate now
    ds["scenario"].attrs = {"long_name": "scenario run against the same baseline and seed"}
    ds.attrs["scenarios"] = json.dumps(
        {BASELINE: "no modifiers", **{s.name: s.description for s in runs if s is not None}})
    return ds


def finish_run(ds, cfg, layout, scenario: Scenario | None):
    """Add the statutory pipeline variables and the scenario's name to one run's results."""
    from simsend.pipeline import pipeline_dataset, pipeline_rates

    if cfg.pipeline.enabled:
        mods = () if _is_baseline(scenario) else compile_modifiers(
            [m for m in scenario.modifiers if m.rate.startswith("pipeline.")], [])
        rates = pipeline_rates(cfg.pipeline.rates, mods, cfg.run.start_year, ds.sizes["year"])
        wmods = () if _is_baseline(scenario) else [
            m for m in scenario.modifiers if m.rate.startswith("workforce.")]
        ds = ds.merge(pipeline_dataset(ds, layout, rates, int(ds.attrs["root_seed"]),
                                       workforce=cfg.workforce, workforce_modifiers=wmods))
    ds.attrs["scenario"] = BASELINE if _is_baseline(scenario) else scenario.name
    return ds
