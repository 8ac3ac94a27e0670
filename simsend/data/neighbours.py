"""Children's services statistical neighbours (DfE, as used by LAIT): each council's ten.

The shipped list, ``simsend/data/builtin/neighbours/statistical_neighbours.csv``, is DfE's
May 2025 children's services statistical neighbour groups, converted by :func:`build` from the
workbook the Local Authority Interactive Tool reads (provenance in the folder's ``README.md``).
One row per council and rank (1 = closest), councils named by the GSS code of the builtin
``areas.csv``.  :func:`read_neighbours` reads and checks it; :func:`neighbours_of` gives one
council's ten.

``python -m simsend.data.neighbours SN_XLSX`` rebuilds the CSV from DfE's workbook.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from simsend.data.errors import DataError

NEIGHBOURS_DIR = "neighbours"
NEIGHBOURS_FILE = "statistical_neighbours.csv"
COLUMNS = ("code", "name", "old_la_code", "rank", "neighbour_code", "neighbour_name",
           "neighbour_old_la_code", "closeness")
CLOSENESS = ("Extremely close", "Very close", "Close", "Somewhat close", "Not close")
"""DfE's closeness bands (``SNP`` columns of the workbook)."""


def neighbours_path() -> Path:
    """Return the path of the shipped statistical neighbour list."""
    from simsend.data.baseline import builtin_dir

    return builtin_dir() / NEIGHBOURS_DIR / NEIGHBOURS_FILE


def read_neighbours(path: str | Path | None = None) -> pd.DataFrame:
    """Read and check a statistical neighbour list (default: the shipped one).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`: one row per council and rank (1-10).

    Raises
    ------
    DataError
        A missing file or column, a rank outside 1-10, a council with other than ten
        neighbours, or a council listed as its own neighbour.

    Examples
    --------
    >>> nb = read_neighbours()
    >>> int(nb.groupby("code").size().min()), int(nb["rank"].max())
    (10, 10)

    """
    p = Path(path) if path is not None else neighbours_path()
    if not p.exists():
        raise DataError(f"{p}: statistical neighbour list not found")
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{p}: missing column(s) {', '.join(missing)}")
    df["rank"] = pd.to_numeric(df["rank"], errors="coerce")
    bad = df[~df["rank"].between(1, 10)]
    if len(bad):
        raise DataError(f"{p}: row {int(bad.index[0]) + 2}: rank must be 1-10")
    n = df.groupby("code").size()
    if (n != 10).any():
        raise DataError(f"{p}: {n[n != 10].index[0]} has {int(n[n != 10].iloc[0])} "
                        "neighbours, expected 10")
    if (df["code"] == df["neighbour_code"]).any():
        raise DataError(f"{p}: a council is listed as its own neighbour")
    df["rank"] = df["rank"].astype(int)
    return df[list(COLUMNS)].sort_values(["code", "rank"]).reset_index(drop=True)


def neighbours_of(code: str, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return one council's ten statistical neighbours, closest first (empty if unlisted).

    Examples
    --------
    >>> neighbours_of("E08000025")["neighbour_name"].head(3).tolist()  # Birmingham's closest
    ['Nottingham', 'Manchester', 'Bradford']

    """
    nb = read_neighbours() if table is None else table
    return nb[nb["code"] == code].sort_values("rank").reset_index(drop=True)


def build(xlsx: str | Path, out: str | Path | None = None) -> pd.DataFrame:
    """Convert DfE's statistical neighbour workbook (``sn_may_2025.xlsx``) to the tidy CSV.

    The sheet ``LA SN Groups`` (two lines above the header) has one row per council: its
    three-digit LA number and name, then ``SN1``..``SN10`` (LA numbers) each followed by its
    closeness (``SNP``).  LA numbers become GSS codes through the builtin ``areas.csv``
    (``old_la_code``; the current council where a number was reused).  Closeness is written
    in sentence case (the workbook has both "Very close" and "Very Close").
    """
    from simsend.data.baseline import builtin_dir
    from simsend.io import atomic_write

    raw = pd.read_excel(xlsx, sheet_name="LA SN Groups", header=None, skiprows=3, dtype=str)
    areas = pd.read_csv(builtin_dir() / "areas.csv", dtype=str, keep_default_na=False)
    areas = areas[areas["old_la_code"] != ""].sort_values(
        "status", key=lambda s: s != "current")
    code_of = areas.drop_duplicates("old_la_code").set_index("old_la_code")["code"]
    name_of = dict(zip(raw[0], raw[1], strict=True))
    rows = []
    for r in raw.itertuples(index=False):
        if not str(r[0]).strip().isdigit():
            continue
        for k in range(10):
            nb = str(r[5 + 2 * k]).strip()
            rows.append({"code": code_of[str(r[0])], "name": r[1], "old_la_code": r[0],
                         "rank": k + 1, "neighbour_code": code_of[nb],
                         "neighbour_name": name_of[nb], "neighbour_old_la_code": nb,
                         "closeness": str(r[6 + 2 * k]).strip().capitalize()})
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    if out is not None:
        atomic_write(out, lambda t: df.to_csv(t, index=False))
    return df


if __name__ == "__main__":  # pragma: no cover - the one-off conversion
    build(sys.argv[1], neighbours_path())
    print(f"wrote {neighbours_path()}")
