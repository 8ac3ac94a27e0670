"""Cell-level kernels for the universal pool: leaving and identification.

Universal-tier children are exchangeable within (age, area), so each cell draws one
binomial count (exact in law, cost independent of the pool size).  Each identified child then
becomes an individual whose need and placement are drawn from its own id, so a scenario that
identifies one more child leaves every other child's draws unchanged.
"""

import numba
import numpy as np

from simsend.kernels._jit import njit
from simsend.kernels.rng import mix_counter, mix_key, uniform_mixed
from simsend.kernels.sampling import binomial, categorical_count

PID_K_BITS = 36
PID_AGE_BITS = 5
PID_AREA_BITS = 12


@njit
def encode_pid(year_index, area, age, k):
    """Pupil id ``((year_index * 2^12 + area) * 2^5 + age) * 2^36 + k``: unique and stable."""
    return (((np.int64(year_index) << PID_AREA_BITS | np.int64(area)) << PID_AGE_BITS
             | np.int64(age)) << PID_K_BITS) | np.int64(k)


@njit
def thin_pool(pool, p, key, out, area_base=0, area_total=0):
    """Draw ``out[a, r] ~ Binomial(pool[a, r], p[a, r])`` and remove them from ``pool``.

    The counter of cell (a, r) is ``a * area_total + area_base + r``: ``pool`` may hold the
    areas ``area_base ..`` of a run over ``area_total`` areas (a chunk of areas draws exactly
    what the whole run draws for them); ``area_total = 0`` means ``pool.shape[1]``.
    """
    n_area = pool.shape[1]
    n_total = area_total if area_total > 0 else n_area
    for a in range(pool.shape[0]):
        for r in range(n_area):
            k = binomial(pool[a, r], p[a, r], key, np.uint64(a * n_total + area_base + r))
            out[a, r] = k
            pool[a, r] -= k


@njit
def new_cell(counts, offsets, year_index, need_cdf, place_cdf, keys, c, out, area_base,
             tp_share):
    """Create the pupils identified in cell ``c = a * n_area + r`` (see :func:`new_pupils`)."""
    n_area = counts.shape[1]
    a, r = c // n_area, c % n_area
    # unpacked once: a tuple member read inside the loop costs a reference-count update
    tier, _, age, need, area, placement, pids, alloc = out
    # the keys' and each id's halves of the hash mixed once (the same numbers as uniform())
    k0, k1, k2 = mix_key(keys[0]), mix_key(keys[1]), mix_key(keys[2])
    need_row, place_row = need_cdf[a], place_cdf[a]
    for k in range(counts[a, r]):
        i = offsets[a, r] + k
        pid = encode_pid(year_index, area_base + r, a, k)
        pids[i] = pid
        mc = mix_counter(np.uint64(pid))
        # targeted (1), or targeted-plus (2) with probability tp_share (none drawn at 0)
        tier[i] = 2 if tp_share > 0.0 and uniform_mixed(k2, mc) < tp_share else 1
        alloc[i] = 0
        age[i] = a
        area[i] = r
        # need and placement rows are cumulative: the branch-free draw is the same draw
        need[i] = categorical_count(uniform_mixed(k0, mc), need_row)
        placement[i] = categorical_count(uniform_mixed(k1, mc), place_row)


@njit(parallel=True)
def new_pupils(counts, offsets, year_index, need_cdf, place_cdf, keys, out, area_base=0,
               tp_share=0.0):
    """Create the pupils identified this year, in (age, area, k) order.

    Parameters
    ----------
    counts, offsets : int64 (26, A): identified per cell and its first slot in ``out``
    need_cdf : (26, 13), place_cdf : (26, 7) cumulative mixes by age
    keys : uint64 (3,) streams: need, placement, tier (targeted or targeted-plus)
    out : Pupils (staging buffers, at least counts.sum() long)
    area_base : int: index of area 0 of ``counts`` in the whole run (ids use the run's index)
    tp_share : float: chance that a new pupil enters targeted-plus (0: all targeted)

    The loop body is :func:`new_cell`: Numba 0.65 loses writes made through tuple members
    directly inside a ``prange`` body.

    """
    for c in numba.prange(counts.size):
        new_cell(counts, offsets, year_index, need_cdf, place_cdf, keys, c, out, area_base,
                 tp_share)


@njit
def new_pupils_serial(counts, offsets, year_index, need_cdf, place_cdf, keys, out, area_base=0,
                      tp_share=0.0):
    """:func:`new_pupils` on the calling thread alone (same arguments, same result)."""
    for c in range(counts.size):
        new_cell(counts, offsets, year_index, need_cdf, place_cdf, keys, c, out, area_base,
                 tp_share)
