"""EHC plans moving with children between councils: rates estimated from SEN2.

SEN2 counts plans ceased because the child moved to another council (``ceased_moved_la``:
the 2022 release's ``DisleaEHC``, the 2025 release's ``transfer``).  The receiving council
carries the plan on, but SEN2 does not publish transfers in, nor where plans go.  So:

* **out**: a council's plans leave at its own rate, ``sum(transfers) / sum(plans at the
  January census opening each calendar year)`` over the last ``recent`` calendar years before
  the baseline census (data up to the origin only);
* **in**: plans arrive in each council at England's rate per plan held there.  That is the
  ASSUMPTION that a transferred plan lands in proportion to where plans are (no published
  origin-destination table): the arrivals of all councils then add up to England's
  transfers, so an all-council run conserves them in expectation (what leaves one council
  arrives in others), and a council's arrivals do not depend on which other councils a run
  holds.

England and regions get no transfers: moves between their councils are internal to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simsend.data.baseline import Baseline, Tables, load_tables
from simsend.data.geography import resolve_areas
from simsend.data.tidy import ALL

ENGLAND = "E92000001"
BREAKDOWNS = ("age_group", "age", "need", "placement", "tier")


@dataclass(frozen=True)
class TransferRates:
    """Yearly probabilities that a plan leaves (``out_rate``) or arrives (``in_rate``).

    Attributes
    ----------
    out_rate, in_rate : float ndarray (n_areas,)
        Per plan held at the census that opens a year; zero for non-council areas.
    years : tuple of int
        Calendar years the rates pool.
    notes : tuple of str
        What was estimated, and where a rate could not be (zero then).

    """

    out_rate: np.ndarray
    in_rate: np.ndarray
    years: tuple[int, ...]
    notes: tuple[str, ...]


def _totals(df: pd.DataFrame) -> pd.DataFrame:
    m = np.ones(len(df), bool)
    for c in BREAKDOWNS:
        if c in df:
            m &= (df[c] == ALL).to_numpy()
    return df[m]


def _rate(tables: Tables, members: tuple[str, ...], years: list[int]) -> float:
    """Transfers over plans held, pooled over ``years``; NaN where either is missing."""
    fl = tables.flows
    st = tables.stock
    if fl.empty or st.empty:
        return np.nan
    moved = _totals(fl[(fl["flow"] == "ceased_moved_la") & fl["area"].isin(members)
                       & fl["year"].isin(years)])
    plans = _totals(st[(st["plan"] == "ehcp") & st["area"].isin(members)
                       & st["year"].isin(years)])
    num, den = 0.0, 0.0
    for y in years:
        a = moved[moved["year"] == y]["count"]
        b = plans[plans["year"] == y]["count"]
        if len(a) != len(members) or len(b) != len(members):
            continue  # a member or the year missing: not this year
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            continue
        num += float(a.sum())
        den += float(b.sum())
    return num / den if den > 0 else np.nan


def transfer_rates(baseline: Baseline, recent: int = 3) -> TransferRates:
    """Estimate transfer rates for a baseline's areas from the data it was built from.

    Parameters
    ----------
    baseline : Baseline
        Its spec names the data; its areas and year choose what is estimated.
    recent : int
        Calendar years pooled (the last ``recent`` before the baseline census).

    Returns
    -------
    TransferRates

    """
    tables = load_tables(baseline.spec)
    years = list(range(baseline.year - recent, baseline.year))
    levels = dict(zip(tables.areas["code"], tables.areas.get("level", "la"), strict=True)) \
        if len(tables.areas) else {}
    members = resolve_areas(tuple(baseline.areas), tables.areas).members  # former: successors
    n = len(baseline.areas)
    out_rate, in_rate = np.zeros(n), np.zeros(n)
    notes = []
    england = _rate(tables, (ENGLAND,), years)
    if not np.isfinite(england):
        notes.append(f"no England transfers in calendar {years[0]}-{years[-1]}: arrivals "
                     "at each council's own rate")
    for r, code in enumerate(baseline.areas):
        if levels.get(code, "la") in ("national", "region"):
            continue
        q = _rate(tables, members[r], years)
        if not np.isfinite(q):
            notes.append(f"{code}: no transfers published for calendar "
                         f"{years[0]}-{years[-1]}; none modelled")
            continue
        out_rate[r] = q
        in_rate[r] = england if np.isfinite(england) else q
    notes.insert(0, f"plans transferred out at each council's rate of calendar {years[0]}-"
                    f"{years[-1]} (England {england:.4f} a year), in at England's rate")
    return TransferRates(out_rate, in_rate, tuple(years), tuple(notes))

