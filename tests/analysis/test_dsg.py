"""simsend.analysis.dsg: the running DSG high-needs balance against hand computations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from scipy.special import ndtri

import simsend
from simsend.analysis.costs import cost_uniforms
from simsend.analysis.dsg import GROWTH_ITEM, dsg_balance, dsg_forecast, dsg_table
from simsend.cli import main
from simsend.config import ConfigError
from simsend.config.costs import load_costs, parse_costs
from simsend.data.errors import DataError
from simsend.data.finance import read_finance
from simsend.dims import PLACEMENTS, TIERS
from simsend.io import write_netcdf

ROOT = Path(__file__).resolve().parents[2]
KENT, RUTLAND = "E10000016", "E06000017"
COUNCIL = ROOT / "configs" / "costs" / "council_2021_22.toml"

BASE = """
[prices]
base = "2021-22"
[costs.hn]
count = "n_pupils"
unit = 1
[costs.transport]
count = "n_pupils"
in_budget = false
unit = 1
"""


def _spend(values, areas=(KENT, RUTLAND), years=(2023, 2024, 2025), scenarios=None):
    """A spend Dataset: in-budget category 'hn' = values, plus an out-of-budget one."""
    values = np.asarray(values, float)
    dims = (["scenario"] if scenarios else []) + ["draw", "year", "category", "area"]
    hn = values[..., None, :]
    arr = np.concatenate([hn, np.full_like(hn, 1e9)], axis=-2)
    coords = {"draw": np.arange(values.shape[-3]), "year": list(years),
              "category": ["hn", "transport"], "area": list(areas),
              "in_budget": ("category", [True, False])}
    if scenarios:
        coords["scenario"] = list(scenarios)
    return xr.Dataset({"spend": (dims, arr)}, coords=coords,
                      attrs={"costs_seed": 5, "price_basis": "GBP at constant 2021-22 prices"})


def test_running_balance_by_hand_with_stated_opening_bridge_and_income():
    c = parse_costs(BASE + """
[dsg]
opening = { E10000016 = -100.0, E06000017 = 20.0 }
opening_year = "2020-21"
bridge = { E10000016 = { "2021-22" = -7.0 }, E06000017 = { "2021-22" = 3.0 } }
income = { E10000016 = { "2022-23" = 50.0, "2023-24" = 55.0 }, E06000017 = { "2022-23" = 10.0 } }
growth = { rate = 0.1 }
override_end = "2023-24"
thresholds = [0, 150]
""")
    # spend[draw, year, area]
    s = np.array([[[60.0, 8.0], [70.0, 9.0], [80.0, 12.0]],
                  [[40.0, 11.0], [50.0, 10.0], [90.0, 14.0]]])
    r = dsg_balance(_spend(s), c)
    inc = np.array([[50.0, 10.0], [55.0, 11.0], [55.0 * 1.1, 12.1]])
    np.testing.assert_allclose(r["income"].values, np.broadcast_to(inc, s.shape))
    opening = np.array([-107.0, 23.0])
    np.testing.assert_allclose(r["opening_balance"].values, opening)
    cum = opening + np.cumsum(inc - s, axis=1)
    np.testing.assert_allclose(r["cumulative_balance"].transpose("draw", "year", "area").values,
                               cum)
    np.testing.assert_allclose(r["in_year_balance"].transpose("draw", "year", "area").values,
                               inc - s)
    # Kent by hand: -107 + (50 - 60) = -117; -117 + (55 - 70) = -132; -132 + (60.5 - 80) = -151.5
    np.testing.assert_allclose(cum[:, :, 0], [[-117.0, -132.0, -151.5], [-97.0, -92.0, -121.5]])
    p = r["p_cum_deficit"].transpose("threshold", "year", "area").values
    np.testing.assert_allclose(p, ((-cum)[None] > np.array([0.0, 150.0])[:, None, None, None])
                               .mean(axis=1))
    assert r["p_deficit_at_override_end"].dims == ("threshold", "area")
    end = r["deficit_at_override_end"].transpose("draw", "area").values
    np.testing.assert_allclose(end, np.maximum(0.0, -cum[:, 1, :]))
    assert r["after_override"].values.tolist() == [False, False, True]
    assert r["financial_year"].values.tolist() == ["2022-23", "2023-24", "2024-25"]
    how = json.loads(r.attrs["dsg_opening"])
    assert how[KENT]["bridge"] == {"2021-22": -7.0} and how[KENT]["at_end_of"] == "2020-21"


def test_override_end_by_default_31_march_2028_and_none_gives_no_end():
    c = parse_costs(BASE + '[dsg]\nopening = 0.0\nopening_year = "2023-24"\nbridge = "zero"\n'
                           'income = { E10000016 = { "2024-25" = 50.0 }, '
                           'E06000017 = { "2024-25" = 10.0 } }\n')
    s = np.array([[[60.0, 8.0], [70.0, 9.0], [80.0, 12.0]]])
    r = dsg_balance(_spend(s, years=(2027, 2028, 2029)), c)
    # income 50 / 10 a year (no growth): Kent -10, -30, -60; Rutland +2, +3, +1
    end = r["deficit_at_override_end"].transpose("draw", "area").values
    np.testing.assert_allclose(end, [[30.0, 0.0]])  # at 31 March 2028 (2027-28)
    assert r["after_override"].values.tolist() == [False, False, True]
    assert r.attrs["dsg_override_end"] == "2027-28"
    assert "31 March 2028" in r.attrs["dsg_override_note"]
    off = dsg_balance(_spend(s, years=(2027, 2028, 2029)), parse_costs(
        BASE + '[dsg]\nopening = 0.0\nopening_year = "2023-24"\nbridge = "zero"\n'
               'override_end = "none"\n'
               'income = { E10000016 = { "2024-25" = 50.0 }, E06000017 = { "2024-25" = 10.0 } }\n'))
    assert "deficit_at_override_end" not in off and not off["after_override"].values.any()
    assert off.attrs["dsg_override_end"] == ""


def test_builtin_opening_with_mean_and_last_bridge_of_kent_by_hand():
    b = read_finance("dsg_balances.csv")
    k = b[b.area == KENT].set_index("financial_year")["cumulative_balance_gbp"]
    steps = [k["2020-21"] - k["2019-20"], k["2021-22"] - k["2020-21"]]
    s = np.full((1, 2, 1), 3.0e8)
    for bridge, each in (("mean", np.mean(steps)), ("last", steps[-1]), ("zero", 0.0)):
        c = parse_costs(BASE + f'[dsg]\nbridge = "{bridge}"\n')
        r = dsg_balance(_spend(s, areas=(KENT,), years=(2025, 2026)), c)
        want = k["2021-22"] + 2 * each  # 2022-23 and 2023-24 bridged; 2024-25 simulated
        assert float(r["opening_balance"].sel(area=KENT)) == pytest.approx(want)
    # income: the 2021-22 allocation held flat (growth 0 by default)
    a = read_finance("hn_allocations.csv")
    hnb = float(a[(a.area == KENT) & (a.financial_year == "2021-22")]["high_needs_gbp"].iloc[0])
    np.testing.assert_allclose(r["income"].values, hnb)


def test_growth_distribution_is_one_rate_a_draw_from_the_growth_uniform():
    c = parse_costs(BASE + """
[dsg]
opening = 0.0
income = { E10000016 = { "2022-23" = 100.0 } }
growth = { dist = "normal", mean = 0.03, sd = 0.02 }
""")
    s = np.zeros((6, 3, 1))
    r = dsg_balance(_spend(s, areas=(KENT,)), c)
    u = cost_uniforms(5, list(range(6)), [GROWTH_ITEM])[:, 0, 0]
    g = 0.03 + 0.02 * ndtri(u)
    got = r["income"].sel(area=KENT).values
    np.testing.assert_allclose(got[:, 0], 100.0)
    np.testing.assert_allclose(got[:, 1], 100.0 * (1 + g))
    np.testing.assert_allclose(got[:, 2], 100.0 * (1 + g) ** 2)
    assert len(set(np.round(g, 12))) == 6


def test_scenarios_share_income_and_opening():
    c = parse_costs(BASE + '[dsg]\nopening = -5.0\nincome = { E10000016 = { "2022-23" = 10.0 } }\n'
                           'growth = { dist = "uniform", low = -0.02, high = 0.06 }\n')
    s = np.stack([np.full((3, 3, 1), 12.0), np.full((3, 3, 1), 9.0)])
    r = dsg_balance(_spend(s, areas=(KENT,), scenarios=["baseline", "reform"]), c)
    d = (r["cumulative_balance"].sel(scenario="reform")
         - r["cumulative_balance"].sel(scenario="baseline")).values
    np.testing.assert_allclose(d[:, :, 0], [[3.0, 6.0, 9.0]] * 3)
    assert r["p_cum_deficit"].dims == ("scenario", "threshold", "year", "area")


def test_dsg_table_has_bands_and_probabilities():
    c = parse_costs(BASE + '[dsg]\nopening = 0.0\nincome = { E10000016 = { "2022-23" = 1e8 } }\n'
                           'thresholds = [0, 5e6]\n')
    s = np.linspace(0.9e8, 1.2e8, 20).reshape(20, 1, 1).repeat(3, axis=1)
    r = dsg_balance(_spend(s, areas=(KENT,)), c)
    t = dsg_table(r)
    assert list(t["financial_year"]) == ["2022-23", "2023-24", "2024-25"]
    assert {"spend p05 £m", "balance p95 £m", "P(deficit > 0m)", "P(deficit > 5m)"} <= set(t)
    assert t["P(deficit > 0m)"].iloc[0] == pytest.approx(np.mean(s[:, 0, 0] > 1e8))
    assert t["spend p50 £m"].iloc[0] == pytest.approx(np.median(s[:, 0, 0]) / 1e6)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("dsg", "areas", "pattern"), [
    ('opening = "builtin"', ("E06000053",), r"\[dsg.opening\] no DSG cumulative balance for "
                                            r"E06000053.*give the balance in pounds"),
    ('opening = 0.0\nopening_year = "2023-24"', (KENT,),
     r"\[dsg.opening_year\] 2023-24 is not before the results' first financial year 2022-23"),
    ('opening = 0.0\nopening_year = "2019-20"\nbridge = { E10000016 = { "2020-21" = 1.0 } }',
     (KENT,), r"\[dsg.bridge.E10000016\] no in-year balance for \['2021-22'\]"),
    ('opening = 0.0', ("E09000001",), r"\[dsg.income\] no high-needs allocation for E09000001"),
])
def test_missing_figures_name_the_key_and_the_area(dsg, areas, pattern):
    c = parse_costs(BASE + "[dsg]\n" + dsg + "\n", "c.toml")
    with pytest.raises(ConfigError, match=pattern):
        dsg_balance(_spend(np.zeros((1, 3, len(areas))), areas=areas), c)


def test_every_council_gets_a_balance_and_those_without_figures_are_noted():
    import pandas as pd
    areas = pd.read_csv(ROOT / "simsend" / "data" / "builtin" / "areas.csv", dtype=str)
    codes = list(areas[(areas.status == "current") & (areas.level == "la")]["code"])
    s = np.full((2, 2, len(codes)), 1e8)
    r = dsg_balance(_spend(s, areas=codes, years=(2025, 2026)), parse_costs(BASE + "[dsg]\n"))
    cum = r["cumulative_balance"].isel(draw=0, year=0).to_series()
    assert sorted(cum[cum.isna()].index) == ["E06000053", "E09000001"]
    assert sorted(json.loads(r.attrs["dsg_missing"])) == ["E06000053", "E09000001"]
    assert len(codes) == 153 and cum.notna().sum() == 151
    assert r["p_cum_deficit"].sel(area="E06000053").isnull().all()


@pytest.mark.parametrize(("dsg", "pattern"), [
    # Kent's stated opening under a mistyped code: the shipped balance was used instead
    ('opening = { E10000061 = -1e8 }',
     r"\[dsg.opening.E10000061\] unknown area code: did you mean E10000016 \(Kent\)\? "
     r"This run's areas are \['E10000016'\]"),
    ('income = { E10000061 = { "2022-23" = 1e8 } }', r"\[dsg.income.E10000061\] unknown area"),
    ('bridge = { E10000061 = { "2022-23" = 1.0 } }', r"\[dsg.bridge.E10000061\] unknown area"),
])
def test_a_dsg_figure_of_an_unknown_area_names_the_key(dsg, pattern):
    c = parse_costs(BASE + "[dsg]\n" + dsg + "\n", "c.toml")
    with pytest.raises(ConfigError, match=pattern):
        dsg_balance(_spend(np.zeros((1, 3, 1)), areas=(KENT,)), c)


def test_dsg_figures_of_the_data_s_other_areas_are_skipped():
    """A cost file stating every council's opening balance, used on Kent's results."""
    c = parse_costs(BASE + "[dsg]\nopening = { E10000016 = -5.0, E06000017 = 7.0 }\n", "c.toml")
    r = dsg_balance(_spend(np.zeros((1, 3, 1)), areas=(KENT,)), c)
    assert r["opening_balance"].values.tolist() == [-5.0]


def test_no_dsg_table_and_user_balance_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"no \[dsg\] table"):
        dsg_balance(_spend(np.zeros((1, 3, 2))), parse_costs(BASE))
    bad = tmp_path / "bal.csv"
    bad.write_text("financial_year,area,cumulative_balance_gbp\n2021-22,E10000016,minus 5\n")
    c = parse_costs(BASE + f'[dsg]\nbalances = "{bad}"\n')
    with pytest.raises(DataError, match=r"bal\.csv: row 2: column 'cumulative_balance_gbp'"):
        dsg_balance(_spend(np.zeros((1, 3, 1)), areas=(KENT,)), c)
    good = tmp_path / "good.csv"
    good.write_text("financial_year,area,cumulative_balance_gbp\n2021-22,E10000016,-5e6\n")
    r = dsg_balance(_spend(np.zeros((1, 3, 1)), areas=(KENT,)), parse_costs(
        BASE + f'[dsg]\nbalances = "{good}"\n'))
    assert float(r["opening_balance"][0]) == -5e6


# --------------------------------------------------------------------------- a real council


@pytest.fixture(scope="module")
def kent_run() -> xr.Dataset:
    """Kent, 2025-2027, 4 draws, by tier, placement and area."""
    cfg = (simsend.load(ROOT / "configs" / "council.toml")
           .replace_run(end_year=2027, draws=4)
           .replace_data(areas=(KENT,))
           .replace_outputs(by=("tier", "placement", "area")))
    return simsend.run(cfg)


def test_council_file_on_a_real_kent_run(kent_run):
    r = dsg_forecast(kent_run, COUNCIL)
    c = load_costs(COUNCIL)
    assert np.isfinite(r["cumulative_balance"]).all()
    b = read_finance("dsg_balances.csv")
    k = b[b.area == KENT].set_index("financial_year")["cumulative_balance_gbp"]
    mean_step = ((k["2020-21"] - k["2019-20"]) + (k["2021-22"] - k["2020-21"])) / 2
    assert float(r["opening_balance"][0]) == pytest.approx(k["2021-22"] + 2 * mean_step)
    # the spend is the in-budget categories of the council-priced spend
    sp = simsend.analysis.costs.spend(kent_run, c)
    inb = sp["spend"].isel(category=np.flatnonzero(sp["in_budget"].values)).sum("category")
    got = r["spend_in_budget"]
    np.testing.assert_allclose(got.values, inb.transpose(*got.dims).values)
    assert (got.values > 1e8).all()  # Kent's high-needs spend is hundreds of millions
    assert set(r["threshold"].values) == {0.0, 5e7, 1e8}
    assert "deficit_at_override_end" not in r  # 2027-28 is after the run's last year 2026-27
    assert "outside the results' years" in r.attrs["dsg_override_note"]


# --------------------------------------------------------------------------- CLI


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _kent_results(tmp_path):
    """Synthetic Kent results shaped like simsend's: pupils by tier and placement."""
    rng = np.random.default_rng(3)
    coords = {"draw": np.arange(4), "year": np.array([2025, 2026, 2027], np.int32),
              "tier": list(TIERS), "placement": [*PLACEMENTS, "not_recorded"], "area": [KENT]}
    shape = tuple(len(v) for v in coords.values())
    ds = xr.Dataset({"n_pupils": (tuple(coords), rng.integers(0, 3000, shape).astype(np.int32),
                                  {"units": "1"})}, coords=coords)
    ds.attrs = {"title": "simsend forecast", "root_seed": "7", "areas": json.dumps([KENT])}
    return write_netcdf(ds, tmp_path / "run.nc")


def test_cli_dsg_writes_the_balance_and_prints_it(tmp_path):
    res = _kent_results(tmp_path)
    out = tmp_path / "d.nc"
    r = _invoke("dsg", res, COUNCIL, "--out", out, "--threshold", 0, "--threshold", 2e8)
    assert r.exit_code == 0, r.output
    assert "E10000016" in r.output and "2026-27" in r.output and "P(deficit > 200m)" in r.output
    assert "general reserves" in r.output and f"wrote {out}" in r.output
    back = xr.open_dataset(out, engine="h5netcdf").load()
    assert set(back["threshold"].values) == {0.0, 2e8}
    want = dsg_forecast(xr.open_dataset(res, engine="h5netcdf").load(), COUNCIL,
                        thresholds=[0, 2e8])
    xr.testing.assert_allclose(back["cumulative_balance"], want["cumulative_balance"])


@pytest.mark.parametrize(("edit", "pattern"), [
    (lambda t: t.replace('bridge = "mean"', 'bridge = "average"'), r"\[dsg.bridge\] expected"),
    (lambda t: t.replace('override_end = "2027-28"', 'override_end = "March 2028"'),
     r"\[dsg.override_end\] expected a financial year"),
    (lambda t: t.replace('opening = "builtin"', 'opening = { Kent = -1e8 }'),
     r"\[dsg.opening.Kent\] expected a GSS area code"),
    (lambda t: t.replace('opening = "builtin"', 'opening = { E10000061 = -1e8 }'),
     r"\[dsg.opening.E10000061\] unknown area code: did you mean E10000016 \(Kent\)"),
    (lambda t: t.replace('unit_costs = "builtin"', 'unit_costs = "units.csv"'),
     r"units\.csv: row 2: column 'median'"),
])
def test_cli_dsg_bad_input_exit_2_no_traceback_no_output(tmp_path, edit, pattern):
    res = _kent_results(tmp_path)
    (tmp_path / "units.csv").write_text("area,key,price_base,median,low,high\n"
                                        "E10000016,special_state,2021-22,abc,1,2\n")
    cfile = tmp_path / "c.toml"
    cfile.write_text(edit(COUNCIL.read_text()))
    out = tmp_path / "d.nc"
    r = _invoke("dsg", res, cfile, "--out", out)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
    assert re.search(pattern, r.output), r.output
    assert not out.exists()
