"""Area codes in a user's file: which rows a reader that keeps a run's areas would lose unseen."""

from __future__ import annotations

import pandas as pd
import pytest

from simsend.data.baseline import DataSpec, area_table
from simsend.data.geography import csv_area_rows, unknown_area_findings

RUTLAND, HARTLEPOOL = "E06000017", "E06000001"


@pytest.fixture(scope="module")
def shipped():
    return area_table(DataSpec())


def test_csv_area_rows_counts_every_line_of_the_file(tmp_path):
    p = tmp_path / "plan.csv"
    p.write_text("# header comment\narea,placement,year,places\nE06000017,x,2025,1\n"
                 "# a comment between rows\n E0600017,x,2025,1\n")
    assert csv_area_rows(p) == [(3, RUTLAND), (5, " E0600017")]


@pytest.mark.parametrize("text", ["placement,year,places\nx,2025,1\n", b"\xff\xfe\x00"])
def test_csv_area_rows_leaves_an_unreadable_file_to_its_reader(tmp_path, text):
    p = tmp_path / "plan.csv"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert csv_area_rows(p) == []
    assert csv_area_rows(tmp_path / "missing.csv") == []


def test_rows_of_the_data_s_other_areas_are_not_findings(shipped):
    """A plan of every council run on one: England's and the other councils' rows are fine."""
    rows = [(2, RUTLAND), (3, HARTLEPOOL), (4, "E92000001"), (5, "E12000001")]
    assert unknown_area_findings(rows, "plan.csv", "area", [RUTLAND], shipped) == []


@pytest.mark.parametrize("code, text", [
    ("E0600017", "unknown area code: did you mean E06000017 (Rutland)?"),
    ("e06000017", "unknown area code: did you mean E06000017 (Rutland)?"),
    ("E06000017 ", "unknown area code: did you mean E06000017 (Rutland)?"),
    ("rutland", "unknown area code: did you mean E06000017 (Rutland)?"),
    ("Rutlnd", "unknown area code: did you mean E06000017 (Rutland)?"),
    ("XYZ", "unknown area code: no close match. This run's areas are ['E06000017']"),
    ("857", "a DfE LA number (Rutland); a row names an area by its code: write E06000017"),
])
def test_an_unknown_code_names_line_column_and_the_code_to_write(shipped, code, text):
    found = unknown_area_findings([(2, RUTLAND), (7, code)], "plan.csv", "area", [RUTLAND],
                                  shipped)
    assert [(f.severity, f.file, f.row, f.column, f.value) for f in found] == [
        ("error", "plan.csv", 7, "area", code)]
    assert text in found[0].message


def test_another_code_of_a_run_area_is_named_only_when_the_run_has_that_area(shipped):
    """ONS's E06000065 is North Yorkshire, E10000023 in the data: its rows would be skipped."""
    rows = [(2, "E06000065")]
    found = unknown_area_findings(rows, "plan.csv", "area", ["E10000023"], shipped)
    assert "another code of North Yorkshire, which this run's data call E10000023; write " \
           "E10000023" in found[0].message
    assert unknown_area_findings(rows, "plan.csv", "area", [RUTLAND], shipped) == []


def test_a_council_s_own_codes_are_known_from_its_files(tmp_path):
    """Tidy files of areas C1 and C2: their codes and the shipped geography are both known."""
    pop = "year,area,age,count\n" + "".join(f"2022,{a},{k},100\n" for a in ("C1", "C2")
                                            for k in range(26))
    (tmp_path / "population.csv").write_text(pop)
    (tmp_path / "stock.csv").write_text("year,area,plan,count\n2022,C1,ehcp,3\n2022,C2,ehcp,2\n")
    spec = DataSpec(source="files", areas=("C1",), baseline_year=2022,
                    files={"population": tmp_path / "population.csv",
                           "stock": tmp_path / "stock.csv"})
    table = area_table(spec)
    assert {"C1", "C2", RUTLAND} <= set(table["code"])
    assert table["code"].is_unique
    rows = [(2, "C1"), (3, "C2"), (4, RUTLAND), (5, "c1")]
    found = unknown_area_findings(rows, "plan.csv", "area", ["C1"], table)
    assert [f.row for f in found] == [5]
    assert "did you mean C1?" in found[0].message
    assert isinstance(area_table(spec, shipped_only=True), pd.DataFrame)
    assert "C1" not in set(area_table(spec, shipped_only=True)["code"])
