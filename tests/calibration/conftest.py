import json
from pathlib import Path

import numpy as np
import pytest

from simsend.calibration import calibrate
from simsend.calibration.synthetic import synthetic_targets
from simsend.config import load

ORIGIN = 2020
BASE_TOML = Path(__file__).resolve().parents[2] / "configs" / "base.toml"


@pytest.fixture(scope="session")
def calib_config():
    return load(BASE_TOML)


@pytest.fixture(scope="session")
def synthetic_fit(tmp_path_factory, calib_config):
    """One small calibration shared by the recovery, posterior and backtest tests.

    Synthetic single-area data 2013-2022 from known rates; calibrated on 2013-2020.
    Returns ``(path, targets, truth, prior)``; ``truth`` holds the rates of the first year
    after the origin (the posterior's reference year).
    """
    # SEN support 40,000 (a large council): with a trend per age group, smaller data leave
    # the trends too loose for the power check below.
    t, truth, prior = synthetic_targets(n_areas=1, n_years=10, seed=7, sen_support=40000.0)
    path = calibrate(calib_config, tmp_path_factory.mktemp("fit") / "syn.nc", draws=1000,
                     tune=1000, chains=2, origin=ORIGIN, targets=t, prior=prior,
                     random_seed=11)
    # The multiplier of the year after the origin carries the walk's value at the origin.
    walk = np.asarray(json.loads(t.attrs["true_walk"]))  # (year, area), 0 at 2022
    at_origin = walk[list(t["year"].values).index(ORIGIN)]
    shift = np.exp(truth["escalation_trend"] * (ORIGIN + 1 - 2023) + at_origin[None, :])
    truth = {**truth, "escalation_multiplier": truth["escalation_multiplier"] * shift}
    return path, t, truth, prior
