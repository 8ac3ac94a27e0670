"""simsend.analysis.costs: spend = counts x share x unit cost x price index, cost draws, budget line."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as st
import xarray as xr
from click.testing import CliRunner

import simsend
from simsend.analysis.costs import (
    cost_draws,
    cost_uniforms,
    deficit_probability,
    spend,
)
from simsend.cli import main
from simsend.config import ConfigError
from simsend.config.costs import load_costs, parse_costs
from simsend.dims import PLACEMENTS, TIERS
from simsend.io import write_netcdf

ROOT = Path(__file__).resolve().parents[2]
ENGLAND = ROOT / "configs" / "costs" / "england_2021_22.toml"
AGE_GROUPS = ("under_5", "5_to_10", "11_to_15")

FIXED = """
[prices]
base = "2021-22"
basis = "constant"
[budget]
values = { "2021-22" = 5e7, "2022-23" = 6e7 }
[costs.targeted]
count = "n_pupils"
tier = ["targeted", "targeted_plus"]
unit = 400
[costs.special_state]
count = "n_pupils"
tier = "specialist"
placement = ["special_state"]
unit = 23500
[costs.indep]
category = "special_independent"
count = "n_pupils"
tier = "specialist"
placement = "special_independent"
unit = { dist = "fixed", value = 57000 }
[costs.specialist_any]
count = "n_pupils"
tier = "specialist"
use = "without_placement"
unit = 16000
[costs.assessment]
count = "n_assessed"
in_budget = false
unit = 5000
[costs.transport]
count = "n_pupils"
tier = "specialist"
placement = ["special_state", "special_independent"]
in_budget = false
share = 0.5
unit = 6000
"""


def _results(draws=range(4), years=(2022, 2023, 2024), scenarios=None, placement=True,
             seed=0) -> xr.Dataset:
    """A synthetic results Dataset shaped like simsend's (integer counts, manifest attrs)."""
    rng = np.random.default_rng(seed)
    draws = list(draws)
    dims = ["draw", "year", "tier"] + (["placement"] if placement else []) + ["age_group", "area"]
    coords = {"draw": np.array(draws, np.int64), "year": np.array(years, np.int32),
              "tier": list(TIERS), "age_group": list(AGE_GROUPS), "area": ["E06000017"]}
    if placement:
        coords["placement"] = [*PLACEMENTS, "not_recorded"]
    if scenarios:
        dims = ["scenario", *dims]
        coords["scenario"] = list(scenarios)
    shape = tuple(len(coords[d]) for d in dims)
    pupils = rng.integers(0, 2000, size=shape).astype(np.int32)
    pdims = [d for d in dims if d != "placement"]
    pshape = tuple(len(coords[d]) for d in pdims)
    assessed = rng.integers(0, 300, size=pshape).astype(np.float32)
    assessed[(slice(None),) * pdims.index("year") + (0,)] = np.nan  # no flows at the baseline
    ds = xr.Dataset({
        "n_pupils": (dims, pupils, {"units": "1"}),
        "n_assessed": (pdims, assessed, {"units": "1 year-1"}),
    }, coords=coords)
    ds.attrs = {"title": "simsend forecast", "root_seed": "20260123", "config_sha256": "ab" * 32,
                "draws": str(len(draws))}
    return ds


def _pick(ds, var, **sel) -> np.ndarray:
    """Sum a variable's numpy values over the selected labels and every dim but draw/year."""
    da = ds[var]
    for dim, vals in sel.items():
        da = da.isel({dim: [list(da[dim].values).index(v) for v in vals]})
    arr = da.values.astype(np.float64)
    keep = [da.dims.index(d) for d in ("scenario", "draw", "year") if d in da.dims]
    return arr.transpose(keep + [i for i in range(arr.ndim) if i not in keep]).reshape(
        *[arr.shape[i] for i in keep], -1).sum(-1)


# --------------------------------------------------------------------------- exact spend


def test_fixed_costs_equal_counts_times_costs():
    ds = _results()
    sp = spend(ds, parse_costs(FIXED, "fixed.toml"))
    got = sp["spend"].sel(area="E06000017")
    np.testing.assert_array_equal(
        got.sel(category="targeted").values,
        _pick(ds, "n_pupils", tier=["targeted", "targeted_plus"]) * 400)
    np.testing.assert_array_equal(
        got.sel(category="special_state").values,
        _pick(ds, "n_pupils", tier=["specialist"], placement=["special_state"]) * 23500)
    np.testing.assert_array_equal(
        got.sel(category="special_independent").values,
        _pick(ds, "n_pupils", tier=["specialist"], placement=["special_independent"]) * 57000)
    np.testing.assert_array_equal(
        got.sel(category="transport").values,
        _pick(ds, "n_pupils", tier=["specialist"],
              placement=["special_state", "special_independent"]) * 0.5 * 6000)
    ass = got.sel(category="assessment").values
    assert np.isnan(ass[:, 0]).all()  # flows are not simulated in the baseline year
    np.testing.assert_array_equal(ass[:, 1:], _pick(ds, "n_assessed")[:, 1:] * 5000)
    # the by-placement items apply, the no-placement fallback does not
    assert "specialist_any" not in sp["category"].values
    assert "specialist_any" in sp.attrs["costs_skipped"]
    # spend by tier adds up to spend
    by_tier = sp["spend_by_tier"].sel(category="targeted").sum("tier")
    np.testing.assert_array_equal(by_tier.values, sp["spend"].sel(category="targeted").values)
    assert sp["spend"].attrs["units"] == "GBP" and sp.attrs["price_base"] == "2021-22"
    assert sp.attrs["config_sha256"] == ds.attrs["config_sha256"]  # manifest carried forward
    assert sp.attrs["costs_toml"] == FIXED and len(sp.attrs["costs_sha256"]) == 64


def test_without_placement_dim_uses_the_fallback_items():
    ds = _results(placement=False)
    sp = spend(ds, parse_costs(FIXED, "fixed.toml"))
    assert list(sp["category"].values) == ["targeted", "specialist_any", "assessment"]
    np.testing.assert_array_equal(
        sp["spend"].sel(category="specialist_any", area="E06000017").values,
        _pick(ds, "n_pupils", tier=["specialist"]) * 16000)


@pytest.fixture(scope="module")
def tiny_run() -> xr.Dataset:
    """Rutland, 2025-2027, 3 draws, the shipped England posterior, by tier and placement."""
    cfg = (simsend.load(ROOT / "configs" / "base.toml")
           .replace_run(end_year=2027, draws=3)
           .replace_data(areas=("E06000017",))
           .replace_outputs(by=("tier", "placement", "area")))
    return simsend.run(cfg)


def test_fixed_costs_on_a_real_run(tiny_run):
    ds = tiny_run
    sp = spend(ds, parse_costs(FIXED, "fixed.toml"))
    got = sp["spend"].sel(area="E06000017")
    np.testing.assert_array_equal(
        got.sel(category="special_state").values,
        _pick(ds, "n_pupils", tier=["specialist"], placement=["special_state"]) * 23500)
    np.testing.assert_array_equal(
        got.sel(category="targeted").values,
        _pick(ds, "n_pupils", tier=["targeted", "targeted_plus"]) * 400)
    assert (got.sel(category="special_state").values > 0).all()
    ass = _pick(ds, "n_assessed")
    np.testing.assert_array_equal(got.sel(category="assessment").values[:, 1:],
                                  ass[:, 1:] * 5000)
    assert int(sp.attrs["costs_seed"]) == int(ds.attrs["root_seed"])
    # the England default applies to it: every by-placement item and no fallback
    eng = spend(ds, load_costs(ENGLAND))
    assert "specialist" not in eng["category"].values
    assert {"special_state", "special_independent", "mainstream_top_up", "transport",
            "assessment", "tribunal"} <= set(eng["category"].values)
    assert np.isfinite(eng["spend_total"].sel(year=[2026, 2027])).all()


# --------------------------------------------------------------------------- inflation


def test_inflation_compounds_from_the_price_base():
    c = parse_costs(FIXED.replace('basis = "constant"',
                                  'basis = "nominal"\ninflation = { rate = 0.02 }'), "f.toml")
    years = [2021, 2022, 2023, 2024, 2025]
    np.testing.assert_allclose(c.inflation.index(years, c.base_year),
                               [1 / 1.02, 1.0, 1.02, 1.02 ** 2, 1.02 ** 3], rtol=1e-14)
    ds = _results(years=(2022, 2023, 2024, 2025))
    sp = spend(ds, c)
    base = _pick(ds, "n_pupils", tier=["specialist"], placement=["special_state"]) * 23500
    np.testing.assert_allclose(sp["spend"].sel(category="special_state").values[..., 0],
                               base * np.array([1, 1.02, 1.02 ** 2, 1.02 ** 3]), rtol=1e-14)
    assert sp.attrs["price_basis"].startswith("nominal")


def test_inflation_by_year_with_a_default_and_per_item():
    c = parse_costs(FIXED.replace(
        'basis = "constant"',
        'inflation = { rates = { "2022-23" = 0.05, "2023-24" = 0.10 }, rate = 0.02 }'
    ).replace("unit = 6000", "unit = 6000\ninflation = 0.07"), "f.toml")
    np.testing.assert_allclose(c.inflation.index([2022, 2023, 2024, 2025], 2022),
                               [1.0, 1.05, 1.05 * 1.10, 1.05 * 1.10 * 1.02], rtol=1e-14)
    sp = spend(_results(years=(2022, 2023, 2024, 2025)), c)
    np.testing.assert_allclose(sp["price_index"].sel(item="transport").values,
                               [1.0, 1.07, 1.07 ** 2, 1.07 ** 3], rtol=1e-14)
    assert sp.attrs["price_basis"] == "GBP at constant 2021-22 prices"


def test_inflation_without_a_rate_for_a_year_names_the_key():
    c = parse_costs(FIXED.replace('basis = "constant"',
                                  'inflation = { rates = { "2022-23" = 0.05 } }'), "f.toml")
    with pytest.raises(ConfigError, match=r"f\.toml: \[prices\.inflation\.rates\].*2023-24"):
        spend(_results(), c)


# --------------------------------------------------------------------------- distributions

DISTS = """
[prices]
base = "2021-22"
[costs.logn]
count = "n_pupils"
unit = { dist = "lognormal", median = 1000, low = 500, high = 2000 }
[costs.tri]
count = "n_pupils"
unit = { dist = "triangular", low = 100, mode = 400, high = 1000 }
share = { dist = "uniform", low = 0.2, high = 0.6 }
[costs.norm]
count = "n_pupils"
unit = { dist = "normal", mean = 5000, sd = 800 }
"""


def test_distributions_match_their_stated_form():
    n = 20000
    c = parse_costs(DISTS, "d.toml")
    d = cost_draws(c, seed=11, draws=np.arange(n))
    u = cost_uniforms(11, np.arange(n), ["logn", "tri", "norm"])
    # exact: each draw is the reference quantile function at its uniform
    sigma = math.log(4.0) / (2 * st.norm.ppf(0.95))
    np.testing.assert_allclose(d["unit_cost"].sel(item="logn"),
                               st.lognorm(sigma, scale=1000).ppf(u[:, 0, 0]), rtol=1e-12)
    np.testing.assert_allclose(d["unit_cost"].sel(item="tri"),
                               st.triang(300 / 900, loc=100, scale=900).ppf(u[:, 1, 0]), rtol=1e-12)
    np.testing.assert_allclose(d["unit_cost"].sel(item="norm"),
                               st.norm(5000, 800).ppf(u[:, 2, 0]), rtol=1e-12)
    np.testing.assert_allclose(d["share"].sel(item="tri"), 0.2 + 0.4 * u[:, 1, 1], rtol=1e-12)
    assert (d["share"].sel(item="logn") == 1).all()

    # statistical: the empirical CDF at the stated quantiles, within 4 binomial sd
    def frac_below(x, v):
        return float((x < v).mean())

    logn = d["unit_cost"].sel(item="logn").values
    for q, v in ((0.05, 500.0), (0.5, 1000.0), (0.95, 2000.0)):
        assert abs(frac_below(logn, v) - q) < 4 * math.sqrt(q * (1 - q) / n), (q, v)
    tri = d["unit_cost"].sel(item="tri").values
    a, m, b = 100.0, 400.0, 1000.0
    var = (a * a + m * m + b * b - a * m - a * b - m * b) / 18
    assert abs(tri.mean() - (a + m + b) / 3) < 4 * math.sqrt(var / n)
    assert abs(frac_below(tri, m) - (m - a) / (b - a)) < 4 * math.sqrt(0.25 / n)
    norm = d["unit_cost"].sel(item="norm").values
    assert abs(norm.mean() - 5000) < 4 * 800 / math.sqrt(n)
    assert abs(norm.std() / 800 - 1) < 4 * math.sqrt(1 / (2 * n))
    share = d["share"].sel(item="tri").values
    assert abs(share.mean() - 0.4) < 4 * math.sqrt(0.4 ** 2 / 12 / n)


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_same_bytes_and_chunking_does_not_matter(tmp_path):
    c = parse_costs(DISTS.replace("[costs.norm]", '[costs.norm]\ntier = "specialist"'), "d.toml")
    ds = _results(draws=range(10), placement=False)
    a = spend(ds, c, seed=5)
    b = spend(ds, c, seed=5)
    for v in a.data_vars:
        assert a[v].values.tobytes() == b[v].values.tobytes(), v
    pa, pb = write_netcdf(a, tmp_path / "a.nc"), write_netcdf(b, tmp_path / "b.nc")
    assert pa.read_bytes() == pb.read_bytes()
    parts = [spend(ds.isel(draw=slice(0, 5)), c, seed=5),
             spend(ds.isel(draw=slice(5, 10)), c, seed=5)]
    joined = xr.concat([p[["spend", "unit_cost", "share"]] for p in parts], dim="draw")
    xr.testing.assert_identical(joined, a[["spend", "unit_cost", "share"]])
    reordered = spend(ds.isel(draw=slice(None, None, -1)), c, seed=5)
    xr.testing.assert_identical(reordered["unit_cost"].sortby("draw"), a["unit_cost"])
    other = spend(ds, c, seed=6)
    assert not np.array_equal(other["unit_cost"].values, a["unit_cost"].values)


def test_scenarios_share_the_cost_draws():
    c = parse_costs(DISTS.replace("[costs.norm]", '[costs.norm]\ntier = "specialist"'), "d.toml")
    ds = _results(draws=range(6), scenarios=("baseline", "surge"), placement=False)
    sp = spend(ds, c)
    assert "scenario" not in sp["unit_cost"].dims
    # spend / count is the same unit cost in both scenarios although the counts differ
    per = (sp["spend"].sel(category="norm", area="E06000017")
           / _pick(ds, "n_pupils", tier=["specialist"])[..., None].squeeze(-1))
    np.testing.assert_allclose(per.sel(scenario="surge"), per.sel(scenario="baseline"),
                               rtol=1e-13)
    assert not np.array_equal(sp["spend"].sel(scenario="surge").values,
                              sp["spend"].sel(scenario="baseline").values)
    alone = spend(ds.sel(scenario="surge", drop=True), c)
    xr.testing.assert_identical(alone["spend"], sp["spend"].sel(scenario="surge", drop=True))


# --------------------------------------------------------------------------- budget line


def test_deficit_probability_by_hand():
    text = """
[prices]
base = "2021-22"
[budget]
values = { "2021-22" = 250, "2022-23" = 100 }
[costs.sp]
count = "n_pupils"
tier = "specialist"
unit = 100
[costs.extra]
count = "n_pupils"
tier = "specialist"
unit = 1e6
in_budget = false
"""
    ds = _results(draws=range(4), years=(2022, 2023, 2024), scenarios=("baseline", "low"),
                  placement=False)
    n = np.zeros(ds["n_pupils"].shape, np.int32)
    sp_i = list(ds["tier"].values).index("specialist")
    n[0, :, :, sp_i, 0, 0] = np.array([1, 2, 3, 4])[:, None]   # baseline: 100..400 GBP
    n[1, :, :, sp_i, 0, 0] = np.array([0, 0, 1, 1])[:, None]   # low: 0, 0, 100, 100 GBP
    ds["n_pupils"] = (ds["n_pupils"].dims, n)
    sp = spend(ds, parse_costs(text, "b.toml"))
    p = sp["p_deficit"]
    # 2022, budget 250: baseline spends 100, 200, 300, 400 -> 2 of 4 over; low: none
    assert float(p.sel(scenario="baseline", year=2022)) == 0.5
    assert float(p.sel(scenario="low", year=2022)) == 0.0
    # 2023, budget 100: baseline 3 of 4 over 100; low: 0 of 4 (100 is not over 100)
    assert float(p.sel(scenario="baseline", year=2023)) == 0.75
    assert float(p.sel(scenario="low", year=2023)) == 0.0
    assert np.isnan(p.sel(year=2024)).all()  # no budget that year and no growth
    t = deficit_probability(sp, threshold=100)  # 2022: over by more than 100 -> only 400
    assert float(t.sel(scenario="baseline", year=2022)) == 0.25
    g = deficit_probability(sp, budget={2022: 50.0, 2023: 50.0, 2024: 50.0})
    np.testing.assert_array_equal(g.sel(scenario="low").values, [0.5, 0.5, 0.5])
    grown = parse_costs(text.replace('"2022-23" = 100 }', '"2022-23" = 100 }\ngrowth = 0.1'),
                        "b.toml")
    np.testing.assert_allclose(grown.budget.series([2022, 2023, 2024, 2025]),
                               [250, 100, 110, 121], rtol=1e-14)


# --------------------------------------------------------------------------- bad input

BAD = [
    ('basis = "constant"', 'basis = "constant"\nbogus = 1', r"\[prices\.bogus\] unknown key"),
    ("unit = 400", 'unit = 400\ncolour = "red"', r"\[costs\.targeted\.colour\] unknown key"),
    ("unit = 400", "unit = -400", r"\[costs\.targeted\.unit\] value -400 must be >= 0"),
    ("unit = 400", 'unit = { dist = "lognormal", median = 400, low = 500, high = 900 }',
     r"\[costs\.targeted\.unit\] expected 0 < low < median < high"),
    ("unit = 400", 'unit = { dist = "lognormal", median = 400, low = 300, high = 900 }',
     r"\[costs\.targeted\.unit\] a lognormal's 90% range is symmetric"),
    ("unit = 400", 'unit = { dist = "triangular", low = 1, mode = 9, high = 5 }',
     r"\[costs\.targeted\.unit\] expected low <= mode <= high"),
    ("unit = 400", 'unit = { dist = "normal", mean = 400, sd = 200 }',
     r"\[costs\.targeted\.unit\.sd\] sd 200 too large"),
    ("unit = 400", 'unit = { dist = "gamma", mean = 400 }',
     r"\[costs\.targeted\.unit\.dist\] expected one of"),
    ("unit = 400", 'unit = { dist = "lognormal", median = 400 }',
     r"\[costs\.targeted\.unit\.low\] missing"),
    ("unit = 400", 'unit = { dist = "normal", mean = 400, sd = 10, sigma = 1 }',
     r"\[costs\.targeted\.unit\.sigma\] unknown key"),
    ("share = 0.5", "share = 1.5", r"\[costs\.transport\.share\] value 1.5 must be <= 1"),
    ('tier = ["targeted", "targeted_plus"]', 'tier = ["targeted", "top"]',
     r"\[costs\.targeted\.tier\[1\]\] unknown value 'top'"),
    ('base = "2021-22"', 'base = "2021"', r"\[prices\.base\] expected a financial year"),
    ('basis = "constant"', 'basis = "constant"\ninflation = { rate = "2%" }',
     r"\[prices\.inflation\.rate\] expected an annual rate"),
    ('use = "without_placement"', 'use = "without_placement"\nplacement = "mainstream"',
     r"\[costs\.specialist_any\.use\] an item with a 'placement' filter"),
    ('values = { "2021-22" = 5e7', 'values = { "2021-22" = -5e7',
     r"\[budget\.values\.\"2021-22\"\] value -5e\+07 must be >= 0"),
]


@pytest.mark.parametrize(("old", "new", "pattern"), BAD)
def test_bad_cost_file_names_file_and_key(tmp_path, old, new, pattern):
    assert old in FIXED
    p = tmp_path / "bad.toml"
    p.write_text(FIXED.replace(old, new, 1))
    with pytest.raises(ConfigError, match=rf"bad\.toml: {pattern}"):
        load_costs(p)


def test_cost_file_against_results_it_does_not_fit():
    bad = FIXED.replace('count = "n_assessed"', 'count = "n_assesed"')
    with pytest.raises(ConfigError, match=r"x\.toml: \[costs\.assessment\.count\] no variable "
                                          r"'n_assesed'"):
        spend(_results(), parse_costs(bad, "x.toml"))
    no_pipeline = _results().drop_vars("n_assessed")
    sp = spend(no_pipeline, parse_costs(FIXED, "x.toml"))  # the pipeline is optional
    assert "assessment" not in sp["category"].values and "n_assessed" in sp.attrs["costs_skipped"]


# --------------------------------------------------------------------------- CLI


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_costs_writes_spend_and_prints_table(tmp_path):
    res_path = write_netcdf(_results(), tmp_path / "run.nc")
    cfile = tmp_path / "c.toml"
    cfile.write_text(FIXED)
    out = tmp_path / "spend.nc"
    r = _invoke("costs", res_path, cfile, "--out", out, "--budget-threshold", 1e6)
    assert r.exit_code == 0, r.output
    assert "P(deficit)" in r.output and "2022-23" in r.output and f"wrote {out}" in r.output
    back = xr.open_dataset(out, engine="h5netcdf").load()
    xr.testing.assert_allclose(back["spend"], spend(_results(), load_costs(cfile))["spend"])
    assert back.attrs["costs_sha256"] == load_costs(cfile).sha256
    assert float(back["p_deficit"].attrs["threshold_gbp"]) == 1e6


@pytest.mark.parametrize(("text", "extra", "pattern"), [
    (FIXED.replace("unit = 400", "unit = -1"), (), r"costs\.targeted\.unit"),
    (FIXED.replace("[budget]", "[budgets]"), (), r"\[budgets\] unknown key"),
    (FIXED.replace('count = "n_assessed"', 'count = "n_nope"'), (), r"costs\.assessment\.count"),
    ("\n".join(ln for ln in FIXED.splitlines() if "values" not in ln and ln != "[budget]"),
     ("--budget-threshold", "5"), r"needs a \[budget\]"),
])
def test_cli_costs_bad_input_exit_2_no_traceback_no_output(tmp_path, text, extra, pattern):
    res_path = write_netcdf(_results(), tmp_path / "run.nc")
    cfile = tmp_path / "c.toml"
    cfile.write_text(text)
    out = tmp_path / "spend.nc"
    r = _invoke("costs", res_path, cfile, "--out", out, *extra)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
    assert re.search(pattern, r.output), r.output
    assert not out.exists() and not list(tmp_path.glob(".spend.nc*"))


def test_cli_costs_missing_results_exit_2(tmp_path):
    r = _invoke("costs", tmp_path / "none.nc", ENGLAND)
    assert r.exit_code == 2 and "not found" in r.output and "Traceback" not in r.output


# --------------------------------------------------------------------------- England default


def test_england_default_is_consistent_with_its_sources():
    c = load_costs(ENGLAND)
    assert c.price_base == "2021-22" and c.basis == "constant"
    assert c.budget.series([2022])[0] == 7_906_000_000
    med = {it.name: it.unit.params[1 if it.unit.kind == "triangular" else 0] for it in c.items}
    # the no-placement average is the by-placement costs weighted by SEN2 January 2022
    sen2 = {"specialist_mainstream": 170_158, "specialist_inclusion_base": 21_284,
            "special_state": 140_165, "special_independent": 24_412, "specialist_ap": 3_596,
            "specialist_post16": 78_370, "specialist_other": 35_270}
    avg = sum(med[k] * v for k, v in sen2.items()) / sum(sen2.values())
    assert abs(avg - med["specialist"]) < 0.01
    # independent fees: DfE dashboard spend 2021-22 / SEN2 pupils
    assert abs(med["special_independent"] - 1_400_354_007 / 24_412) < 0.01
    # targeted tiers reproduce the SEN support services outturn over 1,044,300 pupils
    total = 1_044_300 * (0.75 * med["targeted_support"] + 0.25 * med["targeted_plus_support"])
    assert abs(total - 633_512_994) < 0.01 * 1_044_300
    assert {it.category for it in c.items if not it.in_budget} == {
        "assessment", "tribunal", "transport"}


def test_out_of_area_item_prices_n_out_of_area_and_is_skipped_without_a_plan():
    ds = xr.Dataset({"n_pupils": (("draw", "year", "tier"), np.ones((2, 2, 4))),
                     "n_out_of_area": (("draw", "year", "tier"), np.full((2, 2, 4), 3.0))},
                    coords={"draw": [0, 1], "year": [2022, 2023], "tier": list(TIERS)})
    c = parse_costs('[prices]\nbase = "2021-22"\n[costs.sp]\ncount = "n_pupils"\n'
                    'tier = "specialist"\nunit = 100\n[costs.ooa]\ncount = "n_out_of_area"\n'
                    'tier = "specialist"\nunit = 7\n')
    out = spend(ds, c, seed=1)
    np.testing.assert_array_equal(out["spend_total"].values, np.full((2, 2), 100 + 3 * 7.0))
    out = spend(ds.drop_vars("n_out_of_area"), c, seed=1)
    assert "ooa" in out.attrs["costs_skipped"]
    np.testing.assert_array_equal(out["spend_total"].values, np.full((2, 2), 100.0))


def test_a_budget_for_other_areas_is_not_compared(tiny_run, caplog):
    """England's budget against Rutland's spend gave P(deficit) = 0 with no warning."""
    eng = spend(tiny_run, load_costs(ENGLAND))
    assert "p_deficit" not in eng and "budget" not in eng
    assert "E06000017" in eng.attrs["budget_skipped"] and "E92000001" in eng.attrs["budget_skipped"]
    assert any("P(deficit) is not computed" in r.getMessage() for r in caplog.records)
    text = ENGLAND.read_text().replace('areas = ["E92000001"]', 'areas = ["E06000017"]')
    own = spend(tiny_run, parse_costs(text, "rutland.toml"))
    assert "budget_skipped" not in own.attrs
    assert own["p_deficit"].sel(year=2026).item() == 0.0  # compared now (GBP 7.9bn: never over)
    # no areas stated: taken as England's, so not compared with Rutland either
    bare = parse_costs(text.replace('areas = ["E06000017"]', ""), "bare.toml")
    assert "taken as England" in spend(tiny_run, bare).attrs["budget_skipped"]
    with pytest.raises(ConfigError, match=r"\[budget.areas\]"):
        parse_costs(text.replace('areas = ["E06000017"]', "areas = []"), "bad.toml")


def test_england_costs_price_a_run_tallied_without_placements_but_with_a_plan():
    """`simsend costs results/base.nc configs/costs/england_2021_22.toml` (the README's own
    example) failed: the provision plan's `places` made the results look tallied by placement."""
    cfg = (simsend.load(ROOT / "configs" / "base.toml")
           .replace_run(end_year=2026, draws=2)
           .replace_data(areas=("E06000017",)))
    assert cfg.provision is not None and "placement" not in cfg.outputs.by
    ds = simsend.run(cfg)
    assert "placement" in ds.dims and "placement" not in ds["n_pupils"].dims
    sp = spend(ds, load_costs(ENGLAND))
    assert "specialist" in sp["category"].values  # the without-placement average applies
    assert "special_state" not in sp["category"].values
    assert np.isfinite(sp["spend_total"].sel(year=2026)).all()
