"""Diagnostics gate and artefact contents."""

import json
import logging

import arviz as az
import numpy as np
import pymc as pm
import pytest
import xarray as xr

from simsend.calibration import CalibrationError, calibrate, fit
from simsend.calibration.model import constants
from simsend.calibration.synthetic import synthetic_targets


def product_model(targets, prior):
    """Escalation as request rate x conversion rate with no data on requests.

    The two rates enter the likelihood only through their product, so their split is not
    identified (flat priors: the posterior is an improper ridge).
    """
    c = constants(targets, prior)
    mask = c.new_mask.ravel()
    with pm.Model() as m:
        request = pm.HalfFlat("request_rate")
        conversion = pm.HalfFlat("conversion_rate")
        pm.Poisson("new_plans", mu=request * conversion * c.x_cfg.ravel()[mask],
                   observed=c.new_obs.ravel()[mask])
    return m


@pytest.fixture
def small_targets():
    t, _, prior = synthetic_targets(n_areas=1, n_years=5, seed=2)
    return t, prior


def test_non_identifiable_model_is_refused(tmp_path, monkeypatch, caplog, calib_config,
                                           small_targets):
    t, prior = small_targets
    # a CLI test may have run configure_logging, which stops propagation to caplog's handler
    monkeypatch.setattr(logging.getLogger("simsend"), "propagate", True)
    caplog.set_level("INFO", logger="simsend")
    monkeypatch.setattr(fit, "build_model", product_model)
    out = tmp_path / "bad.nc"
    with pytest.raises(CalibrationError) as err:
        calibrate(calib_config, out, draws=100, tune=100, chains=2, targets=t, prior=prior,
                  random_seed=3)
    assert not out.exists()
    d = err.value.diagnostics
    assert d["max_rhat"] > 1.01 or d["min_ess_bulk"] < d["ess_threshold"]
    assert "r-hat" in str(err.value) or "ESS" in str(err.value)

    # Allowed explicitly: written, and the failure is recorded in the artefact.
    path = calibrate(calib_config, out, draws=100, tune=100, chains=2, targets=t, prior=prior,
                     random_seed=3, allow_failed_diagnostics=True)
    attrs = xr.open_dataset(path, group="posterior", engine="h5netcdf").attrs
    assert attrs["allow_failed_diagnostics"] == 1
    assert attrs["diagnostics_passed"] == 0
    assert json.loads(attrs["diagnostics"])["failures"]
    # ... and said so in the log (what a user of `simsend calibrate` sees)
    msgs = [r.getMessage() for r in caplog.records if r.name == "simsend"]
    assert any(m.startswith("calibrating 1 area(s)") for m in msgs)
    assert any("diagnostics FAILED (kept" in m for m in msgs)


def test_gate_thresholds():
    rng = np.random.default_rng(0)
    good = az.from_dict(posterior={"x": rng.normal(size=(2, 500))},
                        sample_stats={"diverging": np.zeros((2, 500), bool)})
    d = fit.gate(good)
    assert d["passed"] and d["failures"] == []
    # One divergence is enough to refuse.
    div = np.zeros((2, 500), bool)
    div[1, 7] = True
    bad = az.from_dict(posterior={"x": rng.normal(size=(2, 500))},
                       sample_stats={"diverging": div})
    with pytest.raises(CalibrationError, match="1 divergent"):
        fit.gate(bad)
    # Chains stuck in different places: r-hat far above 1.01.
    stuck = az.from_dict(posterior={"x": rng.normal(size=(2, 500)) + np.array([[0.0], [3.0]])},
                         sample_stats={"diverging": np.zeros((2, 500), bool)})
    with pytest.raises(CalibrationError, match="r-hat"):
        fit.gate(stuck)
    # Strongly autocorrelated draws: ESS below the threshold.
    walk = np.cumsum(rng.normal(size=(2, 500)), axis=1) * 0.05
    d = fit.diagnose(az.from_dict(posterior={"x": walk}))
    assert any("ESS" in f for f in fit.failures(d))
    # An element constant up to rounding (an empty age band's share: 1/5 in every draw) has
    # no r-hat and does not fail the gate; the well-mixed element beside it is still judged.
    flat = np.full((2, 500), 0.2)
    flat[1, :3] = np.nextafter(0.2, 1.0)  # one chain a last bit off in three draws
    share = np.stack([rng.normal(size=(2, 500)), flat], axis=-1)
    d = fit.diagnose(az.from_dict(posterior={"share": share},
                                  sample_stats={"diverging": np.zeros((2, 500), bool)}))
    assert np.isfinite(d["max_rhat"]) and d["max_rhat"] < 1.01, d
    assert fit.failures(d) == []
    assert fit.ess_threshold(500, 2) == 400.0
    assert fit.ess_threshold(100, 2) == 80.0


def test_artefact_contents(synthetic_fit):
    path, t, _, _ = synthetic_fit
    idata = az.from_netcdf(path)
    assert {"posterior", "sample_stats", "observed_data", "constant_data"} <= set(idata.groups())
    post = idata.posterior
    assert post["escalation_multiplier"].dims == ("chain", "draw", "age_group", "area")
    assert post.sizes["chain"] == 2
    assert idata.observed_data["ehcp"].dims == ("year", "age_group", "area")
    assert int(idata.observed_data["year"].max()) == 2020  # origin: nothing later is kept
    a = post.attrs
    for key in ("config_toml", "config_sha256", "data_sha256", "diagnostics", "pymc_version",
                "arviz_version", "numpy_version", "simsend_version", "sampler",
                "wall_time_s", "origin_year"):
        assert key in a, key
    assert a["origin_year"] == 2020 and a["reference_year"] == 2021
    d = json.loads(a["diagnostics"])
    assert d["max_rhat"] <= 1.01 and d["n_divergent"] == 0
    assert d["min_ess_bulk"] >= d["ess_threshold"]
    assert a["allow_failed_diagnostics"] == 0


def test_slim_posterior_keeps_what_a_forecast_reads(synthetic_fit, calib_config, tmp_path):
    """--slim: only the engine's variables, float32, about SLIM_DRAWS draws, still loadable."""
    from simsend.calibration import PosteriorParameters

    path = synthetic_fit[0]
    full = xr.open_dataset(path, group="posterior", engine="h5netcdf").load()
    assert full.sizes["chain"] * full.sizes["draw"] == 2000
    post = fit.slim_posterior(full)
    # the trend per area is superseded by its step at the reference year, which is kept
    assert set(post.data_vars) == (set(fit.ENGINE_VARIABLES) & set(full.data_vars)
                                   - {"escalation_trend_area"})
    assert {"escalation_multiplier", "exit_multiplier", "escalation_trend_ref"} <= set(
        post.data_vars)
    assert all(post[v].dtype == np.float32 for v in post.data_vars)
    assert post.sizes["chain"] * post.sizes["draw"] == 400  # every 5th of 2,000 draws
    np.testing.assert_array_equal(post["escalation_multiplier"].values,
                                  full["escalation_multiplier"].values[:, ::5]
                                  .astype(np.float32))
    idata = az.InferenceData(posterior=post, constant_data=xr.open_dataset(
        path, group="constant_data", engine="h5netcdf").load())
    slim_path = fit.write_artefact(idata, tmp_path / "slim.nc",
                                   {"reference_year": int(full.attrs["reference_year"])})
    src = PosteriorParameters(slim_path, calib_config.model, np.array([10]))
    assert len(src) == 400
    # an older fit without the step keeps its trend per area (the engine reads it)
    kept = fit.slim_posterior(full.drop_vars("escalation_trend_ref"))
    assert "escalation_trend_area" in kept
