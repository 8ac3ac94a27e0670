"""Council finance files: the shipped extract, its derived unit costs and the readers' errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simsend.data.baseline import builtin_dir
from simsend.data.errors import DataError
from simsend.data.finance import (
    SPECS,
    UNIT_KEYS,
    build_finance,
    derive_unit_costs,
    finance_dir,
    funded_places,
    read_finance,
    transport_rebase,
    unit_cost_table,
)

KENT, BIRMINGHAM, ENGLAND = "E10000016", "E08000025", "E92000001"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "finance"


def _one(df: pd.DataFrame, **sel):
    for k, v in sel.items():
        df = df[df[k] == v]
    assert len(df) == 1, sel
    return df.iloc[0]


# --------------------------------------------------------------------------- shipped files


def test_every_shipped_file_reads_and_has_england_or_kent():
    for name in SPECS:
        if name == "transport_spend.csv":  # England only (no council series published here)
            continue
        df = read_finance(name)
        assert len(df) > 100, name
        assert KENT in set(df["area"]), name


def test_allocations_and_balances_of_two_councils_as_published():
    a = read_finance("hn_allocations.csv")
    # ESFA DSG 2021-22: high needs block before deductions (published figures)
    assert _one(a, area=KENT, financial_year="2021-22")["high_needs_gbp"] == 249_004_381
    assert _one(a, area=BIRMINGHAM, financial_year="2021-22")["high_needs_gbp"] == 212_317_811
    assert _one(a, area=ENGLAND, financial_year="2021-22")["high_needs_gbp"] == 7_906_348_577
    b = read_finance("dsg_balances.csv")
    k = _one(b, area=KENT, financial_year="2021-22")
    assert k["cumulative_balance_pct"] == -6.83
    assert k["dsg_income_gbp"] == 1_429_826_870
    assert k["cumulative_balance_gbp"] == round(-0.0683 * 1_429_826_870)
    bm = _one(b, area=BIRMINGHAM, financial_year="2020-21")
    assert bm["cumulative_balance_pct"] == 0.29 and bm["cumulative_balance_gbp"] > 0
    assert _one(b, area=ENGLAND, financial_year="2021-22")["cumulative_balance_pct"] == -2.26


def test_successors_of_a_split_council_share_its_money_by_ehc_plans():
    """Cumberland and Westmorland and Furness: Cumbria's rows split by January EHC plans."""
    a, b = read_finance("hn_allocations.csv"), read_finance("dsg_balances.csv")
    stock = pd.read_csv(builtin_dir() / "stock.csv.gz", dtype={"count": float})
    succ = ["E06000063", "E06000064"]
    n = [_one(stock, year=2022, area=x, plan="ehcp", age_group="all", age="all", need="all",
              placement="all")["count"] for x in succ]
    cumbria = _one(a, area="E10000006", financial_year="2021-22")["high_needs_gbp"]
    for x, k in zip(succ, n, strict=True):
        row = _one(a, area=x, financial_year="2021-22")
        assert row["high_needs_gbp"] == round(cumbria * k / sum(n))
        assert "apportioned from E10000006" in row["note"]
        assert _one(b, area=x, financial_year="2021-22")["cumulative_balance_pct"] == -3.57
    total = sum(_one(a, area=x, financial_year="2021-22")["high_needs_gbp"] for x in succ)
    assert abs(total - cumbria) <= 1
    # North and West Northamptonshire: apportioned before 2021-22, published from then on
    assert "E10000021" in _one(a, area="E06000061", financial_year="2019-20")["note"]
    assert _one(a, area="E06000061", financial_year="2021-22")["note"] == ""


def test_kent_unit_costs_from_its_outturn_by_hand():
    """special_state = 10,000 + top-up to special schools / January 2022 state special plans."""
    o = read_finance("hn_outturn.csv")
    top = _one(o, area=KENT, line="top_up_maintained_special")["outturn_gbp"]
    assert top == pytest.approx(73_113_088.15)
    stock = pd.read_csv(builtin_dir() / "stock.csv.gz", dtype={"count": float})
    n = _one(stock, year=2022, area=KENT, plan="ehcp", age_group="all", age="all", need="all",
             placement="special_state")["count"]
    t = unit_cost_table()
    med, low, high = t[(KENT, "special_state")]
    assert med == round(10_000 + top / n, 2)
    assert math.isclose(med * med, low * high, rel_tol=1e-5)  # symmetric on the log scale
    ind = read_finance("specialist_spend.csv")
    spent = _one(ind, area=KENT, financial_year="2021-22", sector="independent")["spend_gbp"]
    n_ind = _one(stock, year=2022, area=KENT, plan="ehcp", age_group="all", age="all",
                 need="all", placement="special_independent")["count"]
    assert t[(KENT, "special_independent")][0] == round(spent / n_ind, 2)
    assert t[(KENT, "inclusion_base")][0] == pytest.approx(6000 + t[(KENT, "mainstream")][0],
                                                           abs=0.01)


def test_unit_cost_file_is_what_the_shipped_tables_derive():
    tables = {n: read_finance(n) for n in SPECS if n != "unit_costs.csv"}
    stock = pd.read_csv(builtin_dir() / "stock.csv.gz", dtype={"year": int, "count": float})
    areas = pd.read_csv(builtin_dir() / "areas.csv", dtype=str)
    got = derive_unit_costs(tables, stock, areas)
    shipped = read_finance("unit_costs.csv")
    pd.testing.assert_frame_equal(
        got[["area", "key", "median", "low", "high"]].reset_index(drop=True),
        shipped[["area", "key", "median", "low", "high"]].reset_index(drop=True),
        check_dtype=False, atol=0.011)


def test_unit_costs_cover_every_council_and_key_and_fall_back_with_a_reason():
    df = read_finance("unit_costs.csv")
    current = pd.read_csv(builtin_dir() / "areas.csv", dtype=str)
    current = set(current[(current.status == "current") & (current.level == "la")]["code"])
    assert set(df["area"]) == current
    assert df.groupby("area")["key"].apply(lambda k: sorted(k) == sorted(UNIT_KEYS)).all()
    fallback = df[df["median"].isna()]
    assert (fallback["note"].str.len() > 0).all()
    assert 0 < len(fallback) < 0.1 * len(df)
    # a council's spread is at least England's own (x/÷ 1.15) and at most x/÷ 2
    own = df[df["median"].notna()]
    ratio = own["high"] / own["median"]
    assert (ratio > 1.149).all() and (ratio < 2.001).all()
    # Cumberland takes Cumbria's ratios (its council in 2021-22)
    cb = _one(df, area="E06000063", key="special_state")
    assert "E10000006" in cb["note"] and cb["median"] > 10_000


SHARES = {"mainstream": 0.10, "inclusion_base": 0.30, "special_state": 0.60,
          "special_independent": 0.80, "alternative_provision": 0.50, "post16_fe": 0.25,
          "other": 0.05}


def test_transport_spend_as_published_and_rebased_per_eligible_pupil():
    t = read_finance("transport_spend.csv")
    assert t["area"].tolist() == [ENGLAND, ENGLAND]
    assert t["spend_gbp"].tolist() == [644_757_072, 1_733_513_195]  # LGA/Isos, July 2025
    r = transport_rebase(SHARES)
    assert r.years == ("2015-16", "2023-24")
    # January 2016 and 2024 EHC plans by placement (SEN2) times the shares, by hand
    assert r.eligible[0] == pytest.approx(0.10 * 109_687 + 0.30 * 12_943 + 0.60 * 100_241
                                          + 0.80 * 13_721 + 0.50 * 1_489 + 0.25 * 11_987
                                          + 0.05 * 6_462, abs=1e-6)  # 90,037.35
    assert r.eligible[1] == pytest.approx(0.10 * 225_780 + 0.30 * 22_236 + 0.60 * 155_045
                                          + 0.80 * 29_802 + 0.50 * 4_471 + 0.25 * 83_781
                                          + 0.05 * 51_714, abs=1e-6)  # 171,883.85
    assert r.unit[0] == pytest.approx(7_161.00, abs=0.005)
    assert r.unit[1] == pytest.approx(10_085.38, abs=0.005)
    assert r.growth == pytest.approx((10_085.3756 / 7_160.9957) ** (1 / 8) - 1, abs=1e-8)
    assert r.growth == pytest.approx(0.04373, abs=5e-6)
    assert r.unit_at("2023-24") == r.unit[1]
    assert r.unit_at("2021-22") == pytest.approx(9_257.90, abs=0.005)


def test_transport_rebase_of_a_council_file_and_its_errors(tmp_path):
    own = _write(tmp_path, "t.csv", "financial_year,area,spend_gbp\n"
                 "2019-20,E10000016,20000000\n2023-24,E10000016,40000000\n")
    r = transport_rebase({"special_state": 1.0}, area=KENT, path=own)
    assert r.years == ("2019-20", "2023-24") and r.eligible[0] > 0
    assert (1 + r.growth) ** 4 == pytest.approx(2.0 * r.eligible[0] / r.eligible[1])
    with pytest.raises(DataError, match=r"t\.csv: E08000025 has 0 year\(s\)"):
        transport_rebase({"special_state": 1.0}, area=BIRMINGHAM, path=own)
    with pytest.raises(DataError, match=r"placement\(s\) \['special'\]"):
        transport_rebase({"special": 1.0}, area=KENT, path=own)


def test_funded_places_from_place_funding_of_kent_by_hand_and_england_summed():
    p = funded_places().set_index(["area", "placement"])["places"]
    # Kent's 2021-22 outturn: special-school place funding GBP 50,080,274.78 at GBP 10,000 a
    # place; mainstream place funding 0 + 2,753,333.26 + 2,022,499.95 at GBP 6,000 a place
    assert p[(KENT, "special_state")] == pytest.approx(5_008.027478, abs=1e-6)
    assert p[(KENT, "inclusion_base")] == pytest.approx(4_775_833.21 / 6_000, abs=1e-6)
    # England (150 councils with outturn): 84,845 maintained special places, below SEN2's
    # 140,165 EHC plans in state special schools of January 2022 (academies are not in it)
    eng = p.groupby(level="placement").sum()
    assert eng["special_state"] == pytest.approx(84_845.11, abs=0.01)
    assert eng["inclusion_base"] == pytest.approx(17_044.84, abs=0.01)
    assert len(p) == 300 and ENGLAND not in p.index.get_level_values("area")


def test_funded_places_of_a_council_file(tmp_path):
    own = _write(tmp_path, "o.csv", "financial_year,area,line,outturn_gbp\n"
                 "2024-25,E10000016,place_funding_special,60000000\n"
                 "2024-25,E10000016,place_funding_primary,600000\n")
    p = funded_places(own, fy="2024-25").set_index("placement")["places"]
    assert p.to_dict() == {"special_state": 6_000.0, "inclusion_base": 100.0}
    bad = _write(tmp_path, "b.csv", "financial_year,area,line,outturn_gbp\n"
                 "2024-25,E10000016,place_funding_specials,60000000\n")
    with pytest.raises(DataError, match=r"b\.csv: row 2: column 'line': expected one of"):
        funded_places(bad, fy="2024-25")


@pytest.mark.skipif(not SHARED.is_dir(), reason="the published files are not here")
def test_rebuilding_from_the_published_files_gives_the_shipped_ones(tmp_path):
    areas = pd.read_csv(builtin_dir() / "areas.csv", dtype=str)
    stock = pd.read_csv(builtin_dir() / "stock.csv.gz", dtype={"year": int, "count": float})
    tables = build_finance(SHARED, areas, stock)
    for name, df in tables.items():
        shipped = read_finance(name)
        assert len(df) == len(shipped), name
        for col in shipped.columns:
            a, b = df[col].to_numpy(), shipped[col].to_numpy()
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b.astype(float), atol=0.011, err_msg=name)
            else:
                assert [str(x) if x == x else "" for x in a] == [
                    str(x) if x == x else "" for x in b], (name, col)


# --------------------------------------------------------------------------- bad input


def _write(tmp_path, name, text) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD_BALANCES = ("financial_year,area,cumulative_balance_gbp\n"
                 "2023-24,E10000016,-150000000\n")
GOOD_UNITS = ("area,key,price_base,median,low,high\n"
              "E10000016,special_state,2021-22,23000,20000,26450\n")


@pytest.mark.parametrize(("name", "text", "pattern"), [
    ("dsg_balances.csv", GOOD_BALANCES.replace("-150000000", "GBP 150m"),
     r"row 2: column 'cumulative_balance_gbp': expected pounds as a number"),
    ("dsg_balances.csv", GOOD_BALANCES.replace("2023-24", "2023/24"),
     r"row 2: column 'financial_year': expected a financial year such as '2021-22'"),
    ("dsg_balances.csv", GOOD_BALANCES.replace("2023-24", "2023-25"),
     r"row 2: column 'financial_year'"),
    ("dsg_balances.csv", GOOD_BALANCES.replace("E10000016", "Kent"),
     r"row 2: column 'area': expected a GSS area code"),
    ("unit_costs.csv", GOOD_UNITS.replace("E10000016", "E1000016"),
     r"row 2: column 'area': expected a GSS area code .*did you mean E10000016 \(Kent\)"),
    # North Yorkshire under ONS's code: no run has it, so the rows were never read
    ("dsg_balances.csv", GOOD_BALANCES.replace("E10000016", "E06000065"),
     r"row 2: column 'area': expected E10000023: E06000065 is another code of North Yorkshire"),
    ("dsg_balances.csv", GOOD_BALANCES + "2023-24,E10000016,1\n",
     r"row 3: column 'area': .*given twice"),
    ("dsg_balances.csv", GOOD_BALANCES.replace("cumulative_balance_gbp", "balance"),
     r"missing column\(s\) \['cumulative_balance_gbp'\]"),
    ("dsg_balances.csv", "financial_year,area,cumulative_balance_gbp,cumulative_balance_pct,"
                         "dsg_income_gbp\n2021-22,E10000016,-50000000,-6.83,1429826870\n",
     r"row 2: column 'cumulative_balance_gbp': expected cumulative_balance_pct x"),
    ("dsg_balances.csv", "financial_year,area,cumulative_balance_gbp,cumulative_balance_pct\n"
                         "2021-22,E10000016,-5,-683\n",
     r"row 2: column 'cumulative_balance_pct': expected a percentage between -100 and 100"),
    ("hn_allocations.csv", "financial_year,area,high_needs_gbp\n2024-25,E10000016,-3\n",
     r"row 2: column 'high_needs_gbp': expected pounds >= 0"),
    ("hn_allocations.csv", "financial_year,area,high_needs_gbp\n2024-25,E10000016,\n",
     r"row 2: column 'high_needs_gbp': expected a number \(pounds\), not an empty cell"),
    ("unit_costs.csv", GOOD_UNITS.replace("special_state", "special"),
     r"row 2: column 'key': expected one of \['targeted'"),
    ("unit_costs.csv", GOOD_UNITS.replace("23000,20000", "19000,20000"),
     r"row 2: column 'low': expected 0 < low < median < high"),
    ("unit_costs.csv", GOOD_UNITS.replace("23000", "21000"),
     r"row 2: column 'median': expected the median of a lognormal"),
    ("unit_costs.csv", GOOD_UNITS.replace(",26450", ","),
     r"row 2: column 'median': expected median, low and high all given"),
    ("transport_spend.csv", "financial_year,area,spend_gbp\n2023-24,E10000016,4e7\n"
                            "2024-25,E10000016,-4e7\n",
     r"row 3: column 'spend_gbp': expected pounds >= 0"),
    ("transport_spend.csv", "financial_year,area,spend\n2023-24,E10000016,4e7\n",
     r"missing column\(s\) \['spend_gbp'\]"),
])
def test_bad_user_file_names_file_row_and_column(tmp_path, name, text, pattern):
    p = _write(tmp_path, name, text)
    with pytest.raises(DataError, match=pattern) as e:
        read_finance(name, p)
    assert str(p) in str(e.value)


def test_good_user_files_read_and_missing_file_is_clear(tmp_path):
    b = read_finance("dsg_balances.csv", _write(tmp_path, "b.csv", GOOD_BALANCES))
    assert b["cumulative_balance_gbp"].tolist() == [-150_000_000.0]
    t = unit_cost_table(_write(tmp_path, "u.csv", GOOD_UNITS))
    assert t == {(KENT, "special_state"): (23000.0, 20000.0, 26450.0)}
    with pytest.raises(DataError, match=r"none\.csv: file not found"):
        read_finance("dsg_balances.csv", tmp_path / "none.csv")
    with pytest.raises(DataError, match="cannot be read as CSV"):
        read_finance("dsg_balances.csv", _write(tmp_path, "e.csv", ""))


def test_unit_cost_file_with_two_price_bases_is_refused(tmp_path):
    p = _write(tmp_path, "u.csv", GOOD_UNITS + "E10000016,post16_fe,2024-25,12000,10000,14400\n")
    with pytest.raises(DataError, match=r"one price base expected.*2021-22.*2024-25"):
        unit_cost_table(p)


def test_shipped_files_live_in_the_package():
    assert finance_dir() == builtin_dir() / "finance"
    assert (finance_dir() / "PROVENANCE.md").is_file()
