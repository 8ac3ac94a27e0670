"""Output layout: which marginals a run tallies and how pupil states map onto them.

Tallies are flat integer buffers indexed by ``sum(code_d * stride_d)`` over the requested
dimensions (see :class:`simsend.kernels.transitions.Marginal`), so the full cross of every
dimension is never materialised unless asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simsend.dims import AGE_GROUPS, AGES, NEEDS, PLACEMENTS, PLANS, TIERS
from simsend.kernels.transitions import Marginal

NEED_COORD = (*NEEDS, "none")
"""Need coordinate in results: universal-tier children have no primary need ("none")."""
PLACEMENT_COORD = (*PLACEMENTS, "not_recorded")
"""Placement coordinate in results: placements of universal-tier children are not tracked."""

FLOWS = ("n_identified", "n_escalated", "n_deescalated", "n_left", "n_to_specialist",
         "n_aged_out", "n_moved_out", "n_moved_in", "n_residual_out", "n_residual_in")
"""Flow variables, in the order of the engine's flow buffer."""
FLOW = {name: i for i, name in enumerate(FLOWS)}
"""Row of each flow variable in the engine's flow buffer."""

ALLOC_VARS = ("n_waiting", "wait_years_total", "n_out_of_area", "n_overflow")
"""Result variables of the allocation, in the order of the kernel's tally rows."""
ALLOC_LONG_NAMES = {
    "n_waiting": "pupils waiting at the census for a place in the placement (the placement "
                 "waited for)",
    "wait_years_total": "years waited so far, summed over the pupils waiting (divide by "
                        "n_waiting for the mean)",
    "n_out_of_area": "pupils placed out of area (a placement of this type in another area)",
    "n_overflow": "admissions redirected because the placement asked for was full (overflow "
                  "to another placement or out of area), at the placement asked for",
}

_KIND_POS = {"tier": 0, "plan": 1, "age": 2, "age_group": 2, "need": 3, "area": 4, "placement": 5}


@dataclass(frozen=True)
class Layout:
    """Shape and coordinates of the requested marginal.

    Attributes
    ----------
    by : tuple of str
        Result dimensions after ``draw`` and ``year``, in order.
    shape : tuple of int
    coords : dict
        Coordinate labels per dimension.
    marginal : Marginal
        Strides and age map for the kernels.
    pool_index : ndarray (26, n_areas)
        Flat index of universal-tier children of each (age, area).

    """

    by: tuple[str, ...]
    shape: tuple[int, ...]
    coords: dict
    marginal: Marginal
    pool_index: np.ndarray

    @property
    def size(self) -> int:
        """Number of cells of the marginal."""
        return int(np.prod(self.shape))

    def index(self, tier, plan, age, need, area, placement) -> np.ndarray:
        """Vectorised flat index (NumPy twin of the kernel's ``tally_index``)."""
        s = self.marginal.strides
        return (np.asarray(tier) * s[0] + np.asarray(plan) * s[1]
                + self.marginal.age_map[np.asarray(age)] * s[2] + np.asarray(need) * s[3]
                + np.asarray(area) * s[4] + np.asarray(placement) * s[5])


def make_layout(by: tuple[str, ...], areas: tuple[str, ...]) -> Layout:
    """Build the layout for marginal ``by`` over ``areas``.

    Examples
    --------
    >>> lay = make_layout(("tier", "age_group"), ("E92000001",))
    >>> lay.shape
    (4, 5)

    """
    group_of = np.zeros(len(AGES) + 1, np.int64)
    for g, (lo, hi) in enumerate(AGE_GROUPS.values()):
        group_of[lo:hi + 1] = g
    labels = {
        "tier": TIERS, "plan": PLANS, "age": AGES, "age_group": tuple(AGE_GROUPS),
        "need": NEED_COORD, "area": tuple(areas), "placement": PLACEMENT_COORD,
    }
    shape = tuple(len(labels[d]) for d in by)
    strides = np.zeros(6, np.int64)
    step = 1
    for d, n in zip(reversed(by), reversed(shape), strict=True):
        strides[_KIND_POS[d]] = step
        step *= n
    age_map = group_of if "age_group" in by else np.arange(len(AGES) + 1, dtype=np.int64)
    m = Marginal(strides=strides, age_map=age_map)
    a, r = np.meshgrid(np.arange(len(AGES)), np.arange(len(areas)), indexing="ij")
    pool_index = (age_map[a] * strides[2] + r * strides[4] + (len(NEED_COORD) - 1) * strides[3]
                  + (len(PLACEMENT_COORD) - 1) * strides[5])
    return Layout(by=tuple(by), shape=shape, coords={d: list(labels[d]) for d in by},
                  marginal=m, pool_index=pool_index.astype(np.int64))
