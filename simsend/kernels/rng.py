r"""Counter-based random numbers: every uniform is a pure function of ``(key, counter)``.

There is no generator state.  The ``i``-th random number of a stream is

.. math::

    h(k, c) = M\bigl(M(k) \oplus M(c \cdot \gamma + \delta)\bigr), \qquad
    u(k, c) = \lfloor h(k, c) / 2^{11} \rfloor \cdot 2^{-53} \in [0, 1),

where all arithmetic is modulo :math:`2^{64}`, :math:`M` is the SplitMix64 finaliser
(:func:`mix64`), :math:`\gamma` the golden-ratio increment ``0x9E3779B97F4A7C15`` and
:math:`\delta` an odd offset.  Because a value depends only on its key and counter, results
are identical for any thread count, chunking or visiting order, and a pupil's numbers do not
move when other pupils are added or removed.

Keys come from :func:`derive_key` (or :func:`simsend.engine.streams.draw_keys`) via
``numpy.random.SeedSequence``; counters are pupil ids or cell indices.  When one counter needs
several numbers, fold the sub-stream index into the key with :func:`stream_key` rather than
into the counter: counters are arbitrary 64-bit ids, so ``counter * 8 + sub`` could collide.

Only :func:`derive_key` is plain Python; everything else is a Numba kernel.
"""

import numba
import numpy as np

from simsend.kernels._jit import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
r"""Weyl increment of SplitMix64: :math:`\lfloor 2^{64} / \varphi \rfloor`, odd."""
COUNTER_OFFSET = np.uint64(0x632BE59BD9B4E019)
"""Odd offset added to ``counter * GOLDEN`` so counter 0 does not hit the fixed point M(0)=0."""
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0
"""2**-53: scales a 53-bit integer into [0, 1)."""


def derive_key(seed: int, *path: int) -> np.uint64:
    """Return the uint64 key for the stream at ``path`` under a root ``seed`` (plain Python).

    Not a kernel: call it outside Numba and pass the key in.  The key is the first word of
    ``numpy.random.SeedSequence(seed, spawn_key=path).generate_state``, so keys for different
    paths, e.g. ``(draw, stream, year)``, are hashed apart by SeedSequence and are
    well separated even for neighbouring seeds or indices.

    Parameters
    ----------
    seed : int
        Root entropy (non-negative).
    *path : int
        Spawn path, e.g. ``draw, stream, year`` (non-negative).

    Returns
    -------
    numpy.uint64

    Examples
    --------
    >>> k = derive_key(2024, 0, 3, 1)
    >>> k == derive_key(2024, 0, 3, 1), k == derive_key(2024, 0, 3, 2)
    (np.True_, np.False_)

    """
    ss = np.random.SeedSequence(seed, spawn_key=tuple(int(i) for i in path))
    return ss.generate_state(1, dtype=np.uint64)[0]


@njit
def mix64(x):
    r"""SplitMix64 finaliser (Stafford's "Mix13"), a bijection of the 64-bit integers.

    .. math::

        z_1 = (x \oplus (x \gg 30)) \cdot \mathtt{0xBF58476D1CE4E5B9}, \quad
        z_2 = (z_1 \oplus (z_1 \gg 27)) \cdot \mathtt{0x94D049BB133111EB}, \quad
        M(x) = z_2 \oplus (z_2 \gg 31)

    modulo :math:`2^{64}`.  Every input bit affects every output bit with probability
    close to 1/2 (avalanche).

    Examples
    --------
    >>> int(mix64(np.uint64(1234567) + GOLDEN))  # SplitMix64(1234567), first output
    6457827717110365317

    """
    z = np.uint64(x)
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit
def hash64(key, counter):
    r"""Random 64-bit word of stream ``key`` at position ``counter``.

    .. math:: h(k, c) = M\bigl(M(k) \oplus M(c\,\gamma + \delta)\bigr)

    Why three applications of :math:`M`: the inner :math:`M(c\gamma + \delta)` is the
    SplitMix64 output sequence (passes BigCrush), so consecutive counters already give
    unrelated words; :math:`M(k)` spreads keys the same way, so consecutive or structured
    keys (``k`` and ``k + 1``) are as unrelated as random ones; the outer :math:`M` makes
    every output bit depend on both, so no XOR/additive relation survives between two
    streams.  Inside a loop over counters :math:`M(k)` is loop-invariant and is hoisted by
    the compiler, so the cost is two finalisers per number.

    Examples
    --------
    >>> int(hash64(np.uint64(1), np.uint64(0))) != int(hash64(np.uint64(0), np.uint64(1)))
    True

    """
    c = np.uint64(counter) * GOLDEN + COUNTER_OFFSET
    return mix64(mix64(key) ^ mix64(c))


@njit
def uniform(key, counter):
    r"""Uniform float64 in [0, 1) with 53 random bits: :math:`u = (h(k, c) \gg 11) 2^{-53}`.

    Parameters
    ----------
    key : uint64
        Stream key (from :func:`derive_key`, :func:`simsend.engine.streams.draw_keys` or
        :func:`stream_key`).
    counter : uint64
        Position in the stream, e.g. a pupil id (int64 ids are reinterpreted bitwise).

    Returns
    -------
    float64

    Examples
    --------
    >>> u = uniform(np.uint64(42), np.uint64(7))
    >>> 0.0 <= u < 1.0, u == uniform(np.uint64(42), np.uint64(7))
    (True, True)

    """
    return np.float64(hash64(key, counter) >> _S11) * _TO_UNIT


@njit(inline="always")
def mix_key(key):
    r"""Return the key's half of :func:`hash64`, :math:`M(k)` (once per stream)."""
    return mix64(np.uint64(key))


@njit(inline="always")
def mix_counter(counter):
    r"""Return the counter's half of :func:`hash64`, :math:`M(c\gamma + \delta)`.

    The same for every stream, so a kernel that draws several streams for one pupil id can
    mix the id once and pass it to :func:`uniform_mixed` for each.
    """
    return mix64(np.uint64(counter) * GOLDEN + COUNTER_OFFSET)


@njit(inline="always")
def uniform_mixed(key_mixed, counter_mixed):
    """Return :func:`uniform` from :func:`mix_key` and :func:`mix_counter` (the same number).

    Examples
    --------
    >>> k, c = np.uint64(42), np.uint64(7)
    >>> bool(uniform_mixed(mix_key(k), mix_counter(c)) == uniform(k, c))
    True

    """
    return np.float64(mix64(key_mixed ^ counter_mixed) >> _S11) * _TO_UNIT


@njit
def stream_key(key, sub):
    r"""Key of sub-stream ``sub`` of ``key``: :math:`k_s = M(k + (s + 1)\gamma)`.

    Use it when one counter needs several numbers (``uniform(stream_key(k, s), c)`` for
    ``s = 0, 1, ...``) or a whole sequence (``uniform(stream_key(k, c), j)`` for
    ``j = 0, 1, ...``).  The ``+ 1`` keeps ``stream_key(k, 0)`` distinct from ``k`` itself.

    Examples
    --------
    >>> k = np.uint64(5)
    >>> int(stream_key(k, np.uint64(0))) != int(stream_key(k, np.uint64(1)))
    True

    """
    return mix64(np.uint64(key) + (np.uint64(sub) + np.uint64(1)) * GOLDEN)


@njit
def uniform_sub(key, counter, sub):
    r"""Uniform number ``sub`` of ``counter``: :math:`u(\mathrm{stream\_key}(k, s), c)`.

    Examples
    --------
    >>> a = uniform_sub(np.uint64(3), np.uint64(10), np.uint64(0))
    >>> b = uniform_sub(np.uint64(3), np.uint64(10), np.uint64(1))
    >>> a != b
    True

    """
    return uniform(stream_key(key, sub), counter)


@njit(parallel=True)
def fill_uniform(key, counters, out):
    """Fill ``out[i] = uniform(key, counters[i])`` in parallel (same values for any threads).

    Parameters
    ----------
    key : uint64
        Stream key.
    counters : uint64 (n,)
        Counters, e.g. pupil ids viewed as uint64.
    out : float64 (n,)
        Output buffer.

    Examples
    --------
    >>> out = np.empty(3)
    >>> fill_uniform(np.uint64(1), np.arange(3, dtype=np.uint64), out)
    >>> bool(out[1] == uniform(np.uint64(1), np.uint64(1)))
    True

    """
    for i in numba.prange(counters.shape[0]):
        out[i] = uniform(key, counters[i])
