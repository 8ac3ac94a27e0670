r"""The assessing workforce: staff time needed for EHC needs assessments against time available.

Every EHC needs assessment needs advice from an educational psychologist, and usually from
health and social care professionals too.  ``[workforce]`` lists the assessing professions;
when one of them has fewer hours than the year's assessments need, assessments slow down:
fewer plans are issued within 20 weeks and the late ones take longer.  Without ``[workforce]``
(or with ``enabled = false``) nothing is constrained and the results are the same, bit for
bit, as those of a simsend without this module.

TOML (every key of a profession required except that exactly one of ``fte`` and
``fte_per_10k`` is given)::

    [workforce]
    enabled = true                      # optional; false switches the constraint off
    [workforce.educational_psychologist]
    fte_per_10k = 1.28                  # FTE per 10,000 residents aged 0-25, per area
    # fte = 2200.0                      # or: FTE for the whole run (areas pooled)
    # fte = { E06000017 = 3.0 }         # or: FTE by area code (every run area listed)
    hours_per_fte = 1300.0              # working hours of one FTE in a year
    statutory_share = 0.5               # share of those hours that statutory advice may take
    hours_per_assessment = 21.5         # hours of this profession one assessment needs

**The maths.**  For profession :math:`p`, year :math:`y` and unit :math:`u` (an area of the
results, or the whole run when the results have no ``area`` dimension):

.. math::

    H^{\mathrm{need}}_{p,y,u} = A_{y,u}\, h_{p,y}, \qquad
    H^{\mathrm{avail}}_{p,y,u} = F_{p,y,u}\, W_{p,y}\, s_{p,y}, \qquad
    r_{y,u} = \min_p \min\Bigl(1, \frac{H^{\mathrm{avail}}_{p,y,u}}{H^{\mathrm{need}}_{p,y,u}}
    \Bigr)

with :math:`A` the assessments drawn by the pipeline in the year (``n_assessed``, those ending
in a plan and those ending without one, summed over the unit's cells), :math:`h` the hours one
assessment needs, :math:`F` the FTE, :math:`W` the hours of one FTE and :math:`s` the share of
them statutory advice may take; :math:`r = 1` where nothing is needed.  How :math:`F` reaches
a unit:

* ``fte_per_10k``: each area's FTE is the rate times its residents aged 0-25 at the baseline
  census (the engine's ``n_pupils`` summed over tiers) / 10,000, held at that level over the
  years (staff do not grow with the population unless a scenario adds them).  This scales an
  England figure to any council, every council or England, which is why the shipped configs use
  it; councils differ, so a council should give its own ``fte``.
* ``fte`` as a table by area code: each area's own FTE; every area of the run must be listed
  (others are ignored).  Without an ``area`` dimension the run's areas are summed.
* ``fte`` as a number: the FTE of the whole run, shared by its areas (one service): the
  coverage is the run's total hours available over total hours needed, the same in every area
  (equivalently, the hours are split between areas in proportion to the hours they need, which
  is how ``dur_workforce_hours_available`` reports them by area).

**The effect** (:mod:`simsend.kernels.statutory`).  ASSUMPTION: an assessment service short of
time works as a queue served at a share :math:`r` of its demand: of the plans that would have
been issued within 20 weeks only a share :math:`r` still are, so the 20-week share becomes
:math:`p_{20}\, r`, and a late plan's weeks beyond 20 stretch from ``mean_weeks_over`` to
``mean_weeks_over`` / max(r, 0.1) (work spread over 1/r times as many cases; the 0.1 floor keeps
a service with no staff at all finite).  The statutory advice deadline (6 weeks within the 20)
makes the advising professions the usual bottleneck, hence the minimum over professions.
Plans issued are the engine's and do not change (a shortage delays plans, it does not refuse
them), nor does time carry over: a shortfall in one year does not leave a backlog for the next
(a simplification: a real backlog would make the effect last longer).

**Random numbers.**  Assessments are drawn first (the not-issued stream, exactly as the
pipeline draws them), the coverage is computed from them, and then the pipeline is drawn with
each cell's coverage.  A cell with :math:`r < 1` keeps each of its timely plans on time with
one extra uniform per plan on a sub-stream of the weeks stream, so the number on time never
rises when :math:`r` falls, draw by draw and cell by cell; with :math:`r = 1` no extra number
is drawn.  Adding staff in a scenario therefore never lowers the 20-week share of any draw,
and ample staff give results identical to no ``[workforce]``.

**Scenarios** add staff with modifiers on ``workforce.<profession>.<key>`` for the numeric keys
the profession gives (``fte`` or ``fte_per_10k``, ``hours_per_fte``, ``statutory_share``,
``hours_per_assessment``), ``op`` multiply / add / set, by census year with ``ramp``.  ``add``
on an ``fte`` table adds the value to every area's FTE.

**Defaults.**  No workforce is shipped switched on in ``configs/base.toml`` (a documented,
commented block); ``configs/scenarios/council_questions.toml`` switches it on with the values
derived there (all ASSUMPTIONS of published size; see ``docs/workforce.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from simsend.config.workforce import Profession, WorkforceConfig
from simsend.rates.modifiers import change

LONG_NAMES = {
    "dur_workforce_hours_needed": "hours of each assessing profession that the year's EHC "
                                  "needs assessments need (assessments x hours per assessment)",
    "dur_workforce_hours_available": "hours of each assessing profession available for "
                                     "statutory advice in the year (FTE x hours per FTE x "
                                     "statutory share)",
    "rel_workforce_coverage": "share of the needed assessing hours available, lowest over "
                              "professions, capped at 1 (1 = enough staff)",
}



@dataclass(frozen=True)
class Capacity:
    """Hours per assessment and hours available, per simulated year and profession.

    Attributes
    ----------
    professions : tuple of str
    units : tuple of str
        Areas of the results, or ``("all",)`` when they have no ``area`` dimension.
    hours_per_assessment : float64 (Y, P)
    available : float64 (Y, P, U)
        Hours available in each unit (NaN for a pooled profession: see ``pooled``).
    total : float64 (Y, P)
        Hours available in the whole run.
    pooled : bool (P,)
        Professions whose ``fte`` is one number for the run (coverage from the totals).

    """

    professions: tuple[str, ...]
    units: tuple[str, ...]
    hours_per_assessment: np.ndarray
    available: np.ndarray
    total: np.ndarray
    pooled: np.ndarray = field(repr=False)


def _changed(old, op: str, value: float, s: float):
    return change(np.asarray(old, np.float64), op, value, s)


def _values(p: Profession, mods: Sequence, year: int, areas: Sequence[str]) -> dict:
    """Return the profession's numbers in census ``year`` after the modifiers in force."""
    out: dict[str, Any] = {
        "hours_per_fte": np.float64(p.hours_per_fte),
        "statutory_share": np.float64(p.statutory_share),
        "hours_per_assessment": np.float64(p.hours_per_assessment),
    }
    if isinstance(p.fte, Mapping):
        out["fte"] = np.array([p.fte[str(a)] for a in areas], np.float64)
    else:
        out[p.staff_key] = np.float64(p.fte if p.fte is not None else p.fte_per_10k)
    for m in mods:
        name, key = m.rate.split(".")[1:]
        s = m.strength(year)
        if name != p.name or s == 0.0 or key not in out:
            continue
        new = np.clip(_changed(out[key], m.op, m.value, s), 0.0, None)
        out[key] = np.minimum(new, 1.0) if key == "statutory_share" else new
    return out


def capacity(wf: WorkforceConfig, mods: Sequence, years: Sequence[int], areas: Sequence[str],
             units: Sequence[str], population: np.ndarray) -> Capacity:
    """Hours available and hours per assessment for each simulated year of a run.

    Parameters
    ----------
    wf : WorkforceConfig
    mods : sequence of simsend.config.scenarios.Modifier
        The scenario's ``workforce.*`` modifiers (in order).
    years : sequence of int
        Census years of the results (the first, the baseline, has no flows).
    areas : sequence of str
        Every area of the run.
    units : sequence of str
        The results' areas (in their order), or ``("all",)`` without an ``area`` dimension.
    population : float64 (U,)
        Residents aged 0-25 of each unit at the baseline census (for ``fte_per_10k``).

    Returns
    -------
    Capacity

    """
    y, n_p, n_u = len(years), len(wf.professions), len(units)
    by_area = tuple(units) != ("all",)
    hpa = np.zeros((y, n_p))
    avail = np.full((y, n_p, n_u), np.nan)
    total = np.zeros((y, n_p))
    pooled = np.array([p.fte is not None and not isinstance(p.fte, Mapping)
                       for p in wf.professions])
    pos = {str(a): i for i, a in enumerate(areas)}
    for j, p in enumerate(wf.professions):
        for yi, year in enumerate(years):
            v = _values(p, mods, int(year), areas)
            hpa[yi, j] = v["hours_per_assessment"]
            per_fte = v["hours_per_fte"] * v["statutory_share"]
            if pooled[j]:
                total[yi, j] = v["fte"] * per_fte
                continue
            if isinstance(p.fte, Mapping):
                fte = (v["fte"][[pos[str(u)] for u in units]] if by_area
                       else np.array([v["fte"].sum()]))
            else:
                fte = v["fte_per_10k"] * np.asarray(population, np.float64) / 1e4
            avail[yi, j] = fte * per_fte
            total[yi, j] = avail[yi, j].sum()
    return Capacity(tuple(wf.names), tuple(str(u) for u in units), hpa, avail, total, pooled)


def coverage(assessed: np.ndarray, cap: Capacity) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Return hours needed, hours available and coverage from each unit's assessments.

    Parameters
    ----------
    assessed : int or float array (D, Y, U)
        Assessments per draw, year and unit.
    cap : Capacity

    Returns
    -------
    needed, available : float64 (D, Y, P, U)
        A pooled profession's hours are split between units in proportion to the hours they
        need (equally when none are needed).
    cover : float64 (D, Y, U)
        :math:`\min_p \min(1, \mathrm{available} / \mathrm{needed})`, 1 where nothing is
        needed.

    Examples
    --------
    >>> cap = Capacity(("ep",), ("a", "b"), np.array([[10.0]]), np.array([[[50.0, 500.0]]]),
    ...                np.array([[550.0]]), np.array([False]))
    >>> coverage(np.array([[[10, 10]]]), cap)[2].tolist()
    [[[0.5, 1.0]]]

    """
    a = np.asarray(assessed, np.float64)
    needed = a[:, :, None, :] * cap.hours_per_assessment[None, :, :, None]
    available = np.broadcast_to(cap.available[None], needed.shape).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        per_unit = np.where(needed > 0, available / needed, 1.0)
        for j in np.flatnonzero(cap.pooled):
            tot = needed[:, :, j].sum(-1)  # (D, Y)
            run = np.where(tot > 0, cap.total[None, :, j] / tot, 1.0)
            per_unit[:, :, j] = run[..., None]
            share = np.where(tot[..., None] > 0, needed[:, :, j] / tot[..., None],
                             1.0 / needed.shape[-1])
            available[:, :, j] = cap.total[None, :, j, None] * share
    return needed, available, np.minimum(per_unit, 1.0).min(axis=2)


def workforce_dataset(needed: np.ndarray, available: np.ndarray, cover: np.ndarray,
                      coords: dict, has_area: bool) -> dict:
    """Return the workforce variables (NaN in the baseline year) as DataArrays, by name."""
    dims = ("draw", "year", "profession", *(("area",) if has_area else ()))
    c = {k: coords[k] for k in dims}
    out = {}
    for name, vals in (("dur_workforce_hours_needed", needed),
                       ("dur_workforce_hours_available", available)):
        v = vals if has_area else vals[..., 0]
        v = v.copy()
        v[:, 0] = np.nan
        out[name] = xr.DataArray(v, dims=dims, coords=c, attrs={
            "units": "h year-1", "long_name": LONG_NAMES[name],
            "cell_methods": "year: sum (census to census)"})
    cv = (cover if has_area else cover[..., 0]).copy()
    cv[:, 0] = np.nan
    cdims = tuple(d for d in dims if d != "profession")
    out["rel_workforce_coverage"] = xr.DataArray(
        cv, dims=cdims, coords={k: coords[k] for k in cdims},
        attrs={"units": "1", "long_name": LONG_NAMES["rel_workforce_coverage"],
               "cell_methods": "year: mean (census to census)"})
    return out


def run_areas(ds: xr.Dataset) -> list[str]:
    """Every area of a run, from its results (the ``areas`` attribute, else the coordinate)."""
    if "areas" in ds.attrs:
        return [str(a) for a in json.loads(ds.attrs["areas"])]
    return [str(a) for a in ds["area"].values]
