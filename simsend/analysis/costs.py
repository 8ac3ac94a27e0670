r"""Costs with uncertainty: a run's simulated counts turned into spend in pounds.

A cost file (TOML, parsed at the edge into frozen objects by :func:`load_costs`) names cost
*items*.  Each item counts one result variable (``n_pupils`` for pupils at the January census,
``n_assessed`` for assessments, ``n_appeals`` for tribunal appeals, ...), optionally restricted
to some tiers and placements, and prices it with a unit cost that is a probability
distribution, an optional share (e.g. the share of pupils eligible for home-to-school
transport, also a distribution) and an inflation path.  Items are added up into output
*categories*.  For Monte Carlo draw ``d``, census year ``y`` and category ``c``:

.. math::

    \mathrm{spend}_{d,y,c} = \sum_{i \in c} N_{i,d,y} \; s_{i,d} \; u_{i,d} \; I_{i,y},
    \qquad I_{i,y} = \prod_{t = b + 1}^{y} (1 + r_{i,t}) \quad (y > b),

where ``N`` is the item's count summed over the cells it selects, ``s`` and ``u`` are the
share and unit cost drawn for draw ``d`` (at the prices of the price base), ``r`` the item's
annual inflation rates and ``b`` the census year of the price base (``"2021-22"`` -> 2022: the
financial year April 2021 - March 2022 holds the January 2022 census; census year ``y`` is
priced as financial year ``y-1``-``y``).  For years before ``b`` the index divides instead.
``[prices] basis = "nominal"`` reads the inflation path as cash growth and the output as
nominal pounds; ``"constant"`` reads it as growth above general inflation (``0`` keeps unit
costs flat) and the output as pounds at constant prices of the base.

**Cost draws.** One cost draw per Monte Carlo draw: the unit cost and share of item ``i`` in
draw ``d`` are the inverse CDF of one uniform each, taken from
``numpy.random.SeedSequence(seed, spawn_key=(COSTS_SPAWN, d, key(i)))`` where ``key(i)`` is
the first 8 bytes of the SHA-256 of the item's name and ``d`` is the draw's coordinate value
(not its position).  They therefore depend only on (seed, draw, item name): not on the order
or chunking of draws, on the other items, or on the scenario, so every scenario of a run
prices draw ``d`` with the same costs and scenario differences in spend are paired.  Because
each draw is a quantile of its uniform, changing a distribution's parameters moves every
draw along its own quantile.  ``seed`` defaults to the run's root seed.  Draws of different
items are independent (no correlation between unit costs is modelled).

The budget line (``[budget]``, the high needs block allocation) and
:func:`deficit_probability` give ``P(spend - budget > threshold)`` per year (and scenario)
from the draws, over the categories marked ``in_budget``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy.special import ndtr, ndtri

from simsend._version import __version__
from simsend.config.costs import CostConfig, CostItem, Dist, load_costs
from simsend.config.toml import ConfigError
from simsend.data.finance import UNIT_KEYS, unit_cost_price_base, unit_cost_table
from simsend.engine.tally import ALLOC_VARS

LOG = logging.getLogger("simsend")
ENGLAND = "E92000001"
"""England's area code: a budget that names no areas is taken as England's."""

COSTS_SPAWN = 0x636F737473
"""First spawn-key word of every cost draw (ASCII ``costs``), apart from the engine's keys."""

PIPELINE_VARIABLES = ("n_requests", "n_refused", "n_assessed", "n_not_issued", "n_issued",
                      "n_within_20_weeks", "n_appeals", "n_appeals_upheld")
"""Statutory-pipeline counts: an item counting one is skipped when the results lack it."""


# --------------------------------------------------------------------------- cost draws


def _item_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def cost_uniforms(seed: int, draws: Sequence[int], names: Sequence[str]) -> np.ndarray:
    """Return the uniforms behind the cost draws, shape ``(len(draws), len(names), 2)``.

    ``[..., 0]`` drives the unit cost and ``[..., 1]`` the share of item ``names[j]`` in draw
    ``draws[i]``: 53-bit uniforms in (0, 1) from
    ``SeedSequence(seed, spawn_key=(COSTS_SPAWN, draw, sha256(name)[:8]))``.

    Examples
    --------
    >>> a = cost_uniforms(7, [0, 1, 2], ["x"])
    >>> bool((cost_uniforms(7, [2], ["x"])[0] == a[2]).all())
    True

    """
    out = np.empty((len(draws), len(names), 2))
    keys = [_item_key(n) for n in names]
    for i, d in enumerate(draws):
        for j, k in enumerate(keys):
            w = np.random.SeedSequence(int(seed), spawn_key=(COSTS_SPAWN, int(d), k)
                                       ).generate_state(2, np.uint64)
            out[i, j] = ((w >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53
    return out


COMMON_KEY = _item_key("__common__")
"""Item key of the common factor that correlates the unit costs of a draw
(``[prices] correlation``)."""


def correlate(u: np.ndarray, common: np.ndarray, rho: float) -> np.ndarray:
    r"""Return uniforms correlated through a common factor (a Gaussian copula).

    ``u`` has shape ``(draws, items)`` and ``common`` one uniform per draw; the result is
    :math:`\Phi(\sqrt{\rho}\,z_0 + \sqrt{1-\rho}\,\Phi^{-1}(u))`, so the normal scores of
    any two items have correlation ``rho``.  ``rho = 0`` returns ``u`` itself.

    Examples
    --------
    >>> u = np.array([[0.2, 0.9]])
    >>> bool((correlate(u, np.array([0.5]), 0.0) == u).all())
    True
    >>> correlate(u, np.array([0.7]), 1.0).round(6).tolist()
    [[0.7, 0.7]]

    """
    if rho == 0.0:
        return u
    z = math.sqrt(rho) * ndtri(common)[:, None] + math.sqrt(1.0 - rho) * ndtri(u)
    return np.clip(ndtr(z), 2.0 ** -53, 1.0 - 2.0 ** -53)


def _uniforms(costs: CostConfig, seed: int, draws: Sequence[int]) -> np.ndarray:
    """Uniforms of every item's unit cost (``[..., 0]``) and share, correlation applied."""
    u = cost_uniforms(seed, draws, [it.name for it in costs.items])
    if costs.correlation > 0.0:
        common = cost_uniforms(seed, draws, ["__common__"])[:, 0, 0]
        u[:, :, 0] = correlate(u[:, :, 0], common, costs.correlation)
    return u


def cost_draws(costs: CostConfig, seed: int, draws: Sequence[int]) -> xr.Dataset:
    """Draw every item's unit cost and share for each Monte Carlo draw.

    With ``[prices] correlation = rho`` the unit costs of different items in a draw share a
    common factor (:func:`correlate`); shares stay independent.

    Returns
    -------
    xarray.Dataset
        ``unit_cost`` and ``share`` over ``(draw, item)``; unit costs at the prices of the
        price base, shares 1 for items without one.

    """
    names = [it.name for it in costs.items]
    u = _uniforms(costs, seed, draws)
    unit = np.stack([it.unit.ppf(u[:, j, 0]) for j, it in enumerate(costs.items)], axis=1)
    share = np.stack([np.ones(len(draws)) if it.share is None else it.share.ppf(u[:, j, 1])
                      for j, it in enumerate(costs.items)], axis=1)
    coords = {"draw": np.asarray(draws), "item": names,
              "item_category": ("item", [it.category for it in costs.items])}
    return xr.Dataset({
        "unit_cost": (("draw", "item"), unit, {
            "units": "GBP", "long_name": f"unit cost drawn ({costs.price_base} prices)"}),
        "share": (("draw", "item"), share, {
            "units": "1", "long_name": "share of the count that is costed (e.g. eligible)"}),
    }, coords=coords)


def council_unit_costs(costs: CostConfig, seed: int, draws: Sequence[int],
                       areas: Sequence[str]) -> xr.Dataset:
    """Draw each area's unit costs: the council's own where it has one, else the item's unit.

    An item with ``council_unit = KEY`` is priced, for an area with a row for ``KEY`` in the
    ``[council]`` unit-cost table, by the lognormal of that row (median, and low/high its
    5% and 95% quantiles); England and areas without a row use the item's own ``unit``.
    Every area takes the same uniform of the draw (:func:`cost_uniforms`), so an area's unit
    cost is the same quantile of its own distribution as England's in that draw: areas are
    comonotone, and per-area pricing keeps the (seed, draw, item) keying and its pairing.

    Parameters
    ----------
    costs : CostConfig
        A cost file with a ``[council]`` table.
    seed : int
        Seed of the cost draws.
    draws : sequence of int
        Draw coordinate values.
    areas : sequence of str
        Area codes.

    Returns
    -------
    xarray.Dataset
        ``unit_cost_area`` over ``(draw, item, area)`` and ``unit_source`` over
        ``(item, area)`` (``"council"`` or ``"england"``).

    Raises
    ------
    ConfigError
        An unknown ``council_unit`` key, or a table at another price base than the file's.
    DataError
        A unit-cost file that is missing or malformed (file, row and column named).

    """
    where = costs.source_path
    path = None if costs.council.unit_costs == "builtin" else costs.council.unit_costs
    for it in costs.items:
        if it.council_unit is not None and it.council_unit not in UNIT_KEYS:
            raise ConfigError(f"{where}: [costs.{it.name}.council_unit] unknown key "
                              f"{it.council_unit!r}; expected one of {list(UNIT_KEYS)}")
    table = unit_cost_table(path)
    base = unit_cost_price_base(path)
    if base != costs.price_base:
        raise ConfigError(f"{where}: [council.unit_costs] the unit costs of "
                          f"{path or 'the shipped table'} are at {base} prices, the cost file's "
                          f"[prices] base is {costs.price_base}: use one price base")
    u = _uniforms(costs, seed, draws)[:, :, 0]
    out = np.empty((len(draws), len(costs.items), len(areas)))
    source = np.empty((len(costs.items), len(areas)), dtype=object)
    for j, it in enumerate(costs.items):
        for k, a in enumerate(areas):
            row = None if it.council_unit is None else table.get((str(a), it.council_unit))
            dist = it.unit if row is None else Dist("lognormal", tuple(float(x) for x in row))
            out[:, j, k] = dist.ppf(u[:, j])
            source[j, k] = "england" if row is None else "council"
    coords = {"draw": np.asarray(draws), "item": [it.name for it in costs.items],
              "area": list(areas)}
    return xr.Dataset({
        "unit_cost_area": (("draw", "item", "area"), out, {
            "units": "GBP", "long_name": f"unit cost drawn for each area ({costs.price_base} "
                                         "prices)"}),
        "unit_source": (("item", "area"), source.astype(str), {
            "long_name": "whose unit cost priced the item in the area: the council's own "
                         "(council) or the item's unit (england)"}),
    }, coords=coords)


# --------------------------------------------------------------------------- spend


def _root_seed(ds: xr.Dataset) -> int:
    try:
        return int(ds.attrs["root_seed"])
    except (KeyError, ValueError, TypeError):
        raise ConfigError("results carry no root_seed attribute: pass seed=") from None


def _counts(ds: xr.Dataset, it: CostItem, keep: list[str], where: str) -> xr.DataArray:
    """Return the item's count, restricted to its tiers/placements, summed to ``keep`` (+ tier)."""
    key = f"costs.{it.name}"
    da = ds[it.count]
    missing = [d for d in keep if d not in da.dims]
    if missing:
        raise ConfigError(f"{where}: [{key}.count] variable {it.count!r} of the results has no "
                          f"{missing} dim; expected dims including {keep}")
    for dim, vals in (("tier", it.tier), ("placement", it.placement)):
        if vals is None:
            continue
        if dim not in da.dims:
            raise ConfigError(f"{where}: [{key}.{dim}] variable {it.count!r} of the results has "
                              f"no {dim!r} dim to select {list(vals)} from")
        have = [str(v) for v in da[dim].values]
        absent = [v for v in vals if v not in have]
        if absent:
            raise ConfigError(f"{where}: [{key}.{dim}] {absent} not in the results' {dim} "
                              f"values {have}")
        da = da.sel({dim: list(vals)})
    out_dims = keep + (["tier"] if "tier" in da.dims else [])
    # A cell the run did not simulate (flows in the baseline year) is NaN; a total over
    # cells that are all NaN stays NaN rather than becoming 0.
    da = da.astype(np.float64).sum([d for d in da.dims if d not in out_dims], min_count=1)
    return da.transpose(*out_dims)


def spend(ds: xr.Dataset, costs: CostConfig | str | Path, seed: int | None = None,
          budget: Any = None, threshold: float = 0.0) -> xr.Dataset:
    r"""Spend in pounds by draw, year and category from a run's results and a cost file.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of :func:`simsend.run` (dims ``draw``, ``year``, and ``scenario``, ``tier``,
        ``placement``, ``area``... as the run asked for).
    costs : CostConfig or path
        The cost file (:func:`load_costs`).
    seed : int, optional
        Seed of the cost draws (default: the run's root seed, ``ds.attrs["root_seed"]``).
    budget : optional
        Budget line overriding the cost file's ``[budget]`` (see :func:`deficit_probability`).
    threshold : float
        Deficit size in pounds for ``p_deficit`` (default 0: any overspend).

    Returns
    -------
    xarray.Dataset
        ``spend`` over ``(scenario, draw, year, category, area)`` (dims the results have),
        ``spend_total`` summed over categories, ``spend_by_tier`` with a ``tier`` dim (NaN
        for categories whose count has no tier), the drawn ``unit_cost`` and ``share`` per
        ``(draw, item)``, the ``price_index`` per ``(year, item)``, and with a budget
        ``budget`` and ``p_deficit``.  Attrs: the results' manifest plus the cost file's
        text and SHA-256, the seed, price base and basis.  Items that do not apply (a
        placement item without a placement dim, an absent pipeline variable) are listed in
        ``attrs["costs_skipped"]``.  With ``[council]``: ``unit_cost_area`` over ``(draw,
        item, area)`` and ``unit_source`` (:func:`council_unit_costs`); with ``[scenarios]``
        unit multipliers: ``scenario_unit_factor``; ``price_index`` gains a ``scenario`` dim
        when a scenario has its own inflation.

    Raises
    ------
    ConfigError
        When the cost file asks for a variable, dim or value the results lack.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"n_pupils": (("draw", "year", "tier"), np.ones((2, 1, 4)))},
    ...                 coords={"draw": [0, 1], "year": [2022], "tier": list(TIERS)})
    >>> c = parse_costs('[prices]\nbase = "2021-22"\n[costs.sp]\ncount = "n_pupils"\n'
    ...                 'tier = "specialist"\nunit = 20000')
    >>> spend(ds, c, seed=1)["spend_total"].values.ravel().tolist()
    [20000.0, 20000.0]

    """
    if not isinstance(costs, CostConfig):
        costs = load_costs(costs)
    where = costs.source_path
    seed = _root_seed(ds) if seed is None else int(seed)
    years = [int(y) for y in ds["year"].values]
    # whether the run tallied placements: the census stock's dims, not the Dataset's (a
    # provision plan's `places` brings a placement dim to runs tallied without it)
    has_pl = "placement" in (ds["n_pupils"].dims if "n_pupils" in ds else ds.dims)
    keep = [d for d in ("scenario", "draw", "year") if d in ds.dims]
    keep += ["area"] if "area" in ds.dims else []
    active, skipped = [], {}
    for it in costs.items:
        if it.use == "with_placement" and not has_pl:
            skipped[it.name] = "results have no placement dim"
        elif it.use == "without_placement" and has_pl:
            skipped[it.name] = "results have a placement dim (the by-placement items apply)"
        elif it.count not in ds:
            if it.count in ALLOC_VARS:
                skipped[it.name] = f"results have no {it.count} (no provision plan)"
                continue
            if it.count not in PIPELINE_VARIABLES:
                raise ConfigError(f"{where}: [costs.{it.name}.count] no variable {it.count!r} "
                                  f"in the results (they have {sorted(ds.data_vars)})")
            skipped[it.name] = f"results have no {it.count} (statutory pipeline off)"
        else:
            active.append(it)
    if not active:
        raise ConfigError(f"{where}: no cost item applies to these results ({skipped})")
    sub = dataclasses.replace(costs, items=tuple(active))
    draw_ids = [int(d) for d in ds["draw"].values]
    draws = cost_draws(sub, seed, draw_ids)
    price_index = _price_index(sub, ds, years)
    by_area = _area_units(sub, ds, seed, draw_ids)
    unit = draws["unit_cost"] if by_area is None else by_area["unit_cost_area"]
    if by_area is not None and "area" not in ds.dims:  # one council, tallied without area
        unit = unit.isel(area=0, drop=True)
    factor, unused = _scenario_factors(sub, ds)
    tiers = [str(t) for t in ds["tier"].values] if "tier" in ds.dims else None
    by_cat: dict[str, xr.DataArray] = {}
    by_cat_tier: dict[str, xr.DataArray] = {}
    for it in active:
        n = _counts(ds, it, keep, where)
        coef = (draws["share"] * unit).sel(item=it.name, drop=True)
        val = (n * coef * factor.sel(item=it.name, drop=True)
               * price_index.sel(item=it.name, drop=True))
        if "tier" in val.dims:
            flat = val.sum("tier", min_count=1)
            wide = val.reindex(tier=tiers, fill_value=0.0)
        else:
            flat = val
            wide = None if tiers is None else val.expand_dims(tier=tiers) * np.nan
        flat = flat.transpose(*keep)
        by_cat[it.category] = flat if it.category not in by_cat else by_cat[it.category] + flat
        if wide is not None:
            wide = wide.transpose(*keep, "tier")
            by_cat_tier[it.category] = (wide if it.category not in by_cat_tier
                                        else by_cat_tier[it.category] + wide)
    cats = list(by_cat)
    order = [d for d in keep if d != "area"] + ["category"] + (["area"] if "area" in keep else [])
    cat_coords = {
        "category": cats,
        "in_budget": ("category", np.array([all(it.in_budget for it in active
                                                if it.category == c) for c in cats])),
        "category_items": ("category", [" + ".join(it.name for it in active
                                                   if it.category == c) for c in cats]),
    }
    money = {"units": "GBP", "price_base": costs.price_base, "price_basis": costs.basis_label,
             "cell_methods": "year: sum (financial year ending in the March after the January "
                             "census)"}
    sp = xr.concat([by_cat[c] for c in cats], dim="category", coords="minimal",
                   compat="override").assign_coords(cat_coords).transpose(*order)
    sp.attrs = {**money, "long_name": "spend by category"}
    out = {"spend": sp}
    tot = sp.sum("category", skipna=False)
    tot.attrs = {**money, "long_name": "spend, all categories (NaN where a category is: "
                                       "flows are not simulated in the baseline year)"}
    out["spend_total"] = tot
    if tiers is not None:
        st = xr.concat([by_cat_tier[c] for c in cats], dim="category", coords="minimal",
                       compat="override").assign_coords(cat_coords)
        st = st.transpose(*[d for d in order if d != "area"], "tier",
                          *(["area"] if "area" in keep else []))
        st.attrs = {**money, "long_name": "spend by category and tier (NaN: the count has "
                                          "no tier)"}
        out["spend_by_tier"] = st
    out["unit_cost"] = draws["unit_cost"]
    out["share"] = draws["share"]
    if by_area is not None:
        out["unit_cost_area"] = by_area["unit_cost_area"]
        out["unit_source"] = by_area["unit_source"]
    if any(f != 1.0 for f in np.unique(factor.values)):
        out["scenario_unit_factor"] = factor.assign_attrs(
            units="1", long_name="multiplier of the unit cost in the scenario ([scenarios])")
    price_index.attrs = {"units": "1", "long_name": f"price index against {costs.price_base} "
                                                    f"({costs.basis})"}
    out["price_index"] = price_index
    if "param_draw" in ds:
        out["param_draw"] = ds["param_draw"]
    res = xr.Dataset(out)
    res = res.assign_coords(
        item_category=("item", [it.category for it in active]),
        item_unit=("item", [it.unit.describe() for it in active]),
        item_share=("item", ["1" if it.share is None else it.share.describe() for it in active]),
        financial_year=("year", [f"{y - 1}-{y % 100:02d}" for y in years]))
    res.attrs = {
        **ds.attrs,
        "title": "simsend spend forecast",
        "costs_path": str(where),
        "costs_toml": costs.text,
        "costs_sha256": costs.sha256,
        "costs_seed": seed,
        "costs_simsend_version": __version__,
        "price_base": costs.price_base,
        "price_basis": costs.basis_label,
        "currency": "GBP",
        "costs_skipped": json.dumps(skipped),
        "costs_method": "one cost draw per Monte Carlo draw: inverse CDF of uniforms from "
                        "SeedSequence(seed, spawn_key=(COSTS_SPAWN, draw, sha256(item)[:8])); "
                        "common to every scenario",
        "costs_correlation": float(costs.correlation),
    }
    if by_area is not None:
        res.attrs["council_unit_costs"] = costs.council.unit_costs
    if unused:
        res.attrs["costs_scenarios_unused"] = json.dumps(unused)
    skip = budget_mismatch(costs, ds) if budget is None else None
    if skip is not None:
        LOG.warning("%s", skip)
        res.attrs["budget_skipped"] = skip
    line = None if skip is not None else _budget_line(costs, res, budget)
    if line is not None:
        res["budget"] = line
        res["p_deficit"] = deficit_probability(res, line, threshold)
    return res


def _price_index(costs: CostConfig, ds: xr.Dataset, years: list[int]) -> xr.DataArray:
    """Return the price index over ``(year, item)`` (+ ``scenario`` when one has its own).

    A scenario of the results named in ``[scenarios.<name>] inflation`` replaces
    ``[prices] inflation`` in that scenario.
    """
    where = costs.source_path

    def index(inflation) -> np.ndarray:
        return np.stack([(it.inflation or inflation).index(years, costs.base_year, where)
                         for it in costs.items], axis=1)

    coords = {"year": ds["year"].values, "item": [it.name for it in costs.items]}
    scen = [str(x) for x in ds["scenario"].values] if "scenario" in ds.dims else None
    changed = [x for x in (scen or []) if x in costs.scenarios
               and costs.scenarios[x].inflation is not None]
    if not changed:
        name = None if scen else ds.attrs.get("scenario")
        sc = costs.scenarios.get(name) if isinstance(name, str) else None
        infl = sc.inflation if sc is not None and sc.inflation is not None else costs.inflation
        return xr.DataArray(index(infl), dims=("year", "item"), coords=coords)
    arr = np.stack([index(costs.scenarios[x].inflation if x in changed else costs.inflation)
                    for x in scen])
    return xr.DataArray(arr, dims=("scenario", "year", "item"),
                        coords={"scenario": ds["scenario"].values, **coords})


def _scenario_factors(costs: CostConfig, ds: xr.Dataset) -> tuple[xr.DataArray, list[str]]:
    """Return the unit-cost multipliers over ``(item)`` or ``(scenario, item)``.

    Also the names of the cost file's scenarios that the results do not have.
    """
    names = [it.name for it in costs.items]
    if "scenario" in ds.dims:
        scen = [str(x) for x in ds["scenario"].values]
        arr = np.array([[costs.scenarios[x].unit.get(n, 1.0) if x in costs.scenarios else 1.0
                         for n in names] for x in scen])
        da = xr.DataArray(arr, dims=("scenario", "item"),
                          coords={"scenario": ds["scenario"].values, "item": names})
    else:
        scen = [str(ds.attrs.get("scenario", "baseline"))]
        sc = costs.scenarios.get(scen[0])
        da = xr.DataArray([1.0 if sc is None else sc.unit.get(n, 1.0) for n in names],
                          dims="item", coords={"item": names})
    return da, sorted(set(costs.scenarios) - set(scen))


def _area_units(costs: CostConfig, ds: xr.Dataset, seed: int,
                draws: list[int]) -> xr.Dataset | None:
    """Per-area unit costs when the file prices councils (:func:`council_unit_costs`)."""
    if costs.council is None or not any(it.council_unit for it in costs.items):
        return None
    if "area" in ds.dims:
        areas = [str(a) for a in ds["area"].values]
    else:
        try:
            areas = [str(a) for a in json.loads(ds.attrs["areas"])]
        except (KeyError, TypeError, ValueError):
            areas = [ENGLAND]
        if len(areas) != 1:
            raise ConfigError(f"{costs.source_path}: [council] prices each council with its own "
                              f"unit costs, but these results add up {len(areas)} areas with "
                              "no 'area' dim: run with 'area' in [outputs] by")
    return council_unit_costs(costs, seed, draws, areas)


def budget_mismatch(costs: CostConfig, ds: xr.Dataset) -> str | None:
    """Why the cost file's budget cannot be compared with these results, or None if it can.

    The budget covers ``[budget] areas`` (England when not stated); the results' areas are
    their ``areas`` attribute (every simsend run records it; results without one are not
    checked).  England's budget against a council's spend would give P(deficit) = 0 and say
    nothing.
    """
    if costs.budget is None:
        return None
    try:
        have = tuple(str(a) for a in json.loads(ds.attrs["areas"]))
    except (KeyError, TypeError, ValueError):
        return None
    want = costs.budget.areas or (ENGLAND,)
    if set(have) == set(want):
        return None
    shown = ", ".join(have[:5]) + (f" and {len(have) - 5} more" if len(have) > 5 else "")
    stated = ("is for " + ", ".join(want) if costs.budget.areas
              else f"does not say which areas it covers (taken as England, {ENGLAND})")
    return (f"{costs.source_path}: [budget] {stated}, but the results are for {shown}; "
            "P(deficit) is not computed. Give the budget of the results' areas in [budget] "
            "(with areas = [...]) to compare spend with it")


def _budget_line(costs: CostConfig | None, res: xr.Dataset,
                 budget: Any) -> xr.DataArray | None:
    """Return the budget as a DataArray over ``year``: ``budget`` if given, else the cost file's."""
    years = [int(y) for y in res["year"].values]
    if budget is None:
        if costs is None or costs.budget is None:
            return None
        vals = costs.budget.series(years)
        desc = costs.budget.description or "budget line"
    elif isinstance(budget, xr.DataArray):
        return budget
    elif isinstance(budget, Mapping):
        vals = np.array([float(budget.get(y, np.nan)) for y in years])
        desc = "budget line"
    elif np.ndim(budget) == 0:
        vals = np.full(len(years), float(budget))
        desc = "budget line"
    else:
        vals = np.asarray(budget, np.float64)
        if vals.shape != (len(years),):
            raise ValueError(f"budget: expected {len(years)} values (one per year), got "
                             f"shape {vals.shape}")
        desc = "budget line"
    return xr.DataArray(vals, dims="year", coords={"year": res["year"].values}, attrs={
        "units": "GBP", "long_name": desc, "price_basis": res.attrs.get("price_basis", "")})


def deficit_probability(spend_ds: xr.Dataset, budget: Any = None,
                        threshold: float = 0.0) -> xr.DataArray:
    """Probability over draws that spend exceeds the budget by more than ``threshold``.

    Spend is ``spend`` summed over the categories marked ``in_budget`` and over areas.

    Parameters
    ----------
    spend_ds : xarray.Dataset
        Output of :func:`spend`.
    budget : optional
        The budget per year in pounds: a number (every year), a mapping census year ->
        value, an array with one value per year, or a DataArray over ``year``.  Default:
        ``spend_ds["budget"]``.
    threshold : float
        Deficit size in pounds (``P(spend - budget > threshold)``).

    Returns
    -------
    xarray.DataArray
        ``p_deficit`` over ``(scenario, year)`` or ``(year,)``; NaN where there is no budget
        or no spend (a category not simulated that year).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> sp = xr.Dataset({"spend": (("draw", "year", "category"), [[[1.0]], [[3.0]]])},
    ...                 coords={"draw": [0, 1], "year": [2022], "category": ["x"]})
    >>> float(deficit_probability(sp, 2.0)[0])
    0.5

    """
    if budget is None:
        if "budget" not in spend_ds:
            raise ValueError("no budget: the cost file has no [budget] and none was given")
        line = spend_ds["budget"]
    elif isinstance(budget, xr.DataArray):
        line = budget
    else:
        line = _budget_line(None, spend_ds, budget)
    sp = spend_ds["spend"]
    if "in_budget" in sp.coords:
        sp = sp.isel(category=np.flatnonzero(sp["in_budget"].values))
    total = sp.sum([d for d in ("category", "area") if d in sp.dims], skipna=False)
    over = ((total - line) > float(threshold)).astype(np.float64).where(total.notnull())
    p = over.mean("draw", skipna=False).where(line.notnull())
    p.name = "p_deficit"
    p.attrs = {"units": "1", "long_name": f"probability that in-budget spend exceeds the budget "
                                          f"by more than {float(threshold):,.0f} GBP",
               "threshold_gbp": float(threshold), "cell_methods": "draw: mean"}
    return p


def spend_table(spend_ds: xr.Dataset, quantiles: Sequence[float] = (0.05, 0.5, 0.95)):
    """Tabulate total spend per year (and scenario): median and 90% band, in £ million.

    With a budget also the median of the in-budget categories, the budget and ``p_deficit``.
    Returns a pandas DataFrame.
    """
    import pandas as pd

    tot = spend_ds["spend_total"]
    tot = tot.sum("area", skipna=False) if "area" in tot.dims else tot
    q = tot.quantile(list(quantiles), dim="draw", skipna=False) / 1e6
    inb = None
    if "budget" in spend_ds:
        sp = spend_ds["spend"]
        sp = sp.isel(category=np.flatnonzero(sp["in_budget"].values))
        inb = sp.sum([d for d in ("category", "area") if d in sp.dims],
                     skipna=False).median("draw", skipna=False) / 1e6
    rows = []
    scen = [str(s) for s in spend_ds["scenario"].values] if "scenario" in tot.dims else [None]
    for s in scen:
        for y, fy in zip(spend_ds["year"].values, spend_ds["financial_year"].values,
                         strict=True):
            sel = {"year": y} if s is None else {"year": y, "scenario": s}
            r = {} if s is None else {"scenario": s}
            r.update({"year": int(y), "financial_year": str(fy)})
            for qq in quantiles:
                r[f"p{round(qq * 100):02d} £m"] = float(q.sel(quantile=qq, **sel))
            if inb is not None:
                r["in budget p50 £m"] = float(inb.sel(sel))
                r["budget £m"] = float(spend_ds["budget"].sel(year=y)) / 1e6
            if "p_deficit" in spend_ds:
                r["P(deficit)"] = float(spend_ds["p_deficit"].sel(sel))
            rows.append(r)
    return pd.DataFrame(rows)
