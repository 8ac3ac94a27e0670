"""Variance-based sensitivity: estimators against known truths, a real run, the CLI."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import simsend
from simsend.analysis.sensitivity import (
    SensitivityError,
    first_order,
    first_order_bootstrap,
    noise_warnings,
    null_first_order,
    sensitivity,
    to_table,
)
from simsend.cli import main
from simsend.config.costs import parse_costs

ROOT = Path(__file__).resolve().parents[2]
COSTS = ROOT / "configs" / "costs" / "england_2021_22.toml"


# --------------------------------------------------------------------------- estimators


def test_linear_additive_model_recovers_exact_indices():
    # Y = sum a_i X_i + e with X_i ~ U(0, 1) independent: S1_i = a_i^2 var(X) / var(Y) exactly.
    rng = np.random.default_rng(11)
    n, a, sd = 4000, np.array([4.0, 2.0, 1.0, 0.0]), 0.5
    x = rng.uniform(size=(n, 4))
    y = x @ a + sd * rng.normal(size=n)
    var_y = (a ** 2).sum() / 12.0 + sd ** 2
    truth = a ** 2 / 12.0 / var_y  # 0.711, 0.178, 0.044, 0
    boot = np.random.default_rng(3)
    for i in range(4):
        s1, half = first_order_bootstrap(x[:, i], y, boot, resamples=300)
        # With M = 63 equal-frequency bins of a uniform input the bins keep 1 - 1/M^2 of a
        # linear effect (a 0.03% loss), so the error is sampling error: the 95% half-width
        # is 1.96 sd, and two half-widths (about 4 sd) bound it.
        assert abs(s1 - truth[i]) < 2.0 * half, (i, s1, truth[i], half)
        assert half < 0.05
    assert abs(first_order(x[:, 3], y)) < 0.02  # no effect: about 0, not (M-1)/N = 0.016


def test_ishigami_analytic_indices():
    # Ishigami (a = 7, b = 0.1) on U(-pi, pi)^3: S1 = 0.3139, 0.4424, 0 (Sobol' & Levitan 1999).
    rng = np.random.default_rng(5)
    x = rng.uniform(-np.pi, np.pi, size=(5000, 3))
    y = np.sin(x[:, 0]) + 7.0 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
    truth = (0.3139, 0.4424, 0.0)
    boot = np.random.default_rng(1)
    for i in range(3):
        s1, half = first_order_bootstrap(x[:, i], y, boot, resamples=300)
        assert abs(s1 - truth[i]) < 2.0 * half, (i, s1, truth[i], half)
        assert half < 0.05


def test_uncorrected_estimator_is_salibs_sobol_first():
    from SALib.analyze.delta import sobol_first

    rng = np.random.default_rng(2)
    x = rng.normal(size=500)
    y = x ** 2 + rng.normal(size=500)
    for m in (4, 12, 22):
        ref = sobol_first(y, x, np.linspace(0, 500, m + 1))
        assert first_order(x, y, bins=m, corrected=False) == pytest.approx(ref, rel=1e-12)


def test_null_distribution_centres_on_zero():
    # Under a random partition E[SS_B] = (M - 1) SS_T / (N - 1) exactly, so the corrected
    # estimator has mean 0 for an input with no effect.
    rng = np.random.default_rng(9)
    y = rng.lognormal(size=200)
    null = null_first_order(y, rng, permutations=4000)
    assert abs(null.mean()) < 4.0 * null.std() / np.sqrt(len(null))
    # the uncorrected index would average (M - 1) / (N - 1) = 13 / 199 = 0.065
    assert null.mean() < 0.02


# --------------------------------------------------------------------------- a real run

PLANTED = """
[prices]
base = "2021-22"
[costs.planted]
count = "n_pupils"
tier = "specialist"
unit = { dist = "lognormal", median = 20000, low = 5000, high = 80000 }
[costs.zero]
description = "counts moves into the specialist tier from the specialist tier: always 0"
count = "n_to_specialist"
tier = "specialist"
unit = { dist = "uniform", low = 1000, high = 100000 }
[costs.support]
count = "n_pupils"
tier = "targeted"
unit = 400
"""


@pytest.fixture(scope="module")
def run_ds() -> xr.Dataset:
    """Rutland, 2025-2028, 40 draws, the shipped England posterior, by tier and placement."""
    cfg = (simsend.load(ROOT / "configs" / "base.toml")
           .replace_run(end_year=2028, draws=40)
           .replace_data(areas=("E06000017",))
           .replace_outputs(by=("tier", "placement", "area")))
    return simsend.run(cfg)


def test_real_run_shape_names_and_ranges(run_ds):
    state = np.random.get_state()
    res = sensitivity(run_ds, COSTS, year=2028, seed=4, delta_resamples=10)
    assert np.all(np.random.get_state()[1] == state[1])  # SALib's global RNG use is undone
    assert list(res["output"].values) == ["specialist", "spend"]
    names = [str(v) for v in res["input"].values]
    for g in ("under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25"):
        for v in ("escalation_multiplier", "escalation_trend", "exit_multiplier"):
            assert f"{v}[{g}]" in names
    assert "unit_cost[special_independent]" in names
    assert "share[transport_special_state]" in names
    assert "share[special_state]" not in names  # no share: constant 1, dropped
    assert "share[special_state]" in res.attrs["inputs_constant"]
    src = dict(zip(names, res["input_source"].values, strict=True))
    assert src["escalation_trend[5_to_10]"] == "posterior" and src["unit_cost[tribunal]"] == "cost"
    assert res["S1"].dims == ("output", "input")
    s1 = res["S1"].values
    assert np.isfinite(s1).all() and (s1 > -1).all() and (s1 <= 1).all()
    assert (res["S1_low"].values <= s1).all() and (s1 <= res["S1_high"].values).all()
    assert np.isfinite(res["delta"].values).all()
    assert ((res["p_value"] > 0) & (res["p_value"] <= 1)).all()
    assert sorted(res["rank"].sel(output="spend").values) == list(range(1, len(names) + 1))
    # 40 draws cannot fit a linear model of 40 inputs: the explained share is not estimated
    assert len(names) >= 39 and np.isnan(res["explained"].values).all()
    # the outputs are the run's own: specialist-tier pupils and total spend in 2028
    spec = run_ds["n_pupils"].sel(tier="specialist", year=2028).sum(["placement", "area"])
    assert float(res["output_mean"].sel(output="specialist")) == pytest.approx(
        float(spec.mean()))
    tab = to_table(res)
    assert len(tab) == 2 * len(names) and set(tab["output"]) == {"specialist", "spend"}


def test_planted_effect_ranks_above_zero_effect(run_ds):
    res = sensitivity(run_ds, parse_costs(PLANTED, "planted.toml"), year=2028, seed=1,
                      delta=False)
    sp = res.sel(output="spend")
    assert int(sp["rank"].sel(input="unit_cost[planted]")) == 1
    planted = float(sp["S1"].sel(input="unit_cost[planted]"))
    zero = float(sp["S1"].sel(input="unit_cost[zero]"))
    assert planted > float(sp["S1_null95"]) and float(sp["p_value"].sel(
        input="unit_cost[planted]")) < 0.01
    assert zero < planted and zero < float(sp["S1_high"].sel(input="unit_cost[planted]"))
    assert "unit_cost[support]" not in list(res["input"].values)  # fixed cost: dropped
    assert 0.5 < float(sp["explained"]) <= 1.0  # 17 inputs: the planted cost dominates
    # costs cannot move the count of pupils: their index on it is noise around 0
    assert float(res["S1"].sel(output="specialist", input="unit_cost[planted]")) < planted


def test_reproducible_and_seeded(run_ds):
    a = sensitivity(run_ds, COSTS, year=2027, seed=7, delta_resamples=10)
    b = sensitivity(run_ds, COSTS, year=2027, seed=7, delta_resamples=10)
    xr.testing.assert_identical(a, b)
    c = sensitivity(run_ds, COSTS, year=2027, seed=8, delta=False)
    assert np.array_equal(a["S1"].values, c["S1"].values)  # the estimate itself has no RNG
    assert not np.array_equal(a["S1_high"].values, c["S1_high"].values)


def test_scenario_dim_is_chosen(run_ds):
    other = run_ds.copy()
    other["n_pupils"] = run_ds["n_pupils"] * 2
    both = xr.concat([run_ds, other], dim="scenario").assign_coords(
        scenario=["baseline", "surge"])
    got = sensitivity(both, year=2028, scenario="surge", delta=False)
    want = sensitivity(other, year=2028, delta=False)
    np.testing.assert_array_equal(got["S1"].values, want["S1"].values)
    assert got["output_mean"].item() == pytest.approx(want["output_mean"].item())
    with pytest.raises(SensitivityError, match="scenario 'nope' not in the results"):
        sensitivity(both, year=2028, scenario="nope", delta=False)


def test_clear_errors(run_ds, tmp_path):
    with pytest.raises(SensitivityError, match="year 2040 not in the results"):
        sensitivity(run_ds, year=2040)
    with pytest.raises(SensitivityError, match="unknown output"):
        sensitivity(run_ds, outputs=("cost",))
    with pytest.raises(SensitivityError, match="'spend' needs a cost file"):
        sensitivity(run_ds, outputs=("spend",))
    with pytest.raises(SensitivityError, match="does not vary"):
        sensitivity(run_ds, year=2025, delta=False)  # the baseline census is data
    fixed = run_ds.copy()
    fixed.attrs = {k: v for k, v in run_ds.attrs.items() if k != "posterior_file"}
    with pytest.raises(SensitivityError, match="no input varies.*fixed rates.*no cost file"):
        sensitivity(fixed, year=2028)
    only_costs = sensitivity(fixed, COSTS, year=2028, delta=False)
    assert set(only_costs["input_source"].values) == {"cost"}
    changed = tmp_path / "england_2025.nc"
    shutil.copy(ROOT / "models" / "england_2025.nc", changed)
    with open(changed, "ab") as f:
        f.write(b"\0")
    with pytest.raises(SensitivityError, match="SHA-256 differs"):
        sensitivity(run_ds, year=2028, posterior=changed)


# --------------------------------------------------------------------------- CLI


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_writes_csv_and_chart(run_ds, tmp_path):
    results = tmp_path / "r.nc"
    simsend.write_netcdf(run_ds, results)
    out, chart = tmp_path / "s.csv", tmp_path / "s.png"
    res = invoke("sensitivity", results, "--costs", COSTS, "--year", 2028, "--no-delta",
                 "--top", 5, "--out", out, "--chart", chart)
    assert res.exit_code == 0, res.output
    import pandas as pd

    tab = pd.read_csv(out)
    assert set(tab["output"]) == {"specialist", "spend"}
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in res.output


@pytest.mark.parametrize("case", ["missing", "year", "costs", "chart"])
def test_cli_bad_input_exits_2_and_writes_nothing(run_ds, tmp_path, case):
    results = tmp_path / "r.nc"
    simsend.write_netcdf(run_ds, results)
    out, chart = tmp_path / "s.csv", tmp_path / "s.png"
    args = {"missing": (tmp_path / "nope.nc", "--year", 2028),
            "year": (results, "--year", 1999),
            "costs": (results, "--costs", tmp_path / "none.toml"),
            "chart": (results, "--chart", tmp_path / "s.pdf")}[case]
    extra = () if case == "chart" else ("--chart", chart)
    res = invoke("sensitivity", *args, "--no-delta", "--out", out, *extra)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    want = {"missing": "results file not found", "year": "year 1999 not in the results",
            "costs": "cost file not found", "chart": "expected a .png or .svg"}[case]
    assert want in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.nc"]


def test_noise_rankings_are_flagged(run_ds):
    """20-40 draws ranked noise as drivers with no warning; now the result says so."""
    res = sensitivity(run_ds, parse_costs(PLANTED, "planted.toml"), year=2028, seed=1,
                      delta=False)
    notes = json.loads(res.attrs["warnings"])
    assert any("only 40 draws" in n for n in notes)
    # the planted cost is distinguishable on spend, so spend is not called noise
    assert not any(n.startswith("spend:") for n in notes)
    fake = res.copy()
    fake["p_value"] = fake["p_value"] * 0 + 0.5  # nothing beats an input with no effect
    fake.attrs["draws"] = 500
    assert noise_warnings(fake) == [
        f"{o}: no input is distinguishable from one with no effect (every permutation "
        "p-value >= 0.05); its ranking is noise" for o in ("specialist", "spend")]
