"""The simulation loop: draws x years x ordered steps.

Each simulated year runs census to census (January to January) in this order, declared once
in :data:`STEPS`:

0. ``migration``       children of the opening census leave and arrive by (tier, age, area)
                       (:mod:`simsend.rates.demography`: net migration for the universal
                       and targeted tiers, plan transfers between councils for the
                       specialist tier); arrivals copy the tier, plan, need and placement
                       of a resident child of their age.  Without demography nothing moves;
                       a calibrated posterior's stock residual (``YearTables.net_flow``)
                       moves individuals in and out the same way, with or without one.
1. ``age_and_leave``   every child ages one year; individuals past 25 age out and others leave
                       by ``p_leave[tier, age]`` (with a demography a leaver stays in the
                       population, back in the universal pool: moving away and death are
                       the demography's); universal children past 25 age out and leave
                       by ``p_leave[universal, age]`` (one binomial per age and area).
2. ``entrants``        age-0 children join the universal pool (the demography's births of
                       the year, or the fixed ``births`` without it).
3. ``identification``  universal children are identified into the targeted tier, one binomial
                       per (age, area); each new pupil's need and placement are drawn by age
                       (and with a balanced split, targeted-plus with the split's share).
                       New pupils take part in tier and placement moves from the next year.
4. ``tier_moves``      individuals move between tiers by ``tier_cdf[age, need, area, tier]``;
                       a move to universal returns the child to the pool.
5. ``placement_moves`` individuals who stay identified move placement by
                       ``place_cdf[tier, age, placement]`` (mostly at phase transfer).
6. ``allocation``      with a provision plan, requests for placements with limited places
                       are granted, redirected by overflow rules or left waiting
                       (:mod:`simsend.rates.provision`); without one nothing happens.
7. ``tallies``         survivors and new pupils are merged in cell order while the census
                       stock is counted; flows were counted as they happened.

The tables of each year come from :meth:`simsend.rates.parameters.ParameterSet.year_tables`,
where the reform timeline (:mod:`simsend.rates.reform`) and a scenario's modifiers
(:mod:`simsend.config.scenarios`) act; the loop is the same for every scenario.  The statutory
pipeline (:mod:`simsend.statutory.ehc_pipeline`) is drawn from the tallies afterwards, on its
own streams.

On a draw thread (and for a small state, or a machine with few cores) the individuals' part
of steps 0, 1, 4, 5 and 7 is one pass (:func:`simsend.kernels.year.year_pass`) that writes each
survivor once, into its slot in the next census; a lone draw's parallel kernels make three
passes instead (migration, the fused step :func:`simsend.kernels.transitions.step_pupils`, the
merge).  Because each random number is a pure function of (seed, draw, stream, year, pupil id)
and pupils keep the same order, both give the same draws and the same census.
Serial and parallel runs call the same per-draw function, :func:`run_draw`.  Several draws
share the threads (:func:`draw_threads`: each draw on one thread, single-thread kernels); a lone
draw runs its kernels in parallel instead, given :data:`PARALLEL_THREADS` threads.  Either way
every draw is the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numba
import numpy as np

from simsend.dims import AGES, NEEDS, PLACEMENTS, PLAN
from simsend.engine.population import Population
from simsend.engine.streams import STREAM, draw_keys
from simsend.engine.tally import FLOW, FLOWS, Layout
from simsend.engine.threads import draw_threads, on_draw_threads
from simsend.kernels.allocate import N_ALLOC_ROWS, allocate
from simsend.kernels.identify import (
    PID_AGE_BITS,
    PID_AREA_BITS,
    PID_K_BITS,
    new_pupils,
    new_pupils_serial,
    thin_pool,
)
from simsend.kernels.merge import merge_and_tally, merge_and_tally_serial, sort_new
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
from simsend.kernels.transitions import (
    AGED_OUT,
    DEESCALATED,
    ESCALATED,
    LEFT,
    N_FLOW_ROWS,
    TO_SPECIALIST,
    step_pupils,
    step_pupils_serial,
)
from simsend.kernels.year import hide_new, restore_new, tally_census, year_pass
from simsend.rates.demography import DemographySource, YearMoves, with_net_flow
from simsend.rates.parameters import ParameterSet
from simsend.rates.provision import kernel_places
from simsend.rates.sources import ParameterSource

STEPS = ("migration", "age_and_leave", "entrants", "identification", "tier_moves",
         "placement_moves", "allocation", "tallies")
"""The order of processes within a simulated year."""

N_A, N_N, N_T = len(AGES), len(NEEDS), 4
PARALLEL_MIN = 20_000
"""Below this many individuals a year's kernels run on one thread: starting a parallel region
costs more than the work (the results are the same either way).  Measured on the quiet 2-core
machine: one council of about 40,000 individuals ran 150 draws in 2.5-2.8 s with two threads
against 3.5-3.6 s with one."""
PARALLEL_THREADS = 4
"""A lone draw runs its year as three parallel passes (migration, the fused step, the merge)
only with at least this many threads; with fewer it runs the one-pass year on one thread.
Measured on the 2-core machine (load 5.9), a year of England (1.97 million individuals):
58 ms in one pass on one thread against 110 ms for the three passes on two threads.  Not
measured with more cores, where the parallel step and merge may win (migration stays serial)."""


@dataclass(frozen=True)
class Job:
    """What every draw of a run shares: the baseline, the horizon, the seed and the marginal.

    Attributes
    ----------
    individuals : int array (4, 26, 13, n_areas, 7)
        Baseline pupils by (tier, age, need, area, placement).
    pool : int array (26, n_areas)
        Baseline universal-tier children.
    n_years : int
        Census years including the baseline.
    seed : int
        Root seed.
    layout : Layout
        The marginal to tally.
    area_base, area_total : int
        When ``individuals`` and ``pool`` hold a chunk of a run's areas: the run index of the
        chunk's first area and the run's area count (see :class:`Population`); the chunk then
        gives exactly the whole run's tallies for its areas (:mod:`simsend.runner.distributed`).
    demography : DemographySource or None
        Births, migration and plan transfers of each draw (for these areas); None = the
        fixed entrants of the parameter sets and no migration.

    """

    individuals: np.ndarray
    pool: np.ndarray
    n_years: int
    seed: int
    layout: Layout
    area_base: int = 0
    area_total: int | None = None
    demography: DemographySource | None = None


@dataclass
class Outputs:
    """Raw tallies of a set of draws (the source of truth; summaries derive from these).

    Attributes
    ----------
    draws : ndarray (D,)
        Monte Carlo draw numbers.
    param_draw : ndarray (D,)
        Which parameter set fed each draw (-1 for fixed rates).
    stock : int32 (D, Y, M)
        Census stock per year over the flat marginal.
    flows : int32 (D, Y, 4, M)
        ``FLOWS`` during the year ending at each census (zero at the baseline year).
    transitions : int32 (D, Y, 4, 4)
        Individuals moving from tier ``i`` to tier ``j`` during the year (stays on the diagonal).
    alloc : int32 (D, Y, 4, M) or None
        With a provision plan, the allocation tallies
        (:data:`simsend.engine.tally.ALLOC_VARS`); None without one.

    """

    draws: np.ndarray
    param_draw: np.ndarray
    stock: np.ndarray
    flows: np.ndarray
    transitions: np.ndarray
    alloc: np.ndarray | None = None


class _Scratch:
    """Per-run buffers reused across years and draws (allocate once)."""

    def __init__(self, n_areas: int, m: int, n_cells: int, serial: bool = False):
        self.serial = serial  # one thread per draw: kernels never start a parallel region
        # per-thread tallies: a draw thread's one-thread kernels use row 0 only
        t = 1 if serial else numba.config.NUMBA_NUM_THREADS
        self.flows = np.zeros((t, N_FLOW_ROWS, m), np.int64)
        self.trans = np.zeros((t, 4, 4), np.int64)
        self.to_pool = np.zeros((t, N_A, n_areas), np.int64)
        self.stock = np.zeros((t, m), np.int64)
        self.ident = np.zeros((t, m), np.int64)
        self.surv = np.zeros(n_cells + N_N * n_areas, np.int64)
        self.new_count = np.zeros(n_cells, np.int64)
        self.new_start = np.zeros(n_cells, np.int64)
        self.out_start = np.zeros(n_cells + 1, np.int64)
        self.counts = np.zeros((N_A, n_areas), np.int64)
        self.tmp = np.zeros((N_A, n_areas), np.int64)
        self.order = np.zeros(1024, np.int64)
        self.reformed = np.zeros(2, np.int8)  # flags: reformed, leavers return to the pool
        self.prev = np.zeros(1024, np.int8)
        self.alloc = np.zeros((N_ALLOC_ROWS, m), np.int64)
        self.spare = np.zeros((n_areas, len(PLACEMENTS)), np.int64)
        self.work = np.zeros(1024, np.int64)
        self.mig = np.zeros((4, m), np.int64)
        self.decide = np.zeros(1024, np.int64)
        self.per_cell = np.zeros(n_cells, np.int64)
        self.no_moves = np.zeros((4, N_T, N_A, n_areas))  # migration rates when none move
        self.no_prev = np.zeros(0, np.int8)

    def zero(self) -> None:
        for a in (self.flows, self.trans, self.to_pool, self.stock, self.ident, self.surv,
                  self.mig):
            a[:] = 0


def _chunks(starts: np.ndarray, n_parts: int) -> np.ndarray:
    """Split cells into ``n_parts`` runs of about equal pupil counts (cell boundaries)."""
    targets = np.arange(n_parts + 1, dtype=np.int64) * int(starts[-1]) // n_parts
    cuts = np.searchsorted(starts, targets, side="left")
    cuts[0], cuts[-1] = 0, len(starts) - 1
    # sorted already: dropping repeats is all np.unique did (at a tenth of its cost)
    return cuts[np.concatenate(([True], cuts[1:] != cuts[:-1]))].astype(np.int64)


def _pool_tally(layout: Layout, pool: np.ndarray, out: np.ndarray, age_shift: int = 0) -> None:
    """Add universal children (by age, area) to a flat tally; ``age_shift`` picks the age row."""
    idx = layout.pool_index if age_shift == 0 else layout.pool_index[:-1]
    vals = pool if age_shift == 0 else pool[1:]
    out += np.bincount(idx.ravel(), weights=vals.ravel(), minlength=out.size).astype(np.int64)


def _kernels(n: int, serial: bool = False):
    """(identification, fused step, merge) kernels: one thread below :data:`PARALLEL_MIN`.

    Or with fewer threads than :data:`PARALLEL_THREADS`; the one-thread step means the
    one-pass year (:func:`run_year`).
    """
    if not serial and n >= PARALLEL_MIN and numba.get_num_threads() >= PARALLEL_THREADS:
        return new_pupils, step_pupils, merge_and_tally
    return new_pupils_serial, step_pupils_serial, merge_and_tally_serial


def migrate_pool(pop: Population, moves: YearMoves | None, net: np.ndarray | None, yi: int,
                 keys: np.ndarray, layout: Layout, sc: _Scratch) -> np.ndarray:
    """Step ``migration`` for the universal pool (``sc.mig``); returns the individuals' rates.

    ``moves`` is the draw's demography (None: nobody migrates), ``net`` the year's net flow
    of individuals the rates do not explain (:attr:`YearTables.net_flow`; None: none),
    added to their leaving and arrival rates.  The rates returned, (4, 4, 26, A), are what
    :func:`simsend.kernels.migrate.migrate_decide` takes.
    """
    if moves is not None:
        pool = pop.pool
        pool_departures(pool, np.ascontiguousarray(moves.pool_out[yi]),
                        keys[STREAM["migrate_out_pool"]], sc.tmp, pop.area_base,
                        pop.area_total)
        _pool_tally(layout, sc.tmp, sc.mig[MOVED_OUT])
        pool_arrivals(pool, np.ascontiguousarray(moves.pool_in[yi]),
                      keys[STREAM["migrate_in_pool"]], sc.tmp, pop.area_base, pop.area_total)
        _pool_tally(layout, sc.tmp, sc.mig[MOVED_IN])
        q_out, q_in = moves.ind_out[yi], moves.ind_in[yi]
    else:
        q_out = q_in = np.zeros((N_T, N_A, pop.n_areas))
    return np.stack([*with_net_flow(q_out, q_in, net), q_out, q_in])


def migrate(pop: Population, q: np.ndarray, yi: int, keys: np.ndarray, layout: Layout,
            sc: _Scratch) -> None:
    """Step ``migration`` for individuals, by the rates ``q`` of :func:`migrate_pool`.

    The lone draw's path (parallel kernels); a draw thread's :func:`simsend.kernels.year.year_pass`
    does the same draws in its one pass.
    """
    m = layout.marginal
    n = pop.n
    if len(sc.decide) < n:
        sc.decide = np.zeros(int(n * 1.5) + 1, np.int64)
    migrate_decide(pop.cur, pop.cell_start, N_N, q, _migrate_keys(keys),
                   (m.strides, m.age_map), sc.decide, sc.per_cell, sc.mig)
    start = np.zeros(pop.n_cells + 1, np.int64)
    np.cumsum(sc.per_cell, out=start[1:])
    n_out = int(start[-1])
    if n_out > pop.capacity:
        pop.reserve(n_out)
    migrate_write(pop.cur, pop.cell_start, N_N, pop.n_areas, sc.decide, start, yi,
                  pop.area_base, pop.nxt)
    pop.swap(n_out, start)


def _migrate_keys(keys: np.ndarray) -> np.ndarray:
    return np.array([keys[STREAM["migrate_out"]], keys[STREAM["migrate_in"]]], np.uint64)


def _step_keys(keys: np.ndarray) -> np.ndarray:
    return np.array([keys[STREAM["leave"]], keys[STREAM["tier"]], keys[STREAM["placement"]]],
                    np.uint64)


def arrivals(pid: np.ndarray, yi: int) -> np.ndarray:
    """Mask of pupils who arrived by migration in year ``yi`` (from their ids).

    An arrival copies a resident's placement without asking for a place; with a provision
    plan it asks like a newly identified pupil: its placement before the year is taken as the
    waiting placement, so a full placement sends it to the overflow options or to wait there.
    """
    pid = pid.astype(np.int64)
    year = pid >> (PID_K_BITS + PID_AGE_BITS + PID_AREA_BITS)
    return (year == yi) & ((pid & ARRIVAL_K) != 0)


def run_year(pop: Population, ps: ParameterSet, yi: int, keys: np.ndarray, layout: Layout,
             sc: _Scratch, moves: YearMoves | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Advance ``pop`` by one year (census ``yi - 1`` to ``yi``); returns (stock, flows, trans).

    With a provision plan the allocation tallies of the year are left in ``sc.alloc``;
    ``moves`` is the draw's demography (None: no migration, the parameter set's births).
    """
    tab = ps.year_tables(yi)
    n_areas = pop.n_areas
    sc.zero()
    sc.reformed[0] = tab.reformed  # plan held by pupils moving into a targeted tier
    # With a demography, migration and deaths are its business: leaving support (moving on to
    # work or study, a plan ceased) leaves the child in the population, in the pool.
    sc.reformed[1] = moves is not None
    # one pass over the individuals on a draw thread (or a small state); else three passes
    fused = _kernels(pop.n, sc.serial)[1] is step_pupils_serial
    # 0. migration (and the net flow of individuals the rates do not explain)
    q = None
    if moves is not None or tab.net_flow is not None:
        q = migrate_pool(pop, moves, tab.net_flow, yi, keys, layout, sc)
        if not fused:
            migrate(pop, q, yi, keys, layout, sc)
    # 1. age_and_leave (universal pool; individuals are aged in the fused kernel below)
    left_pool = np.zeros(layout.size, np.int64)
    aged_out = np.zeros((N_A, n_areas), np.int64)
    aged_out[-1] = pop.pool[-1]
    pool = pop.pool
    pool[1:] = pool[:-1].copy()
    pool[0] = 0
    p_uleave = np.ascontiguousarray(np.broadcast_to(tab.p_leave[0][:, None], pool.shape))
    thin_pool(pool, p_uleave, keys[STREAM["pool_leave"]], sc.tmp, pop.area_base, pop.area_total)
    _pool_tally(layout, aged_out, left_pool)
    aged_pool = left_pool.copy()  # universal children ageing past 25
    _pool_tally(layout, sc.tmp, left_pool, age_shift=1)
    # 2. entrants
    if moves is None:
        pool[0] = tab.births
    else:
        births = moves.births[yi] if tab.births_factor is None else \
            moves.births[yi] * tab.births_factor
        pool[0] = np.rint(births).astype(np.int64)
    # 3. identification
    thin_pool(pool, tab.p_identify, keys[STREAM["identify"]], sc.counts, pop.area_base,
              pop.area_total)
    n_new = int(sc.counts.sum())
    offsets = (np.cumsum(sc.counts.ravel()) - sc.counts.ravel()).reshape(sc.counts.shape)
    pop.reserve_staged(n_new)
    k_new, k_step, k_merge = _kernels(pop.n, sc.serial)
    k_new(sc.counts, offsets, yi, tab.need_cdf, tab.place_new_cdf,
          np.array([keys[STREAM["need"]], keys[STREAM["placement_new"]],
                    keys[STREAM["identify_tier"]]], np.uint64),
          pop.staged, pop.area_base, tab.identify_tp)
    if len(sc.order) < n_new:
        sc.order = np.zeros(max(n_new, int(len(sc.order) * 1.5)), np.int64)
    sort_new(pop.staged, n_new, N_N, n_areas, sc.new_count, sc.new_start, sc.order)
    if fused:
        _year_pass(pop, tab, (yi, keys, q), layout, sc, moves is not None, n_new)
    else:
        _three_passes(pop, tab, (yi, keys), layout, sc, moves is not None, n_new)
    stock = sc.stock.sum(axis=0)
    _pool_tally(layout, pool, stock)
    kernel_rows = sc.flows.sum(axis=0)  # (N_FLOW_ROWS, M), rows named in kernels.transitions
    flows = np.empty((len(FLOWS), layout.size), np.int64)
    flows[FLOW["n_identified"]] = sc.ident.sum(axis=0)
    flows[FLOW["n_escalated"]] = kernel_rows[ESCALATED]
    flows[FLOW["n_deescalated"]] = kernel_rows[DEESCALATED]
    flows[FLOW["n_left"]] = kernel_rows[LEFT] + left_pool
    flows[FLOW["n_to_specialist"]] = kernel_rows[TO_SPECIALIST]
    flows[FLOW["n_aged_out"]] = kernel_rows[AGED_OUT] + aged_pool
    flows[FLOW["n_moved_out"]] = sc.mig[MOVED_OUT]
    flows[FLOW["n_moved_in"]] = sc.mig[MOVED_IN]
    flows[FLOW["n_residual_out"]] = sc.mig[RESIDUAL_OUT]
    flows[FLOW["n_residual_in"]] = sc.mig[RESIDUAL_IN]
    return stock, flows, sc.trans.sum(axis=0)


def _year_pass(pop: Population, tab, year: tuple, layout: Layout, sc: _Scratch,
               arriving: bool, n_new: int) -> None:
    """Run steps 4-7 (and 0 for individuals) in one pass (:func:`~simsend.kernels.year.year_pass`).

    ``year`` is (year index, the year's stream keys, migration rates or None); ``arriving``
    says this year's migrants ask for their placements like newcomers (a demography).
    """
    yi, keys, q = year
    m = layout.marginal
    if q is None:
        q = sc.no_moves
    places = tab.places is not None
    new_plan = new_plan_of(tab)
    staged_new = (pop.staged, sc.order, sc.new_count, sc.new_start, np.int8(new_plan))
    mig0 = sc.mig.copy()  # the pool's migration, kept if the pass must be drawn again
    while True:
        if places and len(sc.prev) < pop.capacity:
            sc.prev = np.zeros(pop.capacity, np.int8)
        n_out = year_pass(
            pop.cur, pop.cell_start,
            (q, _migrate_keys(keys), sc.mig, yi, pop.area_base),
            ((tab.tier_cdf, tab.place_cdf, tab.p_leave, tab.spec_cdf, tab.entry_cdf),
             _step_keys(keys), (m.strides, m.age_map), sc.reformed),
            staged_new, (pop.nxt, sc.out_start, sc.prev if places else sc.no_prev,
                         tab.provision.wait_place if places and arriving else -1),
            (sc.flows, sc.trans, sc.to_pool, sc.stock, sc.ident, not places))
        if n_out >= 0:
            break
        # the census outgrew the buffers (arrivals): grow them and draw the year again
        for a in (sc.flows, sc.trans, sc.to_pool, sc.stock, sc.ident):
            a[:] = 0
        sc.mig[:] = mig0
        pop.reserve(int(pop.capacity * 1.5) + 1024)
    pop.pool += sc.to_pool.sum(axis=0)
    nxt = pop.nxt
    if places:  # 6. allocation, then 7. the census tallies of the pupils it moved
        hide_new(nxt.tier, sc.out_start, sc.new_count)
        _allocate(nxt, n_out, pop.staged, n_new, tab, keys, layout, sc)
        restore_new(nxt, sc.out_start, (pop.staged, sc.new_count, sc.new_start), sc.order)
        tally_census(nxt, sc.out_start, sc.new_count, np.int8(new_plan), (m.strides, m.age_map),
                     (sc.stock, sc.ident))
    pop.swap(n_out, sc.out_start)


def _allocate(cur, n: int, staged, n_new: int, tab, keys: np.ndarray, layout: Layout,
              sc: _Scratch) -> None:
    """Step ``allocation`` over ``n`` survivors (tier -1: absent) and ``n_new`` new pupils."""
    sc.alloc[:] = 0
    if len(sc.work) < n + n_new:
        sc.work = np.zeros(int((n + n_new) * 1.5), np.int64)
    r = tab.provision
    allocate(cur, n, sc.prev, staged, n_new, np.int8(new_plan_of(tab)),
             kernel_places(tab.places), r.chain, r.rank, keys[STREAM["allocate"]],
             (layout.marginal.strides, layout.marginal.age_map), r.wait_place, sc.alloc,
             sc.spare, sc.work)


def _three_passes(pop: Population, tab, year: tuple, layout: Layout, sc: _Scratch,
                  arriving: bool, n_new: int) -> None:
    """Run steps 4-7 as a lone draw does: the fused step in parallel, allocation, merge."""
    yi, keys = year
    m, n_areas = layout.marginal, pop.n_areas
    n_parts = 8 * numba.config.NUMBA_NUM_THREADS
    _, k_step, k_merge = _kernels(pop.n, sc.serial)
    serial = k_step is step_pupils_serial  # one thread walks every cell: one work chunk
    whole = np.array([0, pop.n_cells], np.int64)
    chunks = whole if serial else _chunks(pop.cell_start, n_parts)
    if tab.places is not None:  # placements before the moves, for the allocation
        if len(sc.prev) < pop.n:
            sc.prev = np.zeros(int(pop.n * 1.5), np.int8)
        sc.prev[:pop.n] = pop.cur.placement[:pop.n]
        if arriving:  # this year's arrivals ask for their placement like newcomers
            arrived = arrivals(pop.cur.pid[:pop.n], yi)
            sc.prev[:pop.n][arrived] = tab.provision.wait_place
    k_step(pop.cur, chunks, pop.cell_start, (tab.tier_cdf, tab.place_cdf, tab.p_leave,
                                               tab.spec_cdf, tab.entry_cdf),
           _step_keys(keys), m, (sc.flows, sc.trans, sc.to_pool, sc.surv, sc.reformed))
    pop.pool += sc.to_pool.sum(axis=0)
    # 6. allocation of places
    if tab.places is not None:
        _allocate(pop.cur, pop.n, pop.staged, n_new, tab, keys, layout, sc)
    # 7. tallies: merge survivors and new pupils in cell order, counting the stock
    per_cell = sc.new_count + sc.surv[:pop.n_cells]
    sc.out_start[0] = 0
    np.cumsum(per_cell, out=sc.out_start[1:])
    n_out = int(sc.out_start[-1])
    if n_out > pop.capacity:
        pop.reserve(n_out)
    out_chunks = whole if serial else _chunks(sc.out_start, n_parts)
    k_merge(pop.cur, pop.cell_start, pop.staged, np.int8(new_plan_of(tab)), sc.order,
            (out_chunks, sc.new_count, sc.new_start, sc.surv, sc.out_start, N_N * n_areas),
            m, pop.nxt, (sc.stock, sc.ident))
    pop.swap(n_out, sc.out_start)


def new_plan_of(tab) -> int:
    """Plan a newly identified pupil holds: an ISP after the reform, SEN support before."""
    return PLAN["isp"] if tab.reformed else PLAN["sen_support"]


def baseline_stock(pop: Population, layout: Layout) -> np.ndarray:
    """Tally the census stock of the current state (used for the baseline year)."""
    c = pop.cur
    n = pop.n
    idx = layout.index(c.tier[:n], c.plan[:n], c.age[:n], c.need[:n], c.area[:n],
                       c.placement[:n])
    stock = np.bincount(idx, minlength=layout.size).astype(np.int64)
    _pool_tally(layout, pop.pool, stock)
    return stock


def run_draw(pop: Population, job: Job, ps: ParameterSet, draw: int, sc: _Scratch,
             out: tuple[np.ndarray, np.ndarray, np.ndarray],
             alloc: np.ndarray | None = None, base_stock: np.ndarray | None = None) -> None:
    """Simulate one Monte Carlo draw from the baseline, writing into ``out`` views.

    ``out`` is ``(stock (Y, M), flows (Y, F, M), transitions (Y, 4, 4))`` for this draw;
    ``alloc`` (Y, 4, M) receives the allocation tallies when ``ps`` has a provision plan.
    ``base_stock`` is the baseline census tally when already known (every draw starts from
    the same baseline, so a run counts it once).
    """
    stock, flows, trans = out
    pop.load_counts(job.individuals, job.pool)
    keys = draw_keys(job.seed, draw, job.n_years)
    stock[0] = baseline_stock(pop, job.layout) if base_stock is None else base_stock
    flows[0] = 0
    trans[0] = 0
    if alloc is not None:
        alloc[0] = 0  # nobody waits or is placed out of area at the baseline census
    moves = None if job.demography is None else job.demography.get(draw)
    for yi in range(1, job.n_years):
        stock[yi], flows[yi], trans[yi] = run_year(pop, ps, yi, keys[yi], job.layout, sc,
                                                   moves)
        if alloc is not None:
            alloc[yi] = sc.alloc


def simulate(job: Job, source: ParameterSource, draws: Sequence[int],
             progress: Callable[[int], None] | None = None) -> Outputs:
    """Run the given Monte Carlo draws and return their raw tallies.

    Parameters
    ----------
    job : Job
        The baseline, horizon, seed and marginal every draw shares.
    source : ParameterSource
        Hands out the parameter set of each draw.
    draws : sequence of int
        Draw numbers to run (any subset: results of a draw do not depend on the others).
    progress : callable, optional
        Called with the number of draws finished so far.

    """
    draws = np.asarray(list(draws), dtype=np.int64)
    n_areas, n_years = job.pool.shape[1], job.n_years
    d, m = len(draws), job.layout.size
    res = Outputs(draws=draws, param_draw=np.full(d, -1, np.int64),
                  stock=np.zeros((d, n_years, m), np.int32),
                  flows=np.zeros((d, n_years, len(FLOWS), m), np.int32),
                  transitions=np.zeros((d, n_years, 4, 4), np.int32))
    if d == 0:
        return res
    if source.get(int(draws[0])).places is not None:
        res.alloc = np.zeros((d, n_years, N_ALLOC_ROWS, m), np.int32)
    n_ind = int(np.asarray(job.individuals).sum())
    workers = draw_threads(d)
    done = [0]
    lock = threading.Lock()

    key = (n_areas, m, job.area_base, job.area_total, workers > 1)

    def make() -> tuple[Population, _Scratch]:
        pop = Population(n_areas, int(n_ind * 1.3) + 1024, job.area_base, job.area_total)
        return pop, _Scratch(n_areas, m, pop.n_cells, serial=workers > 1)

    def run_some(js: range, stop: threading.Event) -> None:
        # Each thread owns its state and buffers; draws write disjoint slices of ``res``.
        pop, sc = _KEPT.take(key, make)
        stock0 = None
        for j in js:
            if stop.is_set():
                return
            draw = int(draws[j])
            ps = source.get(draw)
            res.param_draw[j] = ps.label
            run_draw(pop, job, ps, draw, sc,
                     (res.stock[j], res.flows[j], res.transitions[j]),
                     None if res.alloc is None else res.alloc[j], stock0)
            stock0 = res.stock[j, 0]
            if progress is not None:
                with lock:
                    done[0] += 1
                    progress(done[0])
        _KEPT.give(key, (pop, sc))

    on_draw_threads(run_some, d, workers, "simsend-draws")
    return res


class _Kept:
    """Engine states (a :class:`Population` and its :class:`_Scratch`) kept between runs.

    A streamed run calls :func:`simulate` once per chunk of draws, and each call built every
    thread's state again: buffers of hundreds of MiB touched afresh and the baseline pupils
    laid out again (about 0.3 s a thread for every council).  States of the last kind asked
    for (areas, marginal, chunk of areas, draw threads or not) are kept, one per thread;
    every draw starts by loading the baseline into them (:meth:`Population.load_counts`), so
    what a state held before changes nothing.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.key = None
        self.free: list[tuple[Population, _Scratch]] = []

    def take(self, key: tuple, make: Callable[[], tuple[Population, _Scratch]]):
        """Return a kept state of kind ``key``, or ``make()``."""
        with self.lock:
            if key == self.key and self.free:
                return self.free.pop()
        return make()

    def give(self, key: tuple, state: tuple[Population, _Scratch]) -> None:
        """Keep ``state`` for the next call (states of another kind are let go)."""
        with self.lock:
            if key != self.key:
                self.key, self.free = key, []
            if len(self.free) < numba.config.NUMBA_NUM_THREADS:
                self.free.append(state)


_KEPT = _Kept()
