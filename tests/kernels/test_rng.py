"""Counter-based generator: bit-exact NumPy reference, statistical battery, thread invariance.

The statistical checks run at fixed keys, so they are deterministic (never flaky).  Each
check is also shown to fail for deliberately bad generators at the same sample size, so a
pass means something.
"""

import numba
import numpy as np
import pytest
from scipy import stats

from simsend.kernels.rng import (
    derive_key,
    fill_uniform,
    hash64,
    mix64,
    stream_key,
    uniform,
    uniform_sub,
)

N = 1_000_000
KEY = np.uint64(0x5EED_2024_0001_0002)  # fixed once; the battery passes for it
U64 = np.uint64

# --- independent NumPy uint64 reference (constants typed in again on purpose) -----------


def mix64_ref(z):
    z = np.asarray(z, dtype=np.uint64)
    z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
    return z ^ (z >> U64(31))


def hash_ref(key, counters):
    c = np.asarray(counters, dtype=np.uint64) * U64(0x9E3779B97F4A7C15) + U64(0x632BE59BD9B4E019)
    k = np.full(c.shape, key, dtype=np.uint64)
    return mix64_ref(mix64_ref(k) ^ mix64_ref(c))


def uniform_ref(key, counters):
    return (hash_ref(key, counters) >> U64(11)).astype(np.float64) * 2.0**-53


def stream_key_ref(key, sub):
    s = np.asarray(sub, dtype=np.uint64)
    return mix64_ref(np.full(s.shape, key, np.uint64) + (s + U64(1)) * U64(0x9E3779B97F4A7C15))


def draw(key, counters):
    out = np.empty(len(counters))
    fill_uniform(U64(key), np.asarray(counters, dtype=np.uint64), out)
    return out


# --- the statistical battery -----------------------------------------------------------


def battery(u):
    """z-scores and p-values of five checks on a sequence meant to be iid U(0, 1)."""
    n = len(u)
    r1 = np.corrcoef(u[:-1], u[1:])[0, 1]
    pairs = np.floor(u[: n // 2 * 2].reshape(-1, 2) * 10).astype(np.int64)
    pair_counts = np.bincount(pairs[:, 0] * 10 + pairs[:, 1], minlength=100)
    return {
        "mean_z": (u.mean() - 0.5) / np.sqrt(1 / 12 / n),
        "var_z": (u.var() - 1 / 12) / np.sqrt(1 / 180 / n),
        "lag1_z": r1 * np.sqrt(n),
        "chi2_p": stats.chisquare(np.bincount((u * 100).astype(np.int64), minlength=100)).pvalue,
        "pair_chi2_p": stats.chisquare(pair_counts).pvalue,
    }


def passes(b):
    zs_ok = all(abs(b[k]) < 5 for k in ("mean_z", "var_z", "lag1_z"))
    return zs_ok and b["chi2_p"] > 1e-4 and b["pair_chi2_p"] > 1e-4


# --- tests -----------------------------------------------------------------------------


def test_mix64_is_the_splitmix64_finaliser():
    # SplitMix64 seeded with 1234567: outputs M(seed + i * gamma), i = 1, 2, ...
    seed = U64(1234567)
    gamma = U64(0x9E3779B97F4A7C15)
    assert int(mix64(seed + gamma)) == 6457827717110365317
    states = seed + gamma * np.arange(1, 6, dtype=np.uint64)
    expected = [int(mix64(s)) for s in states]
    assert expected == [int(v) for v in mix64_ref(states)]
    assert int(mix64(U64(0))) == 0  # the fixed point the counter offset avoids


def test_uniform_matches_numpy_reference_bit_for_bit():
    rng = np.random.default_rng(0)
    specials = np.array([0, 1, 2, 2**32, 2**53, 2**63, 2**64 - 1], dtype=np.uint64)
    counters = np.concatenate([specials, np.arange(1000, dtype=np.uint64),
                               rng.integers(0, 2**64, 5000, dtype=np.uint64, endpoint=False)])
    for key in [U64(0), U64(1), U64(2**64 - 1), KEY, derive_key(7, 0, 1)]:
        ref = uniform_ref(key, counters)
        np.testing.assert_array_equal(draw(key, counters), ref)
        for i in [0, 6, 500, 6000]:
            assert uniform(key, counters[i]) == ref[i]
            assert int(hash64(key, counters[i])) == int(hash_ref(key, counters[i : i + 1])[0])


def test_int64_counters_are_reinterpreted_bitwise():
    ids = np.array([-1, -(2**63), 5], dtype=np.int64)
    as_u64 = ids.view(np.uint64)
    np.testing.assert_array_equal(draw(KEY, as_u64), uniform_ref(KEY, as_u64))
    assert uniform(KEY, np.int64(-1)) == uniform(KEY, U64(2**64 - 1))


def test_stream_key_and_uniform_sub_match_reference():
    subs = np.arange(20, dtype=np.uint64)
    got = np.array([stream_key(KEY, s) for s in subs], dtype=np.uint64)
    np.testing.assert_array_equal(got, stream_key_ref(KEY, subs))
    assert len(set(got.tolist()) | {int(KEY)}) == 21  # all distinct, none equal to KEY
    for s in [0, 3]:
        assert uniform_sub(KEY, U64(99), U64(s)) == uniform_ref(got[s], np.array([99]))[0]


def test_uniform_is_in_unit_interval_and_has_53_bits():
    u = draw(KEY, np.arange(N))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert np.all(u * 2.0**53 == np.floor(u * 2.0**53))  # multiples of 2**-53
    # the low bits are used: some values are odd multiples of 2**-53
    assert np.any((u * 2.0**53).astype(np.uint64) & U64(1))


def test_battery_passes_for_fixed_key():
    b = battery(draw(KEY, np.arange(N)))
    assert passes(b), b


def test_battery_passes_for_other_streams():
    # consecutive keys, derived keys, sub-streams and huge sparse counters all look iid
    counters = np.arange(N // 4, dtype=np.uint64)
    for key in [U64(1), derive_key(1, 0, 0, 0), stream_key(KEY, U64(3))]:
        assert passes(battery(draw(key, counters))), key
    sparse = np.arange(N // 4, dtype=np.uint64) * U64(2**40) + U64(12345)
    assert passes(battery(draw(KEY, sparse)))


def _fails(b, check):
    if check.endswith("_z"):
        return abs(b[check]) >= 5
    return b[check] <= 1e-4


@pytest.mark.parametrize(
    ("bad", "must_fail"),
    [
        # key + counter, no mixing: values crowd into a tiny interval
        (lambda key, c: ((key + c) % 2**53) / 2.0**53, ["chi2_p", "lag1_z"]),
        # counter scaled into [0, 1): a ramp
        (lambda key, c: c / 2.0**64 * 2**44, ["chi2_p", "lag1_z"]),
        # Weyl sequence: perfectly equidistributed (chi2 p ~ 1) but serially dependent
        (lambda key, c: np.modf(c * 0.6180339887498949 + key / 2.0**64)[0],
         ["lag1_z", "pair_chi2_p"]),
        # a good hash truncated to 2 bits: coarse values
        (lambda key, c: (hash_ref(key, c) >> U64(62)).astype(float) / 4, ["chi2_p", "mean_z"]),
    ],
)
def test_battery_rejects_bad_generators(bad, must_fail):
    b = battery(np.asarray(bad(KEY, np.arange(N, dtype=np.uint64)), dtype=np.float64))
    assert not passes(b)
    for check in must_fail:
        assert _fails(b, check), (check, b)


def test_neighbouring_keys_and_counters_are_uncorrelated():
    c = np.arange(N // 2, dtype=np.uint64)
    sqn = np.sqrt(len(c))
    for k1, k2 in [(U64(1), U64(2)), (KEY, KEY ^ U64(1)), (KEY, stream_key(KEY, U64(0)))]:
        r = np.corrcoef(draw(k1, c), draw(k2, c))[0, 1]
        assert abs(r * sqn) < 5, (k1, k2)
    u = draw(KEY, c)
    for lag in [1, 2, 8, 64]:
        assert abs(np.corrcoef(u[:-lag], u[lag:])[0, 1] * sqn) < 5


def test_derive_key_is_seedsequence():
    k = derive_key(2024, 3, 1, 7)
    assert isinstance(k, np.uint64)
    ss = np.random.SeedSequence(2024, spawn_key=(3, 1, 7))
    assert k == ss.generate_state(1, dtype=np.uint64)[0]
    keys = {int(derive_key(2024, d, s, y)) for d in range(4) for s in range(4) for y in range(4)}
    keys |= {int(derive_key(2025, 0, 0, 0)), int(derive_key(2024))}
    assert len(keys) == 66


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_fill_uniform_independent_of_threads_and_partition():
    counters = np.random.default_rng(1).permutation(200_000).astype(np.uint64)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = draw(KEY, counters)
        numba.set_num_threads(2)
        two = draw(KEY, counters)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    parts = np.concatenate([draw(KEY, counters[:777]), draw(KEY, counters[777:])])
    np.testing.assert_array_equal(one, parts)
    order = np.argsort(counters)
    np.testing.assert_array_equal(draw(KEY, counters[order]), one[order])
