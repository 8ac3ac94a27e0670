import os

# At least two Numba threads, even on a one-core machine, so thread-count invariance is tested.
if int(os.environ.get("NUMBA_NUM_THREADS", "0") or 0) < 2:
    os.environ["NUMBA_NUM_THREADS"] = "2"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from simsend.config import parse  # noqa: E402
from simsend.rates.sources import FixedParameters  # noqa: E402
from simsend.testing import toy_baseline  # noqa: E402

TOY_MODEL = """
[model]
identification = { "0-3" = 0.02, "4-15" = 0.05, "16-25" = 0.01 }
[model.leaving]
universal = 0.01
targeted = { "0-15" = 0.02, "16-25" = 0.1 }
targeted_plus = 0.03
specialist = { "0-18" = 0.01, "19-25" = 0.15 }
[model.tiers.targeted]
universal = { "0-10" = 0.15, "11-25" = 0.25 }
targeted_plus = 0.10
specialist = { "0-4" = 0.08, "5-25" = 0.03 }
[model.tiers.targeted_plus]
universal = 0.05
targeted = 0.10
specialist = 0.15
[model.tiers.specialist]
targeted_plus = 0.04
universal = 0.01
[model.need_multiplier]
ASD = 1.5
SpLD = 0.5
[model.need_mix."0-25"]
SLCN = 0.3
ASD = 0.2
SEMH = 0.2
MLD = 0.1
SpLD = 0.1
PMLD = 0.05
NSA = 0.05
[model.placement_new."0-4"]
other = 0.8
mainstream = 0.2
[model.placement_new."5-25"]
mainstream = 0.9
inclusion_base = 0.1
[[model.placement_moves]]
tier = "specialist"
ages = "5"
from = "other"
to = "special_state"
p = 0.4
[[model.placement_moves]]
tier = "specialist"
ages = "11"
from = "mainstream"
to = "special_independent"
p = 0.2
[[model.placement_moves]]
tier = "targeted"
ages = "5"
from = "other"
to = "mainstream"
p = 0.9
"""


@pytest.fixture
def toy_text():
    return TOY_MODEL


@pytest.fixture(scope="session")
def toy_model_text():
    """TOY_MODEL for module-scoped fixtures (``from conftest import`` depends on sys.path)."""
    return TOY_MODEL


@pytest.fixture
def toy_config():
    return parse(TOY_MODEL, "toy.toml")


@pytest.fixture
def toy():
    """(individuals, pool, births, ParameterSource) of a small 2-area synthetic system."""
    ind, pool, births = toy_baseline(n_areas=2, scale=200, seed=1)
    cfg = parse(TOY_MODEL, "toy.toml")
    return ind, pool, births, FixedParameters(cfg.model, births)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
