"""Allocation of places when demand for a placement exceeds the places available.

After a year's moves (and before survivors and new pupils are merged), each pupil who asks for
a placement with limited places this year joins a queue; see :mod:`simsend.rates.provision` for the
rule in words.  Per pupil the state is one int8 ``alloc``:

* bits 0-2: placement waited for, plus 1 (0 = not waiting);
* bits 3-5: years waited so far (capped at 7);
* bit 6: placed out of area (in a placement of the same type in another area, which uses no
  place of the pupil's own area).

Randomness: ties in priority are broken by ``uniform(key, pid)`` on the ``allocate`` stream,
so the outcome depends only on (seed, draw, year, pupil), never on threads or chunking.
"""

import numpy as np

from simsend.kernels._jit import njit
from simsend.kernels.rng import uniform
from simsend.kernels.transitions import flat_index

WANT_MASK = 7
YEARS_SHIFT = 3
YEARS_MASK = 7 << 3
OOA = 64
"""Bit of ``alloc`` marking a pupil placed out of area."""
MAX_WAIT = 7
WAITING, WAIT_YEARS, OUT_OF_AREA, OVERFLOW = 0, 1, 2, 3
"""Rows of the allocation tally."""
N_ALLOC_ROWS = 4
END = -1
"""Chain entry: no further option (the pupil waits)."""


@njit
def _wait_state(want, years):
    return np.int8((want + 1) | (min(years, MAX_WAIT) << YEARS_SHIFT))


@njit
def allocate(cur, n, prev, new, n_new, new_plan, places, chain, rank, key, m, wait_place,
             tally, spare, work):
    """Allocate this year's requests for placements with limited places.

    Parameters
    ----------
    cur : Pupils
        Survivors after the year's moves (``tier`` -1 marks pupils who left), ``n`` long.
    prev : int8 (n,)
        Each survivor's placement before the year's moves.
    new : Pupils
        Pupils identified this year (staged), ``n_new`` long; ``new_plan`` is their plan.
    places : int64 (A, P)
        Places this year per area and placement; -1 = unlimited.
    chain : int64 (P, K)
        Overflow options per placement asked for, in order: a placement code, ``P`` for
        "out of area" (same placement type elsewhere, unlimited), or :data:`END`.
    rank : int64 (4, 13)
        Priority of (tier, need): higher first.
    key : uint64
        ``allocate`` stream key of this year (ties).
    m : tuple (strides, age_map)
        The output marginal.
    wait_place : int
        Placement of a newly identified pupil who waits (survivors wait where they were).
    tally : int64 (4, M)
        Adds waiting (stock, at the placement waited for), years waited (stock, same index),
        out of area (stock, at the placement) and overflow (admissions redirected during the
        year, at the placement asked for).
    spare : int64 (A, P)
        Scratch.
    work : int64 (at least n + n_new,)
        Scratch for the queue and the pupils who stay out of area.

    Returns
    -------
    int
        Number of requests that were queued (asked for a placement with limited places).

    """
    strides, age_map = m
    n_place = places.shape[1]
    k_max = chain.shape[1]
    tier, plan, age, need, area, plac, pid, alloc = cur
    n_tier, _, n_age, n_need, n_area, n_plac, n_pid, n_alloc = new
    # 1. one pass: occupancy of places by pupils who keep theirs, and the queue (pupil index,
    # or -1 - j for new pupil j) at the front of ``work``; pupils placed out of area who stay
    # so (tallied at the end) at its back
    for a in range(places.shape[0]):
        for p in range(n_place):
            spare[a, p] = 0
    n_q = 0
    n_keep = 0
    top = len(work) - 1
    for i in range(n):
        if tier[i] < 0:
            continue
        pl = plac[i]
        ar = area[i]
        st = alloc[i]
        if pl != prev[i]:
            limited = places[ar, pl] >= 0
            # a pupil keeps its place while its request for a limited placement is queued,
            # so a request refused everywhere can go back to it (the place is reused from
            # next year); a move to a placement with unlimited places frees it at once
            if limited and st & OOA == 0:
                spare[ar, prev[i]] += 1
            alloc[i] = 0  # a new placement: no longer out of area or waiting
            if limited:
                work[n_q] = i
                n_q += 1
        elif st & OOA:
            work[top - n_keep] = i
            n_keep += 1
        else:
            if places[ar, pl] >= 0:  # (a read; counting only limited places is cheaper)
                spare[ar, pl] += 1
            w = (st & WANT_MASK) - 1
            if w >= 0:
                if places[ar, w] >= 0:
                    work[n_q] = i
                    n_q += 1
                else:
                    alloc[i] = 0  # the placement waited for is no longer limited
                    plac[i] = w
    for j in range(n_new):
        n_alloc[j] = 0
        if places[n_area[j], n_plac[j]] >= 0:
            work[n_q] = -1 - j
            n_q += 1
    for a in range(places.shape[0]):
        for p in range(n_place):
            spare[a, p] = max(places[a, p] - spare[a, p], 0) if places[a, p] >= 0 else -1
    # 2. the queue's placements asked for and priorities
    q_who = work[:n_q].copy()
    q_want = np.empty(n_q, np.int64)
    q_key = np.empty(n_q, np.float64)
    for q in range(n_q):
        who = q_who[q]
        if who >= 0:
            i = who
            years = 0
            if plac[i] != prev[i]:
                w = plac[i]
            else:
                w = (alloc[i] & WANT_MASK) - 1
                years = (alloc[i] & YEARS_MASK) >> YEARS_SHIFT
            q_want[q] = w
            # longest wait first, then tier and need, then a random tie-break in [0, 1)
            q_key[q] = -(years * 4096 + rank[tier[i], need[i]]) + uniform(key,
                                                                          np.uint64(pid[i]))
        else:
            j = -1 - who
            q_want[q] = n_plac[j]
            q_key[q] = -rank[n_tier[j], n_need[j]] + uniform(key, np.uint64(n_pid[j]))
    order = np.argsort(q_key, kind="mergesort")
    # 3. rounds: first every request for its own placement, then the overflow options
    got = np.full(n_q, -2, np.int64)  # -2 unresolved; placement granted; n_place = out of area
    for r in range(k_max + 1):
        for o in range(n_q):
            d = order[o]
            if got[d] != -2:
                continue
            want = q_want[d]
            c = want if r == 0 else chain[want, r - 1]
            if c == END:
                got[d] = -1
                continue
            who = q_who[d]
            a = area[who] if who >= 0 else n_area[-1 - who]
            if c == n_place:
                got[d] = n_place
            elif spare[a, c] < 0:
                got[d] = c
            elif spare[a, c] > 0:
                spare[a, c] -= 1
                got[d] = c
    # 4. apply, tallying overflow (at the placement asked for) as it happens
    for d in range(n_q):
        who = q_who[d]
        want = q_want[d]
        g = got[d]
        if who >= 0:
            t, pn, ag, nd, ar = tier[who], plan[who], age[who], need[who], area[who]
            waited = plac[who] == prev[who]
        else:
            j = -1 - who
            t, pn, ag, nd, ar = n_tier[j], new_plan, n_age[j], n_need[j], n_area[j]
            waited = False
        redirected = g != want and g >= 0
        if redirected:
            tally[OVERFLOW, flat_index(strides, age_map, t, pn, ag, nd, ar, want)] += 1
        if g == -2 or g == -1:  # waits
            if who >= 0:
                years = ((alloc[who] & YEARS_MASK) >> YEARS_SHIFT) if waited else 0
                plac[who] = prev[who]
                alloc[who] = _wait_state(want, years + 1)
            else:
                n_plac[-1 - who] = wait_place
                n_alloc[-1 - who] = _wait_state(want, 1)
        else:
            pl = want if g == n_place else g
            flag = OOA if g == n_place else 0
            if who >= 0:
                plac[who] = pl
                alloc[who] = flag
            else:
                n_plac[-1 - who] = pl
                n_alloc[-1 - who] = flag
    # 5. census stocks: waiting (at the placement waited for) and out of area; every pupil
    # with a non-zero state is in the queue or stayed out of area
    for q in range(n_q):
        who = q_who[q]
        if who >= 0:
            if alloc[who] != 0:
                _stock(tally, strides, age_map, tier[who], plan[who], age[who], need[who],
                       area[who], plac[who], alloc[who])
        else:
            j = -1 - who
            if n_alloc[j] != 0:
                _stock(tally, strides, age_map, n_tier[j], new_plan, n_age[j], n_need[j],
                       n_area[j], n_plac[j], n_alloc[j])
    for k in range(n_keep):
        i = work[top - k]
        _stock(tally, strides, age_map, tier[i], plan[i], age[i], need[i], area[i], plac[i],
               alloc[i])
    return n_q


@njit
def _stock(tally, strides, age_map, t, pn, ag, nd, ar, pl, st):
    if st & OOA:
        tally[OUT_OF_AREA, flat_index(strides, age_map, t, pn, ag, nd, ar, pl)] += 1
    w = (st & WANT_MASK) - 1
    if w >= 0:
        j = flat_index(strides, age_map, t, pn, ag, nd, ar, w)
        tally[WAITING, j] += 1
        tally[WAIT_YEARS, j] += (st & YEARS_MASK) >> YEARS_SHIFT
