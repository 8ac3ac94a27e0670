"""Tidy long tables of a run's bands for Excel, Power BI and R (CSV, Parquet, xlsx).

One row per (``scenario`` when the results have one, ``variable``, ``year``, each marginal,
``statistic``) with the ``value``.  Statistics are the mean and quantiles over Monte Carlo draws;
each marginal also has a ``total`` level (the sum over that dimension, with its bands computed
from the summed draws, so a total's quantile is not the sum of its cells' quantiles).

Which marginals: ``by`` keeps some and sums the draws over the others.  Its default
(:func:`default_by`) is every marginal for a single run, and ``tier`` (with ``area`` when the
results hold several areas) for results with a ``scenario`` dimension, whose every-marginal
table would be scenarios x statistics x every combination of the marginals with their totals.

Size: before a row is built, :func:`plan` estimates the rows (the product of the kept
marginals' sizes with their totals, times years, scenarios, statistics and variables) and the
memory they take as a table (:attr:`Plan.nbytes`); :func:`tidy` and :func:`export` refuse one
over ``max_bytes`` (:data:`DEFAULT_MAX_BYTES`, 2 GiB) with a message that says how to shrink it.
CSV and Parquet are written a variable (and, for big variables, a scenario) at a time, so
memory does not grow with the table.

Disclosure control (:mod:`simsend.publish.disclosure`) suppresses small counts (``status = "c"``,
``value`` empty) and can round to a base.  It is applied per (variable, scenario, year) table:
a cell is suppressed if any of its statistics lies strictly between 0 and the threshold, and
secondary suppression is decided on the cell means (which add up exactly), treating every
total as published.  Whether it is on by default is decided by what the rows describe, in one
place (:func:`simsend.publish.disclosure.default_suppression`): on (threshold 5) for every
results file whose areas include anything below England, whatever ``by`` keeps; off for
England-only results.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from simsend.io import atomic_write
from simsend.publish.disclosure import (
    DEFAULT_SUPPRESS,
    ENGLAND,
    SUPPRESSED,
    default_suppression,
    protect,
    results_areas,
    round_to,
)
from simsend.results.manifest import manifest
from simsend.results.summary import DEFAULT_QUANTILES

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_SUPPRESS", "ENGLAND", "Disclosure", "Export",
           "ExportError", "Plan", "default_by", "default_disclosure", "export",
           "export_variables", "marginals", "plan", "tidy", "write", "write_plan"]

FORMATS = ("csv", "parquet", "xlsx")
TOTAL = "total"
#: ``by`` value that keeps every marginal (``--by all``).
ALL = "all"
#: Largest table an export builds or writes by default: 2 GiB as an in-memory table.
DEFAULT_MAX_BYTES = 2 * 2**30
#: Bytes one field (one column of one row) takes in a pandas table, about: 8 for numbers,
#: a pointer plus a share of a Python string for the labels; rounded up.
BYTES_PER_FIELD = 32
_NOT_MARGINAL = ("draw", "year", "scenario", "chain")
_XLSX_ROWS = 1_048_575
#: A variable with more rows than this is built and written one scenario at a time.
_CHUNK_ROWS = 500_000
_FLOAT_COLUMNS = ("quantile", "value")


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
        Why these settings apply (the default rule and its grounds, or asked for).

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
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + f" ({self.reason})."


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


def default_by(ds: xr.Dataset) -> list[str] | None:
    """Return the marginals an export keeps when none are asked for (``None`` = every one).

    Results with a ``scenario`` dimension keep ``tier``, and ``area`` when they hold several
    areas: scenario x year x tier (x area) stays a table a person can read, where every
    marginal with its totals would be millions of rows.  A single run keeps every marginal.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"n_pupils": (("scenario", "draw", "year", "tier", "need"),
    ...                               np.zeros((2, 1, 1, 2, 3)))})
    >>> default_by(ds), default_by(ds.isel(scenario=0))
    (['tier'], None)

    """
    if "scenario" not in ds.dims:
        return None
    known = {d for v in export_variables(ds) for d in marginals(ds, v)}
    keep = ["tier"] + (["area"] if ds.sizes.get("area", 1) > 1 else [])
    return [d for d in keep if d in known]


def default_disclosure(ds: xr.Dataset, suppress: float | None = None,
                       round_base: float | None = None) -> Disclosure:
    """Resolve the disclosure settings of an export of ``ds``.

    Explicit ``suppress`` / ``round_base`` win; otherwise the default threshold comes from the
    areas the results describe, whatever marginals the table keeps
    (:func:`simsend.publish.disclosure.default_suppression`: on for anything below England,
    off for England-only results); rounding is off unless asked for.
    """
    codes, source = results_areas(ds)
    default, why = default_suppression(codes, source)
    if suppress is None:
        suppress = default
    else:
        why = ("as requested" if suppress >= default else
               f"as requested, below the default of {default:g}, {why}")
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


@dataclass(frozen=True)
class Plan:
    """What an export will hold, resolved and sized before any row is built.

    Attributes
    ----------
    ds : xarray.Dataset
        The results.
    variables : tuple of str
        Variables exported, in order.
    by : tuple of str or None
        Marginals kept (``None`` = every marginal).
    quantiles : tuple of float
        Quantiles reported beside the mean.
    disclosure : Disclosure
        Disclosure control applied.
    totals : bool
        Whether the ``total`` rows are kept.
    columns : tuple of str
        Columns of the table, in order.
    rows : int
        Rows the table will have at most (flows have none at the baseline year).
    sizes : dict
        Per kept marginal of the largest variable, its levels with the total.

    """

    ds: xr.Dataset
    variables: tuple[str, ...]
    by: tuple[str, ...] | None
    quantiles: tuple[float, ...]
    disclosure: Disclosure
    totals: bool
    columns: tuple[str, ...]
    rows: int
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Estimated memory of the whole table in pandas (rows x columns x bytes a field)."""
        return self.rows * len(self.columns) * BYTES_PER_FIELD

    def check(self, max_bytes: float | None = DEFAULT_MAX_BYTES) -> None:
        """Refuse a table over ``max_bytes`` (``None`` = no limit) with how to shrink it.

        Raises
        ------
        ExportError
            One sentence with the estimate and the options that shrink it.

        """
        if max_bytes is None or self.nbytes <= max_bytes:
            return
        scen = self.ds.sizes.get("scenario", 1)
        cells = " x ".join(f"{d} {n}" for d, n in self.sizes.items()) or "no marginal"
        kept = ",".join(self.by) if self.by is not None else "every marginal"
        raise ExportError(
            f"the export would have {self.rows:,} rows, about {self.nbytes / 2**30:,.1f} GiB "
            f"as a table, over the {max_bytes / 2**30:g} GiB limit ({len(self.variables)} "
            f"variables x {scen} scenario{'s' if scen > 1 else ''} x "
            f"{self.ds.sizes['year']} years x {1 + len(self.quantiles)} statistics x up to "
            f"{cells} with totals); shrink it with --by (keep fewer marginals, e.g. --by "
            f"tier,area; now {kept}), --variable (fewer variables; now {len(self.variables)}), "
            f"fewer --quantile values (now {len(self.quantiles)}) or --no-totals, or raise "
            "--max-gib")

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Yield the table a variable at a time (a scenario at a time for big variables).

        Every chunk has :attr:`columns`; disclosure control is applied within each
        (variable, scenario, year) table, which a chunk never splits.
        """
        names = manifest(self.ds).get("area_names")
        codes = [str(a) for a in self.ds["area"].values] if "area" in self.ds.coords else []
        lookup = dict(zip(codes, names, strict=False)) if isinstance(names, list) else {}
        lookup[TOTAL] = TOTAL
        for v in self.variables:
            da = self.ds[v]
            if "scenario" in da.dims and _rows(self.ds, v, self.by, len(self.quantiles),
                                               self.totals) > _CHUNK_ROWS:
                parts = [da.isel(scenario=[i]) for i in range(da.sizes["scenario"])]
            else:
                parts = [da]
            for part in parts:
                yield self._finish(_variable_table(part, self, v), lookup)

    def _finish(self, df: pd.DataFrame, lookup: dict) -> pd.DataFrame:
        if "area_name" in self.columns:
            df["area_name"] = (df["area"].map(lookup) if "area" in df.columns
                               else pd.Series(None, index=df.index, dtype=object))
        for c in self.columns:
            if c not in df.columns:
                df[c] = ""
        df = df[list(self.columns)]
        for d in self.columns[self.columns.index("year") + 1:]:
            if d in ("area_name", "statistic"):
                break
            df[d] = df[d].astype(object).where(df[d].notna(), "")
        df["year"] = df["year"].astype(int)
        return df.reset_index(drop=True)


def _kept(ds: xr.Dataset, v: str, by: Sequence[str] | None) -> list[str]:
    return [d for d in marginals(ds, v) if by is None or d in by]


def _level_counts(ds: xr.Dataset, v: str, by: Sequence[str] | None,
                  totals: bool) -> dict[str, int]:
    """Levels per kept marginal of ``v`` with its total row (when it gets one)."""
    add = totals and not v.startswith("rel_")
    return {d: ds.sizes[d] + (1 if add and ds.sizes[d] > 1 else 0) for d in _kept(ds, v, by)}


def _rows(ds: xr.Dataset, v: str, by: Sequence[str] | None, n_q: int, totals: bool) -> int:
    """Rows of ``v``'s table at most: years x scenarios x statistics x cells with totals."""
    n = ds.sizes["year"] * (ds.sizes["scenario"] if "scenario" in ds[v].dims else 1) * (1 + n_q)
    return n * math.prod(_level_counts(ds, v, by, totals).values())


def plan(ds: xr.Dataset, variables: Sequence[str] | None = None,
         by: Sequence[str] | None = None, quantiles: Sequence[float] = DEFAULT_QUANTILES,
         suppress: float | None = None, round_base: float | None = None,
         totals: bool = True) -> Plan:
    """Resolve and size an export without building it (see :func:`tidy` for the arguments).

    ``by=None`` takes :func:`default_by`; ``by=["all"]`` keeps every marginal.

    Returns
    -------
    Plan
        The variables, marginals, disclosure settings, columns and the row estimate.

    Raises
    ------
    ExportError
        Unknown variables or dimensions, or negative disclosure settings.

    """
    if "draw" not in ds.dims:
        raise ExportError("results have no 'draw' dimension (export the raw results file)")
    avail = export_variables(ds)
    variables = list(avail if variables is None else variables)
    for v in variables:
        if v not in avail:
            raise ExportError(f"unknown variable {v!r}; expected one of {', '.join(avail)}")
    if by is None:
        by = default_by(ds)
    elif list(by) == [ALL]:
        by = None
    if by is not None:
        by = list(by)
        known = {d for v in variables for d in marginals(ds, v)}
        for d in by:
            if d not in known:
                raise ExportError(f"unknown dimension {d!r} in --by; expected one of "
                                  f"{', '.join(sorted(known))} (or {ALL!r} for every one)")
    disc = default_disclosure(ds, suppress, round_base)
    qs = tuple(float(q) for q in quantiles)
    dims_order: list[str] = []
    for v in variables:
        for d in _kept(ds, v, by):
            if d not in dims_order:
                dims_order.append(d)
    lead = ["scenario"] if any("scenario" in ds[v].dims for v in variables) else []
    cols = (*lead, "variable", "year", *dims_order,
            *(["area_name"] if "area" in dims_order else []),
            "statistic", "quantile", "value", "status", "units")
    rows = {v: _rows(ds, v, by, len(qs), totals) for v in variables}
    big = max(rows, key=rows.get) if rows else None
    sizes = _level_counts(ds, big, by, totals) if big else {}
    return Plan(ds, tuple(variables), None if by is None else tuple(by), qs, disc, totals,
                cols, sum(rows.values()), sizes)


def _variable_table(da: xr.DataArray, p: Plan, v: str) -> pd.DataFrame:
    """Build the rows of one variable (all of its scenarios, or the one ``da`` holds)."""
    units = da.attrs.get("units", "")
    da = da.astype(np.float64)
    dims = [d for d in da.dims if d not in _NOT_MARGINAL]
    disc = p.disclosure
    if p.by is not None:
        drop = [d for d in dims if d not in p.by]
        if drop:
            da = da.sum(drop, skipna=False)
        dims = [d for d in dims if d in p.by]
    if v.startswith("rel_"):  # a ratio (e.g. workforce coverage): its sum means nothing
        da, has_total = da.assign_coords({d: _labels(da[d]) for d in dims}), [False] * len(dims)
    else:
        da, has_total = _with_totals(da, dims)
    qs = list(p.quantiles)
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
    df["status"] = np.where(np.broadcast_to(status[None], vals.shape).ravel(), SUPPRESSED, "")
    if not p.totals:
        for d in dims:
            df = df[df[d] != TOTAL]
    keep = df["value"].notna() | (df["status"] == SUPPRESSED)
    df = df[keep]
    qmap = {"mean": np.nan, **{_label(q): q for q in qs}}
    df.insert(0, "variable", v)
    df["quantile"] = df["statistic"].map(qmap).astype(float)
    df["units"] = units
    return df


def tidy(ds: xr.Dataset, variables: Sequence[str] | None = None,
         by: Sequence[str] | None = None, quantiles: Sequence[float] = DEFAULT_QUANTILES,
         suppress: float | None = None, round_base: float | None = None,
         totals: bool = True, max_bytes: float | None = DEFAULT_MAX_BYTES) -> Export:
    """Build the tidy long table of a run's bands, with disclosure control.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with a ``draw`` dimension (as written by ``simsend run``).
    variables : sequence of str, optional
        Variables to export (default: every variable over draw and year).
    by : sequence of str, optional
        Marginals to keep; the others are summed over (on the draws, before the bands).
        Default :func:`default_by` (every marginal for a single run; ``tier``, and ``area``
        with several areas, for results with scenarios); ``["all"]`` keeps every marginal.
    quantiles : sequence of float
        Quantiles to report beside the mean.
    suppress, round_base : float, optional
        Disclosure control (see :func:`default_disclosure`).
    totals : bool
        Include the ``total`` rows of each marginal.
    max_bytes : float, optional
        Refuse a table whose estimate (:attr:`Plan.nbytes`) is larger (``None`` = no limit).

    Returns
    -------
    Export
        Columns: ``scenario`` (when the results have one), ``variable``, ``year``, each
        marginal, ``area_name`` (with ``area``), ``statistic`` (``mean``, ``p05`` ...),
        ``quantile`` (empty for the mean), ``value``, ``status`` (``c`` = suppressed) and
        ``units``.

    Raises
    ------
    ExportError
        Unknown variables or dimensions, or a table over ``max_bytes``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"n_pupils": (("draw", "year", "tier"),
    ...                               np.arange(12.0).reshape(3, 2, 2))},
    ...                 coords={"year": [2022, 2023], "tier": ["a", "b"]},
    ...                 attrs={"areas": '["E92000001"]'})
    >>> t = tidy(ds, quantiles=[0.5]).table
    >>> t[(t.year == 2023) & (t.statistic == "p50")][["tier", "value"]].values.tolist()
    [['a', 6.0], ['b', 7.0], ['total', 13.0]]

    """
    p = plan(ds, variables, by, quantiles, suppress, round_base, totals)
    p.check(max_bytes)
    return _collect(p)


def _collect(p: Plan) -> Export:
    frames = list(p.chunks())
    df = (pd.concat(frames, ignore_index=True, sort=False) if frames
          else pd.DataFrame(columns=list(p.columns)))
    ds = p.ds
    return Export(df, p.disclosure, manifest(ds), p.variables,
                  {v: ds[v].attrs.get("units", "") for v in p.variables},
                  {v: ds[v].attrs.get("long_name", "") for v in p.variables})


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
    return _manifest_text(exp.manifest, exp.disclosure, exp.table.columns)


def _manifest_text(m: dict[str, Any], disclosure: Disclosure, columns: Iterable[str]) -> str:
    return json.dumps({**m, "disclosure_control": disclosure.describe(),
                       "columns": list(columns)}, indent=1, default=str)


def _format(path: Path, fmt: str | None) -> str:
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def write(exp: Export, path: str | Path, fmt: str | None = None) -> list[Path]:
    """Write an export as CSV, Parquet or xlsx, atomically; return the paths written.

    CSV gets a sidecar ``<name>.manifest.json``; Parquet carries the manifest in its schema
    metadata (key ``simsend_manifest``); xlsx has a README sheet, one sheet per variable and a
    manifest sheet.
    """
    path = Path(path)
    fmt = _format(path, fmt)
    if fmt != "xlsx":
        return _write_rows([exp.table], tuple(exp.table.columns), manifest_json(exp), path,
                           fmt)
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


def _write_rows(frames: Iterable[pd.DataFrame], columns: tuple[str, ...], meta: str,
                path: Path, fmt: str) -> list[Path]:
    """Write frames one after another as one CSV (with its sidecar) or Parquet file."""
    if fmt == "csv":
        def _csv(t):
            with open(t, "w", newline="", encoding="utf-8") as fh:
                first = True
                for f in frames:
                    f.to_csv(fh, index=False, header=first)
                    first = False
                if first:  # no rows: the header alone
                    pd.DataFrame(columns=list(columns)).to_csv(fh, index=False)

        side = path.with_name(path.stem + ".manifest.json")

        def _csv_then_sidecar(t):
            # rows first: a failure there (disk full) leaves neither file, no orphan sidecar
            _csv(t)
            atomic_write(side, lambda s: Path(s).write_text(meta))

        return [atomic_write(path, _csv_then_sidecar), side]

    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"year": pa.int64(), **dict.fromkeys(_FLOAT_COLUMNS, pa.float64())}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in columns],
                       metadata={b"simsend_manifest": meta.encode()})

    def _pq(t):
        with pq.ParquetWriter(t, schema) as pw:
            for f in frames:
                pw.write_table(pa.Table.from_pandas(f, schema=schema, preserve_index=False))

    return [atomic_write(path, _pq)]


def write_plan(p: Plan, path: str | Path, fmt: str | None = None) -> list[Path]:
    """Build the rows of a sized export and write them, atomically; return the paths written.

    CSV and Parquet are written a chunk at a time (:meth:`Plan.chunks`), so the whole table is
    never in memory; xlsx is built whole (see :func:`write`).  The size limit is the caller's
    (:meth:`Plan.check`).
    """
    path = Path(path)
    fmt = _format(path, fmt)
    if fmt == "xlsx":
        return write(_collect(p), path, fmt)
    meta = _manifest_text(manifest(p.ds), p.disclosure, p.columns)
    return _write_rows(p.chunks(), p.columns, meta, path, fmt)


def export(ds: xr.Dataset, path: str | Path, fmt: str | None = None,
           max_bytes: float | None = DEFAULT_MAX_BYTES, **kwargs) -> list[Path]:
    """Size the tidy table of ``ds`` (:func:`plan`), refuse it over ``max_bytes``, write it.

    ``kwargs`` are :func:`tidy`'s; see :func:`write_plan` for how each format is written.

    Raises
    ------
    ExportError
        Unknown variables, dimensions or format, or an export over ``max_bytes``.

    """
    _format(Path(path), fmt)
    p = plan(ds, **kwargs)
    p.check(max_bytes)
    return write_plan(p, path, fmt)
