"""A calibrated posterior as a :class:`~simsend.rates.sources.ParameterSource` for the engine.

Each Monte Carlo draw ``d`` uses posterior draw ``(d // replicates_per_draw) % n_posterior``
(chains and draws flattened, chain-major), so parameter uncertainty and process uncertainty
both reach the bands; ``ParameterSet.label`` is that posterior index.

Mapping of the calibrated quantities onto the engine's tables (everything else comes from
the run's config):

* escalation: ``tiers[src, specialist, a, need, area] = multiplier[g(a), area] * ref_src[a]
  * need_multiplier[need]`` for ``src`` in (targeted, targeted_plus), where ``ref_src`` are
  the reference rates stored in the artefact (the calibration config's rates) and the need
  multipliers come from the run's config.  Rows whose moves would exceed 1 are scaled down.
  ``escalation_trend`` is the posterior trend of each age group and area
  (``escalation_trend_area``; older artefacts: of each age group), by single age (the
  engine applies it to every escalation at that age in that area).
* identification (universal to the targeted tiers), where the posterior has the SEN support
  block: ``identification[a, area] = multiplier[area] * identification_ref[a]`` with the
  area's trend (``identification_trend_area``) and its own random walk, at the ages the
  artefact's ``identification_scaled`` names (the school census's; younger ages keep
  ``identification_ref``, as in the fit; older artefacts: every age);
* year-to-year innovations: escalation follows the calibrated random walk
  (``escalation_innovation_sd``) and transient yearly shocks (``escalation_noise_sd``) on
  top of the trend; each Monte Carlo draw draws its own
  innovations from a stream keyed by ``(seed, draw)`` (:meth:`PosteriorParameters.shock`),
  so bands carry the change in rates that a trend does not explain and widen with the
  horizon.  Where the posterior has a walk common to every area (``escalation_common_sd``,
  ``identification_common_sd``: every council's rates moving together), each draw walks it
  on with innovations from a stream keyed by ``(seed, draw)`` alone, the same for every
  area.
* over-dispersion (where the posterior has it): the calibration's likelihood lets each
  year's new plans of an age band vary beyond Poisson (``new_plans_cv``) and each census's
  stock differ from its stock-and-flow equation (``ehcp_cv`` by age band for EHC plans,
  ``sen_support_cv`` for SEN support, each one step ahead from the recorded stock, so the
  differences are the process's and carry forward).  Each draw draws them too
  (:meth:`PosteriorParameters.residuals`): a mean-one lognormal factor on the year's
  escalations per age band and area (log sd ``sqrt(log(1 + cv^2))``), and a net flow of a
  share ``cv z`` of each tier's pupils per age band and area
  (:attr:`~simsend.rates.parameters.ParameterSet.stock_shock`, moved in or out like
  migration: transfers between councils and recording that the flows do not explain).
* exits: the calibrated exit probability ``c[a, area] = 1 - exp(-kappa[g(a), area] h[a])``
  (``h`` the stored reference hazard).  With ``deescalation_share`` (the needs-met share
  ``delta`` of plan endings, estimated from SEN2's ceased plans by reason, see
  :mod:`simsend.calibration.exits`): ``delta c`` moves down to the targeted tiers (the
  config's targeted : targeted-plus proportions) and the rest ends without support, by
  leaving (``leaving[specialist, a]``, common to all areas: the smaller of the config's
  value and every area's share) and a move to the universal tier.  Older artefacts: leaving
  as above of ``c`` and the rest down to lower tiers in the config's proportions.
"""

from __future__ import annotations

import dataclasses
import operator
import zlib
from pathlib import Path

import numpy as np
import xarray as xr

from simsend.config.model import ModelConfig
from simsend.config.toml import ConfigError
from simsend.dims import TIER, band_of_age
from simsend.rates.parameters import ParameterSet, damped_steps
from simsend.rates.sources import FixedParameters, LastMemo

_S = TIER["specialist"]
NATIONAL = "E92000001"
"""Area code of England: a posterior of England alone serves runs of any area."""
MAX_YEARS = 100
"""Years of random walk drawn per Monte Carlo draw (a run's years index into them)."""
_WALK_STREAM = 0x57A1C
"""Third key of the walk's seed sequence, apart from every engine stream's keys."""
_COMMON_KEY = 0xC0440
"""Fourth key of the common trend's stream (in place of an area's code: one for all areas)."""
N_RESIDUALS = 11
"""Normals per area and year after the walks': new plans' and the stock's by age band (5
each) and SEN support's (1) (:meth:`PosteriorParameters.residuals`)."""
DEFAULT_YEARS = 41
"""Rows of the residual tables when a source is not told the run's length."""


def _load_posterior(path: str | Path) -> tuple[xr.Dataset, xr.Dataset]:
    try:
        with xr.open_dataset(path, group="posterior", engine="h5netcdf") as ds:
            post = ds.load()
        with xr.open_dataset(path, group="constant_data", engine="h5netcdf") as ds:
            const = ds.load()
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: not a simsend posterior (a NetCDF file with the groups "
                          f"'posterior' and 'constant_data' that simsend calibrate writes): "
                          f"{exc}") from None
    return post, const


def sample_mean(da: xr.DataArray) -> xr.DataArray:
    """Mean over the stacked ``sample`` dim; a variable stored as its mean is returned as is."""
    return da.mean("sample") if "sample" in da.dims else da


def _per_sample(stacked: xr.Dataset, name: str, n_s: int, n: int) -> np.ndarray:
    """``stacked[name]`` as (sample, n), broadcast from one value; zeros where absent."""
    if name not in stacked:
        return np.zeros((n_s, n))
    v = np.asarray(stacked[name].transpose("sample", ...).values, float).reshape(n_s, -1)
    return np.ascontiguousarray(np.broadcast_to(v, (n_s, n)))


def _cap_rows(tiers: np.ndarray, src: int) -> None:
    """Scale escalations of row ``src`` down where the row would sum over 1 (in place)."""
    up = tiers[src, src + 1:]
    down = tiers[src, :src].sum(axis=0)
    total_up = up.sum(axis=0)
    cap = np.where(total_up > 1.0 - down, (1.0 - down) / np.maximum(total_up, 1e-300), 1.0)
    tiers[src, src + 1:] = up * cap
    tiers[src, src] = 1.0 - down - tiers[src, src + 1:].sum(axis=0)


class PosteriorParameters(LastMemo):
    """One parameter set per Monte Carlo draw from a posterior file.

    Each set is a :class:`~simsend.rates.parameters.ParameterSet`.

    Parameters
    ----------
    path : str or Path
        Artefact written by :func:`simsend.calibration.calibrate`.
    model_cfg : ModelConfig
        The run's ``[model]`` table: rates that were not calibrated.
    births : ndarray (n_areas,)
        Age-0 entrants per area in the baseline year.
    replicates_per_draw : int
        Monte Carlo replicates per posterior draw.
    areas : sequence of str, optional
        Area codes of the run, to pick and order the posterior's areas (default: the
        posterior's areas in order, which must then number ``len(births)``).  A posterior of
        England alone (``E92000001``) serves any areas: each takes England's multipliers
        (see ``area_source``).
    start_year : int, optional
        Baseline census year of the run.  The posterior's rates are those of the year after
        its origin; a run starting later or earlier moves them along the posterior trend.
    seed : int
        The run's seed: each Monte Carlo draw's random-walk innovations in escalation come
        from a stream keyed by ``(seed, draw)`` only, so they do not depend on threads,
        workers or chunking.
    n_years : int, optional
        Census years of the run including the baseline: rows of the residual tables
        (default :data:`DEFAULT_YEARS`; later years repeat the last row).

    Examples
    --------
    >>> src = PosteriorParameters("models/england_2022.nc", cfg.model, births)  # doctest: +SKIP
    >>> src.get(0).label  # doctest: +SKIP
    0

    """

    def __init__(self, path: str | Path, model_cfg: ModelConfig, births: np.ndarray,
                 replicates_per_draw: int = 1, *, areas=None, start_year: int | None = None,
                 seed: int = 0, n_years: int | None = None):
        if replicates_per_draw < 1:
            raise ValueError("replicates_per_draw must be >= 1")
        self.path = Path(path)
        self.replicates_per_draw = int(replicates_per_draw)
        post, const = _load_posterior(self.path)
        self.attrs = dict(post.attrs)
        post_areas = [str(a) for a in post["area"].values]
        if areas is None:
            if len(post_areas) != len(births):
                raise ValueError(f"posterior covers {len(post_areas)} areas, run has "
                                 f"{len(births)}; pass areas= to select")
            areas = post_areas
        missing = [a for a in areas if a not in post_areas]
        self.areas = [str(a) for a in areas]
        self.area_source = {str(a): str(a) for a in areas}
        if missing and post_areas == [NATIONAL]:
            # A national posterior serves any area: England's calibrated multipliers on the
            # config's rates (recorded in ``area_source`` and the run's attrs).
            self.area_source = {str(a): NATIONAL for a in areas}
            sel = dict(area=[NATIONAL] * len(areas))
        elif missing:
            covers = (post_areas if len(post_areas) <= 6 else
                      [*post_areas[:3], "...", *post_areas[-2:]])
            raise ConfigError(f"areas {missing[:10]}{' ...' if len(missing) > 10 else ''} are "
                              f"not in the posterior {self.path} (it covers "
                              f"{len(post_areas)} areas: {', '.join(covers)}); calibrate a "
                              f"config naming them (simsend calibrate) or use a national "
                              f"(E92000001) posterior")
        else:
            sel = dict(area=list(areas))
        stacked = post.stack(sample=("chain", "draw"))
        theta = stacked["escalation_multiplier"].sel(sel).transpose("sample", "age_group", "area")
        kappa = stacked["exit_multiplier"].sel(sel).transpose("sample", "age_group", "area")
        n_g = theta.sizes["age_group"]
        if "escalation_trend_ref" in stacked:  # the (damped) step at the reference year
            tr = stacked["escalation_trend_ref"].sel(sel).transpose("sample", "age_group",
                                                                     "area").values
        elif "escalation_trend_area" in stacked:
            tr = stacked["escalation_trend_area"].sel(sel).transpose("sample", "age_group",
                                                                      "area").values
        else:  # older artefacts: one trend per age group (or one for every age) for all areas
            tr = stacked["escalation_trend"]
            tr = (tr.transpose("sample", "age_group").values if "age_group" in tr.dims
                  else np.repeat(tr.values[:, None], n_g, axis=1))
            tr = np.repeat(np.asarray(tr, float)[:, :, None], len(areas), axis=2)
        self.trend = np.asarray(tr, float)  # (sample, age_group, area)
        # The trend's damping: each year's step is the last one's times phi (1 = linear).
        self.damping = (np.asarray(stacked["escalation_damping"].values, float).reshape(-1)
                        if "escalation_damping" in stacked else np.ones(self.trend.shape[0]))
        sd = stacked["escalation_innovation_sd"].values if "escalation_innovation_sd" in \
            stacked else np.zeros(self.trend.shape[0])
        self.innovation_sd = np.asarray(sd, float).reshape(-1)  # (sample,)
        sd = stacked["escalation_noise_sd"].values if "escalation_noise_sd" in stacked \
            else np.zeros(self.trend.shape[0])
        self.noise_sd = np.asarray(sd, float).reshape(-1)  # (sample,)
        # The common change in the trend: its innovation sd and last fitted step (0 if none).
        # The walks common to every area (escalation's, identification's): innovation sd,
        # (sample, 2); zeros where the posterior has none.
        n_s = self.noise_sd.size
        self.common_sd = np.hstack([_per_sample(stacked, f"{x}_common_sd", n_s, 1)
                                    for x in ("escalation", "identification")])
        self.theta = np.asarray(theta.values, float)
        n_s = self.trend.shape[0]
        # Escalation's within-band age shape (log effect by single age, common to the areas;
        # fitted where SEN2 publishes new plans by single age), None in older artefacts.
        self.age_effect = (np.asarray(stacked["escalation_age_effect"].transpose(
            "sample", "age").values, float) if "escalation_age_effect" in stacked else None)
        if "identification_multiplier" in stacked and "identification_ref" in const:
            self.id_mult = np.asarray(stacked["identification_multiplier"].sel(sel).transpose(
                "sample", "area").values, float)
            name = ("identification_trend_ref" if "identification_trend_ref" in stacked
                    else "identification_trend_area")  # the (damped) step at the reference year
            self.id_trend = np.asarray(stacked[name].sel(sel).transpose("sample", "area").values,
                                       float)
            self.id_sd = np.asarray(stacked["identification_innovation_sd"].values,
                                    float).reshape(-1)
            self.id_ref = np.asarray(const["identification_ref"].values, float)
            # ages the multiplier acts on (older artefacts: every age)
            self.id_scaled = (np.asarray(const["identification_scaled"].values, bool)
                              if "identification_scaled" in const
                              else np.ones(len(self.id_ref), bool))
        else:  # no SEN support block: identification stays as the config sets it
            self.id_mult = self.id_trend = self.id_ref = self.id_scaled = None
            self.id_sd = np.zeros(n_s)
        self.id_damping = (np.asarray(stacked["identification_damping"].values,
                                      float).reshape(-1)
                           if "identification_damping" in stacked else np.ones(n_s))
        # identification's drift common to every area: log change a year, 0 where none
        self.id_drift = _per_sample(stacked, "identification_drift", n_s, 1)[:, 0]
        ref = int(self.attrs.get("reference_year", (start_year or 0) + 1))
        # Years between the posterior's reference year and the run's first simulated year:
        # the walk takes that many innovations before the first year of the run.
        self.gap = 0 if start_year is None else int(start_year + 1 - ref)
        if start_year is not None:
            phi = self.damping[:, None, None]
            self.theta = self.theta * np.exp(self.trend * damped_steps(phi, self.gap))
            self.trend = self.trend * phi ** self.gap
            if self.id_mult is not None:
                rho = self.id_damping[:, None]
                self.id_mult = self.id_mult * np.exp(self.id_trend * damped_steps(rho, self.gap)
                                                     + self.id_drift[:, None] * self.gap)
                self.id_trend = self.id_trend * rho ** self.gap
        self.seed = int(seed)
        self.n_years = DEFAULT_YEARS if n_years is None else max(int(n_years), 2)
        # Over-dispersion: new plans' and EHC plans' coefficients of variation by age band,
        # SEN support's (0 where the posterior has none).
        self.new_cv = _per_sample(stacked, "new_plans_cv", n_s, n_g)
        self.stock_cv = _per_sample(stacked, "ehcp_cv", n_s, n_g)
        self.support_cv = (_per_sample(stacked, "sen_support_cv", n_s, 1)[:, 0]
                           if self.id_mult is not None else np.zeros(n_s))
        if "deescalation_share" in stacked:
            self.down_share = np.asarray(stacked["deescalation_share"].sel(sel).transpose(
                "sample", "area").values, float)
        else:  # older artefacts: exits beyond leaving go down (the config's proportions)
            self.down_share = None
        self.kappa = np.asarray(kappa.values, float)
        # The calibration's own within-band age profile of EHC plans at its last census
        # (posterior mean): the baseline's bands are re-spread by it when the run starts
        # from that census (simsend.data.band_ages).  Older artefacts: None.
        self.age_share = None
        if "ehcp_age_share" in stacked and self.gap == 0:
            self.age_share = np.asarray(sample_mean(stacked["ehcp_age_share"]).sel(
                sel).transpose("age", "area").values, float)
        self.ref_t = np.asarray(const["esc_ref_targeted"].values, float)
        self.ref_tp = np.asarray(const["esc_ref_targeted_plus"].values, float)
        self.hazard = -np.log1p(-np.clip(const["exit_ref_specialist"].values, 1e-6, 1 - 1e-6))
        self.model = model_cfg
        self.base = FixedParameters(model_cfg, births).params
        self.n_posterior = self.theta.shape[0]

    def __len__(self) -> int:
        """Return the number of posterior draws (chains x draws)."""
        return self.n_posterior

    def index(self, draw: int) -> int:
        """Posterior index feeding Monte Carlo draw ``draw``."""
        return (int(draw) // self.replicates_per_draw) % self.n_posterior

    def get(self, draw: int) -> ParameterSet:
        """Return the parameter set of Monte Carlo draw ``draw``.

        Consecutive draws fed by the same posterior draw (``replicates_per_draw > 1``) get the
        same object, so its year tables are built once.
        """
        k = self.index(draw)
        if max(self.innovation_sd[k], self.noise_sd[k], self.id_sd[k], self.support_cv[k],
               self.new_cv[k].max(), self.stock_cv[k].max(),
               self.common_sd[k].max(), abs(self.id_drift[k])) > 0:  # each draw apart
            return self._recall(int(draw), self._build_draw, operator.eq)
        return self._recall(k, self._build, operator.eq)

    def _normals(self, draw: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the draw's normals per area, walks' then residuals'.

        ``(3, MAX_YEARS, R)`` and ``(N_RESIDUALS, MAX_YEARS, R)`` from one generator per
        area, so :meth:`shocks` and :meth:`residuals` start it once (the last draw's kept).
        """
        memo = self.__dict__.get("_normals_memo")
        if memo is not None and memo[0] == int(draw):
            return memo[1]
        n_r = len(self.areas)
        walks = np.empty((3, MAX_YEARS, n_r))
        resid = np.empty((N_RESIDUALS, MAX_YEARS, n_r))
        for j, code in enumerate(self.areas):
            # Keyed by the area's code, not its position: a run split into chunks of areas
            # draws the same walks as the whole run.
            rng = np.random.default_rng([self.seed, int(draw), _WALK_STREAM,
                                         zlib.crc32(code.encode())])
            walks[:, :, j] = rng.standard_normal((3, MAX_YEARS))
            resid[:, :, j] = rng.standard_normal((N_RESIDUALS, MAX_YEARS))
        self._normals_memo = (int(draw), (walks, resid))
        return walks, resid

    def shocks(self, draw: int) -> tuple[np.ndarray, np.ndarray]:
        """Log multipliers of escalation and of identification by year index, per area.

        For Monte Carlo ``draw`` (each area's from a stream keyed by the seed, the draw and
        the area's code, so chunks of areas and draws give the same walks): row ``i`` (the
        run's year ``i``, ``i >= 1``) of the escalation shock is the random walk's sum of
        the innovations from the posterior's reference year to that year (``i + gap`` of
        them, each ``N(0, escalation_innovation_sd)``) plus that year's transient shock
        ``N(0, escalation_noise_sd)``; identification's is its own walk
        (``identification_innovation_sd``).  All from the draw's posterior draw, independent
        between areas, years and the two rates; row 0 (the baseline) is 0.  The walks common
        to every area (:meth:`common_path`) are added to every area's rates.
        """
        k = self.index(draw)
        n_r = self.theta.shape[2]
        z = self._normals(draw)[0]
        idx = np.clip(np.arange(MAX_YEARS) + self.gap, 0, MAX_YEARS)

        def walk(zz, sd):
            return (np.vstack([np.zeros((1, n_r)), np.cumsum(zz, axis=0)]) * sd)[idx]

        esc = walk(z[0], self.innovation_sd[k]) + z[1] * self.noise_sd[k]
        esc = esc + self.common_path(draw)[idx][:, None]
        ident = walk(z[2], self.id_sd[k]) + self.common_path(draw, 1)[idx][:, None]
        if self.id_drift[k] != 0.0:
            # the multiplier is the reference year's (row 1): the drift adds from row 2 on
            ident = ident + (self.id_drift[k] * np.maximum(np.arange(MAX_YEARS) - 1, 0))[:, None]
        esc[0] = 0.0
        ident[0] = 0.0
        return esc, ident

    def common_path(self, draw: int, rate: int = 0) -> np.ndarray:
        """Return the walk common to every area ``k`` years after the last fitted one.

        Shape ``(MAX_YEARS + 1,)``; ``rate`` 0 is escalation, 1 identification.  Entry ``k``
        is the sum of ``k`` innovations ``N(0, *_common_sd)`` from a stream keyed by the
        seed, the draw and the rate only, so every area (and every chunk of areas) gets the
        same path; entry 0 is 0.  All zeros where the posterior has no common walk.
        """
        k = self.index(draw)
        out = np.zeros(MAX_YEARS + 1)
        sd = self.common_sd[k, rate]
        if sd == 0:
            return out
        z = np.random.default_rng([self.seed, int(draw), _WALK_STREAM, _COMMON_KEY,
                                   rate]).standard_normal(MAX_YEARS)
        out[1:] = np.cumsum(sd * z)
        return out

    def shock(self, draw: int) -> np.ndarray:
        """Escalation's log multiplier by year index and area of ``draw`` (see :meth:`shocks`)."""
        return self.shocks(draw)[0]

    def residuals(self, draw: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Over-dispersion of ``draw``: escalation's log factor and the tiers' net flow.

        Returns ``(esc, net)``: ``esc`` (n_years, 26, n_areas) the log of a mean-one
        lognormal factor on escalations, one per year, age band (at the census closing the
        year) and area, with log sd ``sqrt(log(1 + new_plans_cv^2))``; ``net`` (n_years,
        4, 26, n_areas) the share of each tier's pupils that arrives (positive) or leaves
        (negative) in the year, by age at the census opening it: ``ehcp_cv z`` per age
        band and area for the specialist tier, ``sen_support_cv z`` per area for both
        targeted tiers.  All normals independent, from the draw's stream of each area
        (after its walks'); row 0 is 0.  None where the posterior has no such term.
        """
        k = self.index(draw)
        new_cv, stock_cv, ss_cv = self.new_cv[k], self.stock_cv[k], self.support_cv[k]
        if max(new_cv.max(), stock_cv.max(), ss_cv) <= 0:
            return None, None
        n_r, n_y = self.theta.shape[2], self.n_years
        z = self._normals(draw)[1][:, :n_y].copy()
        z[:, 0] = 0.0
        band = band_of_age()
        esc = None
        if new_cv.max() > 0:
            s2 = np.log1p(new_cv ** 2)[:, None, None]  # (G, 1, 1)
            log_f = np.sqrt(s2) * z[:5] - 0.5 * s2 * (z[:5] != 0)  # (G, Y, R)
            esc = np.ascontiguousarray(np.moveaxis(log_f[band], 0, 1))  # (Y, 26, R)
        net = None
        if max(stock_cv.max(), ss_cv) > 0:
            net = np.zeros((n_y, len(TIER), len(band), n_r))
            # by age at the closing census: the opening census's age a reaches a + 1
            closing = band[np.minimum(np.arange(len(band)) + 1, len(band) - 1)]
            e = stock_cv[:, None, None] * z[5:10]  # (G, Y, R)
            net[:, _S, :-1] = np.moveaxis(e[closing[:-1]], 0, 1)
            for t in ("targeted", "targeted_plus"):
                net[:, TIER[t], :-1] = (ss_cv * z[10])[:, None, :]
        return esc, net

    def _build_draw(self, draw: int) -> ParameterSet:
        """Build draw ``draw``'s set: its posterior draw's plus its own walks and residuals."""
        ps = self._build(self.index(draw))
        esc, ident = self.shocks(draw)
        esc_age, net = self.residuals(draw)
        if esc_age is not None:
            n = min(len(esc), len(esc_age))
            esc = esc[:n, None, :] + esc_age[:n]
        return dataclasses.replace(ps, escalation_shock=esc,
                                   identification_shock=None if self.id_mult is None
                                   else ident, stock_shock=net)

    def _exit_split(self, c: np.ndarray, delta: np.ndarray, leaving: np.ndarray
                    ) -> np.ndarray:
        """Split exit probabilities ``c`` (26, R) by the needs-met share ``delta`` (R,).

        A share ``delta`` of all exits moves down to the targeted tiers (in the config's
        targeted : targeted-plus proportions); the rest ends without support: leaving
        (``leaving[specialist]``, common to all areas, lowered in place to fit every area)
        and, for what leaving does not cover, a move to the universal tier.  Leaving is
        applied before tier moves, so the moves are probabilities among those who stay:
        ``P(down) = (1 - lv) m_down = delta c``.  Returns the specialist row's moves to the
        lower tiers, (3, 26, R).
        """
        t, tp, u = TIER["targeted"], TIER["targeted_plus"], TIER["universal"]
        rest = (1.0 - delta)[None, :] * c  # (26, R) exits without support
        lv = np.minimum(leaving[_S], rest.min(axis=1))
        leaving[_S] = lv
        stay = 1.0 - lv[:, None]
        down = delta[None, :] * c / stay
        out = np.zeros((3, *c.shape))
        cfg = self.model.tiers[_S]  # config proportions of the targeted tiers
        tot = cfg[t] + cfg[tp]
        w_tp = np.where(tot > 0, cfg[tp] / np.where(tot > 0, tot, 1.0), 1.0)  # (26,)
        out[tp] = down * w_tp[:, None]
        out[t] = down * (1.0 - w_tp)[:, None]
        out[u] = np.maximum(rest - lv[:, None], 0.0) / stay
        return out

    def _build(self, k: int) -> ParameterSet:
        """Build the parameter set of posterior draw ``k``."""
        band = band_of_age()
        base = self.base
        tiers = base.tiers.copy()
        mult = self.model.need_multiplier[None, :, None]
        theta = self.theta[k][band]  # (26, R)
        if self.age_effect is not None:
            theta = theta * np.exp(self.age_effect[k])[:, None]
        for src, ref in ((TIER["targeted"], self.ref_t), (TIER["targeted_plus"], self.ref_tp)):
            tiers[src, _S] = (ref[:, None] * theta)[:, None, :] * mult
            _cap_rows(tiers, src)
        c = 1.0 - np.exp(-self.kappa[k][band] * self.hazard[:, None])  # (26, R)
        leaving = base.leaving.copy()
        if self.down_share is None:
            lv = np.minimum(leaving[_S], c.min(axis=1))
            leaving[_S] = lv
            deesc = 1.0 - (1.0 - c) / (1.0 - lv[:, None])  # (26, R)
            prop = self.model.tiers[_S, :_S]  # (3, 26) config de-escalation by destination
            tot = prop.sum(axis=0)
            prop = np.where(tot > 0, prop / np.where(tot > 0, tot, 1.0), 0.0)
            prop[TIER["targeted_plus"]] = np.where(tot > 0, prop[TIER["targeted_plus"]], 1.0)
            tiers[_S, :_S] = (prop[:, :, None] * deesc[None])[:, :, None, :]
        else:
            tiers[_S, :_S] = self._exit_split(c, self.down_share[k], leaving)[:, :, None, :]
        tiers[_S, _S] = 1.0 - tiers[_S, :_S].sum(axis=0)
        ident = {}
        if self.id_mult is not None:
            mult = np.where(self.id_scaled[:, None], self.id_mult[k][None], 1.0)  # (26, R)
            ident = dict(identification=np.clip(self.id_ref[:, None] * mult, 0.0, 1.0),
                         identification_trended=(None if self.id_scaled.all()
                                                 else self.id_scaled.copy()),
                         identification_trend=self.id_trend[k].copy(),
                         identification_damping=float(self.id_damping[k]))
        return dataclasses.replace(base, tiers=tiers, leaving=leaving,
                                   escalation_trend=self.trend[k][band],
                                   escalation_damping=float(self.damping[k]), label=k, **ident)
