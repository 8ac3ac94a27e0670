"""Draw keys: the same words as NumPy's SeedSequence, laid out prefix-stably."""

import numpy as np
import pytest

from simsend.engine.streams import _FIRST, _MAX_YEARS, STREAMS, draw_keys, seed_state


@pytest.mark.parametrize("seed", [0, 1, 20260123, 2**63 + 12345])
@pytest.mark.parametrize("draw", [0, 7, 999, 2**31 + 5])
def test_seed_state_is_numpy_generate_state(seed, draw):
    ss = np.random.SeedSequence(seed, spawn_key=(draw,))
    n = _MAX_YEARS * len(STREAMS)
    ref = ss.generate_state(n, dtype=np.uint64)
    np.testing.assert_array_equal(seed_state(ss.pool, np.arange(n)), ref)
    # any subset of words, in any order
    pick = np.random.default_rng(seed % 97).permutation(n)[:50]
    np.testing.assert_array_equal(seed_state(ss.pool, pick), ref[pick])


@pytest.mark.parametrize("n_years", [1, 14, _MAX_YEARS])
def test_draw_keys_layout(n_years):
    ss = np.random.SeedSequence(20260123, spawn_key=(3,))
    state = ss.generate_state(_MAX_YEARS * len(STREAMS), dtype=np.uint64)
    first = state[:_MAX_YEARS * _FIRST].reshape(_MAX_YEARS, _FIRST)
    extra = state[_MAX_YEARS * _FIRST:].reshape(len(STREAMS) - _FIRST, _MAX_YEARS).T
    want = np.concatenate([first, extra], axis=1)[:n_years]
    np.testing.assert_array_equal(draw_keys(20260123, 3, n_years), want)


def test_keys_do_not_depend_on_horizon_and_too_long_is_refused():
    np.testing.assert_array_equal(draw_keys(5, 2, 20)[:9], draw_keys(5, 2, 9))
    with pytest.raises(ValueError, match="at most 256"):
        draw_keys(5, 2, _MAX_YEARS + 1)
