"""Builtin baselines: published totals reproduced exactly, consistency, years, errors."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simsend.data import Baseline, DataError, DataSpec, load_baseline
from simsend.data.baseline import builtin_dir
from simsend.data.readers import read_ees
from simsend.dims import AGE_GROUPS, NEEDS, PLACEMENTS, TIER

# the published release beside the project checkout (tests that need it skip without it)
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "sen2_2022" / "data"
GROUPS = list(AGE_GROUPS)


def by_group(b: Baseline, r: int) -> np.ndarray:
    spec = b.individuals[TIER["specialist"], :, :, r, :].sum(axis=(1, 2))
    return np.array([spec[lo:hi + 1].sum() for lo, hi in AGE_GROUPS.values()])


def by_placement(b: Baseline, r: int) -> np.ndarray:
    return b.individuals[TIER["specialist"], :, :, r, :].sum(axis=(0, 1))


def published_margins(path_age, path_estab, year=2022):
    age, _ = read_ees(path_age)
    est, _ = read_ees(path_estab)
    age = age[(age["year"] == year) & (age["age_group"] != "all")]
    est = est[(est["year"] == year) & (est["placement"] != "all")]
    a = age.pivot_table(index="area", columns="age_group", values="count").reindex(
        columns=GROUPS)
    p = est.pivot_table(index="area", columns="placement", values="count").reindex(
        columns=list(PLACEMENTS)).fillna(0)
    return a, p


def baseline_matching_fixture(fixtures, code):
    """The 2022 baseline of one area, checked against the published fixture's two margins."""
    b = load_baseline(DataSpec(areas=(code,), baseline_year=2022))
    a, p = published_margins(fixtures / "sen2_age_caseload.csv",
                             fixtures / "sen2_estab_caseload.csv")
    np.testing.assert_array_equal(by_group(b, 0), a.loc[code].to_numpy())
    np.testing.assert_array_equal(by_placement(b, 0), p.loc[code].to_numpy())
    return b


def test_england_2022_reproduces_published_fixture(fixtures):
    b = baseline_matching_fixture(fixtures, "E92000001")
    assert b.individuals.dtype == np.int64 and b.individuals.shape == (4, 26, 13, 1, 7)
    assert b.individuals[TIER["universal"]].sum() == 0
    # SEN support: England published count split by the targeted-plus share
    ss = b.history["sen_support"].sel(year=2022, area="E92000001").item()
    tp = b.individuals[TIER["targeted_plus"]].sum()
    assert b.individuals[1:3].sum() == ss and tp == round(0.25 * ss)
    json.dumps(b.provenance)
    assert b.provenance["assumptions"] and b.provenance["sources"]["sen2_age_caseload"]["url"]


def test_birmingham_fixture(fixtures):
    b = baseline_matching_fixture(fixtures, "E08000025")
    # same area by old LA number and by name
    for alias in ("330", "Birmingham"):
        b2 = load_baseline(DataSpec(areas=(alias,), baseline_year=2022))
        assert b2.areas == ("E08000025",)
        np.testing.assert_array_equal(b2.individuals, b.individuals)


def test_every_council_2022_matches_published(baseline_all_2022):
    b = baseline_all_2022
    assert len(b.areas) > 140 and len(set(b.areas)) == len(b.areas)
    if SHARED.exists():  # the full published files, when present
        a, p = published_margins(SHARED / "sen2_age_caseload.csv",
                                 SHARED / "sen2_estab_caseload.csv")
    else:  # the shipped extract holds the published 2022 cells unchanged
        st = pd.read_csv(builtin_dir() / "stock.csv.gz", keep_default_na=False, dtype=str)
        st = st[(st["year"] == "2022") & (st["plan"] == "ehcp")]
        st["count"] = st["count"].astype(float)
        a = st[st["age_group"] != "all"].pivot_table(index="area", columns="age_group",
                                                      values="count").reindex(columns=GROUPS)
        p = st[st["placement"] != "all"].pivot_table(
            index="area", columns="placement", values="count").reindex(
            columns=list(PLACEMENTS)).fillna(0)
    for r, code in enumerate(b.areas):
        if code in ("E06000063", "E06000064"):  # April 2023: Cumbria apportioned (below)
            continue
        np.testing.assert_array_equal(by_group(b, r), a.loc[code].to_numpy(), err_msg=code)
        np.testing.assert_array_equal(by_placement(b, r), p.loc[code].to_numpy(),
                                      err_msg=code)
    eng = load_baseline(DataSpec(areas=("E92000001",), baseline_year=2022))
    assert b.individuals[TIER["specialist"]].sum() == eng.individuals[TIER["specialist"]].sum()
    # Cumbria (E10000006) 2022 = Cumberland + Westmorland and Furness, apportioned.  The
    # extract keeps only the successors, so its published cells are literals here (SEN2 2022
    # sen2_age_caseload.csv / sen2_estab_caseload.csv, E10000006, 2022), checked against the
    # raw files when they are present.
    cumbria_groups = [293, 1403, 1358, 844, 394]
    cumbria_placements = [2175, 83, 699, 191, 49, 866, 229]
    if SHARED.exists():
        assert a.loc["E10000006"].tolist() == cumbria_groups
        assert p.loc["E10000006"].tolist() == cumbria_placements
    cu = [b.areas.index(c) for c in ("E06000063", "E06000064")]
    np.testing.assert_array_equal(by_group(b, cu[0]) + by_group(b, cu[1]), cumbria_groups)
    np.testing.assert_array_equal(by_placement(b, cu[0]) + by_placement(b, cu[1]),
                                  cumbria_placements)


def test_pool_population_consistency(baseline_all_2022):
    b = baseline_all_2022
    pop = b.population.sel(year=b.year).transpose("age", "area").values
    identified = b.individuals.sum(axis=(0, 2, 4))
    clipped = {(c["area"], c["age"]) for c in b.provenance["pool_clipped"]}
    for r, code in enumerate(b.areas):
        for a in range(26):
            if (code, a) in clipped:
                assert b.pool[a, r] == 0
            else:
                assert b.pool[a, r] + identified[a, r] == pop[a, r]
    np.testing.assert_array_equal(b.births, pop[0])
    assert (b.pool >= 0).all() and b.pool.dtype == np.int64


def test_region_is_sum_of_its_councils(baseline_all_2022):
    b = baseline_all_2022
    wm = load_baseline(DataSpec(areas=("E12000005",), baseline_year=2022))
    st = pd.read_csv(builtin_dir() / "areas.csv", dtype=str, keep_default_na=False)
    members = st[(st["region_code"] == "E12000005") & (st["status"] == "current")]["code"]
    idx = [b.areas.index(c) for c in members]
    assert wm.individuals[TIER["specialist"]].sum() == \
        b.individuals[TIER["specialist"]][:, :, idx].sum()


def test_backtest_year_2018_history_stops():
    b = load_baseline(DataSpec(areas=("E92000001", "E06000061"), baseline_year=2018))
    assert b.year == 2018 and int(b.history.year.max()) == 2018
    assert int(b.population.year.max()) == 2018
    assert b.history["new_plans"].sel(year=2018).isnull().all()
    assert np.isfinite(b.history["new_plans"].sel(year=2017, area="E92000001")).all()
    assert b.history["requests"].sel(year=2018).isnull().all()
    e = b.history["ehcp"].sel(year=2018, area="E92000001").values
    np.testing.assert_array_equal(by_group(b, 0), e)
    # 2018: SEN2's establishment table disagrees with its age table; age total kept
    assert by_placement(b, 0).sum() == e.sum()
    assert any("placement_rescaled" in a for a in b.provenance["assumptions"])
    assert any("boundary" in a for a in b.provenance["assumptions"])


@pytest.mark.parametrize("year", [2015, 2016, 2019, 2020, 2021])
def test_every_year_builds(year):
    b = load_baseline(DataSpec(areas=("E92000001",), baseline_year=year))
    e = b.history["ehcp"].sel(year=year, area="E92000001").values
    np.testing.assert_array_equal(by_group(b, 0), e)
    assert np.isfinite(b.history["sen_support"].sel(year=year)).all()
    assert int(b.history.year.max()) == year


def test_history_suppressed_and_missing_are_nan():
    b = load_baseline(DataSpec(areas=("E92000001",), baseline_year=2022))
    h = b.history
    assert h["ehcp"].sel(year=2012, age_group="20_to_25").isnull().all()  # not collected
    assert h["sen_support"].sel(year=2012).isnull().all()
    assert h["requests"].sel(year=2014).isnull().all()  # published as 'z'
    assert h["new_plans"].sel(year=2009, age_group=["under_5", "5_to_10"]).notnull().all()


def test_cumbria_2022_is_its_successors_apportioned():
    b = load_baseline(DataSpec(areas=("E10000006", "E06000063", "E06000064"), baseline_year=2022))
    s = b.individuals[TIER["specialist"]].sum(axis=(0, 1, 3))
    # sen2_2022/data/sen2_age_caseload.csv: Cumbria (909) January 2022 Total_all 4292, bands
    # 293 / 1403 / 1358 / 844 / 394
    assert s.tolist()[0] == 4292 == s[1] + s[2]
    assert by_group(b, 0).tolist() == [293, 1403, 1358, 844, 394]
    # split by the successors' shares of January 2024 (caseload.csv: 2656 and 2196)
    assert abs(s[1] / 4292 - 2656 / (2656 + 2196)) < 1e-3
    st = pd.read_csv(builtin_dir() / "stock.csv.gz", dtype=str, keep_default_na=False)
    cu = st[(st["area"] == "E06000063") & (st["year"] == "2022") & (st["plan"] == "ehcp")]
    assert cu["flag"].str.contains("apportioned").all()
    assert "merged" in " ".join(b.provenance["details"])
    assert b.history["ehcp"].sel(year=2022, area="E10000006").sum() == 4292


def test_user_mistakes():
    with pytest.raises(DataError, match="E0800025.*E08000025"):
        load_baseline(DataSpec(areas=("E0800025",)))
    with pytest.raises(DataError, match="baseline year 2030 outside the data"):
        load_baseline(DataSpec(baseline_year=2030))
    with pytest.raises(DataError, match="baseline year 2012 outside"):
        load_baseline(DataSpec(baseline_year=2012))
    with pytest.raises(DataError, match="more than once"):
        load_baseline(DataSpec(areas=("E10000021", "928")))


def test_former_council_is_merged_area():
    b = load_baseline(DataSpec(areas=("E10000021", "E06000061", "E06000062"), baseline_year=2022))
    s = b.individuals[TIER["specialist"]].sum(axis=(0, 1, 3))
    assert s[0] == s[1] + s[2]
    assert "merged" in " ".join(b.provenance["details"])


# --------------------------------------------------------------------------- January 2025
# Published figures written as literals, read from sen2_2025/data/caseload.csv (202425).

ENGLAND_2025_AGES = [  # 'Child or young persons age': under 3, then ages 3..25
    533, 4302, 22517, 30847, 31867, 34082, 36412, 38381, 41405, 46775, 47172, 47359, 47125,
    44886, 42005, 36484, 28598, 20815, 14495, 9805, 6258, 4030, 2221, 371]
ENGLAND_2025_PLACEMENTS = [  # establishment columns mapped (docs/data.md), PLACEMENTS order
    253712, 24524, 159852, 34028, 4858, 88158, 73613]
ENGLAND_2025_NEEDS = {  # sen_needs_all_plans.csv, England 202425 (not recorded -> NSA)
    "ASD": 201183, "SEMH": 132217, "SLCN": 135836, "MLD": 67861, "SpLD": 14374, "SLD": 25681,
    "PMLD": 8577, "HI": 8765, "VI": 5280, "MSI": 1692, "PD": 24897, "OTH": 7512, "NSA": 4870}
BIRMINGHAM_NEW_2024 = [235, 226, 100]  # newplans.csv 2024, E08000025: age 4, age 5, age 11
COUNCILS_2025 = {  # caseload.csv 202425: total and placement groups (PLACEMENTS order)
    "E06000017": (376, [137, 64, 45, 33, 0, 58, 39]),  # Rutland
    "E08000035": (6093, [1297, 270, 2215, 228, 2, 1210, 871]),  # Leeds
    "E10000016": (20635, [6377, 1075, 6427, 1623, 19, 2952, 2162]),  # Kent
}


@pytest.fixture(scope="module")
def all_2025():
    return load_baseline(DataSpec(areas=("all",), baseline_year=2025))


def by_age(b: Baseline, r: int) -> np.ndarray:
    return b.individuals[TIER["specialist"], :, :, r, :].sum(axis=(1, 2))


def test_default_baseline_is_england_2025_published():
    b = load_baseline(DataSpec())
    assert b.year == 2025 and b.areas == ("E92000001",)
    spec = b.individuals[TIER["specialist"], :, :, 0, :]
    assert spec.sum() == 638745
    ages = by_age(b, 0)
    assert [ages[:3].sum(), *ages[3:]] == ENGLAND_2025_AGES
    assert sum(ENGLAND_2025_AGES) == 638745
    # 'under 3' spread over ages 0-2 by population (largest remainder)
    pop = b.population.sel(year=2025, area="E92000001").values[:3]
    assert np.abs(ages[:3] - 533 * pop / pop.sum()).max() < 1
    assert by_placement(b, 0).tolist() == ENGLAND_2025_PLACEMENTS
    needs = spec.sum(axis=(0, 2))
    assert dict(zip(NEEDS, needs.tolist(), strict=True)) == ENGLAND_2025_NEEDS
    assert b.individuals[1:3].sum() == 1_284_284  # SEN support, January 2025 (published)
    text = " ".join(b.provenance["assumptions"])
    assert "ehcp_single_ages" in text and "need_published" in text
    assert "ehcp_ages:" not in text
    assert b.provenance["ehcp_ages_published"] == ["E92000001"]
    assert b.history["ehcp"].sel(year=2025, area="E92000001").sum() == 638745
    assert int(b.population.year.max()) == 2025


def test_every_council_2025(all_2025):
    b = all_2025
    assert len(b.areas) == 153 and "E10000006" not in b.areas
    assert {"E06000063", "E06000064", "E10000023", "E10000027"} <= set(b.areas)
    for code, (total, placements) in COUNCILS_2025.items():
        r = b.areas.index(code)
        assert b.individuals[TIER["specialist"], :, :, r].sum() == total, code
        assert by_placement(b, r).tolist() == placements, code
    # each council's published single-age margin is kept (ages 3-25 as published)
    st = pd.read_csv(builtin_dir() / "stock.csv.gz", dtype=str, keep_default_na=False)
    st = st[(st["year"] == "2025") & (st["plan"] == "ehcp") & (st["age"] != "all")]
    st = st[st["count"] != ""]
    for (area, age), n in zip(zip(st["area"], st["age"].astype(int), strict=True),
                              st["count"].astype(int), strict=True):
        if area in b.areas:
            assert by_age(b, b.areas.index(area))[age] == n, (area, age)


def test_newham_2025_recording_error_imputed(all_2025):
    """Newham's January 2025 count (1,199) is a recording error: excluded, and its 2024
    count (2,705) scaled by England's change (638,745 / 576,474) is used instead."""
    b = all_2025
    r = b.areas.index("E09000025")
    assert b.individuals[TIER["specialist"], :, :, r].sum() == round(2705 * 638745 / 576474)
    assert np.isnan(b.history["ehcp"].sel(year=2025, area="E09000025")).all()
    assert any("ehcp_imputed" in a for a in b.provenance["assumptions"])
    assert any("E09000025" in d and "recording error" in d for d in b.provenance["details"])
    one = load_baseline(DataSpec(areas=("Newham",)))
    assert one.individuals[TIER["specialist"]].sum() == 2997


def test_alias_and_former_codes_2025():
    b = load_baseline(DataSpec(areas=("E06000065", "E06000066", "E10000002", "E10000006")))
    assert b.areas == ("E10000023", "E10000027", "E06000060", "E10000006")
    s = b.individuals[TIER["specialist"]].sum(axis=(0, 1, 3))
    # caseload.csv 202425: North Yorkshire 5486, Somerset 5725, Buckinghamshire (printed
    # E10000002) 7217, Cumberland 2893 + Westmorland and Furness 2377
    assert s.tolist() == [5486, 5725, 7217, 2893 + 2377]
    assert sum("another code" in d for d in b.provenance["details"]) == 3
    with pytest.raises(DataError, match="more than once"):
        load_baseline(DataSpec(areas=("E06000065", "E10000023")))


@pytest.mark.parametrize("year", [2023, 2024])
def test_years_after_2022_build(year):
    b = load_baseline(DataSpec(areas=("E92000001", "E06000063"), baseline_year=year))
    e = b.history["ehcp"].sel(year=year, area="E92000001").values
    spec = b.individuals[TIER["specialist"]]
    assert spec[..., 0, :].sum() == {2023: 517048, 2024: 576474}[year]
    if year == 2024:  # age rows exclude Hackney and Peterborough (published footnote)
        assert e.sum() == 572829
    else:  # 2023 age table sums to 517,049: bands rescaled to the total (largest remainder)
        assert e.sum() == 517049 and np.abs(by_group(b, 0) - e).max() <= 1
    assert np.isfinite(b.history["sen_support"].sel(year=year)).all()


def test_history_transfers_and_ceased():
    b = load_baseline(DataSpec(areas=("E92000001", "E06000017")))
    h = b.history
    assert int(h.year.max()) == 2025
    for v in ("ceased", "ceased_moved_la"):
        assert h[v].dims == ("year", "area")
        assert h[v].sel(year=2025).isnull().all()  # calendar 2025 not yet published
        assert np.isfinite(h[v].sel(year=[2022, 2023, 2024])).all()
    # ceased_plans.csv England calendar 2024: transfer (to another council) and total
    raw = pd.read_csv(Path(__file__).parent / "fixtures" / "ceased_plans.csv", dtype=str)
    r = raw[raw["geographic_level"] == "National"].iloc[0]
    assert h["ceased_moved_la"].sel(year=2024, area="E92000001") == float(r["transfer"])
    assert h["ceased"].sel(year=2024, area="E92000001") == float(r["total_ceased"])
    assert np.isfinite(h["ceased"].sel(year=2021, area="E92000001"))  # derived from reasons
    assert h["new_plans"].sel(year=2024, area="E92000001").sum() == 97747  # newplans.csv
    b22 = load_baseline(DataSpec(areas=("E92000001",), baseline_year=2022))
    assert int(b22.history.year.max()) == 2022
    assert b22.history["ceased_moved_la"].sel(year=2022).isnull().all()


def test_caseload_by_single_age(all_2025):
    """SEN2's caseload by single age (January 2024 and 2025) in the history: it sums to the
    bands wherever both are known, and England 2025 is as published."""
    h = all_2025.history
    single = h["ehcp_age"]
    years = [int(y) for y in single.year.values if np.isfinite(single.sel(year=y)).any()]
    assert years == [2024, 2025]
    s = single.sel(year=years)
    bands = h["ehcp"].sel(year=years)
    for g, (lo, hi) in AGE_GROUPS.items():
        summed = s.sel(age=range(lo, hi + 1)).sum("age", skipna=False).values
        band = bands.sel(age_group=g).values
        known = np.isfinite(band) & np.isfinite(summed)
        if g in ("5_to_10", "11_to_15", "16_to_19"):
            # an age the release leaves out leaves its band unknown (ages 0-2 and 25 in many
            # councils: not printed, whether zero or suppressed is not settled here)
            assert known.mean() > 0.95
        np.testing.assert_array_equal(summed[known], band[known])
    eng = load_baseline(DataSpec(areas=("E92000001",), baseline_year=2025)).history[
        "ehcp_age"].sel(area="E92000001", year=2025)
    assert eng.sel(age=[0, 1, 2, 3, 4, 5]).values.tolist() == [170, 176, 187, 4302, 22517,
                                                              30847]


def test_new_plans_by_single_age_at_start(all_2025):
    """SEN2's new plans by age at start, 3-19, kept singly (calendar 2022-2024)."""
    h = all_2025.history
    single = h["new_plans_age"]
    years = [int(y) for y in single.year.values if np.isfinite(single.sel(year=y)).any()]
    assert years == [2022, 2023, 2024]
    s = single.sel(year=years)
    # the published end rows are ranges: their ages stay unknown
    assert s.sel(age=[0, 1, 2, 20, 21, 22, 23, 24, 25]).isnull().all()
    bands = h["new_plans"].sel(year=years)
    # the bands the single ages fill are their sums, in every council and year
    for g, (lo, hi) in AGE_GROUPS.items():
        if lo >= 3 and hi <= 19:
            summed = s.sel(age=range(lo, hi + 1)).sum("age", skipna=False).values
            band = bands.sel(age_group=g).values
            # both known everywhere but in Cumbria's successors in 2022 (the release has
            # Cumbria, whose bands are apportioned, not its single ages)
            known = np.isfinite(band) & np.isfinite(summed)
            gap = np.argwhere(np.isfinite(band) & ~known)
            assert {(years[i], str(s.area.values[j])) for i, j in gap} <= {
                (2022, "E06000063"), (2022, "E06000064")}
            np.testing.assert_array_equal(summed[known], band[known])
    # under 5 holds ages 3 and 4 and the 0-2 range
    u5 = bands.sel(age_group="under_5")
    assert (s.sel(age=[3, 4]).sum("age") <= u5).where(np.isfinite(u5), True).all()
    # Birmingham (E08000025), calendar 2024, as published: ages 4, 5 and 11
    bham = s.sel(area="E08000025", year=2024)
    assert bham.sel(age=[4, 5, 11]).values.tolist() == BIRMINGHAM_NEW_2024
