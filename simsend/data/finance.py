r"""Council finance: the shipped high-needs money files, their checked readers and unit costs.

Six tidy CSV files live in ``simsend/data/builtin/finance`` (sources, releases and every
change in its ``PROVENANCE.md``; run ``python -m simsend.data.finance SRC_DIR`` to rebuild
them from the published files).  Every file names councils by the GSS ``area`` code of
``areas.csv`` (England ``E92000001``; a former council under its own code) and financial
years as ``"YYYY-YY"``:

============================  ==============================================================
file                          columns
============================  ==============================================================
``hn_allocations.csv``        ``financial_year, area, high_needs_gbp,
                              high_needs_after_deductions_gbp, dsg_gbp,
                              dsg_after_deductions_gbp`` (ESFA DSG allocations 2019-20 to
                              2021-22; "before deductions" = before academy recoupment and
                              ESFA's direct funding of high-needs places)
``dsg_balances.csv``          ``financial_year, area, cumulative_balance_gbp`` and, in the
                              shipped file, ``cumulative_balance_pct, dsg_income_gbp``: the
                              DSG cumulative balance at 31 March (negative = deficit)
``hn_outturn.csv``            ``financial_year, area, line, outturn_gbp`` (s251 high-needs
                              outturn 2021-22 by line, :data:`OUTTURN_LINES`)
``specialist_spend.csv``      ``financial_year, area, sector, spend_gbp`` (spend on state and
                              on independent / non-maintained special placements, 2018-19 to
                              2021-22)
``lait_weekly_unit_costs.csv`` ``financial_year, area, gbp_per_week, flag`` (LAIT "SEN -
                              S251/Outturn weekly unit costs", 2015-16 to 2021-22)
``unit_costs.csv``            ``area, key, price_base, median, low, high, pupils, spread,
                              note``: each council's unit cost per :data:`UNIT_KEYS`, derived
                              by :func:`derive_unit_costs` (empty median: no figure of the
                              council's own, England's applies)
``transport_spend.csv``       ``financial_year, area, spend_gbp, scope, source``: SEND
                              transport spend (England, LGA/Isos 2025: 2015-16 and 2023-24;
                              entered by hand, not rebuilt by :func:`build_finance`), re-based
                              per eligible pupil by :func:`transport_rebase`
============================  ==============================================================

A council replaces a file with its own in the same format (a cost file's ``[council]
unit_costs`` and ``[dsg] balances`` / ``allocations`` name it); the readers check it and stop
at the first problem with a :class:`~simsend.data.errors.DataError` naming the file, row
(header = row 1), column, value and what was expected.

**Unit costs** (:func:`derive_unit_costs`, price base 2021-22, spend of financial year
2021-22 over the January 2022 EHC-plan caseload of SEN2 by placement, as
``configs/costs/england_2021_22.toml`` does for England):

.. math::

    u_{a,k} = f_k + S_{a,k} / N_{a,k}, \qquad
    \sigma_{a,k} = \mathrm{clip}\big(\mathrm{sd}_t \log(r_{a,t} / r_{E,t}),\;
    \sigma_{\min}, \sigma_{\max}\big),

where ``S`` is the council's spend on the key's outturn lines, ``N`` its pupils, ``f`` the
national place funding added (:data:`PLACE_FUNDING`), and ``r`` a yearly ratio of the
council's own (``specialist_spend / SEN2 pupils`` for the two special-school keys, 2018-19 to
2021-22; the LAIT weekly unit cost for the others, 2015-16 to 2021-22) against England's,
so ``sigma`` is how far the council's figures move from year to year beyond the national
change.  ``low``/``high`` are ``u exp(-/+ 1.645 sigma)`` (a 90% range of a lognormal).  A
council keeps England's unit cost for a key when it has fewer than :data:`MIN_PUPILS`
pupils, no spend on the key's lines, or a figure outside :data:`PLAUSIBLE` times England's
(its accounts book the spend to other lines than SEN2 counts the pupils in).

**Places** (:func:`funded_places`): the places a council funds in its maintained special
schools and resourced provision, its place funding over the national rate a place.
**Transport** (:func:`transport_rebase`): SEND transport spend per eligible pupil and its
growth between the published years.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simsend.data.errors import DataError, cell_error
from simsend.data.geography import closest_area, old_code_map

ENGLAND = "E92000001"
FINANCE_DIR = "finance"
"""Folder of the finance files inside ``simsend/data/builtin``."""
PRICE_BASE = "2021-22"
"""Financial year of the shipped unit costs' prices (cash of that year)."""

UNIT_KEYS = ("targeted", "targeted_plus", "mainstream", "inclusion_base", "special_state",
             "special_independent", "alternative_provision", "post16_fe", "specialist")
"""Unit-cost keys of ``unit_costs.csv``: a tier (``targeted``, ``targeted_plus``), a
placement of the specialist tier, or ``specialist`` (any placement, weighted by the
council's January 2022 placements)."""

OUTTURN_LINES = (
    "place_funding_early_years", "place_funding_primary", "place_funding_secondary",
    "place_funding_special", "place_funding_ap", "place_funding_post_school",
    "top_up_maintained_early_years", "top_up_maintained_primary",
    "top_up_maintained_secondary", "top_up_maintained_special", "top_up_maintained_ap",
    "top_up_maintained_post_school", "income_maintained",
    "top_up_independent_early_years", "top_up_independent_primary",
    "top_up_independent_secondary", "top_up_independent_special", "top_up_independent_ap",
    "top_up_independent_post_school", "income_independent",
    "sen_support_services", "ap_services", "hospital_education", "therapies",
)
"""Lines of ``hn_outturn.csv``: the s251 high-needs outturn lines (``income_*`` are income,
to be subtracted; the rest spend)."""

SECTORS = ("state", "independent")
"""Sectors of ``specialist_spend.csv``."""

PLACE_FUNDING = {"inclusion_base": 6000.0, "special_state": 10000.0,
                 "alternative_provision": 10000.0, "post16_fe": 6000.0}
"""National place funding a place (GBP) added to a council's top-up (ESFA high needs funding
operational guide 2021 to 2022: element 2 of GBP 10,000 in special schools and AP, GBP
6,000 in resourced provision and for high-needs students in FE)."""

MIN_PUPILS = 20
"""Fewest pupils behind a council's own unit cost (fewer: England's applies)."""
PLAUSIBLE = (1.0 / 3.0, 3.0)
"""A council's unit cost outside these multiples of England's is not used (England's is)."""
Z95 = 1.6448536269514722
SIGMA_MIN = math.log(1.15) / Z95
"""Narrowest spread of a council unit cost (90% range x/÷ 1.15, England's own width)."""
SIGMA_MAX = math.log(2.0) / Z95
"""Widest spread (90% range x/÷ 2): a council whose figures swing more is capped here."""
SIGMA_NONE = math.log(1.25) / Z95
"""Spread when the council has fewer than three years to measure its own (x/÷ 1.25)."""
TARGETED_PLUS_SHARE = 0.25
TARGETED_PLUS_RATIO = 3.0
"""As in the England cost file: a quarter of SEN support is targeted-plus, using 3 times the
services of a targeted pupil."""
OTHER_UNIT = 5000.0
"""Unit cost of an EHC plan in 'other' placements in the no-placement average (the England
file's mode: no public figure)."""


@dataclass(frozen=True)
class _Spec:
    """Columns of a finance file: name -> kind, required ones, and its key columns."""

    columns: Mapping[str, str]
    required: tuple[str, ...]
    key: tuple[str, ...]


SPECS = {
    "hn_allocations.csv": _Spec(
        {"financial_year": "fy", "area": "area", "high_needs_gbp": "gbp+",
         "high_needs_after_deductions_gbp": "gbp+?", "dsg_gbp": "gbp+?",
         "dsg_after_deductions_gbp": "gbp+?", "note": "str"},
        ("financial_year", "area", "high_needs_gbp"), ("financial_year", "area")),
    "dsg_balances.csv": _Spec(
        {"financial_year": "fy", "area": "area", "cumulative_balance_gbp": "gbp",
         "cumulative_balance_pct": "pct?", "dsg_income_gbp": "gbp+?", "note": "str"},
        ("financial_year", "area", "cumulative_balance_gbp"), ("financial_year", "area")),
    "hn_outturn.csv": _Spec(
        {"financial_year": "fy", "area": "area", "line": "line", "outturn_gbp": "gbp?"},
        ("financial_year", "area", "line", "outturn_gbp"), ("financial_year", "area", "line")),
    "specialist_spend.csv": _Spec(
        {"financial_year": "fy", "area": "area", "sector": "sector", "spend_gbp": "gbp+?"},
        ("financial_year", "area", "sector", "spend_gbp"),
        ("financial_year", "area", "sector")),
    "lait_weekly_unit_costs.csv": _Spec(
        {"financial_year": "fy", "area": "area", "gbp_per_week": "gbp+?", "flag": "str"},
        ("financial_year", "area", "gbp_per_week"), ("financial_year", "area")),
    "unit_costs.csv": _Spec(
        {"area": "area", "key": "key", "price_base": "fy", "median": "gbp+?", "low": "gbp+?",
         "high": "gbp+?", "pupils": "gbp+?", "spread": "str", "note": "str"},
        ("area", "key", "price_base", "median", "low", "high"), ("area", "key")),
    "transport_spend.csv": _Spec(
        {"financial_year": "fy", "area": "area", "spend_gbp": "gbp+", "scope": "str",
         "source": "str"},
        ("financial_year", "area", "spend_gbp"), ("financial_year", "area")),
}
"""Column kinds of each finance file (``?`` = may be empty)."""


# --------------------------------------------------------------------------- reading


def finance_dir() -> Path:
    """Folder of the shipped finance files."""
    from simsend.data.baseline import builtin_dir  # a sibling's helper, read lazily
    return builtin_dir() / FINANCE_DIR


def _areas() -> pd.DataFrame:
    from simsend.data.baseline import builtin_dir
    return pd.read_csv(builtin_dir() / "areas.csv", dtype=str, keep_default_na=False)


def _area_codes() -> frozenset[str]:
    """Return the codes a finance row may name.

    Every area of ``areas.csv`` but another code of a council (``status = "alias"``): no run
    has it, so its rows would never be read.
    """
    t = _areas()
    return frozenset(t.loc[t["status"] != "alias", "code"])


def _area_why(s: str) -> str:
    """Return what an ``area`` cell outside :func:`_area_codes` should be (and a close match)."""
    t = _areas()
    alias = t[(t["code"] == s) & (t["status"] == "alias")]
    if len(alias):
        target = alias["successors"].iloc[0].split(";")[0]
        return (f"expected {target}: {s} is another code of {alias['name'].iloc[0]}, which "
                f"simsend's data and runs call {target} (rows under {s} would never be read)")
    return ("expected a GSS area code of areas.csv (e.g. E10000016 for Kent, E92000001 for "
            f"England; {closest_area(s, t)})")



def _fy_ok(s: str) -> bool:
    return (len(s) == 7 and s[:4].isdigit() and s[4] == "-" and s[5:].isdigit()
            and (int(s[:4]) + 1) % 100 == int(s[5:]))


def _cell(kind: str, s: str, codes: frozenset[str]) -> tuple[object, str | None]:
    """Parse one cell: (value, None) or (None, what was expected)."""
    base, empty_ok = kind.rstrip("?"), kind.endswith("?")
    if base in ("gbp", "gbp+", "pct"):
        if s == "":
            return (np.nan, None) if empty_ok else (None, "expected a number (pounds), "
                                                          "not an empty cell")
        try:
            x = float(s.replace(",", ""))
        except ValueError:
            x = math.nan
        if not math.isfinite(x):
            return None, ("expected a percentage" if base == "pct" else "expected pounds as a "
                          "number (no currency sign)") + (" or an empty cell" if empty_ok else "")
        if base == "gbp+" and x < 0:
            return None, "expected pounds >= 0"
        if base == "pct" and not -100.0 <= x <= 100.0:
            return None, "expected a percentage between -100 and 100"
        return x, None
    if base == "fy":
        return (s, None) if _fy_ok(s) else (None, "expected a financial year such as "
                                                  "'2021-22'")
    if base == "area":
        return (s, None) if s in codes else (None, _area_why(s))
    allowed = {"line": OUTTURN_LINES, "sector": SECTORS, "key": UNIT_KEYS}.get(base)
    if allowed is not None and s not in allowed:
        return None, f"expected one of {list(allowed)}"
    return s, None


def read_finance(name: str, path: str | Path | None = None) -> pd.DataFrame:
    """Read one finance file (default: the shipped one), checked.

    Parameters
    ----------
    name : str
        Which file: a key of :data:`SPECS` (e.g. ``"dsg_balances.csv"``).
    path : path, optional
        A file in that format (a council's own); default the shipped file.

    Returns
    -------
    DataFrame
        The file's columns; pounds and percentages as float64 (NaN = empty), the rest str.

    Raises
    ------
    DataError
        Unreadable file, a missing column, a bad value, or a key given twice; the message
        names the file, row (header = row 1), column and the expected value.

    Examples
    --------
    >>> df = read_finance("hn_allocations.csv")
    >>> int(df.loc[(df.area == "E92000001") & (df.financial_year == "2021-22"),
    ...            "high_needs_gbp"].iloc[0])
    7906348577

    """
    if name not in SPECS:
        raise ValueError(f"unknown finance file {name!r}; expected one of {list(SPECS)}")
    spec = SPECS[name]
    path = Path(path) if path is not None else finance_dir() / name
    file = str(path) if path.parent != finance_dir() else name
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{file}: file not found") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot be read as CSV: {exc}") from None
    missing = [c for c in spec.required if c not in raw.columns]
    if missing:
        raise DataError(f"{file}: missing column(s) {missing} (expected {list(spec.required)}"
                        f", optionally {[c for c in spec.columns if c not in spec.required]})")
    codes = _area_codes()
    out = {}
    for col, kind in spec.columns.items():
        if col not in raw.columns:
            continue
        vals = []
        for i, v in enumerate(raw[col]):
            x, why = _cell(kind, v.strip(), codes)
            if why is not None:
                raise cell_error(file, i + 2, col, v, why)
            vals.append(x)
        out[col] = (np.asarray(vals, np.float64) if kind.rstrip("?") in ("gbp", "gbp+", "pct")
                    else pd.array(vals, dtype=object))
    df = pd.DataFrame(out)
    dup = np.flatnonzero(df.duplicated(list(spec.key)).to_numpy())
    if len(dup):
        i = int(dup[0])
        raise cell_error(file, i + 2, spec.key[-1], df[spec.key[-1]].iloc[i],
                    f"{dict(zip(spec.key, df.loc[i, list(spec.key)], strict=True))} "
                    f"given twice")
    _check_rows(name, df, file)
    return df


def _check_rows(name: str, df: pd.DataFrame, file: str) -> None:
    """Check the columns of one row against each other."""
    if name == "dsg_balances.csv" and {"cumulative_balance_pct", "dsg_income_gbp"} <= set(df):
        implied = df["cumulative_balance_pct"] / 100.0 * df["dsg_income_gbp"]
        bad = np.flatnonzero((abs(implied - df["cumulative_balance_gbp"])
                              > np.maximum(1000.0, 0.005 * abs(implied))).to_numpy())
        if len(bad):
            i = int(bad[0])
            raise cell_error(file, i + 2, "cumulative_balance_gbp", df["cumulative_balance_gbp"][i],
                        f"expected cumulative_balance_pct x dsg_income_gbp / 100 = "
                        f"{implied[i]:,.0f} (within 0.5%)")
    if name == "unit_costs.csv":
        for i, r in enumerate(df.itertuples()):
            vals = (r.median, r.low, r.high)
            if all(np.isnan(v) for v in vals):
                continue
            if any(np.isnan(v) for v in vals):
                raise cell_error(file, i + 2, "median", r.median, "expected median, low and high "
                            "all given (a council figure) or all empty (England's applies)")
            if not 0.0 < r.low < r.median < r.high:
                raise cell_error(file, i + 2, "low", r.low, f"expected 0 < low < median < high "
                            f"(median {r.median:g}, high {r.high:g})")
            half = 0.5 * math.log(r.high / r.low)
            if abs(math.log(r.median) - 0.5 * math.log(r.low * r.high)) > 0.05 * half:
                raise cell_error(file, i + 2, "median", r.median,
                            f"expected the median of a lognormal whose 90% range is low-high, "
                            f"sqrt(low x high) = {math.sqrt(r.low * r.high):.2f}")


def unit_cost_table(path: str | Path | None = None) -> dict[tuple[str, str], tuple[float, ...]]:
    """Return ``{(area, key): (median, low, high)}`` of a unit-cost file's council figures.

    Rows with an empty median (England's applies) are left out.  ``path`` defaults to the
    shipped ``unit_costs.csv``; its ``price_base`` must be one financial year throughout.

    Examples
    --------
    >>> t = unit_cost_table()
    >>> t[("E10000016", "special_state")][0] > 10000
    True

    """
    df = read_finance("unit_costs.csv", path)
    bases = sorted(set(df["price_base"]))
    if len(bases) > 1:
        raise DataError(f"{path or 'unit_costs.csv'}: column 'price_base': one price base "
                        f"expected for the whole file, got {bases}")
    return {(r.area, r.key): (r.median, r.low, r.high) for r in df.itertuples()
            if not np.isnan(r.median)}


def unit_cost_price_base(path: str | Path | None = None) -> str:
    """Price base (financial year) of a unit-cost file (the shipped one: ``2021-22``)."""
    df = read_finance("unit_costs.csv", path)
    return str(df["price_base"].iloc[0]) if len(df) else PRICE_BASE


# --------------------------------------------------------------------------- transport


@dataclass(frozen=True)
class TransportBase:
    """SEND transport spend re-based per eligible pupil (:func:`transport_rebase`).

    ``years`` are the financial years with a published spend, ``spend`` their pounds,
    ``eligible`` the eligible pupils (January EHC plans by placement times the shares),
    ``unit`` = ``spend / eligible`` and ``growth`` the annual growth of ``unit`` from the
    first year to the last (cash: the spend is not deflated).
    """

    area: str
    years: tuple[str, ...]
    spend: tuple[float, ...]
    eligible: tuple[float, ...]
    unit: tuple[float, ...]
    growth: float

    def unit_at(self, fy: str) -> float:
        """Return the unit cost of financial year ``fy``: the last year's, moved at ``growth``.

        Examples
        --------
        >>> t = TransportBase("E92000001", ("2015-16", "2017-18"), (1.0, 1.21), (1.0, 1.0),
        ...                   (1.0, 1.21), 0.1)
        >>> round(t.unit_at("2016-17"), 6)
        1.1

        """
        gap = int(fy[:4]) - int(self.years[-1][:4])
        return self.unit[-1] * (1.0 + self.growth) ** gap


def transport_rebase(shares: Mapping[str, float], area: str = ENGLAND,
                     path: str | Path | None = None,
                     stock: pd.DataFrame | None = None) -> TransportBase:
    r"""Re-base SEND transport spend to a cost per eligible pupil, and its growth.

    For each financial year ``t`` of ``transport_spend.csv`` with a spend ``S_t`` for
    ``area``, the eligible pupils are the January EHC plans inside that year (census year
    ``t + 1``) by placement ``p`` times the eligibility shares, and

    .. math::

        u_t = S_t \Big/ \sum_p s_p N_{p,t}, \qquad
        g = (u_{\mathrm{last}} / u_{\mathrm{first}})^{1 / (\mathrm{last} - \mathrm{first})} - 1.

    Parameters
    ----------
    shares : mapping of str to float
        Eligible share of EHC plans by placement (the cost file's transport shares).
    area : str
        GSS code (default England).
    path : path, optional
        A spend file in the ``transport_spend.csv`` format (a council's own s251 SEN
        transport lines); default the shipped one.
    stock : DataFrame, optional
        January caseloads (``stock.csv.gz`` format); default the builtin one.

    Returns
    -------
    TransportBase

    Raises
    ------
    DataError
        A malformed spend file, fewer than two years for ``area``, an unknown placement in
        ``shares``, or a year without caseloads.

    Examples
    --------
    >>> t = transport_rebase({"special_state": 0.6})  # doctest: +SKIP
    >>> t.years  # doctest: +SKIP
    ('2015-16', '2023-24')

    """
    from simsend.data.baseline import builtin_dir  # a sibling's helper, read lazily
    df = read_finance("transport_spend.csv", path)
    file = "transport_spend.csv" if path is None else str(path)
    df = df[df["area"] == area].sort_values("financial_year")
    if len(df) < 2:
        raise DataError(f"{file}: {area} has {len(df)} year(s) of spend_gbp; two or more are "
                        "needed to estimate the growth")
    if stock is None:
        stock = pd.read_csv(builtin_dir() / "stock.csv.gz", dtype={"year": int, "count": float})
    years, spend, eligible, unit = [], [], [], []
    for fy, s in zip(df["financial_year"], df["spend_gbp"], strict=True):
        n = _caseload(stock, int(fy[:4]) + 1)
        bad = sorted(set(shares) - set(n.columns))
        if area not in n.index or bad:
            raise DataError(f"{file}: no January {int(fy[:4]) + 1} EHC plans for {area}"
                            + (f" in placement(s) {bad}" if bad else ""))
        e = float(sum(float(n.loc[area, p]) * float(v) for p, v in shares.items()))
        years.append(str(fy))
        spend.append(float(s))
        eligible.append(e)
        unit.append(float(s) / e)
    span = int(years[-1][:4]) - int(years[0][:4])
    growth = (unit[-1] / unit[0]) ** (1.0 / span) - 1.0
    return TransportBase(area, tuple(years), tuple(spend), tuple(eligible), tuple(unit), growth)


# --------------------------------------------------------------------------- places


FUNDED_PLACE_LINES = {
    "special_state": (("place_funding_special",), PLACE_FUNDING["special_state"]),
    "inclusion_base": (("place_funding_early_years", "place_funding_primary",
                        "place_funding_secondary"), PLACE_FUNDING["inclusion_base"]),
}
"""Outturn lines of a placement's place funding and the pounds a place (:data:`PLACE_FUNDING`)
that :func:`funded_places` divides them by."""


def funded_places(path: str | Path | None = None, fy: str = PRICE_BASE) -> pd.DataFrame:
    r"""Places a council funds in its maintained schools, from its high-needs place funding.

    ``places = sum(lines) / pounds a place`` (:data:`FUNDED_PLACE_LINES`): state special
    places from the special-school place funding at GBP 10,000 a place; resourced-provision
    and SEN-unit places from the mainstream (early years, primary, secondary) place funding at
    GBP 6,000 a place.  Lower bounds, not capacity: academies' and free schools' places are
    funded by ESFA and are not in a council's outturn; places are where the schools are (a
    council funds places its neighbours' pupils fill); an empty resourced-provision place is
    funded at GBP 10,000, not 6,000, so those places are over-counted by at most 10/6.

    Parameters
    ----------
    path : path, optional
        An outturn file in the ``hn_outturn.csv`` format; default the shipped one.
    fy : str
        Financial year (the shipped outturn: ``"2021-22"``).

    Returns
    -------
    DataFrame
        ``area, placement, financial_year, places`` (float), one row per council and
        placement with outturn in ``fy``; no England row (sum the councils).

    Examples
    --------
    >>> p = funded_places()
    >>> round(p.loc[(p.area == "E10000016") & (p.placement == "special_state"), "places"]
    ...       .item())
    5008

    """
    df = read_finance("hn_outturn.csv", path)
    o = df[df["financial_year"] == fy].pivot_table(index="area", columns="line",
                                                  values="outturn_gbp", aggfunc="sum")
    rows = []
    for placement, (lines, per_place) in FUNDED_PLACE_LINES.items():
        got = o.reindex(columns=list(lines)).fillna(0.0).sum(axis=1) / per_place
        rows += [(a, placement, fy, float(v)) for a, v in got.items() if a != ENGLAND]
    return pd.DataFrame(rows, columns=["area", "placement", "financial_year", "places"])


# --------------------------------------------------------------------------- building


_LINE_COLUMNS = {
    "place_funding_early_years": "Early Years", "place_funding_primary": "Primary",
    "place_funding_secondary": "Secondary",
    "place_funding_special": "Special schools and academies",
    "place_funding_ap": "PRUs and AP academies", "place_funding_post_school": "Post School",
    **{f"top_up_maintained_{k}": f"{v} (1)" for k, v in (
        ("early_years", "Early Years"), ("primary", "Primary"), ("secondary", "Secondary"),
        ("special", "Special schools and academies"), ("ap", "PRUs and AP academies"),
        ("post_school", "Post School"))},
    "income_maintained": "Income (1)",
    **{f"top_up_independent_{k}": f"{v} (2)" for k, v in (
        ("early_years", "Early Years"), ("primary", "Primary"), ("secondary", "Secondary"),
        ("special", "Special schools and academies"), ("ap", "PRUs and AP academies"),
        ("post_school", "Post School"))},
    "income_independent": "Income (2)",
    "sen_support_services": "SEN support and inclusion services",
    "ap_services": "Alternative provision services",
    "hospital_education": "Hospital education services",
    "therapies": "Therapies and other health related services",
}


def _maps(areas: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    """Old three-digit LA number -> GSS (current councils first); lower-case name -> GSS."""
    by_old = old_code_map(areas)
    by_name: dict[str, str] = {}
    for r in areas.sort_values("status", key=lambda s: s != "current").itertuples():
        if r.level == "la" and r.status != "alias":
            by_name.setdefault(str(r.name).lower(), r.code)
    by_name["england"] = ENGLAND
    return by_old, by_name


def _old(code: str) -> str:
    return str(int(float(code)))


def build_finance(src: str | Path, areas: pd.DataFrame,
                  stock: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Return the tidy finance tables, by file name, from the published files in ``src``.

    Parameters
    ----------
    src : path
        Folder holding the published files named in ``PROVENANCE.md`` (the project's
        ``shared/data/finance``).
    areas : DataFrame
        ``simsend/data/builtin/areas.csv``.
    stock : DataFrame
        ``simsend/data/builtin/stock.csv.gz`` (January caseloads by placement; the unit
        costs' pupils).

    Returns
    -------
    dict of DataFrame
        One table per file of :data:`SPECS`.

    Raises
    ------
    DataError
        A council that cannot be placed on ``areas.csv``, or a DSG balance without income.

    """
    src = Path(src)
    by_old, by_name = _maps(areas)

    def code_of_old(v: str, file: str) -> str:
        if v.upper() == "ENGLAND" or _old(v) == "970":
            return ENGLAND
        if _old(v) not in by_old:
            raise DataError(f"{file}: LA code {v!r} is not in areas.csv")
        return by_old[_old(v)]

    def code_of_name(v: str, file: str) -> str:
        if v.lower() not in by_name:
            raise DataError(f"{file}: council {v!r} is not in areas.csv")
        return by_name[v.lower()]

    f = "dsg_allocations_la_2019_20_to_2021_22.csv"
    a = pd.read_csv(src / f, dtype=str)
    a = a[a["level"].isin(["National", "Local authority"])]
    alloc = pd.DataFrame({
        "financial_year": a["financial_year"],
        "area": [code_of_old(v, f) for v in a["la_code"]],
        "high_needs_gbp": a["high_needs_block_before_deductions_gbp"].astype(float).round(),
        "high_needs_after_deductions_gbp":
            a["high_needs_block_after_deductions_gbp"].astype(float).round(),
        "dsg_gbp": a["total_dsg_before_deductions_gbp"].astype(float).round(),
        "dsg_after_deductions_gbp": a["total_dsg_after_deductions_gbp"].astype(float).round(),
    })

    f = "dsg_cumulative_balance_pct_la_2019_20_to_2021_22.csv"
    b = pd.read_csv(src / f, dtype={"la_name": str})
    b = b[b["geographic_level"].isin(["National", "Local authority"])]
    bal = pd.DataFrame({
        "financial_year": b["financial_year"].to_numpy(),
        "area": [ENGLAND if lvl == "National" else code_of_name(n, f)
                 for lvl, n in zip(b["geographic_level"], b["la_name"], strict=True)],
        "cumulative_balance_pct":
            b["DSG cumulative balance as a % of the total income"].astype(float).to_numpy(),
    })
    income = alloc.set_index(["financial_year", "area"])["dsg_gbp"]
    key = pd.MultiIndex.from_frame(bal[["financial_year", "area"]])
    bal["dsg_income_gbp"] = income.reindex(key).to_numpy()
    if bal["dsg_income_gbp"].isna().any():
        r = bal[bal["dsg_income_gbp"].isna()].iloc[0]
        raise DataError(f"{f}: no DSG allocation for {r.area} in {r.financial_year}")
    bal["cumulative_balance_gbp"] = (bal["cumulative_balance_pct"] / 100.0
                                     * bal["dsg_income_gbp"]).round()
    bal = bal[["financial_year", "area", "cumulative_balance_gbp", "cumulative_balance_pct",
               "dsg_income_gbp"]]
    alloc = _apportion(alloc, ["high_needs_gbp", "high_needs_after_deductions_gbp", "dsg_gbp",
                               "dsg_after_deductions_gbp"], areas, stock)
    bal = _apportion(bal, ["cumulative_balance_gbp", "dsg_income_gbp"], areas, stock)

    f = "high_needs_benchmarking_outturn_2021_22_la.csv"
    h = pd.read_csv(src / f, dtype=str)
    rows = []
    for _, r in h.iterrows():
        cols = [f"s251_outturn_gbp | {c}" for c in _LINE_COLUMNS.values()]
        if pd.to_numeric(r[cols], errors="coerce").isna().all():
            continue  # a council that no longer existed in 2021-22 (Bournemouth, Poole...)
        area = code_of_old(r["la_code"], f)
        for line, col in _LINE_COLUMNS.items():
            v = r[f"s251_outturn_gbp | {col}"]
            rows.append((r["financial_year"], area, line, float(v) if v == v else np.nan))
    out = pd.DataFrame(rows, columns=["financial_year", "area", "line", "outturn_gbp"])
    out["outturn_gbp"] = out["outturn_gbp"].round(2)

    f = "inclusion_dashboard_specialist_spend_la_2018_19_to_2021_22.csv"
    s = pd.read_csv(src / f, dtype={"la_name": str})
    nat = pd.read_csv(src / "inclusion_dashboard_specialist_spend_national_2018_19_to_2021_22.csv")
    sector = {"State": "state", "Independent or non-maintained": "independent"}
    s = s[s["category"].isin(list(sector))]
    nat = nat[nat["category"].isin(list(sector))]
    spec = pd.concat([
        pd.DataFrame({"financial_year": nat["year"], "area": ENGLAND,
                      "sector": nat["category"].map(sector), "spend_gbp": nat["total_spend"]}),
        pd.DataFrame({"financial_year": s["year"],
                      "area": [code_of_name(n, f) for n in s["la_name"]],
                      "sector": s["category"].map(sector), "spend_gbp": s["total_spend"]}),
    ], ignore_index=True)

    f = "lait_sen_weekly_unit_cost_la_2015_16_to_2021_22.csv"
    lt = pd.read_csv(src / f, dtype=str)
    lt = lt[[(_old(v) == "970" or _old(v) in by_old) for v in lt["la_number"]]]
    val = pd.to_numeric(lt["value"], errors="coerce")
    lait = pd.DataFrame({
        "financial_year": lt["years_label"].str[:7].to_numpy(),
        "area": [code_of_old(v, f) for v in lt["la_number"]],
        "gbp_per_week": val.to_numpy(),
        "flag": np.where(val.isna(), "not_available", ""),
    })
    # a council renamed or merged keeps one row a year: drop LAIT's unpublished duplicates
    lait = lait.sort_values("gbp_per_week", na_position="last").drop_duplicates(
        ["financial_year", "area"]).sort_values(["area", "financial_year"])

    tables = {"hn_allocations.csv": alloc, "dsg_balances.csv": bal, "hn_outturn.csv": out,
              "specialist_spend.csv": spec, "lait_weekly_unit_costs.csv": lait}
    tables = {k: v.sort_values(list(SPECS[k].key), kind="stable").reset_index(drop=True)
              for k, v in tables.items()}
    tables["unit_costs.csv"] = derive_unit_costs(tables, stock, areas)
    return tables


def _apportion(df: pd.DataFrame, cols: list[str], areas: pd.DataFrame,
               stock: pd.DataFrame) -> pd.DataFrame:
    """Add rows for the successors of a former council in years only the former one has.

    Each of ``cols`` is split by the successors' shares of EHC plans at the January census of
    the financial year (``stock.csv.gz``, itself on current geography); a ``note`` says so.
    """
    plans = stock[(stock["plan"] == "ehcp") & (stock["age_group"] == "all")
                  & (stock["age"] == "all") & (stock["need"] == "all")
                  & (stock["placement"] == "all")]
    plans = plans.set_index(["area", plans["year"].astype(int)])["count"]
    df = df.assign(note="")
    new = []
    for r in areas[areas["status"] == "former"].itertuples():
        succ = [x for x in str(r.successors).split(";") if x]
        for fy in sorted(set(df["financial_year"])):
            rows = df[df["financial_year"] == fy]
            old = rows[rows["area"] == r.code]
            if old.empty or rows["area"].isin(succ).any():
                continue
            cy = int(fy[:4]) + 1
            n = np.array([plans.get((x, cy), np.nan) for x in succ], float)
            if not np.isfinite(n).all() or n.sum() <= 0:
                raise DataError(f"no EHC plans of {succ} in January {cy} to apportion "
                                f"{r.code}'s {fy} finance between them")
            for x, share in zip(succ, n / n.sum(), strict=True):
                row = old.iloc[0].copy()
                row["area"] = x
                for c in cols:
                    row[c] = round(float(row[c]) * share)
                row["note"] = (f"apportioned from {r.code} ({r.name}) by its successors' EHC "
                               f"plans, January {cy} (share {share:.4f})")
                new.append(row)
    return pd.concat([df, pd.DataFrame(new)], ignore_index=True) if new else df


# --------------------------------------------------------------------------- unit costs


def _caseload(stock: pd.DataFrame, year: int) -> pd.DataFrame:
    """January EHC plans by area (rows) and placement (columns), plus ``sen_support``."""
    s = stock[(stock["year"].astype(int) == year) & (stock["age_group"] == "all")
              & (stock["age"] == "all") & (stock["need"] == "all")]
    e = s[s["plan"] == "ehcp"].pivot_table(index="area", columns="placement", values="count",
                                           aggfunc="sum")
    e["sen_support"] = (s[s["plan"] == "sen_support"].set_index("area")["count"]
                        .reindex(e.index))
    return e.astype(float)


def _spread(series: pd.DataFrame, value: str, area: str) -> tuple[float, int]:
    """Return the sd over years of log(council / England) of a ratio (nan: < 3 years)."""
    eng = series[series["area"] == ENGLAND].set_index("financial_year")[value]
    own = series[series["area"] == area].set_index("financial_year")[value]
    r = np.log(own / eng.reindex(own.index))
    r = r[np.isfinite(r)]
    return (float(r.std(ddof=1)), len(r)) if len(r) >= 3 else (math.nan, len(r))


def derive_unit_costs(tables: Mapping[str, pd.DataFrame], stock: pd.DataFrame,
                      areas: pd.DataFrame) -> pd.DataFrame:
    """Each council's unit cost per :data:`UNIT_KEYS`, with a lognormal 90% range.

    Parameters
    ----------
    tables : mapping of DataFrame
        ``hn_outturn.csv``, ``specialist_spend.csv`` and ``lait_weekly_unit_costs.csv`` as
        read by :func:`read_finance` (or built by :func:`build_finance`).
    stock : DataFrame
        The builtin stock (``year, area, plan, age_group, age, need, placement, count``).
    areas : DataFrame
        ``areas.csv``: a current council without figures of its own (split from a former
        council after 2021-22, e.g. Cumberland) takes its predecessor's ratios.

    Returns
    -------
    DataFrame
        Columns of ``unit_costs.csv``; formula and rules in the module docstring.

    """
    fy, year = PRICE_BASE, int(PRICE_BASE[:4]) + 1
    out = tables["hn_outturn.csv"]
    out = out[out["financial_year"] == fy].pivot_table(index="area", columns="line",
                                                       values="outturn_gbp", aggfunc="sum")
    spec = tables["specialist_spend.csv"]
    lait = tables["lait_weekly_unit_costs.csv"]
    n = _caseload(stock, year)
    # a council split after 2021-22 (Cumbria): its figures over its successors' pupils
    pred = {}
    for r in areas[areas["status"] == "former"].itertuples():
        succ = str(r.successors).split(";")
        if r.code in out.index and not any(s in out.index for s in succ):
            n.loc[r.code] = n.reindex(succ).sum(min_count=1)
            pred.update({s: r.code for s in succ})
    eng = out.sum()

    def units(o: pd.Series, c: pd.Series, area: str) -> dict[str, tuple[float, float, str]]:
        """Return key -> (unit cost, pupils, why not usable or '')."""
        ms = (o["top_up_maintained_early_years"] + o["top_up_maintained_primary"]
              + o["top_up_maintained_secondary"])
        nms = c["mainstream"] + c["inclusion_base"]
        ind = spec[(spec["area"] == area) & (spec["financial_year"] == fy)
                   & (spec["sector"] == "independent")]["spend_gbp"]
        p16 = o["top_up_maintained_post_school"] + o["top_up_independent_post_school"]
        denom = c["sen_support"] * ((1 - TARGETED_PLUS_SHARE) + TARGETED_PLUS_SHARE
                                    * TARGETED_PLUS_RATIO)
        res = {
            "targeted": (o["sen_support_services"], denom, c["sen_support"], 0.0),
            "mainstream": (ms, nms, nms, 0.0),
            "special_state": (o["top_up_maintained_special"], c["special_state"],
                              c["special_state"], PLACE_FUNDING["special_state"]),
            "special_independent": (ind.iloc[0] if len(ind) else math.nan,
                                    c["special_independent"], c["special_independent"], 0.0),
            "post16_fe": (p16, c["post16_fe"], c["post16_fe"], PLACE_FUNDING["post16_fe"]),
        }
        got = {}
        for k, (s, d, pupils, f) in res.items():
            why = ("" if pupils >= MIN_PUPILS and s > 0 and d > 0 else
                   f"fewer than {MIN_PUPILS} pupils" if not pupils >= MIN_PUPILS else
                   "no spend on the key's outturn lines")
            got[k] = (f + s / d if not why else math.nan, pupils, why)
        u, p, w = got["targeted"]
        got["targeted_plus"] = (TARGETED_PLUS_RATIO * u, p, w)
        u, p, w = got["mainstream"]
        for k in ("inclusion_base", "alternative_provision"):
            got[k] = (PLACE_FUNDING[k] + u, c[k], w)
        return got

    ref = units(eng, n.loc[ENGLAND], ENGLAND)
    lait_r = lait.rename(columns={"gbp_per_week": "r"})
    spec_r = spec.assign(cy=spec["financial_year"].str[:4].astype(int) + 1)
    rows = []
    current = areas[(areas["status"] == "current") & (areas["level"] == "la")]["code"]
    for area in current:
        src = pred.get(area, area)
        if src not in out.index:
            for k in UNIT_KEYS:
                rows.append((area, k, math.nan, math.nan, "", "no 2021-22 outturn"))
            continue
        got = units(out.loc[src], n.loc[src], src)
        sig = {}
        for sector, key in (("state", "special_state"), ("independent", "special_independent")):
            sp = spec_r[(spec_r["sector"] == sector) & spec_r["area"].isin([src, ENGLAND])]
            cnt = _yearly(stock, key, [src, ENGLAND], pred)
            sp = sp.assign(r=sp["spend_gbp"].to_numpy()
                           / cnt.reindex(pd.MultiIndex.from_frame(sp[["area", "cy"]])).to_numpy())
            sp = sp[sp["spend_gbp"] > 0]
            sig[key] = (*_spread(sp, "r", src), "specialist_spend / SEN2 pupils")
        lsig = (*_spread(lait_r, "r", src), "LAIT weekly unit cost")
        w_sum, w_sig, w_cost = 0.0, 0.0, 0.0
        for k in UNIT_KEYS:
            if k == "specialist":
                continue
            u, pupils, why = got[k]
            if not why and not PLAUSIBLE[0] <= u / ref[k][0] <= PLAUSIBLE[1]:
                why = (f"{u:,.0f} is {u / ref[k][0]:.2f} x England's {ref[k][0]:,.0f}, outside "
                       f"{PLAUSIBLE[0]:.2f}-{PLAUSIBLE[1]:.0f} x")
            s, years, what = sig.get(k, lsig)
            s_used = (SIGMA_NONE if math.isnan(s) else min(max(s, SIGMA_MIN), SIGMA_MAX))
            spread = (f"{what}, {years} years: sd {s:.3f}" if not math.isnan(s)
                      else f"fewer than 3 years of {what}: assumed")
            spread += ("" if math.isnan(s) or SIGMA_MIN <= s <= SIGMA_MAX
                       else " (raised to the floor)" if s < SIGMA_MIN else " (capped)")
            note = ("" if area == src else f"figures of {src}, its council in 2021-22")
            if why:
                rows.append((area, k, math.nan, pupils, "", "; ".join(
                    x for x in (f"England's applies: {why}", note) if x)))
                u, s_used = ref[k][0], SIGMA_MIN
            else:
                rows.append((area, k, (u, s_used), pupils, spread, note))
            if k in ("mainstream", "inclusion_base", "special_state", "special_independent",
                     "alternative_provision", "post16_fe"):
                w = n.loc[src].get(k, 0.0)
                w_sum, w_sig, w_cost = w_sum + w, w_sig + w * s_used, w_cost + w * u
        w = n.loc[src].get("other", 0.0)
        if w_sum + w > 0:
            u = (w_cost + w * OTHER_UNIT) / (w_sum + w)
            rows.append((area, "specialist", (u, max(SIGMA_MIN, w_sig / max(w_sum, 1.0))),
                         w_sum + w, "pupil-weighted mean of the placements' spreads",
                         "January 2022 placements; 'other' at GBP 5,000"))
        else:
            rows.append((area, "specialist", math.nan, 0.0, "", "no pupils"))
    recs = []
    for area, k, us, pupils, spread, note in rows:
        if isinstance(us, tuple):
            u, s = us
            med, lo, hi = round(u, 2), round(u * math.exp(-Z95 * s), 2), round(
                u * math.exp(Z95 * s), 2)
        else:
            med = lo = hi = math.nan
        recs.append((area, k, PRICE_BASE, med, lo, hi, pupils, spread, note))
    return pd.DataFrame(recs, columns=list(SPECS["unit_costs.csv"].columns))


def _yearly(stock: pd.DataFrame, placement: str, areas: list[str],
            pred: Mapping[str, str]) -> pd.Series:
    """January EHC plans in ``placement`` by (area, census year), successors summed."""
    s = stock[(stock["plan"] == "ehcp") & (stock["placement"] == placement)
              & (stock["age_group"] == "all") & (stock["age"] == "all")
              & (stock["need"] == "all")]
    back = {succ: old for succ, old in pred.items()}
    a = s["area"].map(lambda x: back.get(x, x))
    s = s.assign(area=a)
    s = s[s["area"].isin(areas)]
    return s.groupby(["area", s["year"].astype(int).rename("cy")])["count"].sum().astype(float)


# --------------------------------------------------------------------------- writing


def write_finance(tables: Mapping[str, pd.DataFrame], folder: str | Path) -> list[Path]:
    """Write each table to ``folder`` (a temporary file renamed, so never half-written)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in tables.items():
        path = folder / name
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        os.close(fd)
        try:
            df.to_csv(tmp, index=False, lineterminator="\n", float_format="%.15g")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        paths.append(path)
    return paths


def main(argv: list[str]) -> int:
    """``python -m simsend.data.finance SRC_DIR [OUT_DIR]``: rebuild the shipped files."""
    from simsend.data.baseline import builtin_dir
    if not 1 <= len(argv) <= 2:
        print("usage: python -m simsend.data.finance SRC_DIR [OUT_DIR]", file=sys.stderr)
        return 2
    out = Path(argv[1]) if len(argv) == 2 else finance_dir()
    try:
        tables = build_finance(argv[0], pd.read_csv(builtin_dir() / "areas.csv", dtype=str),
                               pd.read_csv(builtin_dir() / "stock.csv.gz",
                                           dtype={"year": int, "count": float}))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for p in write_finance(tables, out):
        read_finance(p.name, p)
        print(f"wrote {p}: {len(tables[p.name])} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
