"""Readers of published files, on real excerpts (fixtures) and synthetic defects."""

import numpy as np
import pandas as pd
import pytest

from simsend.data import DataError
from simsend.data.readers import family_of, read_ees, read_lait, read_ons_mye
from simsend.data.releases import RELEASES, placement_of
from simsend.dims import PLACEMENTS


def published(path, level, col="Total_all"):
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    return raw[raw["geographic_level"] == level], col


def test_family_detection(fixtures):
    assert family_of(fixtures / "sen2_age_caseload.csv").name == "sen2_age_caseload"
    assert family_of(fixtures / "sen2_estab_caseload.csv").name == "sen2_estab_caseload"
    assert family_of("something_else.csv") is None


def test_age_caseload_excerpt(fixtures):
    df, rep = read_ees(fixtures / "sen2_age_caseload.csv")
    assert rep.ok and not rep.findings
    raw = pd.read_csv(fixtures / "sen2_age_caseload.csv", dtype=str, keep_default_na=False)
    eng = df[df["area"] == "E92000001"].set_index("age_group")["count"]
    raw_eng = raw[raw["geographic_level"] == "National"].set_index("characteristic_age")
    assert eng["all"] == float(raw_eng.loc["Total", "Total_all"])
    assert eng["11_to_15"] == float(raw_eng.loc["Age 11 to 15", "Total_all"])
    assert set(df["area"]) == {"E92000001", "E08000025"}
    # the 'z' in Total_st is never read as a value (Total_all is the value column)
    assert df["flag"].eq("").all()


def test_estab_subtotals_not_double_counted(fixtures):
    df, rep = read_ees(fixtures / "sen2_estab_caseload.csv")
    assert rep.ok
    raw = pd.read_csv(fixtures / "sen2_estab_caseload.csv", dtype=str, keep_default_na=False)
    for area, level in (("E92000001", "National"), ("E08000025", "Local authority")):
        r = raw[raw["geographic_level"] == level]
        grand = float(r[(r["establishment_type"] == "Total")
                        & (r["establishment_group"] == "Total")]["Total_all"].iloc[0])
        d = df[df["area"] == area]
        parts = d[d["placement"] != "all"]
        assert set(parts["placement"]) <= set(PLACEMENTS)
        assert parts["count"].sum() == grand  # subtotal rows dropped, types summed
        # special_state = LA maintained + academy/free + hospital, from the published rows
        exp = sum(float(r[r["establishment_type"] == t]["Total_all"].iloc[0])
                  for t in ("Special - LA maintained", "Special - Academy/free",
                            "Hospital School"))
        assert parts.set_index("placement").loc["special_state", "count"] == exp


def test_placement_mapping_table():
    assert placement_of("Mainstream - LA maintained") == "mainstream"
    assert placement_of("Mainstream - Academy - Resourced Provision") == "inclusion_base"
    assert placement_of("Special - Non-maintained") == "special_independent"
    assert placement_of("AP/PRU - Free school") == "alternative_provision"
    assert placement_of("Specialist post-16 institutions") == "post16_fe"
    assert placement_of("Awaiting provision - compulsory school age and in education") == "other"
    assert placement_of("Non-maintained early years") == "other"
    assert RELEASES["sen2_age_caseload"].categories["Age 20 to 25"] == "20_to_25"


def test_mi_and_population_and_lait(fixtures):
    mi, rep = read_ees(fixtures / "sen2_mi.csv")
    assert rep.ok
    raw = pd.read_csv(fixtures / "sen2_mi.csv", dtype=str, keep_default_na=False)
    req = mi[(mi["measure"] == "requests") & (mi["area"] == "E08000025")]["count"].iloc[0]
    assert req == float(raw[raw["new_la_code"] == "E08000025"]["InreqEHC"].iloc[0])
    pop, rep = read_ons_mye(fixtures / "ons_mye_persons_age0to25_england_areas_excerpt.csv")
    assert rep.ok and sorted(pop["age"]) == list(range(26))
    lait, rep = read_lait(fixtures / "lait_la_sen_indicators_excerpt.csv")
    assert rep.ok
    assert lait.set_index("la_number").loc["330", "value"] == 13.8


def write(path, text):
    path.write_text(text)
    return path


HEADER = ("time_period,time_identifier,geographic_level,country_code,country_name,region_code,"
          "region_name,old_la_code,new_la_code,la_name,characteristic_age,Total_all\n")


def test_markers_are_nan_with_flags(tmp_path):
    f = write(tmp_path / "sen2_age_caseload.csv", HEADER + "\n".join([
        '2022,Calendar year,Local authority,E92000001,England,E12000005,West Midlands,330,E08000025,Birmingham,Total,100',
        '2022,Calendar year,Local authority,E92000001,England,E12000005,West Midlands,330,E08000025,Birmingham,Under 5,x',
        '2022,Calendar year,Local authority,E92000001,England,E12000005,West Midlands,330,E08000025,Birmingham,Age 5 to 10,c',
        '2022,Calendar year,Local authority,E92000001,England,E12000005,West Midlands,330,E08000025,Birmingham,Age 11 to 15,low',
        '2022,Calendar year,Local authority,E92000001,England,E12000005,West Midlands,330,E08000025,Birmingham,Age 16 to 19,z',
        '2022,Calendar year,Local authority,E92000001,England,E12000005,West Midlands,330,E08000025,Birmingham,Age 20 to 25,:',
    ]) + "\n")
    df, rep = read_ees(f)
    assert rep.ok
    d = df.set_index("age_group")
    assert np.isnan(d.loc["under_5", "count"]) and d.loc["under_5", "flag"] == "suppressed"
    assert d.loc["11_to_15", "flag"] == "low"
    assert d.loc["16_to_19", "flag"] == "not_applicable"
    assert d.loc["20_to_25", "flag"] == "not_available"
    warn = [(w.row, w.value) for w in rep.warnings]
    assert (3, "x") in warn and (4, "c") in warn and (5, "low") in warn
    assert not (d["count"] == 0).any()


def test_published_defects(tmp_path):
    f = write(tmp_path / "sen2_age_caseload.csv", HEADER + "\n".join([
        '2022,Calendar year,National,E92000001,England,,,,,,Total,100',
        '2022,Calendar year,National,E92000001,England,,,,,,Under 5,50',
        '2022,Calendar year,National,E92000001,England,,,,,,Age 5 to 10,-3',
        '2022,Calendar year,National,E92000001,England,,,,,,Age 11 to 15,abc',
        '2022,Calendar year,National,E92000001,England,,,,,,Age 99 to 100,1',
    ]) + "\n")
    _, rep = read_ees(f)
    msgs = {(e.row, e.column): e.message for e in rep.errors}
    assert "count >= 0" in msgs[(4, "Total_all")]
    assert "non-negative count" in msgs[(5, "Total_all")]
    assert "unknown age band" in msgs[(6, "characteristic_age")]
    g = write(tmp_path / "sen2_estab_caseload.csv", "time_period,geographic_level\n2022,National\n")
    _, rep = read_ees(g)
    assert any(e.column == "establishment_type" and e.row == 1 for e in rep.errors)
    with pytest.raises(DataError, match="unknown release family"):
        read_ees(write(tmp_path / "foo.csv", "a\n1\n"))
