r"""Which rates and costs drive spend and specialist demand: variance-based sensitivity.

Every Monte Carlo draw ``d`` of a run has known inputs, the posterior draw of the calibrated
rates that fed it (``param_draw``: escalation multipliers and trends by age group, exit
multipliers) and, with a cost file, its unit-cost and share draws
(:func:`simsend.analysis.costs.cost_draws`), and known outputs: specialist-tier pupils at a January
census and total spend in that year.  That is a *given-data* design: the first-order
(Sobol') index of input :math:`X_i`,

.. math::

    S_i = \frac{\operatorname{Var}(E[Y \mid X_i])}{\operatorname{Var}(Y)},

is estimated from the draws themselves, without new runs, by the equal-frequency binning
estimator (Plischke, Borgonovo & Smith 2013; Strong & Oakley 2014): sort the draws by
:math:`X_i`, cut them into :math:`M` bins of equal size and take the between-bin share of
the sum of squares, corrected for the share that noise alone gives (the
:math:`\varepsilon^2` correction of the correlation ratio),

.. math::

    \hat S_i = \frac{SS_B - (M - 1)\, SS_W / (N - M)}{SS_T},
    \qquad M = \operatorname{round}(\sqrt N).

An input with no effect then scores about 0 (it can be slightly negative) rather than about
:math:`(M - 1)/N`.  SALib's ``delta.analyze`` estimates the same index with far fewer bins
(4 at 200 draws), which loses about 14% of a linear effect; its moment-independent
:math:`\delta` index (Borgonovo 2007, SALib's bias-reduced given-data estimator on the draws as
they are, ``delta_raw``) is reported beside :math:`S_i`.  Confidence intervals are normal
bootstraps over draws
(the estimate plus or minus the normal quantile times the bootstrap standard deviation).

What is not explained by the inputs one at a time is interaction, correlation between inputs
(posterior draws of different age groups are correlated, so first-order indices may add up to
more or less than the explained share), and Monte Carlo process noise: two draws with the same
rates and costs still differ by the chance events of the simulation.  ``explained`` is the
adjusted :math:`R^2` of a linear regression of the output on all inputs together; its
complement is reported as process noise plus non-linear and interaction effects.

Randomness: bootstrap resamples come from ``numpy.random.default_rng(SeedSequence(seed, ...))``
and SALib's global-RNG draws are seeded from ``seed`` and the global state restored afterwards,
so the same results and seed give bit-identical indices.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from simsend.analysis.costs import CostConfig, load_costs, spend
from simsend.config import SHIPPED_MODELS
from simsend.io import atomic_write, file_sha256
from simsend.results.manifest import identity

LOG = logging.getLogger("simsend")
OUTPUTS = ("specialist", "spend")
"""Outputs: specialist-tier pupils at the January census, total spend in the year."""

POSTERIOR_INPUTS = ("escalation_multiplier", "escalation_trend", "exit_multiplier")
"""Posterior variables the engine reads (``simsend.rates.posterior.PosteriorParameters``)."""

_OUTPUT_LABELS = {"specialist": "specialist-tier pupils (January census)",
                  "spend": "total spend in the financial year"}


class SensitivityError(ValueError):
    """Results, costs or options from which no sensitivity analysis can be made."""


# --------------------------------------------------------------------------- estimators


def _bin_of_rank(rank: np.ndarray, m: int, n: int) -> np.ndarray:
    """Bin (0..m-1) of 0-based ranks: rank ``r`` is in bin ``j`` when ``j N/M < r+1 <= (j+1) N/M``.

    SALib's partition (``delta.sobol_first``): bin sizes differ by at most one.
    """
    return ((rank + 1) * m + n - 1) // n - 1


def _bins(x: np.ndarray, m: int) -> np.ndarray:
    """Equal-frequency bin of each value (0..m-1) by rank; ties keep their order."""
    n = len(x)
    rank = np.empty(n, np.int64)
    rank[np.argsort(x, kind="stable")] = np.arange(n)
    return _bin_of_rank(rank, m, n)


def first_order(x: np.ndarray, y: np.ndarray, bins: int | None = None,
                corrected: bool = True) -> float:
    r"""First-order variance-based index of ``x`` on ``y`` from given data.

    Parameters
    ----------
    x, y : ndarray (N,)
        Input and output values of the same N model evaluations (draws).
    bins : int, optional
        Number of equal-frequency bins ``M`` (default ``round(sqrt(N))``, at least 2).
    corrected : bool
        Subtract the between-bin share noise alone gives (:math:`(M-1) SS_W / (N-M)`);
        ``False`` gives the plain correlation ratio :math:`SS_B / SS_T` (SALib's
        ``sobol_first`` for the same bins).

    Returns
    -------
    float
        :math:`\hat S`; 0 when ``y`` is constant.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(size=4000)
    >>> round(first_order(x, x + 0.0 * rng.uniform(size=4000)), 3)
    1.0

    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n = len(y)
    m = _nbins(n) if bins is None else int(bins)
    b = _bins(x, m)
    return _s1(b, y, m, corrected)


def _nbins(n: int) -> int:
    return max(2, round(math.sqrt(n)))


def _s1_rows(b: np.ndarray, y: np.ndarray, m: int) -> np.ndarray:
    """:func:`_s1` (corrected) of each row of ``b`` and ``y`` (shape ``(R, N)``) at once."""
    r, n = y.shape
    ym = y.mean(axis=1)
    sst = ((y - ym[:, None]) ** 2).sum(axis=1)
    flat = (b + m * np.arange(r)[:, None]).ravel()
    cnt = np.bincount(flat, minlength=r * m).reshape(r, m)
    tot = np.bincount(flat, weights=y.ravel(), minlength=r * m).reshape(r, m)
    mean = np.divide(tot, cnt, out=np.zeros_like(tot), where=cnt > 0)
    ssb = (cnt * (mean - ym[:, None]) ** 2).sum(axis=1)
    ssw = sst - ssb
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (ssb - (m - 1) * ssw / (n - m)) / sst
    return np.where(sst > 0, out, 0.0)


def _s1(b: np.ndarray, y: np.ndarray, m: int, corrected: bool = True) -> float:
    n = len(y)
    ym = y.mean()
    sst = float(((y - ym) ** 2).sum())
    if sst <= 0.0:
        return 0.0
    cnt = np.bincount(b, minlength=m)
    tot = np.bincount(b, weights=y, minlength=m)
    ok = cnt > 0
    ssb = float((cnt[ok] * (tot[ok] / cnt[ok] - ym) ** 2).sum())
    if not corrected:
        return ssb / sst
    ssw = sst - ssb
    return (ssb - (m - 1) * ssw / (n - m)) / sst


def first_order_bootstrap(x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                          resamples: int = 500, bins: int | None = None,
                          conf_level: float = 0.95) -> tuple[float, float]:
    """:func:`first_order` and the half-width of its normal bootstrap interval.

    The half-width is ``z * sd`` of the estimator over ``resamples`` bootstrap resamples of
    the draws (rows drawn with replacement by ``rng``), ``z`` the normal quantile of
    ``conf_level``: the interval SALib reports.  (A percentile interval would be biased
    upward near 0: repeated rows land in the same bin.)  The same ``rng`` seed gives every
    input of an output the same resampled rows.

    Returns
    -------
    (float, float)
        ``(s1, half_width)``.

    """
    from scipy.stats import norm

    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n = len(y)
    m = _nbins(n) if bins is None else int(bins)
    s = _s1(_bins(x, m), y, m)
    idx = rng.integers(0, n, size=(resamples, n))
    xs = x[idx]
    rank = np.empty_like(idx)
    np.put_along_axis(rank, np.argsort(xs, axis=1, kind="stable"),
                      np.broadcast_to(np.arange(n), idx.shape), axis=1)
    boot = _s1_rows(_bin_of_rank(rank, m, n), y[idx], m)
    return s, float(norm.ppf(0.5 + conf_level / 2.0) * boot.std(ddof=1))


def null_first_order(y: np.ndarray, rng: np.random.Generator, permutations: int = 1000,
                     bins: int | None = None) -> np.ndarray:
    r""":func:`first_order` of inputs with no effect: ``y`` against random orders of the draws.

    Under no effect the bins are a random partition of the draws, whatever the input's
    values, so one null distribution serves every input of an output.  Returns the
    ``permutations`` null values of :math:`\hat S`.
    """
    y = np.asarray(y, np.float64)
    n = len(y)
    m = _nbins(n) if bins is None else int(bins)
    b = np.broadcast_to(_bin_of_rank(np.arange(n), m, n), (permutations, n))
    return _s1_rows(b, rng.permuted(np.broadcast_to(y, (permutations, n)), axis=1), m)


def _delta(names: list[str], x: np.ndarray, y: np.ndarray, seed: int,
           resamples: int, conf_level: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """SALib's given-data delta index on the draws as they are (``delta_raw``), per column.

    The estimator of ``SALib.analyze.delta.analyze`` in its ``raw`` configuration (bias
    reduced by bootstrap, Plischke et al. 2013, eq. 30) with SALib's own partition of the
    output, run for that configuration only (``analyze`` also computes the ``balanced``
    and ``step`` ones, which resample the inputs away from their distribution).  SALib draws
    from NumPy's global RNG: it is seeded from ``seed`` and its state restored afterwards.
    Returns ``(delta, half-width of its interval, notes)``.
    """
    from SALib.analyze import delta as salib_delta

    try:  # its kernel densities call tiny BLAS solves: threads only contend (pymc brings this)
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        threadpool_limits = None
    n = len(y)
    expo = 2.0 / (7.0 + np.tanh((1500.0 - n) / 500.0))  # SALib's partition size rule
    m = np.linspace(0, n, round(min(math.ceil(n ** expo), 48)) + 1)
    grid = np.linspace(y.min(), y.max(), 100)
    state = np.random.get_state()
    fmt = warnings.formatwarning
    out = np.full(len(names), np.nan)
    conf = out.copy()
    try:
        np.random.seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        limit = threadpool_limits(1, user_api="blas") if threadpool_limits else nullcontext()
        with warnings.catch_warnings(record=True) as caught, limit:
            warnings.simplefilter("always")
            for j, name in enumerate(names):
                out[j], conf[j], _ = salib_delta.bias_reduced_delta(
                    y, grid, x[:, j], m, resamples, conf_level, n, "raw", None, name, 10)
    finally:
        np.random.set_state(state)
        warnings.formatwarning = fmt
    return out, conf, sorted({str(w.message).strip() for w in caught})


def _explained(x: np.ndarray, y: np.ndarray) -> float:
    """Return the adjusted R^2 of the least-squares fit of ``y`` on all columns of ``x`` (and 1)."""
    n, k = x.shape
    if n - k - 1 <= 0:
        return float("nan")
    a = np.column_stack([np.ones(n), (x - x.mean(0)) / x.std(0)])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    sst = float(((y - y.mean()) ** 2).sum())
    if sst <= 0.0:
        return float("nan")
    r2 = 1.0 - float((resid ** 2).sum()) / sst
    return 1.0 - (1.0 - r2) * (n - 1) / (n - k - 1)


# --------------------------------------------------------------------------- inputs


def _resolve_posterior(ds: xr.Dataset, posterior: str | Path | None) -> Path | None:
    """Return the posterior artefact that fed the run (checked against its recorded SHA-256)."""
    recorded = json.loads(ds.attrs.get("input_sha256") or "{}").get("posterior")
    name = ds.attrs.get("posterior_file")
    if posterior is None:
        if not name:
            return None
        path = SHIPPED_MODELS / str(name)
        if not path.is_file():
            raise SensitivityError(f"the run used the posterior {name!r}, which is not among the "
                                   f"shipped models ({SHIPPED_MODELS.name}/); pass its path "
                                   "(posterior=, --posterior)")
    else:
        path = Path(posterior)
        if not path.is_file():
            raise SensitivityError(f"{path}: posterior file not found")
        if not name:
            raise SensitivityError(f"{path}: the results were not run with a posterior (attrs "
                                   "have no posterior_file), so its draws did not feed them")
    if recorded and file_sha256(path) != recorded:
        raise SensitivityError(f"{path}: SHA-256 differs from the posterior the run recorded "
                               f"({recorded[:12]}...); pass the artefact that fed the run")
    return path


def _posterior_inputs(ds: xr.Dataset, path: Path, param_draw: np.ndarray,
                      variables: Sequence[str]) -> dict[str, np.ndarray]:
    """Posterior values of every variable cell, one row per Monte Carlo draw."""
    with xr.open_dataset(path, group="posterior", engine="h5netcdf") as f:
        post = f[list(variables)].load() if all(v in f for v in variables) else None
        have = sorted(f.data_vars)
    if post is None:
        missing = [v for v in variables if v not in have]
        raise SensitivityError(f"{path}: posterior has no variable(s) {missing}; it has {have}")
    stacked = post.stack(sample=("chain", "draw"))
    n_post = stacked.sizes["sample"]
    if (param_draw < 0).any() or (param_draw >= n_post).any():
        raise SensitivityError(f"param_draw of the results lies outside the {n_post} draws of "
                               f"{path}: not the posterior that fed the run")
    src = json.loads(ds.attrs.get("posterior_area_source") or "{}")
    used = list(dict.fromkeys(src.values())) or None
    out: dict[str, np.ndarray] = {}
    for v in variables:
        da = stacked[v].isel(sample=param_draw)
        if "area" in da.dims and used is not None:
            da = da.sel(area=[a for a in used if a in da["area"].values] or used)
        other = [d for d in da.dims if d != "sample"]
        if not other:
            out[v] = da.values
            continue
        flat = da.transpose("sample", *other).stack(cell=other)
        multi = {d: len(da[d]) > 1 for d in other}
        for j in range(flat.sizes["cell"]):
            labels = [str(flat[d].values[j]) for d in other if multi[d]]
            label = labels or [str(flat[other[0]].values[j])]
            out[f"{v}[{', '.join(label)}]"] = np.asarray(flat.values[:, j], float)
    return out


def _cost_inputs(sp: xr.Dataset) -> dict[str, np.ndarray]:
    out = {}
    for item in [str(i) for i in sp["item"].values]:
        out[f"unit_cost[{item}]"] = sp["unit_cost"].sel(item=item).values.astype(float)
        out[f"share[{item}]"] = sp["share"].sel(item=item).values.astype(float)
    return out


def _pick_scenario(ds: xr.Dataset, scenario: str | None) -> xr.Dataset:
    if "scenario" not in ds.dims:
        if scenario not in (None, "baseline"):
            raise SensitivityError(f"results have no scenario dim: scenario {scenario!r} "
                                   "cannot be chosen")
        return ds
    have = [str(s) for s in ds["scenario"].values]
    want = "baseline" if scenario is None else scenario
    if want not in have:
        raise SensitivityError(f"scenario {want!r} not in the results; expected one of {have}")
    return ds.isel(scenario=have.index(want))


def _specialist(ds: xr.Dataset) -> xr.DataArray:
    da = ds["n_pupils"]
    if "tier" not in da.dims:
        raise SensitivityError("results' n_pupils has no tier dim: run with 'tier' in "
                               "[outputs] by")
    da = da.sel(tier="specialist").astype(np.float64)
    return da.sum([d for d in da.dims if d not in ("draw", "year")])


# --------------------------------------------------------------------------- the analysis


def sensitivity(ds: xr.Dataset, costs: CostConfig | str | Path | None = None,
                year: int | None = None, outputs: Sequence[str] = OUTPUTS,
                scenario: str | None = None, posterior: str | Path | None = None,
                posterior_vars: Sequence[str] = POSTERIOR_INPUTS, seed: int = 0,
                resamples: int = 500, conf_level: float = 0.95, delta: bool = True,
                delta_resamples: int = 50, permutations: int = 1000,
                bins: int | None = None) -> xr.Dataset:
    """Rank the rates and costs that drive an output's spread over a run's draws.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of :func:`simsend.run` (with ``param_draw``; ``tier`` among the marginals).
    costs : CostConfig or path, optional
        Cost file: adds the ``spend`` output and the unit-cost and share draws as inputs.
        Without it only ``specialist`` is analysed (``spend`` is skipped).
    year : int, optional
        Census year of the outputs (default: the last year).  Spend is that financial year.
    outputs : sequence of str
        Among :data:`OUTPUTS`.
    scenario : str, optional
        Scenario to analyse when the results have a scenario dim (default ``baseline``).
    posterior : path, optional
        Posterior artefact that fed the run (default: the shipped model named in the
        results' attrs, checked against its recorded SHA-256).
    posterior_vars : sequence of str
        Posterior variables used as inputs (default the ones the engine reads).
    seed : int
        Seed of the bootstrap resamples and SALib's delta estimator.
    resamples : int
        Bootstrap resamples for the interval of S1.
    conf_level : float
        Confidence level of the intervals.
    delta : bool
        Also compute SALib's moment-independent delta index (slower: about 0.3 s per input
        and output at 200 draws).
    delta_resamples : int
        Bootstrap resamples of the delta estimator (its bias reduction and interval).
    permutations : int
        Random orders of the draws for the no-effect reference (``p_value``, ``S1_null95``).
    bins : int, optional
        Bins of the S1 estimator (default ``round(sqrt(draws))``).

    Returns
    -------
    xarray.Dataset
        Over ``(output, input)``: ``S1``, ``S1_low``, ``S1_high``, ``delta``,
        ``delta_conf`` (half-width), ``rank`` (1 = largest S1) and ``p_value`` (against
        no effect, by permutation); over ``output``: ``S1_null95`` (95% of inputs with no
        effect score below it),
        ``explained`` (adjusted R^2 of a linear fit on all inputs), ``unexplained``,
        ``output_mean`` and ``output_sd``.  Coordinates ``input_source`` (``posterior`` or
        ``cost``) and ``input_sd``.  Inputs that do not vary are left out (listed in
        ``attrs["inputs_constant"]``).

    Raises
    ------
    SensitivityError
        Unknown output, year or scenario; no input that varies; an output that does not
        vary; a posterior that is not the one the run used.

    Examples
    --------
    >>> ds = simsend.run(cfg, draws=200)  # doctest: +SKIP
    >>> s = sensitivity(ds, "configs/costs/england_2021_22.toml", year=2030)  # doctest: +SKIP
    >>> s["S1"].sel(output="spend").sortby(s["S1"].sel(output="spend"))  # doctest: +SKIP

    """
    bad = [o for o in outputs if o not in OUTPUTS]
    if bad or not outputs:
        raise SensitivityError(f"unknown output(s) {bad}; expected some of {list(OUTPUTS)}")
    outputs = list(dict.fromkeys(outputs))
    if costs is None and "spend" in outputs:
        outputs.remove("spend")
        if not outputs:
            raise SensitivityError("output 'spend' needs a cost file (costs=, --costs)")
    if "draw" not in ds.dims or ds.sizes["draw"] < 10:
        raise SensitivityError(f"results have {ds.sizes.get('draw', 0)} draws; a given-data "
                               "sensitivity analysis needs at least 10 (hundreds for stable "
                               "indices)")
    if min(resamples, delta_resamples, permutations) < 10:
        raise SensitivityError(f"resamples={resamples}, delta_resamples={delta_resamples}, "
                               f"permutations={permutations}: expected at least 10 each")
    if not 0.0 < conf_level < 1.0:
        raise SensitivityError(f"conf_level={conf_level}: expected a value in (0, 1)")
    years = [int(y) for y in ds["year"].values]
    year = years[-1] if year is None else int(year)
    if year not in years:
        raise SensitivityError(f"year {year} not in the results; expected one of "
                               f"{years[0]}-{years[-1]}")
    ds = _pick_scenario(ds, scenario)
    draws = [int(d) for d in ds["draw"].values]
    n = len(draws)

    # inputs
    inputs: dict[str, np.ndarray] = {}
    source: dict[str, str] = {}
    path = _resolve_posterior(ds, posterior)
    if path is not None:
        if "param_draw" not in ds:
            raise SensitivityError("results have no param_draw variable: which posterior draw "
                                   "fed each Monte Carlo draw is unknown")
        pdraw = np.asarray(ds["param_draw"].values, np.int64).ravel()
        for k, v in _posterior_inputs(ds, path, pdraw, posterior_vars).items():
            inputs[k], source[k] = v, "posterior"
    sp = None
    if costs is not None:
        costs = costs if isinstance(costs, CostConfig) else load_costs(costs)
        sp = spend(ds, costs)
        for k, v in _cost_inputs(sp).items():
            inputs[k], source[k] = v, "cost"
    constant = [k for k, v in inputs.items() if not np.ptp(v) > 0.0]
    names = [k for k in inputs if k not in constant]
    if not names:
        why = ("the run used fixed rates (no posterior)" if path is None
               else "the posterior draws do not vary")
        why += (" and no cost file was given" if costs is None
                else " and every unit cost and share in the cost file is fixed")
        raise SensitivityError(f"no input varies over the draws: {why}; nothing to analyse")
    x = np.column_stack([inputs[k] for k in names])

    # outputs
    ys: dict[str, np.ndarray] = {}
    for o in outputs:
        if o == "specialist":
            y = _specialist(ds).sel(year=year).transpose("draw").values
        else:
            tot = sp["spend_total"]
            tot = tot.sum("area", skipna=False) if "area" in tot.dims else tot
            y = tot.sel(year=year).transpose("draw").values
            if np.isnan(y).any():
                raise SensitivityError(f"spend in {year} is not defined (flows such as "
                                       f"assessments are not simulated in the baseline year "
                                       f"{years[0]}); choose a later year")
        y = np.asarray(y, np.float64)
        if not np.ptp(y) > 0.0:
            raise SensitivityError(f"output {o!r} does not vary over the draws in {year} "
                                   f"(all {y[0]:,.0f}); choose a later year")
        ys[o] = y

    k = len(names)
    s1 = np.full((len(outputs), k), np.nan)
    lo, hi = s1.copy(), s1.copy()
    dl, dc = s1.copy(), s1.copy()
    pval, null95 = s1.copy(), np.full(len(outputs), np.nan)
    notes: dict[str, list[str]] = {}
    for i, o in enumerate(outputs):
        null = null_first_order(ys[o], np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(i, 1))), permutations, bins)
        null95[i] = np.quantile(null, 0.95)
        for j in range(k):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
            s1[i, j], half = first_order_bootstrap(x[:, j], ys[o], rng, resamples, bins,
                                                   conf_level)
            lo[i, j], hi[i, j] = s1[i, j] - half, s1[i, j] + half
            pval[i, j] = (1.0 + np.count_nonzero(null >= s1[i, j])) / (1.0 + permutations)
        if delta:
            dl[i], dc[i], notes[o] = _delta(names, x, ys[o], seed + i, delta_resamples,
                                             conf_level)
    rank = np.empty_like(s1)
    for i in range(len(outputs)):
        order = np.argsort(-s1[i], kind="stable")
        rank[i, order] = np.arange(1, k + 1)
    explained = np.array([_explained(x, ys[o]) for o in outputs])
    coords = {"output": outputs, "input": names,
              "input_source": ("input", [source[k] for k in names]),
              "input_sd": ("input", x.std(0)),
              "output_label": ("output", [_OUTPUT_LABELS[o] for o in outputs])}
    pair = ("output", "input")
    ci = f"{conf_level:.0%} interval, S1 +- z sd of {resamples} bootstrap resamples of draws"
    res = xr.Dataset({
        "S1": (pair, s1, {"units": "1", "long_name": "first-order Sobol' index (given data, "
                                                     "bias-corrected binning estimator)"}),
        "S1_low": (pair, lo, {"units": "1", "long_name": f"S1 lower bound, {ci}"}),
        "S1_high": (pair, hi, {"units": "1", "long_name": f"S1 upper bound, {ci}"}),
        "delta": (pair, dl, {"units": "1", "long_name": "Borgonovo delta (SALib delta_raw, "
                                                        "given data)"}),
        "delta_conf": (pair, dc, {"units": "1", "long_name": f"half-width of delta's "
                                                             f"{conf_level:.0%} interval"}),
        "rank": (pair, rank.astype(np.int64), {"long_name": "rank by S1 (1 = largest)"}),
        "p_value": (pair, pval, {"units": "1", "long_name": "permutation p-value of S1 against "
                                                            "an input with no effect"}),
        "S1_null95": ("output", null95, {
            "units": "1", "long_name": "95% quantile of S1 for an input with no effect "
                                       f"({permutations} random orders of the draws)"}),
        "explained": ("output", explained, {
            "units": "1", "long_name": "share of variance explained by all inputs together "
                                       "(adjusted R^2 of a linear fit)"}),
        "unexplained": ("output", 1.0 - explained, {
            "units": "1", "long_name": "share not explained: Monte Carlo process noise plus "
                                       "non-linear and interaction effects"}),
        "output_mean": ("output", [float(ys[o].mean()) for o in outputs]),
        "output_sd": ("output", [float(ys[o].std()) for o in outputs]),
    }, coords=coords)
    carry = ("simsend_version", "config_sha256", "config_path", "root_seed", "created_at",
             "git_commit", "areas", "area_names", "posterior_file", "replicates_per_draw")
    res.attrs = {k: ds.attrs[k] for k in carry if k in ds.attrs}
    res.attrs.update({
        "title": "simsend sensitivity analysis",
        "draws": n,
        "year": year,
        "scenario": str(ds["scenario"].values) if "scenario" in ds.coords else "baseline",
        "method": "given-data first-order indices from the run's draws: equal-frequency "
                  f"binning into round(sqrt(N)) bins ({bins or _nbins(n)}), bias-corrected; "
                  "delta: SALib delta_raw; explained: adjusted R^2 of a linear fit",
        "sensitivity_seed": int(seed),
        "conf_level": float(conf_level),
        "inputs_constant": json.dumps(constant),
        "delta_notes": json.dumps(notes),
        "caveat": "first-order indices of correlated inputs (posterior draws) overlap: they "
                  "need not add up to the explained share",
    })
    notes = noise_warnings(res)
    for note in notes:
        LOG.warning("%s", note)
    res.attrs["warnings"] = json.dumps(notes)
    if sp is not None:
        res.attrs.update({"costs_path": sp.attrs["costs_path"],
                          "costs_sha256": sp.attrs["costs_sha256"],
                          "price_basis": sp.attrs["price_basis"]})
    return res


MIN_DRAWS = 100
"""Below this many draws the indices are too imprecise to rank inputs (a warning says so)."""


def noise_warnings(res: xr.Dataset, alpha: float = 0.05) -> list[str]:
    """Return warnings for rankings that are noise: too few draws, or no input beats no effect.

    An output none of whose inputs has a permutation ``p_value`` below ``alpha`` has no input
    distinguishable from one with no effect, so its ranking says nothing.
    """
    n = int(res.attrs.get("draws", 0))
    out = []
    if n < MIN_DRAWS:
        out.append(f"only {n} draws: the indices are too imprecise to rank the inputs; run "
                   f"{MIN_DRAWS} or more")
    for o in [str(v) for v in res["output"].values]:
        if not (res["p_value"].sel(output=o).values < alpha).any():
            out.append(f"{o}: no input is distinguishable from one with no effect (every "
                       f"permutation p-value >= {alpha}); its ranking is noise")
    return out


def to_table(res: xr.Dataset):
    """One row per (output, input), ranked: a pandas DataFrame for CSV."""
    import pandas as pd

    rows = []
    for o in [str(v) for v in res["output"].values]:
        r = res.sel(output=o)
        for i in np.argsort(r["rank"].values, kind="stable"):
            rows.append({
                "output": o, "year": int(res.attrs["year"]),
                "rank": int(r["rank"].values[i]), "input": str(r["input"].values[i]),
                "source": str(r["input_source"].values[i]),
                "S1": float(r["S1"].values[i]), "S1_low": float(r["S1_low"].values[i]),
                "S1_high": float(r["S1_high"].values[i]),
                "delta": float(r["delta"].values[i]),
                "delta_conf": float(r["delta_conf"].values[i]),
                "p_value": float(r["p_value"].values[i]),
                "S1_null95": float(r["S1_null95"]), "explained": float(r["explained"]),
                "output_mean": float(r["output_mean"]),
                "output_sd": float(r["output_sd"]), "draws": int(res.attrs["draws"])})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- chart


def chart(res: xr.Dataset, top: int = 10, title: str | None = None) -> Any:
    """Ranked horizontal bars of S1 with interval whiskers, one panel per output.

    Posterior inputs are dark grey, cost inputs white with hatching (readable in black and
    white); the footer gives the run's identity and the method.

    Returns
    -------
    matplotlib.figure.Figure

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outs = [str(o) for o in res["output"].values]
    k = min(int(top), res.sizes["input"])
    height = 1.6 + 0.34 * k * len(outs) + 0.8 * len(outs)
    fig, axes = plt.subplots(len(outs), 1, figsize=(8.6, height), squeeze=False)
    xmax = float(np.nanmax(res["S1_high"].values))
    xmax = min(1.05, max(0.1, xmax * 1.1))
    for ax, o in zip(axes[:, 0], outs, strict=True):
        r = res.sel(output=o)
        order = np.argsort(r["rank"].values, kind="stable")[:k]
        ypos = np.arange(k)[::-1]
        s1 = r["S1"].values[order]
        err = np.vstack([s1 - r["S1_low"].values[order], r["S1_high"].values[order] - s1])
        src = r["input_source"].values[order]
        for y0, v, s in zip(ypos, s1, src, strict=True):
            post = s == "posterior"
            ax.barh(y0, max(v, 0.0), height=0.7, color="0.35" if post else "white",
                    edgecolor="black", lw=0.8, hatch=None if post else "///")
        for colour, lw in (("white", 3.0), ("black", 1.0)):  # visible on dark bars too
            ax.errorbar(s1, ypos, xerr=np.maximum(err, 0.0), fmt="none", ecolor=colour,
                        elinewidth=lw, capsize=3, capthick=lw)
        for y0, v, h in zip(ypos, s1, r["S1_high"].values[order], strict=True):
            ax.text(max(h, v, 0.0) + 0.01 * xmax, y0, f"{v:.2f}", va="center", fontsize=8)
        ax.set_yticks(ypos, [str(x) for x in r["input"].values[order]], fontsize=8.5)
        ax.set_xlim(min(0.0, float(np.nanmin(r["S1_low"].values[order])) - 0.01), xmax)
        ax.axvline(0.0, color="black", lw=0.6)
        ax.grid(True, axis="x", color="0.88", lw=0.6)
        ax.set_axisbelow(True)
        ax.tick_params(axis="x", labelsize=8)
        null = float(r["S1_null95"])
        ax.axvline(null, color="black", lw=1.0, ls="--")
        ax.text(null, k - 0.35, f" no effect: 95% score below {null:.2f}", fontsize=7.5,
                va="bottom", ha="left", style="italic")
        ax.set_ylim(-0.6, k + 0.1)
        mean = float(r["output_mean"])
        scale = (f"£{mean / 1e9:,.2f} bn" if o == "spend" and mean >= 1e9
                 else f"£{mean / 1e6:,.1f} m" if o == "spend" else f"{mean:,.0f}")
        ax.set_title(f"{_OUTPUT_LABELS[o]}, {res.attrs['year']}: mean {scale}, sd "
                     f"{float(r['output_sd']) / mean:.1%} of the mean\ninputs together explain "
                     f"{float(r['explained']):.0%} (linear fit); the rest is process noise, "
                     "interactions, non-linearity", fontsize=8.5, loc="left")
    axes[-1, 0].set_xlabel("first-order Sobol' index S1 (share of the output's variance); "
                           f"whiskers: {res.attrs.get('conf_level', 0.95):.0%} bootstrap "
                           "interval", fontsize=8.5)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="0.35", edgecolor="black", label="calibrated rate (posterior)"),
               Patch(facecolor="white", edgecolor="black", hatch="///",
                     label="unit cost or share (cost file)")]
    fig.legend(handles=handles, loc="upper right", fontsize=8, frameon=False, ncol=2,
               bbox_to_anchor=(0.99, 1 - 0.35 / height))
    fig.suptitle(title or f"What drives the spread: top {k} inputs by first-order index "
                          f"({res.attrs['draws']} draws)", fontsize=11, x=0.01, ha="left")
    foot = (f"Given-data estimate from the run's own draws (bias-corrected binning, "
            f"{res.attrs['scenario']}); calibrated rates are correlated, so their indices "
            "overlap.\n" + identity(res))
    fig.text(0.01, 0.005, foot, fontsize=6.5, color="0.2", va="bottom", ha="left")
    fig.tight_layout(rect=(0, 0.5 / height, 1, 1 - 0.55 / height))
    return fig


def save_chart(res: xr.Dataset, path: str | Path, top: int = 10) -> Path:
    """Draw :func:`chart` and write it as PNG or SVG (by suffix), atomically."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("png", "svg"):
        raise SensitivityError(f"{path}: unknown chart format {fmt!r}; expected .png or .svg")
    fig = chart(res, top=top)
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=110))
    finally:
        plt.close(fig)
