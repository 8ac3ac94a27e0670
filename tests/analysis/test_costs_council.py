"""simsend.analysis.costs with councils' own unit costs, correlated draws and scenario modifiers."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy.special import ndtr, ndtri

from simsend.analysis.costs import cost_draws, cost_uniforms, spend
from simsend.config import ConfigError
from simsend.config.costs import load_costs, parse_costs
from simsend.data.errors import DataError
from simsend.data.finance import unit_cost_table
from simsend.dims import PLACEMENTS, TIERS

ROOT = Path(__file__).resolve().parents[2]
COUNCIL = ROOT / "configs" / "costs" / "council_2021_22.toml"
ENGLAND_FILE = ROOT / "configs" / "costs" / "england_2021_22.toml"
KENT, BIRMINGHAM, ENGLAND, SCILLY = "E10000016", "E08000025", "E92000001", "E06000053"
Z95 = 1.6448536269514722

PRICED = """
[prices]
base = "2021-22"
[council]
unit_costs = "builtin"
[costs.special_state]
count = "n_pupils"
tier = "specialist"
placement = "special_state"
council_unit = "special_state"
unit = { dist = "lognormal", median = 23501.57, low = 20436.15, high = 27026.81 }
[costs.other]
count = "n_pupils"
tier = "specialist"
placement = "other"
unit = { dist = "triangular", low = 0, mode = 5000, high = 15000 }
"""


def _results(areas=(KENT, BIRMINGHAM, ENGLAND, SCILLY), draws=6, scenarios=None, area_dim=True):
    rng = np.random.default_rng(11)
    coords = {"draw": np.arange(draws), "year": np.array([2025, 2026], np.int32),
              "tier": list(TIERS), "placement": [*PLACEMENTS, "not_recorded"]}
    if area_dim:
        coords["area"] = list(areas)
    if scenarios:
        coords = {"scenario": list(scenarios), **coords}
    shape = tuple(len(v) for v in coords.values())
    ds = xr.Dataset({"n_pupils": (tuple(coords), rng.integers(0, 500, shape).astype(np.int32))},
                    coords=coords)
    ds.attrs = {"root_seed": "42", "areas": json.dumps(list(areas))}
    return ds


def _lognormal(row, u):
    med, low, high = row
    return med * np.exp(math.log(high / low) / (2 * Z95) * ndtri(u))


def test_each_area_priced_with_its_own_unit_cost_against_numpy():
    ds = _results()
    c = parse_costs(PRICED, "priced.toml")
    sp = spend(ds, c)
    u = cost_uniforms(42, list(range(6)), ["special_state", "other"])[:, :, 0]
    table = unit_cost_table()
    n = ds["n_pupils"].sel(tier="specialist", placement="special_state").values  # draw, year, area
    for k, area in enumerate(ds["area"].values):
        row = table.get((str(area), "special_state"))
        unit = _lognormal(row if row is not None else (23501.57, 20436.15, 27026.81), u[:, 0])
        want = n[:, :, k] * unit[:, None]
        np.testing.assert_allclose(sp["spend"].sel(category="special_state", area=area).values,
                                   want, rtol=1e-12)
    assert sp["unit_source"].sel(item="special_state").values.tolist() == [
        "council", "council", "england", "england"]
    assert set(sp["unit_source"].sel(item="other").values) == {"england"}
    # Kent's and Birmingham's unit costs differ from England's in every draw, by their ratio
    uc = sp["unit_cost_area"].sel(item="special_state")
    ratio = (uc.sel(area=KENT) / uc.sel(area=ENGLAND)).values
    assert np.ptp(ratio) > 0 and not np.allclose(ratio, 1.0)
    # an England-priced item is the same in every area and equals unit_cost
    np.testing.assert_array_equal(sp["unit_cost_area"].sel(item="other").values,
                                  np.repeat(sp["unit_cost"].sel(item="other").values[:, None],
                                            4, axis=1))
    assert sp.attrs["council_unit_costs"] == "builtin"


def test_england_file_is_unchanged_and_the_council_file_prices_england_as_england():
    ds = _results(areas=(ENGLAND,))
    eng = spend(ds, load_costs(ENGLAND_FILE))
    cou = spend(ds, dataclasses.replace(load_costs(COUNCIL), correlation=0.0))
    for cat in ("special_state", "special_independent", "mainstream_top_up", "post16"):
        np.testing.assert_array_equal(eng["spend"].sel(category=cat).values,
                                      cou["spend"].sel(category=cat).values)
    assert "unit_cost_area" not in eng


def test_one_council_without_an_area_dim_uses_its_own_and_several_are_refused():
    c = parse_costs(PRICED, "priced.toml")
    one = spend(_results(areas=(KENT,), area_dim=False), c)
    with_dim = spend(_results(areas=(KENT,)), c)
    assert "area" not in one["spend"].dims
    assert (one["unit_source"].values[0] == "council")
    u = cost_uniforms(42, list(range(6)), ["special_state"])[:, 0, 0]
    np.testing.assert_allclose(one["unit_cost_area"].sel(item="special_state").values[:, 0],
                               _lognormal(unit_cost_table()[(KENT, "special_state")], u))
    assert with_dim["unit_cost_area"].sel(area=KENT).shape == (6, 2)
    with pytest.raises(ConfigError, match=r"add up 2 areas with no 'area' dim"):
        spend(_results(areas=(KENT, BIRMINGHAM), area_dim=False), c)


def test_unknown_key_other_price_base_and_bad_user_file(tmp_path):
    ds = _results()
    with pytest.raises(ConfigError, match=r"\[costs.special_state.council_unit\] unknown key "
                                          r"'special'"):
        spend(ds, parse_costs(PRICED.replace('council_unit = "special_state"',
                                             'council_unit = "special"'), "p.toml"))
    with pytest.raises(ConfigError, match=r"at 2021-22 prices.*base is 2024-25"):
        spend(ds, parse_costs(PRICED.replace('base = "2021-22"', 'base = "2024-25"'), "p.toml"))
    bad = tmp_path / "u.csv"
    bad.write_text("area,key,price_base,median,low,high\nE10000016,special_state,2021-22,"
                   "23000,20000,\n")
    with pytest.raises(DataError, match=r"u\.csv: row 2: column 'median'"):
        spend(ds, parse_costs(PRICED.replace('unit_costs = "builtin"', f'unit_costs = "{bad}"')))
    own = tmp_path / "own.csv"
    own.write_text("area,key,price_base,median,low,high\nE10000016,special_state,2021-22,"
                   "30000,25000,36000\n")
    sp = spend(ds, parse_costs(PRICED.replace('unit_costs = "builtin"', f'unit_costs = "{own}"')))
    u = cost_uniforms(42, list(range(6)), ["special_state"])[:, 0, 0]
    np.testing.assert_allclose(sp["unit_cost_area"].sel(item="special_state", area=KENT).values,
                               _lognormal((30000.0, 25000.0, 36000.0), u))
    assert sp["unit_source"].sel(item="special_state", area=BIRMINGHAM) == "england"


# --------------------------------------------------------------------------- correlation


CORR = """
[prices]
base = "2021-22"
correlation = {rho}
[costs.a]
count = "n_pupils"
unit = {{ dist = "lognormal", median = 100, low = 50, high = 200 }}
share = {{ dist = "uniform", low = 0.2, high = 0.8 }}
[costs.b]
count = "n_pupils"
unit = {{ dist = "triangular", low = 0, mode = 5, high = 10 }}
"""


def test_correlation_zero_is_the_independent_draws_bit_for_bit():
    draws = list(range(50))
    c0 = parse_costs(CORR.format(rho=0.0))
    u = cost_uniforms(3, draws, ["a", "b"])
    d = cost_draws(c0, 3, draws)
    np.testing.assert_array_equal(d["unit_cost"].sel(item="b").values,
                                  c0.items[1].unit.ppf(u[:, 1, 0]))


def test_correlation_of_normal_scores_and_unchanged_marginals():
    draws = list(range(4000))
    c = parse_costs(CORR.format(rho=0.6))
    d = cost_draws(c, 9, draws)
    za = np.log(d["unit_cost"].sel(item="a").values / 100) / (math.log(4) / (2 * Z95))
    b = d["unit_cost"].sel(item="b").values
    ub = np.where(b < 5, b ** 2 / 50, 1 - (10 - b) ** 2 / 50)  # triangular CDF
    zb = ndtri(ub)
    r = np.corrcoef(za, zb)[0, 1]
    assert abs(r - 0.6) < 0.05, r
    # each marginal is still its own distribution: standard normal scores, uniform CDF values
    assert abs(za.mean()) < 0.06 and abs(za.std() - 1) < 0.05
    assert abs(np.mean(ub < 0.25) - 0.25) < 0.03
    # shares are not correlated with anything
    s = d["share"].sel(item="a").values
    assert abs(np.corrcoef(ndtri((s - 0.2) / 0.6), za)[0, 1]) < 0.06
    # the common factor: the draws equal the hand transform of the independent uniforms
    u = cost_uniforms(9, draws[:5], ["a", "b"])[:, :, 0]
    z0 = ndtri(cost_uniforms(9, draws[:5], ["__common__"])[:, 0, 0])
    ua = ndtr(math.sqrt(0.6) * z0 + math.sqrt(0.4) * ndtri(u[:, 0]))
    np.testing.assert_allclose(d["unit_cost"].sel(item="a").values[:5],
                               c.items[0].unit.ppf(ua), rtol=1e-12)


# --------------------------------------------------------------------------- scenarios


SCEN = """
[prices]
base = "2021-22"
inflation = { rate = 0.0 }
[costs.special_independent]
count = "n_pupils"
tier = "specialist"
placement = "special_independent"
unit = { dist = "lognormal", median = 57363, low = 49881, high = 65968 }
[costs.special_state]
count = "n_pupils"
tier = "specialist"
placement = "special_state"
unit = 23500
[scenarios.market]
unit = { special_independent = 1.2 }
[scenarios.inflation]
inflation = { rate = 0.05 }
[scenarios.not_run]
unit = { special_state = 2.0 }
"""


def test_scenario_modifiers_apply_to_their_scenario_only_and_stay_paired():
    ds = _results(areas=(KENT,), scenarios=["baseline", "market", "inflation"])
    # the same counts in every scenario, so differences are the modifiers alone
    ds["n_pupils"] = ds["n_pupils"].isel(scenario=0, drop=True).expand_dims(
        scenario=ds["scenario"].values).transpose(*ds["n_pupils"].dims)
    sp = spend(ds, parse_costs(SCEN, "s.toml"))
    s = sp["spend"].sel(area=KENT)
    base = s.sel(scenario="baseline")
    np.testing.assert_allclose(s.sel(scenario="market", category="special_independent").values,
                               1.2 * base.sel(category="special_independent").values)
    np.testing.assert_array_equal(s.sel(scenario="market", category="special_state").values,
                                  base.sel(category="special_state").values)
    infl = s.sel(scenario="inflation") / base
    np.testing.assert_allclose(infl.sel(year=2026).values, 1.05 ** 4)  # 2021-22 -> 2025-26
    np.testing.assert_allclose(infl.sel(year=2025).values, 1.05 ** 3)
    assert json.loads(sp.attrs["costs_scenarios_unused"]) == ["not_run"]
    assert float(sp["scenario_unit_factor"].sel(scenario="market",
                                                item="special_independent")) == 1.2
    assert sp["price_index"].dims == ("scenario", "year", "item")


def test_results_of_one_named_scenario_without_a_scenario_dim_take_its_modifiers():
    ds = _results(areas=(KENT,))
    ds.attrs["scenario"] = "market"
    one = spend(ds, parse_costs(SCEN, "s.toml"))
    ds.attrs["scenario"] = "baseline"
    base = spend(ds, parse_costs(SCEN, "s.toml"))
    np.testing.assert_allclose(one["spend"].sel(category="special_independent").values,
                               1.2 * base["spend"].sel(category="special_independent").values)
