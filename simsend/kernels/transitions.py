"""Per-pupil transition kernels: ageing, leaving, tier moves and placement moves, fused.

Pupils are stored grouped by cell ``c = (age * n_need + need) * n_area + area`` (ascending),
so each cell is a contiguous run: the cell's table rows are loaded once and the run is walked
linearly.  Ageing adds one to every age and so keeps the order.

Randomness: pupil ``pid`` in a year uses ``uniform(key_s, pid)`` for stream ``s`` (leave,
tier, placement); draws depend only on (seed, draw, stream, year, pid), never on the thread
that runs them.
"""

from typing import NamedTuple

import numba
import numpy as np

from simsend.kernels._jit import njit
from simsend.kernels.rng import uniform
from simsend.kernels.sampling import categorical

MAX_AGE = 25
LEFT, ESCALATED, DEESCALATED, TO_SPECIALIST, AGED_OUT = 0, 1, 2, 3, 4
"""Rows of the flow tally.  ``TO_SPECIALIST`` counts moves into the specialist tier by the tier
moved *from* (state before the move); ``AGED_OUT`` the leavers of ``LEFT`` who aged past 25."""
N_FLOW_ROWS = 5
SPECIALIST = 3
"""Index of the specialist tier (``simsend.dims.TIER``)."""


class Pupils(NamedTuple):
    """Struct of arrays for individual pupils (targeted tier and above)."""

    tier: np.ndarray  # int8, -1 marks a pupil removed this year
    plan: np.ndarray  # int8
    age: np.ndarray  # int8
    need: np.ndarray  # int8
    area: np.ndarray  # int16
    placement: np.ndarray  # int8
    pid: np.ndarray  # int64
    alloc: np.ndarray  # int8 place-allocation state (simsend.kernels.allocate)


class Marginal(NamedTuple):
    """How a pupil's state maps to a flat tally index: ``sum(code_d * strides[d])``.

    ``strides`` order: tier, plan, age (after ``age_map``), need, area, placement; a stride of
    0 drops that dimension.
    """

    strides: np.ndarray  # int64 (6,)
    age_map: np.ndarray  # int64 (27,): age -> age coordinate index (identity or age group)


@njit
def tally_index(m, tier, plan, age, need, area, placement):
    """Flat tally index ``sum(code_d * stride_d)`` of one pupil state."""
    s = m.strides
    return (tier * s[0] + plan * s[1] + m.age_map[age] * s[2] + need * s[3] + area * s[4]
            + placement * s[5])


@njit(inline="always")
def flat_index(strides, age_map, tier, plan, age, need, area, placement):
    """:func:`tally_index` from the marginal's unpacked arrays (for use inside hot loops)."""
    return (tier * strides[0] + plan * strides[1] + age_map[age] * strides[2]
            + need * strides[3] + area * strides[4] + placement * strides[5])


@njit
def plan_for(tier, reformed):
    """Plan held in a tier: EHC plan in specialist, SEN support (ISP after reform) below."""
    if tier == 3:
        return 3
    if tier == 0:
        return 0
    return 2 if reformed else 1


@njit(inline="always")
def draw_place(pl, pid, row, key):
    """Return the placement after a move by the cumulative ``row``.

    The pupil's own placement ``pl`` without a draw where the row could only return it.
    """
    if row[pl] >= 1.0 and (pl == 0 or row[pl - 1] <= 0.0):
        return pl
    return categorical(uniform(key, pid), row)


@njit(inline="always")
def move_one(t, pid, pl, a, tier_row, place_cdf, p_leave, keys):
    """Draw one pupil's year from its state: (new tier or -1 if left, new placement).

    ``t``, ``pid``, ``pl``: the pupil's tier, id and placement; ``a`` is the age reached at
    this census; ``tier_row`` is the cumulative destination row for the pupil's (age, need,
    area) cell, indexed ``[src, dst]``; ``keys``: (leave, tier, placement) stream keys.
    Calibrated specialist rows (:func:`step_cells`) redraw the placement with the same
    uniform.
    """
    if a > MAX_AGE or uniform(keys[0], pid) < p_leave[t, a]:
        return -1, pl
    u = uniform(keys[1], pid)
    # categorical over the 4 tiers written branch-free (equal for a non-decreasing row)
    nt = (u >= tier_row[t, 0]) + (u >= tier_row[t, 1]) + (u >= tier_row[t, 2])
    if nt == 0:
        return 0, pl
    return nt, draw_place(pl, pid, place_cdf[nt, a, pl], keys[2])


@njit
def move_pupil(p, i, a, tier_row, place_cdf, p_leave, keys):
    """Draw pupil ``i`` of ``p``'s year: returns (new tier or -1 if left, new placement)."""
    return move_one(p.tier[i], np.uint64(p.pid[i]), p.placement[i], a, tier_row, place_cdf,
                    p_leave, keys)


@njit
def step_cells(p, c0, c1, cell_start, tables, keys, m, th, out):
    """Advance the pupils of cells ``c0 .. c1 - 1`` (one work chunk) on thread ``th``.

    See :func:`step_pupils` for the arguments; this is its loop body, kept a separate
    function because Numba 0.65 loses writes made through tuple members directly inside a
    ``prange`` body (writes inside a called function are kept).
    """
    tier_cdf, place_cdf, p_leave, spec_cdf, entry_cdf = tables
    flows, trans, to_pool, surv, reformed = out
    # Arrays and keys unpacked once: reading a tuple member inside the loop costs a reference
    # count update per access, and scalar keys let their hashing be hoisted out of the loop.
    tier, plan, age, need, area, placement, pid = p[:7]
    strides, age_map = m
    ks = (keys[0], keys[1], keys[2])
    n_na = tier_cdf.shape[1] * tier_cdf.shape[2]
    n_area = tier_cdf.shape[2]
    calibrated = spec_cdf.shape[0] > 0
    for c in range(c0, c1):
        kept = 0
        a = c // n_na + 1
        # every pupil of a cell shares (age, need, area): load the tier rows once per cell
        rows = tier_cdf[min(a, MAX_AGE), (c // n_area) % tier_cdf.shape[1], c % n_area]
        ar = c % n_area
        for i in range(cell_start[c], cell_start[c + 1]):
            t = tier[i]
            if a > MAX_AGE:
                nt, npl = -1, placement[i]
            else:
                nt, npl = move_one(t, np.uint64(pid[i]), placement[i], a, rows, place_cdf,
                                   p_leave, ks)
                if calibrated and nt == SPECIALIST:  # the area's own specialist rows
                    row = entry_cdf[ar, a] if t < SPECIALIST else spec_cdf[ar, a, placement[i]]
                    npl = draw_place(placement[i], np.uint64(pid[i]), row, ks[2])
            if nt == -1:
                j = flat_index(strides, age_map, t, plan[i], a - 1, need[i], area[i],
                               placement[i])
                flows[th, LEFT, j] += 1
                if a > MAX_AGE:
                    flows[th, AGED_OUT, j] += 1
                elif reformed[1]:  # support ends but the child stays: back to the pool
                    to_pool[th, a, area[i]] += 1
                tier[i] = -1
                continue
            trans[th, t, nt] += 1
            if nt == 0:
                to_pool[th, a, area[i]] += 1
                j = flat_index(strides, age_map, 0, 0, a, need[i], area[i], placement[i])
                flows[th, DEESCALATED, j] += 1
                tier[i] = -1
                continue
            if nt != t:
                if nt == SPECIALIST:
                    j = flat_index(strides, age_map, t, plan[i], a, need[i], area[i],
                                   placement[i])
                    flows[th, TO_SPECIALIST, j] += 1
                plan[i] = plan_for(nt, reformed[0])
                j = flat_index(strides, age_map, nt, plan[i], a, need[i], area[i], npl)
                flows[th, ESCALATED if nt > t else DEESCALATED, j] += 1
            tier[i] = nt
            placement[i] = npl
            age[i] = a
            kept += 1
        if a <= MAX_AGE:
            surv[c + n_na] = kept


@njit(parallel=True)
def step_pupils(p, chunks, cell_start, tables, keys, m, out):
    """Advance every pupil one year in place, tallying flows and survivors.

    Parameters
    ----------
    p : Pupils
    chunks : int64 (n_chunks + 1,) cell boundaries of the parallel work chunks
    cell_start : int64 (n_cells + 1,) first pupil of each cell
    tables : tuple (tier_cdf (26,13,A,4,4), place_cdf (4,26,7,7), p_leave (4,26),
        spec_cdf (A_p,26,7,7), entry_cdf (A_p,26,7)); see YearTables
    keys : uint64 (3,) stream keys: leave, tier, placement
    m : Marginal
    out : tuple of per-thread buffers (flows (T,N_FLOW_ROWS,M), trans (T,4,4), to_pool (T,26,A),
        survivors (n_cells,), flags int8 (2,): reformed, and leavers-to-pool (1: a leaver
        before 26 returns to the universal pool, as when the demography moves the population;
        0: a leaver leaves the population))

    """
    for k in numba.prange(len(chunks) - 1):
        step_cells(p, chunks[k], chunks[k + 1], cell_start, tables, keys, m,
                   numba.get_thread_id(), out)


@njit
def step_pupils_serial(p, chunks, cell_start, tables, keys, m, out):
    """:func:`step_pupils` on the calling thread alone (same arguments, same result).

    For small populations, where starting the parallel region costs more than the work.
    """
    for k in range(len(chunks) - 1):
        step_cells(p, chunks[k], chunks[k + 1], cell_start, tables, keys, m, 0, out)


@njit
def tier_cells(tier, pid, cell_start, tier_cdf, key, c0, c1, counts):
    r"""Tier draw and tally for the cells ``c0 .. c1 - 1`` (loop body of :func:`tier_step`).

    For pupil ``i`` in cell ``c`` with tier ``t`` and uniform :math:`u_i = U(k, \mathrm{pid}_i)`,
    the new tier is :math:`\sum_{d<3} [u_i \ge F_{c,t,d}]` (the categorical draw written
    branch-free), and ``counts[c, new tier]`` is incremented.  Each cell belongs to one
    chunk, so per-cell tallies need no per-thread copies.
    """
    for c in range(c0, c1):
        row = tier_cdf[c]
        n0 = n1 = n2 = n3 = 0
        # zero-based slices of the cell's run: the form LLVM vectorises
        ts = tier[cell_start[c]:cell_start[c + 1]]
        ps = pid[cell_start[c]:cell_start[c + 1]]
        for i in range(len(ts)):
            t = ts[i]
            u = uniform(key, ps[i])
            nt = (u >= row[t, 0]) + (u >= row[t, 1]) + (u >= row[t, 2])
            ts[i] = nt
            n0 += nt == 0
            n1 += nt == 1
            n2 += nt == 2
            n3 += nt == 3
        counts[c, 0] += n0
        counts[c, 1] += n1
        counts[c, 2] += n2
        counts[c, 3] += n3


@njit(parallel=True)
def tier_step(tier, pid, cell_start, tier_cdf, key, chunks, counts):
    """One tier transition of every pupil over a cell-grouped layout, tallied by cell.

    Parameters
    ----------
    tier : int8 (N,) current tier (0-3), updated in place
    pid : uint64 (N,) pupil ids (the random-number counters)
    cell_start : int64 (n_cells + 1,) first pupil of each cell
    tier_cdf : float64 (n_cells, 4, 4) cumulative destination rows per cell and source tier
    key : uint64 stream key of this year
    chunks : int64 (K + 1,) cell boundaries of the parallel work chunks
    counts : int64 (n_cells, 4) tallies of the new tier by cell (added to)

    Notes
    -----
    This is the step ``simsend.reference.step_tally`` does in NumPy: the same uniforms give
    the same tiers and counts, for any thread count or chunking.

    """
    for k in numba.prange(len(chunks) - 1):
        tier_cells(tier, pid, cell_start, tier_cdf, key, chunks[k], chunks[k + 1], counts)
