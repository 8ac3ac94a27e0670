"""Scenario modifiers applied to a year's rate tables: compile once per run, apply per year.

A :class:`simsend.config.scenarios.Modifier` (parsed from ``[scenarios]``) is compiled into
index arrays over one run's areas (:func:`compile_modifiers`); each year
:func:`apply_modifiers` changes the tables :meth:`simsend.rates.parameters.ParameterSet.year_tables`
builds, so the engine never sees a scenario.  See :mod:`simsend.config.scenarios` for the
filters each rate takes and how probabilities stay distributions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simsend.config.scenarios import Modifier
from simsend.config.statutory import PIPELINE_RATES
from simsend.config.toml import ConfigError
from simsend.dims import NEEDS, PLACEMENTS, TIERS


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
    :mod:`simsend.runner.distributed`): area-filtered indices are renumbered from ``lo`` and a
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
            idx = ()  # applied by simsend.statutory.workforce, not to the engine's tables
        else:
            idx = (np.array([PIPELINE_RATES.index(m.rate[9:])]),)
        out.append(Compiled(m, idx, len(areas)))
    return tuple(out)


def change(old: np.ndarray, op: str, value: float, s: float) -> np.ndarray:
    """Return ``old`` changed by ``op`` with ``value`` at strength ``s``.

    Strength ``s``: 0 = unchanged, 1 = full.
    """
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
            continue  # applied to the assessing staff by simsend.statutory.workforce
        key = {"tier": "tiers", "escalation": "tiers"}.get(rate, rate)
        if rate.startswith("pipeline."):
            key = "pipeline"
            if out.get("pipeline") is None:
                continue  # the statutory pipeline's rates are changed where it is drawn
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
        sub = change(old[ix], c.mod.op, c.mod.value, s)
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
