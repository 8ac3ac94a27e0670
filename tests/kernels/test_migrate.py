"""Migration kernels against a plain NumPy reference on the same random numbers."""

import numpy as np

from simsend.engine.population import Population
from simsend.kernels.identify import encode_pid
from simsend.kernels.migrate import (
    ARRIVAL_K,
    MOVED_IN,
    MOVED_OUT,
    RESIDUAL_IN,
    RESIDUAL_OUT,
    migrate_decide,
    migrate_write,
    pool_arrivals,
    pool_departures,
)
from simsend.kernels.rng import uniform
from simsend.testing import toy_baseline

N_A, N_N = 26, 13


def _state(n_areas=2, seed=3):
    ind, pool, _ = toy_baseline(n_areas=n_areas, scale=100, seed=seed)
    pop = Population(n_areas, int(ind.sum()) + 16)
    pop.load_counts(ind, pool)
    return pop


def _rates(n_areas, rng):
    q_out = rng.uniform(0, 0.3, size=(4, N_A, n_areas))
    q_in = rng.uniform(0, 1.6, size=(4, N_A, n_areas))  # some above 1: several copies
    q_in[:, 3] = 0.0
    return q_out, q_in


def test_decide_and_write_match_numpy_reference():
    rng = np.random.default_rng(0)
    pop = _state()
    n, n_areas = pop.n, pop.n_areas
    q_out, q_in = _rates(n_areas, rng)
    # migration explains part of each rate, the stock residual the rest (none in some cells)
    m_out = q_out * rng.choice([0.0, 0.5, 1.0], size=q_out.shape)
    m_in = q_in * rng.choice([0.0, 0.3, 1.0], size=q_in.shape)
    keys = np.array([11, 22], np.uint64)
    strides = np.array([1, 0, 0, 0, 0, 0], np.int64)  # tally by tier only
    age_map = np.arange(27, dtype=np.int64)
    decide = np.zeros(n, np.int64)
    per_cell = np.zeros(pop.n_cells, np.int64)
    tally = np.zeros((4, 4), np.int64)
    migrate_decide(pop.cur, pop.cell_start, N_N, np.stack([q_out, q_in, m_out, m_in]), keys,
                   (strides, age_map), decide, per_cell, tally)
    c = pop.cur
    t, a, r, pid = (c.tier[:n], c.age[:n], c.area[:n], c.pid[:n].astype(np.uint64))
    u_out = np.array([uniform(keys[0], p) for p in pid])
    u_in = np.array([uniform(keys[1], p) for p in pid])
    qo, qi = q_out[t, a, r], q_in[t, a, r]
    leaves = (qo > 0) & (u_out < qo)
    copies = np.where(leaves, -1, np.floor(qi) + (u_in < qi - np.floor(qi)))
    copies = np.where(qi > 0, copies, np.where(leaves, -1, 0)).astype(np.int64)
    np.testing.assert_array_equal(decide[:n], copies)
    # migration's part: what the same uniforms give under its rates alone
    mo, mi = m_out[t, a, r], m_in[t, a, r]
    mig_leaves = leaves & (u_out < mo)
    mig_copies = np.where(leaves, 0, np.floor(mi) + (u_in < mi - np.floor(mi))).astype(int)
    assert (mig_copies <= np.maximum(copies, 0)).all()
    np.testing.assert_array_equal(tally[MOVED_OUT], np.bincount(t[mig_leaves], minlength=4))
    np.testing.assert_array_equal(tally[RESIDUAL_OUT],
                                  np.bincount(t[leaves & ~mig_leaves], minlength=4))
    np.testing.assert_array_equal(tally[MOVED_IN], np.bincount(
        t[~leaves], weights=mig_copies[~leaves], minlength=4).astype(np.int64))
    np.testing.assert_array_equal(tally[MOVED_IN] + tally[RESIDUAL_IN], np.bincount(
        t[~leaves], weights=copies[~leaves], minlength=4).astype(np.int64))
    assert tally[RESIDUAL_OUT].sum() > 0 and tally[RESIDUAL_IN].sum() > 0
    assert tally[MOVED_OUT].sum() > 0 and tally[MOVED_IN].sum() > 0
    start = np.zeros(pop.n_cells + 1, np.int64)
    np.cumsum(per_cell, out=start[1:])
    pop.reserve(int(start[-1]))
    migrate_write(pop.cur, pop.cell_start, N_N, n_areas, decide, start, 5, 0, pop.nxt)
    m = int(start[-1])
    assert m == (~leaves).sum() + copies[~leaves].sum()
    out = pop.nxt
    # each stayer is followed by its copies, same state, fresh unique ids
    ref_tier = np.repeat(t[~leaves], 1 + copies[~leaves])
    np.testing.assert_array_equal(out.tier[:m], ref_tier)
    np.testing.assert_array_equal(out.need[:m], np.repeat(c.need[:n][~leaves],
                                                          1 + copies[~leaves]))
    assert len(np.unique(out.pid[:m])) == m
    new = ~np.isin(out.pid[:m], c.pid[:n])
    assert new.sum() == copies[~leaves].sum()
    # ids of arrivals: year 5, their area and age, numbered from ARRIVAL_K within (area, age)
    first = encode_pid(5, out.area[:m][new][0], out.age[:m][new][0], ARRIVAL_K)
    assert out.pid[:m][new][0] == first
    # still grouped by cell in ascending order
    cell = (out.age[:m].astype(np.int64) * N_N + out.need[:m]) * n_areas + out.area[:m]
    assert (np.diff(cell) >= 0).all()


def test_pool_kernels_exact_cases_and_means():
    pool = np.full((N_A, 3), 1000, np.int64)
    out = np.zeros_like(pool)
    rate = np.zeros((N_A, 3))
    rate[:, 0], rate[:, 1], rate[:, 2] = 0.0, 2.0, 0.25
    p = pool.copy()
    pool_arrivals(p, rate, np.uint64(7), out)
    np.testing.assert_array_equal(out[:, 0], 0)
    np.testing.assert_array_equal(out[:, 1], 2000)  # a whole rate is exact
    np.testing.assert_array_equal(out[:, 2], 250)  # an expected count that is whole: exact
    np.testing.assert_array_equal(p, pool + out)
    # a fractional expected count is rounded down or up, up with its fractional part
    rate[:, 2] = 0.2503
    many = np.full((N_A, 3), 1000, np.int64)
    ups = 0
    for key in range(400):
        pool_arrivals(many.copy(), rate, np.uint64(key), out)
        assert set(out[:, 2].tolist()) <= {250, 251}
        ups += (out[:, 2] == 251).sum()
    assert abs(ups / (400 * N_A) - 0.3) < 4 * np.sqrt(0.21 / (400 * N_A))
    p = pool.copy()
    leave = np.zeros((N_A, 3))
    leave[:, 1] = 1.0
    pool_departures(p, leave, np.uint64(8), out)
    np.testing.assert_array_equal(p[:, 1], 0)
    np.testing.assert_array_equal(p[:, 0], 1000)
