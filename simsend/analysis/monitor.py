"""Monitoring: recorded figures against the forecast, and observed minus counterfactual.

Recorded figures come as a tidy CSV with columns ``year, area, variable, value`` and,
optionally, any result dimension as a further column (``tier``, ``age_group``, ``need``,
``placement``, ...; empty or ``all`` = every value).  ``variable`` is a result variable
(``n_pupils``, ``n_issued``, ``n_requests``, ...).  For each row the forecast's draws of that
variable are summed over the dimensions the row does not name, and :func:`monitor` reports

* ``percentile_rank``: where the recorded value falls among the draws (mid-rank: the share of
  draws below plus half the share equal), per year and area;
* ``effect_*``: the recorded value minus the counterfactual's draws (the scenario run
  without the reform, by default ``baseline``), median and 90% band: the reform's observed
  effect with its uncertainty.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from simsend.analysis.compare import combine
from simsend.config.scenarios import BASELINE
from simsend.data.errors import DataError

REQUIRED = ("year", "area", "variable", "value")


def read_actuals(path: str | Path) -> pd.DataFrame:
    """Read a tidy CSV of recorded figures, checking columns and values.

    Raises
    ------
    DataError
        Naming the file, the row (file line, header = 1) and what was expected.

    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected {list(REQUIRED)} and "
                        "optional breakdown columns")
    parsed: dict = {"year": [], "value": []}
    for i, row in enumerate(df.itertuples(index=False)):
        line = i + 2
        for col, kind in (("year", int), ("value", float)):
            raw = getattr(row, col)
            try:
                v = kind(raw)
            except ValueError:
                raise DataError(f"{path}: row {line}, column {col}: {raw!r} is not "
                                f"{'a year' if kind is int else 'a number'}") from None
            if kind is float and not np.isfinite(v):
                raise DataError(f"{path}: row {line}, column value: {raw!r} is not finite")
            parsed[col].append(v)
    out = df.copy()
    out["year"] = np.array(parsed["year"], np.int64)
    out["value"] = np.array(parsed["value"], np.float64)
    return out


def _draws_for(ds: xr.Dataset, row: pd.Series, extra: list[str], where: str) -> np.ndarray:
    var = row["variable"]
    if var not in ds:
        names = [v for v in ds.data_vars if "draw" in ds[v].dims]
        raise DataError(f"{where}: variable {var!r} not in the results; expected one of {names}")
    da = ds[var]
    if int(row["year"]) not in set(int(y) for y in ds["year"].values):
        raise DataError(f"{where}: year {row['year']} not in the forecast years "
                        f"{[int(y) for y in ds['year'].values]}")
    da = da.sel(year=int(row["year"]))
    sel = {}
    if "area" in da.dims:
        sel["area"] = str(row["area"])
    else:
        areas = json.loads(ds.attrs.get("areas", "[]"))
        if str(row["area"]) not in areas:
            raise DataError(f"{where}: area {row['area']!r} not in the results' areas {areas}")
        if len(areas) > 1:
            raise DataError(f"{where}: the results sum {len(areas)} areas; rerun with 'area' "
                            "in outputs.by to monitor one of them")
    for col in extra:
        v = str(row[col]).strip()
        if v in ("", "all"):
            continue
        if col not in da.dims:
            raise DataError(f"{where}: column {col}={v!r}: {var} has no {col} dimension "
                            f"(dims {list(da.dims)})")
        sel[col] = v
    for dim, v in sel.items():
        if v not in [str(c) for c in da[dim].values]:
            raise DataError(f"{where}: {dim} {v!r} not in the results")
    da = da.sel(sel)
    return da.sum([d for d in da.dims if d != "draw"], min_count=1).values


def monitor(results, actuals: pd.DataFrame | str | Path, forecast: str | None = None,
            counterfactual: str | None = BASELINE) -> pd.DataFrame:
    """Place recorded figures within forecast draws, and compare them with a counterfactual.

    Parameters
    ----------
    results : Dataset or path
        A run's results (with or without a ``scenario`` dimension).
    actuals : DataFrame or path
        Recorded figures (see the module docstring).
    forecast : str, optional
        Scenario whose draws the ranks are taken in (default: the counterfactual, or the
        only run).
    counterfactual : str or None
        Scenario standing for "no reform" (default ``baseline``); None skips the effect.

    Returns
    -------
    pandas.DataFrame
        The actuals' columns plus ``forecast_median``, ``forecast_q05``, ``forecast_q95``,
        ``percentile_rank`` and, with a counterfactual, ``effect_median``, ``effect_q05``,
        ``effect_q95`` (recorded minus counterfactual draws).

    Examples
    --------
    >>> table = monitor("results/base.nc", "actuals.csv")  # doctest: +SKIP

    """
    ds = combine(results)
    names = [str(s) for s in ds["scenario"].values]
    src = str(actuals) if not isinstance(actuals, pd.DataFrame) else "actuals"
    df = read_actuals(actuals) if not isinstance(actuals, pd.DataFrame) else actuals.copy()
    for name in (forecast, counterfactual):
        if name is not None and name not in names:
            raise DataError(f"{src}: no scenario {name!r} in the results; they hold {names}")
    if forecast is None:
        forecast = counterfactual if counterfactual is not None else names[0]
    extra = [c for c in df.columns if c not in REQUIRED]
    rows = []
    for i, row in df.iterrows():
        where = f"{src}: row {int(i) + 2}"
        x = _draws_for(ds.sel(scenario=forecast), row, extra, where)
        v = float(row["value"])
        if np.isnan(x).any():
            raise DataError(f"{where}: {row['variable']} is not simulated in {row['year']} "
                            "(the baseline year has no flows)")
        rec = {"forecast_median": np.median(x), "forecast_q05": np.quantile(x, 0.05),
               "forecast_q95": np.quantile(x, 0.95),
               "percentile_rank": float(np.mean(x < v) + 0.5 * np.mean(x == v))}
        if counterfactual is not None:
            c = _draws_for(ds.sel(scenario=counterfactual), row, extra, where)
            eff = v - c
            rec.update(effect_median=np.median(eff), effect_q05=np.quantile(eff, 0.05),
                       effect_q95=np.quantile(eff, 0.95))
        rows.append(rec)
    return pd.concat([df.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
