"""Readers for published DfE / ONS files, driven by :mod:`simsend.data.releases`.

Each reader returns a tidy long :class:`pandas.DataFrame` and a :class:`Report` of findings.
Cells without a number (``z``, ``x``, ``c``, ``low``, ``:`` ...) become NaN with the marker's
meaning in the ``flag`` column -- never 0.  Row numbers in findings count the header as line 1.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from simsend.data.errors import DataError, Report
from simsend.data.releases import (
    CIN_ALL_PUPILS,
    CODE_ALIASES,
    EES_RENAMES,
    ENGLAND,
    MISSING_MARKERS,
    NEED_COLUMN_ALIASES,
    PUBLISHED_DEFECTS,
    RELEASES,
    SUBTOTAL_LABELS,
    ReleaseFamily,
    age_span,
    placement_of,
)
from simsend.dims import AGE_GROUPS, NEEDS

_NUM = re.compile(r"^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")

TOTAL_TOLERANCE = (5, 0.005)
"""A total disagrees with its breakdown when they differ by more than max(5, 0.5 %)."""
MAX_COUNT = 100_000_000
"""No count of children can exceed this: England's population aged 0-25 is under 20 million,
so a larger count is a typing or unit mistake (and would exhaust memory when dealt out)."""


def family_of(path: str | Path) -> ReleaseFamily | None:
    """Return the release family whose file name pattern matches ``path`` (or None)."""
    name = Path(path).name
    for fam in RELEASES.values():
        if any(Path(name).match(p) for p in fam.patterns):
            return fam
    return None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from exc


def parse_counts(values: pd.Series, file: str, column: str, report: Report,
                 line0: int = 2, integer: bool = True, markers: dict[str, str] | None = None,
                 rows: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Parse published cells into floats and flags.

    Markers of :data:`MISSING_MARKERS` (or ``markers``, a family's own meanings over them)
    give NaN and their flag (a warning for suppressed / low / missing cells, naming the row's
    area when ``rows[0]`` (areas) is given, and the row's own flag when ``rows[1]`` gives
    one); any other non-number is an error finding.  Negative values are errors, and so are
    non-integers and values above :data:`MAX_COUNT` when ``integer``.

    Returns
    -------
    values : ndarray of float
    flags : ndarray of str (``""`` where a number was read)

    """
    areas, explain = rows
    s = values.astype(str).str.strip()
    out = np.full(len(s), np.nan)
    flags = np.full(len(s), "", dtype=object)
    is_num = s.str.match(_NUM).to_numpy(dtype=bool)
    out[is_num] = s[is_num].astype(float).to_numpy()
    known = {**MISSING_MARKERS, **(markers or {})}
    for i in np.flatnonzero(~is_num):
        v = s.iloc[i]
        if v in known:
            flags[i] = known[v]
            if flags[i] in ("suppressed", "low", "missing"):
                why = "" if explain is None or not explain[i] else f" (flagged {explain[i]})"
                report.add("warning", file, line0 + i, column, v,
                           f"{flags[i]} cell read as missing (NaN), not 0{why}",
                           area=None if areas is None else str(areas[i]))
        else:
            flags[i] = "invalid"
            report.add("error", file, line0 + i, column, v,
                       "expected a non-negative count or a published marker "
                       f"({', '.join(sorted(k for k in MISSING_MARKERS if k))})")
    neg = np.flatnonzero(out < 0)
    for i in neg:
        report.add("error", file, line0 + i, column, s.iloc[i], "expected a count >= 0")
    if integer:
        bad = np.flatnonzero(np.isfinite(out) & (np.abs(out - np.round(out)) > 1e-9))
        for i in bad:
            report.add("error", file, line0 + i, column, s.iloc[i], "expected a whole number")
        for i in np.flatnonzero(np.isfinite(out) & (out > MAX_COUNT)):
            report.add("error", file, line0 + i, column, s.iloc[i],
                       f"count above {MAX_COUNT:,}, more than England's whole population aged "
                       "0-25 (under 20 million); expected a count of children (a typing or "
                       "unit mistake?)")
    return out, flags


ALIAS_TO_CODE = {k: v for k, (v, _) in CODE_ALIASES.items()}
"""Other code of a council -> the extract's code (readers relabel as they read)."""


def _area_of(df: pd.DataFrame) -> pd.Series:
    lvl = df["geographic_level"].str.lower()
    code = pd.Series(np.where(lvl.str.startswith("national"), df.get("country_code", ENGLAND),
                              ""), index=df.index, dtype=object)
    if "region_code" in df:
        code = code.where(~lvl.str.startswith("regional"), df["region_code"])
    if "new_la_code" in df:
        la = df["new_la_code"].where(df["new_la_code"] != "", df.get("old_la_code", ""))
        code = code.where(~lvl.str.startswith("local"), la)
    return code.replace(ALIAS_TO_CODE)


def _area_name(df: pd.DataFrame) -> pd.Series:
    lvl = df["geographic_level"].str.lower()
    name = pd.Series(np.where(lvl.str.startswith("national"), "England", ""), index=df.index,
                     dtype=object)
    if "region_name" in df:
        name = name.where(~lvl.str.startswith("regional"), df["region_name"])
    if "la_name" in df:
        name = name.where(~lvl.str.startswith("local"), df["la_name"])
    return name



def _geography_columns(df: pd.DataFrame) -> None:
    """Add ``area``, ``area_name``, ``level`` (and empty code columns) to an EES frame."""
    df["area"] = _area_of(df)
    df["area_name"] = _area_name(df)
    df["level"] = df["geographic_level"].str.lower().str.split().str[0]
    for col in ("old_la_code", "region_code"):
        if col not in df:
            df[col] = ""

def _check_required(df: pd.DataFrame, fam: ReleaseFamily, file: str, report: Report) -> bool:
    ok = True
    for col in fam.required:
        if col not in df.columns:
            report.add("error", file, 1, col, None,
                       f"required column missing for {fam.name} (columns: {list(df.columns)})")
            ok = False
    return ok


def _open_family(path: Path, fam: ReleaseFamily,
                 report: Report | None) -> tuple[pd.DataFrame | None, Report]:
    """Read one file of a release family with its renames; None if a required column is missing."""
    report = Report() if report is None else report
    report.files.append(str(path))
    df = _read_csv(path).rename(columns=fam.renames)
    if not _check_required(df, fam, path.name, report):
        return None, report
    return df, report


def read_ees(path: str | Path, family: str | ReleaseFamily | None = None,
             report: Report | None = None) -> tuple[pd.DataFrame, Report]:
    """Read an explore-education-statistics underlying data file (SEN2 families).

    Parameters
    ----------
    path : path
        The CSV as published.
    family : str or ReleaseFamily, optional
        Release family; guessed from the file name when omitted.
    report : Report, optional
        Findings are appended here (a new report otherwise).

    Returns
    -------
    df : DataFrame
        Columns ``year, area, area_name, level, old_la_code, region_code, measure, age_group,
        placement, count, flag`` where ``measure`` is the plan (``ehcp``) for stock
        families or the flow name for flow families; breakdown columns hold ``"all"`` on
        total rows.  Estab files are summed from establishment types into placement
        groups; group subtotal rows are checked against their parts and then dropped.
    report : Report

    """
    path = Path(path)
    report = Report() if report is None else report
    report.files.append(str(path))
    fam = RELEASES[family] if isinstance(family, str) else family or family_of(path)
    if fam is None:
        raise DataError(f"{path}: unknown release family (file name matches none of "
                        f"{[p for f in RELEASES.values() for p in f.patterns]})")
    file = path.name
    raw = _read_csv(path)
    df = raw.rename(columns={**EES_RENAMES, **fam.renames})
    if not _check_required(df, fam, file, report):
        return pd.DataFrame(), report
    df = df.reset_index(drop=True)
    df["_line"] = np.arange(len(df)) + 2
    years = pd.to_numeric(df["time_period"].str[:4], errors="coerce")
    for i in np.flatnonzero(years.isna().to_numpy()):
        report.add("error", file, i + 2, "time_period", df["time_period"].iloc[i],
                   "expected a year such as 2022 or 202122")
    df["year"] = years
    _geography_columns(df)
    value_cols = _value_columns(df, fam)
    if not value_cols:
        report.add("error", file, 1, None, None,
                   f"no value column found; expected one of {list(fam.values)}")
        return pd.DataFrame(), report
    frames = []
    for col, measure in value_cols.items():
        cnt, flag = parse_counts(df[col], file, col, report)
        part = df[["_line", "year", "area", "area_name", "level", "old_la_code",
                   "region_code"]].copy()
        part["measure"] = measure
        part["count"] = cnt
        part["flag"] = flag
        if fam.category == "characteristic_age":
            lab = df["characteristic_age"].str.strip()
            part["age_group"] = lab.map(lambda s: "all" if s in SUBTOTAL_LABELS else
                                        fam.categories.get(s, "?" + s))
            part["placement"] = "all"
        elif fam.category == "establishment_type":
            et = df["establishment_type"].str.strip()
            grp = df["establishment_group"].str.strip()
            part["age_group"] = "all"
            part["placement"] = [
                ("all" if g in SUBTOTAL_LABELS else "_subtotal") if t in SUBTOTAL_LABELS
                else placement_of(t) for t, g in zip(et, grp, strict=True)]
            part["_group"] = grp
        else:
            part["age_group"] = "all"
            part["placement"] = "all"
        frames.append(part)
    out = pd.concat(frames, ignore_index=True)
    bad = out["age_group"].str.startswith("?")
    for _, r in out[bad].drop_duplicates("age_group").iterrows():
        report.add("error", file, int(r["_line"]), fam.category, r["age_group"][1:],
                   f"unknown age band; expected one of {sorted(set(fam.categories))} or Total")
    out = out[~bad & out["year"].notna()]
    if fam.category == "establishment_type":
        out = _collapse_establishments(out, file, report)
    _check_totals(out, file, report)
    out = out.drop(columns=[c for c in ("_group",) if c in out])
    out["year"] = out["year"].astype(int)
    out["age"] = "all"
    out["need"] = "all"
    return out.reset_index(drop=True), report


def _value_columns(df: pd.DataFrame, fam: ReleaseFamily) -> dict[str, str]:
    """First present published column for each measure of the family."""
    chosen: dict[str, str] = {}
    for col, measure in fam.values.items():
        if col in df.columns and measure not in chosen.values():
            chosen[col] = measure
    return chosen


def _sum_flag(flags: pd.Series) -> str:
    f = [x for x in flags if x]
    return f[0] if f else ""


def _collapse_establishments(out: pd.DataFrame, file: str, report: Report) -> pd.DataFrame:
    """Check group subtotals against their types, drop them, sum types into placements."""
    keys = ["year", "area", "measure"]
    detail = out[~out["placement"].isin(["all", "_subtotal"])]
    sub = out[out["placement"] == "_subtotal"]
    if len(sub):
        parts = detail.groupby(keys + ["_group"], dropna=False)["count"].sum(min_count=1)
        any_nan = detail.groupby(keys + ["_group"], dropna=False)["count"].apply(
            lambda s: s.isna().any())
        for _, r in sub.iterrows():
            k = (r["year"], r["area"], r["measure"], r["_group"])
            if k not in parts.index or any_nan.get(k, False) or not np.isfinite(r["count"]):
                continue
            _compare(r["count"], parts[k], file, int(r["_line"]), "establishment_group",
                     r["_group"], "its establishment types", report)
    agg = (detail.groupby(keys + ["age_group", "placement"], dropna=False)
           .agg(_line=("_line", "min"), area_name=("area_name", "first"),
                level=("level", "first"), old_la_code=("old_la_code", "first"),
                region_code=("region_code", "first"),
                count=("count", lambda s: s.sum(min_count=len(s))),
                flag=("flag", _sum_flag))
           .reset_index())
    total = out[out["placement"] == "all"]
    return pd.concat([total.drop(columns=["_group"]), agg], ignore_index=True)


def _compare(total: float, parts: float, file: str, line: int, column: str, value,
             what: str, report: Report) -> None:
    tol = max(TOTAL_TOLERANCE[0], TOTAL_TOLERANCE[1] * abs(total))
    if abs(total - parts) > tol:
        report.add("error", file, line, column, value,
                   f"total {total:g} disagrees with the sum of {what} ({parts:g}) by more than"
                   f" the tolerance {tol:g}")


def _check_totals(out: pd.DataFrame, file: str, report: Report) -> None:
    """Each total row (every breakdown 'all') must match the sum of its breakdown rows."""
    keys = ["year", "area", "measure"]
    tot = out[(out["age_group"] == "all") & (out["placement"] == "all")]
    for dim in ("age_group", "placement"):
        other = "placement" if dim == "age_group" else "age_group"
        parts = out[(out[dim] != "all") & (out[other] == "all")]
        if parts.empty:
            continue
        g = parts.groupby(keys)["count"]
        s = g.sum(min_count=1)
        has_nan = g.apply(lambda x: x.isna().any())
        t = tot.set_index(keys)
        for k in s.index.intersection(t.index):
            if has_nan[k]:
                continue
            row = t.loc[k]
            if isinstance(row, pd.DataFrame):
                row = row.iloc[0]
            if np.isfinite(row["count"]):
                _compare(row["count"], s[k], file, int(row["_line"]), dim, "all",
                         f"its {dim} rows", report)


# --------------------------------------------------------------------------- wide layout


def _band_of(span: tuple[int, int] | None) -> str:
    """Age band holding every age of ``span`` (``"unknown"`` when none does)."""
    if span is None:
        return "unknown"
    for band, (lo, hi) in AGE_GROUPS.items():
        if lo <= span[0] and span[1] <= hi:
            return band
    return "unknown"


def _age_label(span: tuple[int, int] | None) -> str:
    if span is None:
        return "unknown"
    return str(span[0]) if span[0] == span[1] else f"{span[0]}-{span[1]}"


def census_year(time_period: pd.Series) -> pd.Series:
    """EES ``time_period`` -> year as simsend labels it (NaN where unreadable).

    Calendar years (``2024``) stay; academic years (``202425``) become the January census
    year (2025).

    Examples
    --------
    >>> census_year(pd.Series(["2024", "202425", "20x"])).tolist()
    [2024.0, 2025.0, nan]

    """
    tp = time_period.astype(str).str.strip()
    first = pd.to_numeric(tp.str[:4], errors="coerce")
    academic = tp.str.fullmatch(r"\d{6}")
    bad = ~tp.str.fullmatch(r"\d{4}|\d{6}")
    return first.where(~academic, first + 1).where(~bad)


def read_ees_wide(path: str | Path, family: str | ReleaseFamily | None = None,
                  report: Report | None = None) -> tuple[pd.DataFrame, Report]:
    """Read a person-level SEN2 file (release 2023 on): categories as columns.

    Rows carry ``breakdown_topic`` / ``breakdown``; the family's ``topics`` say which topics
    are read (the total row, single years of age) and the rest (sex, ethnicity ...) are
    skipped.  The family's ``values`` give one measure per column; its ``columns`` (e.g.
    establishment types) break down the first measure into ``column_dimension`` labels, summed
    per label.  A category column with no number in any row of a year was not collected that
    year and adds nothing; a missing cell of a collected column makes its label's sum NaN.
    Subtotal columns are checked against their parts, never summed; total rows are checked
    against each breakdown; :data:`~simsend.data.releases.PUBLISHED_DEFECTS` are applied
    (recording errors become NaN flagged ``recording_error``).

    Parameters
    ----------
    path : path
        The CSV as published.
    family : str or ReleaseFamily, optional
        Release family (``layout = "ees_wide"``); guessed from the file name when omitted.
    report : Report, optional
        Findings are appended here.

    Returns
    -------
    df : DataFrame
        ``year, area, area_name, level, old_la_code, region_code, measure, age_group, age,
        placement, need, count, flag, _line``: ``age`` is a single age (``"7"``), a span
        (``"0-2"``), ``"unknown"`` or ``"all"``; ``age_group`` the band holding it.  Rows with
        both an age and a placement are the published joint table.
    report : Report

    """
    path = Path(path)
    report = Report() if report is None else report
    report.files.append(str(path))
    fam = RELEASES[family] if isinstance(family, str) else family or family_of(path)
    if fam is None or fam.layout != "ees_wide":
        wide = [p for f in RELEASES.values() if f.layout == "ees_wide" for p in f.patterns]
        raise DataError(f"{path}: not a person-level SEN2 file (expected one of {wide})")
    file = path.name
    df = _read_csv(path).rename(columns={**EES_RENAMES, **fam.renames})
    if not _check_required(df, fam, file, report):
        return pd.DataFrame(), report
    df = df.reset_index(drop=True)
    df["_line"] = np.arange(len(df)) + 2
    df = df[df["breakdown_topic"].str.strip().isin(list(fam.topics))].reset_index(drop=True)
    years = census_year(df["time_period"])
    for i in np.flatnonzero(years.isna().to_numpy()):
        report.add("error", file, int(df["_line"].iloc[i]), "time_period",
                   df["time_period"].iloc[i], "expected a year such as 2024 or 202425")
    df["year"] = years
    df = df[df["year"].notna()].reset_index(drop=True)
    _geography_columns(df)
    ages, bands = [], []
    for i, (topic, lab) in enumerate(zip(df["breakdown_topic"].str.strip(),
                                          df["breakdown"].str.strip(), strict=True)):
        if fam.topics[topic] is None:
            ages.append("all")
            bands.append("all")
            continue
        try:
            span = age_span(lab)
        except ValueError:
            report.add("error", file, int(df["_line"].iloc[i]), "breakdown", lab,
                       "unknown age label; expected e.g. 'age 6', 'Aged 14', 'under 3', "
                       "'age 20 and over' or 'Age unknown'")
            span = None
        ages.append(_age_label(span))
        bands.append(_band_of(span))
    df["age"] = ages
    df["age_group"] = bands
    value_cols = _value_columns(df, fam)
    if not value_cols:
        report.add("error", file, 1, None, None,
                   f"no value column found; expected one of {list(fam.values)}")
        return pd.DataFrame(), report
    keep = ["_line", "year", "area", "area_name", "level", "old_la_code", "region_code",
            "age", "age_group"]
    frames = []
    for col, measure in value_cols.items():
        cnt, flag = parse_counts(df[col], file, col, report, markers=fam.markers,
                                 rows=(df["area"].to_numpy(), None))
        frames.append(df[keep].assign(measure=measure, placement="all", need="all",
                                      count=cnt, flag=flag))
    if fam.columns:
        first = next(iter(value_cols.values()))
        frames.append(_wide_categories(df, fam, first, keep, file, report))
    out = pd.concat(frames, ignore_index=True)
    out = _apply_defects(out, fam.name)
    _check_wide_totals(out, file, report)
    out["year"] = out["year"].astype(int)
    return out.reset_index(drop=True), report


def _wide_categories(df: pd.DataFrame, fam: ReleaseFamily, measure: str, keep: list[str],
                     file: str, report: Report) -> pd.DataFrame:
    """Sum the category columns of each row into the family's labels; check subtotals."""
    listed = {c for c, _ in fam.columns} | set(fam.subtotals) | set(fam.values)
    geo = set(EES_RENAMES.values()) | {"time_identifier", "country_code", "country_name",
                                       "region_code", "region_name", "new_la_code",
                                       "old_la_code", "la_name", "breakdown_topic",
                                       "breakdown", "_line", "year", "area", "area_name",
                                       "level", "age", "age_group"}
    for c in df.columns:
        if c not in listed and c not in geo and not c.lower().endswith("_pc"):
            report.add("warning", file, 1, c, None,
                       f"column not mapped by release family {fam.name} (not read)")
    cols = [c for c, _ in fam.columns if c in df.columns]
    vals, flags = {}, {}
    for c in cols:
        vals[c], flags[c] = parse_counts(df[c], file, c, report, markers=fam.markers,
                                         rows=(df["area"].to_numpy(), None))
    # a column with no number in any row of a year was not collected that year
    year = df["year"].to_numpy()
    collected = {c: pd.Series(np.isfinite(vals[c])).groupby(year).any() for c in cols}
    for sub, parts in fam.subtotals.items():
        if sub not in df.columns or not parts or not set(parts) <= set(cols):
            continue
        tot, _ = parse_counts(df[sub], file, sub, Report(), markers=fam.markers)
        sm = np.zeros(len(df))
        ok = np.isfinite(tot)
        for c in parts:
            col_ok = collected[c].reindex(year).fillna(False).to_numpy(bool)
            ok &= np.isfinite(vals[c]) | ~col_ok
            sm += np.where(col_ok, np.nan_to_num(vals[c]), 0.0)
        for i in np.flatnonzero(ok & (np.abs(tot - sm) > np.maximum(
                TOTAL_TOLERANCE[0], TOTAL_TOLERANCE[1] * np.abs(tot)))):
            report.add("error", file, int(df["_line"].iloc[i]), sub, tot[i],
                       f"subtotal disagrees with the sum of {', '.join(parts)} ({sm[i]:g})",
                       area=str(df["area"].iloc[i]))
    labels: dict[str, list[str]] = {}
    for c, lab in fam.columns:
        if c in vals:
            labels.setdefault(lab, []).append(c)
    parts_out = []
    for lab, cs in labels.items():
        total = np.zeros(len(df))
        flag = np.full(len(df), "", dtype=object)
        any_col = np.zeros(len(df), bool)
        for c in cs:
            col_ok = collected[c].reindex(year).fillna(False).to_numpy(bool)
            any_col |= col_ok
            miss = col_ok & ~np.isfinite(vals[c])
            flag = np.where(miss & (flag == ""), flags[c], flag)
            total = np.where(miss, np.nan, total + np.where(col_ok, np.nan_to_num(vals[c]), 0))
        flag = np.where(~any_col, "not_available", flag)
        total = np.where(any_col, total, np.nan)
        part = df[keep].assign(measure=measure, count=total, flag=flag)
        part[fam.column_dimension] = lab
        for d in ("placement", "need"):
            if d not in part:
                part[d] = "all"
        parts_out.append(part)
    return pd.concat(parts_out, ignore_index=True)


def _apply_defects(out: pd.DataFrame, family: str) -> pd.DataFrame:
    """Apply the declared :data:`PUBLISHED_DEFECTS` of ``family`` to its rows."""
    out = out.copy()
    for d in PUBLISHED_DEFECTS:
        if d.family != family:
            continue
        m = out["year"].isin(d.years)
        if d.areas:
            m &= out["area"].isin(d.areas)
        if d.scope == "total":
            m &= (out["age"] == "all") & (out["placement"] == "all") & (out["need"] == "all")
        elif d.scope != "all":
            others = [o for o in ("age", "placement", "need") if o != d.scope]
            m &= out[d.scope] != "all"
            for o in others:
                m &= out[o] == "all"
        if d.flag == "recording_error":
            out.loc[m, "count"] = np.nan
            out.loc[m, "flag"] = d.flag
        else:
            cur = out.loc[m, "flag"]
            out.loc[m, "flag"] = np.where(cur != "", cur + ";" + d.flag, d.flag)
    return out


def _check_wide_totals(out: pd.DataFrame, file: str, report: Report) -> None:
    """Each total row must match the sum of its age, placement and need rows (margins)."""
    keys = ["year", "area", "measure"]
    dims = ("age", "placement", "need")
    is_all = {d: out[d] == "all" for d in dims}
    tot = out[is_all["age"] & is_all["placement"] & is_all["need"]]
    tot = tot[np.isfinite(tot["count"])].drop_duplicates(keys).set_index(keys)
    for d in dims:
        m = ~is_all[d]
        for o in dims:
            if o != d:
                m &= is_all[o]
        parts = out[m]
        if parts.empty:
            continue
        g = parts.groupby(keys)
        s = g["count"].sum(min_count=1)
        nan = g["count"].apply(lambda x: bool(x.isna().any()))
        known = g["flag"].apply(lambda f: f.str.contains("inconsistent_total").any())
        for k in s.index.intersection(tot.index):
            if nan[k]:
                continue
            t = float(tot.loc[k, "count"])
            tol = max(TOTAL_TOLERANCE[0], TOTAL_TOLERANCE[1] * abs(t))
            if abs(t - s[k]) > (0 if known[k] else tol):
                report.add("warning" if known[k] else "error", file,
                           int(tot.loc[k, "_line"]), d, "all",
                           f"total {t:g} disagrees with the sum of its {d} rows ({s[k]:g})"
                           + (" (known: flagged inconsistent_total)" if known[k] else ""),
                           area=str(k[1]))


def read_release(path: str | Path, family: str | ReleaseFamily | None = None,
                 report: Report | None = None) -> tuple[pd.DataFrame, Report]:
    """Read any published file of a known release family with the reader of its layout.

    Returns the reader's frame (see :func:`read_ees`, :func:`read_ees_wide`,
    :func:`read_lait`, :func:`read_national_metrics`, :func:`read_cin_need`,
    :func:`read_ons_mye`) and the report.
    """
    fam = RELEASES[family] if isinstance(family, str) else family or family_of(path)
    if fam is None:
        raise DataError(f"{path}: unknown release family (file name matches none of "
                        f"{[p for f in RELEASES.values() for p in f.patterns]})")
    if fam.layout == "ees":
        return read_ees(path, fam, report)
    if fam.layout == "ees_wide":
        return read_ees_wide(path, fam, report)
    reader = {"lait": read_lait, "national_metric": read_national_metrics,
              "cin_need": read_cin_need, "ons_mye": read_ons_mye}[fam.layout]
    return reader(path, report)


# --------------------------------------------------------------------------- other layouts


def read_lait(path: str | Path, report: Report | None = None) -> tuple[pd.DataFrame, Report]:
    """Read the LAIT SEN indicator file: ``year, la_number, area_name, measure, value, flag``.

    Percentages are kept as published (``value`` in percent).  ``-`` is missing.
    """
    path = Path(path)
    fam = RELEASES["lait_sen"]
    df, report = _open_family(path, fam, report)
    if df is None:
        return pd.DataFrame(), report
    df = df.reset_index(drop=True)
    df = df[df["short_desc"].isin(list(fam.values))]
    val, flag = parse_counts(df["value"], path.name, "value", report, integer=False)
    out = pd.DataFrame({
        "year": pd.to_numeric(df["year"], errors="coerce").astype("Int64").to_numpy(),
        "la_number": df["la_number"].str.replace(r"\.0$", "", regex=True).to_numpy(),
        "area_name": df["area_name"].to_numpy(),
        "measure": df["short_desc"].map(fam.values).to_numpy(),
        "value": val, "flag": flag})
    return out, report


def read_national_metrics(path: str | Path,
                          report: Report | None = None) -> tuple[pd.DataFrame, Report]:
    """Read ``national/school_census_sen_national.csv``: ``year, metric, value, source``."""
    path = Path(path)
    df, report = _open_family(path, RELEASES["school_census_national"], report)
    if df is None:
        return pd.DataFrame(), report
    val, flag = parse_counts(df["value"], path.name, "value", report, integer=False)
    out = pd.DataFrame({"year": pd.to_numeric(df["year"], errors="coerce").to_numpy(),
                        "metric": df["metric"].to_numpy(), "value": val, "flag": flag,
                        "source": df.get("source", pd.Series([""] * len(df))).to_numpy()})
    return out, report


def read_cin_need(path: str | Path, report: Report | None = None) -> tuple[pd.DataFrame, Report]:
    """Read national pupils by SEN provision and primary need (all-pupils rows).

    Returns ``year, area, plan, need, count, flag`` with ``year`` the January census year
    (``202122`` -> 2022) and ``plan`` ``ehcp`` / ``sen_support``.
    """
    path = Path(path)
    fam = RELEASES["cin_sen_by_need"]
    df, report = _open_family(path, fam, report)
    if df is None:
        return pd.DataFrame(), report
    df = df.reset_index(drop=True)
    df["_line"] = np.arange(len(df)) + 2
    df = df[df["social_care_group"] == CIN_ALL_PUPILS]
    rows = []
    for n in NEEDS:
        up = {v: k for k, v in NEED_COLUMN_ALIASES.items()}.get(n, n.upper())
        for suffix, plan in (("ss", "sen_support"), ("se", "ehcp")):
            col = f"t_{up}_{suffix}"
            if col not in df:
                report.add("error", path.name, 1, col, None, "need column missing")
                continue
            val, flag = parse_counts(df[col], path.name, col, report)
            rows.append(pd.DataFrame({
                "year": df["time_period"].str[:4].astype(int).to_numpy() + 1,
                "area": ENGLAND, "plan": plan, "need": n, "count": val, "flag": flag}))
    return pd.concat(rows, ignore_index=True), report


def read_ons_mye(path: str | Path, report: Report | None = None) -> tuple[pd.DataFrame, Report]:
    """Read ONS mid-year estimates by single year of age 0-25 (areas or national file).

    Returns ``mid_year, area, area_name, age, count``; the national file (no area column)
    is England.
    """
    path = Path(path)
    df, report = _open_family(path, RELEASES["ons_mye"], report)
    if df is None:
        return pd.DataFrame(), report
    cnt, flag = parse_counts(df["population"], path.name, "population", report)
    out = pd.DataFrame({
        "mid_year": pd.to_numeric(df["year"], errors="coerce").to_numpy(),
        "area": df["area"].replace(ALIAS_TO_CODE).to_numpy() if "area" in df else ENGLAND,
        "area_name": df["area_name"].to_numpy() if "area_name" in df else "England",
        "age": pd.to_numeric(df["age"], errors="coerce").to_numpy(),
        "count": cnt, "flag": flag})
    return out, report
