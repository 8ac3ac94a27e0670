"""The PyMC model's likelihood against a direct NumPy/SciPy evaluation of the equations."""

import numpy as np
import pytest
from scipy import stats

from simsend.calibration.model import (
    N_BINS,
    PriorConfig,
    age_shape_basis,
    build_model,
    issue_bin_matrix,
    issue_matrix,
)
from simsend.calibration.synthetic import synthetic_targets
from simsend.dims import band_matrix, band_of_age


@pytest.fixture(scope="module")
def problem():
    t, truth, prior = synthetic_targets(n_areas=2, n_years=5, seed=5)
    t = t.copy()
    t["new_plans"][2, 1, 0] = np.nan  # one unrecorded cell: modelled in the stock equation
    return t, prior


def manual_loglik(t, prior, log_theta, trend, log_kappa, cv_new, cv_stock, walk=None,
                  propagate=False, out=None, phi=None, exit_walk=None, delta=None):
    """Direct evaluation of the stock-and-flow likelihood (module docstring equations).

    ``trend`` is per age group (G,) or per age group and area (G, R); ``walk`` (T, R) the
    random walk of log escalation by transition year.  ``propagate``: the within-band age
    profile is carried from census to census (survivors aged on plus new plans by census
    age), the last one stored in ``out["share"]``.  ``phi``: the trend is damped, the log
    rate moving by ``trend * sum_{j<k} phi^j`` in transition year ``k`` (centred).
    ``exit_walk`` (T, G): added to the log exit hazard in each transition year.
    ``delta`` (26,): escalation's log age effect; with it, a year and area whose new plans by
    single age at issue (``t["new_plans_age"]``, 3-19) are all recorded enter by single age
    (bins 0-2, 3, ..., 19, 20-25; 0-2 = the under-5 band less ages 3 and 4) instead of by band.
    """
    m, band = band_matrix(), band_of_age()
    s = t.attrs["targeted_plus_share"]
    nf = t["need_factor"].values
    e_cfg = nf * ((1 - s) * prior.esc_targeted + s * prior.esc_targeted_plus)[:, None]
    years = t.year.values
    tc = years[1:].mean()
    steps = np.arange(len(years) - 1)  # transition years since the first
    if phi is None:
        dts = years[1:] - tc
    else:
        cum = np.array([sum(phi ** j for j in range(k)) for k in steps])
        dts = cum - cum.mean()
    ehcp = t["ehcp"].values
    share = t["ehcp_age_share"].values
    h = -np.log(1 - prior.exit_specialist)
    ll = 0.0
    for i in range(1, len(years)):
        w = 0.0 if walk is None else walk[i - 1][None, :]
        tr = trend if np.ndim(trend) == 2 else np.reshape(trend, (-1, 1))
        theta = np.exp(log_theta + tr * dts[i - 1] + w)  # (G, R)
        x = t["exposure"].values[i]  # (26, R)
        fx = np.zeros(26) if delta is None else np.exp(delta) - 1.0
        esc = theta[band] * (1.0 + fx)[:, None] * x * e_cfg  # escalations by census age
        mu_new = m.T @ esc
        # recorded by age at issue: half of each census age one year younger
        younger = np.vstack([esc[1:], np.zeros((1, esc.shape[1]))])
        rec_age = 0.5 * esc + 0.5 * younger
        rec_age[0] += 0.5 * esc[0]
        mu_rec = m.T @ rec_age
        obs_new = t["new_plans"].values[i]
        ok = np.isfinite(obs_new)
        use_band = ok.copy()
        if delta is not None:
            single = t["new_plans_age"].values[i]  # (26, R)
            for r in range(single.shape[1]):
                bins = np.r_[obs_new[0, r] - single[3:5, r].sum(), single[3:20, r],
                             obs_new[4, r]]
                if not (np.isfinite(bins).all() and (bins >= 0).all()):
                    continue
                use_band[:, r] = False
                mu_b = np.r_[rec_age[:3, r].sum(), rec_age[3:20, r], rec_age[20:, r].sum()]
                cv_b = cv_new[band[np.r_[2, np.arange(3, 20), 20]]]
                a = 1 / cv_b ** 2
                ll += stats.nbinom.logpmf(bins, a, a / (a + mu_b + 1e-9)).sum()
        alpha = np.broadcast_to(1 / cv_new[:, None] ** 2, mu_rec.shape)[use_band]
        ll += stats.nbinom.logpmf(obs_new[use_band], alpha,
                                  alpha / (alpha + mu_rec[use_band])).sum()
        prev = ehcp[i - 1][band] * share  # (26, R) by single age
        aged = np.zeros_like(prev)
        aged[1:] = prev[:-1]
        lk = log_kappa if exit_walk is None else log_kappa + exit_walk[i - 1][:, None]
        kept = aged * np.exp(-np.exp(lk)[band] * h[:, None])
        surv = m.T @ kept
        mu_s = surv + np.where(ok, obs_new * mu_new / mu_rec, mu_new)
        if propagate:  # next census's profile: survivors plus new plans by census age
            width = m.sum(axis=0)[band][:, None]
            new_band = np.where(ok, obs_new * (mu_new + 1e-9) / (mu_rec + 1e-9), mu_new)
            stock_age = kept + new_band[band] * (esc + 1e-9) / (mu_new[band] + 1e-9 * width)
            share = (stock_age + 1e-6) / ((m.T @ stock_age)[band] + 1e-6 * width)
        sd = np.sqrt(mu_s + 1 + (cv_stock[:, None] * mu_s) ** 2)
        ll += stats.norm.logpdf(ehcp[i], mu_s, sd).sum()
    if out is not None:
        out["share"] = share
    return ll


def manual_common(sd: float, z: np.ndarray) -> np.ndarray:
    """The walk common to the areas by transition year: 0, then the running sum of sd z."""
    return np.concatenate([[0.0], np.cumsum(sd * z)])


@pytest.mark.parametrize(("propagate", "damped", "exit_walk", "common"),
                         [(False, False, False, False), (True, True, False, False),
                          (True, True, True, False), (True, True, False, True)])
def test_loglik_matches_manual(problem, propagate, damped, exit_walk, common):
    import dataclasses

    t, prior = problem
    prior = dataclasses.replace(prior, propagate_ages=propagate,
                                damping_prior=(4.0, 1.0) if damped else None,
                                exit_walk_sd=0.15 if exit_walk else 0.0,
                                common_trend_sd=0.05 if common else 0.0)
    model = build_model(t, prior)
    assert model.named_vars_to_dims["escalation_multiplier"] == ("age_group", "area")
    assert len(model.coords["obs_new"]) == 4 * 5 * 2 - 1
    rng = np.random.default_rng(1)
    point = model.initial_point()
    for k in point:
        point[k] = point[k] + rng.normal(0, 0.1, size=np.shape(point[k]))
    # Untransformed values of the free variables at this point.
    names = ["esc_age", "esc_area_sd", "esc_area_z", "esc_area_age_sd", "esc_area_age_z",
             "escalation_trend_area", "escalation_walk", "escalation_noise_sd",
             "escalation_noise_z", "exit_age", "exit_area_sd",
             "exit_area_z", "exit_area_age_sd", "exit_area_age_z", "new_plans_cv", "ehcp_cv",
             *(["escalation_damping"] if damped else []),
             *(["exit_walk", "exit_multiplier"] if exit_walk else []),
             *(["escalation_common_sd", "escalation_common_z", "escalation_common",
                "escalation_multiplier"] if common else [])]
    fn = model.compile_fn(model.replace_rvs_by_values([model[n] for n in names]),
                          inputs=model.value_vars, on_unused_input="ignore")
    v = dict(zip(names, fn(point), strict=True))
    log_theta = (v["esc_age"][:, None] + v["esc_area_sd"] * v["esc_area_z"][None, :]
                 + v["esc_area_age_sd"] * v["esc_area_age_z"])
    log_kappa = (v["exit_age"][:, None]
                 + v["exit_area_sd"] * v["exit_area_z"][None, :]
                 + v["exit_area_age_sd"] * v["exit_area_age_z"])
    trend, cv_new, cv_stock = v["escalation_trend_area"], v["new_plans_cv"], v["ehcp_cv"]
    walk = v["escalation_walk"] + v["escalation_noise_sd"] * v["escalation_noise_z"]
    if common:
        g = manual_common(float(v["escalation_common_sd"]), v["escalation_common_z"])
        assert g[0] == 0 and np.all(g[1:] != 0) and len(g) == len(t.year) - 1
        np.testing.assert_allclose(v["escalation_common"], g, rtol=1e-9, atol=1e-15)
        walk = walk + g[:, None]
    # the walk starts at 0 and moves (the random point perturbs its innovations)
    assert np.all(v["escalation_walk"][0] == 0) and np.all(v["escalation_walk"][1:] != 0)
    assert np.ptp(trend, axis=1).min() > 0  # areas' trends differ
    out = {}
    want = manual_loglik(t, prior, log_theta, trend, log_kappa, cv_new, cv_stock, walk,
                         propagate=propagate, out=out,
                         phi=float(v["escalation_damping"]) if damped else None,
                         exit_walk=v["exit_walk"] if exit_walk else None)
    got = model.compile_fn(model.logp(vars=model.observed_RVs), inputs=model.value_vars,
                           on_unused_input="ignore")(point)
    assert float(got) == pytest.approx(want, rel=1e-9)
    if common:
        # the multiplier handed to the engine carries the common change's last fitted value
        phi = float(v["escalation_damping"])
        ref = sum(phi ** j for j in range(len(t.year) - 1))
        cum = np.array([sum(phi ** j for j in range(k)) for k in range(len(t.year) - 1)])
        ref -= cum.mean()
        np.testing.assert_allclose(v["escalation_multiplier"],
                                   np.exp(log_theta + trend * ref + v["escalation_walk"][-1]
                                          + g[-1]), rtol=1e-9)
    if exit_walk:
        # the walk starts at 0 and moves; the engine gets the last fitted year's hazard
        assert np.all(v["exit_walk"][0] == 0) and np.all(v["exit_walk"][1:] != 0)
        np.testing.assert_allclose(v["exit_multiplier"],
                                   np.exp(log_kappa + v["exit_walk"][-1][:, None]), rtol=1e-9)
    if damped:
        # the step handed to the engine: the trend damped up to the first year after the data
        n_steps = len(t.year) - 1
        ref = model.compile_fn(model.replace_rvs_by_values([model["escalation_trend_ref"]])[0],
                               inputs=model.value_vars, on_unused_input="ignore")(point)
        phi = float(v["escalation_damping"])
        assert 0.05 < abs(phi - 1.0)
        np.testing.assert_allclose(ref, trend * phi ** n_steps, rtol=1e-9)
    if propagate:
        # the profile of the last census handed to the engine, bands summing to 1
        share = model.compile_fn(model.replace_rvs_by_values([model["ehcp_age_share"]])[0],
                                 inputs=model.value_vars, on_unused_input="ignore")(point)
        np.testing.assert_allclose(share, out["share"], rtol=1e-9)
        np.testing.assert_allclose(band_matrix().T @ share, 1.0, rtol=1e-12)
        assert np.abs(share - t["ehcp_age_share"].values).max() > 1e-3  # it moved


def test_issue_matrix():
    b = issue_matrix(0.5)
    np.testing.assert_allclose(b.sum(axis=1), 1.0)
    assert b[0].tolist() == [1.0, 0, 0, 0, 0]  # age 0 cannot be recorded younger
    assert b[11].tolist() == [0, 0.5, 0.5, 0, 0]  # census age 11: issued at 10 or 11
    assert b[12].tolist() == [0, 0, 1.0, 0, 0]
    np.testing.assert_array_equal(issue_matrix(0.0), band_matrix())


def test_single_area_has_no_area_effects():
    import dataclasses

    t, _, prior = synthetic_targets(n_areas=1, n_years=4, seed=0)
    names = {v.name for v in build_model(t, dataclasses.replace(
        prior, common_trend_sd=0.05)).free_RVs}
    assert not any("area" in n or "common" in n for n in names)
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


@pytest.mark.parametrize(("damped", "common", "drift", "from_age"),
                         [(False, False, False, 0), (True, False, False, 0),
                          (True, True, False, 0), (True, True, True, 0), (True, True, True, 4)])
def test_identification_model_loglik_matches_manual(damped, common, drift, from_age):
    """The SEN support stage against a direct NumPy/SciPy evaluation of its equation; damped:
    the trend moves log identification by ``trend * sum_{j<k} rho^j`` (centred); drift: by
    ``d`` a year more from the first transition year; from_age: ages below it identified at
    the config's rate, unscaled."""
    import dataclasses

    from simsend.calibration.model import build_identification_model
    from simsend.calibration.targets import make_targets

    t, _, prior = synthetic_targets(n_areas=2, n_years=5, seed=3)
    rng = np.random.default_rng(0)
    ss = rng.uniform(7000, 9000, (5, 2))
    ss[2, 1] = np.nan  # unrecorded: drops transitions 2 and 3 of area 1
    uni = rng.uniform(1000, 5000, (5, 26, 2))
    t2 = make_targets(t["ehcp"].values, t["new_plans"].values, t["exposure"].values,
                      t["ehcp_age_share"].values, t["need_factor"].values[:, 0],
                      t["year"].values, list(t["area"].values), 0.25,
                      sen_support=ss, universal=uni)
    iota = np.linspace(0.001, 0.03, 26)
    u = np.full(26, 0.08)
    prior = dataclasses.replace(prior, identification=iota, deidentify=u,
                                deescalate_share=np.full(26, 0.3),
                                damping_prior=(4.0, 1.0) if damped else None,
                                common_trend_sd=0.05 if common else 0.0,
                                id_drift_sd=0.05 if drift else 0.0,
                                identification_from_age=from_age)
    esc = rng.uniform(100, 200, (4, 2))
    down = rng.uniform(5, 20, (4, 2))
    model = build_identification_model(t2, prior, esc, down)
    assert len(model.coords["obs_sen_support"]) == 8 - 2
    point = model.initial_point()
    for k in point:
        point[k] = point[k] + rng.normal(0, 0.1, size=np.shape(point[k]))
    names = ["identification_mu", "identification_area_sd", "identification_area_z",
             "identification_trend_area", "identification_innovation_sd",
             "identification_innovation_z", "sen_support_cv",
             *(["identification_damping"] if damped else []),
             *(["identification_common_sd", "identification_common_z",
                "identification_multiplier"] if common else []),
             *(["identification_drift"] if drift else [])]
    fn = model.compile_fn(model.replace_rvs_by_values([model[n] for n in names]),
                          inputs=model.value_vars, on_unused_input="ignore")
    v = dict(zip(names, fn(point), strict=True))
    years = t2.year.values
    dt = years[1:] - years[1:].mean()
    if damped:
        rho = float(v["identification_damping"])
        assert abs(rho - 1.0) > 0.05
        cum = np.array([sum(rho ** j for j in range(k)) for k in range(len(years) - 1)])
        dt = cum - cum.mean()
        ref = model.compile_fn(
            model.replace_rvs_by_values([model["identification_trend_ref"]])[0],
            inputs=model.value_vars, on_unused_input="ignore")(point)
        np.testing.assert_allclose(ref, v["identification_trend_area"] * rho ** (len(years) - 1),
                                   rtol=1e-9)
    walk = np.vstack([np.zeros((1, 2)),
                      np.cumsum(v["identification_innovation_sd"]
                                * v["identification_innovation_z"], axis=0)])
    log_phi = (v["identification_mu"] + v["identification_area_sd"]
               * v["identification_area_z"])[None] \
        + v["identification_trend_area"][None] * dt[:, None] + walk
    d = float(v["identification_drift"]) if drift else 0.0
    if drift:
        assert d != 0.0
        log_phi = log_phi + d * (years[1:] - years[1])[:, None]
    else:
        assert "identification_drift" not in model.named_vars
    if common:
        g = manual_common(float(v["identification_common_sd"]), v["identification_common_z"])
        assert g[0] == 0 and np.all(g[1:] != 0)
        log_phi = log_phi + g[:, None]
        # the multiplier handed to the engine: the common change's last fitted value in it
        level = v["identification_mu"] + v["identification_area_sd"] * v["identification_area_z"]
        ref_t = sum(rho ** j for j in range(len(years) - 1)) - cum.mean()
        np.testing.assert_allclose(v["identification_multiplier"],
                                   np.exp(level + v["identification_trend_area"] * ref_t
                                          + walk[-1] + g[-1]
                                          + d * (years[-1] + 1 - years[1])), rtol=1e-9)
    x = t2["exposure"].values[1:]  # (T, 26, R)
    young = np.arange(26) < from_age
    mu = ((x * (1 - u)[None, :, None]).sum(1) - esc
          + np.exp(log_phi) * (uni[1:, ~young] * iota[None, ~young, None]).sum(1)
          + (uni[1:, young] * iota[None, young, None]).sum(1) + down)
    mu = 10 * np.logaddexp(0.0, mu / 10) + 1
    ok = np.isfinite(ss[1:]) & np.isfinite(ss[:-1])
    sd = np.sqrt(mu + (v["sen_support_cv"] * mu) ** 2)
    want = stats.norm.logpdf(ss[1:][ok], mu[ok], sd[ok]).sum()
    got = model.compile_fn(model.logp(vars=model.observed_RVs), inputs=model.value_vars,
                           on_unused_input="ignore")(point)
    assert float(got) == pytest.approx(want, rel=1e-9)


def _at_random_point(model, names, rng):
    """A perturbed initial point of ``model`` and the values of ``names`` at it."""
    point = model.initial_point()
    for k in point:
        point[k] = point[k] + rng.normal(0, 0.1, size=np.shape(point[k]))
    fn = model.compile_fn(model.replace_rvs_by_values([model[n] for n in names]),
                          inputs=model.value_vars, on_unused_input="ignore")
    return point, fn(point)


def test_exits_loglik_matches_manual(problem):
    """Plans ending: NegBin around the exit hazard on the aged stock plus plans past 25.

    Only person-level years (calendar 2022 on, census 2023 on) enter: here the synthetic
    census years are moved to 2020-2024, so censuses 2023 and 2024 count.
    """
    t, prior = problem
    t = t.assign_coords(year=t.year.values + 2)
    rng = np.random.default_rng(4)
    ex = rng.integers(20, 200, size=(t.sizes["year"], t.sizes["area"])).astype(float)
    ex[0] = np.nan
    ex[-1, 1] = np.nan  # unrecorded: left out
    t["exits"] = (("year", "area"), ex)
    t["needs_met"] = (("year", "area"), np.floor(ex / 10))
    model = build_model(t, prior)
    assert len(model.coords["obs_exits"]) == 3  # 2023 x 2 areas, 2024 x 1
    point, (kappa, cv) = _at_random_point(model, ["exit_multiplier", "exits_cv"], rng)
    band = band_of_age()
    h = -np.log(1 - prior.exit_specialist)
    ehcp, share = t["ehcp"].values, t["ehcp_age_share"].values
    want = 0.0
    for i, year in enumerate(t.year.values):
        if year < 2023:
            continue
        for r in range(2):
            if not np.isfinite(ex[i, r]):
                continue
            prev = ehcp[i - 1][band, r] * share[:, r]
            aged = np.concatenate([[0.0], prev[:-1]])
            mu = (aged * (1 - np.exp(-kappa[band, r] * h))).sum() + prev[-1] + 1e-9
            a = 1 / cv ** 2
            want += stats.nbinom.logpmf(ex[i, r], a, a / (a + mu))
    got = model.compile_fn(model.logp(vars=[model["exits"]]), inputs=model.value_vars,
                           on_unused_input="ignore")(point)
    assert float(got) == pytest.approx(want, rel=1e-9)


def test_exits_by_age_band_replace_the_total_where_every_band_is_recorded(problem):
    """By age band at ending (issue matrix, past-25 in 20-25); the total only elsewhere."""
    t, prior = problem
    t = t.assign_coords(year=t.year.values + 2)  # censuses 2023 and 2024 person-level
    rng = np.random.default_rng(6)
    n_y = t.sizes["year"]
    eg = rng.integers(5, 100, size=(n_y, 5, 2)).astype(float)
    eg[:-1] = np.nan  # by age only at census 2024
    eg[-1, 2, 1] = np.nan  # area 1 misses a band: its total counts instead
    ex = np.nansum(eg, axis=1) + 0.0
    ex[:-1] = rng.integers(100, 300, size=(n_y - 1, 2))
    ex[0] = np.nan
    t["exits"] = (("year", "area"), ex)
    t["needs_met"] = (("year", "area"), np.floor(ex / 10))
    t["exits_age"] = (("year", "age_group", "area"), eg)
    model = build_model(t, prior)
    assert len(model.coords["obs_exits_age"]) == 5  # census 2024, area 0
    assert len(model.coords["obs_exits"]) == 3  # 2023 x 2 areas, 2024 area 1
    point, (kappa, cv) = _at_random_point(model, ["exit_multiplier", "exits_age_cv"], rng)
    band = band_of_age()
    h = -np.log(1 - prior.exit_specialist)
    i = n_y - 1
    prev = t["ehcp"].values[i - 1][band, 0] * t["ehcp_age_share"].values[:, 0]
    aged = np.concatenate([[0.0], prev[:-1]])
    ended = aged * (1 - np.exp(-kappa[band, 0] * h))  # by census age
    mu = issue_matrix(0.5).T @ ended
    mu[-1] += prev[-1]
    mu += 1e-9
    a = 1 / cv ** 2
    want = stats.nbinom.logpmf(eg[i, :, 0], a, a / (a + mu)).sum()
    got = model.compile_fn(model.logp(vars=[model["exits_age"]]), inputs=model.value_vars,
                           on_unused_input="ignore")(point)
    assert float(got) == pytest.approx(want, rel=1e-9)


def test_estimated_issue_lag_gives_the_fixed_lags_likelihood(problem):
    """With the lag estimated, the likelihood at a point equals the fixed-lag model's at it."""
    import dataclasses

    t, prior = problem
    est = build_model(t, dataclasses.replace(prior, estimate_issue_lag=True))
    point = est.initial_point()
    point["issue_age_lag_logodds__"] = np.array(-0.7)
    point["issue_age_lead_share_logodds__"] = np.array(0.4)
    lag = float(1 / (1 + np.exp(0.7)))
    lead = (1 - lag) / (1 + np.exp(-0.4))
    fixed = build_model(t, dataclasses.replace(prior, issue_age_lag=lag, issue_age_lead=lead))
    fixed_point = {k: v for k, v in point.items() if not k.startswith("issue_age_lead")
                   and not k.startswith("issue_age_lag")}
    got = est.compile_fn(est.logp(vars=est.observed_RVs), inputs=est.value_vars,
                         on_unused_input="ignore")(point)
    want = fixed.compile_fn(fixed.logp(vars=fixed.observed_RVs), inputs=fixed.value_vars,
                            on_unused_input="ignore")(fixed_point)
    assert float(got) == pytest.approx(float(want), rel=1e-10)
    # and the lag matters: the model with the lag fixed at 0.5 differs at the same point
    half = build_model(t, dataclasses.replace(prior, issue_age_lag=0.5))
    other = half.compile_fn(half.logp(vars=half.observed_RVs), inputs=half.value_vars,
                            on_unused_input="ignore")(fixed_point)
    assert abs(float(other) - float(want)) > 1e-3


def test_issue_bins_sum_to_the_issue_matrix():
    """Single-age bins summed over each band's bins give the banded issue matrix."""
    band_of_bin = band_of_age()[np.r_[2, np.arange(3, 20), 20]]
    to_band = np.eye(5)[band_of_bin]  # (N_BINS, 5)
    for lag, lead in ((0.0, 0.0), (0.3, 0.0), (1.0, 0.0), (0.2, 0.1), (0.0, 1.0)):
        k = issue_bin_matrix(lag, lead)
        assert k.shape == (26, N_BINS)
        np.testing.assert_allclose(k.sum(axis=1), 1.0)
        np.testing.assert_allclose(k @ to_band, issue_matrix(lag, lead), atol=1e-15)
    # a census-age-4 child issued a plan at 5 (the lead) is recorded in the 5-10 band
    assert issue_matrix(0.0, 1.0)[4].tolist() == [0, 1.0, 0, 0, 0]
    assert issue_bin_matrix(0.0, 1.0)[4, 3] == 1.0 and issue_bin_matrix(0.0, 1.0)[25, -1] == 1
    k = issue_bin_matrix(0.5)
    assert k[3, :3].tolist() == [0.5, 0.5, 0.0]  # census age 3: issued at 2 (bin 0-2) or 3
    assert k[21, -1] == 1.0 and k[20, -2:].tolist() == [0.5, 0.5]  # 19 or 20-25


def test_age_shape_basis():
    """A walk over ages 3-19, centred within the bands it fills; 0-2 pins under 5."""
    p = age_shape_basis()
    assert not p[:3].any() and not p[20:].any()
    for lo, hi in ((5, 11), (11, 16), (16, 20)):
        np.testing.assert_allclose(p[lo:hi].sum(axis=0), 0.0, atol=1e-12)
        # within a band, the step from one age to the next is that age's own innovation
        np.testing.assert_allclose(np.diff(p[lo:hi], axis=0),
                                   np.eye(17)[lo - 3 + 1:hi - 3], atol=1e-12)
    np.testing.assert_array_equal(p[3:5, :2], [[1, 0], [1, 1]])  # from 0 at age 2
    assert np.linalg.matrix_rank(p) == 17 - 3


def test_single_ages_loglik_matches_manual(problem):
    """New plans by single age replace the bands where every bin is recorded."""
    import dataclasses

    t, prior = problem
    t = t.copy()
    rng = np.random.default_rng(8)
    n_y = t.sizes["year"]
    single = np.full((n_y, 26, 2), np.nan)
    # the last two years for area 0; the last year for area 1 misses age 12: bands there
    single[-2:, 3:20, :] = rng.integers(0, 40, size=(2, 17, 2))
    single[-1, 12, 1] = np.nan
    band = band_of_age()
    new = t["new_plans"].values.copy()
    for i in (n_y - 2, n_y - 1):
        for g in (1, 2, 3):  # bands filled by single ages are their sums
            new[i, g] = np.nansum(single[i][band == g], axis=0)
        new[i, 0] = single[i, 3] + single[i, 4] + 7  # 7 plans at 0-2
    t["new_plans"] = (t["new_plans"].dims, new)
    t["new_plans_age"] = (("year", "age", "area"), single)
    model = build_model(t, dataclasses.replace(prior, age_shape_sd=1.0))
    # area 0: 2 years x 19 bins; area 1: 1 year (the other misses an age)
    assert len(model.coords["obs_new_age"]) == 3 * N_BINS
    assert len(model.coords["obs_new"]) == 4 * 5 * 2 - 1 - 3 * 5
    point, vals = _at_random_point(model, [
        "esc_age", "esc_area_sd", "esc_area_z", "esc_area_age_sd", "esc_area_age_z",
        "escalation_trend_area", "escalation_walk", "escalation_noise_sd",
        "escalation_noise_z", "exit_age", "exit_area_sd", "exit_area_z", "exit_area_age_sd",
        "exit_area_age_z", "new_plans_cv", "ehcp_cv", "escalation_age_effect"], rng)
    (esc_age, a_sd, a_z, aa_sd, aa_z, trend, walk, n_sd, n_z, x_age, x_sd, x_z, xa_sd, xa_z,
     cv_new, cv_stock, delta) = vals
    assert np.abs(delta[3:20]).min() > 0 and not delta[:3].any()
    want = manual_loglik(
        t, prior, esc_age[:, None] + a_sd * a_z[None, :] + aa_sd * aa_z, trend,
        x_age[:, None] + x_sd * x_z[None, :] + xa_sd * xa_z, cv_new, cv_stock,
        walk + n_sd * n_z, delta=delta)
    got = model.compile_fn(model.logp(vars=model.observed_RVs), inputs=model.value_vars,
                           on_unused_input="ignore")(point)
    assert float(got) == pytest.approx(want, rel=1e-9)
    # without single ages in the targets, no age effect is fitted
    plain = build_model(t.drop_vars("new_plans_age"), dataclasses.replace(prior,
                                                                          age_shape_sd=1.0))
    assert "escalation_age_effect" not in plain.named_vars
