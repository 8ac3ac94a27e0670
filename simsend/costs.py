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
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy.special import ndtri

from simsend._version import __version__
from simsend.config import ConfigError, _check_keys, _Ctx, _table, read_text
from simsend.dims import PLACEMENTS, TIERS
from simsend.provision import ALLOC_VARS

COSTS_SPAWN = 0x636F737473
"""First spawn-key word of every cost draw (ASCII ``costs``), apart from the engine's keys."""

DISTS = {
    "fixed": ("value",),
    "normal": ("mean", "sd"),
    "lognormal": ("median", "low", "high"),
    "triangular": ("low", "mode", "high"),
    "uniform": ("low", "high"),
}
"""Distributions of a unit cost or share, and their parameters (``low``/``high`` of a
lognormal are its 5% and 95% quantiles, i.e. a 90% range)."""

USES = ("always", "with_placement", "without_placement")
"""When an item applies: always, only to results with a ``placement`` dim, or only without."""

PIPELINE_VARIABLES = ("n_requests", "n_refused", "n_assessed", "n_not_issued", "n_issued",
                      "n_within_20_weeks", "n_appeals", "n_appeals_upheld")
"""Statutory-pipeline counts: an item counting one is skipped when the results lack it."""

_Z95 = float(ndtri(0.95))
_FY = re.compile(r"^(\d{4})-(\d{2})$")


# --------------------------------------------------------------------------- typed objects


@dataclass(frozen=True)
class Dist:
    """A distribution of a non-negative quantity, sampled by its inverse CDF.

    Parameters are those of :data:`DISTS` for ``kind``, in that order.  A normal draw below
    zero (or, for a share, outside [0, 1]) is clipped; the parser only accepts normals whose
    mean is at least 3 sd above zero, so clipping touches less than 0.14% of draws.

    Examples
    --------
    >>> Dist("triangular", (1.0, 2.0, 4.0)).ppf(np.array([0.0, 1.0])).tolist()
    [1.0, 4.0]

    """

    kind: str
    params: tuple[float, ...]
    upper: float = math.inf

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Return the quantiles at probabilities ``u`` (float64 array, values in [0, 1])."""
        u = np.asarray(u, np.float64)
        p = self.params
        if self.kind == "fixed":
            out = np.full(u.shape, p[0])
        elif self.kind == "normal":
            out = p[0] + p[1] * ndtri(u) if p[1] > 0 else np.full(u.shape, p[0])
        elif self.kind == "lognormal":
            median, low, high = p
            sigma = math.log(high / low) / (2.0 * _Z95)
            out = median * np.exp(sigma * ndtri(u))
        elif self.kind == "triangular":
            a, c, b = p
            f = (c - a) / (b - a)
            out = np.where(u < f, a + np.sqrt(u * (b - a) * (c - a)),
                           b - np.sqrt((1.0 - u) * (b - a) * (b - c)))
        elif self.kind == "uniform":
            out = p[0] + u * (p[1] - p[0])
        else:  # pragma: no cover - the parser admits only DISTS
            raise ValueError(f"unknown distribution {self.kind!r}")
        return np.clip(out, 0.0, self.upper)

    def describe(self) -> str:
        """One line, e.g. ``lognormal(median=53254, low=46308, high=61242)``."""
        args = ", ".join(f"{k}={v:g}" for k, v in zip(DISTS[self.kind], self.params, strict=True))
        return f"{self.kind}({args})"


@dataclass(frozen=True)
class Inflation:
    """An annual inflation path: ``rates`` by census year, ``rate`` for any year not listed.

    The index of census year ``y`` against base year ``b`` is ``prod(1 + r_t, t = b+1..y)``
    for ``y > b``, 1 at ``b`` and ``1 / prod(1 + r_t, t = y+1..b)`` before ``b``.

    Examples
    --------
    >>> Inflation(rate=0.02).index([2022, 2025], base_year=2022).round(12).tolist()
    [1.0, 1.061208]

    """

    rate: float | None = 0.0
    rates: Mapping[int, float] = field(default_factory=dict)
    key: str = "prices.inflation"

    def _r(self, year: int, where: str) -> float:
        if year in self.rates:
            return self.rates[year]
        if self.rate is None:
            raise ConfigError(f"{where}: [{self.key}.rates] no rate for financial year "
                              f"{year - 1}-{year % 100:02d} (census year {year}) and no "
                              f"default 'rate'")
        return self.rate

    def index(self, years: Sequence[int], base_year: int, where: str = "<costs>") -> np.ndarray:
        """Return the price index of each census year in ``years`` (float64)."""
        out = np.empty(len(years))
        for k, y in enumerate(int(y) for y in years):
            f = 1.0
            if y > base_year:
                for t in range(base_year + 1, y + 1):
                    f *= 1.0 + self._r(t, where)
            elif y < base_year:
                for t in range(y + 1, base_year + 1):
                    f *= 1.0 + self._r(t, where)
                f = 1.0 / f
            out[k] = f
        return out


@dataclass(frozen=True)
class CostItem:
    """One priced count: ``count`` cells of ``tier`` x ``placement`` times share times unit.

    ``tier``/``placement`` of ``None`` select every value.  ``use`` says whether the item
    applies to results with a ``placement`` dim, without one, or always (:data:`USES`).
    ``inflation`` of ``None`` uses the file's ``[prices] inflation``.
    """

    name: str
    category: str
    count: str
    unit: Dist
    share: Dist | None = None
    tier: tuple[str, ...] | None = None
    placement: tuple[str, ...] | None = None
    use: str = "always"
    inflation: Inflation | None = None
    in_budget: bool = True
    description: str = ""


@dataclass(frozen=True)
class Budget:
    """A budget line by census year (``values``); ``growth`` a year extends it past the last.

    Values are pounds in the same basis as the spend (nominal, or constant prices of the
    base).  Years without a value (before the first, or after the last without ``growth``)
    have no budget (NaN).
    """

    values: Mapping[int, float]
    growth: float | None = None
    description: str = ""

    def series(self, years: Sequence[int]) -> np.ndarray:
        """Return the budget of each census year in ``years`` (NaN where there is none)."""
        last = max(self.values)
        out = np.full(len(years), np.nan)
        for k, y in enumerate(int(y) for y in years):
            if y in self.values:
                out[k] = self.values[y]
            elif y > last and self.growth is not None:
                out[k] = self.values[last] * (1.0 + self.growth) ** (y - last)
        return out


@dataclass(frozen=True)
class CostConfig:
    """A parsed cost file: price base, basis, inflation, items, budget, text and hash."""

    price_base: str
    base_year: int
    basis: str
    inflation: Inflation
    items: tuple[CostItem, ...]
    budget: Budget | None
    source_path: str
    text: str
    sha256: str
    description: str = ""

    @property
    def categories(self) -> tuple[str, ...]:
        """Output categories in the order their first item appears."""
        return tuple(dict.fromkeys(it.category for it in self.items))

    @property
    def basis_label(self) -> str:
        """``"nominal GBP"`` or ``"GBP at constant 2021-22 prices"``."""
        return ("nominal GBP (cash, inflation path applied from " + self.price_base + ")"
                if self.basis == "nominal" else f"GBP at constant {self.price_base} prices")


# --------------------------------------------------------------------------- parsing


def _num(ctx: _Ctx, v: Any, key: str, lo: float | None = None, hi: float | None = None,
         what: str = "a number") -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ctx.fail(key, f"expected {what}, got {v!r}")
    v = float(v)
    if lo is not None and v < lo:
        raise ctx.fail(key, f"value {v:g} must be >= {lo:g} ({what})")
    if hi is not None and v > hi:
        raise ctx.fail(key, f"value {v:g} must be <= {hi:g} ({what})")
    return v


def _str(ctx: _Ctx, v: Any, key: str) -> str:
    if not isinstance(v, str):
        raise ctx.fail(key, f"expected a string, got {v!r}")
    return v


def _fy(ctx: _Ctx, s: Any, key: str) -> int:
    """``"2021-22"`` -> census year 2022 (the January census inside that financial year)."""
    m = _FY.match(s) if isinstance(s, str) else None
    if m is None or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ctx.fail(key, f"expected a financial year 'YYYY-YY' such as '2021-22', got {s!r}")
    return int(m.group(1)) + 1


def _dist(ctx: _Ctx, raw: Any, key: str, share: bool = False) -> Dist:
    """Parse a number (fixed) or ``{dist = "...", ...}`` into a :class:`Dist`."""
    what = "a share in [0, 1]" if share else "a cost in GBP >= 0"
    hi = 1.0 if share else None
    upper = 1.0 if share else math.inf
    if not isinstance(raw, dict):
        return Dist("fixed", (_num(ctx, raw, key, 0.0, hi, what),), upper)
    kind = raw.get("dist")
    if kind not in DISTS:
        raise ctx.fail(f"{key}.dist", f"expected one of {list(DISTS)}, got {kind!r}")
    _check_keys(ctx, raw, key, ("dist", *DISTS[kind]))
    vals = []
    for p in DISTS[kind]:
        if p not in raw:
            raise ctx.fail(f"{key}.{p}", f"missing; a {kind} needs {list(DISTS[kind])}")
        vals.append(_num(ctx, raw[p], f"{key}.{p}", 0.0, hi, what))
    if kind == "normal":
        mean, sd = vals
        if mean < 3.0 * sd:
            raise ctx.fail(f"{key}.sd", f"sd {sd:g} too large for mean {mean:g}: a normal cost "
                                        "needs mean >= 3 sd (else use a lognormal)")
    elif kind == "lognormal":
        median, low, high = vals
        if not 0.0 < low < median < high:
            raise ctx.fail(key, f"expected 0 < low < median < high, got low={low:g}, "
                                f"median={median:g}, high={high:g}")
        # (low, high) is the 5%-95% range, symmetric about the median on the log scale.
        half = 0.5 * math.log(high / low)
        if abs(math.log(median) - 0.5 * math.log(low * high)) > 0.05 * half:
            raise ctx.fail(key, f"a lognormal's 90% range is symmetric about the median on the "
                                f"log scale: with low={low:g} and high={high:g} the median is "
                                f"{math.sqrt(low * high):.6g}, not {median:g} (use a triangular "
                                "for a skewed range)")
    elif kind == "triangular":
        low, mode, high = vals
        if not (low <= mode <= high and low < high):
            raise ctx.fail(key, f"expected low <= mode <= high and low < high, got low={low:g}, "
                                f"mode={mode:g}, high={high:g}")
    elif kind == "uniform" and not vals[0] < vals[1]:
        raise ctx.fail(key, f"expected low < high, got low={vals[0]:g}, high={vals[1]:g}")
    return Dist(kind, tuple(vals), upper)


def _inflation(ctx: _Ctx, raw: Any, key: str) -> Inflation:
    """``{ rate = 0.02 }``, ``{ rates = { "2022-23" = 0.05 }, rate = 0.02 }`` or a number."""
    if not isinstance(raw, dict):
        return Inflation(rate=_num(ctx, raw, key, -0.5, 1.0, "an annual rate"), key=key)
    _check_keys(ctx, raw, key, ("rate", "rates"))
    rate = raw.get("rate")
    rate = None if rate is None else _num(ctx, rate, f"{key}.rate", -0.5, 1.0, "an annual rate")
    rates = {}
    for fy, v in _table(ctx, raw.get("rates", {}), f"{key}.rates").items():
        k = f'{key}.rates."{fy}"'
        rates[_fy(ctx, fy, k)] = _num(ctx, v, k, -0.5, 1.0, "an annual rate")
    if rate is None and not rates:
        raise ctx.fail(key, "expected 'rate' (every year) and/or 'rates' (by financial year)")
    return Inflation(rate=rate, rates=rates, key=key)


def _names(ctx: _Ctx, raw: Any, key: str, labels: tuple[str, ...]) -> tuple[str, ...]:
    vals = [raw] if isinstance(raw, str) else raw
    if not isinstance(vals, list) or not vals:
        raise ctx.fail(key, f"expected a name or a non-empty list of {list(labels)}")
    for i, v in enumerate(vals):
        if v not in labels:
            raise ctx.fail(f"{key}[{i}]" if isinstance(raw, list) else key,
                           f"unknown value {v!r}; expected one of {list(labels)}")
    return tuple(dict.fromkeys(vals))


_ITEM_KEYS = ("description", "category", "count", "tier", "placement", "use", "unit", "share",
              "inflation", "in_budget")


def _item(ctx: _Ctx, name: str, raw: Any) -> CostItem:
    key = f"costs.{name}"
    raw = _table(ctx, raw, key)
    _check_keys(ctx, raw, key, _ITEM_KEYS)
    for req in ("count", "unit"):
        if req not in raw:
            raise ctx.fail(f"{key}.{req}", "missing required key")
    count = _str(ctx, raw["count"], f"{key}.count")
    if not re.fullmatch(r"n_[a-z0-9_]+", count):
        raise ctx.fail(f"{key}.count", f"expected a count variable of the results such as "
                                       f"'n_pupils' or 'n_assessed', got {count!r}")
    placement = (None if "placement" not in raw
                 else _names(ctx, raw["placement"], f"{key}.placement", PLACEMENTS))
    use = _str(ctx, raw.get("use", "with_placement" if placement else "always"), f"{key}.use")
    if use not in USES:
        raise ctx.fail(f"{key}.use", f"expected one of {list(USES)}, got {use!r}")
    if placement and use != "with_placement":
        raise ctx.fail(f"{key}.use", "an item with a 'placement' filter applies only to results "
                                     "with a placement dim: use = 'with_placement'")
    in_budget = raw.get("in_budget", True)
    if not isinstance(in_budget, bool):
        raise ctx.fail(f"{key}.in_budget", f"expected true or false, got {in_budget!r}")
    return CostItem(
        name=name,
        category=_str(ctx, raw.get("category", name), f"{key}.category"),
        count=count,
        unit=_dist(ctx, raw["unit"], f"{key}.unit"),
        share=None if "share" not in raw else _dist(ctx, raw["share"], f"{key}.share", True),
        tier=None if "tier" not in raw else _names(ctx, raw["tier"], f"{key}.tier", TIERS),
        placement=placement,
        use=use,
        inflation=(None if "inflation" not in raw
                   else _inflation(ctx, raw["inflation"], f"{key}.inflation")),
        in_budget=in_budget,
        description=_str(ctx, raw.get("description", ""), f"{key}.description"),
    )


def _budget(ctx: _Ctx, raw: Any) -> Budget:
    raw = _table(ctx, raw, "budget")
    _check_keys(ctx, raw, "budget", ("description", "values", "growth"))
    vals_raw = _table(ctx, raw.get("values", {}), "budget.values")
    if not vals_raw:
        raise ctx.fail("budget.values", 'expected at least one value, e.g. { "2021-22" = 7.9e9 }')
    values = {}
    for fy, v in vals_raw.items():
        k = f'budget.values."{fy}"'
        values[_fy(ctx, fy, k)] = _num(ctx, v, k, 0.0, None, "pounds >= 0")
    growth = raw.get("growth")
    return Budget(values=values,
                  growth=None if growth is None else _num(ctx, growth, "budget.growth", -0.5, 1.0,
                                                          "an annual rate"),
                  description=_str(ctx, raw.get("description", ""), "budget.description"))


def parse_costs(text: str, source_path: str = "<string>") -> CostConfig:
    r"""Parse cost-file TOML text into a :class:`CostConfig`.

    Raises
    ------
    ConfigError
        On any unknown key or bad value, naming ``source_path`` and the key path.

    Examples
    --------
    >>> c = parse_costs('[prices]\nbase = "2021-22"\n[costs.x]\ncount = "n_pupils"\nunit = 5')
    >>> c.base_year, c.items[0].unit.describe()
    (2022, 'fixed(value=5)')

    """
    ctx = _Ctx(source_path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source_path}: not valid TOML: {exc}") from None
    _check_keys(ctx, raw, "", ("description", "prices", "costs", "budget"))
    prices = _table(ctx, raw.get("prices", {}), "prices")
    _check_keys(ctx, prices, "prices", ("base", "basis", "inflation"))
    if "base" not in prices:
        raise ctx.fail("prices.base", "missing: the price base as a financial year, e.g. "
                                      "'2021-22'")
    base_year = _fy(ctx, prices["base"], "prices.base")
    basis = prices.get("basis", "constant")
    if basis not in ("nominal", "constant"):
        raise ctx.fail("prices.basis", f"expected 'nominal' or 'constant', got {basis!r}")
    inflation = (_inflation(ctx, prices["inflation"], "prices.inflation")
                 if "inflation" in prices else Inflation(rate=0.0))
    costs = _table(ctx, raw.get("costs", {}), "costs")
    if not costs:
        raise ctx.fail("costs", "expected at least one item, e.g. [costs.special_state]")
    items = tuple(_item(ctx, name, v) for name, v in costs.items())
    return CostConfig(
        price_base=prices["base"], base_year=base_year, basis=basis, inflation=inflation,
        items=items, budget=_budget(ctx, raw["budget"]) if "budget" in raw else None,
        source_path=source_path, text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        description=_str(ctx, raw.get("description", ""), "description"),
    )


def load_costs(path: str | Path) -> CostConfig:
    """Read and validate a cost file (see ``docs/costs.md``).

    Examples
    --------
    >>> c = load_costs("configs/costs/england_2021_22.toml")  # doctest: +SKIP
    >>> c.price_base  # doctest: +SKIP
    '2021-22'

    """
    p = Path(path)
    return parse_costs(read_text(p, "cost file"), source_path=str(p))


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


def cost_draws(costs: CostConfig, seed: int, draws: Sequence[int]) -> xr.Dataset:
    """Draw every item's unit cost and share for each Monte Carlo draw.

    Returns
    -------
    xarray.Dataset
        ``unit_cost`` and ``share`` over ``(draw, item)``; unit costs at the prices of the
        price base, shares 1 for items without one.

    """
    names = [it.name for it in costs.items]
    u = cost_uniforms(seed, draws, names)
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
        ``attrs["costs_skipped"]``.

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
    has_pl = "placement" in ds.dims
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
    draws = cost_draws(sub, seed, [int(d) for d in ds["draw"].values])
    index = np.stack([(it.inflation or costs.inflation).index(years, costs.base_year, where)
                      for it in active], axis=1)
    price_index = xr.DataArray(index, dims=("year", "item"),
                               coords={"year": ds["year"].values, "item": draws["item"].values})
    tiers = [str(t) for t in ds["tier"].values] if "tier" in ds.dims else None
    by_cat: dict[str, xr.DataArray] = {}
    by_cat_tier: dict[str, xr.DataArray] = {}
    for it in active:
        n = _counts(ds, it, keep, where)
        coef = (draws["share"] * draws["unit_cost"]).sel(item=it.name, drop=True)
        val = n * coef * price_index.sel(item=it.name, drop=True)
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
    }
    line = _budget_line(costs, res, budget)
    if line is not None:
        res["budget"] = line
        res["p_deficit"] = deficit_probability(res, line, threshold)
    return res


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
