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
from typing import NamedTuple

import numpy as np

from simsend.config.model import ModelConfig
from simsend.config.reform import ReformConfig
from simsend.dims import AGES, NEEDS, PLACEMENTS, TIERS
from simsend.kernels.tables import cdf_rows
from simsend.rates.modifiers import Compiled, apply_modifiers, hold_places
from simsend.rates.placement_mix import specialist_rows
from simsend.rates.reform import apply_reform, is_reformed
from simsend.rates.split import balance_split

N_T, N_A, N_N, N_P = len(TIERS), len(AGES), len(NEEDS), len(PLACEMENTS)


class YearTables(NamedTuple):
    """Kernel-ready tables for one simulated year (all C-contiguous float64).

    Attributes
    ----------
    p_identify : (26, n_areas)
    p_leave : (4, 26)
    tier_cdf : (26, 13, n_areas, 4, 4) cumulative over the destination tier
    place_cdf : (4, 26, 7, 7) cumulative over the destination placement, ``[tier, age, src]``
    spec_cdf : (A_p, 26, 7, 7)
        With calibrated placements (``A_p`` = n_areas): the specialist tier's rows per area,
        ``[area, age, src]``, for children who stay in it; ``A_p`` = 0: ``place_cdf`` serves.
    entry_cdf : (A_p, 26, 7)
        With calibrated placements: the placement of a child entering the specialist tier,
        ``[area, age]``.
    need_cdf : (26, 13)
    place_new_cdf : (26, 7)
    births : (n_areas,) int64 age-0 entrants
    reformed : int
        1 in a year after the reform's legislation year (targeted tiers then hold ISPs).
    places : (n_areas, 7) float or None
        Places per area and placement this year (``inf`` = unlimited); None = no provision
        plan (nothing is allocated).
    provision : ProvisionRules or None
        The allocation rule when ``places`` is given.
    births_factor : (n_areas,) float or None
        What a scenario's modifiers did to births (modified / unmodified entrants; None =
        untouched): the engine scales the demography's births by it when it has one.
    net_flow : (4, 26, n_areas) float or None
        This year's row of :attr:`ParameterSet.stock_shock` (None = none).
    identify_tp : float
        Probability that a newly identified child enters the targeted-plus tier rather than
        the targeted tier (:attr:`ParameterSet.targeted_plus_share`; 0 = all targeted).

    """

    p_identify: np.ndarray
    p_leave: np.ndarray
    tier_cdf: np.ndarray
    place_cdf: np.ndarray
    need_cdf: np.ndarray
    place_new_cdf: np.ndarray
    births: np.ndarray
    reformed: int = 0
    spec_cdf: np.ndarray = np.zeros((0, 26, 7, 7))
    entry_cdf: np.ndarray = np.zeros((0, 26, 7))
    places: np.ndarray | None = None
    provision: ProvisionRules | None = None
    births_factor: np.ndarray | None = None
    net_flow: np.ndarray | None = None
    identify_tp: float = 0.0


def damped_steps(phi, t):
    """Sum of a damped trend's first ``t`` steps relative to the first, ``sum_{i<t} phi^i``.

    ``(1 - phi^t) / (1 - phi)``, which is ``t`` at ``phi = 1`` and extends to ``t < 0``
    (minus the steps back to year ``t``).

    Examples
    --------
    >>> float(damped_steps(0.5, 3)), float(damped_steps(1.0, 3)), float(damped_steps(0.5, -1))
    (1.75, 3.0, -2.0)

    """
    phi = np.asarray(phi, float)
    lin = np.isclose(phi, 1.0, rtol=0.0, atol=1e-12)
    safe = np.where(lin, 0.5, phi)
    return np.where(lin, np.asarray(t, float), (1.0 - safe ** t) / (1.0 - safe))


def _cdf(p: np.ndarray) -> np.ndarray:
    """Cumulative sum along the last axis, with the last entry forced to exactly 1."""
    c = np.cumsum(p, axis=-1)
    c[..., -1] = 1.0
    return np.ascontiguousarray(c)


@dataclass(frozen=True)
class ProvisionRules:
    """Kernel-ready allocation rules of a provision plan.

    See :func:`simsend.kernels.allocate.allocate`; built by :func:`simsend.rates.provision.rules`.
    """

    chain: np.ndarray  # int64 (P, K)
    rank: np.ndarray  # int64 (4, 13)
    wait_place: int


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
    placement_path : ndarray (Y, n_areas, 7) or None
        Calibrated placement effects of the specialist tier per census year index (0 = the
        baseline) and area (:mod:`simsend.rates.placements`): with them the specialist tier's
        placement moves and the placement of children entering it come from
        :func:`simsend.rates.placement_mix.specialist_rows` per area; None = the
        ``placement`` rules.
    births : ndarray (n_areas,)
        Age-0 entrants in the first simulated year.
    births_growth : float
        Annual growth factor of entrants.
    identification_trend : float or ndarray (n_areas,)
        Log-linear annual trend of identification (0 = constant rates), one for every area
        or one per area.
    identification_damping : float
        Damping of the identification trend, as ``escalation_damping``.
    identification_shock : ndarray (n, n_areas) or None
        Log multiplier of identification in the year of index ``i`` (row ``i``), the
        calibrated random walk of this draw; None = none.
    identification_trended : ndarray (26,) of bool or None
        Ages whose identification the trend and shocks act on (a posterior's
        ``identification_scaled``: the ages the school census records); None = every age.
    escalation_trend : float or ndarray (26,) or (26, n_areas)
        Log-linear annual trend of moves into the specialist tier (new EHC plans), one for
        every age, one per age, or one per age and area.
    escalation_damping : float
        Damping ``phi`` of the escalation trend: the step of year ``t`` is
        ``escalation_trend * phi^(t - 1)``, so the log multiplier after ``t`` steps is
        ``escalation_trend * sum_{i<t} phi^i`` (:func:`damped_steps`); 1 = linear.
    escalation_shock : ndarray (n, n_areas) or (n, 26, n_areas) or None
        Log multiplier of moves into the specialist tier in the year of index ``i``
        (row ``i``; rows past the end hold the last row): the calibrated random walk's
        innovations of this draw, on top of the trend, per area or per age and area (with
        the calibrated over-dispersion of new plans by age band).  None = no innovations.
    stock_shock : ndarray (n, 4, 26, n_areas) or None
        Net flow of each tier's pupils in the year of index ``i`` that the rates do not
        explain, as a share of the pupils of (tier, age at the census opening the year,
        area): the calibrated stock residual of this draw (moves between councils,
        recording).  Positive: that share arrives (copies of resident pupils, like
        migration); negative: that share leaves.  Row 0 and the universal row are unused;
        None = none.
    targeted_plus_share : float or None
        With ``[model] targeted_split = "balanced"``: the targeted-plus share of SEN support
        the year's moves hold (:func:`simsend.rates.split.balance_split`, after the trend and
        shocks, before the reform and a scenario's modifiers), also the chance that a newly
        identified child enters targeted-plus.  None: the config's moves as they are, and
        every identified child enters the targeted tier.
    label : int
        Which parameter draw (e.g. posterior draw index) this set is; -1 for fixed rates.
    start_year : int
        Census year of year index 0 (needed by ``reform`` and ``modifiers``).
    reform : ReformConfig or None
        The reform timeline (:mod:`simsend.rates.reform`); None = current law throughout.
    modifiers : tuple of simsend.rates.modifiers.Compiled
        A scenario's modifiers, applied to each year's tables after trends and reform.
    places : ndarray (Y, n_areas, 7) or None
        Places per census year, area and placement from a provision plan (``inf`` =
        unlimited); see :mod:`simsend.rates.provision`.
    provision : ProvisionRules or None
        The allocation rule that goes with ``places``.

    """

    identification: np.ndarray
    leaving: np.ndarray
    tiers: np.ndarray
    need_mix: np.ndarray
    placement_new: np.ndarray
    placement: np.ndarray
    births: np.ndarray
    births_growth: float = 1.0
    identification_trend: float | np.ndarray = 0.0
    identification_damping: float = 1.0
    escalation_trend: float | np.ndarray = 0.0
    escalation_damping: float = 1.0
    escalation_shock: np.ndarray | None = None
    identification_shock: np.ndarray | None = None
    identification_trended: np.ndarray | None = None
    stock_shock: np.ndarray | None = None
    targeted_plus_share: float | None = None
    label: int = -1
    start_year: int = 0
    reform: ReformConfig | None = None
    modifiers: tuple[Compiled, ...] = ()
    places: np.ndarray | None = None
    provision: ProvisionRules | None = None
    placement_path: np.ndarray | None = None

    @property
    def n_areas(self) -> int:
        """Number of areas the tables cover."""
        return self.identification.shape[1]

    def year_tables(self, year_index: int) -> YearTables:
        """Tables for the year that ends at census ``start_year + year_index`` (index >= 1).

        Built once per set and year, then handed out again (the engine asks for them every
        draw; a fixed-rate run uses one set for all draws).  Treat them as read-only.
        """
        cache = self.__dict__.get("_tables")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_tables", cache)  # a memo, not a field: frozen holds
        tab = cache.get(year_index)
        if tab is None:
            tab = cache[year_index] = self._build_year_tables(year_index)
        return tab

    def __getstate__(self):
        """Pickle the fields only (a worker rebuilds the year tables it needs)."""
        state = self.__dict__.copy()
        state.pop("_tables", None)
        state.pop("_spec_rows", None)
        return state

    def _build_year_tables(self, year_index: int) -> YearTables:
        """Build :meth:`year_tables`' tables.

        Trends multiply identification by ``exp(identification_trend * D_id)`` (at the ages
        ``identification_trended`` names) and every move
        into the specialist tier by ``exp(escalation_trend * D)``, with
        ``D = sum_{i < year_index - 1} escalation_damping^i`` (``year_index - 1`` undamped;
        ``D_id`` the same with ``identification_damping``),
        capped so that rows stay probability distributions.  Then the reform timeline
        (:func:`simsend.rates.reform.apply_reform`) and a scenario's modifiers
        (:func:`simsend.rates.modifiers.apply_modifiers`) act on the year's tables; a table nothing
        changes is passed on untouched, so a no-op scenario gives bit-identical tables.
        """
        t = year_index - 1
        year = self.start_year + year_index
        log_id = (np.asarray(self.identification_trend, float)
                  * damped_steps(self.identification_damping, t))
        if self.identification_shock is not None:
            log_id = log_id + self.identification_shock[
                min(year_index, len(self.identification_shock) - 1)]
        if self.identification_trended is not None:  # (26, n_areas): younger ages kept
            log_id = np.where(np.asarray(self.identification_trended, bool)[:, None],
                              np.broadcast_to(log_id, (self.n_areas,))[None, :], 0.0)
        p_id = np.clip(self.identification * np.exp(log_id), 0.0, 1.0)
        tiers = self.tiers
        trend = np.asarray(self.escalation_trend, float)
        factor = (np.exp(trend * damped_steps(self.escalation_damping, t))
                  if np.any(trend != 0.0) and t > 0 else None)
        if self.escalation_shock is not None:
            shock = self.escalation_shock[min(year_index, len(self.escalation_shock) - 1)]
            if np.any(shock != 0.0):
                # (age, area): the trend per age (and area) times this year's walk per area
                # (and its over-dispersion per age)
                f = np.ones((N_A, 1)) if factor is None else \
                    np.broadcast_to(factor.reshape(-1, 1) if factor.ndim < 2 else factor,
                                    (N_A, factor.shape[1] if factor.ndim == 2 else 1))
                factor = f * (np.exp(shock)[None, :] if shock.ndim == 1 else np.exp(shock))
        if factor is not None:
            tiers = _scale_escalation(tiers, factor)
        if self.targeted_plus_share is not None:  # before the reform and scenarios act
            tiers = balance_split(tiers, self.targeted_plus_share)
        reformed = 0
        if self.reform is not None:
            tiers = apply_reform(self.reform, year, tiers)
            reformed = int(is_reformed(self.reform, year))
        births = self.births * self.births_growth ** t
        leaving, placement = self.leaving, self.placement
        places = None if self.places is None else self.places[year_index]
        births_factor = None
        if self.modifiers:
            unmodified = np.asarray(births, dtype=float)
            if places is not None:
                places = hold_places(self.modifiers, year, self.places, self.start_year)
            tabs = apply_modifiers(self.modifiers, year, {
                "identification": p_id, "leaving": leaving, "tiers": tiers,
                "placement": placement, "births": births,
                "places": places})
            p_id, leaving, tiers = tabs["identification"], tabs["leaving"], tabs["tiers"]
            placement, births = tabs["placement"], tabs["births"]
            places = tabs["places"]
            if births is not unmodified:
                births_factor = np.where(unmodified > 0, np.asarray(births, float)
                                         / np.where(unmodified > 0, unmodified, 1.0), 1.0)
        spec_cdf, entry_cdf = self._specialist_cdfs(placement, year_index, year)
        # (src, dst, age, need, area) -> (age, need, area, src, dst)
        n_t = tiers.shape[0]
        tier_cdf = np.empty(tiers.shape[2:] + (n_t, n_t))
        cdf_rows(np.ascontiguousarray(tiers, dtype=np.float64).reshape(n_t, n_t, -1),
                 tier_cdf.reshape(-1, n_t, n_t))
        return YearTables(
            p_identify=np.ascontiguousarray(p_id),
            p_leave=np.ascontiguousarray(leaving),
            tier_cdf=tier_cdf,
            place_cdf=_cdf(placement),
            need_cdf=_cdf(self.need_mix),
            place_new_cdf=_cdf(self.placement_new),
            births=np.rint(births).astype(np.int64),
            reformed=reformed,
            places=places,
            provision=self.provision,
            births_factor=births_factor,
            spec_cdf=spec_cdf,
            entry_cdf=entry_cdf,
            net_flow=None if self.stock_shock is None else np.ascontiguousarray(
                self.stock_shock[min(year_index, len(self.stock_shock) - 1)], dtype=float),
            identify_tp=float(self.targeted_plus_share or 0.0),
        )


    def _specialist_cdfs(self, placement: np.ndarray, year_index: int,
                         year: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the year's calibrated specialist-tier rows per area, cumulative.

        ``(spec_cdf, entry_cdf)`` of :class:`YearTables`, with no areas without a placement path.

        A scenario's placement modifiers act on them area by area as on the rules' rows.
        """
        if self.placement_path is None:
            return np.zeros((0,) + placement.shape[1:]), np.zeros((0,) + placement.shape[1:3])
        path = self.placement_path
        now = min(year_index, len(path) - 1)
        mods = [c for c in self.modifiers if c.mod.rate == "placement"]
        if not mods:  # every year's rows at once, once per set (a small area's cost is Python's)
            memo = self.__dict__.get("_spec_rows")
            if memo is None:
                n_y, n_a = path.shape[0] - 1, path.shape[1]
                stay, entry = specialist_rows(path[:-1].reshape(n_y * n_a, -1),
                                              path[1:].reshape(n_y * n_a, -1))
                memo = (_cumulate(stay).reshape((n_y, n_a) + stay.shape[1:]),
                        _cumulate(entry).reshape((n_y, n_a) + entry.shape[1:]))
                object.__setattr__(self, "_spec_rows", memo)  # a memo, like _tables
            return memo[0][now - 1], memo[1][now - 1]
        stay, entry = specialist_rows(path[now - 1], path[now])
        entry = np.broadcast_to(entry[:, :, None, :], stay.shape).copy()
        for r in range(stay.shape[0]):
            for rows in (stay, entry):
                four = np.concatenate([placement[:N_T - 1], rows[r][None]])
                rows[r] = apply_modifiers(mods, year, {"placement": four})["placement"][-1]
        # a modifier by source placement makes entry rows differ by source: keep the modified
        # mainstream row (children enter the specialist tier from mainstream or early years
        # settings, whose rows a modifier by destination changes alike)
        entry = entry[:, :, 0, :].copy()
        return _cumulate(stay), _cumulate(entry)


def _cumulate(rows: np.ndarray) -> np.ndarray:
    """Make ``rows`` cumulative over the destination in place (last entry exactly 1)."""
    for k in range(1, N_P):  # column by column: faster than cumsum over a last axis of 7
        rows[..., k] += rows[..., k - 1]
    rows[..., -1] = 1.0
    return rows


def _scale_escalation(tiers: np.ndarray, factor) -> np.ndarray:
    """Multiply moves into the specialist tier by ``factor``.

    ``factor`` is a scalar, per age (26,), per age and area (26, n_areas) or already
    broadcastable to ``(age, need, area)``.

    That is the flow the calibration's trend describes (new EHC plans); moves between the
    targeted tiers keep their rates.  The stay probability absorbs the change, and a move
    that would push a row over 1 is capped.
    """
    out = tiers.copy()
    factor = np.asarray(factor, float)
    if factor.ndim == 1:
        factor = factor[:, None, None]  # (age, need, area)
    elif factor.ndim == 2:
        factor = factor[:, None, :]
    top = N_T - 1
    for s in range(1, top):
        up = out[s, top] * factor
        other = out[s].sum(axis=0) - out[s, s] - out[s, top]
        out[s, top] = np.minimum(up, 1.0 - other)
        out[s, s] = 1.0 - other - out[s, top]
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
