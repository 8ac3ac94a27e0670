"""Plausibility checks across tidy tables: counts against the population they belong to.

:func:`read_tidy <simsend.data.tidy.read_tidy>` checks each file on its own; these checks
need two files (a stock and the population) or the baseline year and areas, and are shared by
``simsend validate`` and ``simsend run`` (through :func:`simsend.data.baseline.read_tables`
and :func:`simsend.data.baseline.load_baseline`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from simsend.data.errors import DataError, Finding, Report
from simsend.data.tidy import ALL
from simsend.dims import AGE_GROUPS, AGES, MAX_AGE

_WHAT = {"ehcp": "EHC plans", "sen_support": "SEN support", "none": "pupils",
         ALL: "pupils"}


def ages_text(ages: Sequence[int]) -> str:
    """Return ages as runs: ``[0, 1, 2, 7]`` -> ``"0-2, 7"``.

    Examples
    --------
    >>> ages_text([0, 1, 2, 7, 9, 10])
    '0-2, 7, 9-10'

    """
    runs: list[list[int]] = []
    for a in sorted(ages):
        if runs and a == runs[-1][1] + 1:
            runs[-1][1] = a
        else:
            runs.append([a, a])
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in runs)


def _age_mask(stock: pd.DataFrame) -> np.ndarray:
    """Ages each stock row covers, ``(rows, 26)``: its single age, its age band, or all."""
    mask = np.ones((len(stock), len(AGES)), bool)
    age = stock["age"].astype(str).to_numpy() if "age" in stock else np.full(len(stock), ALL)
    band = (stock["age_group"].astype(str).to_numpy() if "age_group" in stock
            else np.full(len(stock), ALL))
    for i, (a, g) in enumerate(zip(age, band, strict=True)):
        if a != ALL:
            mask[i] = False
            mask[i, int(a)] = True
        elif g in AGE_GROUPS:
            lo, hi = AGE_GROUPS[g]
            mask[i] = False
            mask[i, lo:hi + 1] = True
    return mask


def check_within_population(stock: pd.DataFrame, population: pd.DataFrame, stock_file: str,
                            population_file: str, report: Report) -> None:
    """Report every stock row whose count exceeds the population it belongs to.

    A row's population is that of its area and census year at its ages (its single age, the
    ages of its age band, or 0-25).  Rows whose area, year or ages the population file does not
    cover in full are not compared.

    Parameters
    ----------
    stock, population : DataFrame
        Normalised frames of :func:`simsend.data.tidy.read_tidy` (with ``_line``).
    stock_file, population_file : str
        File names for the findings.
    report : Report
        Errors are appended here (file, row, the count, and the population in the message).

    """
    if stock.empty or population.empty:
        return
    pop = population[np.isfinite(population["count"].to_numpy(float))]
    if pop.empty:
        return
    piv = (pop.assign(age=pop["age"].astype(int))
           .pivot_table(index=["year", "area"], columns="age", values="count", aggfunc="first")
           .reindex(columns=list(AGES)))
    rows = stock[np.isfinite(stock["count"].to_numpy(float))]
    if rows.empty:
        return
    k = piv.index.get_indexer(pd.MultiIndex.from_arrays([rows["year"].to_numpy(),
                                                         rows["area"].to_numpy()]))
    found = k >= 0
    rows, k = rows[found], k[found]
    mask = _age_mask(rows)
    vals = piv.to_numpy(float)[k]
    complete = np.all(np.isfinite(vals) | ~mask, axis=1)
    total = np.where(mask, np.nan_to_num(vals), 0.0).sum(axis=1)
    count = rows["count"].to_numpy(float)
    for i in np.flatnonzero(complete & (count > total)):
        r = rows.iloc[i]
        ages = np.flatnonzero(mask[i])
        span = (f"age {ages[0]}" if len(ages) == 1 else f"ages {ages[0]}-{ages[-1]}")
        what = _WHAT.get(str(r.get("plan", ALL)), str(r.get("plan")))
        if str(r.get("tier", ALL)) not in (ALL, "nan"):
            what = f"{what} (tier {r['tier']})"
        report.add("error", stock_file, int(r["_line"]), "count", int(count[i]),
                   f"{what} {count[i]:,.0f} in area {r['area']} at census {int(r['year'])} is "
                   f"more than its population ({population_file}: {total[i]:,.0f} at {span}); "
                   "expected a count no larger than the population it belongs to")


def population_findings(population: pd.DataFrame, areas: Sequence[tuple[str, tuple[str, ...]]],
                        year: int, file: str) -> list[Finding]:
    """Return a finding for each gap in the population the baseline needs (ages 0-25).

    Parameters
    ----------
    population : DataFrame
        Normalised population frame (with ``_line``; suppressed cells are NaN).
    areas : sequence of (code, members)
        Each selected area and the population areas it sums (itself, or a former council's
        successors).
    year : int
        Baseline census year.
    file : str
        Population file name.

    Returns
    -------
    list of Finding
        One per area with missing age rows (naming the ages), one per suppressed cell (naming
        its row).

    """
    rows = population[population["year"] == year] if len(population) else population
    out: list[Finding] = []
    for code, members in areas:
        for m in members:
            r = rows[rows["area"] == m]
            part = "" if m == code else f" (part of {code})"
            missing = sorted(set(AGES) - set(r["age"].astype(int)))
            if missing:
                out.append(Finding(
                    "error", file, None, "age", ages_text(missing),
                    f"no row for area {m}{part} at census {year} at age(s) {ages_text(missing)};"
                    f" expected one row per age 0-{MAX_AGE} for every area of the run"))
            for _, x in r[~np.isfinite(r["count"].to_numpy(float))].iterrows():
                out.append(Finding(
                    "error", file, int(x["_line"]), "count", str(x.get("flag", "")),
                    f"population of area {m}{part} at age {x['age']}, census {year}, is "
                    "suppressed or empty; a baseline needs every age's estimate: give the "
                    "published figure, or an estimate (e.g. the ONS mid-year estimate)"))
    return out


def raise_findings(findings: Sequence[Finding], head: str) -> None:
    """Raise :class:`DataError` carrying ``findings`` (one line when there is one).

    Does nothing when ``findings`` is empty.
    """
    if not findings:
        return
    if len(findings) == 1:
        f = findings[0]
        where = f.file if f.row is None else f"{f.file}:{f.row}"
        raise DataError(f"{where}: {f.message}", findings)
    more = f"\n... and {len(findings) - 10} more" if len(findings) > 10 else ""
    raise DataError(f"{head}:\n" + "\n".join(f.format() for f in findings[:10]) + more,
                    findings)
