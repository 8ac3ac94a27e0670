"""Pipeline rates per council: recovery of a known truth, the likelihood, the forecast draws."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
import xarray as xr
from scipy.special import expit

from simsend.calibration.pipeline import (
    build_model,
    fit_rate,
    fit_rates,
    fitted_by_year,
    forecast_rate,
    loglik_reference,
    pipeline_counts,
)

AREAS = [f"C{i}" for i in range(10)]
YEARS = [2019, 2020, 2021, 2022, 2023]
TRUTH = {"level": -1.3, "sd_area": 0.4, "sd_walk": 0.1, "conc": 300.0}


def synthetic(seed=5):
    """Counts ``(year, area)`` from the model with known level, council effects and walk."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0.0, TRUTH["sd_area"], len(AREAS))
    walk = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, TRUTH["sd_walk"], len(YEARS) - 1))])
    n = rng.integers(200, 1500, (len(YEARS), len(AREAS))).astype(float)
    p = expit(TRUTH["level"] + effect[None] + walk[:, None])
    c = TRUTH["conc"]
    k = rng.binomial(n.astype(int), rng.beta(p * c, (1 - p) * c)).astype(float)
    k[0, 3] = n[0, 3] = np.nan  # a missing council-year stays out of the likelihood
    return k, n, effect, walk


@pytest.fixture(scope="module")
def fitted():
    k, n, effect, walk = synthetic()
    idata, wall, diag = fit_rate(k, n, AREAS, YEARS, draws=300, tune=300, chains=2, seed=11)
    return idata, diag, k, n, effect, walk


def _interval(idata, name):
    v = idata.posterior[name].values.reshape(-1, *idata.posterior[name].shape[2:])
    return np.quantile(v, 0.05, axis=0), np.quantile(v, 0.95, axis=0)


def test_recovers_council_effects_level_and_walk(fitted):
    idata, diag, k, n, effect, walk = fitted
    assert diag["max_rhat"] < 1.05 and diag["n_divergent"] == 0, diag
    # council rates: level + effect (their sum is what the data identify)
    post = idata.posterior
    rate = (post["level"] + post["area_effect"]).values.reshape(-1, len(AREAS))
    truth = TRUTH["level"] + effect
    lo, hi = np.quantile(rate, [0.05, 0.95], axis=0)
    inside = (lo <= truth) & (truth <= hi)
    assert inside.sum() >= 8, (lo, truth, hi)  # 90% intervals: about 9 of 10
    wrong = truth + 0.3  # a wrong truth is excluded nearly everywhere
    assert ((lo <= wrong) & (wrong <= hi)).sum() <= 2
    lo, hi = _interval(idata, "level")
    assert lo <= TRUTH["level"] <= hi
    assert not lo <= TRUTH["level"] + 0.5 <= hi
    lo, hi = _interval(idata, "walk")
    assert ((lo <= walk + 1e-9) & (walk - 1e-9 <= hi)).sum() >= len(YEARS) - 1
    lo, hi = _interval(idata, "sd_area")
    assert lo <= TRUTH["sd_area"] <= hi


def test_fitted_rates_by_year_match_the_record(fitted):
    idata, _, k, n, _, _ = fitted
    fy = fitted_by_year(idata, np.arange(200))
    assert fy.shape == (200, len(YEARS), len(AREAS))
    total = (np.nansum(k, 1) / np.nansum(n, 1))  # pooled recorded rate by year
    model = np.nansum(np.median(fy, 0) * np.nan_to_num(n), 1) / np.nansum(n, 1)
    np.testing.assert_allclose(model, total, atol=0.02)


def test_likelihood_equals_numpy_reference(fitted):
    _, _, k, n, _, _ = fitted
    model = build_model(k, n, AREAS, YEARS)
    logp = model.compile_logp(vars=[model["obs"]], sum=True)
    rng = np.random.default_rng(0)
    for _ in range(3):
        eff = rng.normal(0, 0.3, len(AREAS))
        eff -= eff.mean()  # the model's council effects sum to zero
        zs = model.rvs_to_transforms[model["area_effect"]].forward(pt.as_tensor(eff)).eval()
        point = {"level": rng.normal(-1, 0.3), "sd_area_log__": 0.0,
                 "area_effect_zerosum__": zs, "sd_walk_log__": np.log(0.2),
                 "z_walk": rng.normal(0, 1, len(YEARS) - 1), "log_conc": rng.normal(4, 1)}
        walk = np.concatenate([[0.0], np.cumsum(0.2 * point["z_walk"])])
        ref = loglik_reference(k, n, point["level"], eff, walk, np.exp(point["log_conc"]))
        np.testing.assert_allclose(float(logp(point)), ref, rtol=1e-9)


def test_forecast_carries_the_walk_and_the_council_year_spread(fitted):
    idata, *_ = fitted
    pick = np.arange(400)
    a = forecast_rate(idata, pick, np.random.default_rng(1))
    b = forecast_rate(idata, pick, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)  # same seed, same draws
    assert a.shape == (400, len(AREAS)) and ((a > 0) & (a < 1)).all()
    last = fitted_by_year(idata, pick)[:, -1]
    # centred on the last year's rates, wider than them (walk step and beta spread)
    np.testing.assert_allclose(np.median(a, 0), np.median(last, 0), atol=0.03)
    assert (a.std(0) > last.std(0)).all()


def test_build_model_refuses_empty_counts():
    k = np.full((2, 3), np.nan)
    with pytest.raises(ValueError, match="no counts"):
        build_model(k, k, ["a", "b", "c"], [2023, 2024])


def test_counts_keep_flagged_cells_missing_and_drop_impossible_ones():
    rows = []
    for area, req, ref, flag in (("A", 100, 20, ""), ("B", 0, 0, "not_applicable"),
                                 ("C", 50, 60, "")):
        for flow, v in (("requests", req), ("requests_refused", ref), ("assessed_no_plan", 5),
                        ("assessed_plan_issued", 40), ("plans_issued", 40),
                        ("plans_issued_within_20_weeks", 20)):
            rows.append(dict(year=2024, area=area, flow=flow, age_group="all", age="all",
                             need="all", placement="all", count=float(v),
                             flag=flag if flow.startswith("requests") else ""))
    trib = pd.DataFrame(dict(year=[2024] * 3, area=["A", "B", "C"], appeals=[3.0, np.nan, 1.0],
                             appealable_decisions=[300.0, 200.0, 100.0], flag=["", "", ""]))
    c = pipeline_counts(pd.DataFrame(rows), trib, ["A", "B", "C"], [2024])
    k, n = c["k_p_refuse"].values[0], c["n_p_refuse"].values[0]
    assert k[0] == 20 and n[0] == 100
    assert np.isnan(k[1]) and np.isnan(n[1])  # not applicable: missing, never 0
    assert np.isnan(k[2]) and np.isnan(n[2])  # more refusals than requests: left out
    assert np.isnan(c["k_p_appeal"].values[0, 1])
    assert c["n_p_not_issue"].values[0, 0] == 45


class _Fake:
    """A posterior of known draws in place of NUTS (the sums and mapping need no sampler)."""

    def __init__(self, n_areas, n_years, rng):
        c, d = 1, 60
        self.posterior = xr.Dataset({
            "level": (("chain", "draw"), rng.normal(-3.4, 0.05, (c, d))),
            "area_effect": (("chain", "draw", "area"), rng.normal(0, 0.3, (c, d, n_areas))),
            "walk": (("chain", "draw", "year"), np.zeros((c, d, n_years))),
            "sd_walk": (("chain", "draw"), np.full((c, d), 0.1)),
            "sd_area": (("chain", "draw"), np.full((c, d), 0.3)),
            "log_conc": (("chain", "draw"), np.full((c, d), 6.0))})


def test_fit_rates_output_sums_and_appeal_mapping(monkeypatch):
    import simsend.calibration.pipeline as cp

    rng = np.random.default_rng(2)
    monkeypatch.setattr(cp, "fit_rate", lambda k, n, areas, years, **kw: (
        _Fake(len(areas), len(years), rng), 0.0, {"max_rhat": 1.0, "min_ess_bulk": 100,
                                                  "n_divergent": 0}))
    areas, years = ["A", "B", "C"], [2023, 2024]
    n = rng.integers(300, 900, (2, 3)).astype(float)
    counts = xr.Dataset(
        {"k_p_appeal": (("year", "area"), np.round(n * 0.03)),
         "n_p_appeal": (("year", "area"), n),
         "issued": ("area", np.array([100.0, 50.0, np.nan])),
         "refused": ("area", np.array([20.0, 10.0, 5.0])),
         "not_issued": ("area", np.array([5.0, 5.0, 5.0])),
         "decisions": ("area", n[-1])},
        coords={"year": years, "area": areas})
    ds = fit_rates(counts, draws=60, tune=60, chains=1, seed=3, n_out=50)
    assert list(ds["area"].values) == areas + ["E92000001"]
    q = ds["p_appeal"].values
    w = n[-1]
    np.testing.assert_allclose(q[:, 3], (q[:, :3] * w).sum(1) / w.sum(), rtol=1e-12)
    ratio = ds["appeal_content_ratio"].values
    np.testing.assert_allclose(ratio[:2], (n[-1, :2] - [25.0, 15.0]) / [100.0, 50.0])
    assert ratio[2] == ratio[3]  # no plans issued: England's ratio
    np.testing.assert_allclose(ds["p_appeal_content"].values,
                               np.minimum(q * ratio, 1.0), rtol=1e-6)
    np.testing.assert_array_equal(ds["p_appeal_refusal"].values, q)
    assert ds["p_appeal_fit"].dims == ("quantile", "year", "area")


def test_cli_names_a_bad_origin(tmp_path):
    from click.testing import CliRunner

    from simsend.cli import main

    cfg = Path(__file__).resolve().parents[2] / "configs" / "base.toml"
    r = CliRunner().invoke(main, ["calibrate-pipeline", str(cfg), "--origin", "1990",
                                  "--out", str(tmp_path / "p.nc")])
    assert r.exit_code == 2, r.output
    assert "origin 1990" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "p.nc").exists()
