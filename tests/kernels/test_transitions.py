"""The fused transition kernel against the plain NumPy reference on the same uniforms."""

import numba
import numpy as np
import pytest

from simsend import reference
from simsend.engine.tally import make_layout
from simsend.kernels.merge import cell_of
from simsend.kernels.rng import fill_uniform
from simsend.kernels.transitions import N_FLOW_ROWS, Pupils, step_pupils

N_A, N_N, N_P = 26, 13, 7


def random_tables(rng, n_area):
    p = rng.dirichlet(np.ones(4), size=(N_A, N_N, n_area, 4))
    tier_cdf = np.cumsum(p, axis=-1)
    tier_cdf[..., -1] = 1.0
    q = rng.dirichlet(np.ones(N_P) * 0.3, size=(4, N_A, N_P))
    place_cdf = np.cumsum(q, axis=-1)
    place_cdf[..., -1] = 1.0
    p_leave = rng.uniform(0, 0.2, size=(4, N_A))
    # calibrated specialist rows per area (staying, entering) with several areas; none with one
    n_spec = n_area if n_area > 1 else 0
    spec = np.cumsum(rng.dirichlet(np.ones(N_P) * 0.3, size=(n_spec, N_A, N_P)), axis=-1)
    entry = np.cumsum(rng.dirichlet(np.ones(N_P) * 0.3, size=(n_spec, N_A)), axis=-1)
    spec[..., -1] = entry[..., -1] = 1.0
    return tier_cdf, place_cdf, p_leave, spec, entry


def random_pupils(rng, n, n_area):
    age = rng.integers(0, N_A, n)
    need = rng.integers(0, N_N, n)
    area = rng.integers(0, n_area, n)
    order = np.argsort(cell_of(age, need, area, N_N, n_area), kind="stable")
    tier = rng.integers(1, 4, n)[order]
    p = Pupils(tier=tier.astype(np.int8), plan=np.where(tier == 3, 3, 1).astype(np.int8),
               age=age[order].astype(np.int8), need=need[order].astype(np.int8),
               area=area[order].astype(np.int16),
               placement=rng.integers(0, N_P, n).astype(np.int8),
               pid=rng.permutation(10 * n)[:n].astype(np.int64),
               alloc=np.zeros(n, np.int8))
    cells = cell_of(p.age.astype(np.int64), p.need.astype(np.int64), p.area.astype(np.int64),
                    N_N, n_area)
    cell_start = np.searchsorted(cells, np.arange(N_A * N_N * n_area + 1)).astype(np.int64)
    return p, cell_start


def run_kernel(p, cell_start, tables, keys, layout, n_area, chunks=None):
    t = numba.config.NUMBA_NUM_THREADS
    m = layout.size
    out = (np.zeros((t, N_FLOW_ROWS, m), np.int64), np.zeros((t, 4, 4), np.int64),
           np.zeros((t, N_A, n_area), np.int64),
           np.zeros(len(cell_start) - 1 + N_N * n_area, np.int64), np.zeros(2, np.int8))
    if chunks is None:
        chunks = np.array([0, len(cell_start) - 1], np.int64)
    step_pupils(p, chunks, cell_start, tables, keys, layout.marginal, out)
    return out


@pytest.mark.parametrize("n_area", [1, 3])
def test_step_matches_numpy_reference(n_area):
    rng = np.random.default_rng(7)
    n = 20_000
    p, cell_start = random_pupils(rng, n, n_area)
    before = Pupils(*(a.copy() for a in p))
    tables = random_tables(rng, n_area)
    keys = np.array([11, 22, 33], np.uint64)
    layout = make_layout(("tier", "age", "need", "area", "placement", "plan"),
                         tuple(f"A{i}" for i in range(n_area)))
    flows, trans, to_pool, surv, _ = run_kernel(p, cell_start, tables, keys, layout, n_area)

    u = np.empty((3, n))
    for s in range(3):
        fill_uniform(keys[s], before.pid.view(np.uint64), u[s])
    ref = reference.step_pupils(before.tier, before.plan, before.age, before.need, before.area,
                                before.placement, u, tables)
    np.testing.assert_array_equal(p.tier, ref["tier"])
    stay = ref["tier"] >= 0
    np.testing.assert_array_equal(p.age[stay], ref["age"][stay])
    np.testing.assert_array_equal(p.placement[stay], ref["placement"][stay])
    np.testing.assert_array_equal(p.plan[stay], ref["plan"][stay])
    # tallies agree with the reference outcome
    assert flows[:, 0].sum() == ref["left"].sum()
    assert to_pool.sum() == ref["to_pool"].sum()
    assert trans.sum() + ref["left"].sum() == n
    # moves into the specialist tier, tallied by the tier moved from (layout dim 0 = tier)
    f = flows.sum(axis=0).reshape(N_FLOW_ROWS, *layout.shape)
    to_sp = f[3].reshape(4, -1).sum(axis=1)
    for t0 in range(3):
        assert to_sp[t0] == ((before.tier == t0) & (ref["tier"] == 3)).sum()
    assert to_sp[3] == 0 and to_sp.sum() > 0
    # aged out: the leavers who were 25, a part of the leavers
    assert f[4].sum() == (ref["left"] & (before.age == 25)).sum() > 0
    assert (f[4] <= f[0]).all()
    assert surv.sum() == stay.sum()
    # the same pupils go to the pool, by (age, area)
    tp = np.zeros((N_A, n_area), np.int64)
    np.add.at(tp, (before.age[ref["to_pool"]] + 1, before.area[ref["to_pool"]]), 1)
    np.testing.assert_array_equal(to_pool.sum(axis=0), tp)
    # some of everything happened (the test exercises every branch)
    assert ref["left"].sum() > 0 and ref["to_pool"].sum() > 0
    assert (p.tier[stay] != before.tier[stay]).sum() > 0


def test_chunking_and_threads_do_not_change_results():
    rng = np.random.default_rng(3)
    n_area = 2
    p0, cell_start = random_pupils(rng, 30_000, n_area)
    tables = random_tables(rng, n_area)
    keys = np.array([1, 2, 3], np.uint64)
    layout = make_layout(("tier", "age_group", "need"), ("A", "B"))
    results = []
    for threads, chunks in [(1, None), (2, np.array([0, 100, 300, len(cell_start) - 1])),
                            (2, np.linspace(0, len(cell_start) - 1, 40).astype(np.int64))]:
        numba.set_num_threads(threads)
        p = Pupils(*(a.copy() for a in p0))
        out = run_kernel(p, cell_start, tables, keys, layout, n_area, chunks)
        results.append((p, [o.sum(axis=0) if o.ndim > 1 else o for o in out]))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for p, out in results[1:]:
        for a, b in zip(p, results[0][0], strict=True):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(out, results[0][1], strict=True):
            np.testing.assert_array_equal(a, b)


def test_step_tally_reference_counts():
    rng = np.random.default_rng(5)
    n_area = 2
    p, _ = random_pupils(rng, 5000, n_area)
    tier_cdf = random_tables(rng, n_area)[0]
    u = rng.random(5000)
    nt, counts = reference.step_tally(p.tier.astype(np.int64), p.age.astype(np.int64),
                                      p.need.astype(np.int64), p.area.astype(np.int64), u,
                                      tier_cdf)
    assert counts.sum() == 5000
    # brute force for a few pupils
    for i in range(50):
        row = tier_cdf[p.age[i], p.need[i], p.area[i], p.tier[i]]
        assert nt[i] == int(np.argmax(u[i] < row))


@pytest.mark.parametrize("threads,n_chunks", [(1, 1), (2, 7), (2, 64)])
def test_tier_step_matches_numpy_step_tally(threads, n_chunks):
    from simsend.kernels.transitions import tier_step

    rng = np.random.default_rng(11)
    n_area, n = 3, 40_000
    p, cell_start = random_pupils(rng, n, n_area)
    tier_cdf = random_tables(rng, n_area)[0]
    key = np.uint64(987654321)
    u = np.empty(n)
    fill_uniform(key, p.pid.view(np.uint64), u)
    nt_ref, counts_ref = reference.step_tally(p.tier.astype(np.int64), p.age.astype(np.int64),
                                              p.need.astype(np.int64), p.area.astype(np.int64),
                                              u, tier_cdf)
    n_cells = N_A * N_N * n_area
    chunks = np.linspace(0, n_cells, n_chunks + 1).astype(np.int64)
    tier = p.tier.copy()
    counts = np.zeros((n_cells, 4), np.int64)
    numba.set_num_threads(threads)
    try:
        tier_step(tier, p.pid.view(np.uint64), cell_start, tier_cdf.reshape(n_cells, 4, 4), key,
                  chunks, counts)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(tier, nt_ref)
    # reference tallies are (new tier, age, need, area); the kernel's are (cell, new tier)
    np.testing.assert_array_equal(counts.T.reshape(-1), counts_ref)
    assert (tier != p.tier).sum() > 0.3 * n  # the random table moves most pupils
