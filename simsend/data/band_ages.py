"""EHC plans re-spread within SEN2's age bands by a calibrated age profile.

Before January 2024 SEN2 published EHC plans by age band only (under 5, 5-10, 11-15, 16-19,
20-25).  The data layer spreads each band over its single ages in proportion to population
(:mod:`simsend.data.baseline`; under 5 by the identification steady state,
:mod:`simsend.data.early_years`), which puts as many plans at 19 as at 16 and at 25 as at 20.
Plans do not sit like that: they end at 18-19 and after, so the bands' older ages hold fewer.
A flat spread makes the engine's first years age too many plans out of a band (and, in a
calibration, read that ageing as fewer endings).

The calibration carries its own within-band profile from census to census
(``PriorConfig.propagate_ages``) and records the profile of its last census as
``ehcp_age_share`` (age, area).  :func:`respread_bands` deals each band's EHC plans over its
ages by that profile (largest remainder), then splits them over the band's need x placement
cells (each cell's total exact, within about one plan of proportional; each age's population
kept by the universal pool).  Areas whose
single ages SEN2 published at the baseline census keep them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from simsend.data.early_years import deal
from simsend.data.rounding import split_rank_one
from simsend.dims import AGE_GROUPS, TIER

ASSUMPTION = ("ehcp_band_ages: EHC plans of areas without published single ages are dealt over "
              "the ages of each SEN2 band by the calibrated posterior's within-band profile at "
              "its last census (ehcp_age_share, posterior mean), within each need x placement "
              "cell (band totals exact)")


def respread_bands(baseline, share: np.ndarray, *, source: str = ""):
    """Return ``baseline`` with its EHC plans re-spread within bands by ``share``.

    Parameters
    ----------
    baseline : simsend.data.Baseline
        As built by the data layer (not modified).
    share : array (26, n_areas)
        Within-band age shares of EHC plans per area of the baseline (each band sums to 1).
    source : str
        Where the shares come from (recorded in the provenance).

    Returns
    -------
    simsend.data.Baseline
        A new baseline; ``provenance["ehcp_band_ages"]`` lists the areas re-spread and the
        plans that changed age.  Areas with published single ages, and any age whose
        universal pool would go negative, keep the data's spread.

    Raises
    ------
    ValueError
        If ``share`` has the wrong shape, negative values, or a band not summing to 1.

    Examples
    --------
    >>> deal(5, np.array([0.6, 0.4])).tolist()
    [3, 2]

    """
    ind = np.array(baseline.individuals, dtype=np.int64, copy=True)
    pool = np.array(baseline.pool, dtype=np.int64, copy=True)
    n_r = ind.shape[3]
    share = np.asarray(share, float)
    if share.shape != (ind.shape[1], n_r):
        raise ValueError(f"age shares have shape {share.shape}, expected "
                         f"{(ind.shape[1], n_r)} (age, area)")
    if not np.isfinite(share).all() or (share < 0).any():
        raise ValueError("age shares must be finite and non-negative")
    s = TIER["specialist"]
    published = set(baseline.provenance.get("ehcp_ages_published", []))
    changed: dict[str, int] = {}
    for r, code in enumerate(baseline.areas):
        if str(code) in published:
            continue
        moved = 0
        for lo, hi in AGE_GROUPS.values():
            w = share[lo:hi + 1, r]
            if abs(w.sum() - 1.0) > 1e-6:
                raise ValueError(f"age shares of area {code} at ages {lo}-{hi} sum to "
                                 f"{w.sum():.6f}, expected 1")
            spec = ind[s, lo:hi + 1, :, r, :]  # (ages, need, placement)
            cells = spec.sum(axis=0)
            # The band's plans by age first (largest remainder), then a table with those age
            # totals and the cells' totals: dealing each small cell on its own would send
            # every one-plan cell to the same age.
            ages = deal(int(cells.sum()), w)
            new = np.zeros_like(spec)
            nz = np.nonzero(cells)
            if len(nz[0]):
                new[:, nz[0], nz[1]] = split_rank_one(cells[nz], ages).T
            diff = (new - spec).sum(axis=(1, 2))  # (ages,)
            if (pool[lo:hi + 1, r] - diff < 0).any():
                continue  # too few universal children at some age: keep the data's spread
            pool[lo:hi + 1, r] -= diff
            ind[s, lo:hi + 1, :, r, :] = new
            moved += int(np.abs(diff).sum()) // 2
        changed[str(code)] = moved
    if not changed:
        return baseline
    prov = dict(baseline.provenance)
    prov["assumptions"] = [*prov.get("assumptions", []), ASSUMPTION]
    prov["ehcp_band_ages"] = {"source": source, "plans_moved": changed,
                              "documentation": __name__}
    return dataclasses.replace(baseline, individuals=ind, pool=pool, provenance=prov)
