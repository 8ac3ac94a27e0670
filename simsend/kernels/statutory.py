r"""Statutory pipeline draws around the plans issued, one output cell at a time.

Given :math:`I` plans issued in a cell (the engine's moves into the specialist tier), the
assessments that ended without a plan and the requests refused an assessment are the
failures of Bernoulli trials stopped at a fixed number of successes, i.e. negative binomial:

.. math::

    N \mid I \sim \mathrm{NB}(I, 1 - p_{\mathrm{not\,issue}}), \quad A = I + N, \qquad
    F \mid A \sim \mathrm{NB}(A, 1 - p_{\mathrm{refuse}}), \quad R = A + F,

drawn exactly as sums of geometric variables :math:`\lfloor \log(1-u) / \log p \rfloor`.
Plans issued within 20 weeks are :math:`\mathrm{Binomial}(I, p_{20})`; the weeks beyond 20 of
each late plan are exponential; appeals and their outcomes are binomial.  Each cell draws
with the rates of its own row of a ``(U, 9)`` table (``unit[c]``: its area, so that councils
keep their own estimated rates; one row for a run with one rate set).

**Assessing workforce** (:mod:`simsend.statutory.workforce`): a cell whose assessing staff cover
only a share :math:`r < 1` of the hours its assessments need keeps each of its :math:`T` timely
plans on time with probability :math:`r` (thinning, one uniform per plan, so
:math:`T_r \mid I \sim \mathrm{Binomial}(I, p_{20} r)` exactly and :math:`T_r` never rises as
:math:`r` falls, draw by draw), and the late plans' excess weeks have mean
:math:`w_{\mathrm{over}} / \max(r, r_{\min})`.  With :math:`r = 1` no extra number is drawn and
every output is the same bit for bit as without a workforce.
"""

import math

import numba
import numpy as np

from simsend.kernels._jit import njit
from simsend.kernels.rng import stream_key, uniform
from simsend.kernels.sampling import binomial

OUT = ("n_requests", "n_refused", "n_assessed", "n_not_issued", "n_issued",
       "n_within_20_weeks", "dur_weeks_total", "n_appeals", "n_appeals_upheld")
"""Rows of :func:`pipeline_cells`'s output, in order."""

COVER_FLOOR = 0.1
"""Smallest coverage used to stretch late plans' excess weeks (at most 10 times as long)."""
THIN = np.uint64(1 << 62)
"""Counter offset of the thinning sub-stream of the weeks stream (cells use 2c and 2c + 1)."""


@njit
def negbin_failures(r, p_fail, key, counter):
    r"""Failures before ``r`` successes when each trial fails with ``p_fail``.

    :math:`\sum_{j<r} \lfloor \log(1 - u_j) / \log p \rfloor` with
    :math:`u_j = U(\mathrm{stream\_key}(k, c), j)`; each term is geometric,
    :math:`P(G \ge g) = p^g`, so the sum is :math:`\mathrm{NB}(r, 1 - p)`
    (NumPy's ``negative_binomial(r, 1 - p)``).
    """
    if r <= 0 or not p_fail > 0.0:
        return np.int64(0)
    sk = np.uint64(stream_key(key, counter))
    lp = math.log(p_fail)
    total = np.int64(0)
    for j in range(r):
        total += np.int64(math.floor(math.log(1.0 - uniform(sk, np.uint64(j))) / lp))
    return total


@njit
def exp_sum(n, mean, key, counter):
    """Sum of ``n`` exponential variables of mean ``mean`` (inversion, private sub-stream)."""
    sk = np.uint64(stream_key(key, counter))
    s = 0.0
    for j in range(n):
        s -= math.log(1.0 - uniform(sk, np.uint64(j)))
    return s * mean


@njit
def thin(n, p, key, counter):
    r"""Trials kept, of ``n``, when each is kept with probability ``p``.

    :math:`\#\{j < n : u_j < p\}` with :math:`u_j = U(\mathrm{stream\_key}(k, c), j)`:
    Binomial(n, p), and for a fixed key and counter never smaller for a larger ``p`` or ``n``.
    """
    if n <= 0:
        return np.int64(0)
    sk = np.uint64(stream_key(key, counter))
    kept = np.int64(0)
    for j in range(n):
        if uniform(sk, np.uint64(j)) < p:
            kept += 1
    return kept


@njit
def assessed_cells(issued, unit, p_not_issue, key, out):
    """Assessments of every cell, ``issued + NB failures``: the same draw as in the pipeline.

    Parameters
    ----------
    issued : int64 (M,) plans issued per cell
    unit : int64 (M,) each cell's row of ``p_not_issue`` (its area; all 0 for one rate set)
    p_not_issue : float64 (U,)
    key : uint64, the not-issued stream's key (``keys[0]`` of :func:`pipeline_cells`)
    out : int64 (M,)

    """
    for c in range(issued.shape[0]):
        out[c] = issued[c] + negbin_failures(issued[c], p_not_issue[unit[c]], key, np.uint64(c))


@njit
def pipeline_cell(issued, cover, unit, rates, keys, c, out):
    """Draw the pipeline of cell ``c`` (loop body): coverage ``cover[c]``, rates ``unit[c]``."""
    p_ref, p_ni, p20, ap_ref, ap_ni, ap_con, p_up, w_in, w_over = rates[unit[c], :9]
    cu = np.uint64(c)
    n_i = issued[c]
    n_ni = negbin_failures(n_i, p_ni, keys[0], cu)
    n_a = n_i + n_ni
    n_f = negbin_failures(n_a, p_ref, keys[1], cu)
    n_20 = binomial(n_i, p20, keys[2], np.uint64(2 * c))
    r = cover[c]
    if r < 1.0:  # short of assessing staff: thin the timely plans, stretch the late ones
        n_20 = thin(n_20, r, keys[2], THIN + cu)
        w_over = w_over / max(r, COVER_FLOOR)
    weeks = n_20 * w_in + (n_i - n_20) * 20.0 + exp_sum(n_i - n_20, w_over, keys[2],
                                                         np.uint64(2 * c + 1))
    n_ap = (binomial(n_f, ap_ref, keys[3], np.uint64(3 * c))
            + binomial(n_ni, ap_ni, keys[3], np.uint64(3 * c + 1))
            + binomial(n_i, ap_con, keys[3], np.uint64(3 * c + 2)))
    out[0, c] = n_a + n_f
    out[1, c] = n_f
    out[2, c] = n_a
    out[3, c] = n_ni
    out[4, c] = n_i
    out[5, c] = n_20
    out[6, c] = weeks
    out[7, c] = n_ap
    out[8, c] = binomial(n_ap, p_up, keys[4], cu)


@njit(parallel=True)
def pipeline_cells_cover(issued, cover, unit, rates, keys, out):
    """Draw the pipeline of every cell under workforce coverage; counter = cell index ``c``.

    Parameters
    ----------
    issued : int64 (M,) plans issued per cell
    cover : float64 (M,) share of the needed assessing hours available (1 = enough)
    unit : int64 (M,) each cell's row of ``rates`` (its area; all 0 for one rate set)
    rates : float64 (U, 9) ``PIPELINE_RATES`` order, one row per rate set
    keys : uint64 (5,) streams: not issued, refused, weeks, appeal, upheld
    out : float64 (9, M) rows :data:`OUT`

    """
    for c in numba.prange(issued.shape[0]):
        pipeline_cell(issued, cover, unit, rates, keys, c, out)


@njit(parallel=True)
def pipeline_cells(issued, unit, rates, keys, out):
    """Draw the pipeline of every cell; cell index ``c`` is the counter of every stream.

    The same as :func:`pipeline_cells_cover` with coverage 1 everywhere (no workforce).

    Parameters
    ----------
    issued : int64 (M,) plans issued per cell
    unit : int64 (M,) each cell's row of ``rates``
    rates : float64 (U, 9) ``PIPELINE_RATES`` order
    keys : uint64 (5,) streams: not issued, refused, weeks, appeal, upheld
    out : float64 (9, M) rows :data:`OUT`

    """
    cover = np.ones(issued.shape[0])
    for c in numba.prange(issued.shape[0]):
        pipeline_cell(issued, cover, unit, rates, keys, c, out)


@njit
def pipeline_cells_serial(issued, cover, unit, rates, keys, out):
    """:func:`pipeline_cells_cover` on the calling thread alone (same arguments and result).

    For small years, where starting a parallel region costs more than the draws.
    """
    for c in range(issued.shape[0]):
        pipeline_cell(issued, cover, unit, rates, keys, c, out)
