"""Scenario minus baseline, draw by draw: the effect of a scenario with its band.

A scenario and its baseline run with the same seed share their random numbers wherever they
agree (common random numbers), so draw ``d`` of the scenario and draw ``d`` of the baseline
form a pair, and the spread of the paired differences is the uncertainty of the *effect*,
far narrower than the band of either forecast.  :func:`compare` reports, for any variable
and any marginal, the median and 50% / 90% bands of the difference, the probability that
the scenario is below the baseline, and the variance ratio
``var(scenario - baseline) / (var(scenario) + var(baseline))`` (1 for independent runs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from simsend.config.scenarios import BASELINE
from simsend.results.manifest import ResultsError, read_results


class CompareError(ValueError):
    """Results that cannot be compared (missing baseline, unpaired draws, unknown names)."""


def _read(path: str | Path) -> xr.Dataset:
    """Read a results file; one that cannot be read is a :class:`CompareError` naming it."""
    try:
        return read_results(path)
    except ResultsError as exc:
        raise CompareError(str(exc)) from None


def combine(results: xr.Dataset | str | Path | Sequence) -> xr.Dataset:
    """Stack results files (or Datasets) into one Dataset with a ``scenario`` dimension.

    A Dataset without a ``scenario`` dimension counts as the scenario named in its
    ``scenario`` attribute (``"baseline"`` if none).  All inputs must share the root seed and
    the draws, so that draws pair up.

    Raises
    ------
    CompareError
        When seeds, draws or years differ, or a scenario name repeats.

    """
    items = [results] if isinstance(results, xr.Dataset | str | Path) else list(results)
    dss = []
    for r in items:
        ds = r if isinstance(r, xr.Dataset) else _read(r)
        if "scenario" not in ds.dims:
            name = str(ds.attrs.get("scenario", BASELINE))
            ds = ds.expand_dims(scenario=[name])
        dss.append(ds)
    first = dss[0]
    for ds in dss[1:]:
        for attr in ("root_seed",):
            if str(ds.attrs.get(attr)) != str(first.attrs.get(attr)):
                raise CompareError(f"results have different {attr} ({first.attrs.get(attr)} vs "
                                   f"{ds.attrs.get(attr)}): draws would not be paired")
        for dim in ("draw", "year"):
            if not np.array_equal(ds[dim].values, first[dim].values):
                raise CompareError(f"results have different {dim} coordinates: run them with "
                                   "the same draws and years")
    if len(dss) == 1:
        return first
    names = [str(s) for ds in dss for s in ds["scenario"].values]
    if len(set(names)) != len(names):
        raise CompareError(f"scenario names repeat across the results: {names}")
    return xr.concat(dss, dim="scenario", data_vars="all", coords="minimal", compat="override",
                     combine_attrs="override")


def _parse_select(select: Mapping[str, object] | None, da: xr.DataArray) -> dict:
    out = {}
    for dim, val in (select or {}).items():
        if dim not in da.dims:
            raise CompareError(f"cannot select {dim}={val}: {da.name} has dims {list(da.dims)}")
        vals = val if isinstance(val, list | tuple) else [val]
        coord = [str(c) for c in da[dim].values]
        idx = []
        for v in vals:
            v = str(v)
            if v not in coord:
                raise CompareError(f"{dim}={v} not found; expected one of {coord}")
            idx.append(coord.index(v))
        out[dim] = idx
    return out


def marginal(ds: xr.Dataset, variable: str, by: Sequence[str] = ("year",),
             select: Mapping[str, object] | None = None) -> xr.DataArray:
    """Sum ``variable`` over every dimension but ``scenario``, ``draw`` and ``by``.

    ``select`` keeps only the given coordinate values (a value or a list of values) first.
    NaN (flows in the baseline year) stay NaN.
    """
    if variable not in ds:
        names = [v for v in ds.data_vars if "draw" in ds[v].dims]
        raise CompareError(f"no variable {variable!r}; expected one of {names}")
    da = ds[variable]
    da = da.isel(_parse_select(select, da))
    for b in by:
        if b not in da.dims:
            raise CompareError(f"cannot break {variable} down by {b!r}: dims are {list(da.dims)}")
    keep = {"scenario", "draw", *by}
    drop = [d for d in da.dims if d not in keep]
    return da.sum(drop, min_count=1) if drop else da


def compare(results, variable: str = "n_pupils", by: Sequence[str] = ("year",),
            select: Mapping[str, object] | None = None, baseline: str = BASELINE,
            scenarios: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-draw differences scenario minus baseline, summarised.

    Parameters
    ----------
    results : Dataset, path or sequence of them
        Results with a ``scenario`` dimension, or one file per scenario (see :func:`combine`).
    variable : str
        Any variable with a ``draw`` dimension (``n_pupils``, ``n_requests``, ...).
    by : sequence of str
        Dimensions to keep (others are summed), e.g. ``("year", "area")``.
    select : mapping, optional
        Coordinate values to keep before summing, e.g. ``{"tier": "specialist"}``.
    baseline : str
        The scenario the others are compared with.
    scenarios : sequence of str, optional
        Scenarios to compare (default: every other one).

    Returns
    -------
    pandas.DataFrame
        One row per scenario and ``by`` cell: ``baseline_median``, ``scenario_median``,
        ``diff_median``, ``diff_q05``, ``diff_q25``, ``diff_q75``, ``diff_q95`` (quantiles of
        the per-draw difference), ``p_below`` (share of draws with scenario < baseline) and
        ``var_ratio`` (see the module docstring; NaN when both variances are 0).

    Examples
    --------
    >>> table = compare("results/surge.nc", select={"tier": "specialist"})  # doctest: +SKIP

    """
    ds = combine(results)
    names = [str(s) for s in ds["scenario"].values]
    if baseline not in names:
        raise CompareError(f"no scenario {baseline!r} in the results; they hold {names}")
    wanted = [s for s in names if s != baseline] if scenarios is None else list(scenarios)
    if not wanted:
        raise CompareError(f"the results hold only the {baseline!r} run, so there is nothing to "
                           "compare it with: run a config with [scenarios] (or --scenario), or "
                           "give several results files")
    for s in wanted:
        if s not in names:
            raise CompareError(f"no scenario {s!r} in the results; they hold {names}")
    da = marginal(ds, variable, by, select)
    base = da.sel(scenario=baseline, drop=True)
    rows = []
    for s in wanted:
        sc = da.sel(scenario=s, drop=True)
        diff = (sc - base).transpose("draw", ...)
        q = diff.quantile([0.05, 0.25, 0.5, 0.75, 0.95], dim="draw", skipna=False)
        vs, vb, vd = (x.var("draw", ddof=1, skipna=False) for x in (sc, base, diff))
        denom = vs + vb
        table = xr.Dataset({
            "baseline_median": base.median("draw", skipna=False),
            "scenario_median": sc.median("draw", skipna=False),
            "diff_median": q.sel(quantile=0.5, drop=True),
            "diff_q05": q.sel(quantile=0.05, drop=True),
            "diff_q25": q.sel(quantile=0.25, drop=True),
            "diff_q75": q.sel(quantile=0.75, drop=True),
            "diff_q95": q.sel(quantile=0.95, drop=True),
            "p_below": (diff < 0).mean("draw").where(diff.notnull().all("draw")),
            "var_ratio": (vd / denom.where(denom > 0)),
        }).drop_vars("scenario", errors="ignore")
        df = table.to_dataframe().reset_index() if by else pd.DataFrame(
            {k: [float(v)] for k, v in table.items()})
        df.insert(0, "scenario", s)
        rows.append(df)
    out = pd.concat(rows, ignore_index=True)
    return out.dropna(subset=["diff_median"]).reset_index(drop=True)


def scenario_descriptions(ds: xr.Dataset) -> dict:
    """Return the ``scenarios`` attribute of a results Dataset (name -> description)."""
    try:
        return json.loads(ds.attrs.get("scenarios", "{}"))
    except json.JSONDecodeError:
        return {}
