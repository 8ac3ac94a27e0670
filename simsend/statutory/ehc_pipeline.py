"""The statutory EHC pipeline, simulated around the plans the engine issues.

Design: a plan issued is a move into the specialist tier in the engine (an escalation from
targeted or targeted-plus, tallied as ``n_to_specialist`` by the tier moved from).  Around
each year's plans issued, per output cell (the run's marginals, ``tier`` being the tier the
child was in when the request was made), the pipeline draws on its own random streams
(``pipeline_*`` in :data:`simsend.engine.streams.STREAMS`, counter = cell index):

* assessments that ended in a decision not to issue, and requests refused an assessment
  (negative binomial: the failures of trials stopped at the plans issued; see
  :mod:`simsend.kernels.statutory`), giving requests, refusals and assessments;
* plans issued within 20 weeks (binomial) and the weeks taken: ``mean_weeks_within`` for
  each timely plan (ASSUMPTION), 20 weeks plus an exponential excess of mean
  ``mean_weeks_over`` for each late one (ASSUMPTION);
* tribunal appeals against refusals, decisions not to issue and plan contents (binomial),
  and appeals decided in the appellant's favour.

A request surge is a scenario that raises moves into the specialist tier (more requests
assessed and issued at the same rates), so requests, assessments and plans rise together in
the years it applies; a scenario may also change any pipeline rate (``pipeline.p_refuse``).
Appeals upheld do not feed back into plans issued (a simplification).  Ceased plans come
from the engine: ``n_ceased_needs_met`` (moves from the specialist tier down to SEN
support, by draw and year only, as ``n_transitions`` has no other dimension),
``n_ceased_no_support`` (moves to the universal tier: plans ended without support, e.g. moved
on to work or study) and ``n_ceased_left`` (specialist-tier leavers), split into
``n_ceased_aged_out`` (past 25) and ``n_ceased_moved`` (moved away or moved on before 26).

Default rates (``[pipeline]``; :class:`simsend.config.PipelineConfig`): refusals 22.3% of
initial requests (20,830 of 93,302), decisions not to issue 5.9% of assessments (3,903 of
66,083) and 59.9% of plans issued within 20 weeks are England's figures for calendar 2021 in
DfE's SEN2 2022 release (the first two are in the shipped extract).  The appeal rates, the
share upheld (MoJ tribunal statistics report well over 90% of SEND appeals decided at least
partly for the appellant) and the weeks are ASSUMPTIONS of the published size, not fitted.

``[pipeline] posterior`` (on in ``configs/base.toml`` and ``configs/council.toml``) replaces the
refusal, not-issued, 20-week and three appeal rates by posterior draws estimated per council
(:mod:`simsend.calibration.pipeline`, read by :mod:`simsend.rates.pipeline`): each draw and
area has its own rates (a ``(D, Y, U, K)`` table, each output cell drawing with its area's
row), the scenario's ``pipeline.*`` modifiers applied on top (:func:`modify_rates`).

Random numbers depend on (seed, draw, stream, year, cell index) with cells of the run's
marginal: a different ``outputs.by`` gives different (equally valid) pipeline draws.

With ``[workforce]`` (:mod:`simsend.statutory.workforce`) the assessments are drawn first, the
assessing professions' hours needed are set against the hours available per area (or for the
whole run), and where staff are short the 20-week share falls and late plans take longer;
the variables ``dur_workforce_hours_needed``, ``dur_workforce_hours_available`` (by
``profession``) and ``rel_workforce_coverage`` are added.  Without it, or with staff to spare,
every pipeline variable is the same bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from simsend.config.loader import SimConfig
from simsend.config.scenarios import Scenario, is_baseline
from simsend.config.statutory import PIPELINE_RATES
from simsend.config.toml import ConfigError
from simsend.config.workforce import WorkforceConfig
from simsend.dims import TIER
from simsend.engine.streams import STREAM, draw_keys
from simsend.engine.tally import Layout
from simsend.engine.threads import draw_threads, on_draw_threads
from simsend.kernels.statutory import (
    OUT,
    assessed_cells,
    pipeline_cells,
    pipeline_cells_cover,
    pipeline_cells_serial,
)
from simsend.rates.modifiers import change, compile_modifiers
from simsend.rates.pipeline import load_pipeline_posterior
from simsend.statutory.workforce import capacity, coverage, run_areas, workforce_dataset

PARALLEL_MIN_PLANS = 20_000
"""Below this many plans issued in a year's cells the pipeline is drawn on one thread
(the draws are the same either way)."""

_KEYS = ("pipeline_not_issued", "pipeline_refused", "pipeline_weeks", "pipeline_appeal",
         "pipeline_upheld")

LONG_NAMES = {
    "n_requests": "initial requests for an EHC needs assessment during the year",
    "n_refused": "requests refused an assessment during the year",
    "n_assessed": "EHC needs assessments completed during the year",
    "n_not_issued": "assessments ending in a decision not to issue a plan",
    "n_issued": "new EHC plans issued during the year (moves into the specialist tier)",
    "n_within_20_weeks": "new EHC plans issued within 20 weeks of the request",
    "dur_weeks_total": "weeks from request to plan, summed over plans issued (divide by"
                       " n_issued for the mean)",
    "n_appeals": "SEND tribunal appeals registered (refusal, not issued, plan content)",
    "n_appeals_upheld": "tribunal appeals decided at least partly for the appellant",
}


def _ceased(ds: xr.Dataset) -> dict:
    """Plans ceased: needs met (moves out of the specialist tier), left, and left's two parts."""
    sp = str(ds["tier"].values[TIER["specialist"]])
    down = [str(ds["tier"].values[TIER[t]]) for t in ("targeted", "targeted_plus")]
    met = ds["n_transitions"].sel(tier_from=sp, tier=down).sum("tier", min_count=1)
    met = met.drop_vars("tier_from", errors="ignore")
    met.attrs = {"units": "1 year-1", "long_name": "EHC plans ceased because needs are met "
                 "(moves from the specialist tier down to SEN support)",
                 "cell_methods": "year: sum"}
    uni = str(ds["tier"].values[TIER["universal"]])
    none = ds["n_transitions"].sel(tier_from=sp, tier=uni).drop_vars(["tier_from", "tier"],
                                                                     errors="ignore")
    none.attrs = {"units": "1 year-1", "long_name": "EHC plans ceased without a move to SEN "
                  "support (moved on to work or study, disengaged, other; the young person "
                  "stays in the population)", "cell_methods": "year: sum"}
    left = ds["n_left"].sel(tier=sp).drop_vars("tier", errors="ignore")
    left.attrs = {"units": "1 year-1", "long_name": "EHC plans ceased because the young person "
                  "left (moved away, moved on, or aged out past 25), by state at the previous "
                  "census", "cell_methods": "year: sum"}
    aged = ds["n_aged_out"].sel(tier=sp).drop_vars("tier", errors="ignore")
    aged.attrs = {"units": "1 year-1", "long_name": "EHC plans ceased because the young person "
                  "aged past 25, by state at the previous census", "cell_methods": "year: sum"}
    moved = left - aged
    moved.attrs = {"units": "1 year-1", "long_name": "EHC plans ceased because the child or "
                   "young person moved away or moved on (left before 26), by state at the "
                   "previous census", "cell_methods": "year: sum"}
    out = {"n_ceased_needs_met": met, "n_ceased_no_support": none, "n_ceased_left": left,
           "n_ceased_aged_out": aged, "n_ceased_moved": moved}
    if "n_moved_out" in ds:
        tr = ds["n_moved_out"].sel(tier=sp).drop_vars("tier", errors="ignore")
        tr.attrs = {"units": "1 year-1", "long_name": "EHC plans transferred to another "
                    "council with the child (SEN2 reason 'transfer'), by state at the previous "
                    "census", "cell_methods": "year: sum"}
        out["n_ceased_transferred"] = tr
    return out


def pipeline_rates(base: np.ndarray, modifiers: Sequence, start_year: int,
                   n_years: int) -> np.ndarray:
    """Pipeline rates of each simulated year, ``(n_years, K)``, after a scenario's modifiers."""
    out = np.empty((n_years, len(PIPELINE_RATES)))
    mods = [c for c in modifiers if c.mod.rate.startswith("pipeline.")]
    for yi in range(n_years):
        out[yi] = modify_rates(np.asarray(base, np.float64), mods, start_year + yi)
    return out


def _cell_rates(rates: np.ndarray, unit: np.ndarray | None, j: int, yi: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Return the kernel's rate rows ``(U, K)`` and cells' rows ``(M,)`` for ``j``, ``yi``."""
    if unit is None:  # one rate set for every cell
        return np.ascontiguousarray(rates[yi]).reshape(1, -1), None
    return np.ascontiguousarray(rates[j, yi]), unit


def simulate_pipeline(issued: np.ndarray, rates: np.ndarray, draws: Sequence[int],
                      seed: int, cover: np.ndarray | None = None,
                      unit: np.ndarray | None = None) -> np.ndarray:
    """Draw the pipeline around plans issued.

    Parameters
    ----------
    issued : int array (D, Y, M)
        Plans issued per draw, year and cell (year 0, the baseline, is not simulated).
    rates : float array (Y, K), or (D, Y, U, K) with ``unit``
        :data:`simsend.config.PIPELINE_RATES` per year (and per draw and rate row).
    draws : sequence of int
        Monte Carlo draw numbers (for the keys).
    seed : int
        Root seed.
    cover : float array (D, Y, M), optional
        Workforce coverage of each cell (:func:`simsend.statutory.workforce.coverage`); None = 1.
    unit : int array (M,), optional
        Each cell's rate row (its area's index); None: ``rates`` is one set for every cell.

    Returns
    -------
    float32 array (D, Y, len(OUT), M)
        NaN in the baseline year (float32, like the engine's flows: counts are exact).

    """
    d, y, m = issued.shape
    # Every year after the baseline is written below: only the baseline is filled first
    # (a NaN fill of the whole array cost 0.4 s per 9 draws of every council).
    out = np.empty((d, y, len(OUT), m), np.float32)
    out[:, 0] = np.nan
    workers = draw_threads(d)  # as the engine: draws side by side, one-thread kernels
    zeros = np.zeros(m, np.int64)
    unit = None if unit is None else np.ascontiguousarray(unit, dtype=np.int64)

    def run_some(js: range, stop) -> None:
        ones = np.ones(m)
        buf = np.empty((len(OUT), m))
        for j in js:
            if stop.is_set():
                return
            keys = draw_keys(seed, int(draws[j]), y)
            for yi in range(1, y):
                k = np.array([keys[yi, STREAM[s]] for s in _KEYS], np.uint64)
                buf[:] = 0.0
                n_i = np.ascontiguousarray(issued[j, yi], dtype=np.int64)
                r, u = _cell_rates(rates, unit, j, yi)
                u = zeros if u is None else u
                if workers > 1 or n_i.sum() < PARALLEL_MIN_PLANS:  # same draws either way
                    c = ones if cover is None else np.ascontiguousarray(cover[j, yi],
                                                                        dtype=np.float64)
                    pipeline_cells_serial(n_i, c, u, r, k, buf)
                elif cover is None:
                    pipeline_cells(n_i, u, r, k, buf)
                else:
                    pipeline_cells_cover(n_i, np.ascontiguousarray(cover[j, yi],
                                                                   dtype=np.float64),
                                         u, r, k, buf)
                out[j, yi] = buf

    on_draw_threads(run_some, d, workers, "simsend-pipeline")
    return out


def simulate_assessed(issued: np.ndarray, rates: np.ndarray, draws: Sequence[int],
                      seed: int, unit: np.ndarray | None = None) -> np.ndarray:
    """Assessments per draw, year and cell, ``(D, Y, M)`` int64: the pipeline's own draws.

    The same numbers :func:`simulate_pipeline` reports as ``n_assessed`` (same stream, counters
    and rates: ``rates`` and ``unit`` as there), drawn first so that the workforce coverage
    can depend on them.  Zero in the baseline year.
    """
    d, y, m = issued.shape
    out = np.zeros((d, y, m), np.int64)
    ni = PIPELINE_RATES.index("p_not_issue")
    zeros = np.zeros(m, np.int64)
    unit = None if unit is None else np.ascontiguousarray(unit, dtype=np.int64)
    for j, draw in enumerate(draws):
        keys = draw_keys(seed, int(draw), y)
        for yi in range(1, y):
            r, u = _cell_rates(rates, unit, j, yi)
            assessed_cells(np.ascontiguousarray(issued[j, yi], dtype=np.int64),
                           zeros if u is None else u, np.ascontiguousarray(r[:, ni]),
                           keys[yi, STREAM["pipeline_not_issued"]], out[j, yi])
    return out


def cell_areas(esc: xr.DataArray) -> np.ndarray:
    """Each output cell's index along ``area`` of a ``(draw, year, ...)`` result, ``(M,)``."""
    ax = esc.dims.index("area") - 2
    return np.broadcast_to(
        np.arange(esc.sizes["area"]).reshape([-1 if i == ax else 1
                                              for i in range(esc.ndim - 2)]),
        esc.shape[2:]).ravel()


def _workforce(ds: xr.Dataset, issued: np.ndarray, rates: np.ndarray, seed: int,
               wf: WorkforceConfig, mods: Sequence,
               unit: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Coverage of every cell ``(D, Y, M)`` and the workforce variables of a run."""
    esc = ds["n_to_specialist"]
    d, y = issued.shape[:2]
    assessed = simulate_assessed(issued, rates, ds["draw"].values, seed, unit)
    has_area = "area" in esc.dims
    pop = ds["n_pupils"].isel(draw=0, year=0).astype(np.float64)  # baseline residents 0-25
    if has_area:  # each cell's area; assessments summed over every other axis of the marginal
        units = [str(a) for a in esc["area"].values]
        ax = esc.dims.index("area") - 2
        cell_unit = cell_areas(esc)
        per_unit = assessed.reshape(d, y, *esc.shape[2:]).sum(
            axis=tuple(2 + i for i in range(esc.ndim - 2) if i != ax))
        pop = pop.sum([k for k in pop.dims if k != "area"]).sel(area=esc["area"]).values
    else:
        units = ["all"]
        cell_unit = np.zeros(issued.shape[2], np.int64)
        per_unit = assessed.sum(-1, keepdims=True)
        pop = np.array([float(pop.sum())])
    cap = capacity(wf, mods, [int(v) for v in ds["year"].values], run_areas(ds), units, pop)
    needed, available, cover = coverage(per_unit, cap)
    coords = {"draw": ds["draw"], "year": ds["year"], "profession": list(cap.professions)}
    if has_area:
        coords["area"] = esc["area"]
    return cover[:, :, cell_unit], workforce_dataset(needed, available, cover, coords, has_area)


def pipeline_dataset(ds: xr.Dataset, layout: Layout, rates: np.ndarray,
                     seed: int, *, workforce: WorkforceConfig | None = None,
                     workforce_modifiers: Sequence = (), unit: np.ndarray | None = None
                     ) -> xr.Dataset:
    """Return the pipeline variables of a run's results (the run's dims).

    Plans issued are ``n_to_specialist``: moves into the specialist tier, by the tier the child
    moved from, so requests, assessments and plans are by that tier too (universal and
    specialist rows are zero: the engine escalates into the specialist tier only from the
    targeted tiers).  The ceased-plan variables have no ``tier`` (they are specialist-tier
    flows).

    ``workforce`` (a :class:`simsend.config.workforce.WorkforceConfig`, used when enabled) limits
    the 20-week share by the assessing staff available, with the scenario's ``workforce.*``
    ``workforce_modifiers`` applied, and adds the workforce variables.  ``rates`` and
    ``unit`` are as in :func:`simulate_pipeline`: one ``(Y, K)`` set, or ``(D, Y, U, K)``
    rows with each cell's row.
    """
    esc = ds["n_to_specialist"]
    dims = esc.dims
    vals = np.nan_to_num(esc.values).astype(np.int64)
    d, y = vals.shape[:2]
    issued = vals.reshape(d, y, -1)
    out = _ceased(ds)
    cover = None
    if workforce is not None and workforce.enabled:
        cover, wvars = _workforce(ds, issued, rates, seed, workforce, workforce_modifiers,
                                  unit)
        out.update(wvars)
    res = simulate_pipeline(issued, rates, ds["draw"].values, seed, cover=cover, unit=unit)
    for k, name in enumerate(OUT):
        units = "week" if name.startswith("dur_") else "1 year-1"
        out[name] = xr.DataArray(res[:, :, k].reshape(vals.shape), dims=dims,
                                 coords=esc.coords,
                                 attrs={"units": units, "long_name": LONG_NAMES[name],
                                        "cell_methods": "year: sum (census to census)"})
    return xr.Dataset(out)


def modify_rates(table: np.ndarray, modifiers: Sequence, year: int) -> np.ndarray:
    """Apply ``pipeline.*`` modifiers in force at ``year`` to rates ``(..., K)`` of many rows.

    Element by element what :func:`simsend.rates.modifiers.apply_modifiers` does to one
    ``(K,)`` set (same operation, same clipping), so a row gets the numbers it would alone.
    """
    out = table
    for c in modifiers:
        s = c.mod.strength(year)
        if s == 0.0:
            continue
        k = int(c.index[0][0])
        lim = None if PIPELINE_RATES[k].startswith("mean_") else 1.0
        out = out.copy()
        out[..., k] = np.clip(change(out[..., k], c.mod.op, c.mod.value, s), 0.0, lim)
    return out


def posterior_rates(ds: xr.Dataset, cfg: SimConfig, mods: Sequence
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Rates ``(D, Y, U, K)`` of ``[pipeline] posterior`` and each cell's row ``(M,)``.

    Rows are the run's areas (the ``area`` coordinate of its results); a run of one area
    without ``area`` in its marginals has one row.  Each draw takes its posterior draw
    (:class:`simsend.rates.pipeline.PipelinePosterior`), then the scenario's modifiers.

    Raises
    ------
    ConfigError
        Several areas but no ``area`` in ``outputs.by`` (a cell would mix councils' rates),
        or an area the artefact does not hold.

    """
    esc = ds["n_to_specialist"]
    where = f"{cfg.source_path}: [pipeline.posterior]"
    if "area" in esc.dims:
        areas, unit = [str(a) for a in esc["area"].values], cell_areas(esc)
    else:
        areas = run_areas(ds)
        if len(areas) != 1:
            raise ConfigError(f"{where} needs 'area' in outputs.by when a run holds several "
                              f"areas ({len(areas)}): each council draws with its own rates")
        unit = np.zeros(int(np.prod(esc.shape[2:])), np.int64)
    try:
        base = load_pipeline_posterior(cfg.pipeline.posterior).rates(
            cfg.pipeline.rates, ds["draw"].values, areas)
    except ConfigError as exc:
        raise ConfigError(f"{where} {exc}") from None
    years = [int(v) for v in ds["year"].values]
    rates = np.stack([modify_rates(base, mods, yr) for yr in years], 1)
    return rates, unit


def statutory_variables(ds: xr.Dataset, cfg: SimConfig, layout: Layout,
                        scenario: Scenario | None) -> xr.Dataset:
    """Return one run's results with the statutory pipeline (and workforce) variables added.

    Nothing is added when ``[pipeline] enabled = false``.  A scenario's ``pipeline.*`` and
    ``workforce.*`` modifiers act here; the baseline (``scenario`` None or named
    ``"baseline"``) runs the config's rates.  With ``[pipeline] posterior`` each draw and
    area takes its own posterior rates (:func:`posterior_rates`), the modifiers on top.
    """
    if not cfg.pipeline.enabled:
        return ds
    base = is_baseline(scenario)
    mods = () if base else compile_modifiers(
        [m for m in scenario.modifiers if m.rate.startswith("pipeline.")], [])
    unit = None
    if cfg.pipeline.posterior:
        rates, unit = posterior_rates(ds, cfg, mods)
    else:
        rates = pipeline_rates(cfg.pipeline.rates, mods, cfg.run.start_year, ds.sizes["year"])
    wmods = () if base else [m for m in scenario.modifiers if m.rate.startswith("workforce.")]
    return ds.merge(pipeline_dataset(ds, layout, rates, int(ds.attrs["root_seed"]),
                                     workforce=cfg.workforce, workforce_modifiers=wmods,
                                     unit=unit))
