"""The DfE local SEND reform plan's 14 provision types, and SEN2's split of each placement group.

The engine forecasts EHC plans by seven placement groups (:data:`simsend.dims.PLACEMENTS`),
mapped from SEN2 establishment types by :data:`simsend.data.releases.ESTABLISHMENT_COLUMNS`.
The local SEND reform plan (LSRP) template asks for 14 provision types
(:data:`PROVISION_TYPES`).  This module maps every SEN2 establishment column onto one
provision type (:data:`ESTABLISHMENT_PROVISION`) so that each provision type lies inside one
engine group (:data:`PROVISION_PLACEMENT`), and :func:`establishment_shares` reads the shipped
counts by establishment type (``simsend/data/builtin/establishments.csv.gz``, built by
``scripts/build_establishments.py`` from the SEN2 2025 release) and returns, per area, the
share of each group's plans in each provision type at a January census.
:func:`simsend.analysis.lsrp.provision_view` applies those shares to a forecast.

**Mapping** (SEN2 column -> provision type; engine group in brackets; why):

``mainstream_la_maintained``, ``mainstream_academy``, ``mainstream_free_school`` ->
    ``mainstream_schools`` (mainstream): mainstream schools and academies.  School sixth forms
    are recorded under the school, so their post-16 students stay here, not in
    ``mainstream_post16``; maintained nursery schools and classes are recorded under the
    school too, so they stay here, not in ``early_years``.
``mainstream_independent`` -> ``mainstream_schools`` (mainstream): the template's "NMSS or
    independent" rows are read as independent *special* schools; independent mainstream schools
    are in the engine's mainstream group and a provision type must lie in one group
    (England January 2025: 7,174 plans, 1.1 %).
``mainstream_*_resourced_provision``, ``mainstream_*_senunit`` (six columns) ->
    ``specialist_bases`` (inclusion_base): SEN units and resourced provision, the template's
    wording.
``special_la_maintained``, ``special_academy_free`` -> ``special_schools`` (special_state):
    maintained special schools, special academies and special free schools.  Hospital schools
    have no column of their own: SEN2 records them under their GIAS type (special school or
    pupil referral unit), so they stay in ``special_schools`` / ``alternative_provision`` and
    are not in ``other``.
``special_independent``, ``special_non_maintained`` -> ``independent_la_funded``
    (special_independent): independent and non-maintained special schools.  SEN2 does not say
    who funds the place; every such placement is taken as LA-funded (see below).
``ap_pru_academy``, ``ap_pru_free_school``, ``ap_pru_la_maintained`` ->
    ``alternative_provision`` (alternative_provision): AP academies, AP free schools, PRUs.
``general_fe_tertiary_colleges`` -> ``mainstream_post16`` (post16_fe): "FE colleges and sixth
    forms" (sixth-form and tertiary colleges).
``ukrlp_provider`` -> ``mainstream_post16`` (post16_fe): other post-16 learning providers on
    the UK register (training providers); specialist ones are on the separate list below.
``specialist_post_16_institutions`` -> ``specialist_post16`` (post16_fe): specialist post-16
    institutions.
``nm_early_years`` -> ``early_years`` (other): non-maintained early years settings, the
    template's PVIs.
``elective_home_education`` -> ``elective_home_education`` (other).
``other_arrangements_la`` -> ``eotas`` (other): "other arrangements made by the LA", education
    otherwise than at school (section 61).
``other_arrangements_parents`` -> ``other`` (other): arrangements made by parents (section
    42(5)); not the LA's (so not EOTAS) and not necessarily an independent school (it may be
    home education or any setting the parents pay for): SEN2 cannot tell which.
``online_provider``, ``w_settings``, ``other_schools``, ``other_placement_settings`` ->
    ``other`` (other): online providers, Welsh schools and establishments, other school types
    (service children's education, secure units, schools overseas, GIAS "miscellaneous"),
    other placements (awaiting provision, a setting type named but no setting, out of
    provision).
``neet``, ``neet_ntci``, ``neet_other``, ``neet_other_csa`` -> ``other`` (other): not in
    education, employment or training, the template's "NEET".
``placement_unknown``, ``await_prov_2022``, ``perm_ex_2022`` -> ``other`` (other): placement
    not recorded; awaiting provision and permanently excluded (collected to January 2022).

**Types SEN2 cannot separate** (:data:`NOT_SEPARATED`; no column, so they come out 0 with a
note; ASSUMPTION): ``support_bases`` (the reform's support bases in mainstream are not a SEN2
establishment type; pupils in them are on a mainstream school's roll, counted in
``mainstream_schools`` or ``specialist_bases``), ``independent_other_arrangements`` (SEN2 does
not record who funds an independent or non-maintained special school place: all are
``independent_la_funded``; places parents arrange themselves may also be in
``other_arrangements_parents``, i.e. ``other``) and ``mainstream_post16_specialist`` (specialist
provision inside a mainstream college is recorded as the college: ``mainstream_post16``).

**Early years and hospital schools** straddle two engine groups in the template's wording
(non-maintained settings are in ``other``, maintained nursery schools in ``mainstream``;
hospital schools in ``special_state`` or ``alternative_provision``).  A provision type must lie
in one group, so ``early_years`` is the non-maintained settings only and hospital schools stay
where SEN2 records them (above).

**Shares.**  For area ``a`` and census ``y``, the share of provision type ``t`` in group ``g``
is the published plans of ``t``'s columns over those of ``g``'s columns.  An area-year counts
only when it publishes every column England publishes that year (a year with cells suppressed
or a council that returned totals only, e.g. Peterborough and Hackney in January 2024 and
Cambridgeshire and North East Lincolnshire in January 2025, would bias the shares and is
skipped for the area's previous complete census).  A group with no published plans in the
area takes England's shares of the same census.  Shares are held as integer multiples of
``2**-SHARE_BITS`` that sum to exactly 1 per group (largest remainder), so a count times its
shares, summed over a group's provision types, gives back the count exactly in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from simsend.data.errors import DataError, cell_error
from simsend.data.releases import (
    BOUNDARY_CHANGES,
    CODE_ALIASES,
    ENGLAND,
    ESTABLISHMENT_COLUMNS,
)
from simsend.data.rounding import largest_remainder
from simsend.dims import PLACEMENTS

ESTABLISHMENTS_FILE = "establishments.csv.gz"
"""Name of the tidy file in ``simsend/data/builtin``."""
COLUMNS = ("year", "area", "establishment", "count")
"""Columns of the tidy file, in order."""
SHARE_BITS = 28
"""Shares are multiples of ``2**-SHARE_BITS``: a count below ``2**(53 - SHARE_BITS)`` (33.5
million) times a share, and sums of such products, are exact in float64."""

PROVISION_TYPES: dict[str, str] = {
    "early_years": "Early years settings including PVIs",
    "mainstream_schools": "Mainstream schools or academies",
    "support_bases": "Support bases in mainstream",
    "specialist_bases": "Specialist bases in mainstream (SEN units, resourced provision)",
    "special_schools": "Maintained special schools or special academies",
    "independent_la_funded": "NMSS or independent schools (LA-funded placements)",
    "independent_other_arrangements": "NMSS or independent (other arrangements)",
    "alternative_provision": "Alternative provision",
    "mainstream_post16": "Mainstream post-16",
    "mainstream_post16_specialist": "Mainstream post-16 specialist provision",
    "specialist_post16": "Specialist post-16 institutions",
    "elective_home_education": "Elective home education",
    "eotas": "Other arrangements by the LA (EOTAS)",
    "other": "Other (including hospital schools, NEET)",
}
"""The 14 provision types of the LSRP template (key -> template label), in its order."""

ESTABLISHMENT_PROVISION: dict[str, str] = {
    # why each line: see the module docstring
    "mainstream_la_maintained": "mainstream_schools",
    "mainstream_academy": "mainstream_schools",
    "mainstream_free_school": "mainstream_schools",
    "mainstream_independent": "mainstream_schools",
    "mainstream_la_maintained_resourced_provision": "specialist_bases",
    "mainstream_la_maintained_senunit": "specialist_bases",
    "mainstream_academy_resourced_provision": "specialist_bases",
    "mainstream_academy_senunit": "specialist_bases",
    "mainstream_free_school_resourced_provision": "specialist_bases",
    "mainstream_free_school_senunit": "specialist_bases",
    "special_la_maintained": "special_schools",
    "special_academy_free": "special_schools",
    "special_independent": "independent_la_funded",
    "special_non_maintained": "independent_la_funded",
    "ap_pru_academy": "alternative_provision",
    "ap_pru_free_school": "alternative_provision",
    "ap_pru_la_maintained": "alternative_provision",
    "general_fe_tertiary_colleges": "mainstream_post16",
    "specialist_post_16_institutions": "specialist_post16",
    "ukrlp_provider": "mainstream_post16",
    "elective_home_education": "elective_home_education",
    "other_arrangements_la": "eotas",
    "other_arrangements_parents": "other",
    "online_provider": "other",
    "w_settings": "other",
    "other_schools": "other",
    "other_placement_settings": "other",
    "neet": "other",
    "neet_ntci": "other",
    "neet_other": "other",
    "neet_other_csa": "other",
    "nm_early_years": "early_years",
    "placement_unknown": "other",
    "await_prov_2022": "other",
    "perm_ex_2022": "other",
}
"""SEN2 establishment column -> provision type (every column of ``ESTABLISHMENT_COLUMNS``)."""

NOT_SEPARATED: dict[str, str] = {
    "support_bases": "not a SEN2 establishment type: pupils in support bases are counted in "
                     "mainstream schools or specialist bases",
    "independent_other_arrangements": "SEN2 does not record who funds an independent or "
                                      "non-maintained special school place: all are counted "
                                      "as LA-funded",
    "mainstream_post16_specialist": "SEN2 records specialist provision in a mainstream "
                                    "college as the college: counted in mainstream post-16",
}
"""Provision types with no SEN2 column: 0 in every share (ASSUMPTION), and why."""

PROVISION_PLACEMENT: dict[str, str] = {
    "early_years": "other",
    "mainstream_schools": "mainstream",
    "support_bases": "mainstream",
    "specialist_bases": "inclusion_base",
    "special_schools": "special_state",
    "independent_la_funded": "special_independent",
    "independent_other_arrangements": "special_independent",
    "alternative_provision": "alternative_provision",
    "mainstream_post16": "post16_fe",
    "mainstream_post16_specialist": "post16_fe",
    "specialist_post16": "post16_fe",
    "elective_home_education": "other",
    "eotas": "other",
    "other": "other",
}
"""Provision type -> the engine placement group holding it: every SEN2 column of the type lies
in this group (:func:`mapping_problems`); a type with no SEN2 column is held where its pupils
are counted today (:data:`NOT_SEPARATED`)."""

ASSUMPTION = ("ASSUMPTION: within each engine placement group the split into LSRP provision "
              "types is held at the SEN2 January census of the shares (the baseline's) for "
              "every forecast year; types SEN2 cannot separate ("
              + ", ".join(NOT_SEPARATED) + ") are 0")
"""The assumption behind every provision-type figure, as recorded in attrs."""


def mapping_problems() -> list[str]:
    """Return what is wrong with the mapping (empty when it is sound).

    Checks that every column of ``ESTABLISHMENT_COLUMNS`` maps to exactly one provision type
    and no other column is mapped, that every provision type has columns or a
    :data:`NOT_SEPARATED` note (not both), and that each type's columns lie in one engine
    group, the one :data:`PROVISION_PLACEMENT` names.

    Examples
    --------
    >>> mapping_problems()
    []

    """
    out = []
    groups = dict(ESTABLISHMENT_COLUMNS)
    cols = [c for c, _ in ESTABLISHMENT_COLUMNS]
    for c in sorted(set(cols) - set(ESTABLISHMENT_PROVISION)):
        out.append(f"establishment column {c!r} has no provision type")
    for c in sorted(set(ESTABLISHMENT_PROVISION) - set(cols)):
        out.append(f"{c!r} is mapped but is not in ESTABLISHMENT_COLUMNS")
    if len(cols) != len(set(cols)):
        out.append("ESTABLISHMENT_COLUMNS lists a column twice")
    for c, t in ESTABLISHMENT_PROVISION.items():
        if t not in PROVISION_TYPES:
            out.append(f"{c!r} maps to unknown provision type {t!r}")
    if list(PROVISION_PLACEMENT) != list(PROVISION_TYPES):
        out.append("PROVISION_PLACEMENT does not list the provision types in template order")
    for t in PROVISION_TYPES:
        if PROVISION_PLACEMENT.get(t) not in PLACEMENTS:
            out.append(f"provision type {t!r}: {PROVISION_PLACEMENT.get(t)!r} is not an "
                       "engine placement group")
        mine = {groups[c] for c, tt in ESTABLISHMENT_PROVISION.items()
                if tt == t and c in groups}
        if not mine and t not in NOT_SEPARATED:
            out.append(f"provision type {t!r} has no column and no NOT_SEPARATED note")
        if mine and t in NOT_SEPARATED:
            out.append(f"provision type {t!r} has columns but a NOT_SEPARATED note")
        if len(mine) > 1:
            out.append(f"provision type {t!r} straddles engine groups {sorted(mine)}")
        if mine and PROVISION_PLACEMENT.get(t) not in mine:
            out.append(f"provision type {t!r}: PROVISION_PLACEMENT says "
                       f"{PROVISION_PLACEMENT.get(t)!r}, its columns are in {sorted(mine)}")
    return out


def establishments_path() -> Path:
    """Path of the shipped tidy file."""
    from simsend.data.baseline import builtin_dir  # a sibling's helper, read lazily
    return builtin_dir() / ESTABLISHMENTS_FILE



def read_establishments(path: str | Path | None = None) -> pd.DataFrame:
    """Read a tidy establishment file (default: the shipped one), checked.

    Parameters
    ----------
    path : path, optional
        A file in the tidy format (:data:`COLUMNS`; gzip'd when it ends in ``.gz``); default
        :func:`establishments_path`.

    Returns
    -------
    DataFrame
        ``year`` int64, ``area`` str, ``establishment`` str, ``count`` int64.  An absent row
        is a cell SEN2 did not publish (never 0).

    Raises
    ------
    DataError
        An unreadable file, missing columns, a year or count that is not a whole number >= 0,
        an establishment not in :data:`ESTABLISHMENT_PROVISION`, or a row given twice; the
        message names the file, row and column.

    Examples
    --------
    >>> df = read_establishments()
    >>> int(df.query("year == 2025 and area == 'E92000001'")["count"].sum())
    638745

    """
    path = Path(path) if path is not None else establishments_path()
    file = path.name
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, EOFError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot be read as CSV: {exc}") from None
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"{file}: missing column(s) {missing} (expected {list(COLUMNS)})")
    num = {}
    for c in ("year", "count"):
        ok = raw[c].str.fullmatch(r"\d+")
        if not ok.all():
            i = int(np.flatnonzero(~ok.to_numpy())[0])
            raise cell_error(file, i + 2, c, raw[c][i], "expected a whole number >= 0")
        num[c] = raw[c].astype(np.int64)
    bad = ~raw["establishment"].isin(list(ESTABLISHMENT_PROVISION))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise cell_error(file, i + 2, "establishment", raw["establishment"][i],
                    "expected an establishment column of simsend.data.releases."
                    "ESTABLISHMENT_COLUMNS")
    df = pd.DataFrame({"year": num["year"], "area": raw["area"].astype(str),
                       "establishment": raw["establishment"].astype(str),
                       "count": num["count"]})
    dup = np.flatnonzero(df.duplicated(["year", "area", "establishment"]).to_numpy())
    if len(dup):
        i = int(dup[0])
        raise cell_error(file, i + 2, "establishment", df["establishment"][i],
                    f"given twice for {df['area'][i]} in {df['year'][i]}")
    return df


def _complete(df: pd.DataFrame) -> pd.DataFrame:
    """Return the (year, area) pairs that publish every column England publishes."""
    have = df.groupby(["year", "area"])["establishment"].agg(frozenset)
    eng = {y: have.get((y, ENGLAND), frozenset()) for y in df["year"].unique()}
    ok = [(y, a) for (y, a), cols in have.items() if eng[y] and eng[y] <= cols]
    return pd.DataFrame(ok, columns=["year", "area"])


def _predecessors(area: str) -> tuple[str, ...]:
    """Former councils a council replaced (:data:`BOUNDARY_CHANGES`), or ()."""
    return tuple(o for ch in BOUNDARY_CHANGES if area in ch.new for o in ch.old)


def _type_counts(df: pd.DataFrame, year: int, areas: Sequence[str]) -> np.ndarray:
    """Return the published plans by provision type in ``year``, summed over ``areas``."""
    sel = df[(df["year"] == year) & df["area"].isin(list(areas))]
    by = sel.groupby(sel["establishment"].map(ESTABLISHMENT_PROVISION))["count"].sum()
    return by.reindex(list(PROVISION_TYPES), fill_value=0).to_numpy(np.int64)


def _group_shares(counts: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Shares (placement, provision_type) from counts by type; groups with no plans listed."""
    unit = 2 ** SHARE_BITS
    out = np.zeros((len(PLACEMENTS), len(PROVISION_TYPES)))
    empty = []
    types = list(PROVISION_TYPES)
    for g, group in enumerate(PLACEMENTS):
        idx = [i for i, t in enumerate(types)
               if PROVISION_PLACEMENT[t] == group and t not in NOT_SEPARATED]
        c = counts[idx]
        if c.sum() <= 0:
            empty.append(group)
            continue
        out[g, idx] = largest_remainder(unit, c.astype(float)) / unit
    return out, empty


def establishment_shares(areas: Sequence[str] | str, year: int,
                         path: str | Path | None = None) -> xr.DataArray:
    """Share of each engine placement group's EHC plans in each LSRP provision type.

    For each area, the latest January census at or before ``year`` that the area published in
    full (see the module docstring); a council created after that census (Cumberland,
    Westmorland and Furness, North and West Northamptonshire, Dorset, BCP) takes the summed
    counts of the councils it replaced; a group with no published plans takes England's shares
    of the same census.

    Parameters
    ----------
    areas : sequence of str or str
        GSS codes (councils, regions, England ``E92000001``; other codes of a council as in
        ``areas.csv`` are accepted).
    year : int
        January census year (e.g. a run's start year, 2025).
    path : path, optional
        Tidy establishment file (default the shipped ``establishments.csv.gz``).

    Returns
    -------
    xarray.DataArray
        ``provision_share`` over ``(area, placement, provision_type)``: for every area and
        placement group the shares of the group's provision types, summing to 1 (exactly:
        multiples of ``2**-SHARE_BITS``); 0 for types outside the group and for
        :data:`NOT_SEPARATED` types.  Coordinate ``census_year`` (area) is the census the
        shares come from; attrs ``england_fallback`` and ``predecessor_fallback`` name the
        groups and areas that borrowed shares.

    Raises
    ------
    DataError
        An area the file does not hold (naming it), or no complete census at or before
        ``year`` for it.

    Examples
    --------
    >>> s = establishment_shares(["E08000025"], 2025)
    >>> float(s.sel(placement="post16_fe").sum("provision_type").item())
    1.0
    >>> int(s["census_year"].item())
    2025

    """
    areas = [areas] if isinstance(areas, str) else [str(a) for a in areas]
    df = read_establishments(path)
    file = Path(path).name if path is not None else ESTABLISHMENTS_FILE
    full = _complete(df)
    years_of = full.groupby("area")["year"].agg(lambda s: sorted(s)).to_dict()
    eng_years = years_of.get(ENGLAND, [])
    known = set(df["area"])
    aliases = {k: v for k, (v, _) in CODE_ALIASES.items()}
    arr = np.zeros((len(areas), len(PLACEMENTS), len(PROVISION_TYPES)))
    census, eng_fallback, pred_fallback = [], [], []
    england_cache: dict[int, np.ndarray] = {}
    for i, asked in enumerate(areas):
        a = aliases.get(asked, asked)
        own = [y for y in years_of.get(a, []) if y <= year]
        source: Sequence[str] = (a,)
        if own:
            y = own[-1]
        else:
            preds = _predecessors(a)
            py = sorted({yy for p in preds for yy in years_of.get(p, []) if yy <= year})
            if py:
                y = py[-1]
                source = tuple(p for p in preds if y in years_of.get(p, []))
                pred_fallback.append(f"{asked}: January {y} counts of {', '.join(source)}")
            elif a not in known and not any(p in known for p in preds):
                raise DataError(f"{file}: area {asked!r} has no SEN2 establishment counts "
                                "(expected a council, region or England GSS code as in "
                                "areas.csv)")
            else:
                first = years_of.get(a, []) or [None]
                raise DataError(f"{file}: area {asked!r} has no complete SEN2 census at or "
                                f"before January {year}"
                                + (f" (first: January {first[0]})" if first[0] else ""))
        shares, empty = _group_shares(_type_counts(df, y, source))
        if empty:
            if y not in eng_years:  # pragma: no cover - England publishes every year
                raise DataError(f"{file}: no complete England census in January {y}")
            if y not in england_cache:
                england_cache[y] = _group_shares(_type_counts(df, y, (ENGLAND,)))[0]
            for g in empty:
                k = PLACEMENTS.index(g)
                shares[k] = england_cache[y][k]
            eng_fallback.append(f"{asked}: {', '.join(empty)} (England's January {y} shares)")
        arr[i] = shares
        census.append(y)
    return xr.DataArray(
        arr, dims=("area", "placement", "provision_type"), name="provision_share",
        coords={"area": areas, "placement": list(PLACEMENTS),
                "provision_type": list(PROVISION_TYPES),
                "census_year": ("area", np.array(census, np.int64))},
        attrs={"long_name": "share of the engine placement group's EHC plans in the LSRP "
                            "provision type (SEN2 January census)",
               "units": "1",
               "source": f"SEN2 2025 release, caseload.csv, All EHC plans by establishment "
                         f"type ({ESTABLISHMENTS_FILE}); mapping simsend.data.lsrp",
               "requested_year": int(year),
               "england_fallback": "; ".join(eng_fallback),
               "predecessor_fallback": "; ".join(pred_fallback),
               "not_separated": "; ".join(f"{t}: {v}" for t, v in NOT_SEPARATED.items()),
               "share_resolution": f"2**-{SHARE_BITS}"})
