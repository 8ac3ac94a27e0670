"""Council geography: current areas, boundary changes, apportionment and area look-up."""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simsend.data.errors import DataError, Finding
from simsend.data.releases import BOUNDARY_CHANGES, ENGLAND, REGION_PREFIX, BoundaryChange
from simsend.data.rounding import controlled_round, ipf, largest_remainder

APPORTION_FLAG = "apportioned"
INCONSISTENT_FLAG = "inconsistent_total"
"""Flag of breakdown rows whose published table has a different total from the total row."""


def _shares(ref: pd.DataFrame, new: tuple[str, ...], value: str) -> np.ndarray:
    v = ref.set_index("area")[value].reindex(list(new)).to_numpy(float)
    return np.where(np.isfinite(v) & (v > 0), v, 0.0)


def apportion(df: pd.DataFrame, series: list[str], breakdowns: list[str],
              changes: tuple[BoundaryChange, ...] = BOUNDARY_CHANGES,
              value: str = "count",
              fallback: tuple | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Put every year of a long table on the current council geography.

    For each boundary change and each year that has any of the change's old areas and none
    of its new ones, the old areas' rows are replaced by rows for the new areas: a recode just
    relabels; otherwise each count is split over the new areas by their shares in the first
    year of the same table that has them (same series and category).  Where the table has a
    total row (every breakdown ``"all"``), the new areas' totals are split first and each
    breakdown is then fitted to both the old breakdown and the new totals (IPF) and rounded
    with exact margins, so totals still equal the sums of their breakdowns.

    Parameters
    ----------
    df : DataFrame
        Columns ``year, area, value, flag`` plus ``series`` and ``breakdowns`` columns.
    series : list of str
        Columns identifying one series (e.g. ``["measure"]``).
    breakdowns : list of str
        Breakdown columns (``"all"`` = total); each row breaks down at most one of them.
    fallback : tuple, optional
        Values of the ``series`` columns of the series whose shares are used for a series
        that has no new-area value in the reference year (e.g. a flow no longer published
        after the change); without it such a series is split evenly.

    Returns
    -------
    df : DataFrame
        On current geography, apportioned rows flagged ``"apportioned"``.
    log : list of dict
        One entry per change and year applied.

    """
    log: list[dict] = []
    out = df
    for ch in changes:
        present = out.groupby("year")["area"].agg(set)
        todo = [y for y, s in present.items() if s & set(ch.old) and not s & set(ch.new)]
        if not todo:
            continue
        if len(ch.old) == 1 and len(ch.new) == 1:
            mask = out["year"].isin(todo) & (out["area"] == ch.old[0])
            out = out.copy()
            out.loc[mask, "area"] = ch.new[0]
            log.append({"change": ch.note, "kind": "recode", "years": sorted(map(int, todo)),
                        "old": list(ch.old), "new": list(ch.new)})
            continue
        ref_years = [y for y, s in present.items() if set(ch.new) <= s]
        if not ref_years:
            raise DataError(f"no year has the new areas {ch.new} to apportion {ch.old} "
                            f"({ch.note})")
        ref_year = min(ref_years)
        ref = out[(out["year"] == ref_year) & out["area"].isin(ch.new)]
        new_rows = []
        for y in todo:
            cur = out[(out["year"] == y) & out["area"].isin(ch.old)]
            new_rows.append(_apportion_year(cur, ref, ch, series, breakdowns, value, int(y),
                                            fallback))
        drop = out["year"].isin(todo) & out["area"].isin(ch.old)
        out = pd.concat([out[~drop]] + new_rows, ignore_index=True)
        log.append({"change": ch.note, "kind": ch.kind, "years": sorted(map(int, todo)),
                    "old": list(ch.old), "new": list(ch.new), "shares_from_year": int(ref_year)})
    return out, log


def _has_new(ref, new, breakdowns, value) -> bool:
    """Whether ``ref`` holds a positive total for any of the ``new`` areas."""
    tot = ref[np.logical_and.reduce([ref[b] == "all" for b in breakdowns])] if breakdowns \
        else ref
    v = tot[tot["area"].isin(new)][value].to_numpy(float)
    return bool((np.isfinite(v) & (v > 0)).any())


def _select_series(ref, series, key):
    for col, v in zip(series, key, strict=True):
        ref = ref[ref[col] == v]
    return ref


def _apportion_year(cur, ref, ch, series, breakdowns, value, year, fallback=None):
    rows = []
    keys = series + breakdowns
    template = cur.drop_duplicates(keys).set_index(keys)
    groups = cur.groupby(series, dropna=False) if series else [((), cur)]
    for skey, part in groups:
        skey = skey if isinstance(skey, tuple) else (skey,)
        rsel = _select_series(ref, series, skey)
        if fallback is not None and not _has_new(rsel, ch.new, breakdowns, value):
            rsel = _select_series(ref, series, tuple(fallback))
        is_tot = np.logical_and.reduce([part[b] == "all" for b in breakdowns]) \
            if breakdowns else np.ones(len(part), bool)
        tot_rows = part[is_tot]
        new_tot = None
        if len(tot_rows):
            old_tot = tot_rows[value].sum(min_count=len(tot_rows))
            rt = rsel[np.logical_and.reduce([rsel[b] == "all" for b in breakdowns])] \
                if breakdowns else rsel
            if np.isfinite(old_tot):
                new_tot = largest_remainder(int(round(old_tot)), _shares(rt, ch.new, value))
            rows.append(_rows(template, skey + ("all",) * len(breakdowns), ch.new,
                              new_tot if new_tot is not None else [np.nan] * len(ch.new),
                              keys, value))
        for b in breakdowns:
            others = [o for o in breakdowns if o != b]
            sel = (part[b] != "all")
            for o in others:
                sel &= part[o] == "all"
            cats = part[sel].groupby(b, sort=False)[value].sum(min_count=1)
            if cats.empty:
                continue
            if new_tot is None or not np.isfinite(cats.to_numpy(float)).all():
                for c, v in cats.items():
                    rr = rsel[rsel[b] == c]
                    vals = (largest_remainder(int(round(v)), _shares(rr, ch.new, value))
                            if np.isfinite(v) else [np.nan] * len(ch.new))
                    k = tuple(c if kk == b else "all" for kk in breakdowns)
                    rows.append(_rows(template, skey + k, ch.new, vals, keys, value))
                continue
            w = np.array([_shares(rsel[rsel[b] == c], ch.new, value) for c in cats.index])
            w = w + 1e-6 * max(1.0, w.max())
            old = np.round(cats.to_numpy(float)).astype(np.int64)
            cols = new_tot
            extra = ""
            if old.sum() != new_tot.sum():  # published breakdown disagrees with the total
                cols = largest_remainder(int(old.sum()), new_tot.astype(float))
                extra = INCONSISTENT_FLAG
            tab = controlled_round(ipf(w, old, cols), old, cols)
            for i, c in enumerate(cats.index):
                k = tuple(c if kk == b else "all" for kk in breakdowns)
                rows.append(_rows(template, skey + k, ch.new, tab[i], keys, value, extra))
    out = pd.concat(rows, ignore_index=True) if rows else cur.iloc[:0]
    out["year"] = year
    return out


def _rows(template, key, new_areas, values, keys, value, extra=""):
    base = template.loc[key] if key in template.index else template.iloc[0]
    recs = []
    for a, v in zip(new_areas, values, strict=True):
        r = base.to_dict()
        r.update(dict(zip(keys, key, strict=True)))
        r["area"] = a
        r[value] = float(v)
        r["flag"] = (APPORTION_FLAG + (";" + extra if extra else "")) if np.isfinite(float(v)) \
            else (str(base.get("flag", "")) or "not_available")
        recs.append(r)
    return pd.DataFrame(recs)


# --------------------------------------------------------------------------- area look-up


@dataclass(frozen=True)
class AreaSelection:
    """Areas a spec resolves to: each output area is the sum of its member codes."""

    codes: tuple[str, ...]
    names: tuple[str, ...]
    members: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...]


def old_code_map(areas: pd.DataFrame) -> dict[str, str]:
    """DfE's old three-digit LA number -> GSS code of an area table (current councils first).

    For publications keyed by LA number (LAIT, DSG tables, tribunal statistics).
    """
    by_old: dict[str, str] = {}
    for r in areas.sort_values("status", key=lambda s: s != "current").itertuples():
        old = "" if pd.isna(r.old_la_code) else str(int(float(r.old_la_code)))
        if old and old not in by_old:
            by_old[old] = r.code
    return by_old


def resolve_areas(requested: tuple[str, ...], table: pd.DataFrame) -> AreaSelection:
    """Resolve requested area codes against an area table.

    Parameters
    ----------
    requested : tuple of str
        GSS codes, DfE 3-digit LA numbers, exact area names, ``"all"`` (every current
        council as its own area), a former council's code (the sum of its successors) or
        another code of a current council (``status = "alias"``: that council, e.g. ONS's
        E06000065 for North Yorkshire, E10000023 in DfE's files).
    table : DataFrame
        Columns ``code, name, level, old_la_code, region_code, status`` (``current``,
        ``former`` or ``alias``), ``successors``.

    Raises
    ------
    DataError
        For an unknown code, with the closest codes and names suggested.

    """
    codes, names, members, notes = [], [], [], []
    cur = table[table["status"] == "current"]
    by_code = {str(c): r for c, r in zip(table["code"], table.to_dict("records"), strict=True)}
    by_old = {}
    for r in table.to_dict("records"):
        if r.get("old_la_code"):
            # prefer the current area holding a DfE number
            if r["old_la_code"] not in by_old or r["status"] == "current":
                by_old[str(r["old_la_code"])] = r
    by_name = {str(n).lower(): r for n, r in zip(cur["name"], cur.to_dict("records"),
                                                 strict=True)}
    for req in requested:
        key = str(req).strip()
        if key.lower() == "all":
            las = cur[cur["level"] == "la"]
            for r in las.to_dict("records"):
                codes.append(r["code"])
                names.append(r["name"])
                members.append((r["code"],))
            continue
        r = by_code.get(key) or by_code.get(key.upper()) or by_old.get(key) or \
            by_name.get(key.lower())
        if r is None:
            raise DataError(f"unknown area {key!r}: {_suggest(key, table)}")
        if r["status"] == "alias":  # another code of a current council: that council
            target = by_code.get(str(r["successors"]).split(";")[0])
            if target is None:
                raise DataError(f"area {key!r}: alias of unknown code {r['successors']!r}")
            codes.append(target["code"])
            names.append(target["name"])
            members.append((target["code"],))
            notes.append(f"{key}: another code of {target['name']}, read as "
                         f"{target['code']} (the code of the data)")
        elif r["status"] == "current":
            codes.append(r["code"])
            names.append(r["name"])
            members.append((r["code"],))
        else:
            succ = tuple(s for s in str(r["successors"]).split(";") if s)
            codes.append(r["code"])
            names.append(f"{r['name']} (former; = {' + '.join(succ)})")
            members.append(succ)
            notes.append(f"{key}: former council {r['name']} replaced by {', '.join(succ)}; "
                         "its data are the sum of those areas (merged area)")
    dup = {c for c in codes if codes.count(c) > 1}
    if dup:
        raise DataError(f"area(s) requested more than once: {sorted(dup)}")
    return AreaSelection(tuple(codes), tuple(names), tuple(members), tuple(notes))


def _suggest(key: str, table: pd.DataFrame) -> str:
    pairs = [(f"{c} ({n})", s) for c, n in zip(table["code"], table["name"], strict=True)
             for s in (str(c), str(n))]
    cands = [s for _, s in pairs]
    close = difflib.get_close_matches(key, cands, n=5, cutoff=0.6)
    close += difflib.get_close_matches(key.title(), cands, n=5, cutoff=0.6)
    hits = []
    for s in close:
        for lab, s2 in pairs:
            if s2 == s and lab not in hits:
                hits.append(lab)
    hint = f"did you mean {', '.join(hits[:5])}?" if hits else "no close match."
    return (f"{hint} Expected a GSS code ({ENGLAND} England, {REGION_PREFIX}... regions, "
            "E06/E08/E09/E10... councils), a 3-digit DfE LA number, a council name, or 'all'")


# --------------------------------------------------------------------------- codes in a user's file


def csv_area_rows(path: str | Path, column: str = "area") -> list[tuple[int, str]]:
    """Return ``(line, code)`` of each data row of a CSV file's ``column``, as written.

    ``line`` counts every line of the file (the header and any ``#`` comment lines, which are
    skipped, included).  A file that cannot be read, or has no such column, gives ``[]``: its
    own reader reports that.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            kept = [(i, line) for i, line in enumerate(f.read().splitlines(), start=1)
                    if not line.startswith("#")]
    except (OSError, UnicodeDecodeError):
        return []
    reader = csv.DictReader(line for _, line in kept)
    if reader.fieldnames is None or column not in reader.fieldnames:
        return []
    return [(kept[k][0], r[column] or "") for k, r in enumerate(reader, start=1)]


def unknown_area_findings(rows: Iterable[tuple[int, str]], file: str, column: str,
                          run_areas: Sequence[str], table: pd.DataFrame) -> list[Finding]:
    """Return an error finding for each row whose area code would vanish from a run unseen.

    A reader that keeps the rows of the run's areas skips every other row, so a mistyped
    code is lost without a word.  A row is fine when its code is one of ``run_areas`` or a
    code of ``table`` that is not in the run (a file for every council, run on one).  It is
    an error when its code is unknown to both (with the closest codes suggested and the
    run's areas listed), a DfE LA number instead of a code, or another code of one of the
    run's areas (``status = "alias"``), which would be skipped though it means that area.

    Parameters
    ----------
    rows : iterable of (int, str)
        Line in the file and area code as written (:func:`csv_area_rows`).
    file, column : str
        Named in the findings.
    run_areas : sequence of str
        The run's area codes.
    table : DataFrame
        Every area the data know: columns ``code, name, status, successors`` (and
        ``old_la_code``), as ``areas.csv``.

    Examples
    --------
    >>> t = pd.DataFrame({"code": ["E06000017", "E06000018"], "name": ["Rutland", "Nottingham"],
    ...                   "status": "current", "successors": "", "old_la_code": ""})
    >>> found = unknown_area_findings([(2, "E06000018"), (3, "E0600017")], "plan.csv", "area",
    ...                               ["E06000017"], t)
    >>> [(f.row, f.column, f.value) for f in found]
    [(3, 'area', 'E0600017')]
    >>> found[0].message.split(" This run")[0]
    'unknown area code: did you mean E06000017 (Rutland)?'

    """
    run = [str(a) for a in run_areas]
    recs = table.to_dict("records")
    by_code = {str(r["code"]): r for r in recs}
    by_old = {str(r.get("old_la_code") or ""): r for r in recs
              if r.get("status") == "current" and str(r.get("old_la_code") or "")}
    listed = f"{run[:10]}{f' and {len(run) - 10} more' if len(run) > 10 else ''}"
    out = []
    for line, code in rows:
        r = by_code.get(code)
        if code in run or (r is not None and r["status"] != "alias"):
            continue
        if r is not None:  # another code of a council: wrong only if the run has that council
            target = str(r["successors"]).split(";")[0]
            if target not in run:
                continue
            why = (f"another code of {r['name']}, which this run's data call {target}; write "
                   f"{target} (another code is skipped)")
        elif code.strip() in by_old:
            o = by_old[code.strip()]
            why = (f"a DfE LA number ({o['name']}); a row names an area by its code: write "
                   f"{o['code']}")
        else:
            why = (f"unknown area code: {closest_area(code, table, run)} This run's areas are "
                   f"{listed}; name an area by the code of the run's data (the data's other "
                   "areas are skipped)")
        out.append(Finding("error", file, line, column, code, why))
    return out


def closest_area(code: str, table: pd.DataFrame, first: Sequence[str] = ()) -> str:
    """Return ``"did you mean ...?"`` for a code no area has, or ``"no close match."``.

    The same code up to case and spaces, then close codes (``first``, e.g. a run's areas,
    before the table's), then an area's name (exact, then close).

    Examples
    --------
    >>> t = pd.DataFrame({"code": ["E06000017", "E10000016"], "name": ["Rutland", "Kent"],
    ...                   "status": "current"})
    >>> closest_area("e06000017 ", t)
    'did you mean E06000017 (Rutland)?'
    >>> closest_area("E1000016", t) == closest_area("kent", t) == "did you mean E10000016 (Kent)?"
    True

    """
    names = dict(zip(table["code"].astype(str), table["name"].astype(str), strict=True))
    by_name = {str(n).lower(): str(c) for c, n, st in zip(table["code"], table["name"],
                                                          table["status"], strict=True)
               if st != "alias"}

    def label(c: str) -> str:
        return c if names.get(c, c) == c else f"{c} ({names[c]})"

    key = code.strip()
    pools = [[str(c) for c in first], list(names)]
    for c in (c for pool in pools for c in pool):
        if c.upper() == key.upper():
            return f"did you mean {label(c)}?"
    if key.lower() in by_name:
        return f"did you mean {label(by_name[key.lower()])}?"
    for pool in pools:
        hits = difflib.get_close_matches(key.upper(), pool, n=3, cutoff=0.75)
        if hits:
            return f"did you mean {', '.join(label(h) for h in hits)}?"
    hits = difflib.get_close_matches(key.lower(), list(by_name), n=3, cutoff=0.75)
    if hits:
        return f"did you mean {', '.join(label(by_name[h]) for h in hits)}?"
    return "no close match."
