"""The place-allocation kernel: hand-computed cases and properties on random queues."""

import numpy as np
import pytest

from simsend.dims import NEED, PLACEMENT, PLACEMENTS, TIER
from simsend.kernels.allocate import (
    OOA,
    OUT_OF_AREA,
    OVERFLOW,
    WAIT_YEARS,
    WAITING,
    allocate,
)
from simsend.kernels.transitions import Pupils

P = len(PLACEMENTS)
SS, SI, MS, IB = (PLACEMENT[k] for k in ("special_state", "special_independent", "mainstream",
                                          "inclusion_base"))
# marginal: tally by placement only (strides: tier, plan, age, need, area, placement)
M = (np.array([0, 0, 0, 0, 0, 1], np.int64), np.arange(27, dtype=np.int64))


def pupils(tier, placement, need=None, area=None, alloc=None, pid0=0):
    n = len(tier)
    return Pupils(tier=np.array(tier, np.int8), plan=np.full(n, 3, np.int8),
                  age=np.full(n, 10, np.int8),
                  need=np.array(need if need is not None else [0] * n, np.int8),
                  area=np.array(area if area is not None else [0] * n, np.int16),
                  placement=np.array(placement, np.int8),
                  pid=np.arange(pid0, pid0 + n, dtype=np.int64),
                  alloc=np.array(alloc if alloc is not None else [0] * n, np.int8))


def no_new():
    return pupils([], [])


def chain_of(opts=None):
    c = np.full((P, 2), -1, np.int64)
    for p, o in (opts or {}).items():
        c[p, :len(o)] = o
    return c


def run(cur, prev, places, chain, rank=None, new=None, wait_place=MS):
    new = new if new is not None else no_new()
    rank = rank if rank is not None else np.zeros((4, 13), np.int64)
    tally = np.zeros((4, P + 1), np.int64)
    nq = allocate(cur, len(cur.tier), np.array(prev, np.int8), new, len(new.tier), np.int8(3),
                  places, chain, rank, np.uint64(12345), M, wait_place, tally,
                  np.zeros(places.shape, np.int64),
                  np.zeros(len(cur.tier) + len(new.tier) + 3, np.int64))
    return tally, nq


def places_of(**kw):
    p = np.full((1, P), -1, np.int64)
    for k, v in kw.items():
        p[0, PLACEMENT[k]] = v
    return p


def test_priority_fills_spare_places_and_overflows_the_rest():
    # one incumbent in special_state (2 places): one spare place, three requests
    sp = TIER["specialist"]
    cur = pupils([sp, sp, sp, sp], [SS, SS, SS, SS],
                 need=[NEED["MLD"], NEED["PMLD"], NEED["SLD"], NEED["MLD"]])
    prev = [SS, MS, MS, MS]  # pupil 0 stays; 1-3 moved this year
    rank = np.zeros((4, 13), np.int64)
    rank[:, NEED["PMLD"]] = 2
    rank[:, NEED["SLD"]] = 1
    tally, nq = run(cur, prev, places_of(special_state=2), chain_of({SS: [SI]}), rank)
    assert nq == 3
    np.testing.assert_array_equal(cur.placement, [SS, SS, SI, SI])  # PMLD gets the place
    assert tally[OVERFLOW, SS] == 2 and tally[OVERFLOW].sum() == 2
    assert tally[WAITING].sum() == 0 and tally[OUT_OF_AREA].sum() == 0
    assert (cur.alloc == 0).all()


def test_out_of_area_and_waiting():
    sp = TIER["specialist"]
    cur = pupils([sp, sp, sp], [SS, SS, SS])
    prev = [MS, MS, MS]
    # special_state full, independent has one place, then out of area for one more option
    tally, _ = run(cur, prev, places_of(special_state=0, special_independent=1),
                   chain_of({SS: [SI, P]}))
    assert sorted(cur.placement.tolist()) == [SS, SS, SI]
    assert ((cur.alloc & OOA) > 0).sum() == 2  # the two in special_state are out of area
    assert tally[OUT_OF_AREA, SS] == 2 and tally[OVERFLOW, SS] == 3
    # without out of area, two wait where they were (mainstream), for special_state
    cur = pupils([sp, sp, sp], [SS, SS, SS])
    tally, _ = run(cur, prev, places_of(special_state=0, special_independent=1),
                   chain_of({SS: [SI]}))
    assert sorted(cur.placement.tolist()) == [MS, MS, SI]
    assert tally[WAITING, SS] == 2 and tally[WAIT_YEARS, SS] == 2
    # a year later they ask again first (longest wait first) and wait one more year
    waiting = cur.alloc.copy()
    cur2 = pupils([sp, sp, sp, sp], [MS, MS, SI, SS], alloc=[*waiting, 0], pid0=10)
    tally, nq = run(cur2, [MS, MS, SI, MS], places_of(special_state=1, special_independent=1),
                    chain_of({SS: [SI]}))
    assert nq == 3  # two waiting + one new request; the SI incumbent keeps its place
    w = [i for i in range(2) if waiting[i] != 0]
    # the one place goes to a waiting pupil, never to the newcomer (index 3)
    assert cur2.placement[3] == MS and sum(cur2.placement[i] == SS for i in w) == 1
    assert tally[WAITING, SS] == 2 and tally[WAIT_YEARS, SS] == 2 + 1


def test_unlimited_places_change_nothing():
    rng = np.random.default_rng(1)
    n = 500
    cur = pupils(rng.integers(1, 4, n), rng.integers(0, P, n), need=rng.integers(0, 13, n))
    before = [a.copy() for a in cur]
    tally, nq = run(cur, rng.integers(0, P, n), np.full((1, P), -1, np.int64),
                    chain_of({SS: [SI]}))
    assert nq == 0 and tally.sum() == 0
    for a, b in zip(cur, before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(5))
def test_random_queues_respect_places_conservation_and_priority(seed):
    rng = np.random.default_rng(seed)
    n, n_new, n_area = 400, 60, 3
    cur = pupils(rng.choice([-1, 1, 2, 3], n, p=[0.1, 0.3, 0.3, 0.3]),
                 rng.choice([MS, IB, SS, SI], n), need=rng.integers(0, 13, n),
                 area=rng.integers(0, n_area, n))
    prev = np.where(rng.random(n) < 0.6, cur.placement, rng.choice([MS, IB, SS], n)).astype(
        np.int8)
    new = pupils(np.ones(n_new), rng.choice([MS, IB], n_new), need=rng.integers(0, 13, n_new),
                 area=rng.integers(0, n_area, n_new), pid0=10_000)
    places = np.full((n_area, P), -1, np.int64)
    places[:, SS] = rng.integers(10, 40, n_area)
    places[:, IB] = rng.integers(5, 20, n_area)
    places[:, SI] = rng.integers(20, 40, n_area)
    rank = rng.integers(0, 50, (4, 13))
    chain = chain_of({SS: [SI], IB: [MS]})
    asked = np.where(cur.placement != prev, cur.placement, -1)
    tier0, area0 = cur.tier.copy(), cur.area.copy()
    tally, _ = run(cur, prev, places, chain, rank, new)
    # conservation: nobody lost or duplicated; tiers, areas untouched
    np.testing.assert_array_equal(cur.tier, tier0)
    np.testing.assert_array_equal(cur.area, area0)
    alive = cur.tier >= 0
    for a in range(n_area):
        for p in (SS, IB, SI):
            def in_area(pl, ar, al, p=p, a=a):
                return (pl == p) & (ar == a) & ((al & OOA) == 0)

            # places held: stayers', and queued movers' (a refused request goes back to it)
            holds = alive & ((asked < 0) | (places[cur.area, np.maximum(asked, 0)] >= 0))
            keep = (holds & in_area(prev, cur.area, np.zeros(n, np.int8))).sum()
            occ = (alive & in_area(cur.placement, cur.area, cur.alloc)).sum() + in_area(
                new.placement, new.area, new.alloc).sum()
            # places are never exceeded by admissions (incumbents keep theirs)
            assert occ <= max(places[a, p], keep)
    # every survivor is where it asked, at an overflow option, or back where it was (waiting)
    moved = alive & (asked >= 0)
    ok = ((cur.placement == asked) | (cur.placement == prev)
          | ((asked == SS) & (cur.placement == SI)) | ((asked == IB) & (cur.placement == MS)))
    assert ok[moved].all()
    waiting = alive & ((cur.alloc & 7) > 0)
    assert tally[WAITING].sum() == waiting.sum() + ((new.alloc & 7) > 0).sum()
    # priority: no direct request for SS was refused while a lower-rank one got an SS place
    got = moved & (asked == SS) & (cur.placement == SS)
    refused = moved & (asked == SS) & (cur.placement != SS)
    for a in range(n_area):
        g = got & (cur.area == a)
        r = refused & (cur.area == a)
        if g.any() and r.any():
            assert rank[cur.tier[g], cur.need[g]].min() >= rank[cur.tier[r], cur.need[r]].max()
