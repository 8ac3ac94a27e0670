"""SEND Tribunal appeals per council: the shipped tidy file and its reader.

The Ministry of Justice and DfE publish, with the SEN2 2025 release, appeals registered at the
SEND Tribunal and the council's *appealable decisions* (refusals to assess + decisions not to
issue + EHC plans at January + plans ceased because needs are met, all from SEN2) per council
and calendar year 2014-2024 (``supporting-files/SEND Tribunals and appeal rate 2014-2024.csv``).
:func:`build_tribunals` turns that wide file into the tidy ``simsend/data/builtin/tribunals.csv``
(one row per council and year; run ``python -m simsend.data.tribunals SRC`` to rebuild it) and
:func:`read_tribunals` reads it back, checked.

Tidy columns: ``year`` (calendar year), ``area`` (GSS code of the council as in
``areas.csv``, former councils under their own code; England ``E92000001``), ``appeals``,
``appealable_decisions`` (whole numbers; empty = not published) and ``flag``
(``not_available`` for the publisher's "..", blank or "x", ``suppressed`` for "~"; empty
otherwise).  The publisher's "-" is nil: its printed rate is 0.00%, so it is 0.  The 2024
"In development" column (a new definition of appealable decisions) is not kept.
"""

from __future__ import annotations

import csv
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from simsend.data.errors import DataError, cell_error
from simsend.data.geography import old_code_map

TRIBUNALS_FILE = "tribunals.csv"
"""Name of the tidy file in ``simsend/data/builtin``."""
COLUMNS = ("year", "area", "appeals", "appealable_decisions", "flag")
"""Columns of the tidy file, in order."""
FLAGS = ("", "not_available", "suppressed")
"""Allowed values of ``flag``."""
ENGLAND = "E92000001"
_MISSING = {"..": "not_available", "": "not_available", "x": "not_available",
            "~": "suppressed"}


def tribunals_path() -> Path:
    """Path of the shipped tidy file."""
    from simsend.data.baseline import builtin_dir  # a sibling's helper, read lazily
    return builtin_dir() / TRIBUNALS_FILE


def _cell(raw: str) -> tuple[float, str]:
    """Return a cell as (value, flag): "-" is nil; "..", "x", "~" and blank are missing."""
    s = raw.strip()
    if s in _MISSING:
        return np.nan, _MISSING[s]
    if s == "-":
        return 0.0, ""
    return float(s.replace(",", "")), ""


def _code_map(areas: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    """Old three-digit LA code -> GSS code (current councils first), and name -> GSS code."""
    by_old = old_code_map(areas)
    by_name = {str(r.name).lower(): r.code for r in areas.itertuples() if r.status != "alias"}
    return by_old, by_name


def build_tribunals(src: str | Path, areas: pd.DataFrame) -> pd.DataFrame:
    """Return the tidy table of the published wide file ``src``.

    Parameters
    ----------
    src : path
        ``SEND Tribunals and appeal rate 2014-2024.csv`` as published.
    areas : DataFrame
        ``simsend/data/builtin/areas.csv`` (``code, name, old_la_code, status``): maps the
        file's LA codes (or, where it prints none, the name without footnote digits) to GSS.

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS`, sorted by area and year.

    Raises
    ------
    DataError
        A row whose council cannot be placed or whose count is not a number.

    """
    src = Path(src)
    rows = list(csv.reader(src.read_text(encoding="utf-8-sig").splitlines()))
    head = next(i for i, r in enumerate(rows) if r and r[0].strip() == "Local Authority")
    years = [(j, int(v)) for j, v in enumerate(rows[head]) if re.fullmatch(r"\d{4}", v.strip())]
    by_old, by_name = _code_map(areas)
    out = []
    for i, r in enumerate(rows[head + 2:], start=head + 3):
        name = r[0].strip() if r else ""
        if name.lower().startswith("england total excluding") or name.startswith("Sources"):
            break
        if not name or not any(c.strip() for c in r[2:]):
            continue  # region headings and blank lines
        clean = re.sub(r"[\d,]+$", "", name).strip().lower()
        code = (ENGLAND if clean.startswith("england total")
                else by_old.get(r[1].strip()) or by_name.get(clean))
        if code is None:
            raise DataError(f"{src.name}: row {i}: column 'LA code': council {name!r} "
                            f"(code {r[1]!r}) is not in areas.csv")
        for j, year in years:
            try:
                (a, fa), (n, fn) = _cell(r[j]), _cell(r[j + 1])
            except ValueError:
                raise DataError(f"{src.name}: row {i}: column {year}: expected whole numbers, "
                                f"got {r[j]!r}, {r[j + 1]!r}") from None
            out.append((year, code, a, n, fa or fn))
    df = pd.DataFrame(out, columns=list(COLUMNS))
    return df.sort_values(["area", "year"], kind="stable").reset_index(drop=True)


def write_tribunals(df: pd.DataFrame, path: str | Path) -> None:
    """Write the tidy table to ``path`` (a temporary file renamed, so never half-written)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        df.to_csv(tmp, index=False, float_format="%.0f", lineterminator="\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)



def read_tribunals(path: str | Path | None = None) -> pd.DataFrame:
    """Read a tidy tribunal file (default: the shipped one), checked.

    Parameters
    ----------
    path : path, optional
        A file in the tidy format (:data:`COLUMNS`); default :func:`tribunals_path`.

    Returns
    -------
    DataFrame
        ``year`` int64, ``area`` str, ``appeals`` and ``appealable_decisions`` float64 (NaN =
        not published, never 0), ``flag`` str.

    Raises
    ------
    DataError
        Missing columns, a year or count that is not a whole number >= 0, more appeals than
        appealable decisions, an unknown flag, or a (year, area) given twice; the message
        names the file, row and column.

    Examples
    --------
    >>> df = read_tribunals()
    >>> int(df.loc[(df.area == "E92000001") & (df.year == 2024), "appeals"].iloc[0])
    22276

    """
    path = Path(path) if path is not None else tribunals_path()
    file = path.name
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot be read as CSV: {exc}") from None
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"{file}: missing column(s) {missing} (expected {list(COLUMNS)})")
    out = {c: np.full(len(raw), np.nan) for c in ("year", "appeals", "appealable_decisions")}
    for c in out:
        for i, v in enumerate(raw[c]):
            s = v.strip()
            if s == "" and c != "year":
                continue
            try:
                x = float(s)
            except ValueError:
                x = -1.0
            if not (x >= 0 and x == int(x)):
                raise cell_error(file, i + 2, c, v, "expected a whole number >= 0"
                            + ("" if c == "year" else " or an empty cell"))
            out[c][i] = x
    for i, f in enumerate(raw["flag"]):
        if f not in FLAGS:
            raise cell_error(file, i + 2, "flag", f, f"expected one of {list(FLAGS)}")
    over = np.flatnonzero(out["appeals"] > out["appealable_decisions"])
    if len(over):
        i = int(over[0])
        raise cell_error(file, i + 2, "appeals", raw["appeals"][i],
                    f"more appeals than appealable decisions ({raw['appealable_decisions'][i]})")
    df = pd.DataFrame({"year": out["year"].astype(np.int64), "area": raw["area"].astype(str),
                       "appeals": out["appeals"],
                       "appealable_decisions": out["appealable_decisions"],
                       "flag": raw["flag"].astype(str)})
    dup = np.flatnonzero(df.duplicated(["year", "area"]).to_numpy())
    if len(dup):
        i = int(dup[0])
        raise cell_error(file, i + 2, "area", df["area"][i], f"year {df['year'][i]} given twice")
    return df


def main(argv: list[str]) -> int:
    """``python -m simsend.data.tribunals SRC [OUT]``: rebuild the tidy file from the source."""
    from simsend.data.baseline import builtin_dir
    if not 1 <= len(argv) <= 2:
        print("usage: python -m simsend.data.tribunals SRC [OUT]", file=sys.stderr)
        return 2
    out = Path(argv[1]) if len(argv) == 2 else builtin_dir() / TRIBUNALS_FILE
    try:
        df = build_tribunals(argv[0], pd.read_csv(builtin_dir() / "areas.csv", dtype=str))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_tribunals(df, out)
    read_tribunals(out)
    print(f"wrote {out}: {len(df)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
