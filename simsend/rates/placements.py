r"""Specialist-tier placements calibrated per council from SEN2 (``placements = "calibrated"``).

SEN2 publishes each council's EHC plans at each January census by age band ``A[g]`` and by
placement group ``P[k]``, not their joint (single years of age by establishment type only from
2024).  The baseline's joint is the IPF fit of a documented prior shape ``w[g, k]``
(:data:`simsend.data.baseline.EHCP_PLACEMENT_PRIOR`, floored at 1e-4) to both margins, which
has the form ``n[g, k] = w[g, k] a[g] b[k]``: beyond its ages, a council-census is described
by its placement effects ``c[k] = log b[k] - log b[mainstream]``
(:func:`simsend.rates.placement_mix.placement_effects`), and its mix within age band ``g`` is
``pi[g, k] = w[g, k] b[k] / sum_j w[g, j] b[j]``.

Model of the yearly change of council ``r``'s effect of placement ``k`` (``k`` not mainstream):

.. math::

    c_{r t k} - c_{r, t-1, k} = \mu_k + \eta_{t k} + \delta_{r k} + \varepsilon_{r t k}

* ``mu_k``, the drift every council shares (mainstream's share of EHC plans has grown against
  special schools' every year since 2019), estimated robustly as the median over years of the
  councils' median change of the year, so a year in which SEN2's recording changed (``other``
  in 2019 and 2023) does not set the drift; its uncertainty is the standard error of the
  yearly medians (from fewer than :data:`MIN_YEARS` changes: no drift);
* ``eta_tk ~ N(0, s_k^2)``, the year's change common to every council: ``s_k`` is the robust
  (MAD) spread of the yearly medians about ``mu_k``, so a recording change is not taken for a
  yearly event (the bands therefore do not allow for another one);
* ``delta_rk ~ N(0, tau_k^2)``, the council's own persistent drift (estimated only with
  ``own_drift=True``: out of sample it did not help, see :func:`fit_placements`);
* ``eps_rtk ~ N(0, sigma_k^2 + lambda_k v_rtk)``, the council's yearly noise, larger for small
  councils: ``v = 1 / (P_k + 0.5) + 1 / (P_mainstream + 0.5)``, with ``sigma_k^2`` and
  ``lambda_k`` the least-squares fit (both >= 0) of the squared deviations on ``v``.

All from the censuses from :data:`FIRST_YEAR` to the baseline year, every area of the run at
once, in closed form (no sampler); a run of fewer than :data:`MIN_POOL` areas takes its areas'
own deviations unshrunk.

Forecast (:class:`PlacementSource`): each Monte Carlo draw draws ``mu`` and the common yearly
changes from a stream keyed by the seed and the draw, and each council's ``delta`` and yearly
noise from a stream keyed by the seed, the draw and the council's code, so ``c`` walks on from
the baseline census and the bands carry the drift's uncertainty and the walk.  The engine then
moves specialist-tier pupils so that, in expectation, each cohort's placement mix goes from
``pi`` of its age band at the last census to ``pi`` of its age band at this one
(:func:`simsend.rates.placement_mix.net_flow`, the least movement between the two mixes; this is
where the phase transfers at 5, 11, 16 and 20 come from), and a child entering the specialist
tier takes ``pi`` of its age band this year.  Leaving does not depend on placement in the
engine, so the mixes are kept through exits.

Not known to the model (stated in the README): the mix within an age band by single age (the
prior's shape is flat within a band), new plans' own placement mix (entrants take the stock's
mix of their age band), moves beyond the net flow (churn between placements does not change
stocks), and places: a provision plan's limits act after these moves.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.optimize import nnls

from simsend.dims import PLACEMENTS
from simsend.rates.parameters import ParameterSet
from simsend.rates.placement_mix import placement_effects
from simsend.rates.sources import WrappedSource

FIRST_YEAR = 2018
"""First census the model is estimated from: before it statements were still being converted
to EHC plans (post-16 placements and ages 20-25 entered SEN2 from 2015 to 2018), a change of
recording rather than of placement."""
MIN_POOL = 3
"""Fewest areas whose own drifts are estimated (fewer: none)."""
MIN_YEARS = 3
"""Fewest yearly changes a shared drift is estimated from (fewer: no drift, and the changes
seen set the spread of the years' common change)."""
_STREAM = 0x91AC3
"""Key of the placement walk's seed sequence, apart from the engine's and the posterior's."""
_COMMON = 0xE11A9D
"""Area key of the draws every area shares (no area's code hashes to it by construction: codes
are hashed with crc32 into another position of the key)."""
N_P = len(PLACEMENTS)


@dataclass(frozen=True)
class PlacementFit:
    """Every area's placement effects and their calibrated change (see the module).

    Attributes
    ----------
    areas : tuple of str
    level : ndarray (A, 7)
        Effects ``c`` recorded at the baseline census (an area without it: its last published
        census moved on by its expected drift).
    smooth : ndarray (A, 7)
        The filtered level at the baseline census (the recorded one less its noise).
    own_mean : ndarray (A, 7)
        Each area's own drift ``delta`` (filtered mean).
    cov : ndarray (A, 7, 2, 2)
        Covariance of (level, own drift) after filtering.
    mu, mu_sd : ndarray (7,)
        The shared drift and its standard error.
    common_sd : ndarray (7,)
        Sd of the year's change common to every area about ``mu`` (robust, from the MAD).
    tau, walk_sd, noise_sd : ndarray (7,)
        Spread of areas' own drifts, the level's yearly walk and the recording noise about it.
    years : tuple of int
        Censuses used.
    common_path : ndarray (Y, 7)
        The common changes summed from the first census used (0 there).

    """

    areas: tuple[str, ...]
    level: np.ndarray
    smooth: np.ndarray
    own_mean: np.ndarray
    cov: np.ndarray
    mu: np.ndarray
    mu_sd: np.ndarray
    common_sd: np.ndarray
    tau: np.ndarray
    walk_sd: np.ndarray
    noise_sd: np.ndarray
    years: tuple[int, ...]
    common_path: np.ndarray

    def select(self, areas) -> PlacementFit:
        """Return the fit of ``areas`` only (the shared parts unchanged).

        Raises
        ------
        KeyError
            For an area the fit does not hold.

        """
        idx = [self.areas.index(str(a)) for a in areas]
        return dataclasses.replace(self, areas=tuple(str(a) for a in areas),
                                   level=self.level[idx], smooth=self.smooth[idx],
                                   own_mean=self.own_mean[idx], cov=self.cov[idx])

    def expected(self, steps: int) -> np.ndarray:
        """Return the expected effects ``(A, 7)`` after ``steps`` >= 1 years."""
        return self.smooth + steps * (self.mu + self.own_mean)

    def to_dataset(self) -> xr.Dataset:
        """Return the fit as a Dataset (reports, the run's provenance)."""
        dims = ("area", "placement")
        return xr.Dataset(
            {"placement_level": (dims, self.level),
             "placement_level_filtered": (dims, self.smooth),
             "placement_own_drift": (dims, self.own_mean),
             "placement_own_drift_sd": (dims, np.sqrt(self.cov[..., 1, 1])),
             "placement_drift": (("placement",), self.mu),
             "placement_drift_se": (("placement",), self.mu_sd),
             "placement_common_sd": (("placement",), self.common_sd),
             "placement_own_drift_between_sd": (("placement",), self.tau),
             "placement_walk_sd": (("placement",), self.walk_sd),
             "placement_noise_sd": (("placement",), self.noise_sd)},
            coords={"area": list(self.areas), "placement": list(PLACEMENTS)},
            attrs={"years": f"{self.years[0]}-{self.years[-1]}" if self.years else ""})


def robust_var(x: np.ndarray, axis=None) -> np.ndarray:
    """Variance from the median absolute deviation (``(1.4826 MAD)^2``), NaNs ignored.

    Recording changes make a few councils' yearly changes huge; squares would let them set
    the variance of every council's.
    """
    m = np.nanmedian(x, axis=axis, keepdims=True)
    return (1.4826 * np.nanmedian(np.abs(x - m), axis=axis)) ** 2


def variance_components(y: np.ndarray, max_lag: int = 5) -> np.ndarray:
    """``(tau^2, sigma_w^2, sigma_u^2)`` per placement from ``y[t, area, k]`` (NaN = missing).

    Under ``y_t = L_t + u_t``, ``L_t = L_{t-1} + delta + w_t`` the change over ``h`` years has
    variance ``h^2 tau^2 + h sigma_w^2 + 2 sigma_u^2`` across areas; the robust variance of
    the changes at each lag is fitted by non-negative least squares, weighting each lag by its
    number of pairs.
    """
    n_t = y.shape[0]
    out = np.zeros((3, y.shape[-1]))
    lags = range(1, min(max_lag, n_t - 1) + 1)
    rows, vals, wts = [], [], []
    for h in lags:
        dh = (y[h:] - y[:-h]).reshape(-1, y.shape[-1])
        rows.append([h * h, h, 2.0])
        vals.append(robust_var(dh, axis=0))
        wts.append(np.sqrt(np.isfinite(dh).all(-1).sum()))
    if not rows:
        return out
    a = np.array(rows) * np.array(wts)[:, None]
    for k in range(y.shape[-1]):
        b = np.array([v[k] for v in vals]) * np.array(wts)
        if np.isfinite(b).all():
            if len(rows) < 3:  # too few lags for three components: walk and noise only
                out[1:, k] = nnls(a[:, 1:], b)[0]
            else:
                out[:, k] = nnls(a, b)[0]
    return out


def kalman_trend(y: np.ndarray, tau2, sw2, su2) -> tuple[np.ndarray, np.ndarray]:
    """Filter ``(level, drift)`` of a local linear trend with a fixed drift, every series at once.

    ``y[t, ...]`` observed (NaN = missing); the drift ``delta ~ N(0, tau2)``; the level walks
    with variance ``sw2`` and is observed with noise ``su2`` (broadcast over ``y[0]``).
    Returns the mean ``(..., 2)`` and covariance ``(..., 2, 2)`` of ``(L, delta)`` after the
    last year.
    """
    shape = y.shape[1:]
    m = np.zeros(shape + (2,))
    p = np.zeros(shape + (2, 2))
    started = np.zeros(shape, bool)
    tau2, sw2, su2 = (np.broadcast_to(np.asarray(x, float), shape) for x in (tau2, sw2, su2))
    for t in range(y.shape[0]):
        obs = np.isfinite(y[t])
        # predict (after the first year: level += drift, walk)
        if t > 0:
            m[..., 0] = m[..., 0] + m[..., 1]
            p00 = p[..., 0, 0] + 2 * p[..., 0, 1] + p[..., 1, 1] + sw2
            p01 = p[..., 0, 1] + p[..., 1, 1]
            p[..., 0, 0], p[..., 0, 1], p[..., 1, 0] = p00, p01, p01
        start = obs & ~started  # a series' first observation: diffuse level, drift prior
        m[start, 0] = y[t][start]
        m[start, 1] = 0.0
        p[start] = 0.0
        p[start, 0, 0] = su2[start]
        p[start, 1, 1] = tau2[start]
        started |= obs
        upd = obs & ~start
        yy = np.where(upd, y[t], 0.0)
        s = np.maximum(p[..., 0, 0] + su2, 1e-300)
        k0 = np.where(upd, p[..., 0, 0] / s, 0.0)
        k1 = np.where(upd, p[..., 1, 0] / s, 0.0)
        r = yy - m[..., 0]
        m[..., 0] += k0 * r
        m[..., 1] += k1 * r
        p00, p01, p11 = p[..., 0, 0], p[..., 0, 1], p[..., 1, 1]
        n00 = p00 - k0 * p00
        n01 = p01 - k0 * p01
        n11 = p11 - k1 * p01
        p[..., 0, 0], p[..., 0, 1], p[..., 1, 0], p[..., 1, 1] = n00, n01, n01, n11
    return m, p


def fit_placements(bands: np.ndarray, places: np.ndarray, years, areas, *,
                   own_drift: bool = False, shared: PlacementFit | None = None) -> PlacementFit:
    """Estimate :class:`PlacementFit` from EHC plans by age band and by placement.

    Parameters
    ----------
    bands : ndarray (Y, A, 5)
        EHC plans by age band per census (NaN = not published).
    places : ndarray (Y, A, 7)
        EHC plans by placement group per census (NaN = not published).
    years : sequence of int (Y,)
        Censuses, the last being the baseline.
    areas : sequence of str (A,)
    own_drift : bool
        Estimate each area's own drift (``tau``).  Off by default: from origins 2021-2024,
        councils' effects one to four years ahead were further from the record with their own
        drifts than with the shared drift alone (median absolute error per placement 0.10-0.44
        against 0.10-0.37; see the README), so they are not used in forecasts.
    shared : PlacementFit, optional
        Take the shared drift, its error, the common yearly changes and their path from this
        fit (every council's) instead of from ``areas``' own changes: for England, a region
        or a merged area, whose own changes are one series.

    Raises
    ------
    ValueError
        When an area has no census with both margins.

    """
    years = [int(y) for y in years]
    bands = np.asarray(bands, float)
    places = np.asarray(places, float)
    ok = np.isfinite(bands).all(-1) & np.isfinite(places).all(-1) & (bands.sum(-1) > 0)
    missing = [a for a, good in zip(areas, ok.any(0), strict=True) if not good]
    if missing:
        raise ValueError(f"no census from {years[0]} to {years[-1]} has EHC plans by both "
                         f"placement and age band for {missing[:5]}")
    c = placement_effects(np.where(ok[..., None], bands, 1.0),
                          np.where(ok[..., None], places, 1.0))
    c[~ok] = np.nan
    n_a = ok.shape[1]
    d = np.diff(c, axis=0)  # yearly changes between consecutive censuses (Y-1, A, 7)
    good = np.isfinite(d).all(-1)
    year_ok = good.sum(1) > 0
    # the year's change common to every area (median over areas), and the shared drift
    med = np.zeros((len(d), N_P))
    for t in np.flatnonzero(year_ok):
        med[t] = np.median(d[t][good[t]], axis=0)
    n_y = int(year_ok.sum())
    if n_y >= MIN_YEARS:
        mu = np.median(med[year_ok], axis=0)
        # robust (MAD) spread about the median, as the drift: a recording change (other in
        # 2019 and 2023) is not a yearly event; the median's standard error from it
        common_sd = np.sqrt(robust_var(med[year_ok], axis=0))
        mu_sd = np.sqrt(np.pi / 2) * common_sd / np.sqrt(n_y)
    else:  # a drift is not told from one recording change: the changes seen enter as spread
        mu = np.zeros(N_P)
        common_sd = np.sqrt((med[year_ok] ** 2).mean(0)) if n_y else np.zeros(N_P)
        mu_sd = np.zeros(N_P)
    path = np.vstack([np.zeros((1, N_P)), np.cumsum(med, axis=0)])
    if shared is not None:  # every council's shared parts, on the same census years
        if list(shared.years) != [y for y, o in zip(years, ok.any(1), strict=True) if o]:
            raise ValueError(f"shared fit covers censuses {shared.years}, these areas "
                             f"{years[0]}-{years[-1]}")
        mu, mu_sd, common_sd = shared.mu, shared.mu_sd, shared.common_sd
        path = shared.common_path
    # each area's effects less the common path: a local level with its own drift and noise
    y = c - path[:, None, :]
    tau2, sw2, su2 = variance_components(y)
    if n_a < MIN_POOL or not own_drift:  # own drifts not estimated: none
        tau2 = np.zeros(N_P)
    m, p = kalman_trend(y, tau2, sw2, su2)
    # the level: the baseline census, or an area's last published one moved on by its drift
    last = ok.shape[0] - 1 - np.argmax(ok[::-1], axis=0)
    level = c[last, np.arange(n_a)]
    gap = (ok.shape[0] - 1 - last)[:, None]
    smooth = m[..., 0] + path[-1] + gap * (mu + m[..., 1])
    level = level + gap * (mu + m[..., 1])
    p[..., 0, 0] += gap * (sw2 + p[..., 1, 1] * gap)
    mu, mu_sd, common_sd, path = (np.array(x, float) for x in (mu, mu_sd, common_sd, path))
    for arr in (mu, mu_sd, common_sd, tau2, sw2, su2):
        arr[0] = 0.0  # mainstream is the reference
    smooth[:, 0] = 0.0
    m[:, 0] = 0.0
    p[:, 0] = 0.0
    return PlacementFit(tuple(str(a) for a in areas), level, smooth, m[..., 1], p,
                        mu, mu_sd, common_sd, np.sqrt(tau2), np.sqrt(sw2), np.sqrt(su2),
                        tuple(y_ for y_, o in zip(years, ok.any(1), strict=True) if o),
                        path)


def fit_from_history(history: xr.Dataset, areas, first_year: int = FIRST_YEAR,
                     **kw) -> PlacementFit:
    """:func:`fit_placements` on a baseline's history (``ehcp`` by age band, ``ehcp_placement``).

    Keywords go to :func:`fit_placements`.
    """
    last = int(history["year"].values.max())
    # a baseline before first_year: its own census alone (the mix held, no drift or walk)
    years = [int(y) for y in history["year"].values if int(y) >= min(first_year, last)]
    areas = [str(a) for a in areas]
    sel = dict(year=years, area=areas)
    bands = history["ehcp"].sel(sel).transpose("year", "area", "age_group").values
    places = history["ehcp_placement"].sel(sel).transpose("year", "area", "placement")
    places = places.sel(placement=list(PLACEMENTS)).values
    return fit_placements(bands, places, years, areas, **kw)


def fit_for_run(history: xr.Dataset, areas, councils: xr.Dataset | None = None) -> PlacementFit:
    """Fit the placement model for a run's ``areas``.

    When every area is a council of ``councils`` (the history of every council,
    :func:`simsend.data.baseline.councils_history`) the model is fitted to all councils and
    the run's are selected, so a council gets the same fit alone as in a run of every council;
    otherwise (England, a region, a merged area) the run's own areas' ``history`` gives their
    levels and walks, and every council's fit the shared drift and common changes.
    """
    areas = [str(a) for a in areas]
    if councils is None:
        return fit_from_history(history, areas)
    every = fit_from_history(councils, [str(a) for a in councils["area"].values])
    if set(areas) <= set(every.areas):
        return every.select(areas)
    return fit_from_history(history, areas, shared=every)


class PlacementSource(WrappedSource):
    """Wraps a parameter source: every draw's set walks the calibrated placement effects on.

    Parameters
    ----------
    source : ParameterSource
    fit : PlacementFit
        For the run's areas, in the run's order.
    seed : int
    n_years : int
        Census years of the run including the baseline.

    """

    def __init__(self, source, fit: PlacementFit, seed: int, n_years: int):
        self.source = source
        self.fit = fit
        self.seed = int(seed)
        self.n_years = int(n_years)

    def path(self, draw: int) -> np.ndarray:
        """Placement effects ``c[year index, area, placement]`` of Monte Carlo ``draw``.

        Row 0 is the recorded baseline census; year ``h`` is the drawn level and own drift
        moved on ``h`` years by the shared drift, the years' common changes and the level's
        walk, plus that year's recording noise.  The shared draws come from a stream keyed by
        the seed and the draw, each area's from one keyed by the seed, the draw and the area's
        code, so chunks of areas or draws draw the same paths.
        """
        f = self.fit
        steps = self.n_years - 1
        h = np.arange(1, steps + 1)[:, None]
        rng = np.random.default_rng([self.seed, int(draw), _STREAM, _COMMON])
        shared = (h * (f.mu + f.mu_sd * rng.standard_normal(N_P))
                  + np.cumsum(f.common_sd * rng.standard_normal((steps, N_P)), axis=0))
        out = np.empty((self.n_years, len(f.areas), N_P))
        for j, code in enumerate(f.areas):
            rng = np.random.default_rng([self.seed, int(draw), _STREAM,
                                         zlib.crc32(code.encode()), 1])
            z = rng.standard_normal((2, N_P))
            chol = np.linalg.cholesky(f.cov[j] + 1e-12 * np.eye(2))  # (7, 2, 2)
            lv, own = (np.stack([f.smooth[j], f.own_mean[j]]) + np.einsum("kij,jk->ik", chol, z))
            walk = np.cumsum(f.walk_sd * rng.standard_normal((steps, N_P)), axis=0)
            noise = f.noise_sd * rng.standard_normal((steps, N_P))
            out[0, j] = f.level[j]
            out[1:, j] = lv + h * own + shared + walk + noise
        return out

    def describe(self) -> str:
        """One line for the run's provenance."""
        f = self.fit
        years = f"{f.years[0]}-{f.years[-1]}" if f.years else "none"
        return (f"specialist-tier placements calibrated per area from SEN2 censuses {years} "
                "(simsend.rates.placements)")

    def get(self, draw: int) -> ParameterSet:
        """Return draw ``draw``'s set with its placement path."""
        return self._recall(int(draw), lambda d: dataclasses.replace(
            self.source.get(d), placement_path=self.path(d)), lambda a, b: a == b)


__all__ = ["FIRST_YEAR", "PlacementFit", "PlacementSource", "fit_for_run", "fit_from_history",
           "fit_placements"]
