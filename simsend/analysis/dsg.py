r"""The running DSG high-needs balance of each area, by draw and year, and the chance of a deficit.

A cost file's ``[dsg]`` table (parsed by :func:`simsend.config.costs.load_costs`) states where
the balance starts, what the high-needs income is and when the statutory override ends; the
spend is the in-budget categories of :func:`simsend.analysis.costs.spend`.  For area ``a``,
draw ``d`` and census year ``y`` (financial year ``y-1``-``y``) of the results:

.. math::

    I_{a,d,y} = A_{a,L_a} \, \prod_{t=L_a+1}^{y} (1 + g_{d,t}) \quad (y > L_a;\;
    A_{a,y} \text{ itself where known}), \qquad
    b_{a,d,y} = I_{a,d,y} - S_{a,d,y},

.. math::

    B_{a,d,y} = B^{0}_{a} + \sum_{t = y_0}^{y} b_{a,d,t}, \qquad
    B^{0}_{a} = B_{a,o} + \sum_{t=o+1}^{y_0-1} \beta_{a,t},

where ``A`` is the area's high-needs block allocation (before deductions, so it pays the
place funding of academies and colleges that the unit costs include), ``L`` its last known
year, ``g`` the growth (one rate per draw from a distribution, or a stated path), ``S`` the
in-budget spend, ``b`` the in-year balance, ``B`` the cumulative balance at 31 March
(negative = deficit), ``o`` the opening year and ``beta`` the *bridge*: the in-year balance of
each year between the opening year and the results' first year ``y_0``, which the results do
not simulate (``"mean"`` or ``"last"`` of the area's published in-year balances, ``"zero"``,
or stated).  ASSUMPTION: the DSG cumulative balance is taken as the high-needs balance (the
other blocks balance; DfE reports only the DSG total).

**Statutory override.**  Until the end of ``override_end`` a DSG deficit is held apart from
the council's general fund (an unusable reserve).  After it, under proper accounting
practice, the deficit must be met from the council's own general reserves, and every later
in-year deficit with it.  ``deficit_at_override_end`` is the cumulative deficit at 31 March
of that year, by draw, and ``p_deficit_at_override_end`` its chance of exceeding each
threshold; ``after_override`` marks the years whose deficits fall on the general fund.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from simsend.analysis.costs import cost_uniforms, spend
from simsend.config.costs import CostConfig, Dsg, load_costs
from simsend.config.toml import ConfigError
from simsend.data.baseline import DataSpec, area_table
from simsend.data.finance import read_finance
from simsend.data.geography import unknown_area_findings

LOG = logging.getLogger("simsend")
GROWTH_ITEM = "__dsg_income_growth__"
"""Item name keying the growth draw (``cost_uniforms(seed, draws, [GROWTH_ITEM])``): one
uniform per draw, common to every area and scenario."""

AFTER_OVERRIDE = ("after the statutory override ends the DSG deficit must be met from the "
                  "council's general reserves (and each later in-year deficit with it)")


def _fy(y: int) -> str:
    return f"{y - 1}-{y % 100:02d}"


def _series(df, value: str) -> dict[str, dict[int, float]]:
    """``{area: {census year: value}}`` of a finance table."""
    out: dict[str, dict[int, float]] = {}
    for r in df.itertuples():
        v = getattr(r, value)
        if v == v:  # not NaN
            out.setdefault(r.area, {})[int(r.financial_year[:4]) + 1] = float(v)
    return out


class _NoFigures(ConfigError):
    """An area lacks a published balance or allocation (its figures NaN in a run of many)."""


def _opening(cfg: Dsg, areas: Sequence[str], first: int, where: str,
             missing: dict[str, str] | None = None) -> tuple[np.ndarray, dict]:
    """Return each area's balance at the start of year ``first``, and how it was made.

    With ``missing`` (a dict), an area without figures gets NaN and its reason there.
    """
    bal = _series(read_finance("dsg_balances.csv", cfg.balances), "cumulative_balance_gbp")
    src = cfg.balances or "the shipped dsg_balances.csv"
    out, how = np.full(len(areas), np.nan), {}
    for k, a in enumerate(areas):
        try:
            out[k], how[a] = _opening_one(cfg, a, bal.get(a, {}), first, (where, src))
        except _NoFigures as exc:
            if missing is None:
                raise
            missing[a] = str(exc)
    return out, how


def _opening_one(cfg: Dsg, a: str, bal: Mapping[int, float], first: int,
                 where_src: tuple[str, str]) -> tuple[float, dict]:
    """Return one area's opening balance and how it was made."""
    where, src = where_src
    given = (cfg.opening if isinstance(cfg.opening, float)
             else cfg.opening.get(a) if isinstance(cfg.opening, Mapping) else None)
    if given is not None:
        oy = first - 1 if cfg.opening_year is None else cfg.opening_year
        b0, what = given, "stated in [dsg] opening"
    else:
        have = sorted(y for y in bal if y < first)
        oy = cfg.opening_year if cfg.opening_year is not None else (have[-1] if have else None)
        if oy is None or oy not in bal:
            at = "" if oy is None else f" at the end of {_fy(oy)}"
            raise _NoFigures(
                f"{where}: [dsg.opening] no DSG cumulative balance for {a}{at} in {src} "
                f"(it has {sorted(_fy(y) for y in bal) or 'none'}); give "
                f"the balance in pounds, e.g. opening = {{ {a} = -1.5e7 }} with "
                f"opening_year = \"{_fy(first - 1)}\" (the Isles of Scilly and the City of "
                "London publish none of their own)")
        b0, what = bal[oy], f"{src}, 31 March {oy}"
    if oy >= first:
        raise ConfigError(f"{where}: [dsg.opening_year] {_fy(oy)} is not before the "
                          f"results' first financial year {_fy(first)}")
    bridge = _bridge(cfg, a, bal, range(oy + 1, first), where)
    value = b0 + sum(bridge.values())
    return value, {"balance": b0, "at_end_of": _fy(oy), "source": what,
                   "bridge": {_fy(y): v for y, v in bridge.items()}, "opening": value}


def _bridge(cfg: Dsg, area: str, bal: Mapping[int, float], years: range,
            where: str) -> dict[int, float]:
    """In-year balance of each year between the opening year and the first simulated one."""
    if not years:
        return {}
    if isinstance(cfg.bridge, Mapping):
        vals = cfg.bridge.get(area, {})
        missing = [_fy(y) for y in years if y not in vals]
        if missing:
            raise ConfigError(f"{where}: [dsg.bridge.{area}] no in-year balance for {missing} "
                              "(the years between the opening balance and the results)")
        return {y: vals[y] for y in years}
    if cfg.bridge == "zero":
        return dict.fromkeys(years, 0.0)
    ys = sorted(bal)
    steps = [bal[t] - bal[s] for s, t in zip(ys, ys[1:], strict=False) if t == s + 1
             and t < years.start]
    if not steps:
        raise ConfigError(f"{where}: [dsg.bridge] {cfg.bridge!r} needs two consecutive "
                          f"published balances of {area} before {_fy(years.start)}; give the "
                          f"in-year balances of {[_fy(y) for y in years]} instead, or 'zero'")
    v = float(np.mean(steps)) if cfg.bridge == "mean" else steps[-1]
    return dict.fromkeys(years, v)


def _income(cfg: Dsg, areas: Sequence[str], years: Sequence[int], u: np.ndarray,
            where: str, missing: dict[str, str] | None = None) -> tuple[np.ndarray, dict]:
    """High-needs income ``(draw, year, area)`` and, by area, the last known year."""
    alloc = _series(read_finance("hn_allocations.csv", cfg.allocations), "high_needs_gbp")
    out = np.full((len(u), len(years), len(areas)), np.nan)
    last = {}
    for k, a in enumerate(areas):
        vals = {**alloc.get(a, {}), **cfg.income.get(a, {})}
        if not vals:
            exc = _NoFigures(f"{where}: [dsg.income] no high-needs allocation for {a} in "
                              f"{cfg.allocations or 'the shipped hn_allocations.csv'}; give it, "
                              f"e.g. income = {{ {a} = {{ \"{_fy(years[0])}\" = 2.5e8 }} }}")
            if missing is None:
                raise exc
            missing.setdefault(a, str(exc))
            continue
        lk = max(y for y in vals if y <= max(years)) if min(vals) <= max(years) else None
        if lk is None:
            raise ConfigError(f"{where}: [dsg.income.{a}] every allocation is after the "
                              f"results' last year {_fy(max(years))}")
        gaps = [_fy(y) for y in years if y < lk and y not in vals]
        if gaps:
            raise ConfigError(f"{where}: [dsg.income.{a}] no allocation for {gaps}, which lie "
                              f"between known ones: give them")
        f = cfg.growth.factors(years, lk, u, where)
        for j, y in enumerate(years):
            out[:, j, k] = vals[y] if y in vals else vals[lk] * f[:, j]
        last[a] = _fy(lk)
    return out, last


def _check_areas(cfg: Dsg, areas: Sequence[str], where: str) -> None:
    """Stop at an area of ``[dsg] opening``, ``income`` or ``bridge`` that nobody knows.

    Figures of the results' areas are used and those of the data's other areas skipped (a
    cost file for every council, used on one), so a mistyped code would leave the council's
    stated figure unused without a word.
    """
    table = area_table(DataSpec())
    for key in ("opening", "income", "bridge"):
        given = getattr(cfg, key)
        if not isinstance(given, Mapping):
            continue
        found = unknown_area_findings([(None, a) for a in given], where, key, areas, table)
        if found:
            raise ConfigError(f"{where}: [dsg.{key}.{found[0].value}] {found[0].message}")


def _attrs(da: xr.DataArray, attrs: Mapping[str, str], long_name: str) -> xr.DataArray:
    """Return ``da`` with exactly these attrs (none carried over from the spend)."""
    da = da.copy()
    da.attrs = {**attrs, "long_name": long_name}
    return da


def dsg_balance(spend_ds: xr.Dataset, costs: CostConfig | str | Path,
                thresholds: Sequence[float] | None = None) -> xr.Dataset:
    r"""Run each area's DSG high-needs balance forward over the draws of a spend forecast.

    Parameters
    ----------
    spend_ds : xarray.Dataset
        Output of :func:`simsend.analysis.costs.spend` (its ``costs_seed`` keys the growth
        draw); the in-budget categories are the spend.
    costs : CostConfig or path
        The cost file, with a ``[dsg]`` table.
    thresholds : sequence of float, optional
        Cumulative deficits in pounds for the probabilities (default ``[dsg] thresholds``).

    Returns
    -------
    xarray.Dataset
        Over ``(scenario, draw, year, area)`` as the spend has them: ``spend_in_budget``,
        ``income``, ``in_year_balance``, ``cumulative_balance`` (31 March; negative =
        deficit); ``opening_balance`` over ``area``; ``p_cum_deficit`` over ``(scenario,
        threshold, year, area)``; with ``override_end`` inside the years,
        ``deficit_at_override_end`` and ``p_deficit_at_override_end``.  Coordinates
        ``financial_year`` and ``after_override`` on ``year``.  Attrs: the spend's, plus how
        each opening balance was made (``dsg_opening``, JSON), the growth, bridge and
        override end.

    Raises
    ------
    ConfigError
        No ``[dsg]`` table, or a balance or allocation the files lack for the area (with
        several areas, such an area's balance is NaN and listed in ``attrs["dsg_missing"]``).
    DataError
        A user-supplied balance or allocation file with a bad cell (file, row, column).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from simsend.config.costs import parse_costs
    >>> c = parse_costs('[prices]\nbase = "2021-22"\n[costs.x]\ncount = "n_pupils"\nunit = 1\n'
    ...                 '[dsg]\nopening = -10.0\nincome = { E06000017 = '
    ...                 '{ "2022-23" = 5.0, "2023-24" = 5.0 } }')
    >>> sp = xr.Dataset({"spend": (("draw", "year", "category", "area"),
    ...                            np.full((1, 2, 1, 1), 8.0))},
    ...                 coords={"draw": [0], "year": [2023, 2024], "category": ["x"],
    ...                         "area": ["E06000017"], "in_budget": ("category", [True])},
    ...                 attrs={"costs_seed": 1})
    >>> dsg_balance(sp, c)["cumulative_balance"].values.ravel().tolist()
    [-13.0, -16.0]

    """
    if not isinstance(costs, CostConfig):
        costs = load_costs(costs)
    where = costs.source_path
    cfg = costs.dsg
    if cfg is None:
        raise ConfigError(f"{where}: no [dsg] table: the running DSG balance needs one (opening "
                          "balance, income and growth; docs/costs.md)")
    sp = spend_ds["spend"]
    if "in_budget" in sp.coords:
        sp = sp.isel(category=np.flatnonzero(sp["in_budget"].values))
    s = sp.sum("category", skipna=False)
    if "area" not in s.dims:
        try:
            areas = [str(a) for a in json.loads(spend_ds.attrs["areas"])]
        except (KeyError, TypeError, ValueError):
            areas = ["E92000001"]
        if len(areas) != 1:
            raise ConfigError(f"{where}: [dsg] the results add up {len(areas)} areas with no "
                              "'area' dim; a DSG balance is per council: run with 'area' in "
                              "[outputs] by")
        s = s.expand_dims(area=areas, axis=-1)
    areas = [str(a) for a in s["area"].values]
    _check_areas(cfg, areas, where)
    years = [int(y) for y in s["year"].values]
    draws = [int(d) for d in s["draw"].values]
    seed = int(spend_ds.attrs.get("costs_seed", spend_ds.attrs.get("root_seed", 0)))
    u = cost_uniforms(seed, draws, [GROWTH_ITEM])[:, 0, 0]
    # one area: a missing figure is an error; several: that area's balance is NaN, noted
    missing: dict[str, str] | None = None if len(areas) == 1 else {}
    opening, how = _opening(cfg, areas, years[0], where, missing)
    inc, last = _income(cfg, areas, years, u, where, missing)
    if missing and len(missing) == len(areas):
        raise ConfigError(next(iter(missing.values())))
    for a, why in (missing or {}).items():
        LOG.warning("%s: no DSG balance (NaN): %s", a, why)
    money = {"units": "GBP", "price_basis": spend_ds.attrs.get("price_basis", "")}
    income = xr.DataArray(inc, dims=("draw", "year", "area"),
                          coords={"draw": s["draw"].values, "year": s["year"].values,
                                  "area": areas},
                          attrs={**money, "long_name": "high-needs income: the high needs block "
                                 "allocation before deductions, grown after its last known year",
                                 "cell_methods": "year: sum"})
    s = s.transpose(*[d for d in ("scenario", "draw", "year", "area") if d in s.dims])
    inyear = (income - s).transpose(*s.dims)
    op = xr.DataArray(opening, dims="area", coords={"area": areas},
                      attrs={**money, "long_name": f"DSG cumulative balance at 31 March "
                             f"{years[0] - 1} (opening balance plus bridge years; negative = "
                             "deficit)"})
    cum = (op + inyear.cumsum("year", skipna=False)).transpose(*s.dims)
    thr = sorted(set(float(t) for t in (cfg.thresholds if thresholds is None else thresholds)))
    tda = xr.DataArray(thr, dims="threshold", attrs={"units": "GBP", "long_name":
                       "size of cumulative deficit"})
    p = ((-cum) > tda).astype(np.float64).where(cum.notnull()).mean("draw", skipna=False)
    p = p.transpose(*[d for d in ("scenario", "threshold", "year", "area") if d in p.dims])
    flow = {**money, "cell_methods": "year: sum (financial year ending in the March after the "
                                     "January census)"}
    stock = {**money, "cell_methods": "year: point (31 March ending the financial year)"}
    out = {
        "spend_in_budget": _attrs(s, flow, "in-budget spend (the high needs categories of the "
                                           "cost file)"),
        "income": income,
        "in_year_balance": _attrs(inyear, flow, "in-year DSG high-needs balance: income - spend "
                                                "(negative = overspend)"),
        "cumulative_balance": _attrs(cum, stock, "DSG cumulative balance at 31 March (negative "
                                                 "= deficit)"),
        "opening_balance": op,
        "p_cum_deficit": _attrs(p, {"units": "1", "cell_methods": "draw: mean"},
                                "probability that the cumulative deficit exceeds the threshold"),
    }
    end = cfg.override_end
    if end is not None and years[0] <= end <= years[-1]:
        d = np.maximum(0.0, -cum.sel(year=end, drop=True))
        out["deficit_at_override_end"] = _attrs(d, money, f"cumulative DSG deficit at 31 March "
                                                f"{end}, when the statutory override ends: "
                                                f"{AFTER_OVERRIDE}")
        pe = (d > tda).astype(np.float64).where(d.notnull()).mean("draw", skipna=False)
        pe = pe.transpose(*[x for x in ("scenario", "threshold", "area") if x in pe.dims])
        out["p_deficit_at_override_end"] = _attrs(
            pe, {"units": "1", "cell_methods": "draw: mean"},
            "probability that the deficit at the override's end exceeds the threshold")
    res = xr.Dataset(out).assign_coords(
        threshold=tda, financial_year=("year", [_fy(y) for y in years]),
        after_override=("year", [end is not None and y > end for y in years]))
    res["after_override"].attrs = {"long_name": f"year after the statutory override's end: "
                                                f"{AFTER_OVERRIDE}"}
    res.attrs = {**{k: v for k, v in spend_ds.attrs.items()},
                 "title": "simsend DSG high-needs balance forecast",
                 "dsg_opening": json.dumps(how),
                 "dsg_income_last_known_year": json.dumps(last),
                 "dsg_growth": cfg.growth.describe(),
                 "dsg_bridge": (cfg.bridge if isinstance(cfg.bridge, str)
                                else "stated in [dsg] bridge"),
                 "dsg_override_end": "" if end is None else _fy(end),
                 "dsg_override_note": ("" if end is None else f"override ends 31 March {end}; "
                                       + AFTER_OVERRIDE),
                 "dsg_sign": "balances in GBP, negative = deficit"}
    if missing:
        res.attrs["dsg_missing"] = json.dumps(missing)
    if end is not None and not years[0] <= end <= years[-1]:
        res.attrs["dsg_override_note"] += (f" (outside the results' years {_fy(years[0])} to "
                                           f"{_fy(years[-1])}: no deficit at its end computed)")
    return res


def dsg_forecast(ds: xr.Dataset, costs: CostConfig | str | Path, seed: int | None = None,
                 thresholds: Sequence[float] | None = None) -> xr.Dataset:
    """Price a run's results (:func:`~simsend.analysis.costs.spend`) and run the DSG balance.

    The Python twin of ``simsend dsg RESULTS COSTS_TOML``; see :func:`dsg_balance`.
    """
    if not isinstance(costs, CostConfig):
        costs = load_costs(costs)
    return dsg_balance(spend(ds, costs, seed=seed), costs, thresholds)


def dsg_table(ds: xr.Dataset, quantiles: Sequence[float] = (0.05, 0.5, 0.95)) -> Any:
    """Tabulate spend, income and the cumulative balance by area and year, in GBP million.

    Median and band (``quantiles``) of in-budget spend and of the cumulative balance, the
    median income, and ``P(deficit > X)`` for each threshold.  Returns a pandas DataFrame.
    """
    import pandas as pd

    qs = list(quantiles)
    spq = ds["spend_in_budget"].quantile(qs, dim="draw", skipna=False) / 1e6
    cq = ds["cumulative_balance"].quantile(qs, dim="draw", skipna=False) / 1e6
    inc = ds["income"].median("draw") / 1e6
    scen = [str(x) for x in ds["scenario"].values] if "scenario" in ds.dims else [None]
    rows = []
    for sc in scen:
        for a in [str(x) for x in ds["area"].values]:
            for y, fy in zip(ds["year"].values, ds["financial_year"].values, strict=True):
                sel = {"year": y, "area": a, **({} if sc is None else {"scenario": sc})}
                r = {} if sc is None else {"scenario": sc}
                r.update({"area": a, "financial_year": str(fy)})
                for q in qs:
                    r[f"spend p{round(q * 100):02d} £m"] = float(spq.sel(quantile=q, **sel))
                r["income p50 £m"] = float(inc.sel(year=y, area=a))
                for q in qs:
                    r[f"balance p{round(q * 100):02d} £m"] = float(cq.sel(quantile=q, **sel))
                for t in ds["threshold"].values:
                    r[f"P(deficit > {t / 1e6:,.0f}m)"] = float(ds["p_cum_deficit"].sel(
                        threshold=t, **sel))
                rows.append(r)
    return pd.DataFrame(rows)
