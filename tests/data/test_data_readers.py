"""Readers of published files, on real excerpts (fixtures) and synthetic defects."""

import numpy as np
import pandas as pd
import pytest

from simsend.data import DataError
from simsend.data.readers import family_of, read_ees, read_lait, read_ons_mye
from simsend.data.releases import RELEASES, placement_of
from simsend.dims import NEEDS, PLACEMENTS


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


# --------------------------------------------------------------------------- person-level SEN2
# Fixtures: excerpts of the SEN2 2025 release (tests/data/fixtures/PROVENANCE.md).

def test_wide_family_detection_and_dispatch(fixtures):
    from simsend.data.readers import read_release

    for name, fam in (("caseload.csv", "sen2_caseload"), ("newplans.csv", "sen2_new_plans"),
                      ("ceased_plans.csv", "sen2_ceased"),
                      ("sen_needs_all_plans.csv", "sen2_needs")):
        assert family_of(fixtures / name).name == fam
        df, rep = read_release(fixtures / name)
        assert len(df) and {"age", "need", "placement", "measure"} <= set(df.columns)


def test_age_labels():
    from simsend.data.readers import census_year
    from simsend.data.releases import age_span

    assert age_span("age 6") == (6, 6) and age_span("Aged 14") == (14, 14)
    assert age_span("under 3") == (0, 2) and age_span("age 2 and under") == (0, 2)
    assert age_span("Aged 20 and over") == (20, 25) and age_span("Age unknown") is None
    with pytest.raises(ValueError):
        age_span("Female")
    assert census_year(pd.Series(["202425", "2024"])).tolist() == [2025, 2024]


def test_caseload_2025_england_published(fixtures):
    from simsend.data.readers import read_ees_wide

    df, rep = read_ees_wide(fixtures / "caseload.csv")
    assert rep.ok
    eng = df[(df["area"] == "E92000001") & (df["year"] == 2025)]
    tot = eng[(eng["age"] == "all") & (eng["placement"] == "all")]["count"]
    assert tot.tolist() == [638745]  # caseload.csv, England 202425, ehcplans
    # single years of age as published (caseload.csv, England 202425, 'Child or young
    # persons age'); 'under 3' is kept as the span 0-2
    ages = eng[(eng["age"] != "all") & (eng["placement"] == "all")].set_index("age")["count"]
    assert ages["0-2"] == 533 and ages["3"] == 4302 and ages["25"] == 371
    assert ages.sum() == 638745 and len(ages) == 24
    assert (eng.loc[eng["age"] == "0-2", "age_group"] == "under_5").all()
    # Sex rows are not read
    assert not df["age"].isin(["Male", "Female"]).any()


def test_caseload_placements_not_double_counted(fixtures):
    """Subtotal (``*_total``, ``ed_elsewhere``) and ``*_pc`` columns are never summed."""
    from simsend.data.readers import read_ees_wide

    df, _ = read_ees_wide(fixtures / "caseload.csv")
    d = df[(df["year"] == 2025) & (df["age"] == "all") & (df["placement"] != "all")]
    eng = d[d["area"] == "E92000001"].set_index("placement")["count"]
    # caseload.csv England 202425: mainstream = LA maintained 95542 + academy 141630 + free
    # school 9366 + independent 7174; inclusion_base = the six resourced provision / SEN unit
    # columns; other = educated elsewhere 49750 + early years 4524 + not recorded 19339
    assert eng.to_dict() == {
        "mainstream": 253712, "inclusion_base": 24524, "special_state": 159852,
        "special_independent": 34028, "alternative_provision": 4858, "post16_fe": 88158,
        "other": 73613}
    assert eng.sum() == 638745
    rut = d[d["area"] == "E06000017"].set_index("placement")["count"]
    assert rut.to_dict() == {  # caseload.csv, Rutland 202425
        "mainstream": 137, "inclusion_base": 64, "special_state": 45,
        "special_independent": 33, "alternative_provision": 0, "post16_fe": 58, "other": 39}
    # joint age x placement rows are read as published
    j = df[(df["year"] == 2025) & (df["area"] == "E92000001") & (df["age"] == "3")
           & (df["placement"] != "all")]
    assert j["count"].sum() == 4302


def test_newham_2025_recording_error_is_nan_with_flag(fixtures):
    from simsend.data.readers import read_ees_wide

    df, rep = read_ees_wide(fixtures / "caseload.csv")
    new = df[df["area"] == "E09000025"]
    y25 = new[new["year"] == 2025]
    assert y25["count"].isna().all() and (y25["flag"] == "recording_error").all()
    y24 = new[(new["year"] == 2024) & (new["age"] == "all") & (new["placement"] == "all")]
    assert y24["count"].tolist() == [2705] and y24["flag"].tolist() == [""]
    needs, _ = read_ees_wide(fixtures / "sen_needs_all_plans.csv")
    assert needs[needs["area"] == "E09000025"]["count"].isna().all()


def test_leeds_2022_new_plans_total_flagged(fixtures):
    from simsend.data.readers import read_ees_wide

    df, rep = read_ees_wide(fixtures / "newplans.csv")
    assert rep.ok
    leeds = df[(df["area"] == "E08000035") & (df["year"] == 2022)]
    tot = leeds[(leeds["age"] == "all") & (leeds["placement"] == "all")]
    assert tot["count"].isna().all() and (tot["flag"] == "recording_error").all()
    ages = leeds[(leeds["age"] != "all") & (leeds["placement"] == "all")]
    assert ages["count"].notna().all() and ages["count"].sum() == 357  # published, kept
    assert set(ages["age_group"]) == {"under_5", "5_to_10", "11_to_15", "16_to_19",
                                      "20_to_25"}
    # England 2022: Wakefield gave totals only, so the age rows are a known inconsistency
    eng = df[(df["area"] == "E92000001") & (df["year"] == 2022) & (df["age"] != "all")
             & (df["placement"] == "all")]
    assert eng["flag"].str.contains("inconsistent_total").all()
    assert any("inconsistent_total" in w.message for w in rep.warnings)
    assert df[(df["area"] == "E08000035") & (df["year"] == 2024) & (df["age"] == "all")
              & (df["placement"] == "all")]["count"].tolist() == [773]


def test_ceased_reasons_and_needs(fixtures):
    from simsend.data.readers import read_ees_wide

    df, rep = read_ees_wide(fixtures / "ceased_plans.csv")
    assert rep.ok
    raw = pd.read_csv(fixtures / "ceased_plans.csv", dtype=str, keep_default_na=False)
    r = raw[raw["geographic_level"] == "National"].iloc[0]
    eng = df[df["area"] == "E92000001"].set_index("measure")["count"]
    assert eng["ceased_moved_la"] == float(r["transfer"])
    assert eng["ceased_moved_outside_england"] == float(r["moved_outside_eng"])
    assert eng["ceased"] == float(r["total_ceased"])
    needs, rep = read_ees_wide(fixtures / "sen_needs_all_plans.csv")
    e = needs[(needs["area"] == "E92000001") & (needs["need"] != "all")].set_index("need")
    # sen_needs_all_plans.csv England 202425: ASD 201183; need not recorded 4870 -> NSA
    assert e.loc["ASD", "count"] == 201183 and e.loc["NSA", "count"] == 4870
    assert e["count"].sum() == 638745 and set(e.index) <= set(NEEDS)


WIDE = ("time_period,time_identifier,geographic_level,country_code,country_name,region_code,"
        "region_name,new_la_code,old_la_code,la_name,breakdown_topic,breakdown,ehcplans,"
        "mainstream_la_maintained,special_la_maintained,ukrlp_provider,ap_pru_academy,"
        "ap_pru_free_school,ap_pru_la_maintained,ap_pru_total\n")


def test_wide_markers_and_structural_columns(tmp_path):
    """``x`` in a column collected that year makes its group NaN; a column never collected in
    a year (``x`` everywhere) adds nothing; a wrong subtotal is an error."""
    from simsend.data.readers import read_ees_wide

    la = "Local authority,E92000001,England,E12000005,West Midlands,E08000025,330,Birmingham"
    f = write(tmp_path / "caseload.csv", WIDE + "\n".join([
        f"202425,Academic year,{la},All EHC plans,All EHC plans,100,60,30,10,0,0,0,0",
        f"202324,Academic year,{la},All EHC plans,All EHC plans,90,x,30,x,0,0,0,0",
        f"202223,Academic year,{la},All EHC plans,All EHC plans,80,50,30,x,0,0,1,20",
    ]) + "\n")
    df, rep = read_ees_wide(f)
    d = df[df["placement"] != "all"].set_index(["year", "placement"])
    assert d.loc[(2025, "post16_fe"), "count"] == 10
    assert np.isnan(d.loc[(2024, "mainstream"), "count"])
    assert d.loc[(2024, "mainstream"), "flag"] == "not_available"  # guidance: x = unavailable
    assert d.loc[(2023, "post16_fe"), "flag"] == "not_available"  # never collected in 2023
    assert np.isnan(d.loc[(2023, "post16_fe"), "count"])
    errs = [e for e in rep.errors if e.column == "ap_pru_total"]
    assert len(errs) == 1 and errs[0].row == 4 and "subtotal" in errs[0].message
    bad = write(tmp_path / "caseload.csv", WIDE + f"2025,Calendar year,{la},"
                "Child or young persons age,age six,1,1,0,0,0,0,0,0\n")
    _, rep = read_ees_wide(bad)
    assert any(e.column == "breakdown" and e.value == "age six" for e in rep.errors)


def test_alias_codes_relabelled_when_read(tmp_path):
    """DfE's E10000002 (Buckinghamshire, January 2024 on) and ONS's E06000065/E06000066 are
    read as the extract's codes."""
    from simsend.data.readers import read_ees_wide

    la = "Local authority,E92000001,England,E12000008,South East,E10000002,825,Buckinghamshire"
    f = write(tmp_path / "caseload.csv", WIDE + f"202425,Academic year,{la},All EHC plans,"
              "All EHC plans,5,5,0,0,0,0,0,0\n")
    df, _ = read_ees_wide(f)
    assert set(df["area"]) == {"E06000060"}
    pop = write(tmp_path / "ons_mye_persons_age0to25_england_areas_x.csv",
                "year,area_code,area_name,age,population\n2024,E06000065,North Yorkshire,0,9\n")
    p, _ = read_ons_mye(pop)
    assert p["area"].tolist() == ["E10000023"]
