r"""Draws from counter-based uniforms: categorical, binomial and multinomial kernels.

Every draw is a pure function of its inputs and a ``(key, counter)`` pair (see
:mod:`simsend.kernels.rng`), so results do not depend on threads or visiting order.

A binomial draw may need any number of uniforms (rejection sampling), so draw
``(key, counter)`` reads the private sequence ``uniform(stream_key(key, counter), j)``,
``j = 0, 1, 2, ...``; two cells with different counters never share a uniform.

The binomial sampler ports NumPy's ``random_binomial`` (``distributions.c``): inversion
when :math:`n \min(p, 1-p) \le 30`, otherwise BTPE (Kachitvichyanukul & Schmeiser, 1988,
*Binomial random variate generation*, Commun. ACM 31(2)), and ``n - X(n, 1-p)`` when
:math:`p > 1/2`.  Deliberate differences from NumPy (``distributions.c`` as of 2.x and Numba's
port), all making the law exact up to floating-point rounding of the pmf:

* BTPE's final test (step 5.3) uses the Stirling correction
  :math:`(13860 - (462 - (132 - (99 - 140/x^2)/x^2)/x^2)/x^2)/(166320\,x)`, i.e.
  :math:`1/(12x) - 1/(360x^3) + \dots`, with ``+`` for ``m!`` and ``(n-m)!`` and ``-`` for
  ``y!`` and ``(n-y)!``.  NumPy has ``13680`` and all four signs ``+``, which makes the
  bound differ from :math:`\log f(y)/f(m)` by up to ~1e-2; the version here agrees with
  ``lgamma`` to ~1e-13.
* inversion uses :math:`q^n = \exp(n\,\mathrm{log1p}(-p))` rather than ``log(1 - p)``,
  which is inaccurate for tiny ``p``, and does not cut the tail at
  :math:`np + 10\sqrt{npq + 1}` (NumPy's cut drops up to ~3e-14 of probability mass).
"""

import math

import numba
import numpy as np

from simsend.kernels._jit import njit
from simsend.kernels.rng import stream_key, uniform


@njit
def categorical(u, cdf_row):
    r"""Smallest ``k`` with ``u < cdf_row[k]``; ``len(cdf_row) - 1`` if there is none.

    .. math:: k = \min\{k : u < F_k\} \quad (\text{capped at } K - 1)

    With a non-decreasing ``cdf_row`` this equals
    ``min(np.searchsorted(cdf_row, u, side="right"), K - 1)``, so a last entry that rounds
    below 1.0 cannot produce an out-of-range index.  Binary search, O(log K).

    Parameters
    ----------
    u : float64
        Uniform in [0, 1).
    cdf_row : float64 (K,)
        Cumulative probabilities, ``cdf_row[-1]`` nominally 1.

    Returns
    -------
    int64

    Examples
    --------
    >>> categorical(0.5, np.array([0.2, 0.5, 1.0]))
    2

    """
    lo = 0
    hi = cdf_row.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if u < cdf_row[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(inline="always")
def categorical_count(u, cdf_row):
    r""":func:`categorical` written without branches: the thresholds at or below ``u``.

    .. math:: k = \#\{k < K - 1 : F_k \le u\}

    For a non-decreasing ``cdf_row`` (a cumulative sum) the thresholds at or below ``u`` are
    the first :math:`k`, and :math:`k` is the binary search's answer, capped at ``K - 1`` the
    same way; the compares have no branch to mispredict, which is what a draw from a row of
    7 or 13 costs in a loop over pupils (a mispredicted branch each halving).

    Examples
    --------
    >>> row = np.array([0.2, 0.5, 0.5, 1.0])
    >>> [int(categorical_count(u, row)) == int(categorical(u, row)) for u in (0.1, 0.5, 0.99)]
    [True, True, True]

    """
    k = 0
    for i in range(cdf_row.shape[0] - 1):
        k += cdf_row[i] <= u
    return k


@njit
def _binomial_inversion(n, p, key):
    r"""Binomial(n, p) by sequential inversion of the pmf, for small ``n p``.

    Walks :math:`f(0) = q^n`, :math:`f(x) = f(x-1)\,(n - x + 1) p / (x q)` subtracting
    from ``U`` until ``U <= f(x)``.  A fresh ``U`` is taken only if ``U`` exceeds the whole
    (rounded) pmf, i.e. ``x > n`` or ``f(x)`` underflows to 0: a probability ~1e-16 event.
    NumPy instead restarts past :math:`\min(n, np + 10\sqrt{npq + 1})`, which truncates up
    to ~3e-14 of tail mass.  Uses ``uniform(key, j)``, ``j = 0, 1, ...``.
    """
    q = 1.0 - p
    qn = math.exp(n * math.log1p(-p))
    j = np.uint64(0)
    x = 0
    px = qn
    u = uniform(key, j)
    while u > px:
        x += 1
        if x > n or px == 0.0:
            x = 0
            px = qn
            j += np.uint64(1)
            u = uniform(key, j)
        else:
            u -= px
            px = ((n - x + 1) * p * px) / (x * q)
    return np.int64(x)


@njit
def _btpe_setup(n, r):
    r"""BTPE step 0: mode ``m`` and the hat's breakpoints for Binomial(n, r), r <= 1/2.

    Returns ``m`` and ``(p1, xm, xl, xr, c, laml, lamr, p2, p3, p4)``: triangle half-width
    :math:`p_1 = \lfloor 2.195\sqrt{nrq} - 4.6q\rfloor + 1/2`, parallelogram height
    ``c``, exponential tail rates :math:`\lambda_L, \lambda_R`, and cumulative region
    areas ``p1 < p2 < p3 < p4``.
    """
    q = 1.0 - r
    fm = n * r + r
    m = np.int64(math.floor(fm))
    p1 = math.floor(2.195 * math.sqrt(n * r * q) - 4.6 * q) + 0.5
    xm = m + 0.5
    xl = xm - p1
    xr = xm + p1
    c = 0.134 + 20.5 / (15.3 + m)
    a = (fm - xl) / (fm - xl * r)
    laml = a * (1.0 + a / 2.0)
    a = (xr - fm) / (xr * q)
    lamr = a * (1.0 + a / 2.0)
    p2 = p1 * (1.0 + 2.0 * c)
    p3 = p2 + c / laml
    p4 = p3 + c / lamr
    return m, (p1, xm, xl, xr, c, laml, lamr, p2, p3, p4)


@njit
def _btpe_candidate(n, m, hat, u, v):
    """BTPE steps 1-4: candidate ``y`` from the hat region that ``u * p4`` falls in.

    Returns ``(y, v, status)``: status 0 reject, 1 accept (triangle, under the pmf by
    construction), 2 accept iff ``v <= f(y) / f(m)`` (:func:`_btpe_accept`).
    """
    p1, xm, xl, xr, c, laml, lamr, p2, p3, p4 = hat
    u = u * p4
    if u <= p1:
        return np.int64(math.floor(xm - p1 * v + u)), v, 1
    if u <= p2:
        x = xl + (u - p1) / c
        v = v * c + 1.0 - abs(m - x + 0.5) / p1
        if v > 1.0:
            return np.int64(0), v, 0
        return np.int64(math.floor(x)), v, 2
    if v == 0.0:
        return np.int64(0), v, 0
    if u <= p3:
        y = math.floor(xl + math.log(v) / laml)
        if y < 0.0:
            return np.int64(0), v, 0
        return np.int64(y), v * (u - p2) * laml, 2
    y = math.floor(xr - math.log(v) / lamr)
    if y > n:
        return np.int64(0), v, 0
    return np.int64(y), v * (u - p3) * lamr, 2


@njit
def _stirling(x):
    r"""Stirling series remainder of :math:`\log\Gamma(x)`: :math:`1/(12x) - 1/(360x^3) + \dots`."""
    x2 = x * x
    return (13860.0 - (462.0 - (132.0 - (99.0 - 140.0 / x2) / x2) / x2) / x2) / x / 166320.0


@njit
def _btpe_ratio(y, n, r, m):
    r"""Step 5.1: :math:`f(y)/f(m) = \prod_{i=m+1}^{y} (a/i - s)` (or its inverse), s = r/q."""
    s = r / (1.0 - r)
    a = s * (n + 1)
    f = 1.0
    if m < y:
        for i in range(m + 1, y + 1):
            f *= a / i - s
    else:
        for i in range(y + 1, m + 1):
            f /= a / i - s
    return f


@njit
def _btpe_accept(y, v, n, r, m, xm):
    r"""BTPE step 5: accept candidate ``y`` iff ``v <= f(y) / f(m)``.

    Near the mode, or far in the tails, the ratio is computed exactly (step 5.1).
    Otherwise ``A = log v`` is compared with the squeeze :math:`t \pm \rho`,
    :math:`t = -k^2 / (2nrq)`, and then with the Stirling expansion of
    :math:`\log f(y)/f(m)` (step 5.3, signs corrected; see the module docstring).
    """
    q = 1.0 - r
    nrq = n * r * q
    k = float(abs(y - m))
    if k <= 20.0 or k >= nrq / 2.0 - 1.0:
        return v <= _btpe_ratio(y, n, r, m)
    rho = (k / nrq) * ((k * (k / 3.0 + 0.625) + 0.16666666666666666) / nrq + 0.5)
    t = -k * k / (2.0 * nrq)
    big_a = math.log(v)
    if big_a < t - rho:
        return True
    if big_a > t + rho:
        return False
    x1 = y + 1.0
    f1 = m + 1.0
    z = n + 1.0 - m
    w = n - y + 1.0
    bound = (xm * math.log(f1 / x1) + (n - m + 0.5) * math.log(z / w)
             + (y - m) * math.log(w * r / (x1 * q))
             + _stirling(f1) + _stirling(z) - _stirling(x1) - _stirling(w))
    return big_a <= bound


@njit
def _binomial_btpe(n, r, key):
    """Binomial(n, r), r <= 1/2, n r > 30, by BTPE; uniforms ``uniform(key, j)``, j = 0, 1, ...

    Triangle/parallelogram/exponential hat over the pmf; each attempt takes two uniforms
    ``(u, v)``; acceptance rate is high (about 0.8-0.9), so a few uniforms per draw.
    """
    m, hat = _btpe_setup(n, r)
    xm = hat[1]
    j = np.uint64(0)
    while True:
        u = uniform(key, j)
        v = uniform(key, j + np.uint64(1))
        j += np.uint64(2)
        y, v, status = _btpe_candidate(n, m, hat, u, v)
        if status == 1 or (status == 2 and _btpe_accept(y, v, n, r, m, xm)):
            return y


@njit
def binomial(n, p, key, counter):
    r"""Exact Binomial(n, p) draw from the private sub-stream of ``(key, counter)``.

    .. math:: P(X = x) = \binom{n}{x} p^x (1-p)^{n-x}

    Inversion if :math:`n\min(p, 1-p) \le 30`, else BTPE; for :math:`p > 1/2` returns
    :math:`n - X` with :math:`X \sim \mathrm{Binomial}(n, 1-p)`.  Uniforms come from
    ``uniform(stream_key(key, counter), j)``, ``j = 0, 1, ...``.

    Parameters
    ----------
    n : int64
        Trials; ``n <= 0`` gives 0.
    p : float64
        Success probability; ``p <= 0`` (or NaN) gives 0, ``p >= 1`` gives ``n``.
    key : uint64
        Stream key.
    counter : uint64
        Cell index; distinct counters give independent draws.

    Returns
    -------
    int64

    Examples
    --------
    >>> x = binomial(1000, 0.3, np.uint64(1), np.uint64(0))
    >>> 0 <= x <= 1000, x == binomial(1000, 0.3, np.uint64(1), np.uint64(0))
    (True, True)
    >>> binomial(7, 1.0, np.uint64(1), np.uint64(0))
    7

    """
    n = np.int64(n)
    if n <= 0 or not p > 0.0:
        return np.int64(0)
    if p >= 1.0:
        return n
    sk = np.uint64(stream_key(key, counter))  # cast: keeps .py_func on uint64
    r = min(p, 1.0 - p)
    if n * r <= 30.0:
        x = _binomial_inversion(n, r, sk)
    else:
        x = _binomial_btpe(n, r, sk)
    return n - x if p > 0.5 else x


@njit
def multinomial(n, probs, key, counter, out):
    r"""Exact Multinomial(n, probs) draw into ``out`` by conditional binomials.

    .. math::

        X_k \sim \mathrm{Binomial}\Bigl(n - \sum_{i<k} X_i,\;
        \frac{p_k}{\sum_{i \ge k} p_i}\Bigr), \qquad X_{K-1} = n - \sum_{i<K-1} X_i

    ``probs`` need not be normalised (negative entries count as 0); tail masses are summed
    afresh for each ``k`` (O(K^2), no cancellation).  Component ``k`` uses
    ``binomial(..., stream_key(key, counter), k)``.

    Parameters
    ----------
    n : int64
        Total count (``n <= 0`` gives all zeros).
    probs : float64 (K,)
        Category weights.
    key : uint64
        Stream key.
    counter : uint64
        Cell index; distinct counters give independent draws.
    out : int64 (K,)
        Output buffer.

    Examples
    --------
    >>> out = np.empty(3, np.int64)
    >>> multinomial(100, np.array([0.2, 0.3, 0.5]), np.uint64(1), np.uint64(0), out)
    >>> int(out.sum())
    100

    """
    sk = np.uint64(stream_key(key, counter))  # cast: keeps .py_func on uint64
    n_k = probs.shape[0]
    left = max(np.int64(n), np.int64(0))
    for k in range(n_k - 1):
        tail = 0.0
        for i in range(k, n_k):
            tail += max(probs[i], 0.0)
        pk = max(probs[k], 0.0)
        x = binomial(left, pk / tail, sk, np.uint64(k)) if left > 0 and tail > 0 else 0
        out[k] = x
        left -= x
    out[n_k - 1] = left


@njit(parallel=True)
def binomial_many(ns, ps, key, out):
    """``out[i] = binomial(ns[i], ps[i], key, i)``: cell index as counter, in parallel.

    Examples
    --------
    >>> out = np.empty(2, np.int64)
    >>> binomial_many(np.array([10, 10]), np.array([0.0, 1.0]), np.uint64(3), out)
    >>> out.tolist()
    [0, 10]

    """
    for i in numba.prange(ns.shape[0]):
        out[i] = binomial(ns[i], ps[i], key, np.uint64(i))
