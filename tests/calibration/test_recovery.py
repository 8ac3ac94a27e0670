"""Parameter recovery: calibrate on synthetic data simulated from known rates."""

import dataclasses

import numpy as np
import pytest
import xarray as xr

from simsend.calibration import calibrate
from simsend.calibration.model import PriorConfig
from simsend.calibration.synthetic import EngineTruth, engine_targets, synthetic_targets
from simsend.testing import toy_baseline

PARAMS = ("escalation_multiplier", "escalation_trend", "exit_multiplier")


def interval_hits(post: xr.Dataset, truth: dict, level: float, names=PARAMS) -> np.ndarray:
    """Whether each true value lies in its central posterior interval (flat bool array)."""
    hits = []
    for name in names:
        s = post[name].stack(sample=("chain", "draw"))
        lo = s.quantile((1 - level) / 2, "sample").values
        hi = s.quantile((1 + level) / 2, "sample").values
        true = np.broadcast_to(np.asarray(truth[name]), np.shape(lo))  # a common trend: every group
        hits.append(np.ravel((true >= lo) & (true <= hi)))
    return np.concatenate(hits)


def test_known_rates_recovered(synthetic_fit):
    path, _, truth, _ = synthetic_fit
    post = xr.open_dataset(path, group="posterior", engine="h5netcdf").load()
    assert post.attrs["diagnostics_passed"] == 1
    # 15 scalar parameters (multiplier, trend and exit multiplier of 5 age groups).  Each true
    # value should sit inside its 90% interval about 90% of the time, so require at least 11
    # of 15 (P(fewer) < 2% for a calibrated posterior), and every value inside its 99.5%
    # interval.
    hits90 = interval_hits(post, truth, 0.90)
    assert hits90.size == 15
    assert hits90.sum() >= 11, hits90
    assert interval_hits(post, truth, 0.995).all()
    # Bands 0-15 (50-165 new plans a year) pin their multipliers to within 15%; the 16-25
    # bands (2-18 a year) are weakly informed and shrunk towards the common mean.
    est = post["escalation_multiplier"].mean(("chain", "draw")).values
    np.testing.assert_allclose(est[:3], truth["escalation_multiplier"][:3], rtol=0.15)


def test_wrong_truth_is_not_covered(synthetic_fit):
    """The interval check has power: 30% higher multipliers and a flat trend are excluded."""
    path, _, truth, _ = synthetic_fit
    post = xr.open_dataset(path, group="posterior", engine="h5netcdf").load()
    wrong = {**truth, "escalation_multiplier": truth["escalation_multiplier"] * 1.3}
    hits = interval_hits(post, wrong, 0.995)
    # Bands 0-15 are informed by hundreds of new plans a year; the 16-25 bands (a few dozen)
    # are too weakly informed to exclude a 30% error.
    assert not hits[[0, 1, 2]].any(), hits[:5]
    # No rising demand (trend 0) is implausible for the 0-15 bands: P(trend > 0) > 0.95.
    trend = post["escalation_trend"].stack(sample=("chain", "draw"))
    p_rising = (trend > 0).mean("sample").values
    assert (p_rising[:3] > 0.95).all(), p_rising


@pytest.mark.slow
def test_interval_coverage_over_repeated_seeds(tmp_path, calib_config):
    """Coverage of 90% intervals over 8 synthetic data sets with 3 areas (pooled model).

    8 data sets x 35 scalar parameters (3 areas x 5 groups of multipliers and of exit
    multipliers, 5 trends); the true values are fixed (not drawn from the
    prior), so coverage is close to, not exactly, nominal.  Require 80%-97%.
    """
    hits, passed = [], 0
    for seed in range(8):  # 12 until the walk made each fit slower (CI time)
        t, truth, prior = synthetic_targets(n_areas=3, n_years=8, seed=100 + seed)
        # The truth has no walk; the walk's own recovery is the next test (with the walk
        # each fit took ~48 s against ~37 s without, on the 2-core machine).
        prior = dataclasses.replace(prior, random_walk=False, year_noise_sd=0.0)
        # 300 draws after 300 tuning steps at target acceptance 0.9 (CI time): coverage
        # 0.925, where 500 draws at 0.9 gave 0.900 in twice the time
        path = calibrate(calib_config, tmp_path / f"s{seed}.nc", draws=300, tune=300,
                         chains=2, targets=t, prior=prior, random_seed=seed,
                         allow_failed_diagnostics=True, target_accept=0.9)
        post = xr.open_dataset(path, group="posterior", engine="h5netcdf").load()
        passed += post.attrs["diagnostics_passed"]
        hits.append(interval_hits(post, truth, 0.90))
    cov = np.concatenate(hits).mean()
    print(f"90% interval coverage {cov:.3f}; {passed}/8 fits passed the diagnostics gate")
    assert 0.80 <= cov <= 0.97, cov


@pytest.mark.slow
def test_area_trends_and_innovation_scale_recovered(tmp_path, calib_config):
    """Eight areas, each with its own trend and a random walk in escalation (sd 0.1).

    The estimated innovation sd, areas' trends and multipliers (the walk's last value
    included) hold their true values in their 90% intervals at about the nominal rate, and
    a walk-free truth (sd 0) is excluded.
    """
    t, truth, prior = synthetic_targets(n_areas=8, n_years=10, seed=21, innovation_sd=0.1,
                                        area_trend_sd=0.03)
    path = calibrate(calib_config, tmp_path / "walk.nc", draws=500, tune=500, chains=2,
                     targets=t, prior=prior, random_seed=3, allow_failed_diagnostics=True,
                     target_accept=0.9)
    post = xr.open_dataset(path, group="posterior", engine="h5netcdf").load()
    sd = post["escalation_innovation_sd"].stack(sample=("chain", "draw")).values
    lo, hi = np.quantile(sd, [0.05, 0.95])
    print(f"innovation sd 90% interval {lo:.3f}-{hi:.3f} (true 0.1); "
          f"max r-hat {post.attrs['max_rhat']:.3f}")
    assert lo <= 0.1 <= hi
    assert lo > 0.02  # the data say there is a walk
    names = ("escalation_multiplier", "escalation_trend_area")
    hits = np.concatenate([interval_hits(post, truth, 0.90, (n,))
                           for n in names])
    print(f"90% coverage of {hits.size} multipliers and trends: {hits.mean():.2f}")
    assert hits.mean() >= 0.75, hits.mean()


@pytest.fixture(scope="module")
def engine_fit(tmp_path_factory, calib_config):
    """Calibration on data simulated by the engine itself: 8 councils, 10 censuses.

    The engine runs the config's rates with known escalation multipliers by age group and
    council, a trend per council damped by 0.8 a year (the damping prior's mean), a random
    walk of sd 0.1 per council, a walk of sd 0.05 common to the councils and a transient shock
    of sd 0.05 per council and year (the kinds of change the model tells apart;
    :func:`engine_targets`); the calibration sees
    only banded stocks and new plans.  Sampled at target acceptance 0.9 (the backtest's;
    0.99 took three times as long here).
    Returns ``(posterior, truth)``.
    """
    rng = np.random.default_rng(3)
    area = rng.normal(0.0, 0.2, 8)
    dev = rng.normal(0.0, 0.02, 8)
    # under 5 low enough that no escalation row reaches 1 (engine_targets refuses a cap)
    theta = np.exp(np.array([-0.5, 0.1, 0.0, 0.2, 0.0])[:, None] + area[None])
    baseline = toy_baseline(n_areas=8, scale=1000, seed=4)
    known = EngineTruth(trend=0.03 + dev - dev.mean(), damping=0.8, innovation_sd=0.1,
                        noise_sd=0.05, common_sd=0.05)
    t, truth = engine_targets(calib_config.model, theta, baseline, known, seed=4)
    # the engine counts new plans by census age: SEN2's issue-age lag is 0 here
    prior = PriorConfig.from_model(calib_config.model, issue_age_lag=0.0,
                                   estimate_issue_lag=False, targeted_plus_share=0.25)
    path = calibrate(calib_config, tmp_path_factory.mktemp("engine") / "engine.nc", draws=400,
                     tune=400, chains=2, targets=t, prior=prior, random_seed=5,
                     allow_failed_diagnostics=True, target_accept=0.9)
    return xr.open_dataset(path, group="posterior", engine="h5netcdf").load(), truth


def _innovation_interval(post):
    sd = post["escalation_innovation_sd"].stack(sample=("chain", "draw")).values
    return np.quantile(sd, [0.05, 0.95])


@pytest.mark.slow
def test_engine_simulated_council_effects_recovered(engine_fit):
    """Councils' effects, multipliers at the first year after the data (walks included), the
    transient shocks' sd and the config's exits (multiplier 1) hold their true values in their
    90% intervals at about the nominal rate; a walk-free truth is excluded."""
    post, truth = engine_fit
    st = post.stack(sample=("chain", "draw"))
    effect = (st["esc_area_sd"] * st["esc_area_z"]).transpose("area", "sample").values
    e_lo, e_hi = np.quantile(effect, [0.05, 0.95], axis=1)
    hits_area = (truth["area_effect"] >= e_lo) & (truth["area_effect"] <= e_hi)
    corr = np.corrcoef(effect.mean(axis=1), truth["area_effect"])[0, 1]
    hits = {n: interval_hits(post, truth, 0.90, (n,))
            for n in ("escalation_multiplier", "exit_multiplier")}
    lo, hi = _innovation_interval(post)
    print(f"council effects in their 90% intervals {hits_area.sum()}/8, corr {corr:.3f}; "
          + "; ".join(f"{n} {h.mean():.2f} of {h.size}" for n, h in hits.items())
          + f"; innovation sd 90% interval {lo:.3f}-{hi:.3f} (true 0.1); "
          f"max r-hat {post.attrs['max_rhat']:.3f}")
    assert hits_area.sum() >= 6, hits_area
    assert corr > 0.9
    assert hits["escalation_multiplier"].mean() >= 0.75
    assert hits["exit_multiplier"].mean() >= 0.75
    assert lo > 0.02  # the data say there is a walk
    noise = st["escalation_noise_sd"].values
    assert np.quantile(noise, 0.05) <= truth["escalation_noise_sd"] <= np.quantile(noise, 0.95)


@pytest.mark.slow
def test_engine_simulated_common_walk_scale_in_its_interval(engine_fit):
    """The walk common to the councils: its sd (true 0.05) in its 90% interval."""
    post, truth = engine_fit
    sd = post["escalation_common_sd"].stack(sample=("chain", "draw")).values
    lo, hi = np.quantile(sd, [0.05, 0.95])
    path = post["escalation_common"].mean(("chain", "draw")).values
    corr = np.corrcoef(path, truth["escalation_common"])[0, 1]
    damping = np.quantile(post["escalation_damping"].values, [0.05, 0.95])
    print(f"common walk sd 90% interval {lo:.3f}-{hi:.3f} (true 0.05); path corr {corr:.3f}; "
          f"true path {np.round(truth['escalation_common'], 3)}, fitted {np.round(path, 3)}; "
          f"damping 90% interval {damping.round(3)} (true 0.8)")
    assert lo <= 0.05 <= hi


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known shortfall: the common walk's path is not told "
                   "apart from the common trend and its damping (posterior mean path against "
                   "the true one: correlation -0.03 over 9 years; its sd 0.002-0.059 against a "
                   "true 0.05, held but mostly near 0), nor is the damping (90% interval "
                   "0.26-0.80, true 0.8 just outside): 8 councils' shared movement over 9 "
                   "years is one series, which a damped trend and a walk both fit")
def test_engine_simulated_common_path_and_damping_recovered(engine_fit):
    """The common walk's path follows the true one, and the damping holds its true value."""
    post, truth = engine_fit
    path = post["escalation_common"].mean(("chain", "draw")).values
    assert np.corrcoef(path, truth["escalation_common"])[0, 1] > 0.8
    assert interval_hits(post, truth, 0.90, ("escalation_damping",)).all()


# Known shortfalls, measured on this fit (strict: a fix turns them into failures to update).
@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known shortfall: on engine-simulated data the walk's "
                   "innovation sd comes out low (90% interval 0.042-0.085 against a true 0.1, "
                   "whose 64 draws had RMS 0.093; the transient shocks' sd, 0.037-0.080 "
                   "against 0.05, is held), so forecast bands err narrow")
def test_engine_simulated_innovation_scale_in_its_interval(engine_fit):
    """The walk's innovation sd holds its true value (0.1) in its 90% interval."""
    post, _ = engine_fit
    lo, hi = _innovation_interval(post)
    assert lo <= 0.1 <= hi


@pytest.mark.slow
def test_engine_simulated_council_trends_in_their_intervals(engine_fit):
    """Councils' trends hold their true values in their 90% intervals (at least 75%; 40 of
    40 here, where 15 of 40 did on the fit before a walk common to the councils entered both
    the truth and the model)."""
    post, truth = engine_fit
    hits = interval_hits(post, truth, 0.90, ("escalation_trend_area",))
    print(f"councils' trends in their 90% intervals: {hits.sum()} of {hits.size}")
    assert hits.mean() >= 0.75
