"""Children identified before school age, which the school census does not count.

The built-in baseline takes the targeted tiers from the school census (SEN support, ages 4-19),
so it has no identified children aged 0-3.  The engine, however, identifies children from
birth (``model.identification``), and most EHC plans issued under age 5 follow an early-years
route.  Starting from zero there would make the first years of every run an artefact: no
early-years child could move to the specialist tier until identification had refilled the
ages, and the under-5 EHC plans would fall in every forecast whatever the rates.

:func:`fill_early_years` therefore starts those ages in the engine's own steady state under
the config's rates: a share :func:`~simsend.data.support_ages.cohort_shares` of each age's
population (a cohort followed from birth through identification, escalation, returns to the
universal tier and leaving, in the engine's order) moves from the universal pool to the
targeted tiers, split targeted / targeted-plus by the baseline's ``targeted_plus_share`` and
dealt over needs and placements by the config's ``need_mix`` and ``placement_new``.  The
population by age and area is unchanged.  Only ages below the first age at which the area has
any child in the targeted tiers are filled, so a council's own early-years counts are never
overwritten.  Until December 2026 the fill counted everyone ever identified
(``1 - prod_{b<=a}(1 - identification[b])``), as if none escalated or returned: England's
January 2025 baseline had 25,800 children on SEN support at age 3 where the engine's own rates
hold about 22,700 (the fill now), and a forecast's plans issued at age 4 fell year after year
as the surplus drained.  The calibration's exposure to escalation is read from the same
baseline, so the fit and the engine now start from the same early years.

EHC plans of the SEN2 band ``under_5`` (censuses before 2024, when SEN2 published age bands
only; areas with single ages published are left as published) are spread by the data
layer over ages 0-4 in proportion to population, which puts as many plans at age 0 as at
age 4.  The same steady state re-spreads them: within each (need, placement, area) cell the
band's plans are dealt over ages 0-4 in proportion to population x the cohort's share in the
specialist tier (band totals are exact; England 2025 as published: 0.6%, 0.6%, 0.7%, 15.7%,
82.3% of the band at 0-4, the steady state 0%, 1%, 3%, 26%, 65%).  Without it, calibration
reads the ageing out of the band as exits.

Both are assumptions of the model (recorded in ``Baseline.provenance``), not data.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from simsend.config.model import ModelConfig
from simsend.data.support_ages import cohort_shares
from simsend.dims import AGE_GROUPS, TIER

ASSUMPTION = ("early_years_fill: children aged under the first age with census SEN support "
              "start in the engine's steady state under the config's rates: population of age "
              "a x the share of a birth cohort in the targeted tiers at a "
              "(simsend.data.support_ages.cohort_shares), moved from the universal pool to the "
              "targeted tiers (split by targeted_plus_share), need by need_mix and placement "
              "by placement_new of the config")
ASSUMPTION_EHCP = ("early_years_ehcp_ages: EHC plans of the SEN2 band under_5 are dealt over ages "
                   "0-4 in proportion to population x the share of a birth cohort in the "
                   "specialist tier at each age under the config's rates (cohort_shares) within "
                   "each need x placement x area cell (band totals exact)")


def deal(total: int, weights: np.ndarray) -> np.ndarray:
    """Split the integer ``total`` over cells in proportion to ``weights`` (largest remainder).

    Examples
    --------
    >>> deal(10, np.array([1.0, 1.0, 1.0])).tolist()
    [4, 3, 3]

    """
    w = np.asarray(weights, float).ravel()
    if total <= 0 or w.sum() <= 0:
        return np.zeros(np.shape(weights), np.int64)
    exact = total * w / w.sum()
    out = np.floor(exact).astype(np.int64)
    rest = int(total - out.sum())
    if rest:
        # ties go to the lower index, so the split is deterministic
        order = np.lexsort((np.arange(len(w)), -(exact - out)))
        out[order[:rest]] += 1
    return out.reshape(np.shape(weights))


def identified_share(identification: np.ndarray) -> np.ndarray:
    """Share of children of each census age identified by then, ``1 - prod_{b<=a}(1 - p_b)``.

    Examples
    --------
    >>> identified_share(np.array([0.5, 0.5, 0.0])).tolist()
    [0.5, 0.75, 0.75]

    """
    return 1.0 - np.cumprod(1.0 - np.asarray(identification, float))


def fill_early_years(baseline, model: ModelConfig):
    """Return ``baseline`` with identified children added at ages the census does not cover.

    Parameters
    ----------
    baseline : simsend.data.Baseline
        As built by the data layer.
    model : ModelConfig
        Supplies the rates of :func:`~simsend.data.support_ages.cohort_shares`, ``need_mix``
        and ``placement_new``.

    Returns
    -------
    simsend.data.Baseline
        A new baseline (the input is not modified); ``provenance["early_years"]`` records
        the children moved per area, and the assumption is added to
        ``provenance["assumptions"]``.  The baseline is returned unchanged when every area
        already has targeted-tier children at age 0.

    """
    ind = np.array(baseline.individuals, dtype=np.int64, copy=True)
    pool = np.array(baseline.pool, dtype=np.int64, copy=True)
    s_tp = float(baseline.targeted_plus_share)
    share, plans = cohort_shares(model, s_tp)
    # (age, area): children in the targeted tiers (EHC plans at young ages do not count:
    # SEN2 records them at every age, the school census does not record SEN support)
    ident = ind[TIER["targeted"]:TIER["specialist"]].sum(axis=(0, 2, 4))
    moved = {}
    for r, code in enumerate(baseline.areas):
        has = np.flatnonzero(ident[:, r] > 0)
        first = int(has[0]) if len(has) else 0  # an area with nobody identified: leave it
        n_area = 0
        for a in range(first):
            pop_a = pool[a, r] + int(ind[1:, a, :, r].sum())
            n = min(int(np.floor(pop_a * share[a] + 0.5)), int(pool[a, r]))
            if n <= 0:
                continue
            cells = deal(n, np.outer(model.need_mix[a], model.placement_new[a]))
            tp = deal(int(np.floor(n * s_tp + 0.5)), cells.astype(float))
            ind[TIER["targeted_plus"], a, :, r, :] += tp
            ind[TIER["targeted"], a, :, r, :] += cells - tp
            pool[a, r] -= n
            n_area += n
        if n_area:
            moved[str(code)] = n_area
    if not moved:
        return baseline
    # Re-spread the specialist tier within the under-5 band (population is pool + individuals).
    lo, hi = AGE_GROUPS["under_5"]
    s = TIER["specialist"]
    pop = pool[lo:hi + 1] + ind[1:, lo:hi + 1].sum(axis=(0, 2, 4))  # (ages, area)
    w_age = pop * plans[lo:hi + 1, None]
    spec = ind[s, lo:hi + 1]  # (ages, need, area, placement)
    band = spec.sum(axis=0)
    new_spec = spec.copy()
    # SEN2 publishes single ages from January 2024: those areas keep the published ages
    published = set(baseline.provenance.get("ehcp_ages_published", []))
    for n, r, p in zip(*np.nonzero(band), strict=True):
        if str(baseline.areas[r]) not in published:
            new_spec[:, n, r, p] = deal(int(band[n, r, p]), w_age[:, r])
    # Keep each age's population: the universal pool absorbs the difference.
    pool[lo:hi + 1] -= (new_spec - spec).sum(axis=(1, 3))
    if (pool < 0).any():  # not enough universal children at some age: keep the data's spread
        pool[lo:hi + 1] += (new_spec - spec).sum(axis=(1, 3))
    else:
        ind[s, lo:hi + 1] = new_spec
    prov = dict(baseline.provenance)
    prov["assumptions"] = [*prov.get("assumptions", []), ASSUMPTION, ASSUMPTION_EHCP]
    prov["early_years"] = {"moved_from_universal": moved, "documentation": __name__}
    return dataclasses.replace(baseline, individuals=ind, pool=pool, provenance=prov)
