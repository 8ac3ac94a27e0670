"""Build ``simsend/data/builtin/establishments.csv.gz``: EHC plans by SEN2 establishment type.

Usage::

    python scripts/build_establishments.py ../shared/data [--out simsend/data/builtin]

Reads the SEN2 2025 release's ``sen2_2025/data/caseload.csv`` (person-level collection,
January 2019-2025) and keeps, for the rows of the ``All EHC plans`` breakdown, every detail
establishment column of :data:`simsend.data.releases.ESTABLISHMENT_COLUMNS` as tidy rows::

    year,area,establishment,count

``year`` is the January census (``201819`` -> 2019, :func:`simsend.data.readers.census_year`);
``area`` the GSS code as in ``areas.csv`` (England ``E92000001``, regions, councils; other
codes of a council relabelled as the other builtin files are, ``CODE_ALIASES``); former
councils (Cumbria to January 2023, Northamptonshire to January 2021, Bournemouth, Poole and
Dorset in January 2019) stay under their own codes: the file holds published counts only, never
apportioned ones (:mod:`simsend.data.lsrp` turns them into shares and falls back on a
successor's predecessors).  Cells printed ``x``, ``z``, ``c``, ``:`` or empty (suppressed, not
collected that year, not applicable) are left out, so an absent row means "not published" and
never 0.  Subtotal (``*_total``, ``ed_elsewhere``) and percentage (``*_pc``) columns are never
kept; each subtotal is checked against its detail columns.  Declared recording errors of the
family (:data:`simsend.data.releases.PUBLISHED_DEFECTS`, Newham January 2025) are left out.

The output is byte-for-byte deterministic (sorted rows, gzip with ``mtime=0`` and no file
name).  The script adds (or replaces) its own entry ``sen2_establishments`` under
``sources`` in ``PROVENANCE.json`` (with ``built_by``, so that ``scripts/build_builtin.py``
carries it over) and the file's checksum under ``shipped_sha256``; nothing else in
``PROVENANCE.json`` changes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simsend.data.readers import ALIAS_TO_CODE, census_year  # noqa: E402
from simsend.data.releases import (  # noqa: E402
    ENGLAND,
    ESTABLISHMENT_COLUMNS,
    ESTABLISHMENT_SUBTOTALS,
    MISSING_MARKERS,
    PUBLISHED_DEFECTS,
    RELEASES,
)
from simsend.io import atomic_write, file_sha256  # noqa: E402

SOURCE = "sen2_2025/data/caseload.csv"
"""The input, under the data folder."""
FAMILY = "sen2_caseload"
"""Release family of the input (title, publisher, URL, defects)."""
TOPIC = "All EHC plans"
"""The ``breakdown_topic`` / ``breakdown`` of the rows kept (every plan, no breakdown)."""
OUT_NAME = "establishments.csv.gz"
PROVENANCE_KEY = "sen2_establishments"
COLUMNS = ("year", "area", "establishment", "count")
GEO = ("time_period", "time_identifier", "geographic_level", "country_code", "country_name",
       "region_code", "region_name", "new_la_code", "old_la_code", "la_name",
       "breakdown_topic", "breakdown")
"""Columns of the input that are not counts."""
TOTAL_COLUMN = "ehcplans"


def _area(row: pd.Series) -> str:
    """GSS code of a row: the country, region or council code by geographic level."""
    level = row["geographic_level"].strip().lower()
    if level.startswith("national"):
        code = row["country_code"] or ENGLAND
    elif level.startswith("regional"):
        code = row["region_code"]
    else:
        code = row["new_la_code"] or row["old_la_code"]
    return ALIAS_TO_CODE.get(code.strip(), code.strip())


def _count(value: str, line: int, column: str) -> int | None:
    """Return a published cell as a whole number, or None for a marker (not published)."""
    s = value.strip()
    if re.fullmatch(r"\d+", s):
        return int(s)
    if s in MISSING_MARKERS:
        return None
    raise SystemExit(f"{SOURCE}: row {line}: column {column!r}: expected a whole number or a "
                     f"published marker, got {value!r}")


def build(src: Path, areas: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Return the tidy table and notes for provenance.

    Parameters
    ----------
    src : Path
        ``caseload.csv`` as published.
    areas : DataFrame
        ``areas.csv`` of the builtin extract (``code``, ``status``).

    Returns
    -------
    table : DataFrame
        Columns :data:`COLUMNS`, sorted by year, area and the order of
        ``ESTABLISHMENT_COLUMNS``.
    notes : dict
        Rows left out and why.

    """
    raw = pd.read_csv(src, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    detail = [c for c, _ in ESTABLISHMENT_COLUMNS]
    missing = [c for c in (*GEO, TOTAL_COLUMN, *detail) if c not in raw.columns]
    if missing:
        raise SystemExit(f"{SOURCE}: missing column(s) {missing}")
    # a column the mapping does not know would be dropped silently: refuse instead
    known = {*GEO, TOTAL_COLUMN, *detail, *ESTABLISHMENT_SUBTOTALS}
    unknown = [c for c in raw.columns if c not in known and not c.lower().endswith("_pc")]
    if unknown:
        raise SystemExit(f"{SOURCE}: column(s) {unknown} not in ESTABLISHMENT_COLUMNS "
                         "(simsend/data/releases.py): map them first")
    raw["_line"] = range(2, len(raw) + 2)
    rows = raw[(raw["breakdown_topic"].str.strip() == TOPIC)
               & (raw["breakdown"].str.strip() == TOPIC)]
    codes = set(areas.loc[areas["status"].isin(["current", "former"]), "code"])
    defects = [(set(d.years), set(d.areas)) for d in PUBLISHED_DEFECTS
               if d.family == FAMILY and d.flag == "recording_error"
               and d.scope in ("all", "placement")]
    out, dropped_area, dropped_defect, empty = [], set(), [], []
    for _, r in rows.iterrows():
        year = int(census_year(pd.Series([r["time_period"]])).iloc[0])
        area = _area(r)
        if area not in codes:
            dropped_area.add(area)
            continue
        if any(year in ys and (not ars or area in ars) for ys, ars in defects):
            dropped_defect.append(f"{year} {area}")
            continue
        vals = {c: _count(r[c], r["_line"], c) for c in detail}
        for sub, parts in ESTABLISHMENT_SUBTOTALS.items():
            tot = _count(r[sub], r["_line"], sub)
            got = [vals[c] for c in parts]
            if parts and tot is not None and None not in got and sum(got) != tot:
                raise SystemExit(f"{SOURCE}: row {r['_line']}: column {sub!r}: {tot} is not the "
                                 f"sum of {', '.join(parts)} ({sum(got)})")
        kept = [(year, area, c, v) for c, v in vals.items() if v is not None]
        if not kept:
            empty.append(f"{year} {area}")
        out += kept
    df = pd.DataFrame(out, columns=list(COLUMNS))
    if df.duplicated(["year", "area", "establishment"]).any():
        dup = df[df.duplicated(["year", "area", "establishment"], keep=False)].head(3)
        raise SystemExit(f"{SOURCE}: an area appears twice in a year: {dup.to_dict('records')}")
    order = {c: i for i, c in enumerate(detail)}
    df = (df.assign(_o=df["establishment"].map(order))
          .sort_values(["year", "area", "_o"], kind="stable").drop(columns="_o")
          .reset_index(drop=True))
    notes = {"areas_not_in_areas_csv": sorted(dropped_area),
             "recording_errors_left_out": dropped_defect,
             "area_years_all_suppressed": empty}
    return df, notes


def write_gz(df: pd.DataFrame, path: Path) -> None:
    """Write the table as gzip'd CSV, byte-for-byte deterministic (mtime 0, no file name)."""
    text = df.to_csv(index=False, lineterminator="\n").encode("utf-8")
    data = gzip.compress(text, compresslevel=9, mtime=0)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def provenance_entry(src: Path, df: pd.DataFrame, notes: dict) -> dict:
    """Return the file's ``sources`` entry of PROVENANCE.json (no clock: deterministic)."""
    fam = RELEASES[FAMILY]
    years = sorted(df["year"].unique())
    return {
        "file": SOURCE, "sha256": file_sha256(src), "family": FAMILY,
        "title": "EHC plans at January by SEN2 establishment type (person-level SEN2, January "
                 f"{years[0]}-{years[-1]})",
        "publisher": fam.publisher, "url": fam.url, "release": "2025",
        "built_by": "python scripts/build_establishments.py DATA "
                    "(scripts/build_establishments.py), not scripts/build_builtin.py",
        "shipped": OUT_NAME,
        "kept": f"rows with breakdown_topic = breakdown = '{TOPIC}'; every detail "
                "establishment column of simsend.data.releases.ESTABLISHMENT_COLUMNS as tidy "
                "rows year,area,establishment,count (year = January census year, 201819 -> "
                "2019; area = GSS code as in areas.csv, aliases relabelled, former councils "
                "under their own codes, not apportioned); cells x, z, c or empty left out "
                "(absent row = not published, never 0); subtotal (*_total, ed_elsewhere) and "
                "percentage (*_pc) columns not kept (subtotals checked against their parts)",
        "left_out": {"recording_errors (PUBLISHED_DEFECTS)": notes["recording_errors_left_out"],
                     "areas_not_in_areas_csv": notes["areas_not_in_areas_csv"],
                     "area_years_with_every_cell_suppressed": notes[
                         "area_years_all_suppressed"]},
        "rows": int(len(df)),
        "used_by": "simsend.data.lsrp (shares of the LSRP provision types within each engine "
                   "placement group)",
    }


def update_provenance(path: Path, entry: dict, sha: str) -> None:
    """Add or replace this file's entry and checksum; leave every other entry as it is."""
    prov = json.loads(path.read_text())
    prov["sources"][PROVENANCE_KEY] = entry
    prov["shipped_sha256"][OUT_NAME] = sha
    text = json.dumps(prov, indent=1, default=str) + "\n"  # build_builtin.py's format
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def main(argv: list[str] | None = None) -> int:
    """Build the file; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="folder of published data (e.g. ../shared/data)")
    p.add_argument("--out", type=Path, default=ROOT / "simsend" / "data" / "builtin")
    args = p.parse_args(argv)
    src = args.data / SOURCE
    if not src.exists():
        raise SystemExit(f"missing input {FAMILY}: {src}")
    areas_path = args.out / "areas.csv"
    if not areas_path.exists():
        raise SystemExit(f"{areas_path}: not found (build the extract first: "
                         "scripts/build_builtin.py)")
    areas = pd.read_csv(areas_path, dtype=str, keep_default_na=False)
    df, notes = build(src, areas)
    out = args.out / OUT_NAME
    write_gz(df, out)
    update_provenance(args.out / "PROVENANCE.json", provenance_entry(src, df, notes),
                      file_sha256(out))
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {len(df)} rows, "
          f"{df['area'].nunique()} areas, January {df['year'].min()}-{df['year'].max()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
