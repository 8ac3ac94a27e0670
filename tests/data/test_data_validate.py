"""validate_data: each defect in a tidy file gives the documented finding."""

import numpy as np
import pandas as pd
import pytest

from simsend.data import DataSpec, Report, validate_data

POP = "year,area,age,count\n" + "".join(
    f"{y},C1,{a},{100 + a}\n{y},C2,{a},{90 + a}\n" for y in (2021, 2022) for a in range(26))

STOCK_OK = """year,area,plan,age_group,placement,count
2022,C1,ehcp,all,all,30
2022,C1,ehcp,under_5,all,5
2022,C1,ehcp,5_to_10,all,10
2022,C1,ehcp,11_to_15,all,10
2022,C1,ehcp,16_to_19,all,5
2022,C1,ehcp,20_to_25,all,0
2022,C1,ehcp,all,mainstream,20
2022,C1,ehcp,all,special_state,10
2022,C1,sen_support,all,all,120
2022,C2,ehcp,all,all,12
2022,C2,sen_support,all,all,60
"""


def spec(tmp_path, stock=STOCK_OK, pop=POP, **extra):
    (tmp_path / "population.csv").write_text(pop)
    (tmp_path / "stock.csv").write_text(stock)
    files = {"population": tmp_path / "population.csv", "stock": tmp_path / "stock.csv"}
    for k, text in extra.items():
        (tmp_path / f"{k}.csv").write_text(text)
        files[k] = tmp_path / f"{k}.csv"
    return DataSpec(source="files", areas=("C1", "C2"), baseline_year=2022, files=files)


def only(report: Report, severity="error"):
    return [f for f in report.findings if f.severity == severity]


def test_builtin_has_no_errors():
    rep = validate_data(DataSpec())
    assert rep.ok, rep.format(limit=20)
    assert len(rep.files) == 5
    assert rep.format().splitlines()[-1].startswith("0 errors")


def test_clean_files_ok(tmp_path):
    rep = validate_data(spec(tmp_path))
    assert rep.ok and not rep.findings
    assert rep.format() == "ok: 2 files checked, no findings"


@pytest.mark.parametrize("stock, row, column, value, text", [
    ("year,area,count\n2022,C1,3\n", 1, "plan/tier", None, "required column missing"),
    ("year,area,plan,count\n20x2,C1,ehcp,3\n", 2, "year", "20x2", "whole year"),
    ("year,area,plan,count\n2022,C1,ehcp,abc\n", 2, "count", "abc", "non-negative count"),
    ("year,area,plan,need,count\n2022,C1,ehcp,XYZ,3\n", 2, "need", "XYZ", "unknown need"),
    ("year,area,plan,placement,count\n2022,C1,ehcp,moon,3\n", 2, "placement", "moon",
     "unknown placement"),
    ("year,area,tier,count\n2022,C1,wizard,3\n", 2, "plan", "wizard", "unknown plan"),
    ("year,area,plan,age,count\n2022,C1,ehcp,30,3\n", 2, "age", "30", "age 0-25"),
    ("year,area,plan,count\n2022,C1,ehcp,-4\n", 2, "count", "-4", "count >= 0"),
    ("year,area,plan,count\n2022,C1,ehcp,2.5\n", 2, "count", "2.5", "whole number"),
    ("year,area,plan,count\n2022,C9,ehcp,3\n", 2, "area", "C9", "unknown area"),
    (STOCK_OK.replace("2022,C1,ehcp,all,all,30", "2022,C1,ehcp,all,all,60"), 2, "count", 60,
     "disagrees with the sum of its age_group rows"),
])
def test_defects(tmp_path, stock, row, column, value, text):
    rep = validate_data(spec(tmp_path, stock=stock))
    hits = [f for f in only(rep) if f.row == row and f.column == column and text in f.message]
    assert hits, rep.format()
    assert hits[0].value == value
    assert hits[0].file == "stock.csv"
    assert not rep.ok


def test_year_gap_and_suppressed_are_warnings(tmp_path):
    stock = STOCK_OK + "2019,C1,ehcp,all,all,20\n2022,C2,ehcp,all,mainstream,\n"
    rep = validate_data(spec(tmp_path, stock=stock))
    assert rep.ok, rep.format()
    gap = [f for f in only(rep, "warning") if f.column == "year"]
    assert gap and "2020,2021" == gap[0].value and "years missing" in gap[0].message
    sup = [f for f in only(rep, "warning") if f.column == "count" and "NaN" in f.message]
    assert sup and sup[0].row == 14


def test_population_and_spec_checks(tmp_path):
    rep = validate_data(spec(tmp_path, pop="year,area,age,count\n2022,C1,26,5\n"))
    assert any(f.column == "age" and f.value == "26" for f in rep.errors)
    rep = validate_data(DataSpec(areas=("E99999999",)))
    assert any(f.file == "spec" and f.column == "areas" for f in rep.errors)
    rep = validate_data(DataSpec(areas=("E10000021",)))  # former Northamptonshire: merged
    assert rep.ok and any("merged" in f.message for f in rep.warnings)
    rep = validate_data(DataSpec(baseline_year=2030))
    assert any(f.column == "baseline_year" for f in rep.errors)
    f = rep.findings[-1].format()
    assert f.startswith("error: spec:") and "baseline_year=2030" in f


def test_duplicate_and_flow_checks(tmp_path):
    stock = STOCK_OK + "2022,C2,ehcp,all,all,12\n"
    flows = "year,area,flow,count\n2021,C1,requests,10\n2021,C1,new_plans,x\n2021,C1,teleports,1\n"
    rep = validate_data(spec(tmp_path, stock=stock, flows=flows))
    assert any("duplicate" in f.message and f.row == 13 for f in rep.errors)
    assert any(f.file == "flows.csv" and f.value == "teleports" for f in rep.warnings)
    assert any(f.file == "flows.csv" and f.value == "x" and f.row == 3 for f in rep.warnings)


def test_validate_of_one_council_lists_only_its_own_warnings():
    """One council's validate printed 12 warnings about other councils (issue 17)."""
    from simsend.data import DataSpec, validate_data

    rutland = validate_data(DataSpec(areas=("E06000017",)))
    assert rutland.ok
    named = [f for f in rutland.warnings if f.area is not None]
    assert named and {f.area for f in named} == {"E06000017"}
    rest = [f for f in rutland.warnings if "areas outside this run" in f.message]
    assert len(rest) == 1 and int(rest[0].message.split()[0]) > 900
    every = validate_data(DataSpec(areas=("all",)))
    assert sum("more warnings like these" in f.message for f in every.warnings) == 2
    # (England's and the regions' rows, and former councils', are outside a council run)


# --------------------------------------------------------------------------- published files


def test_builtin_flags_are_reported_for_the_run_areas():
    """Newham's January 2025 cells are a known recording error: NaN with their flag."""
    rep = validate_data(DataSpec(areas=("E09000025",)))
    assert rep.ok
    flagged = [f for f in rep.warnings if "recording_error" in f.message]
    assert flagged and {f.area for f in flagged} == {"E09000025"}
    assert rep.format().splitlines()[-1].startswith("0 errors, ")
    rutland = validate_data(DataSpec(areas=("E06000017",)))
    assert not [f for f in rutland.warnings if "recording_error" in f.message]


def test_published_file_alone_is_read_and_its_findings_counted(fixtures):
    rep = validate_data(DataSpec(source="files", areas=("all",),
                                 files={"sen2_new_plans": fixtures / "newplans.csv"}))
    assert rep.ok and rep.files == [str(fixtures / "newplans.csv")]
    # Wakefield's 2022 aggregate (published footnote): England's age and placement rows are
    # a known inconsistency, reported as warnings
    assert [f.severity for f in rep.findings] == ["warning", "warning"]
    assert rep.format().splitlines()[-1] == "0 errors, 2 warnings (1 files checked)"


def test_run_reads_published_files_under_their_family_names(fixtures):
    """SEN2 2022 tables and an ONS MYE file given as published give Birmingham's 2022 baseline
    with the published margins (England, without a population there, is left out)."""
    from simsend.data import load_baseline
    from simsend.dims import AGE_GROUPS, TIER

    files = {"sen2_age_caseload": fixtures / "sen2_age_caseload.csv",
             "sen2_estab_caseload": fixtures / "sen2_estab_caseload.csv",
             "ons_mye": fixtures / "ons_mye_persons_age0to25_england_areas_excerpt.csv"}
    spec = DataSpec(source="files", areas=("E08000025",), baseline_year=2022, files=files)
    rep = validate_data(spec)
    assert rep.ok, rep.format()
    assert any("without a population estimate left out (E92000001)" in f.message
               for f in rep.warnings)
    b = load_baseline(spec)
    ref = load_baseline(DataSpec(areas=("E08000025",), baseline_year=2022))
    spec_b, spec_r = (x.individuals[TIER["specialist"], :, :, 0, :] for x in (b, ref))
    assert spec_b.sum() == spec_r.sum() == 10489  # sen2_age_caseload.csv, Birmingham 2022
    np.testing.assert_array_equal(spec_b.sum(axis=(0, 1)), spec_r.sum(axis=(0, 1)))

    def bands(s):
        return [s.sum(axis=(1, 2))[lo:hi + 1].sum() for lo, hi in AGE_GROUPS.values()]

    assert bands(spec_b) == bands(spec_r)
    assert set(b.provenance["sha256"]) == set(files)


def test_run_reads_a_person_level_caseload(tmp_path, fixtures):
    """caseload.csv (SEN2 2025) under its family name: single ages as published, 'under 3'
    spread over ages 0-2 by the population given."""
    from simsend.data import load_baseline
    from simsend.dims import TIER

    pop = "year,area,age,count\n" + "".join(f"2025,E06000017,{a},{400 + 10 * a}\n"
                                            for a in range(26))
    (tmp_path / "population.csv").write_text(pop)
    spec = DataSpec(source="files", areas=("E06000017",), baseline_year=2025,
                    files={"population": tmp_path / "population.csv",
                           "sen2_caseload": fixtures / "caseload.csv"})
    assert validate_data(spec).ok
    b = load_baseline(spec)
    ages = b.individuals[TIER["specialist"], :, :, 0, :].sum(axis=(1, 2))
    raw = pd.read_csv(fixtures / "caseload.csv", dtype=str, keep_default_na=False)
    r = raw[(raw["new_la_code"] == "E06000017") & (raw["time_period"] == "202425")
            & (raw["breakdown_topic"] == "Child or young persons age")]
    pub = dict(zip(r["breakdown"], r["ehcplans"].astype(int), strict=True))
    # Rutland publishes no 'under 3' and no 'age 25' row (no such plan): 0
    assert ages.sum() == 376 and ages[:3].sum() == pub.get("under 3", 0) == 0
    assert all(ages[a] == pub.get(f"age {a}", 0) for a in range(3, 26))
