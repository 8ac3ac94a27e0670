"""Tidy long tables of a run's bands for Excel, Power BI and R (CSV, Parquet, xlsx).

One row per (``scenario`` when the results have one, ``variable``, ``year``, each marginal,
``statistic``) with the ``value``.  Statistics are the mean and quantiles over Monte Carlo draws;
each marginal also has a ``total`` level (the sum over that dimension, with its bands computed
from the summed draws, so a total's quantile is not the sum of its cells' quantiles).

Disclosure control (:mod:`simsend.publish.disclosure`) suppresses small counts (``status = "c"``,
``value`` empty) and can round to a base.  It is applied per (variable, scenario, year) table:
a cell is suppressed if any of its statistics lies strictly between 0 and the threshold, and
secondary suppression is decided on the cell means (which add up exactly), treating every
total as published.  By default it is on (threshold 5) when the table is *area-level*: it keeps
the ``area`` dimension and holds an area other than England (``E92000001``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from simsend.io import atomic_write
from simsend.publish.disclosure import SUPPRESSED, protect, round_to
from simsend.results.manifest import manifest
from simsend.results.summary import DEFAULT_QUANTILES

FORMATS = ("csv", "parquet", "xlsx")
TOTAL = "total"
ENGLAND = "E92000001"
#: Default primary-suppression threshold for area-level exports.
DEFAULT_SUPPRESS = 5
_NOT_MARGINAL = ("draw", "year", "scenario", "chain")
_XLSX_ROWS = 1_048_575


class ExportError(ValueError):
    """A user asked for an export that cannot be made (unknown variable or dimension...)."""


@dataclass(frozen=True)
class Disclosure:
    """Disclosure control settings of an export.

    Attributes
    ----------
    suppress : float
        Primary suppression threshold: values ``0 < v < suppress`` are withheld (0 = off).
    round : float
        Round published values to the nearest multiple (0 = off).
    reason : str
        Why these settings apply (default or asked for).

    """

    suppress: float = 0
    round: float = 0
    reason: str = ""

    @property
    def active(self) -> bool:
        """Whether any control is applied."""
        return self.suppress > 0 or self.round > 0

    def describe(self) -> str:
        """Return one sentence describing the control, for README sheets and manifests."""
        if not self.active:
            return f"No disclosure control applied ({self.reason})."
        parts = []
        if self.suppress > 0:
            parts.append(f"values strictly between 0 and {self.suppress:g} suppressed (status "
                         f"'{SUPPRESSED}', value empty), with secondary suppression so that no "
                         "suppressed value can be recovered from the totals")
        if self.round > 0:
            parts.append(f"published values rounded to the nearest {self.round:g} (halves up); "
                         "rounded cells need not add up to their rounded totals")
        return "; ".join(parts).capitalize() + f" ({self.reason})."


@dataclass
class Export:
    """A tidy export: the table, its disclosure settings and the run's manifest."""

    table: pd.DataFrame
    disclosure: Disclosure
    manifest: dict[str, Any] = field(default_factory=dict)
    variables: tuple[str, ...] = ()
    units: dict[str, str] = field(default_factory=dict)
    long_names: dict[str, str] = field(default_factory=dict)


def marginals(ds: xr.Dataset, variable: str) -> list[str]:
    """Return the marginal dimensions of a results variable (not draw, year or scenario)."""
    return [d for d in ds[variable].dims if d not in _NOT_MARGINAL]


def export_variables(ds: xr.Dataset) -> list[str]:
    """Return the variables with ``draw`` and ``year`` dims (those an export can hold)."""
    return [v for v, da in ds.data_vars.items() if {"draw", "year"} <= set(da.dims)]


def is_area_level(ds: xr.Dataset, by: Sequence[str] | None = None) -> bool:
    """Whether an export keeps areas below England (disclosure control on by default)."""
    if "area" not in ds.dims or (by is not None and "area" not in by):
        return False
    return any(str(a) != ENGLAND for a in ds["area"].values)


def default_disclosure(ds: xr.Dataset, by: Sequence[str] | None = None,
                       suppress: float | None = None, round_base: float | None = None
                       ) -> Disclosure:
    """Resolve the disclosure settings of an export.

    Explicit ``suppress`` / ``round_base`` win; otherwise suppression at
    :data:`DEFAULT_SUPPRESS` is on for area-level tables (:func:`is_area_level`) and off for
    England-only ones; rounding is off unless asked for.
    """
    area = is_area_level(ds, by)
    if suppress is None:
        suppress = DEFAULT_SUPPRESS if area else 0
        why = ("default for area-level tables" if area else
               "default for England-level tables")
    else:
        why = "as requested"
    rb = 0 if round_base is None else round_base
    if suppress < 0 or rb < 0:
        raise ExportError("--suppress and --round must be >= 0")
    return Disclosure(float(suppress), float(rb), why)


def _labels(coord) -> np.ndarray:
    """Return a coordinate's labels as a plain unicode array (whatever its string dtype)."""
    return np.array([str(v) for v in coord.values], dtype=str)


def _label(q: float) -> str:
    pct = q * 100
    return f"p{pct:02.0f}" if abs(pct - round(pct)) < 1e-9 else f"p{pct:g}"


def _with_totals(da: xr.DataArray, dims: Sequence[str]) -> tuple[xr.DataArray, list[bool]]:
    """Append a ``total`` entry to every marginal dim longer than 1 (sums over draws' values)."""
    has = []
    for d in dims:
        if da.sizes[d] > 1:
            tot = da.sum(d, skipna=False).expand_dims({d: [TOTAL]})
            da = da.assign_coords({d: _labels(da[d])})
            da = xr.concat([da, tot], dim=d)
            has.append(True)
        else:
            da = da.assign_coords({d: _labels(da[d])})
            has.append(False)
    return da, has


def _variable_table(ds: xr.Dataset, v: str, by: Sequence[str] | None,
                    quantiles: Sequence[float], disc: Disclosure,
                    totals: bool) -> pd.DataFrame:
    da = ds[v].astype(np.float64)
    dims = marginals(ds, v)
    if by is not None:
        drop = [d for d in dims if d not in by]
        if drop:
            da = da.sum(drop, skipna=False)
        dims = [d for d in dims if d in by]
    if v.startswith("rel_"):  # a ratio (e.g. workforce coverage): its sum means nothing
        da, has_total = da.assign_coords({d: _labels(da[d]) for d in dims}), [False] * len(dims)
    else:
        da, has_total = _with_totals(da, dims)
    qs = [float(q) for q in quantiles]
    stats = xr.concat([da.mean("draw")] + [da.quantile(q, dim="draw", skipna=False)
                                          .drop_vars("quantile") for q in qs],
                      dim=pd.Index(["mean"] + [_label(q) for q in qs], name="statistic"))
    lead = [d for d in ("scenario",) if d in stats.dims]
    stats = stats.transpose("statistic", "year", *lead, *dims)
    vals = stats.values.copy()
    status = np.zeros(vals.shape[1:], bool)
    if disc.suppress > 0 and v.startswith("n_"):  # counts of people only (not hours, ratios)
        for idx in np.ndindex(*vals.shape[1:2 + len(lead)]):
            table = vals[(slice(None), *idx)]
            primary = ((table > 0) & (table < disc.suppress)).any(axis=0)
            if primary.any():
                mask = protect(table[0], disc.suppress, has_total, primary=primary)
                status[idx] = mask
    vals = np.where(status[None], np.nan, vals)
    if disc.round > 0:
        vals = round_to(vals, disc.round)
    out = stats.copy(data=vals).rename("value")
    df = out.to_dataframe().reset_index()
    st = xr.DataArray(status, dims=stats.dims[1:], coords={d: stats[d] for d in stats.dims[1:]})
    df["status"] = np.where(np.broadcast_to(st.values[None], vals.shape).ravel(), SUPPRESSED, "")
    if not totals:
        for d in dims:
            df = df[df[d] != TOTAL]
    keep = df["value"].notna() | (df["status"] == SUPPRESSED)
    df = df[keep]
    qmap = {"mean": np.nan, **{_label(q): q for q in qs}}
    df.insert(0, "variable", v)
    df["quantile"] = df["statistic"].map(qmap).astype(float)
    df["units"] = ds[v].attrs.get("units", "")
    return df


def tidy(ds: xr.Dataset, variables: Sequence[str] | None = None,
         by: Sequence[str] | None = None, quantiles: Sequence[float] = DEFAULT_QUANTILES,
         suppress: float | None = None, round_base: float | None = None,
         totals: bool = True) -> Export:
    """Build the tidy long table of a run's bands, with disclosure control.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with a ``draw`` dimension (as written by ``simsend run``).
    variables : sequence of str, optional
        Variables to export (default: every variable over draw and year).
    by : sequence of str, optional
        Marginals to keep; the others are summed over (on the draws, before the bands).
    quantiles : sequence of float
        Quantiles to report beside the mean.
    suppress, round_base : float, optional
        Disclosure control (see :func:`default_disclosure`).
    totals : bool
        Include the ``total`` rows of each marginal.

    Returns
    -------
    Export
        Columns: ``scenario`` (when the results have one), ``variable``, ``year``, each
        marginal, ``area_name`` (with ``area``), ``statistic`` (``mean``, ``p05`` ...),
        ``quantile`` (empty for the mean), ``value``, ``status`` (``c`` = suppressed) and
        ``units``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"n_pupils": (("draw", "year", "tier"),
    ...                               np.arange(12.0).reshape(3, 2, 2))},
    ...                 coords={"year": [2022, 2023], "tier": ["a", "b"]})
    >>> t = tidy(ds, quantiles=[0.5]).table
    >>> t[(t.year == 2023) & (t.statistic == "p50")][["tier", "value"]].values.tolist()
    [['a', 6.0], ['b', 7.0], ['total', 13.0]]

    """
    if "draw" not in ds.dims:
        raise ExportError("results have no 'draw' dimension (export the raw results file)")
    avail = export_variables(ds)
    variables = list(avail if variables is None else variables)
    for v in variables:
        if v not in avail:
            raise ExportError(f"unknown variable {v!r}; expected one of {', '.join(avail)}")
    if by is not None:
        by = list(by)
        known = {d for v in variables for d in marginals(ds, v)}
        for d in by:
            if d not in known:
                raise ExportError(f"unknown dimension {d!r} in --by; expected one of "
                                  f"{', '.join(sorted(known))}")
    disc = default_disclosure(ds, by, suppress, round_base)
    frames = [_variable_table(ds, v, by, quantiles, disc, totals) for v in variables]
    df = pd.concat(frames, ignore_index=True, sort=False)
    dims_order = []
    for v in variables:
        for d in marginals(ds, v):
            if (by is None or d in by) and d not in dims_order:
                dims_order.append(d)
    if "area" in df.columns:
        names = manifest(ds).get("area_names")
        codes = [str(a) for a in ds["area"].values]
        lookup = dict(zip(codes, names, strict=False)) if isinstance(names, list) else {}
        lookup[TOTAL] = TOTAL
        df["area_name"] = df["area"].map(lookup)
    lead = ["scenario"] if "scenario" in df.columns else []
    cols = [*lead, "variable", "year", *dims_order,
            *(["area_name"] if "area_name" in df.columns else []),
            "statistic", "quantile", "value", "status", "units"]
    df = df[cols]
    for d in dims_order:
        df[d] = df[d].astype(object).where(df[d].notna(), "")
    df["year"] = df["year"].astype(int)
    return Export(df.reset_index(drop=True), disc, manifest(ds), tuple(variables),
                  {v: ds[v].attrs.get("units", "") for v in variables},
                  {v: ds[v].attrs.get("long_name", "") for v in variables})


COLUMNS = {
    "scenario": "scenario name (only when the results compare scenarios)",
    "variable": "results variable (n_pupils = January census stock; n_identified, n_escalated, "
                "n_deescalated, n_left, n_to_specialist, n_aged_out, n_transitions and the "
                "pipeline's n_* = flows during the year to that census)",
    "year": "January census year",
    "tier / age_group / need / area / placement / tier_from ...": "one column per marginal; "
                                                                "'total' = summed over it",
    "area_name": "the area's name",
    "statistic": "mean, or pNN = the NN% quantile over Monte Carlo draws",
    "quantile": "the quantile as a number (empty for the mean)",
    "value": "the statistic (empty when suppressed)",
    "status": "'c' = suppressed for disclosure control; empty otherwise",
    "units": "1 = people; 1 year-1 = people per year",
}


def _readme(exp: Export) -> pd.DataFrame:
    m = exp.manifest
    rows = [("title", "simsend forecast export"),
            ("what", "Forecast bands from a Monte Carlo simulation; every row is one statistic "
                     "of one cell. Rows with 'total' in a marginal column are sums over that "
                     "dimension: filter them out before adding cells up."),
            ("disclosure control", exp.disclosure.describe()),
            ("config sha256", m.get("config_sha256", "")),
            ("root seed", m.get("root_seed", "")),
            ("simsend version", m.get("simsend_version", "")),
            ("created", m.get("created_at", ""))]
    rows += [(f"column: {k}", v) for k, v in COLUMNS.items()]
    rows += [(f"variable: {v}", f"{exp.long_names.get(v, '')} [{exp.units.get(v, '')}]")
             for v in exp.variables]
    return pd.DataFrame(rows, columns=["item", "description"])


def manifest_rows(m: dict[str, Any], disclosure: Disclosure | None = None) -> pd.DataFrame:
    """Flatten a manifest into (key, value) rows for a sheet or a sidecar."""
    rows = []
    for k, v in m.items():
        if k == "param_draw":
            continue
        rows.append((k, v if isinstance(v, str | int | float) else json.dumps(v)))
    if disclosure is not None:
        rows.append(("disclosure_control", disclosure.describe()))
    pd_ = m.get("param_draw", {})
    rows += [(f"param_draw[{d}]", p) for d, p in pd_.items()]
    return pd.DataFrame(rows, columns=["key", "value"])


def _sheet_name(v: str, used: set[str]) -> str:
    name = v[:31]
    k = 1
    while name in used:
        name = f"{v[:28]}_{k}"
        k += 1
    used.add(name)
    return name


def manifest_json(exp: Export) -> str:
    """Return the export's manifest (run manifest plus disclosure settings) as JSON text."""
    return json.dumps({**exp.manifest, "disclosure_control": exp.disclosure.describe(),
                       "columns": list(exp.table.columns)}, indent=1, default=str)


def write(exp: Export, path: str | Path, fmt: str | None = None) -> list[Path]:
    """Write an export as CSV, Parquet or xlsx, atomically; return the paths written.

    CSV gets a sidecar ``<name>.manifest.json``; Parquet carries the manifest in its schema
    metadata (key ``simsend_manifest``); xlsx has a README sheet, one sheet per variable and a
    manifest sheet.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "csv":
        side = path.with_name(path.stem + ".manifest.json")
        atomic_write(side, lambda t: Path(t).write_text(manifest_json(exp)))
        return [atomic_write(path, lambda t: exp.table.to_csv(t, index=False)), side]
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        def _pq(t):
            table = pa.Table.from_pandas(exp.table, preserve_index=False)
            meta = dict(table.schema.metadata or {})
            meta[b"simsend_manifest"] = manifest_json(exp).encode()
            pq.write_table(table.replace_schema_metadata(meta), t)

        return [atomic_write(path, _pq)]
    for v in exp.variables:
        n = int((exp.table["variable"] == v).sum())
        if n > _XLSX_ROWS:
            raise ExportError(f"{v}: {n} rows exceed an Excel sheet's {_XLSX_ROWS}; use --by to "
                              "keep fewer marginals, or CSV/Parquet")

    def _xlsx(t):
        used: set[str] = {"README", "manifest"}
        with pd.ExcelWriter(t, engine="openpyxl") as xw:
            _readme(exp).to_excel(xw, sheet_name="README", index=False)
            for v in exp.variables:
                part = exp.table[exp.table["variable"] == v].dropna(axis=1, how="all")
                part = part.loc[:, (part != "").any(axis=0) | part.columns.isin(["status"])]
                part.to_excel(xw, sheet_name=_sheet_name(v, used), index=False)
            manifest_rows(exp.manifest, exp.disclosure).to_excel(xw, sheet_name="manifest",
                                                                 index=False)

    return [atomic_write(path, _xlsx)]


def export(ds: xr.Dataset, path: str | Path, fmt: str | None = None, **kwargs) -> list[Path]:
    """Build the tidy table of ``ds`` (see :func:`tidy`) and write it (see :func:`write`)."""
    return write(tidy(ds, **kwargs), path, fmt)
