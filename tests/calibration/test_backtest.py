"""Backtest: aggregate posterior predictive and scoring tables."""

import arviz as az
import numpy as np
import pytest

from simsend.calibration import backtest, scores
from simsend.calibration.backtest import aggregate_forecast, score_points, summarise
from simsend.calibration.fit import write_artefact
from simsend.calibration.synthetic import synthetic_targets
from simsend.dims import band_matrix, band_of_age

GROUPS = ["under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25"]


def point_posterior(tmp_path, t, theta, kappa, trend, origin):
    """An artefact whose posterior is a single point, with negligible extra noise."""
    e_ref = np.linspace(0.01, 0.05, 26)[:, None] * np.ones((1, t.sizes["area"]))
    exit_ref = np.linspace(0.01, 0.2, 26)
    idata = az.from_dict(
        posterior={"escalation_multiplier": theta[None, None], "exit_multiplier":
                   kappa[None, None], "escalation_trend": np.full((1, 1), trend),
                   "new_plans_cv": np.full((1, 1, 5), 1e-6), "ehcp_cv": np.zeros((1, 1, 5))},
        constant_data={"escalation_ref": e_ref, "exit_ref_specialist": exit_ref},
        coords={"age_group": GROUPS, "area": list(t.area.values), "age": np.arange(26)},
        dims={"escalation_multiplier": ["age_group", "area"],
              "exit_multiplier": ["age_group", "area"], "escalation_ref": ["age", "area"],
              "new_plans_cv": ["age_group"], "ehcp_cv": ["age_group"],
              "exit_ref_specialist": ["age"]})
    path = write_artefact(idata, tmp_path / "point.nc",
                          {"origin_year": origin, "reference_year": origin + 1})
    return path, e_ref, exit_ref


def test_aggregate_forecast_mean_matches_expected_propagation(tmp_path):
    t, _, _ = synthetic_targets(n_areas=2, n_years=6, seed=3)
    origin = 2020
    theta = np.full((5, 2), 1.2)
    kappa = np.full((5, 2), 0.9)
    path, e_ref, exit_ref = point_posterior(tmp_path, t, theta, kappa, 0.05, origin)
    fc = aggregate_forecast(path, t, horizon=2, draws=4000, seed=1)
    assert fc["ehcp"].dims == ("draw", "year", "age_group", "area")
    assert fc["year"].values.tolist() == [2021, 2022]
    # Expected values by hand: banded stock spread over ages, aged, thinned, topped up.
    band, m = band_of_age(), band_matrix()
    share = t["ehcp_age_share"].values
    s = np.rint(t["ehcp"].sel(year=origin).values[band] * share)
    x = t["exposure"].sel(year=origin).values
    surv = (1 - exit_ref[:, None]) ** kappa[band]
    for h, year in enumerate([2021, 2022]):
        new = theta[band] * np.exp(0.05 * (year - 2021)) * e_ref * x
        aged = np.zeros_like(s)
        aged[1:] = s[:-1]
        s = aged * surv + new
        want_s, want_n = m.T @ s, m.T @ new
        got = fc.isel(year=h)
        se_s = got["ehcp"].std("draw").values / np.sqrt(4000)
        se_n = got["new_plans"].std("draw").values / np.sqrt(4000)
        z_s = (got["ehcp"].mean("draw").values - want_s) / np.maximum(se_s, 1e-9)
        z_n = (got["new_plans"].mean("draw").values - want_n) / np.maximum(se_n, 1e-9)
        assert np.abs(z_s).max() < 4.5 and np.abs(z_n).max() < 4.5, (z_s, z_n)


def test_scoring_table(synthetic_fit):
    path, t, _, _ = synthetic_fit
    fc = aggregate_forecast(path, t, horizon=2, draws=300, seed=0)
    pts = score_points(fc, t)
    # The aggregate path has no SEN support or ceased plans: only the EHC plan series.
    assert set(pts["variable"]) == {"ehcp", "new_plans", *(f"ehcp_{g}" for g in GROUPS)}
    assert set(pts["method"]) == {"simsend", "naive_growth", "naive_linear"}
    ehcp = pts[pts.variable == "ehcp"]
    assert ehcp[ehcp.method == "simsend"]["year"].tolist() == [2021, 2022]
    # Naive forecasts are the scores module's baselines on the recorded history to 2020.
    hist = t["ehcp"].sum("age_group").sel(area="A0", year=slice(None, 2020)).values
    np.testing.assert_allclose(ehcp[ehcp.method == "naive_linear"]["point"],
                               scores.naive_linear_trend(hist, 2))
    np.testing.assert_allclose(ehcp[ehcp.method == "naive_growth"]["point"],
                               scores.naive_constant_growth(hist, 2))
    # CRPS, interval flags and PIT agree with the scores module on the same draws.
    x = fc["ehcp"].sum("age_group").sel(area="A0", year=2022).values
    obs = float(t["ehcp"].sum("age_group").sel(area="A0", year=2022))
    row = ehcp[(ehcp.year == 2022) & (ehcp.method == "simsend")].iloc[0]
    assert row["crps"] == pytest.approx(float(scores.crps_sample(x, obs)))
    assert row["in90"] == bool(scores.covered(x, obs, 0.9))
    assert row["pit"] == pytest.approx(float(scores.pit(x, obs)))
    # The age groups are scored on their own draws.
    x5 = fc["ehcp"].sel(area="A0", year=2021, age_group="5_to_10").values
    r5 = pts[(pts.variable == "ehcp_5_to_10") & (pts.year == 2021) & (pts.method == "simsend")]
    assert r5["median"].item() == pytest.approx(np.median(x5))
    # A calibrated two-year forecast of a council-sized stock: median within 5%.
    sims = ehcp[ehcp.method == "simsend"]
    assert (np.abs(sims["median"] / sims["observed"] - 1) < 0.05).all()
    tab = summarise(pts)
    assert set(tab["method"]) == {"simsend", "naive_linear", "naive_growth"}
    assert set(tab["area"]) == {"A0", "all"}
    one = tab[(tab.method == "simsend") & (tab.area == "all") & (tab.variable == "ehcp")
              & (tab.origin == "all") & (tab.lead == "all") & (tab.size_band == "all")]
    assert one["n"].item() == 2 and 0 <= one["coverage_90"].item() <= 1


@pytest.mark.slow
def test_backtest_end_to_end(calib_config):
    t, _, prior = synthetic_targets(n_areas=2, n_years=9, seed=21)
    # The pipeline is under test here, not convergence (the gate has its own tests).
    tab = backtest(calib_config, origin=2019, horizon=3, draws=200, targets=t, prior=prior,
                   calib_draws=500, tune=500, chains=2, allow_failed_diagnostics=True)
    assert tab.attrs["method"] == "aggregate"
    # 2 areas x 3 leads x 7 series (total, 5 age groups, new plans) x 3 methods
    assert len(tab.attrs["points"]) == 2 * 3 * 7 * 3
    assert set(tab["area"]) == {"A0", "A1", "all"}
    assert tab["mape"].notna().all()


def test_rolling_backtest_and_chart(tmp_path, calib_config):
    """Two origins scored into one table (pooled rows included) and charted to a real PNG."""
    import matplotlib.image as mpimg

    from simsend.calibration.backtest import plot_backtest, rolling_backtest

    t, _, prior = synthetic_targets(n_areas=1, n_years=8, seed=4)
    tab = rolling_backtest(calib_config, [2018, 2019], horizon=2, draws=60, targets=t,
                           prior=prior, calib_draws=100, tune=100, chains=2,
                           allow_failed_diagnostics=True)
    pts = tab.attrs["points"]
    assert sorted(set(pts["origin"])) == [2018, 2019]
    assert set(tab["origin"]) == {"2018", "2019", "all"}
    # the pooled rows score every point of both origins
    pooled = tab[(tab.origin == "all") & (tab.area == "all") & (tab.method == "simsend")
                 & (tab.lead == "all") & (tab.size_band == "all")]
    for var in ("ehcp", "new_plans"):
        row = pooled[pooled.variable == var].iloc[0]
        p = pts[(pts.variable == var) & (pts.method == "simsend")]
        assert row["n"] == len(p) == 4
        assert row["coverage_90"] == pytest.approx(p["in90"].astype(float).mean())
    png = plot_backtest(pts, tmp_path / "bt.png", t, title="synthetic")
    img = mpimg.imread(png)
    assert img.shape[0] > 300 and img.shape[1] > 600
    assert img[..., :3].std() > 0.05  # lines and bands drawn, not a blank canvas
    # one area: the recorded series is drawn from the targets as well (more dark pixels)
    plot_backtest(pts, tmp_path / "bt_norec.png", None)
    dark = (mpimg.imread(png)[..., :3].mean(-1) < 0.3).sum()
    dark_norec = (mpimg.imread(tmp_path / "bt_norec.png")[..., :3].mean(-1) < 0.3).sum()
    assert dark > dark_norec
