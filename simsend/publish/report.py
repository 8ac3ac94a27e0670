"""One self-contained HTML report of a run: headline, fan charts, scenarios, skill, sources.

The file needs no server and no network: charts are embedded as base64 PNG, styles inline.
Sections: the headline forecast (specialist tier and every tier, median and 90% band, at the
baseline, five years on and the last year), fan charts, scenarios against the baseline (when
the results have a ``scenario`` dimension; differences are taken draw by draw, which common
random numbers make free of Monte Carlo noise), backtest skill (when a backtest CSV is given),
assumptions and data sources, and the run manifest.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from simsend.io import atomic_write
from simsend.publish.plot import fan_chart, load_history, scenario_order
from simsend.results.manifest import format_manifest, identity, manifest

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Arial,sans-serif;max-width:1100px;
margin:24px auto;padding:0 16px;color:#111;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #333;padding-bottom:3px;
margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #999;padding:3px 8px;text-align:right}th{background:#eee}
td.l,th.l{text-align:left}.id{color:#444;font-size:.85em}img{max-width:100%;box-sizing:border-box;
border:1px solid #ccc}pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:.8em;
white-space:pre-wrap;overflow-wrap:anywhere}.note{color:#333;font-size:.9em}
a{overflow-wrap:anywhere}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: float) -> str:
    return "-" if not np.isfinite(v) else f"{v:,.0f}"


def _band(da: xr.DataArray) -> tuple[float, float, float]:
    q = da.quantile([0.05, 0.5, 0.95], dim="draw").values
    return float(q[1]), float(q[0]), float(q[2])


def _key_years(ds: xr.Dataset) -> list[int]:
    ys = [int(y) for y in ds["year"].values]
    keys = [ys[0], ys[0] + 5, ys[-1]]
    return sorted({y for y in keys if y in ys})


def _stock_by_tier(ds: xr.Dataset) -> xr.DataArray:
    da = ds["n_pupils"].astype(np.float64)
    drop = [d for d in da.dims if d not in ("draw", "year", "tier", "scenario")]
    return da.sum(drop) if drop else da


def headline_table(ds: xr.Dataset, scenario: str | None = None) -> pd.DataFrame:
    """Return the headline table: median (90% band) of the census stock by tier, key years.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"n_pupils": (("draw", "year", "tier"), np.ones((4, 6, 2)))},
    ...                 coords={"year": range(2022, 2028), "tier": ["a", "b"]})
    >>> headline_table(ds).loc["a", 2027]
    '1 (1 to 1)'

    """
    st = _stock_by_tier(ds)
    if scenario is not None:
        st = st.sel(scenario=scenario)
    rows = {}
    for t in [str(t) for t in st["tier"].values]:
        rows[t] = {}
        for y in _key_years(ds):
            m, lo, hi = _band(st.sel(tier=t, year=y))
            rows[t][y] = f"{_fmt(m)} ({_fmt(lo)} to {_fmt(hi)})"
    return pd.DataFrame(rows).T


def scenario_table(ds: xr.Dataset) -> pd.DataFrame:
    """Return each scenario's change from the first (baseline) scenario, draw by draw.

    Median (90% band) of ``scenario - baseline`` in the census stock by tier, last year.
    """
    st = _stock_by_tier(ds)
    names = scenario_order(ds)
    base = st.sel(scenario=names[0])
    y = int(ds["year"].values[-1])
    rows = {}
    for s in names[1:]:
        diff = (st.sel(scenario=s) - base).sel(year=y)
        rows[s] = {}
        for t in [str(t) for t in st["tier"].values]:
            m, lo, hi = _band(diff.sel(tier=t))
            rows[s][t] = f"{m:+,.0f} ({lo:+,.0f} to {hi:+,.0f})"
    return pd.DataFrame(rows).T


def _table_html(df: pd.DataFrame, index_label: str = "") -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    body = "".join(
        f"<tr><td class='l'>{_esc(i)}</td>" + "".join(f"<td>{_esc(v)}</td>" for v in row)
        + "</tr>" for i, row in zip(df.index, df.itertuples(index=False), strict=True))
    return (f"<table><thead><tr><th class='l'>{_esc(index_label)}</th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _sources_html(m: dict[str, Any]) -> str:
    prov = m.get("data_provenance")
    if not isinstance(prov, dict):
        return "<p>No data provenance recorded.</p>"
    out = [f"<p>{_esc(prov.get('release', prov.get('source', '')))}"
           f" (geography: {_esc(prov.get('geography', 'n/a'))}).</p><ul>"]
    for src in (prov.get("sources") or {}).values():
        if isinstance(src, dict):
            out.append(f"<li>{_esc(src.get('title', ''))}, {_esc(src.get('publisher', ''))},"
                       f" release {_esc(src.get('release', ''))}: "
                       f"<a href='{_esc(src.get('url', ''))}'>{_esc(src.get('url', ''))}</a></li>")
    out.append("</ul>")
    assumptions = prov.get("assumptions")
    if isinstance(assumptions, str):
        try:
            import ast

            assumptions = ast.literal_eval(assumptions)
        except (ValueError, SyntaxError):
            assumptions = [assumptions]
    if assumptions:
        out.append("<h3>Assumptions where data is missing</h3><ul>")
        out += [f"<li>{_esc(a)}</li>" for a in assumptions]
        out.append("</ul>")
    return "".join(out)


def _neighbours_html(ds: xr.Dataset) -> list[str]:
    """Return the council against its statistical neighbours (table, chart) as HTML parts."""
    from simsend.publish.neighbours import RATES, neighbour_chart, neighbour_table

    out = ["<h2>Statistical neighbours</h2>"]
    table = neighbour_table(ds)
    if table is None:
        return out + ["<p>No neighbour comparison: the results are not one council with "
                      "tiers (DfE's statistical neighbours are councils').</p>"]
    year = table.attrs["year"]
    fc = "; ".join(f"January {y}: {v[0]:,.0f} ({v[1]:,.0f} to {v[2]:,.0f})"
                   for y, v in table.attrs["forecast"].items())
    out.append(f"<p>Recorded rates at January {year} (SEN2, school census, ONS) of the council,"
               " its ten statistical neighbours (DfE children's services statistical "
               "neighbours, May 2025, as in LAIT; closest first) and England. The council's "
               f"forecast EHC plans per 10,000 aged 0-25, median (90% band): {_esc(fc)}.</p>")
    shown = table[["name", "rank", "closeness", *RATES]].copy()
    shown["rank"] = shown["rank"].map(lambda v: "" if pd.isna(v) else f"SN{int(v)}")
    for c in RATES:
        shown[c] = shown[c].map(lambda v: "-" if pd.isna(v) else f"{v:,.1f}")
    shown.columns = ["name", "rank", "closeness", *RATES.values()]
    out.append(_table_html(shown, "area"))
    out.append(f"<img alt='EHC plans per 10,000 against statistical neighbours' "
               f"src='{_png(neighbour_chart(table))}'>")
    return out


def render(ds: xr.Dataset, backtest: pd.DataFrame | None = None,
           history: xr.Dataset | bool | None = True) -> str:
    """Return the report as one self-contained HTML document.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with a ``draw`` dimension (and optionally ``scenario``).
    backtest : pandas.DataFrame, optional
        A backtest score table (``simsend backtest`` CSV) to show as forecast skill.
    history : Dataset, bool or None
        Recorded history for the charts (see :func:`simsend.publish.plot.fan_chart`).

    """
    if "n_pupils" not in ds or "draw" not in ds["n_pupils"].dims:
        raise ValueError("the report needs raw results with n_pupils over draws")
    m = manifest(ds)
    if isinstance(history, bool):
        history = load_history(ds) if history else None
    names = m.get("area_names") or m.get("areas") or []
    where = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    years = [int(y) for y in ds["year"].values]
    scen = scenario_order(ds) if "scenario" in ds.dims else []
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>simsend forecast: {_esc(where)}</title><style>{_CSS}</style></head><body>",
             f"<h1>SEND demand forecast: {_esc(where)}</h1>",
             f"<p class='id'>January census {years[0]} (baseline) to {years[-1]}; "
             f"{ds.sizes['draw']} Monte Carlo draws. {_esc(identity(m))}</p>"]
    # headline
    has_tier = "tier" in ds["n_pupils"].dims
    parts.append("<h2>Headline forecast</h2>")
    if has_tier:
        st = _stock_by_tier(ds)
        if scen:
            st = st.sel(scenario=scen[0])
        spec = st.sel(tier="specialist") if "specialist" in st["tier"].values else None
        if spec is not None:
            m0, _, _ = _band(spec.sel(year=years[0]))
            m1, lo1, hi1 = _band(spec.sel(year=years[-1]))
            parts.append(
                f"<p><b>Specialist tier (EHC plans)</b>: {_fmt(m0)} at January {years[0]}; "
                f"forecast <b>{_fmt(m1)}</b> at January {years[-1]} (90% band {_fmt(lo1)} to "
                f"{_fmt(hi1)})" + (f", scenario <i>{_esc(scen[0])}</i>" if scen else "")
                + ".</p>")
        parts.append("<p class='note'>Children and young people aged 0-25 at the January "
                     "census by tier: median (90% band) over draws.</p>")
        parts.append(_table_html(headline_table(ds, scen[0] if scen else None), "tier"))
    # charts
    parts.append("<h2>Fan charts</h2><p class='note'>Black line: median; dark grey: 50% band;"
                 " light grey: 90% band; diamonds: recorded figures where the data has them."
                 + (f" Scenario <i>{_esc(scen[0])}</i>; the others are compared below."
                    if scen else "") + "</p>")
    facet = "tier" if has_tier else None
    only = {"scenario": [scen[0]]} if scen else {}  # scenarios get their own section
    fig = fan_chart(ds, facet=facet, select=only, history=history)
    parts.append(f"<img alt='fan chart by tier' src='{_png(fig)}'>")
    if has_tier and "age_group" in ds["n_pupils"].dims:
        fig = fan_chart(ds, select={"tier": "specialist", **only}, facet="age_group",
                        history=history, ncols=3)
        parts.append(f"<img alt='specialist tier by age group' src='{_png(fig)}'>")
    # scenarios
    parts.append("<h2>Scenarios</h2>")
    if len(scen) > 1:
        parts.append(f"<p>Scenarios compared with <i>{_esc(scen[0])}</i>: change in the census"
                     f" stock at January {years[-1]}, median (90% band) of the draw-by-draw "
                     "difference.</p>")
        parts.append(_table_html(scenario_table(ds), "scenario"))
        desc = m.get("scenarios")
        if isinstance(desc, dict):
            parts.append("<ul>" + "".join(f"<li><i>{_esc(k)}</i>: {_esc(v)}</li>"
                                          for k, v in desc.items()) + "</ul>")
        if has_tier:
            for s in scen[1:]:
                fig = fan_chart(ds, select={"tier": "specialist", "scenario": [scen[0], s]},
                                history=history,
                                title=f"Specialist tier: {s} against {scen[0]}")
                parts.append(f"<img alt='scenario {_esc(s)}' src='{_png(fig)}' "
                             "style='width:49%'>")
    else:
        parts.append("<p>This run has no scenarios (one baseline forecast).</p>")
    parts += _neighbours_html(ds)
    # backtest
    parts.append("<h2>Forecast skill (backtest)</h2>")
    if backtest is not None and len(backtest):
        parts.append(f"<p>Scores from a backtest ({len(backtest)} rows; the first 40 shown).</p>")
        bt = backtest.head(40).copy()
        for c in bt.columns:
            if pd.api.types.is_float_dtype(bt[c]):
                bt[c] = bt[c].map(lambda v: f"{v:.3g}")
        parts.append(_table_html(bt.set_index(bt.columns[0]), str(bt.columns[0])))
    else:
        parts.append("<p>No backtest given (<code>simsend report --backtest FILE.csv</code>"
                     " adds one).</p>")
    # sources, assumptions, manifest
    parts.append("<h2>Data sources and assumptions</h2>")
    parts.append(_sources_html(m))
    parts.append("<p class='note'>Transition rates are those of the config below (or of the"
                 " calibrated posterior it names); hand-set rates are illustrative until"
                 " calibrated.</p>")
    parts.append("<h2>Run manifest</h2>")
    parts.append(f"<pre>{_esc(format_manifest(m))}</pre>")
    if m.get("config_toml"):
        parts.append(f"<details><summary>Config ({_esc(m.get('config_sha256', ''))})"
                     f"</summary><pre>{_esc(m['config_toml'])}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def report(ds: xr.Dataset, out: str | Path, backtest: str | Path | pd.DataFrame | None = None,
           history: xr.Dataset | bool | None = True) -> Path:
    """Write the HTML report of ``ds`` to ``out`` atomically and return the path."""
    if backtest is not None and not isinstance(backtest, pd.DataFrame):
        backtest = pd.read_csv(backtest)
    text = render(ds, backtest, history)
    return atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
