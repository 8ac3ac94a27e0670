"""Cost files (TOML): unit-cost distributions, inflation, budget, parsed into frozen objects.

What the items mean and how spend is computed from them is in :mod:`simsend.analysis.costs`
and ``docs/costs.md``.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtri

import simsend.config.toml as toml
from simsend.config.toml import ConfigError, read_text
from simsend.dims import PLACEMENTS, TIERS

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

OVERRIDE_END = 2028
"""Census year of the last financial year of the DSG statutory override (2027-28: it ends on
31 March 2028), the default of ``[dsg] override_end``.  Source: MHCLG, "The Fair Funding Review
2.0" consultation, 20 June 2025 (ministerial foreword: the override, then due to end in March
2026, extended to the end of 2027-28; reported by FE Week the same day,
https://feweek.co.uk/send-deficits-to-be-kept-off-council-balance-sheets-for-two-more-years/),
confirmed in the written answer to PQ 61924, 1 July 2025
(https://www.parallelparliament.co.uk/question/61924/social-services-finance).
``override_end = "none"`` models no end."""

_Z95 = float(ndtri(0.95))
_FY = re.compile(r"^(\d{4})-(\d{2})$")


# --------------------------------------------------------------------------- typed objects


@dataclass(frozen=True)
class Dist:
    """A distribution of a non-negative quantity, sampled by its inverse CDF.

    Parameters are those of :data:`DISTS` for ``kind``, in that order.  A normal draw below
    zero (or, for a share, outside [0, 1]) is clipped; the parser only accepts normals whose
    mean is at least 3 sd above zero, so clipping touches less than 0.14% of draws.  A
    growth rate (``[dsg] growth``) may be negative: its ``lower`` bound is -0.5.

    Examples
    --------
    >>> Dist("triangular", (1.0, 2.0, 4.0)).ppf(np.array([0.0, 1.0])).tolist()
    [1.0, 4.0]

    """

    kind: str
    params: tuple[float, ...]
    upper: float = math.inf
    lower: float = 0.0

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
        return np.clip(out, self.lower, self.upper)

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
    ``inflation`` of ``None`` uses the file's ``[prices] inflation``.  ``council_unit`` names
    the key of the ``[council]`` unit-cost table (``simsend.data.finance.UNIT_KEYS``) that
    prices the item for a council with a figure of its own; ``unit`` prices England and
    every other area.
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
    council_unit: str | None = None


@dataclass(frozen=True)
class Budget:
    """A budget line by census year (``values``); ``growth`` a year extends it past the last.

    Values are pounds in the same basis as the spend (nominal, or constant prices of the
    base).  Years without a value (before the first, or after the last without ``growth``)
    have no budget (NaN).  ``areas`` are the area codes whose spend the budget covers (None:
    not stated, taken as England, ``E92000001``).
    """

    values: Mapping[int, float]
    growth: float | None = None
    description: str = ""
    areas: tuple[str, ...] | None = None

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
class Council:
    """``[council]``: price items with each council's own unit costs.

    ``unit_costs`` is ``"builtin"`` (the shipped ``simsend/data/builtin/finance/
    unit_costs.csv``) or the path of a file in that format (relative paths from the cost
    file's folder), read by :func:`simsend.data.finance.read_finance`.
    """

    unit_costs: str = "builtin"


@dataclass(frozen=True)
class Growth:
    """Annual growth of the high-needs income after its last known year.

    Either ``dist`` (one rate drawn per Monte Carlo draw and held for every year) or
    ``path`` (rates by census year, the same in every draw).

    Examples
    --------
    >>> Growth(path=Inflation(rate=0.02)).factors([2022, 2024], 2022, np.array([0.5])).round(6)
    array([[1.    , 1.0404]])

    """

    dist: Dist | None = None
    path: Inflation | None = None

    def factors(self, years: Sequence[int], last: int, u: np.ndarray,
                where: str = "<costs>") -> np.ndarray:
        """Income multipliers against year ``last``, shape ``(len(u), len(years))``.

        ``u`` are the draws' uniforms (used by a ``dist``); years at or before ``last`` get 1.
        """
        u = np.asarray(u, np.float64)
        out = np.ones((len(u), len(years)))
        if self.dist is not None:
            g = self.dist.ppf(u)
            for k, y in enumerate(int(y) for y in years):
                out[:, k] = (1.0 + g) ** max(0, y - last)
            return out
        idx = self.path.index([max(int(y), last) for y in years], last, where)
        return out * idx[None, :]

    def describe(self) -> str:
        """One line, e.g. ``normal(mean=0.03, sd=0.02) a year, drawn once per draw``."""
        if self.dist is not None:
            return f"{self.dist.describe()} a year, drawn once per draw"
        p = self.path
        rates = ", ".join(f"{y - 1}-{y % 100:02d}: {r:g}" for y, r in sorted(p.rates.items()))
        tail = "" if p.rate is None else f"{p.rate:g} a year" + (" otherwise" if rates else "")
        return ", ".join(x for x in (f"rates {{{rates}}}" if rates else "", tail) if x)


@dataclass(frozen=True)
class Dsg:
    """``[dsg]``: the running high-needs (DSG) balance of each area.

    ``opening``: ``"builtin"`` (the shipped cumulative balances, or ``balances``), pounds
    for every area, or ``{area: pounds}`` (areas left out use the file); negative = deficit.
    ``opening_year``: census year of the financial year at whose end (31 March) the opening
    balance stands (None: the file's last year, or the year before the results' first).
    ``income``: extra high-needs allocations ``{area: {census year: pounds}}`` over the file's
    (``allocations``, default the shipped ``hn_allocations.csv``); ``growth`` extends each
    area's last allocation.  ``bridge``: the in-year balance of each year between the opening
    year and the results' first year: ``"mean"`` or ``"last"`` of the area's published
    in-year balances, ``"zero"``, or ``{area: {census year: pounds}}``.  ``override_end``:
    census year of the last financial year of the statutory override (default
    :data:`OVERRIDE_END`, 2027-28; None: no end modelled).  ``thresholds``:
    cumulative deficits (pounds) for ``P(deficit > X)``.
    """

    opening: Any = "builtin"
    opening_year: int | None = None
    balances: str | None = None
    allocations: str | None = None
    income: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    growth: Growth = field(default_factory=lambda: Growth(path=Inflation(rate=0.0)))
    bridge: Any = "mean"
    override_end: int | None = OVERRIDE_END
    thresholds: tuple[float, ...] = (0.0,)
    description: str = ""


@dataclass(frozen=True)
class ScenarioCosts:
    """``[scenarios.<name>]``: cost modifiers applied to one scenario of the results.

    ``unit``: multipliers of items' unit costs by item name; ``inflation``: replaces
    ``[prices] inflation`` (items with their own inflation keep it).  The cost draws stay
    those of every other scenario, so differences stay paired.
    """

    unit: Mapping[str, float] = field(default_factory=dict)
    inflation: Inflation | None = None


@dataclass(frozen=True)
class CostConfig:
    """A parsed cost file: price base, basis, inflation, items, budget, text and hash.

    Optional parts: ``council`` (per-council unit costs), ``dsg`` (the running DSG balance),
    ``correlation`` (between the unit-cost draws of different items) and ``scenarios``
    (cost modifiers by scenario).
    """

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
    council: Council | None = None
    dsg: Dsg | None = None
    correlation: float = 0.0
    scenarios: Mapping[str, ScenarioCosts] = field(default_factory=dict)

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


def _num(ctx: toml.Ctx, v: Any, key: str, lo: float | None = None, hi: float | None = None,
         what: str = "a number") -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ctx.fail(key, f"expected {what}, got {v!r}")
    v = float(v)
    if lo is not None and v < lo:
        raise ctx.fail(key, f"value {v:g} must be >= {lo:g} ({what})")
    if hi is not None and v > hi:
        raise ctx.fail(key, f"value {v:g} must be <= {hi:g} ({what})")
    return v


def _str(ctx: toml.Ctx, v: Any, key: str) -> str:
    if not isinstance(v, str):
        raise ctx.fail(key, f"expected a string, got {v!r}")
    return v


def _fy(ctx: toml.Ctx, s: Any, key: str) -> int:
    """``"2021-22"`` -> census year 2022 (the January census inside that financial year)."""
    m = _FY.match(s) if isinstance(s, str) else None
    if m is None or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ctx.fail(key, f"expected a financial year 'YYYY-YY' such as '2021-22', got {s!r}")
    return int(m.group(1)) + 1


def _dist_params(ctx: toml.Ctx, raw: dict, key: str, kind: str, bounds, what: str) -> list[float]:
    """Read distribution ``kind``'s parameters from ``raw`` (``bounds(name)`` -> (lo, hi))."""
    toml.check_keys(ctx, raw, key, ("dist", *DISTS[kind]))
    vals = []
    for p in DISTS[kind]:
        if p not in raw:
            raise ctx.fail(f"{key}.{p}", f"missing; a {kind} needs {list(DISTS[kind])}")
        lo, hi = bounds(p)
        vals.append(_num(ctx, raw[p], f"{key}.{p}", lo, hi, what))
    return vals


def _dist(ctx: toml.Ctx, raw: Any, key: str, share: bool = False) -> Dist:
    """Parse a number (fixed) or ``{dist = "...", ...}`` into a :class:`Dist`."""
    what = "a share in [0, 1]" if share else "a cost in GBP >= 0"
    hi = 1.0 if share else None
    upper = 1.0 if share else math.inf
    if not isinstance(raw, dict):
        return Dist("fixed", (_num(ctx, raw, key, 0.0, hi, what),), upper)
    kind = raw.get("dist")
    if kind not in DISTS:
        raise ctx.fail(f"{key}.dist", f"expected one of {list(DISTS)}, got {kind!r}")
    vals = _dist_params(ctx, raw, key, kind, lambda p: (0.0, hi), what)
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


def _inflation(ctx: toml.Ctx, raw: Any, key: str) -> Inflation:
    """``{ rate = 0.02 }``, ``{ rates = { "2022-23" = 0.05 }, rate = 0.02 }`` or a number."""
    if not isinstance(raw, dict):
        return Inflation(rate=_num(ctx, raw, key, -0.5, 1.0, "an annual rate"), key=key)
    toml.check_keys(ctx, raw, key, ("rate", "rates"))
    rate = raw.get("rate")
    rate = None if rate is None else _num(ctx, rate, f"{key}.rate", -0.5, 1.0, "an annual rate")
    rates = {}
    for fy, v in toml.table(ctx, raw.get("rates", {}), f"{key}.rates").items():
        k = f'{key}.rates."{fy}"'
        rates[_fy(ctx, fy, k)] = _num(ctx, v, k, -0.5, 1.0, "an annual rate")
    if rate is None and not rates:
        raise ctx.fail(key, "expected 'rate' (every year) and/or 'rates' (by financial year)")
    return Inflation(rate=rate, rates=rates, key=key)


def _names(ctx: toml.Ctx, raw: Any, key: str, labels: tuple[str, ...]) -> tuple[str, ...]:
    vals = [raw] if isinstance(raw, str) else raw
    if not isinstance(vals, list) or not vals:
        raise ctx.fail(key, f"expected a name or a non-empty list of {list(labels)}")
    for i, v in enumerate(vals):
        if v not in labels:
            raise ctx.fail(f"{key}[{i}]" if isinstance(raw, list) else key,
                           f"unknown value {v!r}; expected one of {list(labels)}")
    return tuple(dict.fromkeys(vals))


_ITEM_KEYS = ("description", "category", "count", "tier", "placement", "use", "unit", "share",
              "inflation", "in_budget", "council_unit")


def _item(ctx: toml.Ctx, name: str, raw: Any) -> CostItem:
    key = f"costs.{name}"
    raw = toml.table(ctx, raw, key)
    toml.check_keys(ctx, raw, key, _ITEM_KEYS)
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
        council_unit=(None if "council_unit" not in raw
                      else _str(ctx, raw["council_unit"], f"{key}.council_unit")),
    )


def _budget(ctx: toml.Ctx, raw: Any) -> Budget:
    raw = toml.table(ctx, raw, "budget")
    toml.check_keys(ctx, raw, "budget", ("description", "values", "growth", "areas"))
    vals_raw = toml.table(ctx, raw.get("values", {}), "budget.values")
    if not vals_raw:
        raise ctx.fail("budget.values", 'expected at least one value, e.g. { "2021-22" = 7.9e9 }')
    values = {}
    for fy, v in vals_raw.items():
        k = f'budget.values."{fy}"'
        values[_fy(ctx, fy, k)] = _num(ctx, v, k, 0.0, None, "pounds >= 0")
    growth = raw.get("growth")
    areas = raw.get("areas")
    if areas is not None:
        areas = [areas] if isinstance(areas, str) else areas
        if not isinstance(areas, list) or not areas:
            raise ctx.fail("budget.areas", "expected an area code or a non-empty list of codes "
                                           "(the areas whose spend the budget covers)")
        areas = tuple(_str(ctx, a, f"budget.areas[{i}]") for i, a in enumerate(areas))
    return Budget(values=values, areas=areas,
                  growth=None if growth is None else _num(ctx, growth, "budget.growth", -0.5, 1.0,
                                                          "an annual rate"),
                  description=_str(ctx, raw.get("description", ""), "budget.description"))


_AREA = re.compile(r"^[EWSN]\d{8}$")


def _area(ctx: toml.Ctx, code: Any, key: str) -> str:
    if not isinstance(code, str) or not _AREA.match(code):
        raise ctx.fail(key, f"expected a GSS area code such as 'E10000016', got {code!r}")
    return code


def _path(ctx: toml.Ctx, v: Any, key: str, builtin: bool = True) -> str:
    """``"builtin"`` or a path, made absolute from the cost file's folder."""
    s = _str(ctx, v, key)
    if builtin and s == "builtin":
        return s
    if not s:
        raise ctx.fail(key, "expected 'builtin' or the path of a CSV file")
    p = Path(s)
    if not p.is_absolute() and ctx.path not in ("<string>", ""):
        p = Path(ctx.path).parent / p
    return str(p)


def _council(ctx: toml.Ctx, raw: Any) -> Council:
    raw = toml.table(ctx, raw, "council")
    toml.check_keys(ctx, raw, "council", ("unit_costs",))
    return Council(unit_costs=_path(ctx, raw.get("unit_costs", "builtin"), "council.unit_costs"))


_GROWTH_DISTS = {k: v for k, v in DISTS.items() if k != "lognormal"}


def _growth(ctx: toml.Ctx, raw: Any, key: str) -> Growth:
    """Parse a number, ``{ rate, rates }`` (a path) or ``{ dist = ... }`` (drawn per draw)."""
    what = "an annual growth rate in [-0.5, 1]"
    if not isinstance(raw, dict) or "dist" not in raw:
        return Growth(path=_inflation(ctx, raw, key))
    kind = raw["dist"]
    if kind not in _GROWTH_DISTS:
        raise ctx.fail(f"{key}.dist", f"expected one of {list(_GROWTH_DISTS)}, got {kind!r}")
    vals = _dist_params(ctx, raw, key, kind, lambda p: (0.0 if p == "sd" else -0.5, 1.0), what)
    if kind == "triangular" and not (vals[0] <= vals[1] <= vals[2] and vals[0] < vals[2]):
        raise ctx.fail(key, f"expected low <= mode <= high and low < high, got {vals}")
    if kind == "uniform" and not vals[0] < vals[1]:
        raise ctx.fail(key, f"expected low < high, got low={vals[0]:g}, high={vals[1]:g}")
    return Growth(dist=Dist(kind, tuple(vals), upper=1.0, lower=-0.5))


def _by_area_year(ctx: toml.Ctx, raw: Any, key: str, lo: float | None) -> dict:
    """``{ area = { "2024-25" = pounds, ... } }`` -> {area: {census year: pounds}}."""
    out = {}
    for area, years in toml.table(ctx, raw, key).items():
        k = f"{key}.{area}"
        _area(ctx, area, k)
        vals = {}
        for fy, v in toml.table(ctx, years, k).items():
            kk = f'{k}."{fy}"'
            vals[_fy(ctx, fy, kk)] = _num(ctx, v, kk, lo, None, "pounds" + (
                " >= 0" if lo is not None else " (negative = deficit)"))
        if not vals:
            raise ctx.fail(k, 'expected at least one value, e.g. { "2024-25" = 3.1e8 }')
        out[area] = vals
    return out


def _override_end(ctx: toml.Ctx, raw: Mapping[str, Any]) -> int | None:
    """``"2027-28"`` -> 2028; ``"none"`` -> None (no end); not given -> :data:`OVERRIDE_END`."""
    if "override_end" not in raw:
        return OVERRIDE_END
    v = raw["override_end"]
    if v == "none":
        return None
    if not (isinstance(v, str) and _FY.match(v)):
        raise ctx.fail("dsg.override_end", f"expected a financial year 'YYYY-YY' such as "
                                           f"'2027-28' (the override's last year) or 'none', "
                                           f"got {v!r}")
    return _fy(ctx, v, "dsg.override_end")


_DSG_KEYS = ("description", "opening", "opening_year", "balances", "allocations", "income",
             "growth", "bridge", "override_end", "thresholds")


def _dsg(ctx: toml.Ctx, raw: Any) -> Dsg:
    raw = toml.table(ctx, raw, "dsg")
    toml.check_keys(ctx, raw, "dsg", _DSG_KEYS)
    opening = raw.get("opening", "builtin")
    if isinstance(opening, dict):
        opening = {_area(ctx, a, f"dsg.opening.{a}"): _num(
            ctx, v, f"dsg.opening.{a}", None, None, "pounds (negative = deficit)")
            for a, v in opening.items()}
    elif opening != "builtin":
        opening = _num(ctx, opening, "dsg.opening", None, None,
                       "'builtin', pounds (negative = deficit) or { area = pounds }")
    bridge = raw.get("bridge", "mean")
    if isinstance(bridge, dict):
        bridge = _by_area_year(ctx, bridge, "dsg.bridge", None)
    elif bridge not in ("mean", "last", "zero"):
        raise ctx.fail("dsg.bridge", f"expected 'mean', 'last', 'zero' or {{ area = {{ "
                                     f"\"2022-23\" = pounds }} }}, got {bridge!r}")
    thr = raw.get("thresholds", [0.0])
    thr = [thr] if not isinstance(thr, list) else thr
    if not thr:
        raise ctx.fail("dsg.thresholds", "expected at least one deficit size in pounds")
    thresholds = tuple(_num(ctx, v, f"dsg.thresholds[{i}]", 0.0, None, "pounds >= 0")
                       for i, v in enumerate(thr))
    return Dsg(
        opening=opening,
        opening_year=(None if "opening_year" not in raw
                      else _fy(ctx, raw["opening_year"], "dsg.opening_year")),
        balances=None if "balances" not in raw else _path(ctx, raw["balances"], "dsg.balances",
                                                          builtin=False),
        allocations=(None if "allocations" not in raw
                     else _path(ctx, raw["allocations"], "dsg.allocations", builtin=False)),
        income=_by_area_year(ctx, raw.get("income", {}), "dsg.income", 0.0),
        growth=(_growth(ctx, raw["growth"], "dsg.growth") if "growth" in raw
                else Growth(path=Inflation(rate=0.0))),
        bridge=bridge,
        override_end=_override_end(ctx, raw),
        thresholds=tuple(sorted(set(thresholds))),
        description=_str(ctx, raw.get("description", ""), "dsg.description"),
    )


def _scenarios(ctx: toml.Ctx, raw: Any, items: tuple[CostItem, ...]) -> dict[str, ScenarioCosts]:
    names = [it.name for it in items]
    out = {}
    for name, sc in toml.table(ctx, raw, "scenarios").items():
        key = f"scenarios.{name}"
        sc = toml.table(ctx, sc, key)
        toml.check_keys(ctx, sc, key, ("unit", "inflation"))
        unit = {}
        for item, v in toml.table(ctx, sc.get("unit", {}), f"{key}.unit").items():
            if item not in names:
                raise ctx.fail(f"{key}.unit.{item}", f"no cost item {item!r}; expected one of "
                                                     f"{names}")
            unit[item] = _num(ctx, v, f"{key}.unit.{item}", 0.0, 100.0,
                              "a multiplier of the unit cost (1 = unchanged)")
        infl = (None if "inflation" not in sc
                else _inflation(ctx, sc["inflation"], f"{key}.inflation"))
        out[name] = ScenarioCosts(unit=unit, inflation=infl)
    return out


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
    ctx = toml.Ctx(source_path)
    text = text.removeprefix(toml.BOM)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source_path}: not valid TOML: {exc}") from None
    toml.check_keys(ctx, raw, "", ("description", "prices", "costs", "budget", "council", "dsg",
                                   "scenarios"))
    prices = toml.table(ctx, raw.get("prices", {}), "prices")
    toml.check_keys(ctx, prices, "prices", ("base", "basis", "inflation", "correlation"))
    if "base" not in prices:
        raise ctx.fail("prices.base", "missing: the price base as a financial year, e.g. "
                                      "'2021-22'")
    base_year = _fy(ctx, prices["base"], "prices.base")
    basis = prices.get("basis", "constant")
    if basis not in ("nominal", "constant"):
        raise ctx.fail("prices.basis", f"expected 'nominal' or 'constant', got {basis!r}")
    inflation = (_inflation(ctx, prices["inflation"], "prices.inflation")
                 if "inflation" in prices else Inflation(rate=0.0))
    costs = toml.table(ctx, raw.get("costs", {}), "costs")
    if not costs:
        raise ctx.fail("costs", "expected at least one item, e.g. [costs.special_state]")
    items = tuple(_item(ctx, name, v) for name, v in costs.items())
    council = _council(ctx, raw["council"]) if "council" in raw else None
    if council is None:
        for it in items:
            if it.council_unit is not None:
                raise ctx.fail(f"costs.{it.name}.council_unit", "needs a [council] table (e.g. "
                               "unit_costs = 'builtin') saying where councils' unit costs are")
    correlation = (0.0 if "correlation" not in prices else
                   _num(ctx, prices["correlation"], "prices.correlation", 0.0, 1.0,
                        "a correlation in [0, 1] between items' unit-cost draws"))
    return CostConfig(
        price_base=prices["base"], base_year=base_year, basis=basis, inflation=inflation,
        items=items, budget=_budget(ctx, raw["budget"]) if "budget" in raw else None,
        source_path=source_path, text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        description=_str(ctx, raw.get("description", ""), "description"),
        council=council,
        dsg=_dsg(ctx, raw["dsg"]) if "dsg" in raw else None,
        correlation=correlation,
        scenarios=_scenarios(ctx, raw["scenarios"], items) if "scenarios" in raw else {},
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
