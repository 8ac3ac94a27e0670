"""The reform timeline as rates: current law, dual running, steady state.

Census years up to ``legislation_year`` run under current law.  A year closing at a census
after it is *reformed*: pupils who move into a targeted tier from then on hold an ISP instead
of SEN support (plan ``isp``), while those already on SEN support keep it until they move
(dual running).  From the first reformed year up to and including ``steady_state_year``,
existing EHC plans are reviewed at phase transfer: a specialist-tier pupil reaching one of
``review_ages`` who would otherwise stay in the specialist tier moves to targeted-plus with
probability ``review_share``.  After the legislation year escalation into the specialist tier
is multiplied by ``entry_factor`` (a stricter or looser threshold for a specialist provision
package).  All of it acts on the year's tier table ``tiers[src, dst, age, need, area]``, so
the engine needs no reform-specific code beyond the ``reformed`` flag that picks the plan.

Ages follow the engine's census-age convention (the age reached at the January census that
closes the year); the default review ages 5, 11 and 16 are the reception, secondary and
post-16 transfers of ``configs/base.toml``'s placement moves.
"""

from __future__ import annotations

import numpy as np

from simsend.config import ReformConfig
from simsend.dims import TIER

_SP, _TP = TIER["specialist"], TIER["targeted_plus"]


def is_reformed(reform: ReformConfig, year: int) -> bool:
    """Return True for a year closing at census ``year`` after the legislation year.

    Examples
    --------
    >>> is_reformed(ReformConfig(legislation_year=2029), 2029), \
is_reformed(ReformConfig(legislation_year=2029), 2030)
    (False, True)

    """
    return year > reform.legislation_year


def reviewing(reform: ReformConfig, year: int) -> bool:
    """Return True when plans are reviewed at phase transfer in the year closing at ``year``."""
    return reform.legislation_year < year <= reform.steady_state_year


def apply_reform(reform: ReformConfig, year: int, tiers: np.ndarray) -> np.ndarray:
    """Return the year's tier table under the reform (``tiers`` itself when nothing changes).

    Parameters
    ----------
    reform : ReformConfig
    year : int
        Census year closing the simulated year.
    tiers : ndarray (4, 4, 26, ...)
        ``tiers[src, dst, age, ...]`` with rows over ``dst`` summing to 1.

    Returns
    -------
    ndarray
        With, when reviewing, ``p[sp, tp] += r * p[sp, sp]`` and ``p[sp, sp] *= 1 - r`` at the
        review ages; and after the legislation year moves into the specialist tier scaled by
        ``entry_factor`` (capped so that rows stay distributions), the stay absorbing the
        change.

    """
    review = reviewing(reform, year) and reform.review_share > 0.0 and reform.review_ages
    entry = is_reformed(reform, year) and reform.entry_factor != 1.0
    if not (review or entry):
        return tiers
    out = tiers.copy()
    if entry:
        for s in range(1, _SP):
            up = out[s, _SP] * reform.entry_factor
            room = 1.0 - (out[s].sum(axis=0) - out[s, s] - out[s, _SP])
            out[s, _SP] = np.minimum(up, room)
            out[s, s] = 1.0 - out[s, :s].sum(axis=0) - out[s, s + 1:].sum(axis=0)
    if review:
        ages = np.array(reform.review_ages, np.int64)
        stay = out[_SP, _SP, ages]
        out[_SP, _TP, ages] = out[_SP, _TP, ages] + reform.review_share * stay
        out[_SP, _SP, ages] = stay * (1.0 - reform.review_share)
    return out
