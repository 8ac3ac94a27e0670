"""Root seed to per-draw, per-year, per-stream keys for the counter-based generator.

Every random number in a run is ``uniform(key, counter)`` (see :mod:`simsend.kernels.rng`)
with ``key`` taken from here and ``counter`` a pupil id or a cell index.  Keys come from
``numpy.random.SeedSequence(seed, spawn_key=(draw,))``, so they depend only on the root seed,
the draw and the (year, stream) position: not on threads, chunking, or scenario.  Two
scenarios run with the same seed therefore share random numbers wherever they agree
(common random numbers).
"""

from __future__ import annotations

import numpy as np

STREAMS = (
    "leave",  # individual leaves (moves away) this year
    "tier",  # individual's tier move
    "placement",  # individual's placement move
    "pool_leave",  # universal children leaving, per (age, area) cell
    "identify",  # universal children identified, per (age, area) cell
    "need",  # need of a newly identified child
    "placement_new",  # placement of a newly identified child
)
"""Named random streams; their position is part of the key, so append, never reorder."""

STREAM = {name: i for i, name in enumerate(STREAMS)}


def draw_keys(seed: int, draw: int, n_years: int) -> np.ndarray:
    """Return the uint64 keys of one draw, shape ``(n_years, len(STREAMS))``.

    Examples
    --------
    >>> k = draw_keys(1, 0, 3)
    >>> k.shape, k.dtype
    ((3, 7), dtype('uint64'))
    >>> bool((draw_keys(1, 0, 3) == k).all())
    True

    """
    ss = np.random.SeedSequence(seed, spawn_key=(draw,))
    # A fixed upper bound on the year count keeps a year's keys independent of the horizon.
    max_years = 256
    if n_years > max_years:
        raise ValueError(f"at most {max_years} simulated years")
    state = ss.generate_state(max_years * len(STREAMS), dtype=np.uint64)
    return state.reshape(max_years, len(STREAMS))[:n_years].copy()
