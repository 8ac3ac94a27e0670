"""Kernels that keep pupils grouped by cell and tally the census stock.

After a year's moves, survivors (in cell order) and this year's identified pupils are merged
into the second buffer, cell by cell, new pupils first.  The merge also tallies the stock, so
the census count costs no extra pass.
"""

import numba
import numpy as np

from simsend.kernels._jit import njit
from simsend.kernels.transitions import flat_index


@njit
def cell_of(age, need, area, n_need, n_area):
    """Cell index ``(age * n_need + need) * n_area + area``."""
    return (age * np.int64(n_need) + need) * n_area + area


@njit
def sort_new(src, n, n_need, n_area, new_count, new_start, order):
    """Stable counting sort of ``n`` staged pupils by cell; ``order[j]`` is the j-th in order."""
    new_count[:] = 0
    age, need, area = src.age, src.need, src.area  # unpacked once (see merge_cells)
    for i in range(n):
        new_count[cell_of(age[i], need[i], area[i], n_need, n_area)] += 1
    acc = 0
    for c in range(len(new_count)):
        new_start[c] = acc
        acc += new_count[c]
    fill = new_start.copy()
    for i in range(n):
        c = cell_of(age[i], need[i], area[i], n_need, n_area)
        order[fill[c]] = i
        fill[c] += 1


@njit
def copy_pupil(src, i, dst, j):
    """Copy pupil ``i`` of ``src`` to slot ``j`` of ``dst``."""
    dst.tier[j] = src.tier[i]
    dst.plan[j] = src.plan[i]
    dst.age[j] = src.age[i]
    dst.need[j] = src.need[i]
    dst.area[j] = src.area[i]
    dst.placement[j] = src.placement[i]
    dst.pid[j] = src.pid[i]
    dst.alloc[j] = src.alloc[i]


@njit
def merge_cells(old, old_start, new, new_plan, order, counts, m, c0, c1, th, out):
    """Loop body of :func:`merge_and_tally` for cells ``c0 .. c1 - 1`` on thread ``th``.

    A separate function because Numba 0.65 loses writes made through tuple members directly
    inside a ``prange`` body.  The arrays are unpacked from their tuples once: reading a
    tuple member inside the loop costs a reference-count update per access.
    """
    _, new_count, new_start, surv, out_start, n_na = counts
    dst, stock, ident = out
    o_tier, o_plan, o_age, o_need, o_area, o_plac, o_pid, o_alloc = old
    n_tier, n_plan, n_age, n_need, n_area, n_plac, n_pid, n_alloc = new
    d_tier, d_plan, d_age, d_need, d_area, d_plac, d_pid, d_alloc = dst
    strides, age_map = m
    for c in range(c0, c1):
        j = out_start[c]
        for q in range(new_start[c], new_start[c] + new_count[c]):
            i = order[q]
            d_tier[j] = n_tier[i]
            d_plan[j] = new_plan
            d_age[j] = n_age[i]
            d_need[j] = n_need[i]
            d_area[j] = n_area[i]
            d_plac[j] = n_plac[i]
            d_pid[j] = n_pid[i]
            d_alloc[j] = n_alloc[i]
            ident[th, flat_index(strides, age_map, 1, new_plan, d_age[j], d_need[j], d_area[j],
                                 d_plac[j])] += 1
            j += 1
        if c >= n_na and surv[c] > 0:
            for i in range(old_start[c - n_na], old_start[c - n_na + 1]):
                if o_tier[i] >= 0:
                    d_tier[j] = o_tier[i]
                    d_plan[j] = o_plan[i]
                    d_age[j] = o_age[i]
                    d_need[j] = o_need[i]
                    d_area[j] = o_area[i]
                    d_plac[j] = o_plac[i]
                    d_pid[j] = o_pid[i]
                    d_alloc[j] = o_alloc[i]
                    j += 1
        if j > out_start[c]:
            # a cell shares (age, need, area): only tier, plan and placement vary per pupil
            q0 = out_start[c]
            base = flat_index(strides, age_map, 0, 0, d_age[q0], d_need[q0], d_area[q0], 0)
            s_t, s_p, s_l = strides[0], strides[1], strides[5]
            for q in range(q0, j):
                stock[th, base + d_tier[q] * s_t + d_plan[q] * s_p + d_plac[q] * s_l] += 1


@njit(parallel=True)
def merge_and_tally(old, old_start, new, new_plan, order, counts, m, dst, tallies):
    """Write survivors and new pupils of every cell into ``out`` (new first), tallying stock.

    Parameters
    ----------
    old : Pupils, ``old_start`` its cell starts (cells of the previous census; removed
        pupils have tier -1); survivors of old cell ``c - n_na`` land in new cell ``c``.
    new : Pupils staged this year, visited through ``order``; their plan is ``new_plan``.
    counts : tuple (chunks (K+1,), new_count, new_start, surv, out_start (n_cells+1,), n_na)
    m : Marginal
    dst : Pupils written in cell order
    tallies : tuple (stock tally (T, M), identified tally (T, M))

    ``dst`` is an argument of its own: Numba cannot hand a Pupils unpacked from a tuple to a
    ``prange`` body.

    """
    chunks = counts[0]
    stock, ident = tallies
    for k in numba.prange(len(chunks) - 1):
        merge_cells(old, old_start, new, new_plan, order, counts, m, chunks[k], chunks[k + 1],
                    numba.get_thread_id(), (dst, stock, ident))


@njit
def merge_and_tally_serial(old, old_start, new, new_plan, order, counts, m, dst, tallies):
    """:func:`merge_and_tally` on the calling thread alone (same arguments, same result)."""
    chunks = counts[0]
    stock, ident = tallies
    for k in range(len(chunks) - 1):
        merge_cells(old, old_start, new, new_plan, order, counts, m, chunks[k], chunks[k + 1],
                    0, (dst, stock, ident))
