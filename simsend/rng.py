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
    "pipeline_not_issued",  # statutory pipeline: assessments that end without a plan
    "pipeline_refused",  # statutory pipeline: requests refused an assessment
    "pipeline_weeks",  # statutory pipeline: plans issued within 20 weeks, weeks beyond
    "pipeline_appeal",  # statutory pipeline: tribunal appeals registered
    "pipeline_upheld",  # statutory pipeline: appeals decided in the appellant's favour
    "allocate",  # place allocation: tie-break between requests of equal priority
)
"""Named random streams; their position is part of the key, so append, never reorder."""

_FIRST = 7
"""Streams laid out year-major in the first block (the original seven): their keys never move."""

STREAM = {name: i for i, name in enumerate(STREAMS)}


def draw_keys(seed: int, draw: int, n_years: int) -> np.ndarray:
    """Return the uint64 keys of one draw, shape ``(n_years, len(STREAMS))``.

    Examples
    --------
    >>> k = draw_keys(1, 0, 3)
    >>> k.shape, k.dtype
    ((3, 13), dtype('uint64'))
    >>> bool((draw_keys(1, 0, 3) == k).all())
    True

    """
    ss = np.random.SeedSequence(seed, spawn_key=(draw,))
    # A fixed upper bound on the year count keeps a year's keys independent of the horizon.
    max_years = 256
    if n_years > max_years:
        raise ValueError(f"at most {max_years} simulated years")
    # The first seven streams are year-major in the first block (as before any were
    # appended); each appended stream takes its own block of ``max_years`` words after it.
    # ``generate_state`` is prefix-stable, so appending a stream never moves an earlier key.
    state = ss.generate_state(max_years * len(STREAMS), dtype=np.uint64)
    first = state[:max_years * _FIRST].reshape(max_years, _FIRST)
    extra = state[max_years * _FIRST:].reshape(len(STREAMS) - _FIRST, max_years).T
    return np.concatenate([first, extra], axis=1)[:n_years].copy()
