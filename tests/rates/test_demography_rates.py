"""Demography tables for the engine: exact conversions from births and net rates."""

import numpy as np

from simsend.dims import TIER
from simsend.rates.demography import DemographySource, FixedDemography, year_moves


class Tables:
    def __init__(self, births, net_rate):
        self.births, self.net_rate = births, net_rate


def test_year_moves_shift_ages_and_split_signs():
    n_y, n_r = 3, 2
    births = np.arange(n_y * n_r, dtype=float).reshape(n_y, n_r) + 100
    net = np.zeros((n_y, 26, n_r))
    net[:, 5, 0] = -0.2   # the cohort reaching 5 shrinks in area 0
    net[:, 5, 1] = 1.5    # and grows by 150% in area 1
    mv = year_moves(births, net, np.array([0.04, 0.0]), np.array([0.02, 0.0]))
    assert mv.births.shape == (n_y + 1, n_r) and (mv.births[0] == 0).all()
    np.testing.assert_array_equal(mv.births[1:], births)
    # applied to children aged 4 at the census opening the year
    np.testing.assert_allclose(mv.pool_out[1:, 4, 0], 0.2)
    np.testing.assert_allclose(mv.pool_in[1:, 4, 1], 1.5)
    assert mv.pool_out[:, 5].sum() == 0 and mv.pool_in[:, 25].sum() == 0
    assert mv.pool_out[0].sum() == 0  # nothing moves into the baseline census
    # targeted tiers move like the pool; plans move by transfers instead
    np.testing.assert_array_equal(mv.ind_out[:, TIER["targeted"]], mv.pool_out)
    np.testing.assert_allclose(mv.ind_out[1:, TIER["specialist"], :25, 0], 0.04)
    np.testing.assert_allclose(mv.ind_in[1:, TIER["specialist"], :25, 0], 0.02)
    assert mv.ind_in[1:, TIER["specialist"], 4, 1].sum() == 0.0  # growth of area 1 not for plans


def test_source_slices_areas_and_remembers_draws():
    rng = np.random.default_rng(1)
    t = Tables(rng.uniform(1, 2, (2, 3)), rng.uniform(-0.1, 0.1, (2, 26, 3)))
    src = DemographySource(FixedDemography(t), 5)
    whole = src.get(0)
    part = src.areas(1, 3).get(0)
    np.testing.assert_array_equal(part.ind_in, whole.ind_in[..., 1:3])
    np.testing.assert_array_equal(src.areas(1, 3).areas(1, 2).get(0).births,
                                  whole.births[:, 2:3])
    assert src.get(0) is whole
