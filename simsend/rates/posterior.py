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
  ``escalation_trend`` is the posterior trend of each age group, by single age (the engine
  applies it to every escalation at that age).
* exits: the calibrated exit probability ``c[a, area] = 1 - exp(-kappa[g(a), area] h[a])``
  (``h`` the stored reference hazard) is split into leaving (``leaving[specialist, a]``,
  common to all areas: the smaller of the config's value and ``min_area c``) and
  de-escalation (the rest, per area, spread over lower tiers in the config's proportions).
"""

from __future__ import annotations

import dataclasses
import operator
from pathlib import Path

import numpy as np
import xarray as xr

from simsend.config.model import ModelConfig
from simsend.config.toml import ConfigError
from simsend.dims import TIER, band_of_age
from simsend.rates.parameters import ParameterSet
from simsend.rates.sources import FixedParameters, LastMemo

_S = TIER["specialist"]
NATIONAL = "E92000001"
"""Area code of England: a posterior of England alone serves runs of any area."""


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

    Examples
    --------
    >>> src = PosteriorParameters("models/england_2022.nc", cfg.model, births)  # doctest: +SKIP
    >>> src.get(0).label  # doctest: +SKIP
    0

    """

    def __init__(self, path: str | Path, model_cfg: ModelConfig, births: np.ndarray,
                 replicates_per_draw: int = 1, *, areas=None, start_year: int | None = None):
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
        self.area_source = {str(a): str(a) for a in areas}
        if missing and post_areas == [NATIONAL]:
            # A national posterior serves any area: England's calibrated multipliers on the
            # config's rates (recorded in ``area_source`` and the run's attrs).
            self.area_source = {str(a): NATIONAL for a in areas}
            sel = dict(area=[NATIONAL] * len(areas))
        elif missing:
            raise ConfigError(f"areas {missing} are not in the posterior {self.path} "
                             f"(it covers {post_areas}); calibrate a config naming them "
                             f"(simsend calibrate) or use a national (E92000001) posterior")
        else:
            sel = dict(area=list(areas))
        stacked = post.stack(sample=("chain", "draw"))
        theta = stacked["escalation_multiplier"].sel(sel).transpose("sample", "age_group", "area")
        kappa = stacked["exit_multiplier"].sel(sel).transpose("sample", "age_group", "area")
        tr = stacked["escalation_trend"]
        # per age group (dims age_group, sample) or one trend for every age (older artefacts)
        tr = (tr.transpose("sample", "age_group").values if "age_group" in tr.dims
              else np.repeat(tr.values[:, None], theta.sizes["age_group"], axis=1))
        self.trend = np.asarray(tr, float)  # (sample, age_group)
        self.theta = np.asarray(theta.values, float)
        if start_year is not None:
            ref = int(self.attrs.get("reference_year", start_year + 1))
            self.theta = self.theta * np.exp(self.trend * (start_year + 1 - ref))[:, :, None]
        self.kappa = np.asarray(kappa.values, float)
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
        return self._recall(self.index(draw), self._build, operator.eq)

    def _build(self, k: int) -> ParameterSet:
        """Build the parameter set of posterior draw ``k``."""
        band = band_of_age()
        base = self.base
        tiers = base.tiers.copy()
        mult = self.model.need_multiplier[None, :, None]
        theta = self.theta[k][band]  # (26, R)
        for src, ref in ((TIER["targeted"], self.ref_t), (TIER["targeted_plus"], self.ref_tp)):
            tiers[src, _S] = (ref[:, None] * theta)[:, None, :] * mult
            _cap_rows(tiers, src)
        c = 1.0 - np.exp(-self.kappa[k][band] * self.hazard[:, None])  # (26, R)
        leaving = base.leaving.copy()
        lv = np.minimum(leaving[_S], c.min(axis=1))
        leaving[_S] = lv
        deesc = 1.0 - (1.0 - c) / (1.0 - lv[:, None])  # (26, R)
        prop = self.model.tiers[_S, :_S]  # (3, 26) config de-escalation by destination
        tot = prop.sum(axis=0)
        prop = np.where(tot > 0, prop / np.where(tot > 0, tot, 1.0), 0.0)
        prop[TIER["targeted_plus"]] = np.where(tot > 0, prop[TIER["targeted_plus"]], 1.0)
        tiers[_S, :_S] = (prop[:, :, None] * deesc[None])[:, :, None, :]
        tiers[_S, _S] = 1.0 - tiers[_S, :_S].sum(axis=0)
        return dataclasses.replace(base, tiers=tiers, leaving=leaving,
                                   escalation_trend=self.trend[k][band], label=k)
