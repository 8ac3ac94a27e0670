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
    "migrate_out",  # individual moves out of its area (or its plan transfers away)
    "migrate_in",  # arrivals copied from an individual (a child of its kind moves in)
    "migrate_out_pool",  # universal children moving out, per (age, area) cell
    "migrate_in_pool",  # universal children moving in, per (age, area) cell
    "identify_tier",  # tier (targeted or targeted-plus) of a newly identified child
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
    if n_years > _MAX_YEARS:
        raise ValueError(f"at most {_MAX_YEARS} simulated years")
    # Only the words this horizon uses are hashed (``seed_state`` gives the same words as
    # ``generate_state`` over the whole layout: tested against it).
    return seed_state(ss.pool, _word_index(n_years)).reshape(n_years, len(STREAMS))


_MAX_YEARS = 256
"""A fixed upper bound on the year count keeps a year's keys independent of the horizon.

The first seven streams are year-major in the first block (as before any were appended);
each appended stream takes its own block of ``_MAX_YEARS`` words after it.  The layout is
prefix-stable, so appending a stream never moves an earlier key."""

# numpy.random.SeedSequence.generate_state's output hash (numpy/random/bit_generator.pyx):
# uint32 word i is pool[i % 4] ^ h_i, times h_{i+1}, then xorshift 16, with
# h_i = INIT_B * MULT_B**i (mod 2**32).  Computing it for chosen words only is exact and
# cuts a draw's keys from about 0.5 ms (3,328 words hashed in a loop) to a few microseconds.
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED


def _hash_consts(n: int) -> np.ndarray:
    h = np.empty(n, np.uint32)
    x = _INIT_B
    for i in range(n):
        h[i] = x
        x = (x * _MULT_B) & 0xFFFFFFFF
    return h


_H = _hash_consts(2 * _MAX_YEARS * len(STREAMS) + 1)


def _word_index(n_years: int) -> np.ndarray:
    """uint64 word positions of the keys of ``n_years`` years, shape (n_years * streams,)."""
    y = np.arange(n_years)[:, None]
    s = np.arange(len(STREAMS))[None, :]
    first = y * _FIRST + s
    extra = _MAX_YEARS * _FIRST + (s - _FIRST) * _MAX_YEARS + y
    return np.where(s < _FIRST, first, extra).ravel()


def seed_state(pool: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Words ``words`` of ``SeedSequence.generate_state(n, np.uint64)`` for a sequence's pool.

    Parameters
    ----------
    pool : uint32 array (4,)
        ``SeedSequence.pool`` (the default pool size).
    words : int array
        uint64 word positions (each below ``2 * 256 * len(STREAMS)``).

    Returns
    -------
    uint64 array, the same shape as ``words``.

    """
    pool = np.asarray(pool, np.uint32)
    i = (2 * np.asarray(words, np.int64))[..., None] + np.arange(2)  # low, high uint32 halves
    d = (pool[i % len(pool)] ^ _H[i]) * _H[i + 1]
    d ^= d >> np.uint32(16)
    d = d.astype(np.uint64)
    return d[..., 0] | (d[..., 1] << np.uint64(32))
