"""The PyMC model's likelihood against a direct NumPy/SciPy evaluation of the equations."""

import numpy as np
import pytest
from scipy import stats

from simsend.calibration.model import PriorConfig, build_model, issue_matrix
from simsend.calibration.synthetic import synthetic_targets
from simsend.dims import band_matrix, band_of_age


@pytest.fixture(scope="module")
def problem():
    t, truth, prior = synthetic_targets(n_areas=2, n_years=5, seed=5)
    t = t.copy()
    t["new_plans"][2, 1, 0] = np.nan  # one unrecorded cell: modelled in the stock equation
    return t, prior


def manual_loglik(t, prior, log_theta, trend, log_kappa, cv_new, cv_stock):
    """Direct evaluation of the stock-and-flow likelihood (module docstring equations)."""
    m, band = band_matrix(), band_of_age()
    s = t.attrs["targeted_plus_share"]
    nf = t["need_factor"].values
    e_cfg = nf * ((1 - s) * prior.esc_targeted + s * prior.esc_targeted_plus)[:, None]
    years = t.year.values
    tc = years[1:].mean()
    ehcp = t["ehcp"].values
    share = t["ehcp_age_share"].values
    h = -np.log(1 - prior.exit_specialist)
    ll = 0.0
    for i in range(1, len(years)):
        theta = np.exp(log_theta + np.reshape(trend, (-1, 1)) * (years[i] - tc))  # (G, R)
        x = t["exposure"].values[i]  # (26, R)
        esc = theta[band] * x * e_cfg  # expected escalations by census age
        mu_new = m.T @ esc
        # recorded by age at issue: half of each census age one year younger
        younger = np.vstack([esc[1:], np.zeros((1, esc.shape[1]))])
        mu_rec = m.T @ (0.5 * esc + 0.5 * younger)
        mu_rec[0] += 0.5 * esc[0]
        obs_new = t["new_plans"].values[i]
        ok = np.isfinite(obs_new)
        alpha = np.broadcast_to(1 / cv_new[:, None] ** 2, mu_rec.shape)[ok]
        ll += stats.nbinom.logpmf(obs_new[ok], alpha, alpha / (alpha + mu_rec[ok])).sum()
        prev = ehcp[i - 1][band] * share  # (26, R) by single age
        aged = np.zeros_like(prev)
        aged[1:] = prev[:-1]
        surv = m.T @ (aged * np.exp(-np.exp(log_kappa)[band] * h[:, None]))
        mu_s = surv + np.where(ok, obs_new * mu_new / mu_rec, mu_new)
        sd = np.sqrt(mu_s + 1 + (cv_stock[:, None] * mu_s) ** 2)
        ll += stats.norm.logpdf(ehcp[i], mu_s, sd).sum()
    return ll


def test_loglik_matches_manual(problem):
    t, prior = problem
    model = build_model(t, prior)
    assert model.named_vars_to_dims["escalation_multiplier"] == ("age_group", "area")
    assert len(model.coords["obs_new"]) == 4 * 5 * 2 - 1
    rng = np.random.default_rng(1)
    point = model.initial_point()
    for k in point:
        point[k] = point[k] + rng.normal(0, 0.1, size=np.shape(point[k]))
    # Untransformed values of the free variables at this point.
    names = ["esc_age", "esc_area_sd", "esc_area_z", "esc_area_age_sd", "esc_area_age_z",
             "escalation_trend", "exit_age", "exit_area_sd",
             "exit_area_z", "exit_area_age_sd", "exit_area_age_z", "new_plans_cv", "ehcp_cv"]
    fn = model.compile_fn(model.replace_rvs_by_values([model[n] for n in names]),
                          inputs=model.value_vars, on_unused_input="ignore")
    v = dict(zip(names, fn(point), strict=True))
    log_theta = (v["esc_age"][:, None] + v["esc_area_sd"] * v["esc_area_z"][None, :]
                 + v["esc_area_age_sd"] * v["esc_area_age_z"])
    log_kappa = (v["exit_age"][:, None]
                 + v["exit_area_sd"] * v["exit_area_z"][None, :]
                 + v["exit_area_age_sd"] * v["exit_area_age_z"])
    trend, cv_new, cv_stock = v["escalation_trend"], v["new_plans_cv"], v["ehcp_cv"]
    want = manual_loglik(t, prior, log_theta, trend, log_kappa, cv_new, cv_stock)
    got = model.compile_fn(model.logp(vars=model.observed_RVs), inputs=model.value_vars,
                           on_unused_input="ignore")(point)
    assert float(got) == pytest.approx(want, rel=1e-9)


def test_issue_matrix():
    b = issue_matrix(0.5)
    np.testing.assert_allclose(b.sum(axis=1), 1.0)
    assert b[0].tolist() == [1.0, 0, 0, 0, 0]  # age 0 cannot be recorded younger
    assert b[11].tolist() == [0, 0.5, 0.5, 0, 0]  # census age 11: issued at 10 or 11
    assert b[12].tolist() == [0, 0, 1.0, 0, 0]
    np.testing.assert_array_equal(issue_matrix(0.0), band_matrix())


def test_single_area_has_no_area_effects():
    t, _, prior = synthetic_targets(n_areas=1, n_years=4, seed=0)
    names = {v.name for v in build_model(t, prior).free_RVs}
    assert not any("area" in n for n in names)
    assert {"esc_mu", "escalation_trend_mu", "exit_age"} <= names


def test_prior_from_config(toy_config):
    p = PriorConfig.from_model(toy_config.model)
    # toy: specialist leaving 0.01 (0-18), de-escalation 0.04 + 0.01
    assert p.exit_specialist[10] == pytest.approx(1 - 0.99 * 0.95)
    assert p.esc_targeted[3] == pytest.approx(0.08) and p.esc_targeted_plus[3] == 0.15
    with pytest.raises(ValueError, match="likelihood"):
        t, _, prior = synthetic_targets(n_areas=1, n_years=3, seed=0)
        import dataclasses
        build_model(t, dataclasses.replace(prior, likelihood="gaussian"))
