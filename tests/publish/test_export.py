"""Tidy exports: round trips against the Dataset's quantiles, disclosure control, xlsx layout."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

import simsend
from simsend.cli import main
from simsend.io import write_netcdf
from simsend.publish import disclosure
from simsend.publish.export import (
    DEFAULT_MAX_BYTES,
    ExportError,
    default_by,
    default_disclosure,
    export,
    plan,
    tidy,
)
from simsend.testing import pin_2022, scaled_scenario

BASE = Path(__file__).resolve().parents[2] / "configs" / "base.toml"
RUTLAND = "E06000017"


def small_config(tmp_path: Path, area: str = RUTLAND, end_year: int = 2024) -> Path:
    text = pin_2022(BASE.read_text())
    text = re.sub(r"(?m)^end_year = .*$", f"end_year = {end_year}", text, count=1)
    text = text.replace('areas = ["E92000001"]', f'areas = ["{area}"]')
    p = tmp_path / "small.toml"
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    ds = simsend.run(small_config(tmp), draws=6, seed=11)
    path = write_netcdf(ds, tmp / "rutland.nc")
    return ds, path


def with_scenario(ds: xr.Dataset) -> xr.Dataset:
    """Two scenarios: the run itself and one with every census count scaled by 1.2."""
    return scaled_scenario(ds, 1.2, "more")


def lookup(df, **where):
    m = np.ones(len(df), bool)
    for k, v in where.items():
        m &= (df[k] == v).to_numpy()
    rows = df[m]
    assert len(rows) == 1, (where, len(rows))
    return rows.iloc[0]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_equals_dataset_quantiles(results, tmp_path, fmt):
    ds, _ = results
    path = tmp_path / f"out.{fmt}"
    export(ds, path, suppress=0)
    back = pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False) if fmt == "csv" \
        else pd.read_parquet(path)
    da = ds["n_pupils"].astype(float)
    q = da.quantile([0.05, 0.25, 0.5, 0.75, 0.95], dim="draw")
    rng = np.random.default_rng(0)
    for _ in range(25):  # random cells, every statistic
        sel = {d: str(rng.choice(ds[d].values)) for d in ("tier", "age_group", "need")}
        y = int(rng.choice(ds["year"].values))
        cell = {**sel, "area": RUTLAND, "year": y, "variable": "n_pupils"}
        for p, lab in zip([0.05, 0.25, 0.5, 0.75, 0.95], ["p05", "p25", "p50", "p75", "p95"],
                          strict=True):
            row = lookup(back, **cell, statistic=lab)
            np.testing.assert_allclose(row["value"], float(q.sel(quantile=p, year=y, area=RUTLAND, **sel)))
            assert row["quantile"] == p
        row = lookup(back, **cell, statistic="mean")
        np.testing.assert_allclose(row["value"],
                                   float(da.sel(year=y, area=RUTLAND, **sel).mean("draw")))
    # a total: quantile of the summed draws, not a sum of quantiles
    tot = da.sum(["need", "age_group", "area"]).sel(tier="specialist").quantile(0.95, "draw")
    for y in ds["year"].values:
        row = lookup(back, variable="n_pupils", year=int(y), tier="specialist",
                     age_group="total", need="total", area=RUTLAND, statistic="p95")
        np.testing.assert_allclose(row["value"], float(tot.sel(year=y)))
    # flows: no row at the baseline year (not simulated), rows after it
    assert not ((back["variable"] == "n_identified") & (back["year"] == 2022)).any()
    assert ((back["variable"] == "n_identified") & (back["year"] == 2023)).any()
    assert set(back.columns) >= {"variable", "year", "tier", "age_group", "need", "area",
                                 "area_name", "statistic", "quantile", "value", "status",
                                 "units"}
    assert (back.loc[back["area"] == RUTLAND, "area_name"] == "Rutland").all()


def test_by_sums_draws_before_the_bands(results):
    ds, _ = results
    t = tidy(ds, variables=["n_pupils"], by=["tier"], suppress=0).table
    assert "need" not in t.columns and "age_group" not in t.columns
    direct = ds["n_pupils"].sum(["age_group", "need", "area"]).astype(float)
    for tier in ["specialist", "targeted"]:
        got = t[(t.tier == tier) & (t.statistic == "p50")].sort_values("year")["value"]
        want = direct.sel(tier=tier).quantile(0.5, dim="draw").values
        np.testing.assert_allclose(got.to_numpy(), want)


def england(ds: xr.Dataset) -> xr.Dataset:
    """The same numbers labelled as England's (coordinate and attribute)."""
    eng = ds.assign_coords(area=["E92000001"])
    eng.attrs = {**ds.attrs, "areas": '["E92000001"]', "area_names": '["England"]'}
    return eng


def test_disclosure_default_follows_the_areas_not_the_columns(results):
    ds, _ = results
    eng = england(ds)
    assert default_disclosure(ds).suppress == 5
    assert default_disclosure(eng).suppress == 0
    assert default_disclosure(eng, suppress=10).suppress == 10
    # Rutland by tier and need: no 'area' column, but still a council's table
    t = tidy(ds, variables=["n_pupils"], by=["tier", "need"]).table
    assert "area" not in t.columns
    v = t["value"]
    assert not ((v > 0) & (v < 5)).any() and (t["status"] == "c").any()
    assert (t.loc[v.isna(), "status"] == "c").all()
    # Rutland by tier alone (a line per year): the small tiers go, and with them a second cell
    t1 = tidy(ds, variables=["n_pupils"], by=["tier"]).table
    assert not ((t1["value"] > 0) & (t1["value"] < 5)).any()
    # the areas known from the 'areas' attribute only (no area dimension)
    flat = ds[["n_pupils"]].sum("area")
    assert "area" not in flat.coords
    for attrs, want in [({"areas": '["E06000017"]'}, 5), ({"areas": '["E92000001"]'}, 0),
                        ({"areas": '["E12000001"]'}, 5), ({}, 5)]:
        flat.attrs = attrs
        assert default_disclosure(flat).suppress == want, attrs
    # the coordinate says England, the run simulated a council: council-level
    mixed = eng.copy()
    mixed.attrs = {**eng.attrs, "areas": f'["{RUTLAND}"]'}
    assert default_disclosure(mixed).suppress == 5
    # the reason names the rule and why
    why = default_disclosure(ds).describe()
    assert "council-level" in why and RUTLAND in why and "whatever --by keeps" in why
    assert "England-level" in default_disclosure(eng).describe()
    assert "below the default of 5" in default_disclosure(ds, suppress=0).describe()


def test_cli_export_council_table_without_area_column_is_suppressed(results, tmp_path):
    _, path = results
    out = tmp_path / "tn.csv"
    res = CliRunner().invoke(main, ["export", str(path), "--by", "tier,need", "--out",
                                    str(out)])
    assert res.exit_code == 0, res.output
    assert "No disclosure control" not in res.output
    assert "default for council-level results" in res.output and RUTLAND in res.output
    t = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert "area" not in t.columns
    n = t[t["variable"].str.startswith("n_")]  # counts of people (hours, ratios are not)
    assert not ((n["value"] > 0) & (n["value"] < 5)).any() and (n["status"] == "c").any()
    side = json.loads(out.with_name("tn.manifest.json").read_text())
    assert "council-level" in side["disclosure_control"]


def test_suppressed_export_publishes_nothing_small_nor_recoverable(results):
    ds, _ = results
    truth = tidy(ds, variables=["n_pupils"], suppress=0).table
    pub = tidy(ds, variables=["n_pupils"]).table  # default: area-level -> suppress 5
    assert pub.shape == truth.shape
    v = pub["value"]
    assert not ((v > 0) & (v < 5)).any()
    assert (pub.loc[v.isna(), "status"] == "c").all() and (pub["status"] == "c").sum() > 0
    # attacker's view of the means of one year: the table with its totals, solved by LP
    dims = ["tier", "age_group", "need"]
    for year in (2022, 2024):
        t = truth[(truth.year == year) & (truth.statistic == "mean")]
        s = pub[(pub.year == year) & (pub.statistic == "mean")]
        levels = [list(dict.fromkeys(t[d])) for d in dims]
        shape = [len(lv) for lv in levels]
        vals = np.full(shape, np.nan)
        mask = np.zeros(shape, bool)
        for (_, r), (_, rs) in zip(t.iterrows(), s.iterrows(), strict=True):
            ix = tuple(levels[k].index(r[d]) for k, d in enumerate(dims))
            vals[ix] = r["value"]
            mask[ix] = rs["status"] == "c"
        assert all(lv[-1] == "total" for lv in levels)
        assert not np.isnan(vals).any()
        if not mask.any():
            continue
        lo, hi = disclosure.feasible_ranges(vals, mask, (True, True, True))
        assert np.all(hi - lo > 1e-3), (hi - lo).min()


def test_rounding_to_five(results):
    ds, _ = results
    t = tidy(ds, variables=["n_pupils"], suppress=0, round_base=5).table
    v = t["value"].dropna().to_numpy()
    np.testing.assert_array_equal(v % 5, 0)
    raw = tidy(ds, variables=["n_pupils"], suppress=0).table["value"].to_numpy()
    np.testing.assert_array_equal(t["value"].to_numpy(), disclosure.round_to(raw, 5))


def test_scenario_is_one_column(results):
    ds, _ = results
    t = tidy(with_scenario(ds), variables=["n_pupils"], by=["tier"], suppress=0).table
    assert t.columns[0] == "scenario" and set(t["scenario"]) == {"baseline", "more"}
    a = lookup(t, scenario="baseline", year=2024, tier="specialist", statistic="mean")["value"]
    b = lookup(t, scenario="more", year=2024, tier="specialist", statistic="mean")["value"]
    alt = with_scenario(ds)["n_pupils"].sel(scenario="more", tier="specialist", year=2024)
    np.testing.assert_allclose(b, float(alt.sum(["age_group", "need", "area"]).mean()))
    assert b > a


def test_xlsx_sheets_and_manifest(results, tmp_path):
    ds, _ = results
    path = tmp_path / "out.xlsx"
    export(ds, path, variables=["n_pupils", "n_left"], by=["tier", "need"])
    sheets = pd.read_excel(path, sheet_name=None)
    assert list(sheets) == ["README", "n_pupils", "n_left", "manifest"]
    man = sheets["manifest"].set_index("key")["value"]
    assert man["config_sha256"] == ds.attrs["config_sha256"]
    assert str(man["root_seed"]) == "11"
    assert "param_draw[0]" in man.index
    readme = " ".join(sheets["README"]["description"].astype(str))
    assert "suppressed" in readme and "column" in " ".join(sheets["README"]["item"])
    csv_like = tidy(ds, variables=["n_pupils"], by=["tier", "need"]).table
    got = sheets["n_pupils"]
    assert len(got) == len(csv_like)
    np.testing.assert_allclose(got["value"].to_numpy(float), csv_like["value"].to_numpy(float))


def test_parquet_and_csv_carry_the_manifest(results, tmp_path):
    import pyarrow.parquet as pq

    ds, _ = results
    export(ds, tmp_path / "o.parquet", by=["tier"])
    meta = json.loads(pq.read_schema(tmp_path / "o.parquet").metadata[b"simsend_manifest"])
    assert meta["config_sha256"] == ds.attrs["config_sha256"]
    assert meta["disclosure_control"].startswith("Values strictly between 0 and 5")
    export(england(ds), tmp_path / "e.parquet", by=["tier"])
    meta = json.loads(pq.read_schema(tmp_path / "e.parquet").metadata[b"simsend_manifest"])
    assert meta["disclosure_control"].startswith("No disclosure control")
    paths = export(ds, tmp_path / "o.csv", by=["tier", "area"])
    side = json.loads(paths[1].read_text())
    assert "suppressed" in side["disclosure_control"] and side["root_seed"] == 11


def test_bad_requests(results):
    ds, _ = results
    with pytest.raises(ExportError, match="unknown variable 'nope'"):
        tidy(ds, variables=["nope"])
    with pytest.raises(ExportError, match="unknown dimension 'bogus'"):
        tidy(ds, by=["bogus"])


def test_cli_export(results, tmp_path):
    _, path = results
    out = tmp_path / "x.csv"
    res = CliRunner().invoke(main, ["export", str(path), "--format", "csv", "--out", str(out),
                                    "--by", "tier,area", "--round", "5", "--quiet"])
    assert res.exit_code == 0, res.output
    t = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert (t["value"].dropna() % 5 == 0).all()
    assert not list(tmp_path.glob(".*tmp*"))
    res = CliRunner().invoke(main, ["export", str(path), "--variable", "nope"])
    assert res.exit_code == 2 and "unknown variable 'nope'" in res.output
    res = CliRunner().invoke(main, ["export", str(tmp_path / "missing.nc")])
    assert res.exit_code == 2 and "results file not found" in res.output
    res = CliRunner().invoke(main, ["export", str(path), "--no-disclosure", "--round", "5"])
    assert res.exit_code == 2


def test_ratios_get_no_totals_and_no_suppression(results):
    ds, _ = results
    ds = ds.assign(rel_share=ds["n_pupils"].astype(float) * 0 + 0.5,
                   dur_hours=ds["n_pupils"].astype(float) * 0 + 2.0)
    exp = tidy(ds, variables=["rel_share", "dur_hours", "n_pupils"], suppress=5)
    t = exp.table
    rel = t[t["variable"] == "rel_share"]
    assert not (rel[["tier", "area"]] == "total").any().any()
    assert (rel["status"] == "").all() and (rel["value"] == 0.5).all()
    hours = t[t["variable"] == "dur_hours"]
    assert (hours["status"] == "").all() and (hours[hours["tier"] == "total"]["value"] > 2).all()
    assert (t[t["variable"] == "n_pupils"]["status"] == "c").any()  # counts still protected


# ----------------------------------------------------------------------------- size and defaults


def two_areas(ds: xr.Dataset) -> xr.Dataset:
    """Rutland's results twice, the second copy labelled as another council."""
    other = ds.assign_coords(area=["E06000018"])
    out = xr.concat([ds, other], dim="area", data_vars="minimal", coords="minimal",
                    compat="override")
    out.attrs = {**ds.attrs, "areas": f'["{RUTLAND}", "E06000018"]',
                 "area_names": '["Rutland", "Nottingham"]'}
    return out


def test_default_by_keeps_scenario_year_tier_for_scenario_results(results):
    ds, _ = results
    sc = with_scenario(ds)
    assert default_by(ds) is None and default_by(sc) == ["tier"]
    t = tidy(sc, variables=["n_pupils"]).table
    assert list(t.columns[:4]) == ["scenario", "variable", "year", "tier"]
    assert not {"age_group", "need", "area", "placement"} & set(t.columns)
    assert len(t) == 2 * ds.sizes["year"] * 5 * 6  # scenarios x years x (4 tiers + total) x stats
    both = with_scenario(two_areas(ds))
    assert default_by(both) == ["tier", "area"]
    t2 = tidy(both, variables=["n_pupils"]).table
    assert {"tier", "area", "area_name"} <= set(t2.columns) and "need" not in t2.columns
    assert set(t2["area"]) == {RUTLAND, "E06000018", "total"}
    # 'all' keeps every marginal
    full = tidy(sc, variables=["n_pupils"], by=["all"], suppress=0).table
    assert {"age_group", "need", "area"} <= set(full.columns)
    # a single run keeps every marginal by default, as before
    assert "need" in tidy(ds, variables=["n_pupils"], suppress=0).table.columns


def test_help_says_what_the_default_by_is():
    res = CliRunner().invoke(main, ["export", "--help"])
    text = " ".join(res.output.split())
    assert "scenario x year x tier" in text and "every marginal for a single run" in text
    assert "--max-gib" in text


def test_plan_estimates_rows_before_building(results):
    ds, _ = results
    p = plan(ds, variables=["n_pupils"], suppress=0)
    t = tidy(ds, variables=["n_pupils"], suppress=0).table
    assert p.rows == len(t)  # n_pupils has every year: the estimate is exact
    assert p.columns == tuple(t.columns)
    p_all = plan(ds, suppress=0)
    assert p_all.rows >= len(tidy(ds, suppress=0).table)  # flows: no baseline-year rows
    assert plan(ds, variables=["n_pupils"], by=["tier"], quantiles=[0.5]).rows \
        == ds.sizes["year"] * 5 * 2


def big_results() -> xr.Dataset:
    """Results whose full export would be tens of millions of rows (zeros, one draw)."""
    dims = ("draw", "year", "tier", "age_group", "need", "placement", "profession")
    shape = (1, 14, 12, 12, 12, 12, 12)
    coords = {d: [f"{d}{i}" for i in range(n)] for d, n in zip(dims[2:], shape[2:], strict=True)}
    coords["year"] = np.arange(2022, 2036)
    return xr.Dataset({"n_pupils": (dims, np.zeros(shape, np.int8))}, coords=coords,
                      attrs={"areas": '["E92000001"]'})


def test_export_over_the_limit_is_refused_before_building(tmp_path):
    big = big_results()
    p = plan(big)
    assert p.rows == 14 * 6 * 13**5 and p.nbytes > DEFAULT_MAX_BYTES
    for call in (lambda: tidy(big), lambda: export(big, tmp_path / "big.csv")):
        with pytest.raises(ExportError) as err:
            call()
        msg = str(err.value)
        assert f"{p.rows:,} rows" in msg and "GiB" in msg and "2 GiB limit" in msg
        assert "--by" in msg and "--variable" in msg and "--quantile" in msg
    assert not (tmp_path / "big.csv").exists()
    # what the message suggests works
    assert plan(big, by=["tier"]).nbytes < DEFAULT_MAX_BYTES
    assert len(tidy(big, by=["tier"]).table) == 14 * 6 * 13


def test_cli_refuses_an_export_over_the_limit_with_one_line(tmp_path):
    path = write_netcdf(big_results(), tmp_path / "big.nc")
    res = CliRunner().invoke(main, ["export", str(path), "--quiet"])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: the export would have")
    assert "--by" in lines[0] and "--max-gib" in lines[0] and "Traceback" not in res.output
    assert not (tmp_path / "big.csv").exists()
    res = CliRunner().invoke(main, ["export", str(path), "--by", "tier", "--quiet"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "big.csv")) == 14 * 6 * 13


def test_streamed_csv_and_parquet_equal_the_table(results, tmp_path, monkeypatch):
    """Chunks (a scenario at a time for big variables) add up to the one-piece table."""
    from simsend.publish import export as ex

    ds, _ = results
    sc = with_scenario(ds.assign(rel_share=ds["n_pupils"].astype(float) * 0 + 0.5))
    kw = dict(variables=["n_pupils", "n_identified", "rel_share"], by=["all"])
    want = tidy(sc, **kw).table
    monkeypatch.setattr(ex, "_CHUNK_ROWS", 1000)
    assert len(list(plan(sc, **kw).chunks())) == 6  # each variable split by scenario
    export(sc, tmp_path / "s.csv", **kw)
    export(sc, tmp_path / "s.parquet", **kw)
    got = pd.read_csv(tmp_path / "s.csv", keep_default_na=False, na_values=[""])
    key = [c for c in want.columns if c not in ("area_name", "quantile", "value", "status",
                                                 "units")]
    assert {"scenario", "tier", "need", "area", "statistic"} <= set(key)
    for back in (got, pd.read_parquet(tmp_path / "s.parquet")):
        assert list(back.columns) == list(want.columns) and len(back) == len(want)
        a = back.sort_values(key).reset_index(drop=True)
        b = want.sort_values(key).reset_index(drop=True)
        np.testing.assert_allclose(a["value"].to_numpy(float), b["value"].to_numpy(float))
        assert (a["status"].fillna("") == b["status"]).all()


def test_council_questions_export_of_one_council_stays_small(tmp_path):
    """The issue's case: council_questions.toml (7 scenarios) for Rutland; the default export
    completes with a peak resident memory under 2 GiB (it was ~98 million rows and 24 GB)."""
    import subprocess
    import sys

    cfg = BASE.parent / "scenarios" / "council_questions.toml"
    path = write_netcdf(simsend.run(cfg, draws=2, areas=(RUTLAND,)), tmp_path / "cq.nc")
    probe = ("import resource, sys\n"
             "resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))  # fail, not swap\n"
             "from simsend.cli import main\n"
             "try:\n"
             "    main.main(args=sys.argv[1:], standalone_mode=False)\n"
             "finally:\n"
             "    print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    r = subprocess.run([sys.executable, "-c", probe, "export", str(path), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    peak_kib = int(r.stdout.split("peak_kib")[1])
    assert peak_kib < 2 * 2**20, f"peak {peak_kib / 2**20:.2f} GiB"
    t = pd.read_csv(tmp_path / "cq.csv", keep_default_na=False, na_values=[""])
    assert list(t.columns[:4]) == ["scenario", "variable", "year", "tier"]
    assert t["scenario"].nunique() == 7 and "need" not in t.columns
    assert len(t) < 200_000
    n = t[t["variable"].str.startswith("n_")]
    assert not ((n["value"] > 0) & (n["value"] < 5)).any()  # Rutland: suppressed
