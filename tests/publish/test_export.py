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
from simsend.publish.export import ExportError, default_disclosure, export, tidy

BASE = Path(__file__).resolve().parents[2] / "configs" / "base.toml"
RUTLAND = "E06000017"


def small_config(tmp_path: Path, area: str = RUTLAND, end_year: int = 2024) -> Path:
    text = BASE.read_text()
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
    alt = ds.assign(n_pupils=(ds["n_pupils"] * 1.2).round().astype("int32"))
    out = xr.concat([ds, alt], dim=pd.Index(["baseline", "more"], name="scenario"),
                    data_vars="all", coords="minimal", compat="override")
    out.attrs = ds.attrs
    return out


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


def test_disclosure_default_for_area_level(results):
    ds, _ = results
    eng = ds.assign_coords(area=["E92000001"])
    assert default_disclosure(ds).suppress == 5
    assert default_disclosure(ds, by=["tier"]).suppress == 0
    assert default_disclosure(eng).suppress == 0
    assert default_disclosure(eng, suppress=10).suppress == 10


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
