"""The SEND Tribunal file: the shipped tidy extract, its builder and its reader's errors."""

import textwrap

import numpy as np
import pandas as pd
import pytest

from simsend.data.baseline import builtin_dir
from simsend.data.errors import DataError
from simsend.data.tribunals import COLUMNS, build_tribunals, read_tribunals, write_tribunals

RAW = textwrap.dedent("""\
    "SEND Appeal rate table 1",,,,,,,,
    ,,,,,,,,
    Local Authority,LA code,2023,,,2024,,,
    ,,Appeals registered4,Total Appealable Decisions1,Rate,Appeals registered4,Total,Rate,Dev
    NORTH EAST,,,,,,,,
    Darlington,841, - ,450,0.00%,2,"1,469",0.10%,700
    Bournemouth5,,3,538,0.60%, .. , .. ,..,
    Hartlepool,805, ~ ,401,x,,613,0.00%,
    "England Total4,9",,"4,108","251,096",1.60%,"3,126","269,565",1.20%,
    England total excluding suppressed,,,,,,,,
    """)


@pytest.fixture(scope="module")
def areas():
    return pd.read_csv(builtin_dir() / "areas.csv", dtype=str)


def test_build_maps_codes_and_keeps_missing_missing(tmp_path, areas):
    src = tmp_path / "raw.csv"
    src.write_text(RAW, encoding="utf-8-sig")
    df = build_tribunals(src, areas).set_index(["area", "year"])
    assert df.loc[("E06000005", 2023), "appeals"] == 0  # Darlington's "-" is nil
    assert df.loc[("E06000005", 2024), "appealable_decisions"] == 1469
    assert df.loc[("E06000028", 2023), "appeals"] == 3  # Bournemouth: no code, placed by name
    assert np.isnan(df.loc[("E06000028", 2024), "appeals"])
    assert df.loc[("E06000028", 2024), "flag"] == "not_available"
    assert np.isnan(df.loc[("E06000001", 2023), "appeals"])  # Hartlepool "~": suppressed
    assert df.loc[("E06000001", 2023), "flag"] == "suppressed"
    assert np.isnan(df.loc[("E06000001", 2024), "appeals"])  # blank is missing, never 0
    assert df.loc[("E92000001", 2023), "appealable_decisions"] == 251096
    out = tmp_path / "t.csv"
    write_tribunals(df.reset_index()[list(COLUMNS)], out)
    back = read_tribunals(out)
    assert len(back) == len(df) and back["appeals"].isna().sum() == 3


def test_build_names_an_unknown_council(tmp_path, areas):
    src = tmp_path / "raw.csv"
    src.write_text(RAW.replace("Darlington,841", "Atlantis,999"), encoding="utf-8-sig")
    with pytest.raises(DataError, match=r"raw.csv: row 6: .*'Atlantis'"):
        build_tribunals(src, areas)


def test_shipped_file_councils_sum_to_england():
    df = read_tribunals()
    assert df["year"].min() == 2014 and df["year"].max() == 2024
    eng = df[df.area == "E92000001"].set_index("year")
    la = df[df.area != "E92000001"].groupby("year")[["appeals", "appealable_decisions"]].sum()
    np.testing.assert_array_equal(la["appeals"], eng["appeals"])
    assert eng.loc[2024, "appeals"] == 22276
    gap = df["appeals"].isna() | df["appealable_decisions"].isna()
    assert (gap == (df["flag"] != "")).all()


@pytest.mark.parametrize(("row", "col", "why"), [
    ("2024,E06000001,-3,401,", "appeals", "whole number"),
    ("2024,E06000001,1.5,401,", "appeals", "whole number"),
    ("20x4,E06000001,1,401,", "year", "whole number"),
    ("2024,E06000001,500,401,", "appeals", "more appeals"),
    ("2024,E06000001,1,401,odd", "flag", "one of"),
    ("2023,E06000001,1,401,", "area", "given twice"),
])
def test_reader_names_file_row_and_column(tmp_path, row, col, why):
    p = tmp_path / "bad.csv"
    p.write_text("year,area,appeals,appealable_decisions,flag\n2023,E06000001,1,401,\n"
                 + row + "\n")
    with pytest.raises(DataError, match=rf"bad.csv: row 3: column '{col}': .*{why}"):
        read_tribunals(p)


def test_reader_names_missing_columns(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("year,area,appeals\n2023,E06000001,1\n")
    with pytest.raises(DataError, match="bad.csv: missing column"):
        read_tribunals(p)
