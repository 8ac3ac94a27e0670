"""The returns a council files, filled from a run: LSRP tables, SCAP specialist places, DSG plan.

:func:`lsrp`, :func:`scap` and :func:`dsg` build a :class:`Return` (tables of median and 90%
band, in the return's order and with its row and column labels); :func:`write_return` writes it
as an Excel workbook laid out like the return and as one tidy CSV beside it
(``<name>_tables.csv``: one row per table, row, column and statistic); :func:`returns` does
both from a results Dataset.  ``simsend returns RESULTS --format lsrp|scap|dsg`` is its shell.

**Bands.**  Every figure is the median over Monte Carlo draws with the 5th and 95th percentiles
beside it, computed by :func:`simsend.publish.export.tidy` (the export's quantiles and its
disclosure control, so a workbook and ``simsend export`` agree cell for cell).  A total's band
is the band of the summed draws: medians do not add up to the median of their total, and each
table's ``Total`` row is its own median (the workbook's ``Notes`` sheet lists each total's
median beside the sum of its rows' medians).

**Years.**  Results are January census years.  Stocks (plans, pupils, places) are labelled
``Jan YYYY``, the count at the January census of that year (SEN2's caseload convention: the
LSRP's calendar-year figures for year Y are the January Y census).  Flows (requests,
assessments, plans issued) tallied in census year Y happened in the 12 months to that census,
and are labelled as the calendar year before it (``2025`` = the year to January 2026), as
SEN2 reports them.  SCAP columns are academic years (January 2026 = ``2025/26``); DSG columns
financial years (census year Y = ``Y-1 to Y``, as :mod:`simsend.analysis.dsg`).

**LSRP provision types.**  Table 6 has the template's 14 provision types, labelled as
:data:`simsend.data.lsrp.PROVISION_TYPES` (the one list of labels) and filled from
:func:`simsend.analysis.lsrp.provision_view`: each of the engine's seven placement groups
(``simsend.dims.PLACEMENTS``) is split, draw by draw, by the council's own SEN2 shares of the
group's EHC plans in each provision type at the baseline census (the results' first year;
:func:`simsend.data.lsrp.establishment_shares`), so every row is a median and band of draws
and the rows of one group add up to the group in every draw.  The three types SEN2 cannot
separate carry ``not separated in SEN2 (included in <row>)`` with empty values (not zeros;
:data:`NOT_SEPARATED_IN`).  Tables 7.1-7.14 split each type's plans by need the same way:

================================================================  =============================
template row                                                      filled from
================================================================  =============================
Early years settings including PVIs                               ``other`` x share
                                                                  (non-maintained early years)
Mainstream schools or academies                                   ``mainstream``, all of it
Support bases in mainstream                                       not separated in SEN2
                                                                  (included in Mainstream
                                                                  schools or academies)
Specialist bases in mainstream (SEN units, resourced provision)   ``inclusion_base``, all of it
Maintained special schools or special academies                   ``special_state``, all of it
NMSS or independent schools (LA-funded placements)                ``special_independent``, all
                                                                  of it
NMSS or independent (other arrangements)                          not separated in SEN2
                                                                  (included in NMSS or
                                                                  independent schools
                                                                  (LA-funded placements))
Alternative provision                                             ``alternative_provision``,
                                                                  all of it
Mainstream post-16                                                ``post16_fe`` x share (FE,
                                                                  sixth-form and tertiary
                                                                  colleges, UKRLP providers)
Mainstream post-16 specialist provision                           not separated in SEN2
                                                                  (included in Mainstream
                                                                  post-16)
Specialist post-16 institutions                                   ``post16_fe`` x share
Elective home education                                           ``other`` x share
Other arrangements by the LA (EOTAS)                              ``other`` x share
Other (including hospital schools, NEET)                          ``other`` x share (NEET,
                                                                  arrangements by parents,
                                                                  other and unknown placements)
================================================================  =============================

**ASSUMPTION** (:data:`LSRP_ASSUMPTION`): within each engine group the split into provision
types is held at the baseline census's SEN2 shares for every forecast year (the engine does not
forecast, say, elective home education separately from NEET), and a provision type's plans
have its group's mix of needs (tables 7.x).  Pupils with no placement (``not_recorded``) keep
their own row when there are any.  The shares, their census and any borrowed shares (a group
with no plans in the council takes England's) are on the workbook's Notes sheet.

**Disclosure control.**  Counts of people get the export's control (on by default, threshold
5, for any area below England; :func:`simsend.publish.export.default_disclosure`), applied to
each table with its totals; money is not suppressed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from simsend.analysis.costs import spend
from simsend.analysis.dsg import dsg_balance
from simsend.analysis.lsrp import EXTRA_LABELS, provision_view
from simsend.config import ConfigError
from simsend.config.costs import CostConfig, load_costs
from simsend.data.errors import DataError
from simsend.data.lsrp import NOT_SEPARATED, PROVISION_PLACEMENT, PROVISION_TYPES
from simsend.dims import AGE_GROUPS, NEEDS, age_group_of
from simsend.io import atomic_write
from simsend.publish.disclosure import SUPPRESSED
from simsend.publish.export import (
    TOTAL,
    Disclosure,
    ExportError,
    default_disclosure,
    manifest_rows,
    tidy,
)
from simsend.results.manifest import manifest

__all__ = ["FORMATS", "LSRP_ASSUMPTION", "NOT_SEPARATED_IN", "Block", "Return", "ReturnsError",
           "dsg", "lsrp", "returns", "scap", "tables_path", "write_return"]

FORMATS = ("lsrp", "scap", "dsg")
"""The returns :func:`returns` writes."""
QUANTILES = (0.05, 0.5, 0.95)
STATS = (("p50", "median"), ("p05", "5th pct"), ("p95", "95th pct"))
"""Statistic in the tidy table, and its column label in the workbook, in column order."""

AGE_LABELS = {"under_5": "Under 5", "5_to_10": "Aged 5 to 10", "11_to_15": "Aged 11 to 15",
              "16_to_19": "Aged 16 to 19", "20_to_25": "Aged 20 to 25"}
"""SEN2 / LSRP age groups."""

NEED_LABELS = {
    "ASD": "Autistic spectrum disorder",
    "SEMH": "Social, emotional and mental health",
    "SLCN": "Speech, language and communication needs",
    "MLD": "Moderate learning difficulty",
    "SpLD": "Specific learning difficulty",
    "SLD": "Severe learning difficulty",
    "PMLD": "Profound and multiple learning difficulty",
    "HI": "Hearing impairment",
    "VI": "Visual impairment",
    "MSI": "Multi-sensory impairment",
    "PD": "Physical disability",
    "OTH": "Other difficulty or disability",
    "NSA": "SEN support but no specialist assessment of type of need",
}
"""SEN2 primary need labels, in the order of ``simsend.dims.NEEDS``."""

NOT_SEPARATED_IN: dict[str, str] = {
    "support_bases": "mainstream_schools",
    "independent_other_arrangements": "independent_la_funded",
    "mainstream_post16_specialist": "mainstream_post16",
}
"""Provision types SEN2 cannot separate (:data:`simsend.data.lsrp.NOT_SEPARATED`) -> the
type whose row includes their pupils (one of the same engine group).  Row labels and order are
:data:`simsend.data.lsrp.PROVISION_TYPES`'s."""
NOT_SEPARATED_TEXT = "not separated in SEN2 (included in {})"
LSRP_ASSUMPTION = ("ASSUMPTION: within each engine placement group the split into LSRP provision "
                   "types is held at the council's SEN2 shares of the baseline census (the "
                   "results' first year) for every forecast year, and a provision type's plans "
                   "have its group's mix of needs; the types SEN2 cannot separate ("
                   + ", ".join(PROVISION_TYPES[t] for t in NOT_SEPARATED)
                   + ") are left empty and counted in the row named")
"""The assumption behind table 6 and tables 7.1-7.14, as written on the Notes sheet."""

ENGINE_NOTES = {
    "mainstream": "engine group 'mainstream' (maintained, academy, free and independent "
                  "mainstream schools)",
    "inclusion_base": "engine group 'inclusion_base' (SEN units and resourced provision)",
    "special_state": "engine group 'special_state' (maintained special schools and special "
                     "academies and free schools)",
    "special_independent": "engine group 'special_independent' (independent and non-maintained "
                           "special schools, however funded)",
    "alternative_provision": "engine group 'alternative_provision' (AP and PRUs)",
    "post16_fe": "engine group 'post16_fe' (FE and tertiary colleges, specialist post-16 "
                 "institutions, other post-16 providers)",
    "other": "engine group 'other' (early years settings, elective home education, other "
             "arrangements, hospital schools, NEET, awaiting provision)",
}

SCAP_PLACEMENTS = (
    ("Specialist bases in mainstream (SEN units and resourced provision)", "inclusion_base"),
    ("State-funded special schools (maintained special and special academies)",
     "special_state"),
    ("Independent and non-maintained special schools", "special_independent"),
    ("Alternative provision", "alternative_provision"),
)
"""SCAP's specialist provision categories and the engine group of each."""
SCAP_PHASES = (("Primary", "5_to_10", 5), ("Secondary", "11_to_15", 7))
"""(phase, age group, years ahead) of the SCAP return."""

PIPELINE = (
    ("n_requests", "Initial requests for an EHC needs assessment"),
    ("n_refused", "Requests refused an assessment"),
    ("n_assessed", "EHC needs assessments completed"),
    ("n_issued", "Assessments ending in an EHC plan (new plans issued)"),
    ("n_not_issued", "Assessments ending in a decision not to issue a plan"),
    ("n_within_20_weeks", "New plans issued within 20 weeks of the request"),
)
"""The needs-assessment pipeline's variables and their row labels."""

DSG_LABELS = {
    "targeted_support": "SEN support (targeted tier) in mainstream",
    "targeted_plus_support": "SEN support with external specialists (targeted-plus tier)",
    "mainstream_top_up": "Top-up funding: mainstream schools and specialist bases",
    "special_state": "Maintained special schools and special academies",
    "special_independent": "Independent and non-maintained special schools",
    "alternative_provision": "Alternative provision",
    "post16": "Post-16 and FE",
    "other_placements": "Other placements and arrangements",
    "assessment": "EHC needs assessments",
    "tribunal": "SEND tribunals",
    "transport": "Home-to-school transport",
}
"""Labels of the cost file categories (others are shown as named)."""


class ReturnsError(ExportError):
    """A return that cannot be made from these results (a dim, variable or year missing...)."""


@dataclass(frozen=True)
class Block:
    """One table of a return: median and band per row and column.

    Attributes
    ----------
    sheet : str
        Worksheet the table goes on.
    number, title : str
        The return's table number and title.
    row_header : str
        Label above the row labels.
    rows : tuple of str
        Row labels, in the return's order (the last is ``Total`` where there is one).
    row_notes : tuple of str
        What fills each row (engine group, share), or ``not separated in SEN2 (...)``.
    columns : tuple of str
        Column labels (years, or scenarios).
    keys : tuple of dict
        Per column, the coordinates it stands for (``census_year``, ``scenario``).
    values : dict of str to numpy.ndarray
        ``p50``, ``p05``, ``p95``: ``(rows, columns)`` arrays, NaN = empty.
    status : numpy.ndarray
        ``(rows, columns)`` booleans: suppressed for disclosure control.
    units, note : str
        Units of the values, and a line under the table.
    row_keys : tuple of dict
        Per row, coordinates it stands for (``census_year`` where rows are years).

    """

    sheet: str
    number: str
    title: str
    row_header: str
    rows: tuple[str, ...]
    row_notes: tuple[str, ...]
    columns: tuple[str, ...]
    keys: tuple[dict, ...]
    values: dict[str, np.ndarray]
    status: np.ndarray
    units: str = "children and young people"
    note: str = ""
    row_keys: tuple[dict, ...] = ()

    def cell(self, row: str, column: str, stat: str = "p50") -> float:
        """Return one value (NaN when empty or suppressed)."""
        return float(self.values[stat][self.rows.index(row), self.columns.index(column)])


@dataclass
class Return:
    """A return's tables, notes and identity, ready to write (:func:`write_return`)."""

    kind: str
    title: str
    blocks: list[Block]
    notes: list[tuple[str, str]]
    disclosure: Disclosure
    manifest: dict[str, Any] = field(default_factory=dict)
    area: str = ""
    area_name: str = ""
    scenario: str = ""

    def block(self, number: str) -> Block:
        """Return the table numbered ``number``."""
        for b in self.blocks:
            if b.number == number:
                return b
        raise KeyError(number)

    def table(self) -> pd.DataFrame:
        """Return every table as one tidy long table (one row per cell and statistic)."""
        recs = []
        for b in self.blocks:
            for i, r in enumerate(b.rows):
                rk = b.row_keys[i] if b.row_keys else {}
                for j, c in enumerate(b.columns):
                    for stat, _ in STATS:
                        v = b.values[stat][i, j]
                        recs.append({
                            "return": self.kind, "table": b.number, "title": b.title,
                            "row": r, "column": c,
                            "census_year": {**b.keys[j], **rk}.get("census_year"),
                            "scenario": {**b.keys[j], **rk}.get("scenario", self.scenario),
                            "area": self.area, "area_name": self.area_name,
                            "statistic": stat, "quantile": dict(zip(
                                ("p05", "p50", "p95"), QUANTILES, strict=True))[stat],
                            "value": None if np.isnan(v) else float(v),
                            "status": SUPPRESSED if b.status[i, j] else "",
                            "units": b.units, "note": b.row_notes[i]})
        out = pd.DataFrame(recs)
        out["census_year"] = out["census_year"].astype("Int64")
        return out


# ----------------------------------------------------------------------------- selection


def _area_names(ds: xr.Dataset) -> dict[str, str]:
    names = manifest(ds).get("area_names")
    codes = ([str(a) for a in ds["area"].values] if "area" in ds.coords
             else json.loads(ds.attrs.get("areas", "[]")))
    return dict(zip(codes, names, strict=False)) if isinstance(names, list) else {}


def _select(ds: xr.Dataset, area: str | None,
            scenario: str | None, keep_scenarios: bool = False) -> tuple[xr.Dataset, str, str]:
    """Return ``ds`` for one area (kept as a length-1 ``area`` dim) and one scenario."""
    if "draw" not in ds.dims:
        raise ReturnsError("results have no 'draw' dimension: a return needs the raw draws of "
                           "a run (not a summary)")
    names = _area_names(ds)
    if "area" in ds.dims:
        codes = [str(a) for a in ds["area"].values]
        if area is None:
            if len(codes) > 1:
                raise ReturnsError(f"results hold {len(codes)} areas ({', '.join(codes[:5])}"
                                   f"{', ...' if len(codes) > 5 else ''}): choose one with "
                                   "--area CODE")
            area = codes[0]
        if area not in codes:
            raise ReturnsError(f"area {area!r} is not in the results; they hold "
                               f"{', '.join(codes[:10])}{', ...' if len(codes) > 10 else ''}")
        ds = ds.sel(area=[area])
    else:
        codes = [str(a) for a in json.loads(ds.attrs.get("areas", '["E92000001"]'))]
        if len(codes) != 1:
            raise ReturnsError(f"results add up {len(codes)} areas with no 'area' dimension; a "
                               "return is per council: run with 'area' in [outputs] by")
        if area is not None and area != codes[0]:
            raise ReturnsError(f"area {area!r} is not in the results; they hold {codes[0]}")
        area = codes[0]
    if "scenario" in ds.dims and not keep_scenarios:
        scens = [str(s) for s in ds["scenario"].values]
        if scenario is None:
            scenario = "baseline" if "baseline" in scens else scens[0]
        if scenario not in scens:
            raise ReturnsError(f"scenario {scenario!r} is not in the results; they hold "
                               f"{', '.join(scens)}")
        ds = ds.sel(scenario=scenario, drop=True)
    elif scenario is not None and "scenario" not in ds.dims:
        have = str(ds.attrs.get("scenario", "baseline"))
        if scenario != have:
            raise ReturnsError(f"scenario {scenario!r} is not in the results (a single run of "
                               f"{have!r})")
    scen = scenario or str(ds.attrs.get("scenario", "baseline"))
    return ds, area, names.get(area, area), scen


def _require(ds: xr.Dataset, what: str, var: str, dims: Sequence[str]) -> xr.DataArray:
    """Return ``ds[var]``, or stop with what the table needs and the results lack."""
    if var not in ds.data_vars:
        raise ReturnsError(f"{what} needs the variable {var!r}, which these results lack")
    missing = [d for d in dims if d not in ds[var].dims]
    if missing:
        quoted = ", ".join(f'"{d}"' for d in missing)
        raise ReturnsError(f"{what} needs {var} by {', '.join(missing)}, which these results "
                           f"lack: add {quoted} to [outputs] by in the config and run again")
    return ds[var]


def _with_age_group(da: xr.DataArray, what: str) -> xr.DataArray:
    """Give ``da`` an ``age_group`` dim (summing single years of ``age`` into SEN2 bands)."""
    if "age_group" in da.dims:
        return da
    if "age" not in da.dims:
        raise ReturnsError(f"{what} needs {da.name} by age_group (or age), which these results "
                           'lack: add "age_group" to [outputs] by in the config and run again')
    groups = xr.DataArray([age_group_of(int(a)) for a in da["age"].values], dims="age",
                          name="age_group")
    out = da.groupby(groups).sum("age")
    return out.reindex(age_group=list(AGE_GROUPS), fill_value=0)


def _sum_to(da: xr.DataArray, keep: Sequence[str]) -> xr.DataArray:
    drop = [d for d in da.dims if d not in ("draw", "year", "area", *keep)]
    return da.sum(drop) if drop else da


# ----------------------------------------------------------------------------- bands


def _bands(ds: xr.Dataset, variables: dict[str, xr.DataArray], dims: Sequence[str],
           disc: Disclosure) -> pd.DataFrame:
    """Return the export's bands of ``variables`` over ``dims`` (with totals), wide.

    Returns a frame indexed by ``(variable, year, [scenario,] *dims)`` with columns ``p05``,
    ``p50``, ``p95`` and ``status`` (True = suppressed); a variable without one of ``dims``
    has ``""`` there.
    """
    sub = xr.Dataset({k: v.reset_coords(drop=True).astype(np.float64)
                      for k, v in variables.items()}, attrs=ds.attrs)
    by = [*dims, *(["area"] if "area" in sub.dims else [])]
    t = tidy(sub, by=by, quantiles=QUANTILES, suppress=disc.suppress,
             round_base=disc.round).table
    t = t[t["statistic"] != "mean"]
    idx = ["variable", "year", *(["scenario"] if "scenario" in t.columns else []), *dims]
    wide = t.set_index([*idx, "statistic"])["value"].unstack("statistic")
    wide["status"] = t.groupby(idx)["status"].agg(lambda s: (s == SUPPRESSED).any())
    return wide


def _grid(wide: pd.DataFrame, variable: str, years: Sequence[int],
          row_of: Sequence[tuple[str, ...] | None]) -> tuple[dict, np.ndarray]:
    """Values and status ``(rows, years)`` from :func:`_bands`' frame; ``None`` rows empty."""
    vals = {s: np.full((len(row_of), len(years)), np.nan) for s, _ in STATS}
    status = np.zeros((len(row_of), len(years)), bool)
    for i, key in enumerate(row_of):
        if key is None:
            continue
        for j, y in enumerate(years):
            k = (variable, int(y), *key)
            if k not in wide.index:
                continue
            rec = wide.loc[k]
            for s, _ in STATS:
                vals[s][i, j] = rec[s]
            status[i, j] = bool(rec["status"])
    return vals, status


def _census_columns(years: Sequence[int]) -> tuple[tuple[str, ...], tuple[dict, ...]]:
    return (tuple(f"Jan {y}" for y in years),
            tuple({"census_year": int(y)} for y in years))


def _flow_columns(years: Sequence[int]) -> tuple[tuple[str, ...], tuple[dict, ...]]:
    return (tuple(str(y - 1) for y in years),
            tuple({"census_year": int(y)} for y in years))


def _resolve(ds: xr.Dataset, suppress: float | None, round_base: float | None) -> Disclosure:
    return default_disclosure(ds, suppress, round_base)


# ----------------------------------------------------------------------------- LSRP


def lsrp(ds: xr.Dataset, area: str | None = None, scenario: str | None = None,
         suppress: float | None = None, round_base: float | None = None) -> Return:
    """Build the local SEND reform plan tables of one council from a run's draws.

    Tables: 5.1 EHC plans by age group; 6 by the 14 provision types (each placement group
    split draw by draw by the council's SEN2 shares: :func:`simsend.analysis.lsrp.
    provision_view`, ASSUMPTION :data:`LSRP_ASSUMPTION`); 7 by primary need; 7.1-7.14 need
    within each provision type; S1 the needs-assessment pipeline (when the results hold it);
    S2 SEN support by tier (and S3 by plan, with a ``plan`` dim).  EHC plans are the
    specialist tier.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``simsend run`` with ``draw``, ``year`` and ``n_pupils`` by ``tier``,
        ``age_group`` (or ``age``), ``placement`` and ``need``.
    area : str, optional
        The council (GSS code); needed when the results hold several areas.
    scenario : str, optional
        The scenario to report (default ``baseline``, else the first).
    suppress, round_base : float, optional
        Disclosure control (:func:`simsend.publish.export.default_disclosure`).

    Returns
    -------
    Return
        The tables, ready for :func:`write_return`.

    Raises
    ------
    ReturnsError
        A dim or variable a table needs is missing (the message names it), an unknown area
        or scenario, or an area with no SEN2 establishment counts for the provision types.

    """
    ds, code, name, scen = _select(ds, area, scenario)
    what = "the LSRP return"
    pupils = _require(ds, what, "n_pupils", ("tier",))
    if "specialist" not in [str(t) for t in pupils["tier"].values]:
        raise ReturnsError(f"{what} needs the specialist tier (EHC plans) in n_pupils")
    ehcp = pupils.sel(tier="specialist", drop=True).rename("n_pupils")
    ehcp_age = _with_age_group(ehcp, f"{what} (table 5.1, EHC plans by age group)")
    _require(ds, f"{what} (table 6, EHC plans by provision type)", "n_pupils", ("placement",))
    _require(ds, f"{what} (table 7, EHC plans by primary need)", "n_pupils", ("need",))
    disc = _resolve(ds, suppress, round_base)
    years = [int(y) for y in ds["year"].values]
    cols, keys = _census_columns(years)
    blocks = []
    # 5.1 age groups
    w = _bands(ds, {"n_pupils": _sum_to(ehcp_age, ["age_group"])}, ["age_group"], disc)
    labels = list(AGE_GROUPS)
    vals, st = _grid(w, "n_pupils", years, [(g,) for g in labels] + [(TOTAL,)])
    blocks.append(Block("5.1 Age", "5.1", "Number of EHC plans by age group", "Age group",
                        (*[AGE_LABELS[g] for g in labels], "Total"),
                        ("",) * (len(labels) + 1), cols, keys, vals, st,
                        note="EHC plans = the specialist tier of the simulation, at the "
                             "January census of each year."))
    # 6 provision types: each placement group split by the council's SEN2 shares, per draw
    view = _provision_draws(ds, what)
    places = [str(p) for p in ehcp["placement"].values]
    types, row_notes = _provision_types(view, places, code)
    w6 = _bands(ds, {"n_pupils": _sum_to(view.sel(provision_type=types), ["provision_type"])},
                ["provision_type"], disc)
    rows, notes, row_of = _provision_rows(types, row_notes, w6, "n_pupils")
    vals, st = _grid(w6, "n_pupils", years, row_of)
    blocks.append(Block("6 Provision", "6", "Number of EHC plans by provision type",
                        "Provision type", tuple(rows), tuple(notes), cols, keys, vals, st,
                        note="Each engine placement group is split by the council's SEN2 "
                             "shares at the baseline census, held for every year "
                             "(ASSUMPTION); rows marked 'not separated in SEN2' are counted "
                             "in the row named. See the Notes sheet."))
    # 7 needs
    needs = [str(n) for n in ehcp["need"].values]
    w7 = _bands(ds, {"n_pupils": _sum_to(ehcp, ["need"])}, ["need"], disc)
    nrows, nnotes, nrow_of = _need_rows(needs, w7, "n_pupils", ())
    vals, st = _grid(w7, "n_pupils", years, nrow_of)
    blocks.append(Block("7 Need", "7", "Number of EHC plans by primary need", "Primary need",
                        tuple(nrows), tuple(nnotes), cols, keys, vals, st))
    # 7.1-7.14 need within provision type (the view keeps need: each type has its group's mix)
    w77 = _bands(ds, {"n_pupils": _sum_to(view.sel(provision_type=types),
                                          ["need", "provision_type"])},
                 ["need", "provision_type"], disc)
    blocks += _need_by_provision(w77, types, row_notes, needs, years)
    blocks += _pipeline_blocks(ds, disc, years)
    blocks += _sen_support_blocks(ds, pupils, disc, years)
    notes = _notes("lsrp", ds, disc, blocks) + _provision_notes(view, row_notes, code)
    return Return("lsrp", f"Local SEND reform plan tables: {name} ({code})", blocks, notes,
                  disc, manifest(ds), code, name, scen)


def _provision_draws(ds: xr.Dataset, what: str) -> xr.DataArray:
    """Return the EHC plans' draws by LSRP provision type (:func:`provision_view`)."""
    try:
        view = provision_view(ds)
    except (ConfigError, DataError) as exc:
        raise ReturnsError(f"{what} (table 6, EHC plans by provision type): {exc}") from None
    return view["n_pupils"]


def _provision_types(view: xr.DataArray, places: Sequence[str],
                     area: str) -> tuple[list[str], dict[str, str]]:
    """Return the view's types that get figures, and each row's note (how it is filled).

    Types SEN2 cannot separate, and types of a group the results do not hold, get no figure
    (they are 0 in the view and would only attract secondary suppression).
    """
    attrs = view.attrs
    shares = json.loads(attrs["provision_shares"]).get(area, {})
    year = json.loads(attrs["share_census_year"]).get(area, "")
    borrowed = {g.strip() for part in str(attrs.get("england_fallback", "")).split("; ")
                if part.startswith(f"{area}: ")
                for g in part[len(area) + 2:].split(" (")[0].split(",")}
    notes: dict[str, str] = {}
    types = []
    for t in [str(x) for x in view["provision_type"].values]:
        if t in NOT_SEPARATED:
            into = NOT_SEPARATED_IN[t]
            notes[t] = NOT_SEPARATED_TEXT.format(PROVISION_TYPES[into])
            continue
        if t not in PROVISION_TYPES:  # e.g. not_recorded: kept as the view keeps it
            notes[t] = f"engine placement {t!r}"
            types.append(t)
            continue
        g = PROVISION_PLACEMENT[t]
        if g not in places:
            notes[t] = f"engine group {g!r} is not in the results"
            continue
        types.append(t)
        whole = [u for u in PROVISION_TYPES
                 if PROVISION_PLACEMENT[u] == g and u not in NOT_SEPARATED] == [t]
        if whole:
            notes[t] = f"{ENGINE_NOTES.get(g, f'engine group {g!r}')}, all of it"
        else:
            s = float(shares.get(g, {}).get(t, 0.0))
            src = "England's" if g in borrowed else "the council's"
            notes[t] = (f"engine group {g!r} x {s:.1%}: {src} SEN2 January {year} share of "
                        "the group's plans, held for every year (ASSUMPTION)")
    return types, notes


def _provision_rows(types: Sequence[str], row_notes: dict[str, str], wide: pd.DataFrame,
                    var: str) -> tuple[list, list, list]:
    """Rows, row notes and keys of the 14 provision types (+ not recorded when any, total)."""
    rows, notes, row_of = [], [], []
    for t, label in PROVISION_TYPES.items():
        rows.append(label)
        notes.append(row_notes[t])
        row_of.append((t,) if t in types else None)
    for t in types:  # placements outside the seven groups: shown only when someone is there
        if t in PROVISION_TYPES:
            continue
        if _any_positive(wide, var, (t,)):
            rows.append(EXTRA_LABELS.get(t, t))
            notes.append(row_notes[t])
            row_of.append((t,))
    rows.append("Total")
    notes.append("all provision types (its own median: medians do not add up)")
    row_of.append((TOTAL,))
    return rows, notes, row_of


def _any_positive(wide: pd.DataFrame, var: str, key: tuple) -> bool:
    sel = [k for k in wide.index if k[0] == var and tuple(k[2:]) == tuple(key)]
    return bool(sel) and bool((wide.loc[sel, "p95"].fillna(1) > 0).any())


def _need_rows(needs: Sequence[str], wide: pd.DataFrame, var: str,
               suffix: tuple[str, ...]) -> tuple[list, list, list]:
    rows, notes, row_of = [], [], []
    for n in NEEDS:
        rows.append(NEED_LABELS[n])
        notes.append(f"SEN2 need {n}")
        row_of.append((n, *suffix) if n in needs else None)
    for n in needs:
        if n not in NEEDS and _any_positive(wide, var, (n, *suffix)):
            rows.append("Need not recorded" if n == "none" else n)
            notes.append(f"need {n!r}")
            row_of.append((n, *suffix))
    rows.append("Total")
    notes.append("all needs (its own median: medians do not add up)")
    row_of.append((TOTAL, *suffix))
    return rows, notes, row_of


def _need_by_provision(wide: pd.DataFrame, types: Sequence[str], row_notes: dict[str, str],
                       needs: Sequence[str], years: Sequence[int]) -> list[Block]:
    """Tables 7.1-7.14: primary need within each provision type, in the template's order."""
    cols, keys = _census_columns(years)
    number_of = {t: f"7.{k}" for k, t in enumerate(PROVISION_TYPES, 1)}
    out = []
    for t, label in PROVISION_TYPES.items():
        num = number_of[t]
        title = f"Number of EHC plans by primary need: {label}"
        if t not in types:
            text = (NOT_SEPARATED_TEXT.format(f"table {number_of[NOT_SEPARATED_IN[t]]}, "
                                              f"{PROVISION_TYPES[NOT_SEPARATED_IN[t]]}")
                    if t in NOT_SEPARATED else row_notes[t])
            empty = {s: np.full((1, len(years)), np.nan) for s, _ in STATS}
            out.append(Block("7.x Need by provision", num, title, "Primary need",
                             ("All primary needs",), (text,), cols, keys, empty,
                             np.zeros((1, len(years)), bool)))
            continue
        rows, notes, row_of = _need_rows(needs, wide, "n_pupils", (t,))
        vals, st = _grid(wide, "n_pupils", years, row_of)
        note = row_notes[t] if row_notes[t].endswith("all of it") else (
            row_notes[t].removesuffix(" (ASSUMPTION)") + ", with the group's mix of needs "
            "(ASSUMPTION)")
        out.append(Block("7.x Need by provision", num, title, "Primary need", tuple(rows),
                         tuple(notes), cols, keys, vals, st, note=note))
    return out


def _pipeline_blocks(ds: xr.Dataset, disc: Disclosure, years: Sequence[int]) -> list[Block]:
    have = [(v, lab) for v, lab in PIPELINE if v in ds.data_vars
            and {"draw", "year"} <= set(ds[v].dims)]
    if not have:
        return []
    w = _bands(ds, {v: _sum_to(ds[v], []) for v, _ in have}, [], disc)
    flows = [y for y in years[1:]] or list(years)
    cols, keys = _flow_columns(flows)
    vals = {s: np.full((len(have), len(flows)), np.nan) for s, _ in STATS}
    status = np.zeros((len(have), len(flows)), bool)
    for i, (v, _) in enumerate(have):
        vi, si = _grid(w, v, flows, [()])
        for s, _ in STATS:
            vals[s][i] = vi[s][0]
        status[i] = si[0]
    return [Block("S1 Pipeline", "S1", "EHC needs assessment pipeline by calendar year",
                  "Stage", tuple(lab for _, lab in have), tuple(v for v, _ in have), cols,
                  keys, vals, status, units="children and young people a year",
                  note="simsend supplementary table. Flows in the 12 months to the January "
                       "census of the next year, labelled by calendar year (as SEN2). The "
                       "rows are stages, not parts of a total.")]


def _sen_support_blocks(ds: xr.Dataset, pupils: xr.DataArray, disc: Disclosure,
                        years: Sequence[int]) -> list[Block]:
    tiers = [t for t in ("targeted", "targeted_plus") if t in pupils["tier"].values]
    if not tiers:
        return []
    cols, keys = _census_columns(years)
    sub = _sum_to(pupils.sel(tier=tiers), ["tier"])
    w = _bands(ds, {"n_pupils": sub}, ["tier"], disc)
    lab = {"targeted": "SEN support: targeted tier",
           "targeted_plus": "SEN support with support from external specialists: "
                            "targeted-plus tier"}
    keys_rows = [(t,) for t in tiers] + ([(TOTAL,)] if len(tiers) > 1 else [])
    vals, st = _grid(w, "n_pupils", years, keys_rows)
    rows = tuple(lab[t] for t in tiers) + (("Total SEN support",) if len(tiers) > 1 else ())
    out = [Block("S2 SEN support", "S2", "SEN support by tier", "Tier", rows,
                 tuple(f"tier {t}" for t in tiers) + (("all targeted tiers",)
                                                      if len(tiers) > 1 else ()),
                 cols, keys, vals, st,
                 note="simsend supplementary table. Targeted tiers = today's SEN support "
                      "(and, after the reform, Individual Support Plans), at the January "
                      "census; the targeted-plus share is an assumption of the run.")]
    if "plan" in pupils.dims:
        plans = [p for p in ("sen_support", "isp") if p in pupils["plan"].values]
        sub = _sum_to(pupils.sel(tier=tiers, plan=plans), ["plan"])
        w = _bands(ds, {"n_pupils": sub}, ["plan"], disc)
        keys_rows = [(p,) for p in plans] + ([(TOTAL,)] if len(plans) > 1 else [])
        vals, st = _grid(w, "n_pupils", years, keys_rows)
        plab = {"sen_support": "SEN support", "isp": "Individual Support Plans (ISP)"}
        out.append(Block("S2 SEN support", "S3", "Targeted tiers by plan held", "Plan",
                         tuple(plab[p] for p in plans) + (("Total",) if len(plans) > 1
                                                          else ()),
                         tuple(f"plan {p}" for p in plans) + (("all",) if len(plans) > 1
                                                              else ()),
                         cols, keys, vals, st))
    return out


def _provision_notes(view: xr.DataArray, row_notes: dict[str, str],
                     area: str) -> list[tuple[str, str]]:
    a = view.attrs
    year = json.loads(a["share_census_year"]).get(area, "")
    out = [("provision types", "The engine has seven placement groups. Each is split into the "
            "LSRP's provision types draw by draw by the council's SEN2 shares of the group's EHC "
            "plans (simsend.analysis.lsrp.provision_view), so every figure is a median and band "
            "of draws and a group's rows add up to the group in every draw. Rows SEN2 cannot "
            "separate are written 'not separated in SEN2' with empty values and are counted in "
            "the row named."),
           ("provision assumption", LSRP_ASSUMPTION),
           ("provision shares", f"SEN2 January {year} ({a.get('share_source', '')})")]
    if a.get("england_fallback"):
        out.append(("provision shares borrowed", "England's shares for groups with no "
                    f"published plans in the council: {a['england_fallback']}"))
    if a.get("predecessor_fallback"):
        out.append(("provision shares of former councils", str(a["predecessor_fallback"])))
    for t, label in PROVISION_TYPES.items():
        why = f"; {NOT_SEPARATED[t]}" if t in NOT_SEPARATED else ""
        out.append((f"row: {label}", row_notes[t] + why))
    return out


# ----------------------------------------------------------------------------- SCAP


def scap(ds: xr.Dataset, area: str | None = None, scenario: str | None = None,
         suppress: float | None = None, round_base: float | None = None) -> Return:
    """Build the SCAP specialist-place forecasts of one council from a run's draws.

    Children in each specialist provision group (:data:`SCAP_PLACEMENTS`; every tier: a place
    is taken whatever the plan) by phase, at the baseline census and 5 years ahead for
    primary (ages 5-10 at the January census), 7 for secondary (11-15), by academic year.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with ``n_pupils`` by ``placement`` and ``age_group`` (or ``age``), reaching 7
        census years past their first.
    area, scenario, suppress, round_base
        As :func:`lsrp`.

    Returns
    -------
    Return
        Tables ``1`` (primary) and ``2`` (secondary).

    Raises
    ------
    ReturnsError
        A dim the tables need is missing, or the results end before the horizon.

    """
    ds, code, name, scen = _select(ds, area, scenario)
    what = "the SCAP return"
    pupils = _require(ds, what, "n_pupils", ("placement",))
    if "tier" in pupils.dims:
        pupils = pupils.sum("tier")
    pupils = _with_age_group(pupils.rename("n_pupils"), what)
    years = [int(y) for y in ds["year"].values]
    need_to = years[0] + max(h for _, _, h in SCAP_PHASES)
    if years[-1] < need_to:
        raise ReturnsError(f"{what} needs census years to {need_to} (7 years ahead of "
                           f"{years[0]} for secondary); the results end in {years[-1]}: run "
                           f"with end_year >= {need_to}")
    groups = [g for _, g in SCAP_PLACEMENTS]
    missing = [g for g in groups if g not in pupils["placement"].values]
    if missing:
        raise ReturnsError(f"{what} needs placements {', '.join(missing)}, which these "
                           "results lack")
    disc = _resolve(ds, suppress, round_base)
    sub = _sum_to(pupils.sel(placement=groups), ["placement", "age_group"])
    w = _bands(ds, {"n_pupils": sub}, ["placement", "age_group"], disc)
    blocks = []
    for k, (phase, ag, ahead) in enumerate(SCAP_PHASES, 1):
        ys = years[: ahead + 1]
        cols = tuple(f"{y - 1}/{y % 100:02d}" + (" (baseline)" if y == years[0] else "")
                     for y in ys)
        keys = tuple({"census_year": y} for y in ys)
        row_of = [(g, ag) for g in groups] + [(TOTAL, ag)]
        vals, st = _grid(w, "n_pupils", ys, row_of)
        lo, hi = AGE_GROUPS[ag]
        blocks.append(Block(
            "SCAP", str(k), f"{phase} phase: children in specialist provision (ages {lo}-{hi} "
            f"at the January census), {ahead} years ahead", "Provision",
            tuple(lab for lab, _ in SCAP_PLACEMENTS) + ("Total specialist provision",),
            tuple(ENGINE_NOTES[g] for g in groups) + ("all four",), cols, keys, vals, st,
            note=f"Academic year YYYY/YY = the January census of its second year. Phase from "
                 f"age at the census: ages {lo}-{hi} (SEN2 age band)."))
    notes = _notes("scap", ds, disc, blocks) + [
        ("places", "Demand is the children the simulation places in each group (every tier), "
                   "not the places a council has; with a provision plan, results also hold "
                   "'places' used and those waiting or placed out of area."),
        ("phase", "Primary = ages 5-10 and secondary = ages 11-15 at the January census (the "
                  "SEN2 age bands): Reception children aged 4 are not counted, nor sixth "
                  "forms.")]
    return Return("scap", f"SCAP specialist place forecasts: {name} ({code})", blocks, notes,
                  disc, manifest(ds), code, name, scen)


# ----------------------------------------------------------------------------- DSG


def dsg(ds: xr.Dataset, costs: CostConfig | str | Path, area: str | None = None) -> Return:
    """Build the DSG management plan tables of one council: spend, income and balances.

    Prices the run with :func:`simsend.analysis.costs.spend` and runs the balance with
    :func:`simsend.analysis.dsg.dsg_balance` (the cost file's ``[dsg]`` table); one table
    per scenario (high-needs spend by category, its total, income, in-year and cumulative
    balance, in GBP million by financial year), a general-fund memo table, and, with
    scenarios, the cumulative balance with one column per scenario.

    Parameters
    ----------
    ds : xarray.Dataset
        A run's results (with a ``scenario`` dim when it compares scenarios).
    costs : CostConfig or path
        The cost file, with a ``[dsg]`` table (e.g. ``configs/costs/council_2021_22.toml``).
    area : str, optional
        The council, when the results hold several areas.

    Returns
    -------
    Return

    Raises
    ------
    ReturnsError
        An unknown area, or results without draws.
    ConfigError
        The cost file has no ``[dsg]`` table, or no balance or allocation for the council.

    """
    ds, code, name, _ = _select(ds, area, None, keep_scenarios=True)
    if not isinstance(costs, CostConfig):
        costs = load_costs(costs)
    sp = spend(ds, costs)
    bal = dsg_balance(sp, costs)
    disc = Disclosure(0, 0, "money: no disclosure control applies")
    years = [int(y) for y in bal["year"].values]
    fy = {int(y): str(f) for y, f in zip(bal["year"].values, bal["financial_year"].values,
                                         strict=True)}
    cols = tuple(fy[y] for y in years)
    keys = tuple({"census_year": y} for y in years)
    inb = [str(c) for c, b in zip(sp["category"].values, sp["in_budget"].values, strict=True)
           if b]
    outb = [str(c) for c in sp["category"].values if str(c) not in inb]
    money = {
        "gbp_m_spend": sp["spend"].sel(category=inb) / 1e6,
        "gbp_m_income": bal["income"] / 1e6,
        "gbp_m_in_year": bal["in_year_balance"] / 1e6,
        "gbp_m_cumulative": bal["cumulative_balance"] / 1e6,
    }
    w = _bands(ds, money, ["category"], disc)
    wmemo = (_bands(ds, {"gbp_m_spend": sp["spend"].sel(category=outb) / 1e6}, ["category"],
                    disc) if outb else None)
    scens = ([str(s) for s in ds["scenario"].values] if "scenario" in ds.dims else [None])
    blocks = []
    for s in scens:
        blocks.append(_dsg_block(w, s, inb, years, (cols, keys), bal.attrs))
    if wmemo is not None:
        for s in scens:
            pre = () if s is None else (s,)
            rows = [(*pre, c) for c in [*outb, TOTAL]]
            vals, st = _grid(wmemo, "gbp_m_spend", years, rows)
            blocks.append(Block("DSG", f"M{'' if s is None else ' ' + s}",
                                "Memo: general-fund SEND spend outside the DSG"
                                + ("" if s is None else f" ({s})"), "Category",
                                tuple(DSG_LABELS.get(c, c) for c in outb) + ("Total",),
                                tuple(f"cost category {c}" for c in outb) + ("",), cols, keys,
                                vals, st, units="GBP million",
                                note="Not charged to the high needs block: shown for the "
                                     "council's general fund."))
    if len(scens) > 1:
        blocks.append(_dsg_compare(w, scens, years, fy))
    notes = _notes("dsg", ds, disc, blocks) + [
        ("price basis", str(sp.attrs.get("price_basis", ""))),
        ("cost file", str(costs.source_path)),
        ("opening balance", str(bal.attrs.get("dsg_opening", ""))),
        ("income growth", str(bal.attrs.get("dsg_growth", ""))),
        ("statutory override", str(bal.attrs.get("dsg_override_note", ""))),
        ("sign", "Balances in GBP million; negative = deficit."),
        ("financial years", "Census year Y is financial year Y-1 to Y (April to March); the "
                            "first year prices the baseline census caseload.")]
    return Return("dsg", f"DSG management plan: {name} ({code})", blocks, notes, disc,
                  manifest(ds), code, name, "")


def _dsg_block(w: pd.DataFrame, s: str | None, inb: Sequence[str], years: Sequence[int],
               columns: tuple, attrs: dict) -> Block:
    pre = () if s is None else (s,)
    rows = [(*pre, c) for c in inb] + [(*pre, TOTAL)]
    vals, st = _grid(w, "gbp_m_spend", years, rows)
    extra = [("gbp_m_income", "High-needs income (high needs block allocation)"),
             ("gbp_m_in_year", "In-year balance (income - spend)"),
             ("gbp_m_cumulative", "Cumulative DSG balance at 31 March (negative = deficit)")]
    for var, _ in extra:
        # income, in-year and cumulative have no category: their rows sit under category ""
        v, t = _grid(w, var, years, [(*pre, "")])
        for k in vals:
            vals[k] = np.vstack([vals[k], v[k]])
        st = np.vstack([st, t])
    labels = tuple(DSG_LABELS.get(c, c) for c in inb) + ("Total high-needs spend",) + tuple(
        lab for _, lab in extra)
    notes = tuple(f"cost category {c}" for c in inb) + ("in-budget categories",
                                                         "income", "income - spend",
                                                         "opening balance + in-year balances")
    cols, keys = columns
    keys = tuple({**k, **({} if s is None else {"scenario": s})} for k in keys)
    return Block("DSG", "1" if s is None else f"1 {s}",
                 "High needs block: spend, income and balance"
                 + ("" if s is None else f", scenario {s}"), "Line", labels, notes, cols, keys,
                 vals, st, units="GBP million",
                 note=f"{attrs.get('price_basis', '')}. Median and 90% band of the draws; the "
                      "balance is run draw by draw, so its band is not income less spend "
                      "bands.")


def _dsg_compare(w: pd.DataFrame, scens: Sequence[str], years: Sequence[int],
                 fy: dict[int, str]) -> Block:
    vals = {k: np.full((len(years), len(scens)), np.nan) for k, _ in STATS}
    st = np.zeros((len(years), len(scens)), bool)
    for j, s in enumerate(scens):
        v, t = _grid(w, "gbp_m_cumulative", years, [(s, "")])
        for k in vals:
            vals[k][:, j] = v[k][0]
        st[:, j] = t[0]
    return Block("DSG", "2", "Cumulative DSG balance at 31 March by scenario",
                 "Financial year", tuple(fy[y] for y in years), ("",) * len(years),
                 tuple(scens), tuple({"scenario": s} for s in scens), vals, st,
                 units="GBP million", row_keys=tuple({"census_year": y} for y in years),
                 note="Scenarios share random numbers, so their difference is free of Monte "
                      "Carlo noise; compare medians of differences with simsend compare.")


# ----------------------------------------------------------------------------- notes, writing


def _notes(kind: str, ds: xr.Dataset, disc: Disclosure,
           blocks: Sequence[Block]) -> list[tuple[str, str]]:
    m = manifest(ds)
    out = [
        ("what", "Forecast tables from a Monte Carlo simulation (simsend). Each figure is "
                 "the median over the draws with the 90% band (5th and 95th percentiles) "
                 "beside it."),
        ("medians do not add up", "The median of a total is not the sum of the medians of "
                                  "its parts (nor are band limits): each Total row is the "
                                  "total's own median and band, from the draws of the sum. "
                                  "The totals below give both."),
        ("years", "Results are January census years. Stocks are labelled 'Jan YYYY' (the "
                  "January census of that year: SEN2's caseload for calendar year YYYY). "
                  "Flows in the 12 months to a January census are labelled by the calendar "
                  "year before it (e.g. 2025 = the year to January 2026), as SEN2 reports "
                  "new plans and requests."),
        ("draws", str(ds.sizes.get("draw", ""))),
        ("disclosure control", disc.describe()),
        ("config sha256", str(m.get("config_sha256", ""))),
        ("root seed", str(m.get("root_seed", ""))),
        ("simsend version", str(m.get("simsend_version", ""))),
        ("created", str(m.get("created_at", ""))),
    ]
    for b in blocks:
        if "Total" not in b.rows and not any(r.startswith("Total") for r in b.rows):
            continue
        i = next(k for k, r in enumerate(b.rows) if r.startswith("Total"))
        parts = [k for k in range(i) if np.isfinite(b.values["p50"][k]).any()]
        for j, c in enumerate(b.columns):
            tot = b.values["p50"][i, j]
            if not np.isfinite(tot):
                continue
            summed = float(np.nansum(b.values["p50"][parts, j]))
            out.append((f"total: table {b.number}, {c}",
                        f"median {_num(tot)} [90% band {_num(b.values['p05'][i, j])} to "
                        f"{_num(b.values['p95'][i, j])}]; sum of the rows' medians "
                        f"{_num(summed)}"))
    return out


def _num(v: float) -> str:
    return f"{v:,.1f}" if abs(v) < 1000 and v != int(v) else f"{v:,.0f}"


def tables_path(path: str | Path) -> Path:
    """Return the tidy CSV written beside a workbook: ``<name>_tables.csv``.

    Examples
    --------
    >>> tables_path("out/bham_lsrp.xlsx").as_posix()
    'out/bham_lsrp_tables.csv'

    """
    p = Path(path)
    return p.with_name(f"{p.stem}_tables.csv")


def _write_sheet(ws, blocks: Sequence[Block], heading: str) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.pagebreak import Break

    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDDDDD")
    ws.cell(1, 1, heading).font = Font(bold=True, size=13)
    r = 3
    width = 2
    for b in blocks:
        ws.cell(r, 1, f"Table {b.number}: {b.title}").font = bold
        ws.cell(r + 1, 1, f"Units: {b.units}. Median, with the 90% band (5th and 95th "
                          "percentiles) beside it.")
        h1, h2 = r + 2, r + 3
        ws.cell(h1, 1, b.row_header).font = bold
        for j, c in enumerate(b.columns):
            col = 2 + 3 * j
            ws.cell(h1, col, c).font = bold
            ws.merge_cells(start_row=h1, start_column=col, end_row=h1, end_column=col + 2)
            ws.cell(h1, col).alignment = Alignment(horizontal="center")
            for k, (_, lab) in enumerate(STATS):
                cell = ws.cell(h2, col + k, lab)
                cell.font = Font(bold=k == 0, italic=k > 0, size=9)
                cell.alignment = Alignment(horizontal="center", wrap_text=True)
        note_col = 2 + 3 * len(b.columns)
        ws.cell(h1, note_col, "Note").font = bold
        for c in range(1, note_col + 1):
            ws.cell(h1, c).fill = head_fill
            ws.cell(h2, c).fill = head_fill
        fmt = "#,##0.0" if b.units.startswith("GBP") else "#,##0"
        for i, row in enumerate(b.rows):
            rr = h2 + 1 + i
            lab = ws.cell(rr, 1, row)
            total = row.startswith("Total")
            if total:
                lab.font = bold
            for j in range(len(b.columns)):
                for k, (stat, _) in enumerate(STATS):
                    cell = ws.cell(rr, 2 + 3 * j + k)
                    if b.status[i, j]:
                        cell.value = SUPPRESSED
                        cell.alignment = Alignment(horizontal="right")
                    else:
                        v = b.values[stat][i, j]
                        cell.value = None if np.isnan(v) else float(v)
                        cell.number_format = fmt
                    if total and k == 0:
                        cell.font = bold
                    elif k > 0:
                        cell.font = Font(italic=True, color="555555")
            ws.cell(rr, note_col, b.row_notes[i]).font = Font(size=9, color="555555")
        end = h2 + len(b.rows)
        if b.note:
            ws.cell(end + 1, 1, b.note).font = Font(size=9, italic=True)
            end += 1
        r = end + 3
        width = max(width, note_col)
    ws.column_dimensions["A"].width = 58
    for c in range(2, width):
        ws.column_dimensions[get_column_letter(c)].width = 9
    ws.column_dimensions[get_column_letter(width)].width = 60
    ws.freeze_panes = "B3"
    ws.page_setup.orientation = "landscape"  # printed: the row labels on every page and
    ws.print_title_cols = "A:A"  # three columns' medians and bands a page, never split
    ws.page_setup.scale = 60
    for c in range(1 + 9, width - 1, 9):
        ws.col_breaks.append(Break(id=c))


def write_return(ret: Return, path: str | Path) -> list[Path]:
    """Write a return as an xlsx workbook and a tidy CSV beside it, atomically.

    The workbook has one sheet per group of tables, in the return's order (row and column
    labels as the return's; median, 5th and 95th percentiles under each column label; ``c`` =
    suppressed), a ``Notes`` sheet (conventions, disclosure control, each total's own median
    against the sum of its rows' medians, the provision-type mapping) and a ``manifest``
    sheet.  The CSV (:func:`tables_path`) holds the same cells, one row per statistic.

    Returns
    -------
    list of Path
        The workbook and the CSV.

    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise ReturnsError(f"{path}: a return is written as an .xlsx workbook")
    sheets: dict[str, list[Block]] = {}
    for b in ret.blocks:
        sheets.setdefault(b.sheet, []).append(b)

    def _xlsx(tmp):
        wb = Workbook()
        wb.remove(wb.active)
        for name, blocks in sheets.items():
            ws = wb.create_sheet(name[:31])
            head = f"{ret.title}" + (f", scenario {ret.scenario}" if ret.scenario else "")
            _write_sheet(ws, blocks, head)
        ws = wb.create_sheet("Notes")
        ws.cell(1, 1, f"{ret.title}: notes").font = Font(bold=True, size=13)
        for i, (k, v) in enumerate(ret.notes, start=3):
            ws.cell(i, 1, k).font = Font(bold=True)
            ws.cell(i, 2, v)
        ws.column_dimensions["A"].width = 40
        ws.column_dimensions["B"].width = 120
        ws = wb.create_sheet("manifest")
        for i, (k, v) in enumerate(manifest_rows(ret.manifest, ret.disclosure)
                                   .itertuples(index=False), start=1):
            ws.cell(i, 1, str(k))
            ws.cell(i, 2, str(v)[:32000])
        wb.save(tmp)

    table = ret.table()
    csv = tables_path(path)
    written = [atomic_write(path, _xlsx)]
    written.append(atomic_write(csv, lambda t: table.to_csv(t, index=False)))
    return written


BUILDERS: dict[str, Callable[..., Return]] = {"lsrp": lsrp, "scap": scap}


def returns(ds: xr.Dataset, fmt: str, out: str | Path, costs: CostConfig | str | Path |
            None = None, area: str | None = None, scenario: str | None = None,
            suppress: float | None = None, round_base: float | None = None) -> list[Path]:
    """Build a return from a run's draws and write its workbook and tidy CSV.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``simsend run`` (raw draws).
    fmt : {"lsrp", "scap", "dsg"}
        The return: local SEND reform plan tables, SCAP specialist places, DSG management
        plan.
    out : path
        The workbook (``.xlsx``); the CSV goes beside it (:func:`tables_path`).
    costs : CostConfig or path, optional
        The cost file (``dsg`` only, required there).
    area, scenario : str, optional
        The council and scenario (``dsg`` reports every scenario).
    suppress, round_base : float, optional
        Disclosure control of counts (:func:`simsend.publish.export.default_disclosure`).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ReturnsError
        An unknown format, a missing cost file, or results lacking what a table needs (the
        message names it).

    Examples
    --------
    >>> import simsend  # doctest: +SKIP
    >>> ds = simsend.run("configs/council.toml", draws=20)  # doctest: +SKIP
    >>> returns(ds, "lsrp", "bham_lsrp.xlsx")  # doctest: +SKIP

    """
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise ReturnsError(f"unknown return format {fmt!r}; expected one of "
                           f"{', '.join(FORMATS)}")
    if Path(out).suffix.lower() != ".xlsx":
        raise ReturnsError(f"{out}: a return is written as an .xlsx workbook")
    if fmt == "dsg":
        if costs is None:
            raise ReturnsError("the DSG return needs a cost file with a [dsg] table: --costs "
                               "configs/costs/council_2021_22.toml")
        if scenario is not None:
            raise ReturnsError("--scenario applies to lsrp and scap; the DSG plan reports "
                               "every scenario of the results")
        ret = dsg(ds, costs, area)
    else:
        if costs is not None:
            raise ReturnsError(f"--costs applies to the dsg return, not {fmt}")
        ret = BUILDERS[fmt](ds, area, scenario, suppress, round_base)
    return write_return(ret, out)
