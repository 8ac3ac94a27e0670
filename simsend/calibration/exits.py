"""How EHC plans end: the share of plan endings that are moves down to SEN support.

The first stage (:mod:`simsend.calibration.model`) estimates how many plans end each year
(the exit multiplier), not where the young people go.  Most endings are not moves down to
SEN support: in calendar 2024 SEN2 recorded 30,909 plans ended in England other than by a
transfer to another council, of which 3,955 (12.8%) because the needs were met; the rest
moved on to work or study, disengaged, moved out of England, reached 25 or died.  The
engine sends the needs-met share ``delta`` of its calibrated exits down to the targeted
tiers (where they can be identified for a plan again) and the rest out of support.  Before
this, every exit beyond the config's leaving rate went down to the targeted-plus tier and
came back as a "new" plan at the targeted-plus escalation rate: at ages 20-25 that churn
issued about 11,000 new plans a year in England where SEN2 records a few hundred.

``delta`` is estimated per area from SEN2's ceased plans by reason: ``needs_met`` plans out
of ``exits`` (ceased less transfers to another council) over the last :data:`RECENT_YEARS`
recorded years up to the origin (SEN2 changed collection in 2022, and the reasons recorded
before then differ).  Model: ``needs_met_r ~ Binomial(exits_r, delta_r)``,
``delta_r ~ Beta(a, b)``; with more than one area ``(a, b)`` are fitted to every area's
counts by maximum marginal (beta-binomial) likelihood, so a small council is pulled
towards the others, otherwise ``a = b = 1``.  The posterior ``Beta(a + needs_met_r, b +
exits_r - needs_met_r)`` is independent of the first stage's (separate data, separate
parameters), so its draws are paired with the first stage's at random.  One share for all
ages of an area: SEN2 publishes reasons by age for England and councils only from 2022
(England 2024: 0.2% of under-5 endings were needs met, about 35% at ages 5-15, 10-12% at
16 and over; see the README's "How plans end").
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import optimize, special

RECENT_YEARS = 3
"""Transition years of needs-met counts used (the latest recorded up to the origin)."""


def recent_counts(targets: xr.Dataset, years: int = RECENT_YEARS
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """Return ``(needs_met, exits)`` (R,) summed over each area's last ``years`` recorded years.

    None when ``targets`` has no ``needs_met`` / ``exits`` series.  A year counts for an area
    when both are recorded and ``0 <= needs_met <= exits``.
    """
    if "needs_met" not in targets or "exits" not in targets:
        return None
    nm = targets["needs_met"].transpose("year", "area").values.astype(float)
    ex = targets["exits"].transpose("year", "area").values.astype(float)
    ok = np.isfinite(nm) & np.isfinite(ex) & (nm >= 0) & (nm <= ex)
    # the last `years` usable years of each area, counted from the latest
    rank = np.cumsum(ok[::-1], axis=0)[::-1]
    use = ok & (rank <= years)
    return np.where(use, nm, 0.0).sum(axis=0), np.where(use, ex, 0.0).sum(axis=0)


def _betabinom_nll(log_ab: np.ndarray, k: np.ndarray, n: np.ndarray) -> float:
    a, b = np.exp(log_ab)
    return -float(np.sum(special.betaln(k + a, n - k + b) - special.betaln(a, b)))


def share_prior(needs_met: np.ndarray, exits: np.ndarray) -> tuple[float, float]:
    """Beta prior ``(a, b)`` of the areas' shares: marginal-likelihood fit, or (1, 1).

    The fit needs at least two areas with exits recorded; the binomial coefficients do not
    depend on ``(a, b)`` and are left out.
    """
    k, n = np.asarray(needs_met, float), np.asarray(exits, float)
    have = n > 0
    if have.sum() < 2:
        return 1.0, 1.0
    k, n = k[have], n[have]
    m = float(np.clip(k.sum() / n.sum(), 1e-3, 1 - 1e-3))
    x0 = np.log([10.0 * m, 10.0 * (1.0 - m)])
    res = optimize.minimize(_betabinom_nll, x0, args=(k, n), method="Nelder-Mead",
                            options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 2000})
    a, b = np.exp(res.x)
    return float(a), float(b)


def share_posterior(targets: xr.Dataset, years: int = RECENT_YEARS
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """Beta posterior parameters ``(alpha, beta)`` (R,) of each area's needs-met share.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = xr.Dataset({"needs_met": (("year", "area"), [[10.0], [30.0]]),
    ...                 "exits": (("year", "area"), [[100.0], [200.0]])})
    >>> share_posterior(t)  # one area: Beta(1 + 40, 1 + 260)
    (array([41.]), array([261.]))

    """
    counts = recent_counts(targets, years)
    if counts is None:
        return None
    nm, ex = counts
    a, b = share_prior(nm, ex)
    return a + nm, b + ex - nm


def sample_share(targets: xr.Dataset, chains: int, draws: int, seed: int,
                 years: int = RECENT_YEARS) -> xr.DataArray | None:
    """Posterior draws ``deescalation_share`` (chain, draw, area), or None without the data.

    Seeded by ``seed`` alone, so a calibration is repeatable.
    """
    post = share_posterior(targets, years)
    if post is None:
        return None
    alpha, beta = post
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xDE5C]))
    x = rng.beta(alpha, beta, size=(chains, draws, len(alpha)))
    return xr.DataArray(
        x, dims=("chain", "draw", "area"),
        coords={"chain": np.arange(chains), "draw": np.arange(draws),
                "area": [str(a) for a in targets["area"].values]},
        name="deescalation_share",
        attrs={"long_name": "share of EHC plan endings (other than transfers) that are moves "
                            "down to SEN support (needs met)",
               "source": f"SEN2 ceased plans by reason, last {years} recorded years; "
                         "beta-binomial, prior fitted over areas"})
