"""Provision-type view of a forecast: group totals kept per draw, SEN2's own split reproduced."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

import simsend
from simsend import api
from simsend.analysis.lsrp import provision_table, provision_view, start_year
from simsend.cli import main
from simsend.config import ConfigError
from simsend.data.baseline import builtin_dir
from simsend.data.lsrp import (
    ESTABLISHMENT_PROVISION,
    NOT_SEPARATED,
    PROVISION_PLACEMENT,
    PROVISION_TYPES,
    read_establishments,
)
from simsend.dims import PLACEMENTS
from simsend.io import write_netcdf

ROOT = Path(__file__).resolve().parents[2]
RUTLAND = "E06000017"
ENGLAND = "E92000001"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real runs of one small council: by placement (3 draws, 2025-2027) and without it."""
    tmp = tmp_path_factory.mktemp("lsrp")
    cfg = simsend.load(ROOT / "configs" / "council_returns.toml").replace_run(end_year=2027)
    assert "placement" in cfg.outputs.by
    ds = simsend.run(cfg, draws=3, seed=3, areas=[RUTLAND])
    flat = simsend.load(ROOT / "configs" / "council.toml").replace_run(end_year=2026)
    assert "placement" not in flat.outputs.by
    no = simsend.run(flat, draws=2, seed=3, areas=[RUTLAND])
    return ds, write_netcdf(ds, tmp / "rutland.nc"), no, write_netcdf(no, tmp / "flat.nc")


def _group_sums(view: xr.DataArray) -> xr.DataArray:
    """Sum the view's provision types back into engine groups."""
    parts = []
    for g in PLACEMENTS:
        types = [t for t in PROVISION_TYPES if PROVISION_PLACEMENT[t] == g]
        parts.append(view.sel(provision_type=types).sum("provision_type"))
    return xr.concat(parts, dim=pd.Index(list(PLACEMENTS), name="placement"))


def test_view_keeps_every_group_total_exactly_for_every_draw(runs):
    ds = runs[0]
    view = provision_view(ds)
    v = view["n_pupils"]
    want = ds["n_pupils"].sel(tier="specialist", placement=list(PLACEMENTS)).astype(float)
    got = _group_sums(v).transpose(*want.dims)
    assert want.sum() > 0
    # every draw, year, area, age group and need: equal to the last bit
    assert np.array_equal(got.values, want.values)
    assert set(v.dims) == {"draw", "year", "age_group", "need", "area", "provision_type"}
    assert v.dims.index("provision_type") == ds["n_pupils"].dims.index("placement") - 1
    assert v.sizes["draw"] == 3 and list(v["draw"].values) == list(ds["draw"].values)
    assert list(v["provision_type"].values) == list(PROVISION_TYPES)  # no not_recorded here
    assert (v.sel(provision_type=list(NOT_SEPARATED)) == 0).all()
    assert str(v["tier"].values) == "specialist"


def test_view_attrs_say_the_shares_their_year_and_the_assumption(runs):
    ds = runs[0]
    v = provision_view(ds)["n_pupils"]
    assert v.attrs["units"] == "1" and "LSRP provision type" in v.attrs["long_name"]
    assert v.attrs["comment"].startswith("ASSUMPTION") and "held at" in v.attrs["comment"]
    assert json.loads(v.attrs["share_census_year"]) == {RUTLAND: 2025}
    shares = json.loads(v.attrs["provision_shares"])[RUTLAND]
    assert sum(shares["post16_fe"].values()) == 1.0
    assert v["share_census_year"].values.tolist() == [2025]
    assert list(v["provision_label"].values) == list(PROVISION_TYPES.values())
    assert start_year(ds) == 2025
    older = provision_view(ds, year=2023)["n_pupils"]
    assert json.loads(older.attrs["share_census_year"]) == {RUTLAND: 2023}
    assert np.array_equal(_group_sums(older).values, _group_sums(v).values)


def test_sen2_england_2025_placements_give_sen2_provision_types(runs):
    """A dataset holding SEN2's own January 2025 England counts by group gives SEN2's types."""
    est = read_establishments().query("year == 2025 and area == @ENGLAND")
    by_type = est.groupby(est["establishment"].map(ESTABLISHMENT_PROVISION))["count"].sum()
    by_type = by_type.reindex(list(PROVISION_TYPES), fill_value=0)
    st = pd.read_csv(builtin_dir() / "stock.csv.gz", dtype={"year": int}, keep_default_na=False)
    st = st.query("plan == 'ehcp' and year == 2025 and area == @ENGLAND and age == 'all' and "
                  "age_group == 'all' and need == 'all' and placement != 'all'")
    groups = st.set_index("placement")["count"].astype(float).reindex(list(PLACEMENTS))
    n = np.zeros((2, 2, 2, 1, len(PLACEMENTS) + 1))  # draw, year, tier, area, placement
    n[:, :, 1, 0, :-1] = groups.to_numpy()
    n[:, :, 0, 0, -1] = 5.0  # a non-specialist tier with no placement: not counted
    ds = xr.Dataset({"n_pupils": (("draw", "year", "tier", "area", "placement"), n)},
                    coords={"draw": [0, 1], "year": [2025, 2026],
                            "tier": ["targeted", "specialist"], "area": [ENGLAND],
                            "placement": [*PLACEMENTS, "not_recorded"]})
    v = provision_view(ds)["n_pupils"]
    total = float(by_type.sum())
    assert total == 638_745
    for t in PROVISION_TYPES:
        got = v.sel(provision_type=t).values
        assert np.allclose(got, by_type[t], rtol=0, atol=1e-6 * total), t
    assert (v.sel(provision_type="mainstream_schools") == by_type["mainstream_schools"]).all()
    assert by_type[list(NOT_SEPARATED)].sum() == 0


def test_not_recorded_specialists_keep_their_own_row():
    n = np.zeros((1, 1, 1, len(PLACEMENTS) + 1))
    n[..., PLACEMENTS.index("other")] = 10
    n[..., -1] = 3
    ds = xr.Dataset({"n_pupils": (("draw", "year", "area", "placement"), n)},
                    coords={"year": [2025], "area": [RUTLAND],
                            "placement": [*PLACEMENTS, "not_recorded"]})
    v = provision_view(ds, tier=None)["n_pupils"]
    assert list(v["provision_type"].values)[-1] == "not_recorded"
    assert float(v.sum()) == 13 and float(v.sel(provision_type="not_recorded").sum()) == 3


def test_results_without_placement_or_tier_are_refused_naming_outputs_by(runs):
    with pytest.raises(ConfigError, match=r"\[outputs\] by"):
        provision_view(runs[2])
    with pytest.raises(ConfigError, match=r"tier.*\[outputs\] by"):
        provision_view(runs[0].sum("tier"))
    with pytest.raises(ConfigError, match="not in the results"):
        provision_view(runs[0], tier="specialists")


def test_table_bands_come_from_the_draws(runs):
    ds = runs[0]
    table = provision_table(provision_view(ds))
    assert list(table.columns) == ["year", "no", "provision_type", "label", "median", "p05",
                                   "p25", "p75", "p95"]
    assert len(table) == 3 * 14 and table["no"].tolist()[:14] == list(range(1, 15))
    row = table.query("year == 2027 and provision_type == 'specialist_post16'").iloc[0]
    draws = provision_view(ds)["n_pupils"].sel(year=2027, provision_type="specialist_post16")
    per_draw = draws.sum([d for d in draws.dims if d != "draw"]).values
    for col, q in (("median", 0.5), ("p05", 0.05), ("p25", 0.25), ("p75", 0.75), ("p95", 0.95)):
        assert row[col] == pytest.approx(np.quantile(per_draw, q))
    # several areas: an area column, each with its own shares; scenarios kept too
    pupils = ds["n_pupils"]
    two = xr.Dataset({"n_pupils": xr.concat(
        [pupils, pupils.assign_coords(area=["E08000025"])], dim="area")}, attrs=ds.attrs)
    two = two.expand_dims(scenario=["baseline"])
    t2 = provision_table(provision_view(two))
    assert list(t2.columns[:4]) == ["scenario", "year", "area", "no"]
    assert len(t2) == 2 * 3 * 14
    a = t2.query("area == @RUTLAND")[["median", "p05"]].to_numpy()
    assert np.allclose(a, table[["median", "p05"]].to_numpy())


def test_cli_prints_and_writes_the_table(runs, tmp_path):
    out = tmp_path / "types.csv"
    r = CliRunner().invoke(main, ["provision-types", str(runs[1]), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "mainstream_schools" in r.output and "specialist_post16" in r.output
    assert "ASSUMPTION" in r.output and "SEN2 January 2025" in r.output
    assert f"wrote {out}" in r.output
    csv = pd.read_csv(out)
    assert len(csv) == 3 * 14 and set(csv["year"]) == {2025, 2026, 2027}
    pd.testing.assert_frame_equal(csv, api.provision_types(runs[1]), check_dtype=False)
    r = CliRunner().invoke(main, ["provision-types", str(runs[1]), "--year", "2024"])
    assert r.exit_code == 0 and "SEN2 January 2024" in r.output


def test_cli_fails_cleanly_without_placement(runs, tmp_path):
    out = tmp_path / "types.csv"
    r = CliRunner().invoke(main, ["provision-types", str(runs[3]), "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ") and "[outputs] by" in r.output
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
    assert not out.exists()
    r = CliRunner().invoke(main, ["provision-types", str(runs[1]), "--year", "2010"])
    assert r.exit_code == 2 and "Traceback" not in r.output and "January 2010" in r.output
