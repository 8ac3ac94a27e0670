"""A council against its ten statistical neighbours and England: recorded rates and its forecast.

The neighbours are DfE's children's services statistical neighbours (LAIT, May 2025;
:mod:`simsend.data.neighbours`).  Recorded rates come from the shipped extract (SEN2 EHC plans
and new plans, school-census SEN support, ONS population; ``simsend/data/builtin``) for the
results' baseline census year (or the last recorded one before it); the council's own forecast
band is from the run's draws: specialist-tier pupils over all pupils 0-25 (the engine's
population), per draw, then the median and 90% band.

:func:`neighbour_table` builds the table, :func:`neighbour_chart` the chart the HTML report
(:mod:`simsend.publish.report`) shows.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from simsend.data.baseline import builtin_dir
from simsend.data.neighbours import neighbours_of, read_neighbours
from simsend.data.releases import ENGLAND

__all__ = ["RATES", "council_of", "forecast_rate", "neighbour_chart", "neighbour_table",
           "recorded_rates"]

RATES = {
    "ehcp_per_10k": "EHC plans per 10,000 aged 0-25",
    "new_plans_per_10k": "new EHC plans in the calendar year before, per 10,000 aged 0-25",
    "special_pct": "% of EHC plans in special schools (state, independent, non-maintained)",
    "sen_support_per_10k": "SEN support per 10,000 aged 0-25 (estimated from the school "
                           "census %)",
}
"""Recorded rates in the table, and their labels."""


def recorded_rates(codes: list[str], year: int) -> pd.DataFrame:
    """Return the recorded rates (:data:`RATES`) of councils (and England) at a census year.

    Examples
    --------
    >>> r = recorded_rates(["E92000001"], 2025)
    >>> 300 < float(r.loc["E92000001", "ehcp_per_10k"]) < 400
    True

    """
    d = builtin_dir()
    stock = pd.read_csv(d / "stock.csv.gz")
    stock = stock[stock["area"].isin(codes) & (stock["year"] == year)]
    flows = pd.read_csv(d / "flows.csv.gz")
    flows = flows[flows["area"].isin(codes) & (flows["year"] == year - 1)
                  & (flows["flow"] == "new_plans")]
    pop = pd.read_csv(d / "population.csv.gz")
    pop = pop[pop["area"].isin(codes) & (pop["year"] == year)].groupby("area")["count"].sum()

    def total(df, **where):
        m = np.ones(len(df), bool)
        for k, v in {"age_group": "all", "age": "all", "need": "all", "placement": "all",
                     **where}.items():
            m &= (df[k] == v).to_numpy()
        return df[m].groupby("area")["count"].sum(min_count=1)

    ehcp = total(stock, plan="ehcp")
    special = (total(stock, plan="ehcp", placement="special_state").add(
        total(stock, plan="ehcp", placement="special_independent"), fill_value=0))
    out = pd.DataFrame(index=pd.Index(codes, name="area"))
    out["ehcp_per_10k"] = ehcp / pop * 1e4
    out["new_plans_per_10k"] = total(flows) / pop * 1e4
    out["special_pct"] = special / ehcp * 100
    out["sen_support_per_10k"] = total(stock, plan="sen_support") / pop * 1e4
    return out


def council_of(ds: xr.Dataset) -> str | None:
    """Return the one council a results file describes, or None (England, several areas)."""
    if "area" in ds.dims:
        codes = [str(a) for a in ds["area"].values]
    else:
        try:
            codes = [str(a) for a in json.loads(ds.attrs.get("areas", "[]"))]
        except ValueError:
            return None
    if len(codes) != 1 or codes[0] == ENGLAND:
        return None
    return codes[0]


def forecast_rate(ds: xr.Dataset, year: int) -> tuple[float, float, float]:
    """Median and 90% band of specialist-tier pupils per 10,000 aged 0-25 at a census year.

    Per draw: the specialist tier over every tier (the engine's population 0-25) of the
    results' first scenario.
    """
    da = ds["n_pupils"].astype(np.float64)
    if "scenario" in da.dims:
        da = da.isel(scenario=0)
    da = da.sel(year=year)
    allp = da.sum([d for d in da.dims if d != "draw"])
    spec = da.sel(tier="specialist").sum([d for d in da.dims if d not in ("draw", "tier")])
    q = (spec / allp * 1e4).quantile([0.5, 0.05, 0.95], dim="draw").values
    return float(q[0]), float(q[1]), float(q[2])


def neighbour_table(ds: xr.Dataset, code: str | None = None) -> pd.DataFrame | None:
    """Return a council's recorded rates beside its ten neighbours' and England's.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of one council with ``n_pupils`` by ``tier``.
    code : str, optional
        The council (default: the one the results describe).

    Returns
    -------
    pandas.DataFrame or None
        One row for the council, its neighbours (closest first) and England: ``name``,
        ``role`` (``council``, ``neighbour``, ``England``), ``rank``, ``closeness`` and the
        :data:`RATES`; ``attrs`` hold the census ``year`` and the council's ``forecast``
        (``{year: (median, p05, p95)}`` of EHC plans per 10,000 at the baseline, five years
        on and the last year).  None when the results are not one council with neighbours.

    """
    code = code or council_of(ds)
    if code is None or "tier" not in ds["n_pupils"].dims:
        return None
    nb = neighbours_of(code, read_neighbours())
    if nb.empty:
        return None
    years = [int(y) for y in ds["year"].values]
    stock_years = pd.read_csv(builtin_dir() / "stock.csv.gz", usecols=["year"])["year"]
    year = min(years[0], int(stock_years.max()))
    codes = [code, *nb["neighbour_code"], ENGLAND]
    rates = recorded_rates(codes, year)
    rows = [{"area": code, "name": nb["name"].iloc[0], "role": "council", "rank": None,
             "closeness": ""}]
    rows += [{"area": r.neighbour_code, "name": r.neighbour_name, "role": "neighbour",
              "rank": int(r.rank), "closeness": r.closeness} for r in nb.itertuples()]
    rows.append({"area": ENGLAND, "name": "England", "role": "England", "rank": None,
                 "closeness": ""})
    out = pd.DataFrame(rows).set_index("area").join(rates)
    keys = sorted({years[0], min(years[0] + 5, years[-1]), years[-1]})
    out.attrs = {"year": year, "forecast": {y: forecast_rate(ds, y) for y in keys}}
    return out


def neighbour_chart(table: pd.DataFrame):
    """Draw EHC plans per 10,000 aged 0-25: the council, its neighbours, England, forecast.

    Bars: recorded rates at the table's census year, the council in black and its
    neighbours in grey (closest at the top); a dashed line: England; on the council's row,
    its forecast medians with their 90% bands.  Returns a matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    year = table.attrs["year"]
    body = table[table["role"] != "England"]
    labels = [f"{n} ({'this council' if r == 'council' else f'SN{int(k)}'})"
              for n, r, k in zip(body["name"], body["role"], body["rank"].fillna(0),
                                 strict=True)]
    vals = body["ehcp_per_10k"].to_numpy(float)
    ypos = np.arange(len(body))[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(body) + 1.6))
    colors = ["#111111" if r == "council" else "#9a9a9a" for r in body["role"]]
    ax.barh(ypos, vals, color=colors, height=0.6, label=f"recorded, January {year}")
    eng = float(table.loc[table["role"] == "England", "ehcp_per_10k"].iloc[0])
    ax.axvline(eng, color="#333333", ls="--", lw=1.2, label=f"England, January {year}")
    fc = table.attrs.get("forecast", {})
    marks = ["o", "s", "D"]
    for k, (y, (med, lo, hi)) in enumerate(sorted(fc.items())[1:]):
        off = 0.22 * (k - 0.5)
        ax.errorbar(med, ypos[0] + off, xerr=[[med - lo], [hi - med]], fmt=marks[k % 3],
                    color="#c0392b", ecolor="#c0392b", capsize=3, ms=5,
                    label=f"forecast January {y}: median, 90% band")
    ax.set_yticks(ypos, labels)
    ax.set_xlabel("EHC plans per 10,000 children and young people aged 0-25")
    ax.set_title("EHC plans per 10,000 aged 0-25: the council and its ten statistical "
                 "neighbours (DfE, May 2025)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.grid(axis="x", color="#dddddd")
    ax.set_axisbelow(True)
    fig.tight_layout()
    return fig
