"""The tidy CSV format: schemas, reading with validation, and normalised frames.

Both the shipped extract (``simsend/data/builtin``) and a council's own files use it, so one
reader and one set of checks serve both.  See ``docs/data.md`` for the format.

Row numbers in findings are file line numbers with the header as line 1 (first data row = 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simsend.data.errors import DataError, Report
from simsend.data.geography import INCONSISTENT_FLAG
from simsend.data.readers import MAX_COUNT, TOTAL_TOLERANCE, parse_counts
from simsend.dims import AGE_GROUPS, MAX_AGE, NEEDS, PLACEMENTS, PLANS, TIERS, age_group_of

ALL = "all"
"""Label of a total over a breakdown; an empty cell or a missing column means the same."""

STOCK_PLANS = ("none", "sen_support", "ehcp")
TIER_TO_PLAN = {"universal": "none", "targeted": "sen_support", "targeted_plus": "sen_support",
                "specialist": "ehcp"}


@dataclass(frozen=True)
class TidySchema:
    """Columns of one tidy file kind.

    Attributes
    ----------
    kind : str
        ``stock``, ``flows``, ``population``, ``need_mix`` or ``areas``.
    required : tuple of str
        Columns that must be present.
    one_of : tuple of tuple of str
        Groups of which at least one column must be present.
    optional : tuple of str
        Breakdown columns that may be present (missing = all).
    breakdowns : tuple of str
        Columns that are checked as breakdowns of a total row.
    series : tuple of str
        Columns identifying a series (with ``area``).

    """

    kind: str
    required: tuple[str, ...]
    one_of: tuple[tuple[str, ...], ...] = ()
    optional: tuple[str, ...] = ()
    breakdowns: tuple[str, ...] = ()
    series: tuple[str, ...] = ()


SCHEMAS = {
    "stock": TidySchema("stock", ("year", "area", "count"), (("plan", "tier"),),
                        ("age_group", "age", "need", "placement", "flag", "area_name"),
                        ("age_group", "need", "placement"), ("plan",)),
    "flows": TidySchema("flows", ("year", "area", "flow", "count"), (),
                        ("age_group", "age", "need", "placement", "flag", "area_name"),
                        ("age_group", "need", "placement"), ("flow",)),
    "population": TidySchema("population", ("year", "area", "age", "count"), (),
                             ("flag", "area_name"), (), ()),
    "need_mix": TidySchema("need_mix", ("year", "area", "plan", "need", "count"), (),
                           ("flag",), (), ("plan",)),
    "areas": TidySchema("areas", ("code", "name"), (),
                        ("level", "old_la_code", "region_code", "status", "successors"), (), ()),
}
"""Schema of each tidy file kind (the keys of ``[data.files]``)."""

FLOW_NAMES = ("requests", "requests_refused", "requests_assessed", "assessments",
              "assessed_plan_issued", "assessed_no_plan", "new_plans", "plans_issued",
              "plans_issued_within_20_weeks", "plans_issued_excl_exceptions",
              "plans_issued_within_20_weeks_excl_exceptions", "ceased",
              "ceased_left_education", "ceased_needs_met", "ceased_moved_la",
              "ceased_moved_outside_england", "ceased_max_age", "ceased_higher_education",
              "ceased_employment", "ceased_disengaged", "ceased_deceased", "ceased_other",
              "ceased_reason_not_recorded", "mainstream_to_special", "special_to_mainstream")
"""Known flow names (others are accepted with a warning).  ``ceased_moved_la``: plans ceased
because the child moved to another council in England (SEN2 ``transfer``; the new council
usually issues its own plan); ``ceased_moved_outside_england``: moved out of England; see
``docs/data.md`` for every name and its source column."""


def _codes(kind: str, col: str) -> tuple[str, ...] | None:
    return {
        "plan": STOCK_PLANS + (ALL,) if kind != "need_mix" else ("sen_support", "ehcp"),
        "tier": TIERS + (ALL,),
        "need": NEEDS + (ALL,),
        "placement": PLACEMENTS + (ALL,),
        "age_group": tuple(AGE_GROUPS) + (ALL,),
    }.get(col)


def read_tidy(path: str | Path, kind: str, report: Report | None = None,
              known_areas: set[str] | None = None) -> tuple[pd.DataFrame, Report]:
    """Read and check one tidy CSV (optionally gzip-compressed).

    Parameters
    ----------
    path : path
        The file.
    kind : str
        One of :data:`SCHEMAS`.
    report : Report, optional
        Findings are appended here.
    known_areas : set of str, optional
        Area codes the rest of the data knows (unknown ones are errors).

    Returns
    -------
    df : DataFrame
        Normalised: every breakdown column present (``"all"`` where missing), ``count`` float
        (NaN where suppressed), ``flag``, ``_line`` (file line number); stock rows carry
        ``plan`` (and ``tier`` where given).  Rows with errors are dropped.
    report : Report

    """
    path = Path(path)
    report = Report() if report is None else report
    report.files.append(str(path))
    if kind not in SCHEMAS:
        raise DataError(f"{path}: unknown file kind {kind!r}; expected one of {list(SCHEMAS)}")
    schema = SCHEMAS[kind]
    file = path.name
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file; expected a header row with the columns "
                        f"{list(SCHEMAS[kind].required)} and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from exc
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in schema.required if c not in df.columns]
    missing += ["/".join(g) for g in schema.one_of if not any(c in df.columns for c in g)]
    for c in missing:
        report.add("error", file, 1, c, None,
                   f"required column missing; {kind} files need {list(schema.required)}"
                   + (f" and one of {[list(g) for g in schema.one_of]}" if schema.one_of else "")
                   + f" (found {list(df.columns)})")
    if missing:
        return pd.DataFrame(), report
    known_cols = set(schema.required) | set(schema.optional) | {c for g in schema.one_of
                                                                for c in g}
    for c in df.columns:
        if c not in known_cols:
            report.add("warning", file, 1, c, None,
                       f"unknown column ignored; {kind} columns are {sorted(known_cols)}")
    df = df.reset_index(drop=True)
    df["_line"] = np.arange(len(df)) + 2
    bad = np.zeros(len(df), bool)
    if kind == "areas":
        return _areas(df, file, report), report

    yr = pd.to_numeric(df["year"].str.strip(), errors="coerce")
    for i in np.flatnonzero((yr.isna() | (yr != yr.round())).to_numpy()):
        report.add("error", file, i + 2, "year", df["year"].iloc[i], "expected a whole year")
        bad[i] = True
    df["year"] = yr
    df["area"] = df["area"].str.strip()
    for i in np.flatnonzero((df["area"] == "").to_numpy()):
        report.add("error", file, i + 2, "area", "", "expected an area code")
        bad[i] = True
    if known_areas is not None:
        unk = ~df["area"].isin(known_areas) & (df["area"] != "")
        for a, g in df[unk].groupby("area", sort=False):
            report.add("error", file, int(g["_line"].iloc[0]), "area", a,
                       f"unknown area ({len(g)} rows); expected one of the population file's"
                       f" areas {sorted(known_areas)[:8]}{'...' if len(known_areas) > 8 else ''}")
    # categorical codes
    if "tier" in df and "plan" not in df:
        df["plan"] = df["tier"].str.strip().map(lambda t: TIER_TO_PLAN.get(t, t))
    for col in ("plan", "tier", "need", "placement", "age_group"):
        if col not in df:
            if col in schema.optional or col in ("plan", "tier") and kind == "stock":
                df[col] = ALL
            continue
        v = df[col].str.strip().replace("", ALL)
        df[col] = v
        ok = _codes(kind, col)
        if col == "plan" and "tier" in df.columns and kind == "stock":
            ok = tuple(ok) + TIERS
        if ok is None:
            continue
        badc = ~v.isin(ok)
        for i in np.flatnonzero(badc.to_numpy()):
            report.add("error", file, i + 2, col, v.iloc[i],
                       f"unknown {col} code; expected one of {list(ok)}")
        bad |= badc.to_numpy()
    if kind == "flows":
        df["flow"] = df["flow"].str.strip()
        for f, g in df[~df["flow"].isin(FLOW_NAMES)].groupby("flow", sort=False):
            report.add("warning", file, int(g["_line"].iloc[0]), "flow", f,
                       f"flow name not known to simsend (kept); known flows {list(FLOW_NAMES)}")
    if "age" in df:
        a = df["age"].str.strip().replace("", ALL)
        num = pd.to_numeric(a.where(a != ALL), errors="coerce")
        badage = (a != ALL) & (num.isna() | (num != num.round()) | (num < 0) | (num > MAX_AGE))
        for i in np.flatnonzero(badage.to_numpy()):
            report.add("error", file, i + 2, "age", a.iloc[i],
                       f"expected a whole age 0-{MAX_AGE}" + (" or 'all'" if kind != "population"
                                                               else ""))
        if kind == "population":
            badage |= a == ALL
            for i in np.flatnonzero((a == ALL).to_numpy()):
                report.add("error", file, i + 2, "age", a.iloc[i], "expected an age 0-25")
        bad |= badage.to_numpy()
        df["age"] = a
        if "age_group" in df and kind != "population":
            ok = ~badage & (a != ALL)
            derived = a[ok].astype(int).map(age_group_of)
            given = df.loc[ok, "age_group"]
            clash = (given != ALL) & (given != derived)
            for i in np.flatnonzero(clash.to_numpy()):
                j = np.flatnonzero(ok.to_numpy())[i]
                report.add("error", file, j + 2, "age_group", given.iloc[i],
                           f"age {a.iloc[j]} is in band {derived.iloc[i]}")
                bad[j] = True
            df.loc[ok, "age_group"] = derived
    elif kind != "population":
        df["age"] = ALL
    if "flag" in df:  # an empty count explained by its flag is not a suppressed cell
        quiet = {"not_applicable": "z", "not_available": ":"}
        empty = df["count"].str.strip() == ""
        marker = df["flag"].str.strip().map(quiet)
        df["count"] = df["count"].where(~(empty & marker.notna()), marker)
    given = df["flag"].str.strip().to_numpy() if "flag" in df else None
    cnt, flag = parse_counts(df["count"], file, "count", report,
                             rows=(df["area"].to_numpy(), given))
    bad |= (flag == "invalid") | (cnt < 0) | (cnt > MAX_COUNT) | (
        np.isfinite(cnt) & (np.abs(cnt - np.round(cnt)) > 1e-9))
    df["count"] = cnt
    if given is not None:
        # an empty cell keeps the flag that explains it (e.g. recording_error)
        keep = (given != "") & np.isin(flag, ["", "missing"])
        df["flag"] = np.where(keep, given, np.where(flag != "", flag, given))
    else:
        df["flag"] = flag
    df = df[~bad].copy()
    df["year"] = df["year"].astype(int)
    keys = ["year", "area"] + list(schema.series) + [c for c in ("age", "age_group", "need",
                                                                  "placement", "tier")
                                                     if c in df and kind != "population"]
    if kind == "population":
        keys = ["year", "area", "age"]
    if kind == "need_mix":
        keys = ["year", "area", "plan", "need"]
    dup = df.duplicated(keys, keep="first")
    for _, r in df[dup].iterrows():
        report.add("error", file, int(r["_line"]), None, None,
                   f"duplicate row for {dict((k, r[k]) for k in keys)}")
    df = df[~dup]
    _check_years(df, kind, schema, file, report)
    if schema.breakdowns:
        _check_breakdowns(df, schema, file, report)
    return df.reset_index(drop=True), report


def _areas(df: pd.DataFrame, file: str, report: Report) -> pd.DataFrame:
    for col in ("level", "old_la_code", "region_code", "successors"):
        if col not in df:
            df[col] = ""
    if "status" not in df:
        df["status"] = "current"
    dup = df.duplicated("code")
    for _, r in df[dup].iterrows():
        report.add("error", file, int(r["_line"]), "code", r["code"], "duplicate area code")
    return df[~dup].reset_index(drop=True)


def _check_years(df, kind, schema, file, report) -> None:
    series = ["area"] + list(schema.series)
    for key, g in df.groupby(series, sort=False):
        years = g["year"].to_numpy()
        uniq = np.unique(years)
        # a need mix is read at the nearest year with data, so gaps there are by design
        if len(uniq) > 1 and kind != "need_mix":
            gaps = sorted(set(range(uniq[0], uniq[-1] + 1)) - set(uniq.tolist()))
            if gaps:
                what = {k: str(v) for k, v in zip(series, np.atleast_1d(key), strict=True)}
                report.add("warning", file, int(g["_line"].iloc[0]), "year",
                           ",".join(map(str, gaps)),
                           f"years missing for {what}: the series has {uniq[0]}-{uniq[-1]} "
                           "with gaps", area=what["area"])
        first_year_line = g.groupby("year")["_line"].min().sort_index()
        if (np.diff(first_year_line.to_numpy()) < 0).any() and kind != "need_mix":
            line = int(first_year_line[first_year_line.diff() < 0].iloc[0])
            report.add("warning", file, line, "year", None,
                       "years out of order (rows of a later year come before an earlier one);"
                       " order does not matter to simsend but may signal a copy mistake")


def _check_breakdowns(df, schema, file, report) -> None:
    dims = [d for d in ("age_group", "need", "placement") if d in df]
    if not dims:
        return
    series = ["year", "area"] + list(schema.series)
    is_all = {d: df[d] == ALL for d in dims}
    is_age_all = df["age"] == ALL if "age" in df else pd.Series(True, index=df.index)
    tot_mask = np.logical_and.reduce([is_all[d] for d in dims]) & is_age_all
    tot = df[tot_mask].set_index(series)
    if tot.empty:
        return
    tot = tot[~tot.index.duplicated()]
    n_known: list = []
    for d in dims:
        others = [o for o in dims if o != d]
        m = ~is_all[d] & is_age_all
        for o in others:
            m &= is_all[o]
        part = df[m]
        if part.empty:
            continue
        g = part.groupby(series)["count"]
        s = g.sum(min_count=1)
        n_nan = g.apply(lambda x: int(x.isna().sum()))
        known = part.groupby(series)["flag"].apply(
            lambda f: f.astype(str).str.contains(INCONSISTENT_FLAG).any())
        for k in s.index.intersection(tot.index):
            t = _num(tot.loc[k, "count"])
            if not np.isfinite(t):
                continue
            if n_nan[k]:
                if s[k] > t + TOTAL_TOLERANCE[0]:
                    report.add("error", file, int(tot.loc[k, "_line"]), "count", t,
                               f"total is below the sum of its published {d} rows ({s[k]:g})")
                continue
            tol = max(TOTAL_TOLERANCE[0], TOTAL_TOLERANCE[1] * abs(t))
            if known[k] and t != s[k]:
                n_known.append(k)
                report.add("warning", file, int(tot.loc[k, "_line"]), "count", t,
                           f"total differs from the sum of its {d} rows ({s[k]:g}); the rows "
                           f"are flagged {INCONSISTENT_FLAG!r}: the publisher's own tables "
                           "disagree (total kept, breakdown rescaled when building a baseline)",
                           area=str(k[1]))
            elif abs(t - s[k]) > tol:
                report.add("error", file, int(tot.loc[k, "_line"]), "count", t,
                           f"total disagrees with the sum of its {d} rows ({s[k]:g}) by more than"
                           f" the tolerance {tol:g} (max of {TOTAL_TOLERANCE[0]} and "
                           f"{TOTAL_TOLERANCE[1]:.1%})")
    # (every such total is reported, with its area: simsend.data.validate keeps a run's areas
    # and shows the first few of each file)


def _num(v) -> float:
    v = float(v)
    return int(v) if np.isfinite(v) and v == int(v) else v


def write_tidy(df: pd.DataFrame, path: str | Path, kind: str) -> None:
    """Write a normalised frame in the tidy format (gzip when the name ends in ``.gz``).

    Counts are written as integers, suppressed cells as empty with their flag.
    """
    schema = SCHEMAS[kind]
    cols = [c for c in ("year", "area", "area_name", "plan", "flow", "age_group", "age",
                        "need", "placement", "code", "name", "level", "old_la_code",
                        "region_code", "status", "successors")
            if c in df.columns and (c in schema.required or c in schema.optional
                                    or any(c in g for g in schema.one_of))]
    out = df[cols].copy()
    if "count" in df:
        c = df["count"].to_numpy(float)
        fin = np.isfinite(c)
        txt = np.full(len(c), "", dtype=object)
        txt[fin] = np.round(c[fin]).astype("int64").astype(str)
        out["count"] = txt
        out["flag"] = df.get("flag", "")
    opts = {"compression": {"method": "gzip", "mtime": 0}} if str(path).endswith(".gz") else {}
    out.to_csv(path, index=False, lineterminator="\n", **opts)


__all__ = ["ALL", "FLOW_NAMES", "PLANS", "SCHEMAS", "TidySchema", "read_tidy", "write_tidy"]
