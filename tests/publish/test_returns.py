"""Returns (LSRP, SCAP, DSG): workbooks checked cell by cell against the Dataset's draws."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

import simsend
from simsend import api
from simsend.analysis.dsg import dsg_forecast
from simsend.analysis.lsrp import provision_view
from simsend.cli import main
from simsend.data.lsrp import NOT_SEPARATED, PROVISION_PLACEMENT, PROVISION_TYPES
from simsend.dims import AGE_GROUPS, NEEDS, PLACEMENTS
from simsend.io import write_netcdf
from simsend.publish.export import tidy
from simsend.publish.returns import (
    LSRP_ASSUMPTION,
    NEED_LABELS,
    NOT_SEPARATED_IN,
    ReturnsError,
    lsrp,
    returns,
    tables_path,
)
from simsend.testing import scaled_scenario

ROOT = Path(__file__).resolve().parents[2]
COSTS = ROOT / "configs" / "costs" / "council_2021_22.toml"
RUTLAND = "E06000017"
ENGLAND = "E92000001"
LABELS = list(PROVISION_TYPES.values())  # table 6's rows: the one list of template labels


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A real run of the shipped returns config (by placement too): Rutland, 8 draws, to 2035."""
    tmp = tmp_path_factory.mktemp("returns")
    cfg = simsend.load(ROOT / "configs" / "council_returns.toml")
    assert "placement" in cfg.outputs.by
    ds = simsend.run(cfg, draws=8, seed=3, areas=[RUTLAND])
    return ds, write_netcdf(ds, tmp / "rutland.nc")


def read_tables(path: Path) -> dict[str, pd.DataFrame]:
    """Every table of a workbook, by number: rows x (column label, statistic) as laid out.

    Empty cells are NaN; each row's note is in ``df.attrs["notes"]``.
    """
    wb = openpyxl.load_workbook(path)
    out = {}
    for ws in wb.worksheets:
        if ws.title in ("Notes", "manifest"):
            continue
        rows = list(ws.iter_rows(values_only=True))
        for i, r in enumerate(rows):
            m = re.match(r"Table ([^:]+): ", str(r[0] or ""))
            if not m:
                continue
            h1, h2 = rows[i + 2], rows[i + 3]
            labels, cols = None, []
            for j in range(1, len(h1)):
                if h1[j] == "Note":
                    break
                labels = h1[j] if h1[j] is not None else labels
                cols.append((labels, h2[j]))
            body = []
            for r2 in rows[i + 4:]:
                if r2[0] is None or str(r2[0]).startswith(("Table ",)):
                    break
                if all(v is None for v in r2[1:len(cols) + 1]) and r2[len(cols) + 1] is None:
                    break  # the note line under the table
                body.append(r2)
            idx = [b[0] for b in body]
            df = pd.DataFrame([list(b[1:len(cols) + 1]) for b in body], index=idx,
                              columns=pd.MultiIndex.from_tuples(cols))
            df.attrs["notes"] = dict(zip(idx, [b[len(cols) + 1] for b in body], strict=True))
            out[m.group(1)] = df
    return out


def q3(da: xr.DataArray) -> dict[str, xr.DataArray]:
    q = da.astype(float).quantile([0.5, 0.05, 0.95], dim="draw")
    return {"median": q.sel(quantile=0.5), "5th pct": q.sel(quantile=0.05),
            "95th pct": q.sel(quantile=0.95)}


def check(table: pd.DataFrame, row: str, da: xr.DataArray, label_of) -> int:
    """Compare one row of a workbook table with the quantiles of ``da`` (draw, year)."""
    qs = q3(da)
    n = 0
    for y in da["year"].values:
        lab = label_of(int(y))
        if (lab, "median") not in table.columns:
            continue
        for stat, q in qs.items():
            got = table.loc[row, (lab, stat)]
            want = float(q.sel(year=y))
            if np.isnan(want):
                assert empty(got), (row, lab, stat)
            else:
                assert got == pytest.approx(want), (row, lab, stat, got, want)
                n += 1
    return n


def empty(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def jan(y: int) -> str:
    return f"Jan {y}"


def test_lsrp_tables_match_the_draws_cell_by_cell(results, tmp_path):
    ds, path = results
    out = tmp_path / "lsrp.xlsx"
    paths = api.returns(path, "lsrp", out, suppress=0)
    assert paths == [out, tables_path(out)]
    t = read_tables(out)
    assert list(t)[:3] == ["5.1", "6", "7"]
    assert [k for k in t if k.startswith("7.")] == [f"7.{k}" for k in range(1, 15)]
    ehcp = ds["n_pupils"].sel(tier="specialist", area=RUTLAND)
    n = 0
    # 5.1: age groups, and the total's own median (not a sum of medians)
    by_age = ehcp.sum(["need", "placement"])
    labels = ["Under 5", "Aged 5 to 10", "Aged 11 to 15", "Aged 16 to 19", "Aged 20 to 25"]
    for g, lab in zip(AGE_GROUPS, labels, strict=True):
        n += check(t["5.1"], lab, by_age.sel(age_group=g), jan)
    n += check(t["5.1"], "Total", by_age.sum("age_group"), jan)
    assert list(t["5.1"].index) == [*labels, "Total"]
    # 6: the 14 provision types in the template's order, from the provision view's draws
    assert list(t["6"].index) == [*LABELS, "Total"]
    view = provision_view(ds)["n_pupils"].sel(area=RUTLAND)
    by_type = view.sum(["need", "age_group"])
    for key, label in PROVISION_TYPES.items():
        if key in NOT_SEPARATED:
            assert t["6"].loc[label].isna().all(), label  # text, not zeros
        else:
            n += check(t["6"], label, by_type.sel(provision_type=key), jan)
    by_place = ehcp.sum(["need", "age_group"])
    n += check(t["6"], "Total", by_place.sum("placement"), jan)
    # 7: the 12 SEN2 needs and NSA
    by_need = ehcp.sum(["placement", "age_group"])
    assert list(t["7"].index) == [NEED_LABELS[x] for x in NEEDS] + ["Total"]
    for code in NEEDS:
        n += check(t["7"], NEED_LABELS[code], by_need.sel(need=code), jan)
    # 7.x: need within provision, e.g. state special schools (7.5) and mainstream (7.2), whole
    # groups, and mainstream post-16 (7.9) and EOTAS (7.13), split from theirs
    joint = ehcp.sum("age_group")
    for num, group in (("7.2", "mainstream"), ("7.5", "special_state")):
        for code in ("ASD", "SEMH", "SLCN"):
            n += check(t[num], NEED_LABELS[code], joint.sel(placement=group, need=code), jan)
        n += check(t[num], "Total", joint.sel(placement=group).sum("need"), jan)
    vjoint = view.sum("age_group")
    for num, key in (("7.9", "mainstream_post16"), ("7.13", "eotas")):
        for code in ("ASD", "SEMH", "SLD"):
            n += check(t[num], NEED_LABELS[code], vjoint.sel(provision_type=key, need=code), jan)
        n += check(t[num], "Total", vjoint.sel(provision_type=key).sum("need"), jan)
    assert t["7.3"].index.tolist() == ["All primary needs"]
    assert t["7.3"].loc["All primary needs"].isna().all()
    assert t["7.3"].attrs["notes"]["All primary needs"] == (
        "not separated in SEN2 (included in table 7.2, Mainstream schools or academies)")
    # S1: the pipeline, flows labelled by the calendar year before the census
    flows = {"Initial requests for an EHC needs assessment": "n_requests",
             "EHC needs assessments completed": "n_assessed",
             "Assessments ending in an EHC plan (new plans issued)": "n_issued"}
    for row, v in flows.items():
        da = ds[v].sel(area=RUTLAND)
        da = da.sum([d for d in da.dims if d not in ("draw", "year")])
        n += check(t["S1"], row, da.isel(year=slice(1, None)), lambda y: str(y - 1))
    assert (str(int(ds["year"][0]) - 1), "median") not in t["S1"].columns
    # S2: SEN support by tier
    sup = ds["n_pupils"].sel(area=RUTLAND).sum(["need", "placement", "age_group"])
    n += check(t["S2"], "SEN support: targeted tier", sup.sel(tier="targeted"), jan)
    n += check(t["S2"], "Total SEN support",
               sup.sel(tier=["targeted", "targeted_plus"]).sum("tier"), jan)
    assert n > 1000


def test_csv_beside_the_workbook_holds_the_same_cells(results, tmp_path):
    ds, path = results
    out = tmp_path / "lsrp.xlsx"
    returns(ds, "lsrp", out, suppress=0)
    t = read_tables(out)
    csv = pd.read_csv(tables_path(out), keep_default_na=False, na_values=[""])
    assert set(csv["table"].astype(str)) == set(t)
    labels = {"p50": "median", "p05": "5th pct", "p95": "95th pct"}
    checked = 0
    for r in csv.sample(400, random_state=1).itertuples():
        got = t[str(r.table)].loc[r.row, (r.column, labels[r.statistic])]
        if np.isnan(r.value):
            assert empty(got)
        else:
            assert got == pytest.approx(r.value)
            checked += 1
    assert checked > 100
    assert set(csv["area"]) == {RUTLAND} and set(csv["area_name"]) == {"Rutland"}
    five = csv[(csv["table"].astype(str) == "5.1") & (csv["column"] == "Jan 2026")]
    assert (five["census_year"] == 2026).all()


def test_medians_do_not_add_up_and_the_notes_say_so(results, tmp_path):
    ds, _ = results
    out = tmp_path / "lsrp.xlsx"
    returns(ds, "lsrp", out, suppress=0)
    notes = {r[0]: r[1] for r in openpyxl.load_workbook(out)["Notes"].iter_rows(
        min_row=3, values_only=True) if r[0]}
    assert "medians do not add up" in notes
    assert "January census" in notes["years"]
    tot = notes["total: table 5.1, Jan 2030"]
    by_age = ds["n_pupils"].sel(tier="specialist", year=2030).sum(["need", "placement", "area"])
    own = float(by_age.sum("age_group").astype(float).median("draw"))
    summed = float(by_age.astype(float).median("draw").sum())

    def num(v):  # the Notes sheet's format: one decimal below 1,000 (8 draws: medians x.5)
        return f"{v:,.1f}" if abs(v) < 1000 and v != int(v) else f"{v:,.0f}"

    assert tot.startswith(f"median {num(own)} [")
    assert f"sum of the rows' medians {num(summed)}" in tot
    assert all(f"row: {label}" in notes for label in LABELS)
    assert notes["provision assumption"] == LSRP_ASSUMPTION
    assert "held at" in LSRP_ASSUMPTION and "baseline census" in LSRP_ASSUMPTION
    assert notes["provision shares"].startswith("SEN2 January 2025")


def test_council_tables_get_the_exports_disclosure_control(results, tmp_path):
    ds, _ = results
    out = tmp_path / "lsrp.xlsx"
    returns(ds, "lsrp", out)  # a council: suppression at 5 by default, as export
    t = read_tables(out)["5.1"]
    cells = t
    assert (cells == "c").to_numpy().any()
    nums = cells.map(lambda v: v if isinstance(v, float | int) else np.nan).to_numpy(float)
    assert not ((nums > 0) & (nums < 5)).any()
    # the same cells as export's table of the same numbers
    sub = ds[["n_pupils"]].sel(tier="specialist").sum(["need", "placement"])
    exp = tidy(sub, by=["age_group", "area"], quantiles=[0.05, 0.5, 0.95]).table
    lab = dict(zip(AGE_GROUPS, list(t.index[:5]), strict=True)) | {"total": "Total"}
    for r in exp[exp.statistic == "p50"].itertuples():
        assert (t.loc[lab[r.age_group], (f"Jan {r.year}", "median")] == "c") == (r.status == "c")
    notes = {r[0]: r[1] for r in openpyxl.load_workbook(out)["Notes"].iter_rows(
        min_row=3, values_only=True) if r[0]}
    assert "suppressed" in notes["disclosure control"]


def test_lsrp_labels_come_from_the_provision_types():
    # one list of labels (simsend.data.lsrp); the unseparated rows point into their own group
    assert len(LABELS) == 14
    assert list(NOT_SEPARATED_IN) == list(NOT_SEPARATED)
    for t, into in NOT_SEPARATED_IN.items():
        assert into not in NOT_SEPARATED
        assert PROVISION_PLACEMENT[into] == PROVISION_PLACEMENT[t]


def test_lsrp_rows_of_a_group_add_up_to_the_group(results, tmp_path):
    """Exact on the draws; the return's statistics of a group's rows add to the group's.

    The return splits each group draw by draw by one council's shares, so within a group the
    rows are the group's draws times a constant: the sums over a group's rows are the group's
    draws to the last bit (checked on the draws the return bands, ``provision_view``), and
    so every quantile of the rows sums to the group's quantile (checked on the workbook's
    median and band, to rounding).  Across groups medians do not add up (see the Total).
    """
    ds, _ = results
    out = tmp_path / "lsrp.xlsx"
    returns(ds, "lsrp", out, suppress=0)
    t6 = read_tables(out)["6"]
    view = provision_view(ds)["n_pupils"].sel(area=RUTLAND).sum(["need", "age_group"])
    groups = ds["n_pupils"].sel(tier="specialist", area=RUTLAND).sum(["need", "age_group"])
    checked = 0
    for g in PLACEMENTS:
        keys = [k for k in PROVISION_TYPES if PROVISION_PLACEMENT[k] == g]
        # draws: every draw and year, equal to the last bit
        summed = view.sel(provision_type=keys).sum("provision_type")
        want = groups.sel(placement=g).astype(float).transpose(*summed.dims)
        assert np.array_equal(summed.values, want.values), g
        # the return's statistics: the group's rows that have figures add up to the group
        rows = [PROVISION_TYPES[k] for k in keys if k not in NOT_SEPARATED]
        for y, q in q3(groups.sel(placement=g)).items():
            for year in ds["year"].values:
                got = sum(float(t6.loc[r, (jan(int(year)), y)]) for r in rows)
                assert got == pytest.approx(float(q.sel(year=year)), rel=1e-9, abs=1e-9), (
                    g, y, year, got)
                checked += 1
    assert checked == len(PLACEMENTS) * 3 * ds.sizes["year"]
    # and split groups really are split: post16_fe fills two rows, other four
    assert (t6.loc[PROVISION_TYPES["specialist_post16"]].astype(float) > 0).any()


def test_lsrp_unseparated_rows_carry_text_not_zeros(results, tmp_path):
    ds, _ = results
    out = tmp_path / "lsrp.xlsx"
    returns(ds, "lsrp", out)
    t6 = read_tables(out)["6"]
    csv = pd.read_csv(tables_path(out), keep_default_na=False, na_values=[""])
    for key, into in NOT_SEPARATED_IN.items():
        label = PROVISION_TYPES[key]
        assert t6.loc[label].map(empty).all(), label
        note = f"not separated in SEN2 (included in {PROVISION_TYPES[into]})"
        assert t6.attrs["notes"][label] == note
        rows = csv[(csv["table"].astype(str) == "6") & (csv["row"] == label)]
        assert len(rows) and rows["value"].isna().all() and (rows["note"] == note).all()
        assert not (rows["status"] == "c").any()  # empty, not suppressed
    for key in PROVISION_TYPES:
        if key not in NOT_SEPARATED:
            assert not t6.attrs["notes"][PROVISION_TYPES[key]].startswith("not separated")


def as_england(ds: xr.Dataset) -> xr.Dataset:
    """The small run relabelled as England: its counts split by England's SEN2 shares."""
    out = ds.assign_coords(area=[ENGLAND])
    out.attrs = {**ds.attrs, "areas": json.dumps([ENGLAND]),
                 "area_names": json.dumps(["England"])}
    return out


def test_lsrp_early_years_ehe_and_eotas_have_figures_for_england(results):
    ds, _ = results
    r = lsrp(as_england(ds))
    assert r.area == ENGLAND and r.disclosure.suppress == 0  # England: no suppression
    b = r.block("6")
    other = ds["n_pupils"].sel(tier="specialist", placement="other").sum(
        ["need", "age_group", "area"]).astype(float)
    assert (other.median("draw") > 0).all()
    for key in ("early_years", "elective_home_education", "eotas"):
        i = b.rows.index(PROVISION_TYPES[key])
        for stat in ("p50", "p95"):
            assert (b.values[stat][i] > 0).all(), (key, stat, b.values[stat][i])
        assert not b.status[i].any()
        assert b.row_notes[i].startswith("engine group 'other' x ")
    i = b.rows.index(PROVISION_TYPES["early_years"])
    shares = json.loads(provision_view(as_england(ds))["n_pupils"].attrs["provision_shares"])
    share = shares[ENGLAND]["other"]["early_years"]
    assert b.values["p50"][i] == pytest.approx(share * other.median("draw").values, rel=1e-9)


def test_scap_places_by_phase_and_horizon(results, tmp_path):
    ds, path = results
    out = tmp_path / "scap.xlsx"
    res = CliRunner().invoke(main, ["returns", str(path), "--format", "scap", "--out", str(out),
                                    "--no-disclosure"])
    assert res.exit_code == 0, res.output
    t = read_tables(out)
    prim, sec = t["1"], t["2"]
    base = int(ds["year"][0])
    assert len({c for c, _ in prim.columns}) == 6  # baseline + 5 years
    assert len({c for c, _ in sec.columns}) == 8  # baseline + 7 years

    def acad(y):
        return f"{y - 1}/{y % 100:02d}" + (" (baseline)" if y == base else "")

    pupils = ds["n_pupils"].sel(area=RUTLAND).sum(["tier", "need"])
    rows = {"State-funded special schools (maintained special and special academies)":
            "special_state", "Alternative provision": "alternative_provision",
            "Specialist bases in mainstream (SEN units and resourced provision)":
            "inclusion_base"}
    for tab, ag in ((prim, "5_to_10"), (sec, "11_to_15")):
        for row, g in rows.items():
            check(tab, row, pupils.sel(placement=g, age_group=ag), acad)
        groups = ["inclusion_base", "special_state", "special_independent",
                  "alternative_provision"]
        assert check(tab, "Total specialist provision",
                     pupils.sel(placement=groups, age_group=ag).sum("placement"), acad) > 0
    assert ("2032/33", "median") not in prim.columns and ("2031/32", "median") in sec.columns


def with_scenario(ds: xr.Dataset) -> xr.Dataset:
    """Two scenarios: the run itself and one with every census count scaled by 0.9."""
    return scaled_scenario(ds, 0.9, "mitigated")


def test_dsg_plan_matches_the_money_layer(results, tmp_path):
    ds, path = results
    out = tmp_path / "dsg.xlsx"
    res = CliRunner().invoke(main, ["returns", str(path), "--format", "dsg", "--costs",
                                    str(COSTS), "--out", str(out)])
    assert res.exit_code == 0, res.output
    t = read_tables(out)["1"]
    bal = dsg_forecast(ds, COSTS)
    fy = dict(zip(bal["year"].values.tolist(), bal["financial_year"].values.tolist(),
                  strict=True))
    lab = fy.get
    n = check(t, "Total high-needs spend", bal["spend_in_budget"].sel(area=RUTLAND) / 1e6, lab)
    n += check(t, "High-needs income (high needs block allocation)",
               bal["income"].sel(area=RUTLAND) / 1e6, lab)
    n += check(t, "Cumulative DSG balance at 31 March (negative = deficit)",
               bal["cumulative_balance"].sel(area=RUTLAND) / 1e6, lab)
    n += check(t, "In-year balance (income - spend)",
               bal["in_year_balance"].sel(area=RUTLAND) / 1e6, lab)
    assert n == 4 * 3 * ds.sizes["year"]
    # scenarios: one plan each, and the cumulative balance with a column per scenario
    two = with_scenario(ds)
    out2 = tmp_path / "dsg2.xlsx"
    returns(two, "dsg", out2, costs=COSTS)
    t2 = read_tables(out2)
    assert {"1 baseline", "1 mitigated", "2"} <= set(t2)
    bal2 = dsg_forecast(two, COSTS)["cumulative_balance"].sel(area=RUTLAND) / 1e6
    q = bal2.quantile(0.5, "draw")
    for y, f in fy.items():
        for s in ("baseline", "mitigated"):
            assert t2["2"].loc[f, (s, "median")] == pytest.approx(float(q.sel(year=y,
                                                                              scenario=s)))
    assert t2["2"].loc[fy[2030], ("mitigated", "median")] > t2["2"].loc[
        fy[2030], ("baseline", "median")]


def test_lsrp_of_a_scenario(results, tmp_path):
    ds, _ = results
    two = with_scenario(ds)
    r = lsrp(two, scenario="mitigated", suppress=0)
    want = float((two["n_pupils"].sel(scenario="mitigated", tier="specialist", year=2030)
                  .sum(["need", "placement", "age_group", "area"])).astype(float).median("draw"))
    assert r.block("5.1").cell("Total", "Jan 2030") == pytest.approx(want)
    assert r.scenario == "mitigated"
    with pytest.raises(ReturnsError, match="scenario 'nope' is not in the results"):
        lsrp(two, scenario="nope")


@pytest.mark.parametrize(("change", "fmt", "message"), [
    (lambda ds: ds.sum("placement"), "lsrp",
     r"table 6.*needs n_pupils by placement.*add \"placement\" to \[outputs\] by"),
    (lambda ds: ds.sum("need"), "lsrp", r"table 7.*needs n_pupils by need"),
    (lambda ds: ds.sum("age_group"), "lsrp", r"needs n_pupils by age_group \(or age\)"),
    (lambda ds: ds.drop_vars("n_pupils"), "scap", r"needs the variable 'n_pupils'"),
    (lambda ds: ds.isel(year=slice(0, 6)), "scap", r"needs census years to 2032.*end in 2030"),
    (lambda ds: ds.isel(draw=0), "lsrp", r"no 'draw' dimension"),
    (lambda ds: xr.concat([ds, ds.assign_coords(area=["E06000018"])], "area", data_vars="all"),
     "lsrp",
     r"results hold 2 areas .*--area"),
])
def test_results_lacking_what_a_table_needs(results, tmp_path, change, fmt, message):
    ds, _ = results
    with pytest.raises(ReturnsError, match=message):
        returns(change(ds), fmt, tmp_path / "x.xlsx")
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_cli_bad_inputs_one_line_no_traceback(results, tmp_path):
    ds, path = results
    cases = [
        (["--format", "xls"], "unknown return format 'xls'; expected one of lsrp, scap, dsg"),
        (["--format", "dsg"], "needs a cost file"),
        (["--format", "dsg", "--costs", str(tmp_path / "none.toml")], "none.toml"),
        (["--format", "lsrp", "--area", "E09000001"], "area 'E09000001' is not in the results"),
        (["--format", "lsrp", "--out", str(tmp_path / "x.csv")], "an .xlsx workbook"),
        (["--format", "dsg", "--costs", str(COSTS), "--scenario", "x"], "every scenario"),
    ]
    for args, want in cases:
        res = CliRunner().invoke(main, ["returns", str(path), *args])
        assert res.exit_code == 2, (args, res.output)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and want in lines[0], lines
        assert "Traceback" not in res.output
    flat = ds.sum("placement")
    bad = write_netcdf(flat, tmp_path / "flat.nc")
    res = CliRunner().invoke(main, ["returns", str(bad), "--format", "lsrp"])
    assert res.exit_code == 2 and "placement" in res.output
    res = CliRunner().invoke(main, ["returns", str(tmp_path / "missing.nc"), "--format", "lsrp"])
    assert res.exit_code == 2 and "missing.nc" in res.output
    assert not list(tmp_path.glob("*.xlsx"))


def test_cli_default_paths(results, tmp_path):
    ds, path = results
    local = shutil.copy(path, tmp_path / "council.nc")
    res = CliRunner().invoke(main, ["returns", str(local), "--format", "lsrp"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "council_lsrp.xlsx").exists()
    assert (tmp_path / "council_lsrp_tables.csv").exists()
    assert "wrote" in res.output


def test_workbooks_open_in_libreoffice_headless(results, tmp_path):
    ds, path = results
    books = [tmp_path / "lsrp.xlsx", tmp_path / "scap.xlsx", tmp_path / "dsg.xlsx"]
    returns(ds, "lsrp", books[0])
    returns(ds, "scap", books[1])
    returns(ds, "dsg", books[2], costs=COSTS)
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.skip("no LibreOffice on PATH (Debian: apt-get install libreoffice-calc-nogui)")
    env = {**os.environ, "HOME": str(tmp_path)}
    res = subprocess.run([soffice, "--headless", "--norestore", "--convert-to", "pdf",
                          "--outdir", str(tmp_path / "pdf"), *map(str, books)],
                         capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr
    for b in books:
        pdf = tmp_path / "pdf" / f"{b.stem}.pdf"
        assert pdf.exists(), (b, res.stdout, res.stderr)
        assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000
