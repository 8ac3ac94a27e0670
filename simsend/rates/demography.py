"""Each draw's births, migration and plan transfers as the engine's per-year tables.

The demography model (:mod:`simsend.data.demography`) gives, per Monte Carlo draw, the
age-0 population at each census and the net migration rate of each (age, area) over each
year; the transfer rates (:mod:`simsend.data.transfers`) give how EHC plans move between
councils.  :class:`DemographySource` turns them into the probabilities the ``migration`` step
of :mod:`simsend.engine.loop` draws from:

* universal, targeted and targeted-plus children of age ``a`` at the census that opens a year
  leave with probability ``max(-r, 0)`` and arrive at rate ``max(r, 0)``, ``r`` the net rate
  of the cohort reaching ``a + 1`` at the census that closes it (arrivals take the tier, plan,
  need and placement mix of their age in the area they come to);
* specialist-tier children (EHC plans) in a council move with their plans instead: out at the
  council's transfer rate, in at England's (none for England and regions, where moves
  between councils are internal).  Children arriving from abroad come without a plan and are
  identified and assessed like any other child.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simsend.data.demography import fit_demography, read_population_projection
from simsend.data.population import population_through
from simsend.data.transfers import transfer_rates
from simsend.dims import AGES, TIER, TIERS
from simsend.rates.sources import LastMemo

N_A, N_T = len(AGES), len(TIERS)


class DemographyModel(Protocol):
    """What :func:`simsend.data.demography.fit_demography` returns (the part used here).

    ``draw(draw, seed)`` returns an object with ``births`` (n_years, n_areas) and
    ``net_rate`` (n_years, 26, n_areas) for census years ``start_year + 1 .. end_year``.
    """

    def draw(self, draw: int, seed: int):
        """Return one Monte Carlo draw's tables (``births``, ``net_rate``)."""


class FixedDemography:
    """The same tables for every draw (ONS estimates read off, or a known truth)."""

    def __init__(self, tables):
        self.tables = tables

    def draw(self, draw: int, seed: int):
        """Return the fixed tables whatever the draw."""
        return self.tables


@dataclass(frozen=True)
class YearMoves:
    """One draw's demography, indexed by year index (0 = the baseline census, unused).

    Attributes
    ----------
    births : float ndarray (Y, n_areas)
        Age-0 children at each census.
    pool_out, pool_in : float ndarray (Y, 26, n_areas)
        Universal children by age at the census opening the year: leaving probability and
        arrival rate.
    ind_out, ind_in : float ndarray (Y, 4, 26, n_areas)
        The same for individuals by tier (the universal row is unused).

    """

    births: np.ndarray
    pool_out: np.ndarray
    pool_in: np.ndarray
    ind_out: np.ndarray
    ind_in: np.ndarray

    def areas(self, lo: int, hi: int) -> YearMoves:
        """Return the tables of areas ``lo .. hi - 1`` (a chunk of a run)."""
        return YearMoves(*(np.ascontiguousarray(a[..., lo:hi]) for a in (
            self.births, self.pool_out, self.pool_in, self.ind_out, self.ind_in)))


def year_moves(births: np.ndarray, net_rate: np.ndarray, transfer_out: np.ndarray | None,
               transfer_in: np.ndarray | None) -> YearMoves:
    """Build the engine's tables from births and net rates of census years 1 .. Y-1.

    Parameters
    ----------
    births : (Y - 1, n_areas)
    net_rate : (Y - 1, 26, n_areas)
        Net change of the cohort reaching each age at each census (age 0 unused).
    transfer_out, transfer_in : (n_areas,) or None
        Plan transfer probabilities per year; None = specialists move like everyone else.

    """
    n_y, _, n_r = net_rate.shape
    b = np.zeros((n_y + 1, n_r))
    b[1:] = births
    # age at the opening census a0 = age reached at the closing census - 1; 25 ages out
    r = np.zeros((n_y + 1, N_A, n_r))
    r[1:, :-1] = net_rate[:, 1:]
    r = np.where(np.isfinite(r), r, 0.0)
    out = np.minimum(np.maximum(-r, 0.0), 1.0)
    inn = np.maximum(r, 0.0)
    ind_out = np.repeat(out[:, None], N_T, axis=1)
    ind_in = np.repeat(inn[:, None], N_T, axis=1)
    if transfer_out is not None:
        s = TIER["specialist"]
        ind_out[1:, s, :-1] = transfer_out[None, None, :]
        ind_in[1:, s, :-1] = transfer_in[None, None, :]
    return YearMoves(b, out, inn, ind_out, ind_in)


def with_net_flow(ind_out: np.ndarray, ind_in: np.ndarray, net: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Add a year's net flow of individuals to their leaving probability and arrival rate.

    ``ind_out``, ``ind_in`` and ``net`` are (4, 26, n_areas) for the census opening the
    year (:attr:`simsend.rates.parameters.YearTables.net_flow`).  The migration kernel
    keeps a cell's pupils with probability ``1 - out`` and copies each one who stays
    ``in`` times on average, so the cell changes by ``(1 - out)(1 + in)``; the net flow
    multiplies that by ``1 + net``: a positive ``net`` raises the arrival rate to
    ``(1 + in)(1 + net) - 1``, a negative one the leaving probability to
    ``1 - (1 - out)(1 + net)`` (capped at 1).  ``net`` None returns the inputs.

    Examples
    --------
    >>> out, inn = with_net_flow(np.full((4, 26, 1), 0.5), np.zeros((4, 26, 1)),
    ...                          np.full((4, 26, 1), -0.5))
    >>> float(out[3, 0, 0]), float(inn[3, 0, 0])
    (0.75, 0.0)

    """
    if net is None:
        return ind_out, ind_in
    up, down = np.maximum(net, 0.0), np.minimum(net, 0.0)
    out = np.clip(1.0 - (1.0 - ind_out) * (1.0 + down), 0.0, 1.0)
    return np.ascontiguousarray(out), np.ascontiguousarray((1.0 + ind_in) * (1.0 + up) - 1.0)


class DemographySource(LastMemo):
    """Hands the engine one draw's :class:`YearMoves` (the last one is remembered).

    Parameters
    ----------
    model : DemographyModel
        The fitted demography (births trend and migration).
    seed : int
        The run's root seed: a draw's demography depends on (seed, draw) only.
    transfer_out, transfer_in : (n_areas,) or None
        Plan transfer rates (:class:`simsend.data.transfers.TransferRates`).

    """

    def __init__(self, model: DemographyModel, seed: int,
                 transfer_out: np.ndarray | None = None,
                 transfer_in: np.ndarray | None = None):
        self.model, self.seed = model, int(seed)
        self.transfer_out, self.transfer_in = transfer_out, transfer_in
        self.lo, self.hi = 0, None
        self.notes: dict = {}  # what was fitted, for the run's provenance

    def get(self, draw: int) -> YearMoves:
        """Return Monte Carlo draw ``draw``'s tables (for this source's areas)."""
        return self._recall(int(draw), self._make, lambda a, b: a == b)

    def _make(self, draw: int) -> YearMoves:
        d = self.model.draw(draw, self.seed)
        moves = year_moves(d.births, d.net_rate, self.transfer_out, self.transfer_in)
        if self.lo == 0 and self.hi is None:
            return moves
        return moves.areas(self.lo, self.hi)

    def areas(self, lo: int, hi: int) -> DemographySource:
        """Return this source restricted to areas ``lo .. hi - 1`` of the run (same draws)."""
        out = DemographySource(self.model, self.seed, self.transfer_out, self.transfer_in)
        out.lo, out.hi = self.lo + lo, self.lo + hi
        return out


def demography_source(cfg, baseline, seed: int | None = None) -> DemographySource | None:
    """Build a run's demography from its config's ``[demography]`` table and its baseline.

    Parameters
    ----------
    cfg : SimConfig
        ``demography``, ``run.end_year`` and ``run.seed`` are used.
    baseline : Baseline
        Its population (up to the baseline census) is what the model is fitted to; with
        ``mode = "observed"`` the ONS estimates after it are read too.
    seed : int, optional
        Root seed (default ``cfg.run.seed``).

    Returns
    -------
    DemographySource or None
        None for ``mode = "off"`` (fixed entrants, no migration).

    """
    d = cfg.demography
    if d.mode == "off":
        return None
    start, end = int(baseline.year), int(cfg.run.end_year)
    projection = None if d.projection is None else read_population_projection(d.projection)
    if d.mode == "observed":  # ONS estimates after the baseline, then the fitted trend
        model = fit_demography(population_through(baseline, end), start, end,
                               projection=projection, recent_years=d.recent_years,
                               observed=True)
    else:
        model = fit_demography(baseline.population, start, end, projection=projection,
                               recent_years=d.recent_years)
    t_out = t_in = None
    notes = {"mode": d.mode, "recent_years": d.recent_years,
             "projection": None if d.projection is None else str(d.projection)}
    for name in ("births_years", "rate_years"):
        if hasattr(model, name):
            notes[name] = [int(y) for y in np.asarray(getattr(model, name))]
    if hasattr(model, "notes"):
        notes["model"] = list(model.notes)
    if d.transfers:
        tr = transfer_rates(baseline)  # the last 3 calendar years of SEN2
        t_out, t_in = tr.out_rate, tr.in_rate
        notes["transfers"] = list(tr.notes)
    src = DemographySource(model, cfg.run.seed if seed is None else seed, t_out, t_in)
    src.notes = notes
    return src
