"""Rate tables into the kernels' cumulative layout.

The tier table is held as ``tiers[src, dst, age, need, area]`` (a move's destination second,
as the calibration and scenarios edit it); the kernels read one contiguous row of cumulative
probabilities per (age, need, area, src).  ``numpy.cumsum`` over the transposed array costs
about 9 ms per year for every council (a strided copy, then the sum); this pass writes the
same numbers (sequential sums, as ``cumsum`` adds) in one sweep.
"""

from simsend.kernels._jit import njit


@njit
def cdf_rows(p, out):
    """Write ``out[i, s, :] = cumsum(p[s, :, i])`` with each row's last entry set to 1.

    Parameters
    ----------
    p : float64 array (S, D, I)
        Probabilities, rows over the second axis; contiguous.
    out : float64 array (I, S, D)
        Cumulative rows (overwritten).

    """
    n_s, n_d, n_i = p.shape
    for i in range(n_i):
        for s in range(n_s):
            acc = 0.0
            for d in range(n_d):
                acc += p[s, d, i]
                out[i, s, d] = acc
            out[i, s, n_d - 1] = 1.0
