"""The one-pass year kernel against the three passes it replaces, bit for bit."""

import numpy as np
import pytest

from simsend.engine.loop import arrivals
from simsend.engine.population import Population
from simsend.engine.tally import make_layout
from simsend.kernels.identify import new_pupils_serial
from simsend.kernels.merge import merge_and_tally_serial, sort_new
from simsend.kernels.migrate import migrate_decide, migrate_write
from simsend.kernels.transitions import N_FLOW_ROWS, Pupils, step_pupils_serial
from simsend.kernels.year import hide_new, restore_new, tally_census, year_pass
from simsend.testing import toy_baseline

N_A, N_N, N_P = 26, 13, 7


def _tables(rng, n_area, calibrated):
    p = rng.dirichlet(np.ones(4), size=(N_A, N_N, n_area, 4))
    tier_cdf = np.cumsum(p, axis=-1)
    tier_cdf[..., -1] = 1.0
    q = rng.dirichlet(np.ones(N_P) * 0.3, size=(4, N_A, N_P))
    q[:, :, np.arange(N_P), np.arange(N_P)] += 3.0 * (rng.random((4, N_A, N_P)) < 0.5)
    place_cdf = np.cumsum(q / q.sum(axis=-1, keepdims=True), axis=-1)
    place_cdf[..., -1] = 1.0
    p_leave = rng.uniform(0, 0.2, size=(4, N_A))
    n_spec = n_area if calibrated else 0
    spec = np.cumsum(rng.dirichlet(np.ones(N_P) * 0.3, size=(n_spec, N_A, N_P)), axis=-1)
    entry = np.cumsum(rng.dirichlet(np.ones(N_P) * 0.3, size=(n_spec, N_A)), axis=-1)
    spec[..., -1] = entry[..., -1] = 1.0
    return tier_cdf, place_cdf, p_leave, spec, entry


def _setup(seed, n_areas=3, migrating=True, calibrated=True):
    rng = np.random.default_rng(seed)
    ind, pool, _ = toy_baseline(n_areas=n_areas, scale=150, seed=seed)
    pop = Population(n_areas, int(ind.sum() * 3) + 64, area_base=1, area_total=n_areas + 2)
    pop.load_counts(ind, pool)
    pop.cur.alloc[:pop.n] = rng.integers(0, 20, pop.n)  # states the pass must carry along
    q = np.zeros((4, 4, N_A, n_areas))
    if migrating:
        q[0] = rng.uniform(0, 0.3, size=(4, N_A, n_areas))
        q[1] = rng.uniform(0, 1.6, size=(4, N_A, n_areas))  # some above 1: several copies
        q[2] = q[0] * rng.choice([0.0, 0.5, 1.0], size=q[0].shape)
        q[3] = q[1] * rng.choice([0.0, 0.3, 1.0], size=q[1].shape)
    counts = rng.poisson(3, size=(N_A, n_areas)).astype(np.int64)
    n_new = int(counts.sum())
    offsets = (np.cumsum(counts.ravel()) - counts.ravel()).reshape(counts.shape)
    pop.reserve_staged(n_new)
    need_cdf = np.cumsum(rng.dirichlet(np.ones(N_N), size=N_A), axis=-1)
    place_new = np.cumsum(rng.dirichlet(np.ones(N_P), size=N_A), axis=-1)
    new_pupils_serial(counts, offsets, 4, need_cdf, place_new, np.array([5, 6, 7], np.uint64),
                      pop.staged, pop.area_base, 0.3)
    order = np.zeros(n_new, np.int64)
    new_count = np.zeros(pop.n_cells, np.int64)
    new_start = np.zeros(pop.n_cells, np.int64)
    sort_new(pop.staged, n_new, N_N, n_areas, new_count, new_start, order)
    layout = make_layout(("tier", "plan", "age", "need", "area", "placement"),
                         tuple(f"A{i}" for i in range(n_areas)))
    return pop, q, (order, new_count, new_start), _tables(rng, n_areas, calibrated), layout


def _tallies(n_areas, m):
    return (np.zeros((1, N_FLOW_ROWS, m), np.int64), np.zeros((1, 4, 4), np.int64),
            np.zeros((1, N_A, n_areas), np.int64), np.zeros((1, m), np.int64),
            np.zeros((1, m), np.int64), np.zeros((4, m), np.int64))


def _three_passes(pop, q, new, tables, layout, flags):
    """Migration, the fused step and the merge as the engine's lone draw runs them."""
    order, new_count, new_start = new
    m = layout.marginal
    flows, trans, to_pool, stock, ident, mig = _tallies(pop.n_areas, layout.size)
    decide = np.zeros(pop.n, np.int64)
    per_cell = np.zeros(pop.n_cells, np.int64)
    migrate_decide(pop.cur, pop.cell_start, N_N, q, np.array([1, 2], np.uint64),
                   (m.strides, m.age_map), decide, per_cell, mig)
    start = np.zeros(pop.n_cells + 1, np.int64)
    np.cumsum(per_cell, out=start[1:])
    migrate_write(pop.cur, pop.cell_start, N_N, pop.n_areas, decide, start, 4, pop.area_base,
                  pop.nxt)
    pop.swap(int(start[-1]), start)
    moved = Pupils(*(a[:pop.n].copy() for a in pop.cur))
    surv = np.zeros(pop.n_cells + N_N * pop.n_areas, np.int64)
    step_pupils_serial(pop.cur, np.array([0, pop.n_cells], np.int64), pop.cell_start, tables,
                       np.array([3, 4, 5], np.uint64), m, (flows, trans, to_pool, surv, flags))
    out_start = np.zeros(pop.n_cells + 1, np.int64)
    np.cumsum(new_count + surv[:pop.n_cells], out=out_start[1:])
    merge_and_tally_serial(pop.cur, pop.cell_start, pop.staged, np.int8(1), order,
                           (np.array([0, pop.n_cells], np.int64), new_count, new_start, surv,
                            out_start, N_N * pop.n_areas), m, pop.nxt, (stock, ident))
    prev = moved.placement[pop.cur.tier[:pop.n] >= 0]  # survivors' placements before moves
    pop.swap(int(out_start[-1]), out_start)
    return (flows, trans, to_pool, stock, ident, mig), prev


def _one_pass(pop, q, new, tables, layout, flags, census=True, arrival_prev=-1):
    order, new_count, new_start = new
    m = layout.marginal
    flows, trans, to_pool, stock, ident, mig = _tallies(pop.n_areas, layout.size)
    out_start = np.zeros(pop.n_cells + 1, np.int64)
    prev = np.zeros(pop.capacity, np.int8)
    n = year_pass(pop.cur, pop.cell_start, (q, np.array([1, 2], np.uint64), mig, 4,
                                            pop.area_base),
                  (tables, np.array([3, 4, 5], np.uint64), (m.strides, m.age_map), flags),
                  (pop.staged, order, new_count, new_start, np.int8(1)),
                  (pop.nxt, out_start, prev, arrival_prev), (flows, trans, to_pool, stock, ident, census))
    if n >= 0:
        pop.swap(n, out_start)
    return n, (flows, trans, to_pool, stock, ident, mig), prev


@pytest.mark.parametrize(("seed", "migrating", "calibrated", "reformed"),
                         [(0, True, True, 0), (1, True, False, 1), (2, False, True, 1),
                          (3, False, False, 0)])
def test_one_pass_equals_three_passes(seed, migrating, calibrated, reformed):
    flags = np.array([reformed, reformed], np.int8)
    a = _setup(seed, migrating=migrating, calibrated=calibrated)
    b = _setup(seed, migrating=migrating, calibrated=calibrated)
    want, want_prev = _three_passes(*a, flags)
    n, got, prev = _one_pass(*b, flags)
    pa, pb = a[0], b[0]
    assert n == pa.n and pb.n == pa.n
    np.testing.assert_array_equal(pb.cell_start, pa.cell_start)
    for name, x, y in zip(Pupils._fields, pb.cur, pa.cur, strict=True):
        np.testing.assert_array_equal(x[:n], y[:n], err_msg=name)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_array_equal(x, y)
    # the placement each survivor had before its move, in census order after the new pupils
    new_count = b[2][1]
    is_new = np.zeros(n, bool)
    for c in np.flatnonzero(new_count):
        is_new[pb.cell_start[c]:pb.cell_start[c] + new_count[c]] = True
    np.testing.assert_array_equal(prev[:n][~is_new], want_prev)
    assert want[3].sum() == n
    assert (want[5].sum() > 0) == migrating


def test_arrivals_ask_like_newcomers():
    flags = np.array([0, 1], np.int8)
    a, b = _setup(4), _setup(4)
    _, _, prev = _one_pass(*a, flags)
    n, _, prev_arr = _one_pass(*b, flags, arrival_prev=6)
    pid = b[0].cur.pid[:n]
    arrived = arrivals(pid, 4)  # the engine's mask of this year's arrivals, from their ids
    assert 0 < arrived.sum() < n
    want = prev[:n].copy()
    want[arrived] = 6
    np.testing.assert_array_equal(prev_arr[:n], want)


def test_census_tallied_after_the_allocation_and_new_pupils_hidden():
    flags = np.array([0, 1], np.int8)
    a, b = _setup(5), _setup(5)
    n_a, want, _ = _one_pass(*a, flags)
    n_b, got, _ = _one_pass(*b, flags, census=False)
    assert n_a == n_b
    assert got[3].sum() == 0 and got[4].sum() == 0
    pop, _, (order, new_count, new_start), _, layout = b
    before = Pupils(*(x[:n_b].copy() for x in pop.cur))
    hide_new(pop.cur.tier, pop.cell_start, new_count)
    assert (pop.cur.tier[:n_b] < 0).sum() == new_count.sum()
    restore_new(pop.cur, pop.cell_start, (pop.staged, new_count, new_start), order)
    for x, y in zip(pop.cur, before, strict=True):
        np.testing.assert_array_equal(x[:n_b], y)
    m = layout.marginal
    tally_census(pop.cur, pop.cell_start, new_count, np.int8(1), (m.strides, m.age_map),
                 (got[3], got[4]))
    np.testing.assert_array_equal(got[3], want[3])
    np.testing.assert_array_equal(got[4], want[4])


def test_too_small_a_buffer_is_said():
    pop, q, new, tables, layout = _setup(6)
    small = Population(pop.n_areas, pop.n // 2, pop.area_base, pop.area_total)
    small.cur, small.cell_start, small.n = pop.cur, pop.cell_start, pop.n
    small.staged = pop.staged
    n, _, _ = _one_pass(small, q, new, tables, layout, np.zeros(2, np.int8))
    assert n == -1
