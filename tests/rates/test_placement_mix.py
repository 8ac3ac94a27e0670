"""Placement mixes: effects recovered from both margins, IPF's mix, the least movement."""

import numpy as np
import pytest

from simsend.data.rounding import ipf
from simsend.dims import AGES, band_of_age
from simsend.rates.placement_mix import (
    HALF,
    band_mix,
    net_flow,
    placement_effects,
    prior_shape,
    specialist_rows,
)


def joint(w, band_totals, c):
    """``n[g, k] = w[g, k] a[g] b[k]`` with ``b = exp(c)`` and rows summing to ``band_totals``."""
    x = w * np.exp(c)[None, :]
    return x * (band_totals / x.sum(1))[:, None]


def test_effects_recover_the_placement_factor_of_a_log_linear_joint():
    rng = np.random.default_rng(3)
    w = prior_shape()
    for _ in range(5):
        c = np.r_[0.0, rng.normal(0, 1, 6)]
        bands = rng.uniform(500, 5000, 5)
        n = joint(w, bands, c)
        # the function adds HALF to each placement count: give it the count less HALF
        got = placement_effects(n.sum(1), n.sum(0) - HALF)
        np.testing.assert_allclose(got, c, atol=1e-8)


def test_band_mix_is_the_ipf_fit_of_both_margins_row_normalised():
    rng = np.random.default_rng(4)
    w = prior_shape()
    bands = rng.integers(10, 3000, 5).astype(float)
    places = rng.integers(0, 3000, 7).astype(float)
    p = places + HALF
    fit = ipf(w, bands * p.sum() / bands.sum(), p, tol=1e-13)
    mix = band_mix(placement_effects(bands, places, n_iter=2000))
    np.testing.assert_allclose(mix, fit / fit.sum(1, keepdims=True), atol=1e-9)
    np.testing.assert_allclose(mix.sum(1), 1.0)


@pytest.mark.parametrize("seed", range(6))
def test_net_flow_takes_x_to_y_with_the_least_movement(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.dirichlet(np.ones(7), size=(2, 3))
    if seed == 0:
        x[0, 2] = 0.0  # a placement nobody holds keeps its (absent) pupils
        x[0] /= x[0].sum()
    m = net_flow(x, y)
    assert (m >= 0).all()
    np.testing.assert_allclose(m.sum(-1), 1.0)
    np.testing.assert_allclose(np.einsum("ri,rij->rj", x, m), y, atol=1e-12)
    moved = np.einsum("ri,rij->r", x, m * (1 - np.eye(7)))
    np.testing.assert_allclose(moved, np.maximum(x - y, 0).sum(-1), atol=1e-12)
    np.testing.assert_array_equal(net_flow(y, y), np.broadcast_to(np.eye(7), (3, 7, 7)))


def test_specialist_rows_move_each_cohort_from_last_years_mix_to_this_years():
    rng = np.random.default_rng(5)
    before, now = np.c_[np.zeros((2, 2, 1)), rng.normal(0, 0.5, (2, 2, 6))]
    stay, entry = specialist_rows(before, now)
    assert stay.shape == (2, len(AGES), 7, 7) and entry.shape == (2, len(AGES), 7)
    g = band_of_age()
    mb, mn = band_mix(before), band_mix(now)
    np.testing.assert_allclose(entry, mn[:, g])
    for a in range(1, len(AGES)):
        np.testing.assert_allclose(np.einsum("ri,rij->rj", mb[:, g[a - 1]], stay[:, a]),
                                   mn[:, g[a]], atol=1e-12)
    np.testing.assert_array_equal(stay[:, 0], np.broadcast_to(np.eye(7), (2, 7, 7)))
