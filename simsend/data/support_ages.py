"""SEN support by single age: the profile the engine's own rates give a cohort.

The school census publishes SEN support per council as one total (pupils aged 4-19 on a
school roll), never by age.  The data layer used to spread it over ages 4-15 in proportion
to population alone, so a council had as many pupils on SEN support at 4 as at 10.  The
engine's rates do not hold that shape: children are identified year by year from birth and
the young escalate to EHC plans often, so a run filled the youngest ages back at a third of
the spread (England from January 2022, every council's posterior: 84,000 at age 4 in the
baseline, 31,000 a year later), and each year a small young cohort replaced a large old one
leaving at 16.  The calibration reads the exposure to escalation on the same spread, so too
many children under 8 and too few at 11-15 were exposed as well.  (SEN support's fall in
forecasts from 2021 and 2022, 10-13% three years ahead, came mostly from identification's
trend, not from this: see ``identification_drift`` in :mod:`simsend.calibration.model`.)

:func:`support_profile` gives the shape instead: the share of a birth cohort in the
targeted tiers at each census age when the config's rates act on it year after year in the
engine's order (leave, be identified, move between tiers), with the targeted / targeted-plus
mix held at the baseline's share.  The data layer weights population by it (ages on a school
roll only, :data:`simsend.data.baseline.SCHOOL_PARTICIPATION` > 0), so recorded totals are
exact and only their split over ages changes.  On the shipped rates it rises from 3.7% of
the cohort at 4 to 12.0% at 10, then eases to 11.1% at 15 (4.4% and 3.5% at 16-17, as
pupils leave the roll).  For comparison, one cohort followed through the National Pupil
Database (FFT Education Datalab, 2022) had 9.5% with any SEN in reception and 19.3% in
year 6: the same rise through primary school, from a higher start.

It is the config's steady state, not a fit: the escalation and identification the
calibration estimates scale the rates by age group and change over time, and a cohort born
under lower rates holds fewer.  ASSUMPTION, recorded in the baseline's provenance.
"""

from __future__ import annotations

import numpy as np

from simsend.config.model import ModelConfig
from simsend.dims import TIER

ASSUMPTION = ("sen_support_profile: SEN support spread over ages 4-19 by population x the share "
              "of a birth cohort in the targeted tiers at each age under the config's rates "
              "(identification, leaving, escalation with the need mix's multiplier, "
              "de-identification, plans stepping down; simsend.data.support_ages)")


def support_profile(model: ModelConfig, targeted_plus_share: float) -> np.ndarray:
    """Share of a birth cohort in the targeted tiers at each census age, under ``model``.

    A cohort starts at birth with nobody identified.  Each year, in the engine's order
    (:data:`simsend.engine.loop.STEPS`): the targeted tiers and the specialist tier lose their
    leaving rates at the new age; a share ``identification[a]`` of the rest (the universal
    tier) is identified; then the targeted tiers escalate to the specialist tier
    (``tiers[., specialist]`` times the need mix's mean multiplier) and return to universal
    (``tiers[., universal]``), and plans step down (``tiers[specialist, .]``).  The targeted
    tiers' rates are mixed by ``targeted_plus_share``.

    Parameters
    ----------
    model : ModelConfig
        The config's rates by age.
    targeted_plus_share : float
        Share of the targeted tiers in targeted-plus.

    Returns
    -------
    ndarray (26,)
        The share at each census age (0-25).

    Examples
    --------
    >>> from simsend.config import load
    >>> m = load("configs/base.toml").model  # doctest: +SKIP
    >>> support_profile(m, 0.25)[[4, 10, 15]].round(3).tolist()  # doctest: +SKIP
    [0.037, 0.12, 0.111]

    """
    t, tp, s, u = (TIER[k] for k in ("targeted", "targeted_plus", "specialist", "universal"))
    w = float(targeted_plus_share)
    need = np.asarray(model.need_mix, float) @ np.asarray(model.need_multiplier, float)
    out = np.zeros(len(model.identification))
    x = e = 0.0  # shares of the cohort in the targeted tiers and in the specialist tier
    for a in range(len(out)):
        x *= 1.0 - ((1.0 - w) * model.leaving[t, a] + w * model.leaving[tp, a])
        e *= 1.0 - model.leaving[s, a]
        x += model.identification[a] * (1.0 - x - e)
        esc = ((1.0 - w) * model.tiers[t, s, a] + w * model.tiers[tp, s, a]) * need[a]
        back = (1.0 - w) * model.tiers[t, u, a] + w * model.tiers[tp, u, a]
        down = model.tiers[s, t, a] + model.tiers[s, tp, a]
        x, e = x * (1.0 - esc - back) + e * down, e * (1.0 - down) + x * esc
        out[a] = x
    return out
