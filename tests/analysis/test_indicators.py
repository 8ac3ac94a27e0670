"""Outcome indicators: exact values on hand-made results, missing inputs named, CLI errors."""

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from simsend.analysis.indicators import IndicatorError, indicator_table, indicators
from simsend.cli import main
from simsend.dims import TIERS
from simsend.engine.tally import PLACEMENT_COORD
from simsend.io import write_netcdf


def results():
    rng = np.random.default_rng(0)
    shape = (3, 2, 4, 2, len(PLACEMENT_COORD))  # draw, year, tier, area, placement
    dims = ("draw", "year", "tier", "area", "placement")
    coords = {"draw": [0, 1, 2], "year": [2022, 2023], "tier": list(TIERS),
              "area": ["A", "B"], "placement": list(PLACEMENT_COORD)}
    v = lambda: rng.integers(0, 50, shape).astype(float)  # noqa: E731
    ds = xr.Dataset({k: (dims, v()) for k in ("n_pupils", "n_waiting", "n_overflow",
                                              "n_out_of_area", "n_issued")}, coords=coords)
    ds["n_out_of_area"] = ds["n_out_of_area"] * 0 + 1
    ds["n_within_20_weeks"] = np.floor(ds["n_issued"] / 2)
    places = np.full((2, 2, len(PLACEMENT_COORD)), np.nan)
    places[:, :, 2] = [[100, 200], [110, 210]]
    ds["places"] = (("year", "area", "placement"), places)
    return ds


def test_indicators_equal_their_definitions():
    ds = results()
    ind = indicators(ds)
    sp = ds["n_pupils"].sel(tier="specialist")
    share = (sp.sel(placement=["mainstream", "inclusion_base"]).sum(["area", "placement"])
             / sp.sum(["area", "placement"]))
    np.testing.assert_allclose(ind["rel_specialist_mainstream"], share)
    np.testing.assert_allclose(ind["rel_within_20_weeks"],
                               ds["n_within_20_weeks"].sum(["tier", "area", "placement"])
                               / ds["n_issued"].sum(["tier", "area", "placement"]))
    np.testing.assert_array_equal(ind["n_out_of_area"], np.full((3, 2), 4 * 2 * 8))
    unmet = (ds["n_waiting"] + ds["n_overflow"]).sel(tier="specialist").sum(["area", "placement"])
    np.testing.assert_array_equal(ind["n_unmet_specialist"], unmet)
    inside = (ds["n_pupils"] - 1).sel(placement="special_state").sum(["tier", "area"])
    np.testing.assert_allclose(ind["rel_special_state_places_used"],
                               inside / np.array([300, 320]))
    by_area = indicators(ds, by=["area"])
    assert by_area["n_special_independent"].dims == ("draw", "year", "area")
    np.testing.assert_allclose(by_area["rel_special_state_places_used"].sel(area="B"),
                               (ds["n_pupils"] - 1).sel(placement="special_state", area="B")
                               .sum("tier") / np.array([200, 210]))
    t = indicator_table(ind, years=[2023])
    assert set(t["indicator"]) == set(ind.data_vars) and list(t.columns[-3:]) == [
        "q0.05", "q0.5", "q0.95"]


def test_missing_inputs_are_named_and_nothing_at_all_fails():
    ds = results().drop_vars(["n_waiting", "n_overflow", "n_out_of_area", "places"])
    ind = indicators(ds.sum("placement"))
    assert list(ind.data_vars) == ["rel_within_20_weeks"]
    assert "placement" in ind.attrs["not_available"] and "[provision]" in ind.attrs[
        "not_available"]
    with pytest.raises(IndicatorError, match="no indicator"):
        indicators(ds[["n_pupils"]].sum("placement"))
    with pytest.raises(IndicatorError, match=r"no \['need'\] dim"):
        indicators(ds, by=["need"])


def test_cli_table_csv_and_errors(tmp_path):
    p = write_netcdf(results(), tmp_path / "r.nc")
    r = CliRunner().invoke(main, ["indicators", str(p), "--years", "2023", "--out",
                                  str(tmp_path / "i.csv")])
    assert r.exit_code == 0, r.output
    assert "rel_within_20_weeks" in r.output and (tmp_path / "i.csv").exists()
    r = CliRunner().invoke(main, ["indicators", str(p), "--years", "2040"])
    assert r.exit_code == 2 and "[2040] not in the results" in r.output
    r = CliRunner().invoke(main, ["indicators", str(p), "--by", "need"])
    assert r.exit_code == 2 and "no ['need'] dim" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["indicators", str(tmp_path / "none.nc")])
    assert r.exit_code == 2
