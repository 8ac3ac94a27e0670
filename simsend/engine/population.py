"""Population state: individual pupils as a struct of arrays, the universal pool as counts.

Individuals (targeted tier and above) live in two preallocated buffers of :class:`Pupils`
arrays; each year the kernels read one and write the other, so nothing large is allocated per
year or per draw.  Within a buffer pupils are grouped by cell ``(age, need, area)`` in
ascending order and ``cell_start`` indexes the runs.  Universal-tier children are counts by
(age, area).
"""

from __future__ import annotations

import numpy as np

from simsend import dtypes
from simsend.dims import AGES, NEEDS, PLACEMENTS, PLAN, TIERS
from simsend.kernels.identify import PID_AGE_BITS, PID_K_BITS
from simsend.kernels.transitions import Pupils

N_A, N_N = len(AGES), len(NEEDS)


def empty_pupils(capacity: int) -> Pupils:
    """Allocate a :class:`Pupils` buffer of ``capacity`` slots."""
    return Pupils(
        tier=np.zeros(capacity, dtypes.STATE),
        plan=np.zeros(capacity, dtypes.STATE),
        age=np.zeros(capacity, dtypes.STATE),
        need=np.zeros(capacity, dtypes.STATE),
        area=np.zeros(capacity, dtypes.AREA),
        placement=np.zeros(capacity, dtypes.STATE),
        pid=np.zeros(capacity, dtypes.ID),
        alloc=np.zeros(capacity, dtypes.STATE),
    )


def _grow(p: Pupils, n_keep: int, capacity: int) -> Pupils:
    out = empty_pupils(capacity)
    for name in Pupils._fields:
        getattr(out, name)[:n_keep] = getattr(p, name)[:n_keep]
    return out


class Population:
    """Pupil state for one Monte Carlo draw of one run.

    Parameters
    ----------
    n_areas : int
        Number of areas.
    capacity : int
        Initial number of pupil slots per buffer (grown by 1.5x when needed).
    area_base, area_total : int, optional
        When the state holds a chunk of a run's areas: the run index of the chunk's first
        area and the run's number of areas.  Pupil ids and cell counters use run indices, so
        a chunk draws exactly the random numbers the whole run draws for its areas.

    Attributes
    ----------
    cur : Pupils
        The buffer holding the current census, ``n`` pupils long.
    cell_start : ndarray (n_cells + 1,)
        First pupil of each cell in ``cur``.
    pool : ndarray (26, n_areas)
        Universal-tier children by age and area.

    """

    def __init__(self, n_areas: int, capacity: int, area_base: int = 0,
                 area_total: int | None = None):
        self.n_areas = n_areas
        self.area_base = int(area_base)
        self.area_total = int(n_areas if area_total is None else area_total)
        if self.area_base < 0 or self.area_base + n_areas > self.area_total:
            raise ValueError(f"areas {area_base}..{area_base + n_areas} outside a run of "
                             f"{self.area_total}")
        self.n_cells = N_A * N_N * n_areas
        self.cur = empty_pupils(capacity)
        self.nxt = empty_pupils(capacity)
        self.staged = empty_pupils(max(1024, capacity // 4))
        self.cell_start = np.zeros(self.n_cells + 1, np.int64)
        self.pool = np.zeros((N_A, n_areas), dtypes.COUNT)
        self.n = 0
        self._base = None  # (counts, n, arrays, cell_start) of the last baseline built

    @property
    def capacity(self) -> int:
        """Slots in each buffer."""
        return len(self.cur.pid)

    def reserve(self, n: int) -> None:
        """Make sure both buffers hold at least ``n`` pupils (keeps the current ones)."""
        if n > self.capacity:
            cap = max(n, int(self.capacity * 1.5))
            self.cur = _grow(self.cur, self.n, cap)
            self.nxt = empty_pupils(cap)

    def reserve_staged(self, n: int) -> None:
        """Make sure the staging buffer for new pupils holds ``n``."""
        if n > len(self.staged.pid):
            self.staged = empty_pupils(max(n, int(len(self.staged.pid) * 1.5)))

    def swap(self, n: int, cell_start: np.ndarray) -> None:
        """Make the freshly written buffer current."""
        self.cur, self.nxt = self.nxt, self.cur
        self.n = n
        self.cell_start[:] = cell_start

    def load_counts(self, individuals: np.ndarray, pool: np.ndarray) -> None:
        """Fill the state from baseline counts (reusing the buffers).

        Parameters
        ----------
        individuals : int array (4, 26, 13, n_areas, 7)
            Pupils by (tier, age, need, area, placement); the universal slice must be zero.
        pool : int array (26, n_areas)
            Universal-tier children.

        Baseline pupils get ids with year index 0 and a running number within their
        (area, age), in cell order, so every draw starts from the same pupils.  The state
        built from the first call is kept, and a later call with equal counts copies it
        instead of building it again (once per run instead of once per draw).

        """
        ind = np.asarray(individuals)
        if self._base is not None and np.array_equal(self._base[0], ind):
            _, n, arrays, cell_start = self._base
            self.reserve(n)
            for a, b in zip(self.cur, arrays, strict=True):
                a[:n] = b
            self.cell_start[:] = cell_start
            self.n = n
            self.pool[:] = pool
            return
        if ind.shape != (len(TIERS), N_A, N_N, self.n_areas, len(PLACEMENTS)):
            raise ValueError(f"baseline individuals have shape {ind.shape}")
        if ind[0].sum() != 0 or np.any(ind < 0):
            raise ValueError("baseline individuals must be >= 0 and zero in the universal tier")
        n = int(ind.sum())
        self.reserve(n)
        # Cells in order (age, need, area); within a cell, by tier then placement.
        by_cell = np.transpose(ind, (1, 2, 3, 0, 4))  # (age, need, area, tier, placement)
        counts = by_cell.reshape(-1)
        codes = np.indices(by_cell.shape).reshape(5, -1)
        reps = np.repeat(np.arange(counts.size), counts)
        age, need, area, tier, plac = (c[reps] for c in codes)
        cur = self.cur
        cur.tier[:n] = tier
        cur.age[:n] = age
        cur.need[:n] = need
        cur.area[:n] = area
        cur.placement[:n] = plac
        cur.plan[:n] = np.where(tier == 3, PLAN["ehcp"], PLAN["sen_support"])
        cur.alloc[:n] = 0  # nobody waits for a place or is placed out of area at baseline
        # running number k within (area, age)
        key = area.astype(np.int64) * N_A + age
        order = np.argsort(key, kind="stable")
        k = np.empty(n, np.int64)
        sk = key[order]
        first = np.searchsorted(sk, sk, side="left")
        k[order] = np.arange(n) - first
        cur.pid[:n] = _encode_many(area + self.area_base, age, k)
        cell_counts = by_cell.sum(axis=(3, 4)).reshape(-1)
        self.cell_start[0] = 0
        np.cumsum(cell_counts, out=self.cell_start[1:])
        self.n = n
        self.pool[:] = pool
        self._base = (ind.copy(), n, tuple(a[:n].copy() for a in cur), self.cell_start.copy())


def _encode_many(area: np.ndarray, age: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Vectorised :func:`simsend.kernels.identify.encode_pid` with year index 0."""
    return ((area.astype(np.int64) << PID_AGE_BITS | age.astype(np.int64)) << PID_K_BITS) | k
