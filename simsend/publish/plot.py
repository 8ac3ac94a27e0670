"""Fan charts of a run's results: median, 50% and 90% bands, recorded history, scenarios.

Bands are computed from the draws (:func:`simsend.results.summary.summary` quantiles) after summing
the draws over every marginal a chart does not show, so a panel's band is the band of its
total, not a sum of bands.  Charts are drawn for print: grey fills and black lines, a hatched
band and a dashed line for a scenario against its baseline, and the run's identity (version,
config hash, seed, draws) in the footer.  No display is needed (matplotlib's Agg backend).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from simsend.config import parse
from simsend.data import DataSpec, load_baseline
from simsend.data.configured import load_config_baseline
from simsend.io import atomic_write
from simsend.results.manifest import identity, manifest
from simsend.results.summary import summary

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
FORMATS = ("png", "svg")
_NOT_MARGINAL = ("draw", "year", "scenario", "chain")
#: Line style and band hatch of successive scenarios (the first is the baseline).
_STYLES = ({"ls": "-", "hatch": None, "fill": ("0.85", "0.65"), "marker": None},
           {"ls": "--", "hatch": ("....", "////"), "fill": None, "marker": "o"},
           {"ls": ":", "hatch": ("\\\\\\\\", "xxxx"), "fill": None, "marker": "s"})
_UNITS = {"1": "children and young people", "1 year-1": "children and young people per year"}


class PlotError(ValueError):
    """A chart that cannot be drawn from these results (unknown variable, dim or value)."""


def _labels(coord) -> np.ndarray:
    """Return a coordinate's labels as a plain unicode array (whatever its string dtype)."""
    return np.array([str(v) for v in coord.values], dtype=str)


def scenario_order(ds: xr.Dataset | xr.DataArray) -> list[str]:
    """Return the scenario names with the baseline first (``baseline``, else the first one)."""
    names = [str(s) for s in ds["scenario"].values]
    return sorted(names, key=lambda n: n != "baseline")


def _parse_select(ds: xr.Dataset, variable: str,
                  select: Mapping[str, Any] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for dim, val in (select or {}).items():
        if dim == "scenario" and "scenario" in ds[variable].dims:
            pass
        elif dim not in ds[variable].dims or dim in _NOT_MARGINAL:
            raise PlotError(f"{variable} has no dimension {dim!r}; expected one of "
                            f"{', '.join(d for d in ds[variable].dims if d not in _NOT_MARGINAL)}")
        vals = [x for v in (val if isinstance(val, list | tuple) else [val])
                for x in str(v).split("+")]
        have = [str(v) for v in ds[dim].values]
        for v in vals:
            if str(v) not in have:
                raise PlotError(f"{dim}={v!r} not in the results; expected one of "
                                f"{', '.join(have)}")
        out[dim] = [str(v) for v in vals]
    return out


def panel_draws(ds: xr.Dataset, variable: str, facet: str | None = None,
                select: Mapping[str, Any] | None = None) -> xr.DataArray:
    """Sum a variable's draws over everything a chart does not show.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with a ``draw`` dimension.
    variable : str
        Variable to chart.
    facet : str, optional
        Marginal shown as small multiples (kept).
    select : mapping, optional
        ``{dim: value}`` (or a list of values, or ``"a+b"``, which are summed) to restrict to.

    Returns
    -------
    xarray.DataArray
        Dims ``(draw, year[, scenario][, facet])``.

    """
    if variable not in ds:
        raise PlotError(f"unknown variable {variable!r}; expected one of "
                        f"{', '.join(v for v in ds.data_vars if 'year' in ds[v].dims)}")
    if "draw" not in ds[variable].dims:
        raise PlotError("results have no 'draw' dimension (plot the raw results file)")
    sel = _parse_select(ds, variable, select)
    da = ds[variable].astype(np.float64)
    if "scenario" in sel:  # scenarios are chosen, never summed
        da = da.assign_coords(scenario=_labels(da["scenario"])).sel(
            scenario=sel.pop("scenario"))
    for dim, vals in sel.items():
        da = da.assign_coords({dim: _labels(da[dim])}).sel({dim: vals})
    if facet is not None and (facet not in da.dims or facet in _NOT_MARGINAL):
        raise PlotError(f"{variable} has no dimension {facet!r} to plot by")
    drop = [d for d in da.dims if d not in _NOT_MARGINAL and d != facet]
    return da.sum(drop, skipna=False) if drop else da


def history_for(history: xr.Dataset | None, variable: str, select: Mapping[str, list[str]],
                facet: str | None, facet_value: str | None) -> tuple[xr.DataArray, str] | None:
    """Return the recorded series comparable with a panel, with its label, or None.

    Comparable series: EHC plans (SEN2) for the specialist tier's census stock, in total, by
    age group or by placement; pupils on SEN support (school census) for the targeted and
    targeted-plus tiers together.  Any other selection (need, single ages...) has no record.
    """
    if history is None or variable != "n_pupils":
        return None
    sel = {k: list(v) for k, v in select.items()}
    if facet is not None and facet_value is not None:
        sel[facet] = [facet_value]
    tiers = set(sel.pop("tier", []))
    areas = sel.pop("area", None)
    h = None
    if tiers == {"specialist"}:
        if not sel:
            h, label = history["ehcp"].sum("age_group", min_count=1), "EHC plans (SEN2)"
        elif set(sel) == {"age_group"} and "age_group" in history["ehcp"].dims:
            h = history["ehcp"].sel(age_group=sel["age_group"]).sum("age_group", min_count=1)
            label = "EHC plans (SEN2)"
        elif set(sel) == {"placement"}:
            h = history["ehcp_placement"].sel(placement=sel["placement"]).sum(
                "placement", min_count=1)
            label = "EHC plans by placement (SEN2)"
    elif tiers == {"targeted", "targeted_plus"} and not sel:
        h, label = history["sen_support"], "SEN support (school census)"
    if h is None:
        return None
    if areas is not None:
        keep = [a for a in areas if a in [str(x) for x in h["area"].values]]
        if not keep:
            return None
        h = h.sel(area=keep)
    h = h.sum("area", min_count=1)
    h = h.dropna("year")
    return (h, label) if h.size else None


def load_history(ds: xr.Dataset) -> xr.Dataset | None:
    """Return the recorded history for a run's areas, from the config stored in its attrs.

    None when the results carry no config, or its data cannot be loaded here.
    """
    text = ds.attrs.get("config_toml")
    areas = json.loads(ds.attrs["areas"]) if ds.attrs.get("areas") else None
    if text:
        try:
            cfg = parse(str(text), str(ds.attrs.get("config_path", "results.toml")))
            if areas:
                cfg = cfg.replace_data(areas=tuple(areas))
            return load_config_baseline(cfg).history
        except Exception:  # noqa: BLE001 - history is optional decoration; the chart goes on
            pass
    # The config may not parse here (e.g. it extends a file by a relative path): the built-in
    # data needs only the areas and the baseline year.
    m = manifest(ds)
    prov = m.get("data_provenance")
    if not areas or not isinstance(prov, dict) or prov.get("source") != "builtin":
        return None
    try:
        spec = DataSpec(source="builtin", areas=tuple(areas),
                        baseline_year=int(ds["year"].values[0]))
        return load_baseline(spec).history
    except Exception:  # noqa: BLE001
        return None


def _title(variable: str, ds: xr.Dataset, select: Mapping[str, list[str]]) -> str:
    long = ds[variable].attrs.get("long_name", variable)
    where = ", ".join(f"{k}={'+'.join(v)}" for k, v in select.items())
    return f"{variable}: {long}" + (f" [{where}]" if where else "")


def _area_label(ds: xr.Dataset, select: Mapping[str, list[str]]) -> str:
    m = manifest(ds)
    codes, names = m.get("areas") or [], m.get("area_names") or []
    lookup = dict(zip(codes, names, strict=False))
    chosen = select.get("area") or codes
    shown = [lookup.get(a, a) for a in chosen]
    return ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def fan_chart(ds: xr.Dataset, variable: str = "n_pupils", facet: str | None = None,
              select: Mapping[str, Any] | None = None, history: xr.Dataset | bool | None = True,
              title: str | None = None, ncols: int = 2):
    """Draw a fan chart (or small multiples) of one variable.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with a ``draw`` dimension; an optional ``scenario`` dimension is drawn as
        overlaid fans (the first scenario shaded grey, the others hatched and dashed).
    variable : str
        Variable to chart (default ``n_pupils``).
    facet : str, optional
        Marginal to draw as small multiples (``tier``, ``need``, ``age_group``, ``area`` ...).
    select : mapping, optional
        ``{dim: value}`` restrictions; several values (list or ``"a+b"``) are summed.
    history : Dataset, bool or None
        Recorded history to plot as points: a Dataset like ``Baseline.history``, ``True`` to
        load it from the config in the results' attrs, ``False``/``None`` for none.
    title : str, optional
        Chart title (default from the variable's long name and the selection).
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = _parse_select(ds, variable, select)
    sel.pop("scenario", None)
    da = panel_draws(ds, variable, facet, select)
    if isinstance(history, bool):
        history = load_history(ds) if history else None
    facets = [None] if facet is None else [str(v) for v in da[facet].values]
    if facet is not None:
        da = da.assign_coords({facet: facets})
        # structural zeros (e.g. need 'none' outside the universal tier) get no panel
        nonzero = (da.fillna(0) != 0).any([d for d in da.dims if d != facet])
        facets = [f for f, keep in zip(facets, nonzero.values, strict=True) if keep] or facets
        da = da.sel({facet: facets})
    n = len(facets)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    import textwrap

    scen_all = scenario_order(da)[:len(_STYLES)] if "scenario" in da.dims else []

    width = 5.2 * ncols if ncols > 1 else 7.5
    where = _area_label(ds, sel)
    head = textwrap.fill(title or _title(variable, ds, sel), width=int(12.5 * width))
    head += f"\n{where}" if facet else ""
    n_leg = 3 * (len(scen_all) if scen_all else 1) + 1
    leg_rows = int(np.ceil(n_leg / (4 if not scen_all else 3)))
    extra = 0.17 * max(0, leg_rows - 1)
    height = (3.4 if ncols > 1 else 4.2) * nrows + 1.3 + 0.2 * head.count("\n") + extra
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    q = summary(da.to_dataset(name="v"), QUANTILES)["v"]
    scen = scenario_order(da) if "scenario" in da.dims else [None]
    dropped = len(scen) - len(_STYLES)
    scen = scen[:len(_STYLES)]
    years = da["year"].values
    flows = ds[variable].attrs.get("units") == "1 year-1"
    hist_label = None
    for i, fv in enumerate(facets):
        ax = axes[i // ncols][i % ncols]
        for k, s in enumerate(scen):
            sty = _STYLES[k]
            qq = q if s is None else q.sel(scenario=s)
            if fv is not None:
                qq = qq.sel({facet: fv})
            band = {p: qq.sel(quantile=p).values for p in QUANTILES}
            ok = np.isfinite(band[0.5])
            name = "" if s is None else f"{s}: "
            if sty["fill"] is not None:
                ax.fill_between(years[ok], band[0.05][ok], band[0.95][ok], color=sty["fill"][0],
                                lw=0, label=f"{name}90% band")
                ax.fill_between(years[ok], band[0.25][ok], band[0.75][ok], color=sty["fill"][1],
                                lw=0, label=f"{name}50% band")
            else:
                ax.fill_between(years[ok], band[0.05][ok], band[0.95][ok], facecolor="none",
                                edgecolor="0.35", hatch=sty["hatch"][0], lw=0.6,
                                label=f"{name}90% band")
                ax.fill_between(years[ok], band[0.25][ok], band[0.75][ok], facecolor="none",
                                edgecolor="0.1", hatch=sty["hatch"][1], lw=0.6,
                                label=f"{name}50% band")
            ax.plot(years[ok], band[0.5][ok], color="black", ls=sty["ls"], lw=1.8,
                    marker=sty["marker"], ms=3.5, label=f"{name}median")
        rec = history_for(history if isinstance(history, xr.Dataset) else None, variable,
                          sel, facet, fv)
        if rec is not None:
            h, hist_label = rec
            ax.plot(h["year"].values, h.values, ls="none", marker="D", ms=4.5, mfc="white",
                    mec="black", mew=1.2, label=f"recorded: {hist_label}")
        ax.set_title(f"{facet} = {fv}" if fv is not None else _area_label(ds, sel), fontsize=10)
        ax.grid(True, color="0.9", lw=0.6)
        ax.set_axisbelow(True)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        if i % ncols == 0:
            ax.set_ylabel(_UNITS.get(ds[variable].attrs.get("units", ""), "count")
                          + ("\n(year to January census)" if flows else "\n(January census)"),
                          fontsize=8.5)
        ax.tick_params(labelsize=8)
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    handles, labels = [], []
    for ax in axes.ravel():
        for h_, l_ in zip(*ax.get_legend_handles_labels(), strict=True):
            if l_ not in labels:
                handles.append(h_)
                labels.append(l_)
    ncol = min(4 if scen == [None] else 3, len(labels)) or 1
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.42 / height))
    fig.suptitle(head, fontsize=11)
    ndraw = ds.sizes.get("draw", 0)
    foot = (f"Bands: 50% and 90% intervals over {ndraw} Monte Carlo draws; line: median."
            + (" Points: recorded figures." if hist_label else "")
            + (f" {dropped} more scenario(s) not shown: --select scenario=a+b chooses."
               if dropped > 0 else "")
            + "\n" + identity(ds))
    fig.text(0.01, 0.005, foot, fontsize=6.5, color="0.2", va="bottom", ha="left")
    fig.tight_layout(rect=(0, (0.95 + extra) / height, 1,
                           1 - (0.2 + 0.2 * head.count("\n")) / height))
    return fig


def save(fig, path: str | Path, ds: xr.Dataset | None = None, dpi: int = 110) -> Path:
    """Save a chart as PNG or SVG (by suffix), atomically, with the run's identity as metadata."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise PlotError(f"unknown chart format {fmt!r}; expected .png or .svg")
    meta = {"Title": "simsend fan chart", "Description": identity(ds)} if ds is not None else {}
    if fmt == "svg":
        meta = {"Title": meta.get("Title", ""), "Description": meta.get("Description", "")}
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta))


def plot(ds: xr.Dataset, out: str | Path, variable: str = "n_pupils",
         facet: str | None = None, select: Mapping[str, Any] | None = None,
         formats: Sequence[str] = ("png",), history: xr.Dataset | bool | None = True
         ) -> list[Path]:
    """Draw one fan chart and write it in each format; return the paths written.

    ``out`` is the path without its suffix (``charts/n_pupils`` -> ``charts/n_pupils.png``).
    """
    import matplotlib.pyplot as plt

    fig = fan_chart(ds, variable, facet=facet, select=select, history=history)
    try:
        base = Path(out)
        base = base.with_suffix("") if base.suffix.lower().lstrip(".") in FORMATS else base
        return [save(fig, base.with_name(base.name + f".{f}"), ds) for f in formats]
    finally:
        plt.close(fig)
