"""Parameter sets: one set of rate tables per Monte Carlo draw.

The engine asks a :class:`ParameterSource` for the set that feeds draw ``d``
(:meth:`ParameterSource.get`) and then, year by year, for the kernel-ready cumulative tables
(:meth:`ParameterSet.year_tables`).  Fixed rates from a config give the same set for every
draw; a calibrated posterior (see :mod:`simsend.calibration`) gives one set per posterior draw
through the same interface.

Rates are indexed by the age a child reaches at the census that closes the year (the age
after ageing), so ``identification[a]`` is the chance that a universal child aged ``a`` at this
census was identified during the year.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from simsend.config import ModelConfig
from simsend.dims import AGES, NEEDS, PLACEMENTS, TIERS

N_T, N_A, N_N, N_P = len(TIERS), len(AGES), len(NEEDS), len(PLACEMENTS)


class YearTables(NamedTuple):
    """Kernel-ready tables for one simulated year (all C-contiguous float64).

    Attributes
    ----------
    p_identify : (26, n_areas)
    p_leave : (4, 26)
    tier_cdf : (26, 13, n_areas, 4, 4) cumulative over the destination tier
    place_cdf : (4, 26, 7, 7) cumulative over the destination placement
    need_cdf : (26, 13)
    place_new_cdf : (26, 7)
    births : (n_areas,) int64 age-0 entrants

    """

    p_identify: np.ndarray
    p_leave: np.ndarray
    tier_cdf: np.ndarray
    place_cdf: np.ndarray
    need_cdf: np.ndarray
    place_new_cdf: np.ndarray
    births: np.ndarray


def _cdf(p: np.ndarray) -> np.ndarray:
    """Cumulative sum along the last axis, with the last entry forced to exactly 1."""
    c = np.cumsum(p, axis=-1)
    c[..., -1] = 1.0
    return np.ascontiguousarray(c)


@dataclass(frozen=True)
class ParameterSet:
    """Rate tables for one draw.

    Attributes
    ----------
    identification : ndarray (26, n_areas)
    leaving : ndarray (4, 26)
    tiers : ndarray (4, 4, 26, 13, n_areas)
        ``tiers[src, dst, age, need, area]``, rows (over ``dst``) sum to 1.
    need_mix : ndarray (26, 13)
    placement_new : ndarray (26, 7)
    placement : ndarray (4, 26, 7, 7)
        ``placement[tier, age, src, dst]``, rows sum to 1.
    births : ndarray (n_areas,)
        Age-0 entrants in the first simulated year.
    births_growth : float
        Annual growth factor of entrants.
    identification_trend, escalation_trend : float
        Log-linear annual trends (0 = constant rates); escalation is any move to a higher tier.
    label : int
        Which parameter draw (e.g. posterior draw index) this set is; -1 for fixed rates.

    """

    identification: np.ndarray
    leaving: np.ndarray
    tiers: np.ndarray
    need_mix: np.ndarray
    placement_new: np.ndarray
    placement: np.ndarray
    births: np.ndarray
    births_growth: float = 1.0
    identification_trend: float = 0.0
    escalation_trend: float = 0.0
    label: int = -1

    @property
    def n_areas(self) -> int:
        """Number of areas the tables cover."""
        return self.identification.shape[1]

    def year_tables(self, year_index: int) -> YearTables:
        """Tables for the year that ends at census ``start_year + year_index`` (index >= 1).

        Trends multiply identification by ``exp(identification_trend * (year_index - 1))``
        and every escalation probability by ``exp(escalation_trend * (year_index - 1))``,
        capped so that rows stay probability distributions.
        """
        t = year_index - 1
        p_id = np.clip(self.identification * np.exp(self.identification_trend * t), 0.0, 1.0)
        tiers = self.tiers
        if self.escalation_trend != 0.0 and t > 0:
            tiers = _scale_escalation(tiers, np.exp(self.escalation_trend * t))
        # (src, dst, age, need, area) -> (age, need, area, src, dst)
        tier_cdf = _cdf(np.transpose(tiers, (2, 3, 4, 0, 1)))
        births = np.rint(self.births * self.births_growth ** t).astype(np.int64)
        return YearTables(
            p_identify=np.ascontiguousarray(p_id),
            p_leave=np.ascontiguousarray(self.leaving),
            tier_cdf=tier_cdf,
            place_cdf=_cdf(self.placement),
            need_cdf=_cdf(self.need_mix),
            place_new_cdf=_cdf(self.placement_new),
            births=births,
        )


def _scale_escalation(tiers: np.ndarray, factor: float) -> np.ndarray:
    """Multiply moves to higher tiers by ``factor``; the stay probability absorbs the change."""
    out = tiers.copy()
    for s in range(1, N_T):
        up = out[s, s + 1:] * factor
        rest = out[s, :s].sum(axis=0)
        total_up = up.sum(axis=0)
        cap = np.where(total_up > 1.0 - rest, (1.0 - rest) / np.maximum(total_up, 1e-300), 1.0)
        out[s, s + 1:] = up * cap
        out[s, s] = 1.0 - rest - out[s, s + 1:].sum(axis=0)
    return out


def expand_tiers(model: ModelConfig, n_areas: int) -> np.ndarray:
    """Broadcast the config's tier profiles over needs and areas, applying need multipliers.

    Returns ``tiers[src, dst, age, need, area]`` with rows summing to 1.
    """
    base = model.tiers  # (src, dst, age)
    out = np.broadcast_to(base[:, :, :, None, None], (N_T, N_T, N_A, N_N, n_areas)).copy()
    mult = model.need_multiplier[None, None, :, None]
    for s in range(1, N_T):
        out[s, s + 1:] = out[s, s + 1:] * mult
        out[s, s] = 1.0 - out[s, :s].sum(axis=0) - out[s, s + 1:].sum(axis=0)
    out[0] = 0.0
    out[0, 0] = 1.0
    return out


def placement_matrix(model: ModelConfig) -> np.ndarray:
    """Build ``placement[tier, age, src, dst]`` (rows sum to 1) from the config's rules."""
    m = np.zeros((N_T, N_A, N_P, N_P))
    for r in model.placement_rules:
        t, s, d = TIERS.index(r.tier), PLACEMENTS.index(r.src), PLACEMENTS.index(r.dst)
        m[t, r.ages[0]:r.ages[1] + 1, s, d] += r.p
    idx = np.arange(N_P)
    m[:, :, idx, idx] = 1.0 - m.sum(axis=3)
    return m


class ParameterSource(Protocol):
    """Anything that hands out one :class:`ParameterSet` per Monte Carlo draw."""

    def get(self, draw: int) -> ParameterSet:
        """Return the parameter set feeding Monte Carlo draw ``draw``."""


class FixedParameters:
    """The same parameter set for every draw (rates fixed in the config).

    Parameters
    ----------
    model : ModelConfig
        Parsed ``[model]`` table.
    births : ndarray (n_areas,)
        Age-0 entrants per area in the baseline year.

    """

    def __init__(self, model: ModelConfig, births: np.ndarray):
        n_areas = len(births)
        self.params = ParameterSet(
            identification=np.repeat(model.identification[:, None], n_areas, axis=1),
            leaving=model.leaving.copy(),
            tiers=expand_tiers(model, n_areas),
            need_mix=model.need_mix.copy(),
            placement_new=model.placement_new.copy(),
            placement=placement_matrix(model),
            births=np.asarray(births, dtype=np.int64),
            births_growth=model.births_growth,
        )

    def get(self, draw: int) -> ParameterSet:
        """Return the fixed set, whatever the draw."""
        return self.params
