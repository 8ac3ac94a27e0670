"""LSRP provision types: the mapping, the shipped establishment file and its builder, shares."""

import gzip
import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simsend.data import DataError, lsrp
from simsend.data.baseline import builtin_dir
from simsend.data.lsrp import (
    ESTABLISHMENT_PROVISION,
    NOT_SEPARATED,
    PROVISION_PLACEMENT,
    PROVISION_TYPES,
    SHARE_BITS,
    establishment_shares,
    mapping_problems,
    read_establishments,
)
from simsend.data.releases import ESTABLISHMENT_COLUMNS, ESTABLISHMENT_SUBTOTALS
from simsend.dims import PLACEMENTS

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
ENGLAND = "E92000001"
GROUP = dict(ESTABLISHMENT_COLUMNS)

TEMPLATE = (  # the DfE LSRP template's provision types, in its order
    "Early years settings including PVIs",
    "Mainstream schools or academies",
    "Support bases in mainstream",
    "Specialist bases in mainstream (SEN units, resourced provision)",
    "Maintained special schools or special academies",
    "NMSS or independent schools (LA-funded placements)",
    "NMSS or independent (other arrangements)",
    "Alternative provision",
    "Mainstream post-16",
    "Mainstream post-16 specialist provision",
    "Specialist post-16 institutions",
    "Elective home education",
    "Other arrangements by the LA (EOTAS)",
    "Other (including hospital schools, NEET)",
)


def _builder():
    spec = importlib.util.spec_from_file_location("build_establishments",
                                                  ROOT / "scripts" / "build_establishments.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------- the mapping


def test_fourteen_provision_types_in_template_order():
    assert list(PROVISION_TYPES.values()) == list(TEMPLATE)
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", k) for k in PROVISION_TYPES)
    assert list(PROVISION_PLACEMENT) == list(PROVISION_TYPES)


def test_every_establishment_column_maps_to_exactly_one_provision_type():
    cols = [c for c, _ in ESTABLISHMENT_COLUMNS]
    assert len(cols) == len(set(cols))
    assert sorted(ESTABLISHMENT_PROVISION) == sorted(cols)  # dict keys: each at most once
    assert set(ESTABLISHMENT_PROVISION.values()) <= set(PROVISION_TYPES)
    # never a subtotal or percentage column
    assert not set(ESTABLISHMENT_PROVISION) & set(ESTABLISHMENT_SUBTOTALS)
    assert not [c for c in ESTABLISHMENT_PROVISION if c.endswith("_pc")]
    assert mapping_problems() == []


def test_each_provision_type_lies_in_one_placement_group():
    for t in PROVISION_TYPES:
        groups = {GROUP[c] for c, tt in ESTABLISHMENT_PROVISION.items() if tt == t}
        assert len(groups) <= 1, (t, groups)
        if groups:
            assert groups == {PROVISION_PLACEMENT[t]}, t
    without = {t for t in PROVISION_TYPES if t not in ESTABLISHMENT_PROVISION.values()}
    assert without == set(NOT_SEPARATED) == {"support_bases", "independent_other_arrangements",
                                             "mainstream_post16_specialist"}
    # every engine group is reached by some provision type
    assert set(PROVISION_PLACEMENT.values()) == set(PLACEMENTS)


def test_mapping_check_sees_a_straddling_type_and_a_lost_column(monkeypatch):
    bad = {**ESTABLISHMENT_PROVISION, "nm_early_years": "mainstream_schools"}
    monkeypatch.setattr(lsrp, "ESTABLISHMENT_PROVISION", bad)
    found = " ".join(mapping_problems())
    assert "'mainstream_schools' straddles" in found and "'early_years' has no column" in found
    lost = {k: v for k, v in ESTABLISHMENT_PROVISION.items() if k != "neet_ntci"}
    monkeypatch.setattr(lsrp, "ESTABLISHMENT_PROVISION", lost)
    assert mapping_problems() == ["establishment column 'neet_ntci' has no provision type"]


# ----------------------------------------------------------------------------- shipped file


@pytest.fixture(scope="module")
def est():
    return read_establishments()


def test_shipped_file_is_small_tidy_and_known_areas(est):
    path = builtin_dir() / "establishments.csv.gz"
    assert path.stat().st_size < 300_000
    with gzip.open(path, "rt") as f:
        assert f.readline().strip() == "year,area,establishment,count"
    areas = pd.read_csv(builtin_dir() / "areas.csv", dtype=str, keep_default_na=False)
    ok = set(areas.loc[areas["status"].isin(["current", "former"]), "code"])
    assert set(est["area"]) <= ok and ENGLAND in set(est["area"])
    assert sorted(est["year"].unique()) == list(range(2019, 2026))
    assert set(est["establishment"]) <= set(ESTABLISHMENT_PROVISION)
    # never subtotals; recording error (Newham 2025) left out; suppressed rows absent
    assert est.query("year == 2025 and area == 'E09000025'").empty
    assert set(est.query("year == 2024 and area == 'E06000031'")["establishment"]) == {
        "other_placement_settings"}  # Peterborough returned totals only (all else 'x')
    prov = json.loads((builtin_dir() / "PROVENANCE.json").read_text())
    entry = prov["sources"]["sen2_establishments"]
    assert entry["file"] == "sen2_2025/data/caseload.csv" and "built_by" in entry
    assert entry["url"].startswith("https://explore-education-statistics")
    from simsend.io import file_sha256
    assert prov["shipped_sha256"]["establishments.csv.gz"] == file_sha256(path)


def test_england_2025_by_engine_group_equals_the_stock(est):
    st = pd.read_csv(builtin_dir() / "stock.csv.gz", dtype={"year": int}, keep_default_na=False)
    st["count"] = pd.to_numeric(st["count"])
    st = st[(st["plan"] == "ehcp") & (st["age"] == "all") & (st["age_group"] == "all")
            & (st["need"] == "all") & (st["year"] >= 2023)]
    e = est.query("year == 2025 and area == @ENGLAND")
    got = e.groupby(e["establishment"].map(GROUP))["count"].sum()
    want = st.query("year == 2025 and area == @ENGLAND and placement != 'all'").set_index(
        "placement")["count"]
    assert got.to_dict() == want.to_dict()
    assert got.sum() == 638_745 == st.query(
        "year == 2025 and area == @ENGLAND and placement == 'all'")["count"].item()
    # every area-year 2023-2025 that publishes every column, against the stock's groups
    full = lsrp._complete(est)
    e = est.merge(full, on=["year", "area"])
    mine = e.groupby(["year", "area", e["establishment"].map(GROUP).rename("placement")])[
        "count"].sum()
    theirs = st[st["placement"] != "all"].set_index(["year", "area", "placement"])["count"]
    both = pd.concat([mine.rename("e"), theirs.rename("s")], axis=1, join="inner")
    assert len(both) > 3000 and both["s"].notna().all()
    assert (both["e"] == both["s"]).all(), both[both["e"] != both["s"]]


@pytest.mark.skipif(not (SHARED / "sen2_2025" / "data" / "caseload.csv").exists(),
                    reason="the published data folder is not beside the project")
def test_builder_rebuilds_the_shipped_file_byte_for_byte(tmp_path):
    for name in ("areas.csv", "PROVENANCE.json"):
        shutil.copy(builtin_dir() / name, tmp_path / name)
    assert _builder().main([str(SHARED), "--out", str(tmp_path)]) == 0
    assert ((tmp_path / "establishments.csv.gz").read_bytes()
            == (builtin_dir() / "establishments.csv.gz").read_bytes())
    new = json.loads((tmp_path / "PROVENANCE.json").read_text())
    old = json.loads((builtin_dir() / "PROVENANCE.json").read_text())
    assert new == old  # the entry it writes is the shipped one; nothing else changed


# ----------------------------------------------------------------------------- builder rules


def _caseload(tmp_path: Path, rows: list[dict]) -> Path:
    """A caseload.csv with the real header and ``rows`` (other cells 0)."""
    b = _builder()
    cols = [*b.GEO, b.TOTAL_COLUMN, *[c for c, _ in ESTABLISHMENT_COLUMNS],
            *ESTABLISHMENT_SUBTOTALS, "mainstream_total_pc"]
    out = []
    for r in rows:
        base = {c: "0" for c in cols}
        base.update({"time_identifier": "Academic year", "country_code": ENGLAND,
                     "country_name": "England", "breakdown_topic": "All EHC plans",
                     "breakdown": "All EHC plans", "ed_elsewhere": "0"})
        base.update(r)
        out.append(base)
    path = tmp_path / "caseload.csv"
    pd.DataFrame(out, columns=cols).to_csv(path, index=False)
    return path


def _areas() -> pd.DataFrame:
    return pd.read_csv(builtin_dir() / "areas.csv", dtype=str, keep_default_na=False)


def test_builder_keeps_published_cells_only(tmp_path):
    b = _builder()
    ms = {"mainstream_academy": "7", "mainstream_total": "7", "neet": "x",
          "special_la_maintained": "z", "special_total": "x"}
    src = _caseload(tmp_path, [
        {"time_period": "202425", "geographic_level": "National", **ms},
        {"time_period": "202324", "geographic_level": "Local authority",
         "new_la_code": "E06000065", **ms},                                # alias of N Yorks
        {"time_period": "202425", "geographic_level": "Local authority",
         "new_la_code": "E09000025", **ms},                                # Newham 2025
        {"time_period": "202425", "geographic_level": "Local authority",
         "new_la_code": "E06000999", **ms},                                # not in areas.csv
        {"time_period": "202425", "geographic_level": "Local authority",
         "new_la_code": "E08000025", "breakdown_topic": "Sex", "breakdown": "Male", **ms},
    ])
    df, notes = b.build(src, _areas())
    assert set(zip(df["year"], df["area"], strict=True)) == {(2025, ENGLAND),
                                                             (2024, "E10000023")}
    assert len(df) == 2 * (len(ESTABLISHMENT_COLUMNS) - 2)  # 'x' and 'z' left out
    assert not {"neet", "special_la_maintained"} & set(df["establishment"])
    assert df.query("establishment == 'mainstream_academy'")["count"].tolist() == [7, 7]
    assert notes["recording_errors_left_out"] == ["2025 E09000025"]
    assert notes["areas_not_in_areas_csv"] == ["E06000999"]
    assert df["establishment"].tolist()[:2] == ["mainstream_la_maintained", "mainstream_academy"]


def test_builder_refuses_bad_subtotals_cells_and_unknown_columns(tmp_path):
    b = _builder()
    src = _caseload(tmp_path, [{"time_period": "202425", "geographic_level": "National",
                                "mainstream_academy": "7", "mainstream_total": "8"}])
    with pytest.raises(SystemExit, match="mainstream_total.*not the sum"):
        b.build(src, _areas())
    src = _caseload(tmp_path, [{"time_period": "202425", "geographic_level": "National",
                                "neet": "-3"}])
    with pytest.raises(SystemExit, match="column 'neet'"):
        b.build(src, _areas())
    df = pd.read_csv(_caseload(tmp_path, [{"time_period": "202425",
                                           "geographic_level": "National"}]), dtype=str)
    df["new_kind_of_school"] = "1"
    df.to_csv(tmp_path / "caseload.csv", index=False)
    with pytest.raises(SystemExit, match="new_kind_of_school"):
        b.build(tmp_path / "caseload.csv", _areas())


def test_builder_output_is_deterministic(tmp_path):
    b = _builder()
    df = pd.DataFrame({"year": [2025], "area": [ENGLAND], "establishment": ["neet"],
                       "count": [5]})
    b.write_gz(df, tmp_path / "a.csv.gz")
    b.write_gz(df, tmp_path / "b.csv.gz")
    raw = (tmp_path / "a.csv.gz").read_bytes()
    assert raw == (tmp_path / "b.csv.gz").read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip mtime 0
    shipped = (builtin_dir() / "establishments.csv.gz").read_bytes()
    assert shipped[4:8] == b"\0\0\0\0" and not shipped[3] & 0x08  # no file name stored


# ----------------------------------------------------------------------------- shares


@pytest.fixture(scope="module")
def areas_2025():
    a = _areas()
    return a.loc[a["status"] == "current", "code"].tolist()


def test_shares_sum_to_one_in_every_group_exactly(areas_2025):
    s = establishment_shares(areas_2025, 2025)
    assert s.dims == ("area", "placement", "provision_type")
    assert list(s["placement"].values) == list(PLACEMENTS)
    assert list(s["provision_type"].values) == list(PROVISION_TYPES)
    assert (s.sum("provision_type").values == 1.0).all()
    assert (s.values >= 0).all()
    assert (s.values * 2 ** SHARE_BITS == np.round(s.values * 2 ** SHARE_BITS)).all()
    for t in PROVISION_TYPES:  # nothing outside the type's own group; not-separated types 0
        other = [g for g in PLACEMENTS if g != PROVISION_PLACEMENT[t]]
        assert (s.sel(provision_type=t, placement=other).values == 0).all()
    assert (s.sel(provision_type=list(NOT_SEPARATED)).values == 0).all()


def test_shares_are_the_published_ratios(est):
    s = establishment_shares(["E08000025", ENGLAND], 2025)
    for area in ("E08000025", ENGLAND):
        e = est.query("year == 2025 and area == @area").set_index("establishment")["count"]
        other = e[[c for c, g in ESTABLISHMENT_COLUMNS if g == "other" and c in e.index]]
        want = e.get("nm_early_years", 0) / other.sum()
        got = float(s.sel(area=area, placement="other", provision_type="early_years"))
        assert got == pytest.approx(want, abs=2.0 ** -SHARE_BITS)
        want = e["specialist_post_16_institutions"] / (
            e["specialist_post_16_institutions"] + e["general_fe_tertiary_colleges"]
            + e["ukrlp_provider"])
        got = float(s.sel(area=area, placement="post16_fe", provision_type="specialist_post16"))
        assert got == pytest.approx(want, abs=2.0 ** -SHARE_BITS)
    assert s["census_year"].values.tolist() == [2025, 2025]


def test_incomplete_census_falls_back_to_the_previous_one():
    s = establishment_shares(["E06000031", "E09000012", "E10000003", "E06000012", "E09000025"],
                             2025)
    # Cambridgeshire and NE Lincolnshire suppressed in 2025; Newham's 2025 is a recording error
    assert s["census_year"].values.tolist() == [2025, 2025, 2024, 2024, 2024]
    s = establishment_shares(["E06000031", "E09000012"], 2024)  # returned totals only
    assert s["census_year"].values.tolist() == [2023, 2023]


def test_successor_councils_take_their_predecessors_counts(est):
    s = establishment_shares(["E06000063", "E06000064"], 2023)  # Cumbria split April 2023
    assert s["census_year"].values.tolist() == [2023, 2023]
    assert "E10000006" in s.attrs["predecessor_fallback"]
    c = establishment_shares(["E10000006"], 2023)
    assert np.array_equal(s.sel(area="E06000063").values, c.sel(area="E10000006").values)
    assert establishment_shares(["E06000063"], 2025).attrs["predecessor_fallback"] == ""


def test_empty_group_takes_englands_shares():
    s = establishment_shares(["E06000017", ENGLAND], 2025)  # Rutland: no published AP plans
    e = establishment_shares([ENGLAND], 2025)
    fb = s.attrs["england_fallback"]
    assert fb.startswith("E06000017: ")
    for g in fb.split(": ")[1].split(" (")[0].split(", "):
        assert np.array_equal(s.sel(area="E06000017", placement=g).values,
                              e.sel(area=ENGLAND, placement=g).values)


def test_unknown_area_and_too_early_year_are_named():
    with pytest.raises(DataError, match="'E06000999'"):
        establishment_shares(["E08000025", "E06000999"], 2025)
    with pytest.raises(DataError, match="'E08000025'.*January 2018.*first: January 2019"):
        establishment_shares("E08000025", 2018)
    alias = establishment_shares(["E06000065"], 2025)  # ONS code of North Yorkshire
    assert np.array_equal(alias.values, establishment_shares(["E10000023"], 2025).values)


@pytest.mark.parametrize(("text", "column"), [
    ("year,area,establishment,count\n2025,E92000001,neet,-1\n", "count"),
    ("year,area,establishment,count\n2025,E92000001,neet,1.5\n", "count"),
    ("year,area,establishment,count\n2025,E92000001,neet_total,1\n", "establishment"),
    ("year,area,establishment,count\n2025,E92000001,neet,1\n2025,E92000001,neet,2\n",
     "establishment"),
    ("year,area,count\n2025,E92000001,1\n", None),
])
def test_reader_names_file_row_and_column(tmp_path, text, column):
    p = tmp_path / "est.csv"
    p.write_text(text)
    with pytest.raises(DataError, match="est.csv") as exc:
        read_establishments(p)
    if column:
        assert f"column {column!r}" in str(exc.value) and "row " in str(exc.value)
