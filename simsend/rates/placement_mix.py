"""Placement mixes of the specialist tier: the maths behind calibrated placements.

Pure functions over arrays, shared by the calibration (:mod:`simsend.rates.placements`) and
the year tables (:mod:`simsend.rates.parameters`): placement effects from SEN2's two margins,
the mix within age bands they imply, and the least movement between two mixes.
"""

from __future__ import annotations

import numpy as np

from simsend.data.baseline import EHCP_PLACEMENT_PRIOR
from simsend.dims import PLACEMENTS, band_of_age

PRIOR_FLOOR = 1e-4
"""Floor of the prior shape, as the baseline's IPF uses it."""
HALF = 0.5
"""Added to each placement count before taking logs (a council with none keeps a finite effect)."""
N_P = len(PLACEMENTS)


def prior_shape() -> np.ndarray:
    """Return the baseline's prior shape of EHC plans by (age band, placement), floored."""
    return np.maximum(EHCP_PLACEMENT_PRIOR, PRIOR_FLOOR)


def placement_effects(bands: np.ndarray, places: np.ndarray, prior: np.ndarray | None = None,
                      n_iter: int = 200) -> np.ndarray:
    """Log placement effects ``c[..., k]`` of IPF fits of ``prior`` to both margins.

    Parameters
    ----------
    bands : ndarray (..., 5)
        EHC plans by age band.
    places : ndarray (..., 7)
        EHC plans by placement group (:data:`HALF` is added to each; the bands are rescaled
        to the same total).
    prior : ndarray (5, 7), optional
        Default :func:`prior_shape`.

    Returns
    -------
    ndarray (..., 7)
        ``log b`` relative to mainstream's (``c[..., 0] == 0``): a placement's effect then
        moves only with its own count and mainstream's.

    """
    w = prior_shape() if prior is None else np.asarray(prior, float)
    p = np.asarray(places, float) + HALF
    a_tot = np.asarray(bands, float)
    a_tot = a_tot * (p.sum(-1, keepdims=True) / np.where(a_tot.sum(-1, keepdims=True) > 0,
                                                          a_tot.sum(-1, keepdims=True), 1.0))
    b = np.ones_like(p)
    for _ in range(n_iter):
        a = a_tot / np.maximum(np.einsum("gk,...k->...g", w, b), 1e-300)
        b = p / np.maximum(np.einsum("gk,...g->...k", w, a), 1e-300)
    lb = np.log(b)
    return lb - lb[..., :1]


def band_mix(c: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    """Placement mix within each age band, ``pi[..., g, k]``, from effects ``c[..., k]``."""
    w = prior_shape() if prior is None else np.asarray(prior, float)
    x = w * np.exp(c - c.max(axis=-1, keepdims=True))[..., None, :]
    return x / x.sum(axis=-1, keepdims=True)


def net_flow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Move probabilities ``M[..., src, dst]`` taking mix ``x`` to mix ``y`` with least movement.

    A placement whose share falls keeps ``y / x`` of its pupils; the rest move to the
    placements whose share rises, in proportion to the rise, so ``x @ M == y`` (rows sum to 1;
    a placement with ``x == 0`` keeps its pupils).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    d = y - x
    gain = np.maximum(d, 0.0)
    total = gain.sum(axis=-1, keepdims=True)
    out_share = np.divide(np.maximum(-d, 0.0), x, out=np.zeros_like(x), where=x > 0)
    out_share = np.minimum(out_share, 1.0)
    dest = np.divide(gain, total, out=np.zeros_like(gain), where=total > 0)
    m = out_share[..., :, None] * dest[..., None, :]
    idx = np.arange(x.shape[-1])
    m[..., idx, idx] += 1.0 - out_share
    return m


def specialist_rows(c_prev: np.ndarray, c_now: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Specialist-tier placement rows of one year per area, from effects before and after.

    Returns ``stay[A, 26, 7, 7]`` (the net flow from the mix of age ``a - 1``'s band under
    ``c_prev`` to age ``a``'s under ``c_now``; identity at age 0) and ``entry[A, 26, 7]`` (the
    mix of age ``a``'s band under ``c_now``).
    """
    g = band_of_age()
    before = band_mix(c_prev)[:, g]  # (A, 26, 7)
    after = band_mix(c_now)[:, g]
    stay = np.empty(after.shape + (N_P,))
    stay[:, 1:] = net_flow(before[:, :-1], after[:, 1:])
    stay[:, 0] = np.eye(N_P)
    return stay, after
