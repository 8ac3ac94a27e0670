"""The targeted / targeted-plus split held at the stated share (``[model] targeted_split``).

No published series splits SEN support into the reform's targeted and targeted-plus tiers:
the baseline splits it by ``[data] targeted_plus_share`` (an ASSUMPTION), and the calibration
reads SEN support's escalation as that mix, ``(1 - s) e_t + s e_tp`` per child.  The config's
moves between the two tiers are hand-set, and on their own they do not keep the share: with
every identified child entering the targeted tier and targeted-plus children escalating six
times as often, the default rates drained targeted-plus from 25% of SEN support to about 11%
within three years of a run, so escalations per SEN-support child fell by about a third below
what the calibration had fitted (EHC plans under 11 and new plans ran 12-37% low three years
ahead in the backtests; new plans 7% high one year ahead while the share was still 25%).

``"balanced"`` makes the engine agree with the calibration's reading:

* a newly identified child enters targeted-plus with probability ``s`` (else targeted);
* the move from targeted to targeted-plus at each age (and need and area) is set so that
  a cohort whose SEN support is split ``s`` keeps that split among those who stay in SEN
  support after the year's moves (:func:`balance_split`).

So the share is held in expectation under the calibrated rates; a reform or a scenario that
changes the tier moves acts after the balancing and may move it (their effect).  Plans
ending with needs met still step down to targeted-plus as the config says, which lifts the
share slightly (they are about 1% of targeted-plus a year in England).
"""

from __future__ import annotations

import numpy as np

from simsend.dims import TIER

_U, _T, _TP, _S = (TIER[k] for k in ("universal", "targeted", "targeted_plus", "specialist"))


def balance_split(tiers: np.ndarray, share: float) -> np.ndarray:
    r"""Return ``tiers`` with the targeted -> targeted-plus move that keeps the split ``share``.

    With ``s`` the share, ``u``, ``e`` a tier's moves to universal and to the specialist
    tier, ``d`` the move from targeted-plus back to targeted (all after leaving, which is the
    same for both tiers in the default config; a cohort's leavers leave both alike), a
    cohort of ``X`` children split ``(1 - s) X``, ``s X`` keeps the split when

    .. math::

        (1 - s)\,TP' = s\,T' \iff
        m = s\,(u_{tp} - u_t + e_{tp} - e_t) + \frac{s\,d}{1 - s}

    with ``T' = (1-s)X(1 - u_t - m - e_t) + sXd`` and ``TP' = (1-s)Xm + sX(1 - u_{tp} - d -
    e_{tp})``.  ``m`` is clipped to ``[0, 1 - u_t - e_t]`` (where targeted-plus escalates
    less than targeted the share rises instead); targeted's stay takes what is left.

    Parameters
    ----------
    tiers : ndarray (4, 4, 26, n_need, n_areas)
        Moves ``[src, dst, age, need, area]``, rows summing to 1 over ``dst``.
    share : float
        Targeted-plus share of SEN support to hold, in [0, 1).

    Returns
    -------
    ndarray
        A copy with ``[targeted, targeted_plus]`` and ``[targeted, targeted]`` replaced.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((4, 4, 1, 1, 1))
    >>> t[0, 0] = t[3, 3] = 1.0
    >>> t[1, 0], t[1, 3], t[1, 1] = 0.10, 0.04, 0.86   # targeted
    >>> t[2, 0], t[2, 1], t[2, 3], t[2, 2] = 0.03, 0.06, 0.23, 0.68   # targeted-plus
    >>> round(float(balance_split(t, 0.25)[1, 2].item()), 4)   # 0.25 (0.12) + 0.25 (0.06) / 0.75
    0.05

    """
    s = float(share)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"targeted_plus_share {s} must be in [0, 1) to balance the split")
    out = tiers.copy()
    u_t, e_t = tiers[_T, _U], tiers[_T, _S]
    u_p, d, e_p = tiers[_TP, _U], tiers[_TP, _T], tiers[_TP, _S]
    m = s * (u_p - u_t + e_p - e_t) + s * d / (1.0 - s)
    m = np.clip(m, 0.0, np.maximum(1.0 - u_t - e_t, 0.0))
    out[_T, _TP] = m
    out[_T, _T] = np.maximum(1.0 - u_t - m - e_t, 0.0)
    return out
