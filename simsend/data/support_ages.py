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

:func:`support_profile` gives the shape instead: the share of a birth cohort in the targeted
tiers at each census age when the config's rates act on it year after year in the engine's
order (leave, be identified, move between tiers, the newly identified from the next year on),
with the targeted / targeted-plus mix held at the baseline's share. The data layer weights
population by it (ages on a school roll only,
:data:`simsend.data.baseline.SCHOOL_PARTICIPATION` > 0), so recorded totals are exact and only
their split over ages changes. On the shipped rates it rises from 4.8% of the cohort at 4 to
13.8% at 10, then eases to 12.6% at 15 (5.0% and 4.0% at 16-17, as pupils leave the roll).
(Until December 2026 the newly identified moved between tiers in their first year here, unlike
the engine: 3.7%, 12.0% and 11.1%.) For comparison, one cohort followed through the National
Pupil Database (FFT Education Datalab, 2022) had 9.5% with any SEN in reception and 19.3% in
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


def cohort_shares(model: ModelConfig, targeted_plus_share: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Shares of a birth cohort in the targeted tiers and in the specialist tier, by census age.

    A cohort starts at birth with nobody identified.  Each year, in the engine's order
    (:data:`simsend.engine.loop.STEPS`): every tier loses its leaving rate at the new age; a
    share ``identification[a]`` of the universal tier is identified; the children who were
    in the targeted tiers before this year's identification then escalate to the specialist
    tier (``tiers[., specialist]`` times the need mix's mean multiplier) or return to
    universal (``tiers[., universal]``), and plans step down (``tiers[specialist, .]``).  The
    newly identified take part in tier moves from the next year, as in the engine.  The
    targeted tiers' rates are mixed by ``targeted_plus_share``.

    Parameters
    ----------
    model : ModelConfig
        The config's rates by age.
    targeted_plus_share : float
        Share of the targeted tiers in targeted-plus.

    Returns
    -------
    (ndarray (26,), ndarray (26,))
        The targeted tiers' share and the specialist tier's share at each census age (0-25).

    """
    t, tp, s, u = (TIER[k] for k in ("targeted", "targeted_plus", "specialist", "universal"))
    w = float(targeted_plus_share)
    need = np.asarray(model.need_mix, float) @ np.asarray(model.need_multiplier, float)
    n = len(model.identification)
    out_x, out_e = np.zeros(n), np.zeros(n)
    x = e = 0.0  # shares of the cohort in the targeted tiers and in the specialist tier
    for a in range(n):
        x *= 1.0 - ((1.0 - w) * model.leaving[t, a] + w * model.leaving[tp, a])
        e *= 1.0 - model.leaving[s, a]
        new = model.identification[a] * (1.0 - x - e)
        esc = ((1.0 - w) * model.tiers[t, s, a] + w * model.tiers[tp, s, a]) * need[a]
        back = (1.0 - w) * model.tiers[t, u, a] + w * model.tiers[tp, u, a]
        down = model.tiers[s, t, a] + model.tiers[s, tp, a]
        x, e = x * (1.0 - esc - back) + e * down + new, e * (1.0 - down) + x * esc
        out_x[a], out_e[a] = x, e
    return out_x, out_e


def support_profile(model: ModelConfig, targeted_plus_share: float) -> np.ndarray:
    """Share of a birth cohort in the targeted tiers at each census age, under ``model``.

    The first of :func:`cohort_shares`.

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
    [0.048, 0.138, 0.126]

    """
    return cohort_shares(model, targeted_plus_share)[0]
