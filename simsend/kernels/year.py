r"""One pass over the individuals per simulated year: migration, moves and the census, fused.

The engine's year for individuals was three passes over every pupil, each writing every pupil:
migration wrote the stayers and their arrivals into the second buffer
(:func:`simsend.kernels.migrate.migrate_write`), the fused step then moved them in place
(:func:`simsend.kernels.transitions.step_cells`) and the merge copied survivors and new pupils
into cell order again (:func:`simsend.kernels.merge.merge_cells`).  :func:`year_pass` does the
same work in one pass that writes each survivor once, straight into its census slot: for every
cell of the new census, the pupils identified into it this year first, then the survivors of
the cell one year younger, each pupil's arrivals right behind it.

Every draw is the one the three passes make, from the same key and pupil id, and pupils land in
the same order (so arrivals get the same ids and the allocation visits the same queue): the
pass gives the census, tallies and ids of the three passes bit for bit
(``tests/kernels/test_year.py`` checks it against them).  The pass is serial: it serves a
draw thread, which runs whole draws on one thread; a lone draw's parallel kernels keep the three
passes.

Each pupil id's mixed counter :math:`M(c\gamma + \delta)` is computed once and shared by the
pupil's five streams (:func:`simsend.kernels.rng.uniform_mixed`): the same numbers, one
finaliser fewer per draw.
"""

import numpy as np

from simsend.kernels._jit import njit
from simsend.kernels.identify import encode_pid
from simsend.kernels.migrate import ARRIVAL_K, MOVED_IN, MOVED_OUT, RESIDUAL_IN, RESIDUAL_OUT
from simsend.kernels.rng import mix_counter, mix_key, uniform_mixed
from simsend.kernels.sampling import categorical_count
from simsend.kernels.transitions import (
    AGED_OUT,
    DEESCALATED,
    ESCALATED,
    LEFT,
    MAX_AGE,
    SPECIALIST,
    TO_SPECIALIST,
    flat_index,
    plan_for,
)


@njit(inline="always")
def _place(pl, mc, row, mk):
    """:func:`simsend.kernels.transitions.draw_place` with a mixed key and counter.

    The categorical draw is :func:`simsend.kernels.sampling.categorical_count`, the same
    draw from a cumulative row without the binary search's unpredictable branches (each
    specialist's placement is drawn from its area's calibrated row).
    """
    if row[pl] >= 1.0 and (pl == 0 or row[pl - 1] <= 0.0):
        return pl
    return categorical_count(uniform_mixed(mk, mc), row)


@njit
def year_pass(src, cell_start, mig, step, new, dst, tallies):
    """Advance every individual one year from ``src`` into ``dst``; returns the census size.

    Parameters
    ----------
    src : Pupils
        The census that opens the year, grouped by cell; ``cell_start`` (n_cells + 1,).
    mig : tuple (q (4, 4, 26, A), keys uint64 (2,): leave, arrive; tally (4, M), year_index,
        area_base)
        Migration as :func:`simsend.kernels.migrate.migrate_decide` and ``migrate_write``
        draw it (a zero ``q``: nobody moves, no number drawn).
    step : tuple (tables, keys uint64 (3,): leave, tier, placement; (strides, age_map),
        flags int8 (2,))
        As :func:`simsend.kernels.transitions.step_pupils` takes them.
    new : tuple (staged Pupils, order, new_count, new_start, new_plan)
        This year's identified pupils and their counting sort by cell
        (:func:`simsend.kernels.merge.sort_new`).
    dst : tuple (Pupils, out_start int64 (n_cells + 1,), prev int8, arrival_prev int)
        The census written (``out_start`` its cell starts) and, when ``prev`` is not empty,
        each survivor's placement before its move (the allocation's request), or
        ``arrival_prev`` for this year's arrivals when it is >= 0 (arrivals then ask for their
        placement like newcomers: :func:`simsend.engine.loop.arrivals`).
    tallies : tuple (flows (T, 5, M), trans (T, 4, 4), to_pool (T, 26, A), stock (T, M),
        ident (T, M), census bool)
        Row 0 of each is added to; with ``census`` False the stock and identified tallies
        are left to :func:`tally_census` (after the allocation has moved pupils).

    Returns
    -------
    int
        Pupils in the new census, or -1 when ``dst`` is too small (nothing but the tallies
        written: grow it, zero them and call again).

    """
    q, mkeys, mtally, year_index, area_base = mig
    tables, skeys, m, flags = step
    staged, order, new_count, new_start, new_plan = new
    d, out_start, prev, arrival_prev = dst
    flows, trans, to_pool, stock, ident, census = tallies
    tier_cdf, place_cdf, p_leave, spec_cdf, entry_cdf = tables
    s_tier, s_plan, _, s_need, s_area, s_plac, s_pid, s_alloc = src
    n_tier, _, n_age, n_need, n_area, n_plac, n_pid, n_alloc = staged
    d_tier, d_plan, d_age, d_need, d_area, d_plac, d_pid, d_alloc = d
    strides, age_map = m
    n_nd, n_ar = tier_cdf.shape[1], tier_cdf.shape[2]
    n_na = n_nd * n_ar
    n_cells = len(cell_start) - 1
    cap = len(d_pid)
    k_out, k_in = mix_key(mkeys[0]), mix_key(mkeys[1])
    k_leave, k_tier, k_place = mix_key(skeys[0]), mix_key(skeys[1]), mix_key(skeys[2])
    calibrated = spec_cdf.shape[0] > 0
    keep_prev = len(prev) > 0
    reformed, to_pool_on_leave = flags[0], flags[1]
    s_t, s_p, s_l = strides[0], strides[1], strides[5]
    running = np.zeros(n_ar, np.int64)
    cq = np.zeros((8, 4))
    tr = np.zeros((4, 4), np.int64)
    last_age = -1
    j = 0
    # new cell c holds the pupils identified into it, then the survivors of old cell c - n_na;
    # c >= n_cells visits the oldest old cells, whose pupils all age out
    for c in range(n_cells + n_na):
        if c < n_cells:
            out_start[c] = j
            if j + new_count[c] > cap:
                return -1
            for k in range(new_start[c], new_start[c] + new_count[c]):
                i = order[k]
                d_tier[j] = n_tier[i]
                d_plan[j] = new_plan
                d_age[j] = n_age[i]
                d_need[j] = n_need[i]
                d_area[j] = n_area[i]
                d_plac[j] = n_plac[i]
                d_pid[j] = n_pid[i]
                d_alloc[j] = n_alloc[i]
                if census:
                    ident[0, flat_index(strides, age_map, 1, new_plan, n_age[i], n_need[i],
                                        n_area[i], n_plac[i])] += 1
                j += 1
        co = c - n_na
        if co >= 0:
            a0 = co // n_na  # age at the census that opens the year
            r = co % n_ar
            if a0 != last_age:
                running[:] = 0
                last_age = a0
            a = a0 + 1
            rows = tier_cdf[min(a, MAX_AGE), (co // n_ar) % n_nd, r]
            # the cell's rates by tier, taken out of the loop over its pupils
            for t in range(4):
                cq[0, t] = q[0, t, a0, r]
                cq[1, t] = q[2, t, a0, r]
                cq[2, t] = q[1, t, a0, r]
                cq[3, t] = np.floor(q[1, t, a0, r])
                cq[4, t] = q[1, t, a0, r] - cq[3, t]
                cq[5, t] = np.floor(q[3, t, a0, r])
                cq[6, t] = q[3, t, a0, r] - cq[5, t]
                cq[7, t] = p_leave[t, min(a, MAX_AGE)]
            for i in range(cell_start[co], cell_start[co + 1]):
                t = s_tier[i]
                pl = s_plac[i]
                pn = s_plan[i]
                mc = mix_counter(np.uint64(s_pid[i]))
                # migration (migrate_decide): leave, or the number of arrivals copying i
                q_out = cq[0, t]
                if q_out > 0.0:
                    v = uniform_mixed(k_out, mc)
                    if v < q_out:
                        row = MOVED_OUT if v < cq[1, t] else RESIDUAL_OUT
                        mtally[row, flat_index(strides, age_map, t, pn, a0, s_need[i],
                                               s_area[i], pl)] += 1
                        continue
                q_in = cq[2, t]
                n_copy = np.int64(0)
                if q_in > 0.0:
                    v = uniform_mixed(k_in, mc)
                    n_copy = np.int64(cq[3, t]) + (v < cq[4, t])
                    if n_copy > 0:
                        k_mig = min(np.int64(cq[5, t]) + (v < cq[6, t]), n_copy)
                        jj = flat_index(strides, age_map, t, pn, a0, s_need[i], s_area[i], pl)
                        mtally[MOVED_IN, jj] += k_mig
                        mtally[RESIDUAL_IN, jj] += n_copy - k_mig
                nd, ar = s_need[i], s_area[i]
                for cp in range(n_copy + 1):
                    if cp == 0:
                        pid = s_pid[i]
                        al = s_alloc[i]
                        mcp = mc
                    else:  # an arrival (migrate_write): the next id of its (area, age)
                        pid = encode_pid(year_index, area_base + r, a0, ARRIVAL_K + running[r])
                        running[r] += 1
                        al = np.int8(0)
                        mcp = mix_counter(np.uint64(pid))
                    # the year's moves (step_cells / move_one)
                    if a > MAX_AGE or uniform_mixed(k_leave, mcp) < cq[7, t]:
                        jj = flat_index(strides, age_map, t, pn, a0, nd, ar, pl)
                        flows[0, LEFT, jj] += 1
                        if a > MAX_AGE:
                            flows[0, AGED_OUT, jj] += 1
                        elif to_pool_on_leave:
                            to_pool[0, a, ar] += 1
                        continue
                    u = uniform_mixed(k_tier, mcp)
                    nt = (u >= rows[t, 0]) + (u >= rows[t, 1]) + (u >= rows[t, 2])
                    tr[t, nt] += 1
                    if nt == 0:
                        to_pool[0, a, ar] += 1
                        jj = flat_index(strides, age_map, 0, 0, a, nd, ar, pl)
                        flows[0, DEESCALATED, jj] += 1
                        continue
                    if calibrated and nt == SPECIALIST:  # the area's own specialist rows
                        prow = entry_cdf[r, a] if t < SPECIALIST else spec_cdf[r, a, pl]
                    else:
                        prow = place_cdf[nt, a, pl]
                    npl = _place(pl, mcp, prow, k_place)
                    npn = pn
                    if nt != t:
                        if nt == SPECIALIST:
                            jj = flat_index(strides, age_map, t, pn, a, nd, ar, pl)
                            flows[0, TO_SPECIALIST, jj] += 1
                        npn = plan_for(nt, reformed)
                        jj = flat_index(strides, age_map, nt, npn, a, nd, ar, npl)
                        flows[0, ESCALATED if nt > t else DEESCALATED, jj] += 1
                    if j >= cap:
                        return -1
                    d_tier[j] = nt
                    d_plan[j] = npn
                    d_age[j] = a
                    d_need[j] = nd
                    d_area[j] = ar
                    d_plac[j] = npl
                    d_pid[j] = pid
                    d_alloc[j] = al
                    if keep_prev:
                        prev[j] = pl if cp == 0 or arrival_prev < 0 else arrival_prev
                    j += 1
        if c < n_cells and census and j > out_start[c]:
            q0 = out_start[c]
            base = flat_index(strides, age_map, 0, 0, d_age[q0], d_need[q0], d_area[q0], 0)
            for k in range(q0, j):
                stock[0, base + d_tier[k] * s_t + d_plan[k] * s_p + d_plac[k] * s_l] += 1
    out_start[n_cells] = j
    for t in range(4):
        for nt in range(4):
            trans[0, t, nt] += tr[t, nt]
    return j


@njit
def hide_new(tier, out_start, new_count):
    """Mark the new pupils at the head of each cell as absent (tier -1) for the allocation.

    :func:`simsend.kernels.allocate.allocate` takes survivors and new pupils apart, new pupils
    from the staging buffer; :func:`restore_new` puts them back.
    """
    for c in range(len(new_count)):
        for k in range(out_start[c], out_start[c] + new_count[c]):
            tier[k] = -1


@njit
def restore_new(dst, out_start, new, order):
    """Copy the staged pupils' tier, placement and allocation state back to their slots.

    ``new`` is ``(staged Pupils, new_count, new_start)``.
    """
    staged, new_count, new_start = new
    n_tier, n_plac, n_alloc = staged.tier, staged.placement, staged.alloc
    d_tier, d_plac, d_alloc = dst.tier, dst.placement, dst.alloc
    for c in range(len(new_count)):
        j = out_start[c]
        for k in range(new_start[c], new_start[c] + new_count[c]):
            i = order[k]
            d_tier[j] = n_tier[i]
            d_plac[j] = n_plac[i]
            d_alloc[j] = n_alloc[i]
            j += 1


@njit
def tally_census(p, out_start, new_count, new_plan, m, tallies):
    """Tally the census stock and the identified pupils of a census in cell order.

    What :func:`year_pass` tallies as it writes, for when the allocation moves pupils after
    it: ``tallies`` is ``(stock (T, M), ident (T, M))``, row 0 added to; the first
    ``new_count[c]`` pupils of cell ``c`` are this year's identified pupils.
    """
    stock, ident = tallies
    strides, age_map = m
    tier, plan, age, need, area, plac = p.tier, p.plan, p.age, p.need, p.area, p.placement
    s_t, s_p, s_l = strides[0], strides[1], strides[5]
    for c in range(len(new_count)):
        q0, q1 = out_start[c], out_start[c + 1]
        for k in range(q0, q0 + new_count[c]):
            ident[0, flat_index(strides, age_map, 1, new_plan, age[k], need[k], area[k],
                                plac[k])] += 1
        if q1 > q0:
            base = flat_index(strides, age_map, 0, 0, age[q0], need[q0], area[q0], 0)
            for k in range(q0, q1):
                stock[0, base + tier[k] * s_t + plan[k] * s_p + plac[k] * s_l] += 1
