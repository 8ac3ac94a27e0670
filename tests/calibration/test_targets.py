"""Targets: construction, checks and the data-layer adapter."""

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from simsend.calibration.targets import (
    TargetsError,
    band_matrix,
    make_targets,
    restrict,
    targets_from_baseline,
)
from simsend.dims import TIER


def share_uniform():
    m = band_matrix()
    return (m / m.sum(0)).sum(1, keepdims=True)  # 1 / band width at every age


def test_make_targets_checks():
    share = share_uniform()
    ok = dict(ehcp=np.ones((3, 5, 1)), new_plans=np.ones((3, 5, 1)), exposure=np.ones((3, 26, 1)),
              ehcp_age_share=share, need_factor=np.ones(26), years=[2019, 2020, 2021],
              areas=["X"], targeted_plus_share=0.25)
    t = make_targets(**ok)
    assert np.isnan(t["new_plans"][0]).all() and np.isnan(t["exposure"][0]).all()
    with pytest.raises(TargetsError, match="consecutive"):
        make_targets(**{**ok, "years": [2019, 2021, 2022]})
    with pytest.raises(TargetsError, match="shape"):
        make_targets(**{**ok, "ehcp": np.ones((3, 4, 1))})
    with pytest.raises(TargetsError, match="sum to 1"):
        make_targets(**{**ok, "ehcp_age_share": share * 2})
    with pytest.raises(TargetsError, match="negative"):
        make_targets(**{**ok, "new_plans": -np.ones((3, 5, 1))})
    r = restrict(t, first_year=2020)
    assert r.year.values.tolist() == [2020, 2021]
    assert np.isnan(r["new_plans"].sel(year=2020)).all()
    assert r.attrs["origin"] == 2021


def fake_baseline(model):
    """A tiny data-layer Baseline: one area, history 2014-2022, constant population."""
    areas = ["E1"]
    years = np.arange(2014, 2023)
    groups = ["under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25"]
    ehcp = xr.DataArray(np.arange(9 * 5, dtype=float).reshape(9, 5, 1) + 100,
                        dims=("year", "age_group", "area"),
                        coords={"year": years, "age_group": groups, "area": areas})
    new = (ehcp * 0 + 10.0).assign_coords(year=years - 1)  # calendar years 2013-2021
    ss = xr.DataArray(np.full((9, 1), 2600.0), dims=("year", "area"),
                      coords={"year": years, "area": areas})
    ss[3, 0] = np.nan  # 2017 not recorded
    pop = xr.DataArray(np.full((9, 26, 1), 1000.0), dims=("year", "age", "area"),
                       coords={"year": years, "age": np.arange(26), "area": areas})
    ind = np.zeros((4, 26, 13, 1, 7))
    ind[TIER["targeted"], :, 0, 0, 0] = 75.0
    ind[TIER["targeted_plus"], :, 0, 0, 0] = 25.0  # 100 per age on SEN support
    ind[TIER["specialist"], :, 0, 0, 0] = np.arange(26) + 1.0
    return SimpleNamespace(
        history=xr.Dataset({"ehcp": ehcp, "new_plans": new, "sen_support": ss}),
        population=pop, individuals=ind, areas=areas, provenance={"sen2.csv": "abc"},
        targeted_plus_share=0.25, year=2022)


def test_adapter_by_hand(toy_config):
    model = toy_config.model
    t = targets_from_baseline(fake_baseline(model), model, first_year=2015, origin=2021)
    assert t.year.values.tolist() == list(range(2015, 2022))
    # New plans of calendar 2019 flow into census 2020.
    assert float(t["new_plans"].sel(year=2020, age_group="under_5", area="E1")) == 10.0
    # SEN support 2600 spread evenly over 26 ages (flat population and prevalence) = 100 a year
    # of age; exposure at age a = 100 x survival at age a.
    leave = 0.75 * model.leaving[TIER["targeted"]] + 0.25 * model.leaving[TIER["targeted_plus"]]
    np.testing.assert_allclose(t["exposure"].sel(year=2019, area="E1").values[1:],
                               100.0 * (1 - leave[1:]))
    assert float(t["exposure"].sel(year=2019, age=0, area="E1")) == 0.0
    # 2017 unrecorded: filled with population x pooled prevalence (= the same 2600 here).
    np.testing.assert_allclose(t["exposure"].sel(year=2018, area="E1").values[1:],
                               100.0 * (1 - leave[1:]))
    # Within-band age shares from the baseline's EHC plans by single age (1..26).
    sh = t["ehcp_age_share"].sel(area="E1").values
    np.testing.assert_allclose(sh[:5], np.arange(1, 6) / 15.0)
    assert t.attrs["targeted_plus_share"] == 0.25
    assert "sen2.csv" in t.attrs["sources"]


def test_adapter_reads_plan_endings_by_calendar_year(toy_config):
    """exits = ceased - transfers to another council, needs_met as recorded, at census Y+1."""
    model = toy_config.model
    base = fake_baseline(model)
    cal = np.arange(2014, 2023)  # the history's years
    ceased = xr.DataArray((100.0 + cal - 2013)[:, None], dims=("year", "area"),
                          coords={"year": cal, "area": ["E1"]})
    base.history = base.history.assign(ceased=ceased, ceased_moved_la=ceased * 0 + 30.0,
                                       ceased_needs_met=ceased * 0 + 7.0)
    t = targets_from_baseline(base, model, first_year=2015, origin=2021)
    # calendar 2019 (ceased 106) flows into census 2020
    assert float(t["exits"].sel(year=2020, area="E1")) == 106.0 - 30.0
    assert float(t["needs_met"].sel(year=2020, area="E1")) == 7.0
    assert np.isnan(t["exits"].sel(year=2015)).all()  # row 0: no year before it
    # without the reasons the series are left out
    assert "exits" not in targets_from_baseline(fake_baseline(model), model, origin=2021)
