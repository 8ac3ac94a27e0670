"""Shipped provision plans (configs/provision): what in them comes from data, held to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import theilslopes

from simsend.config.provision import SHIPPED_PLANS

ROOT = Path(__file__).resolve().parents[2]
ENGLAND, KENT = "E92000001", "E10000016"
# SEN2, EHC plans in state special schools, England, January 2019-2025 (stock.csv.gz)
SEN2_STATE_SPECIAL = [119_098, 125_544, 132_271, 140_165, 145_850, 155_045, 159_852]


def _plan(name: str) -> pd.DataFrame:
    return pd.read_csv(SHIPPED_PLANS / f"{name}.csv", comment="#")


def _series(df: pd.DataFrame, area: str, placement: str) -> pd.Series:
    r = df[(df.area == area) & (df.placement == placement)]
    return r.set_index("year")["places"]


def _sen2(area: str, placement: str) -> pd.Series:
    s = pd.read_csv(ROOT / "simsend" / "data" / "builtin" / "stock.csv.gz",
                    dtype={"year": int, "count": float})
    s = s[(s.area == area) & (s.plan == "ehcp") & (s.placement == placement)
          & (s.age_group == "all") & (s.age == "all") & (s.need == "all")]
    return s.set_index("year")["count"]


def test_baseline_places_are_the_sen2_pupils_of_january_2025():
    d = _plan("england_2025")
    assert _series(d, ENGLAND, "inclusion_base")[2025] == 24_524 == _sen2(
        ENGLAND, "inclusion_base")[2025]
    # state special: SEN2's EHC plans plus pupils on SEN support there (the baseline's)
    assert _series(d, ENGLAND, "special_state")[2025] == 163_705
    assert _sen2(ENGLAND, "special_state")[2025] == SEN2_STATE_SPECIAL[-1]


def test_trend_plan_grows_state_special_places_at_the_sen2_trend():
    t = _plan("england_2025_trend")
    d = _plan("england_2025")
    assert _sen2(ENGLAND, "special_state").loc[2019:2025].tolist() == SEN2_STATE_SPECIAL
    slope = theilslopes(SEN2_STATE_SPECIAL, range(2019, 2026)).slope
    assert slope == pytest.approx(6_861.6)
    eng = _series(t, ENGLAND, "special_state")
    assert eng.index.tolist() == list(range(2025, 2036))
    assert eng[2025] == 163_705 and eng[2035] == 163_705 + round(10 * slope) == 232_321
    # each council by its own series (Kent: 6,532 places in 2025, 390 a year)
    k = _sen2(KENT, "special_state").loc[2019:2025]
    ks = max(0.0, theilslopes(k.to_numpy(), k.index.to_numpy()).slope)
    kent = _series(t, KENT, "special_state")
    assert kent[2025] == _series(d, KENT, "special_state")[2025]
    np.testing.assert_array_equal(kent.to_numpy(),
                                  kent[2025] + np.round(ks * np.arange(11)).astype(int))
    # places never fall; inclusion bases are the default plan's
    ss = t[t.placement == "special_state"].sort_values(["area", "year"])
    assert (ss.groupby("area")["places"].diff().dropna() >= 0).all()
    ib = ["area", "placement", "year", "places"]
    pd.testing.assert_frame_equal(
        t[t.placement == "inclusion_base"][ib].reset_index(drop=True),
        d[d.placement == "inclusion_base"][ib].reset_index(drop=True))
    assert set(t.area) == set(d.area) and len(set(t.area)) == 154


def test_trend_plan_loads_for_a_run_by_its_shipped_name():
    from simsend.config import load
    from simsend.rates.provision import load_plan

    cfg = load(ROOT / "configs" / "base.toml")
    prov = cfg.provision.__class__(plan=SHIPPED_PLANS / "england_2025_trend.csv",
                                   overflow=cfg.provision.overflow)
    places = load_plan(prov, (ENGLAND, KENT), list(range(2025, 2036)))
    assert places[-1, 0, 2] == 232_321 and np.isinf(places[:, :, 3]).all()
