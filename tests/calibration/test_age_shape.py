"""Escalation's within-band age shape recovered from new plans by single age at issue."""

import dataclasses

import numpy as np
import pytest

from simsend.calibration.fit import sample
from simsend.calibration.model import age_shape_basis, build_model
from simsend.calibration.synthetic import simulate_stock_flow, synthetic_targets

pytest.importorskip("nutpie")


@pytest.fixture(scope="module")
def shape_fit():
    """One area, 2015-2022, single ages at issue published for the last three years (a few
    hundred to 2,000 new plans at each age a year; England records 2,000-13,000)."""
    basis = age_shape_basis()
    z = np.random.default_rng(3).normal(0.0, 1.0, basis.shape[1])
    truth = 0.45 * basis @ z  # a shape the config does not have (a walk over ages)
    _, base, prior = synthetic_targets(n_areas=1, n_years=8, seed=2)
    t = simulate_stock_flow(base["escalation_multiplier"], base["escalation_trend"],
                            base["exit_multiplier"], n_years=8, sen_support=300_000.0,
                            prior=prior, age_effect=truth, single_ages_from=2020, seed=2)
    prior = dataclasses.replace(prior, age_shape_sd=1.0)
    idata, _ = sample(build_model(t, prior), draws=500, tune=500, chains=2,
                      random_seed=11, sampler="nutpie", target_accept=0.9)
    return idata.posterior["escalation_age_effect"].stack(s=("chain", "draw")).values, truth


def test_known_age_shape_recovered(shape_fit):
    draws, truth = shape_fit  # (26, samples)
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=1)
    free = np.arange(3, 20)
    hits = (truth[free] >= lo[free]) & (truth[free] <= hi[free])
    # 17 effects (14 free dimensions): a calibrated posterior covers each about 90% of the
    # time, so at least 12 of 17 (P(fewer) < 1% for independent effects).
    assert hits.sum() >= 12, (hits, truth[free], lo[free], hi[free])
    # school ages, where SEN support (the exposure) is large, are pinned closely; ages 3-4
    # and 16-19 see a few dozen new plans a year and are looser
    school = np.arange(5, 16)
    err = np.abs(np.median(draws, axis=1) - truth)[school]
    assert err.max() < 0.2, err
    # ages recorded only in ranges keep the config's shape exactly
    assert not draws[:3].any() and not draws[20:].any()


def test_config_shape_is_excluded(shape_fit):
    """The check has power: the config's own shape (no effect) lies outside the 99% interval
    at every school age whose true effect is at least 0.4 away from it."""
    draws, truth = shape_fit
    lo, hi = np.quantile(draws, [0.005, 0.995], axis=1)
    big = np.flatnonzero((np.abs(truth) >= 0.4) & (np.arange(26) >= 5) & (np.arange(26) < 16))
    assert len(big) >= 4
    assert not ((lo[big] <= 0.0) & (hi[big] >= 0.0)).any(), (truth[big], lo[big], hi[big])
