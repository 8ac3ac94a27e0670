"""Kernels for the population moving: children leaving and arriving by age and area.

Each simulated year starts with migration (:mod:`simsend.engine.loop`, step ``migration``):
every child of the census that opens the year leaves its area with a probability of its
(tier, age, area) and arrivals are added at a rate of the same cell.  Universal-tier children
are counts: each (age, area) cell moves the expected number, rounded at random; an individual
pupil leaves by its own draw, and one who arrives is a copy of a pupil already there (same
tier, plan, need and placement: arrivals take the mix of their age in the area they come
to), drawn from the resident pupil's own id.

A rate ``r`` may exceed 1 (a university town at 18-19): the copies are ``floor(r)`` plus one
more with probability ``r - floor(r)``, so the expected arrivals are exactly ``r`` per child.
"""

import numpy as np

from simsend.kernels._jit import njit
from simsend.kernels.identify import encode_pid
from simsend.kernels.rng import uniform
from simsend.kernels.transitions import flat_index

ARRIVAL_K = np.int64(1) << np.int64(35)
"""Running numbers of arrivals start here: identified pupils of the same (year, area, age)
number from 0, so the two never share an id."""
MOVED_OUT, MOVED_IN, RESIDUAL_OUT, RESIDUAL_IN = 0, 1, 2, 3
"""Rows of the migration tally: moves by migration, and the net flow of the stock residual
(:func:`simsend.rates.demography.with_net_flow`) that the same draws add on top of it."""


@njit
def _expected_rounded(n, q, key, counter):
    """``q * n`` rounded down or up at random: ``floor(q n) + Bernoulli(frac(q n))``."""
    x = q * n
    whole = np.int64(np.floor(x))
    return whole + (uniform(key, counter) < x - whole)


@njit
def pool_arrivals(pool, rate, key, out, area_base=0, area_total=0):
    """Add ``out[a, r]`` arrivals to the universal pool: ``rate[a, r] * pool[a, r]`` rounded.

    Universal children move as the cohort-component method moves them: the expected number,
    rounded down or up at random (mean exact, at most one child off), with no binomial noise
    on top of the rate's own uncertainty (each draw has its own rates).  The counter of cell
    (a, r) is ``a * area_total + area_base + r``: a chunk of areas draws what the whole run
    draws for them.
    """
    n_area = pool.shape[1]
    n_total = area_total if area_total > 0 else n_area
    for a in range(pool.shape[0]):
        for r in range(n_area):
            k = _expected_rounded(pool[a, r], rate[a, r], key,
                                  np.uint64(a * n_total + area_base + r))
            out[a, r] = k
            pool[a, r] += k


@njit
def pool_departures(pool, rate, key, out, area_base=0, area_total=0):
    """Remove ``out[a, r]`` leavers: ``rate[a, r] * pool[a, r]`` rounded (rate <= 1)."""
    n_area = pool.shape[1]
    n_total = area_total if area_total > 0 else n_area
    for a in range(pool.shape[0]):
        for r in range(n_area):
            k = min(_expected_rounded(pool[a, r], rate[a, r], key,
                                      np.uint64(a * n_total + area_base + r)), pool[a, r])
            out[a, r] = k
            pool[a, r] -= k


@njit
def migrate_decide(p, cell_start, n_need, q, keys, m, decide, per_cell, tally):
    """Draw each pupil's move and count the pupils each cell will hold after it.

    Parameters
    ----------
    p : Pupils
        The census that opens the year, grouped by cell ``(age * n_need + need) * n_area + area``.
    cell_start : int64 (n_cells + 1,)
    n_need : int
    q : float64 (4, 4, 26, n_area)
        By (tier, age at this census, area): ``q[0]``, ``q[1]`` the probability of leaving
        and the arrival rate in all; ``q[2]``, ``q[3]`` the parts of them that migration
        explains (at most ``q[0]``, ``q[1]``; the rest is the stock residual's net flow).
    keys : uint64 (2,)
        Streams: leaving, arrival.
    m : Marginal-like tuple (strides, age_map)
    decide : int64 (>= n,)
        Written: -1 = leaves, else the number of arrivals copied from the pupil.
    per_cell : int64 (n_cells,)
        Written: pupils in each cell after migration.
    tally : int64 (4, M)
        Moved out / moved in by migration, then out / in by the residual, added at the
        pupil's state (age at this census).  One uniform decides a pupil's leaving and one
        its copies; migration's share of them is what the same uniform gives under
        migration's rates alone (leaving if ``u < q[2]``; ``floor(q[3]) + (u < frac(q[3]))``
        copies, never more than the total's), so the split adds no draw.

    """
    tier, plan, age, need, area, placement, pid = p[:7]
    strides, age_map = m
    n_area = q.shape[3]
    k_out, k_in = keys[0], keys[1]
    for c in range(len(per_cell)):
        r = c % n_area
        a = c // (n_need * n_area)
        count = 0
        for i in range(cell_start[c], cell_start[c + 1]):
            t = tier[i]
            u = np.uint64(pid[i])
            q_out = q[0, t, a, r]
            if q_out > 0.0:
                v = uniform(k_out, u)
                if v < q_out:
                    decide[i] = -1
                    row = MOVED_OUT if v < q[2, t, a, r] else RESIDUAL_OUT
                    tally[row, flat_index(strides, age_map, t, plan[i], a, need[i], area[i],
                                          placement[i])] += 1
                    continue
            q_in = q[1, t, a, r]
            k = np.int64(0)
            if q_in > 0.0:
                v = uniform(k_in, u)
                whole = np.int64(np.floor(q_in))
                k = whole + (v < q_in - whole)
                if k > 0:
                    q_mig = q[3, t, a, r]
                    whole = np.int64(np.floor(q_mig))
                    k_mig = min(whole + (v < q_mig - whole), k)
                    j = flat_index(strides, age_map, t, plan[i], a, need[i], area[i],
                                   placement[i])
                    tally[MOVED_IN, j] += k_mig
                    tally[RESIDUAL_IN, j] += k - k_mig
            decide[i] = k
            count += 1 + k
        per_cell[c] = count


@njit
def migrate_write(p, cell_start, n_need, n_area, decide, out_start, year_index, area_base, dst):
    """Write the pupils who stay and the arrivals, in cell order, into ``dst``.

    Arrivals follow the pupil they copy, with ids ``encode_pid(year_index, area, age,
    ARRIVAL_K + j)``, ``j`` counting arrivals within (area, age) in cell order: the same ids
    whatever the threads or the chunk of areas.
    """
    n_cells = len(out_start) - 1
    s_tier, s_plan, s_age, s_need, s_area, s_plac, s_pid, s_alloc = p
    d_tier, d_plan, d_age, d_need, d_area, d_plac, d_pid, d_alloc = dst
    running = np.zeros(n_area, np.int64)
    last_age = -1
    for c in range(n_cells):
        a = c // (n_need * n_area)
        if a != last_age:
            running[:] = 0
            last_age = a
        r = c % n_area
        j = out_start[c]
        for i in range(cell_start[c], cell_start[c + 1]):
            k = decide[i]
            if k < 0:
                continue
            for q in range(k + 1):
                d_tier[j] = s_tier[i]
                d_plan[j] = s_plan[i]
                d_age[j] = s_age[i]
                d_need[j] = s_need[i]
                d_area[j] = s_area[i]
                d_plac[j] = s_plac[i]
                if q == 0:
                    d_pid[j] = s_pid[i]
                    d_alloc[j] = s_alloc[i]
                else:
                    d_pid[j] = encode_pid(year_index, area_base + r, a, ARRIVAL_K + running[r])
                    d_alloc[j] = 0  # an arrival neither waits for a place nor is placed away
                    running[r] += 1
                j += 1
