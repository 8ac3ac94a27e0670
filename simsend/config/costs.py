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
    toml.check_keys(ctx, raw, key, ("dist", *DISTS[kind]))
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
              "inflation", "in_budget")


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
    toml.check_keys(ctx, raw, "", ("description", "prices", "costs", "budget"))
    prices = toml.table(ctx, raw.get("prices", {}), "prices")
    toml.check_keys(ctx, prices, "prices", ("base", "basis", "inflation"))
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
