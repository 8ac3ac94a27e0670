"""Declarative description of every published release family the data layer reads.

Everything that differs between releases lives here and nowhere else: file name patterns,
column renames across releases, which column holds the value, the category column and how its
labels map onto simsend's dimensions (age bands onto ``dims.AGE_GROUPS``, establishment types
onto ``dims.PLACEMENTS``), subtotal labels, and the boundary-change table that puts every year
on one council geography.  The readers in :mod:`simsend.data.readers` are generic and driven by
these tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from simsend.dims import NEEDS, PLACEMENTS

EES_GEO_COLUMNS = ("time_period", "geographic_level", "country_code", "region_code",
                   "region_name", "old_la_code", "new_la_code", "la_name")
"""Geography and time columns of every explore-education-statistics (EES) underlying file."""

EES_RENAMES = {
    "la_code": "old_la_code", "LA_code": "old_la_code", "la_code_old": "old_la_code",
    "LA_Code": "old_la_code", "new_LA_code": "new_la_code", "la_code_new": "new_la_code",
    "year": "time_period", "Year": "time_period", "Geographic_level": "geographic_level",
    "la": "la_name", "LA_name": "la_name", "region": "region_name",
}
"""Column renames seen across EES releases (older table-tool downloads, later releases)."""

MISSING_MARKERS = {
    "z": "not_applicable", "x": "suppressed", "c": "suppressed", "low": "low",
    ":": "not_available", "..": "not_available", "-": "not_available", "u": "low_reliability",
    "": "missing", "NA": "missing", "na": "missing", "NaN": "missing", "nan": "missing",
}
"""Published symbols for cells without a number, and the flag recorded for each.

Such cells are read as NaN (never 0) with the flag kept next to them."""

AGE_BANDS = {
    "Under 5": "under_5", "Age 5 to 10": "5_to_10", "Age 11 to 15": "11_to_15",
    "Age 16 to 19": "16_to_19", "Age 20 to 25": "20_to_25",
    "Under age 5": "under_5", "Aged 5 to 10": "5_to_10", "Aged 11 to 15": "11_to_15",
    "Aged 16 to 19": "16_to_19", "Aged 20 to 25": "20_to_25",
    "0 to 4": "under_5", "5 to 10": "5_to_10", "11 to 15": "11_to_15", "16 to 19": "16_to_19",
    "20 to 25": "20_to_25",
}
"""SEN2 age band labels (as printed across releases) -> ``dims.AGE_GROUPS`` keys."""

ESTABLISHMENT_PLACEMENT: tuple[tuple[str, str], ...] = (
    # (case-insensitive regular expression on establishment_type, placement); first match wins.
    (r"^mainstream\b.*(sen unit|resourced provision)", "inclusion_base"),
    (r"^mainstream\b", "mainstream"),
    (r"^special - (la maintained|academy|free school|academy/free)$", "special_state"),
    (r"^hospital school", "special_state"),
    (r"^special - (independent|non-maintained)$", "special_independent"),
    (r"^(ap/pru|alternative provision|pupil referral)", "alternative_provision"),
    (r"^(general fe|other fe|sixth form college|specialist post-16|independent specialist"
     r" providers|further education)", "post16_fe"),
    (r"^(work-based learning|apprenticeship|traineeship|supported internship)", "post16_fe"),
    (r".*", "other"),  # early years, educated elsewhere, awaiting provision, NEET, other
)
"""SEN2 establishment type -> placement group.  Rows whose ``establishment_type`` is a subtotal
label (:data:`SUBTOTAL_LABELS`) are group subtotals and are never mapped (no double count)."""

SUBTOTAL_LABELS = ("Total", "All", "Total (all types)")
"""Labels of total / subtotal rows in category columns."""


def placement_of(establishment_type: str) -> str:
    """Map a published SEN2 establishment type onto a placement group.

    Examples
    --------
    >>> placement_of("Mainstream - Academy - SEN unit")
    'inclusion_base'
    >>> placement_of("Special - Independent")
    'special_independent'
    >>> placement_of("NEET")
    'other'

    """
    s = establishment_type.strip()
    for pattern, placement in ESTABLISHMENT_PLACEMENT:
        if re.search(pattern, s, flags=re.IGNORECASE):
            return placement
    return "other"  # pragma: no cover - the last pattern matches everything


@dataclass(frozen=True)
class ReleaseFamily:
    """One family of published files that share a layout across releases.

    Attributes
    ----------
    name : str
        Family key (also the ``[data.files]`` key under which a raw file may be given).
    title, publisher, url : str
        What the release is and where it is published.
    patterns : tuple of str
        File name globs that identify the family (any release year).
    layout : str
        ``"ees"`` (explore-education-statistics underlying data), ``"lait"``, ``"ons_mye"``,
        ``"national_metric"`` or ``"cin_need"``.
    kind : str
        Tidy table the family feeds: ``stock``, ``flows``, ``population`` or ``need_mix``.
    values : dict
        Published value column -> tidy measure (``plan`` for stocks, ``flow`` for flows).  The
        first listed column present in a file is used where several mean the same thing.
    renames : dict
        Extra column renames for this family (on top of :data:`EES_RENAMES`).
    category : str or None
        Column whose labels give the breakdown.
    dimension : str or None
        Tidy dimension the category maps onto (``age_group`` or ``placement``).
    categories : dict
        Category label -> tidy label (for ``age_group``); placements use
        :func:`placement_of`.
    group_column : str or None
        Column holding the group of a category (estab files: ``establishment_group``).
    required : tuple of str
        Columns that must be present (after renames).

    """

    name: str
    title: str
    publisher: str
    url: str
    patterns: tuple[str, ...]
    layout: str
    kind: str
    values: dict[str, str] = field(default_factory=dict)
    renames: dict[str, str] = field(default_factory=dict)
    category: str | None = None
    dimension: str | None = None
    categories: dict[str, str] = field(default_factory=dict)
    group_column: str | None = None
    required: tuple[str, ...] = ()


SEN2_URL = ("https://explore-education-statistics.service.gov.uk/find-statistics/"
            "education-health-and-care-plans/2022")
SEN_URL = ("https://explore-education-statistics.service.gov.uk/find-statistics/"
           "special-educational-needs-in-england")
ONS_URL = ("https://www.ons.gov.uk/peoplepopulationandcommunity/populationandmigration/"
           "populationestimates/datasets/"
           "populationestimatesforukenglandandwalesscotlandandnorthernireland")
LAIT_URL = "https://www.gov.uk/government/publications/local-authority-interactive-tool-lait"
CIN_URL = ("https://explore-education-statistics.service.gov.uk/find-statistics/outcomes-for-"
           "children-in-need-including-children-looked-after-by-local-authorities-in-england")

_SEN2 = dict(publisher="DfE (SEN2 collection)", url=SEN2_URL, layout="ees")

RELEASES: dict[str, ReleaseFamily] = {
    f.name: f for f in (
        ReleaseFamily(
            name="sen2_age_caseload", title="EHC plans at January by age band", **_SEN2,
            patterns=("sen2_age_caseload*.csv", "*ehc*plans*age*caseload*.csv"), kind="stock",
            values={"Total_all": "ehcp", "total_all": "ehcp", "Total_ehc": "ehcp"},
            category="characteristic_age", dimension="age_group", categories=AGE_BANDS,
            renames={"age": "characteristic_age", "age_group": "characteristic_age"},
            required=("time_period", "geographic_level", "characteristic_age")),
        ReleaseFamily(
            name="sen2_estab_caseload", title="EHC plans at January by establishment type",
            **_SEN2, patterns=("sen2_estab_caseload*.csv", "*ehc*plans*estab*caseload*.csv"),
            kind="stock", values={"Total_all": "ehcp", "total_all": "ehcp", "Total_ehc": "ehcp"},
            category="establishment_type", dimension="placement",
            group_column="establishment_group",
            required=("time_period", "geographic_level", "establishment_type",
                      "establishment_group")),
        ReleaseFamily(
            name="sen2_age_new_plans", title="New EHC plans in the calendar year by age band",
            **_SEN2, patterns=("sen2_age_new_plans*.csv",), kind="flows",
            values={"Total_new_all": "new_plans", "total_new_all": "new_plans",
                    "Total_new_ehc": "new_plans"},
            category="characteristic_age", dimension="age_group", categories=AGE_BANDS,
            renames={"age": "characteristic_age", "age_group": "characteristic_age"},
            required=("time_period", "geographic_level", "characteristic_age")),
        ReleaseFamily(
            name="sen2_estab_new_plans",
            title="New EHC plans in the calendar year by establishment type", **_SEN2,
            patterns=("sen2_estab_new_plans*.csv",), kind="flows",
            values={"Total_new_all": "new_plans", "total_new_all": "new_plans",
                    "Total_new_ehc": "new_plans"},
            category="establishment_type", dimension="placement",
            group_column="establishment_group",
            required=("time_period", "geographic_level", "establishment_type",
                      "establishment_group")),
        ReleaseFamily(
            name="sen2_mi",
            title="EHC needs assessment process (requests, assessments, discontinued plans)",
            **_SEN2, patterns=("sen2_mi*.csv",), kind="flows",
            values={"InreqEHC": "requests", "AssRefusedEHC": "requests_refused",
                    "NewallEHC": "assessed_plan_issued", "AssnoneEHC": "assessed_no_plan",
                    "DisleftEHC": "ceased_left_education", "DismetEHC": "ceased_needs_met",
                    "DisleaEHC": "ceased_moved_la", "DisothEHC": "ceased_other",
                    "MtosiEHC": "mainstream_to_special", "SitomEHC": "special_to_mainstream"},
            required=("time_period", "geographic_level")),
        ReleaseFamily(
            name="lait_sen", title="LAIT SEN indicators (school census and SEN2)",
            publisher="DfE Local Authority Interactive Tool", url=LAIT_URL,
            patterns=("lait_la_sen_indicators*.csv",), layout="lait", kind="stock",
            values={"SEN_TotSENSuP": "sen_support_pct", "SEN_TotStat": "ehcp_pct"},
            required=("short_desc", "year", "area_name", "la_number", "value")),
        ReleaseFamily(
            name="school_census_national", title="Special educational needs in England (national)",
            publisher="DfE (school census)", url=SEN_URL,
            patterns=("school_census_sen_national*.csv",), layout="national_metric",
            kind="stock",
            values={"sen_support_pupils": "sen_support",
                    "ehc_plan_or_statement_pupils": "ehcp_pupils",
                    "sen_support_pct_2dp": "sen_support_pct",
                    "sen_support_pct_lait": "sen_support_pct",
                    "sen_support_pct": "sen_support_pct",
                    "ehc_plan_or_statement_pct_2dp": "ehcp_pct",
                    "ehc_plan_or_statement_pct_lait": "ehcp_pct",
                    "ehc_plan_or_statement_pct": "ehcp_pct"},
            required=("year", "metric", "value")),
        ReleaseFamily(
            name="cin_sen_by_need", title="Pupils by SEN provision and primary need (national)",
            publisher="DfE (school census, via CIN outcomes release)", url=CIN_URL,
            patterns=("cin_publication_sen_national_by_need*.csv",), layout="cin_need",
            kind="need_mix",
            values={**{f"t_{n.upper()}_ss": f"sen_support:{n}" for n in NEEDS},
                    **{f"t_{n.upper()}_se": f"ehcp:{n}" for n in NEEDS}},
            required=("time_period", "social_care_group")),
        ReleaseFamily(
            name="ons_mye", title="ONS mid-year population estimates, persons by single age",
            publisher="ONS", url=ONS_URL,
            patterns=("ons_mye_persons_age0to25_england_areas*.csv",
                      "ons_mye_persons_age0to25_england_national*.csv"),
            layout="ons_mye", kind="population", values={"population": "population"},
            renames={"area_code": "area", "count": "population"},
            required=("year", "age", "population")),
    )
}
"""Every release family, keyed by name."""

NEED_COLUMN_ALIASES = {"SPLD": "SpLD"}
"""Need codes as printed upper-case in the CIN file -> ``dims.NEEDS``."""

CIN_ALL_PUPILS = "All pupils comparison"
"""``social_care_group`` of the all-pupils rows of the CIN need file."""

LAIT_AGGREGATE_NUMBERS = {"970": "E92000001", "921": None, "986": None, "987": None,
                          "988": None}
"""LAIT pseudo-LA numbers: England (970) and London aggregates (ignored)."""


# --------------------------------------------------------------------------- geography


@dataclass(frozen=True)
class BoundaryChange:
    """Councils replaced by others; data in the old geography are apportioned to the new.

    ``old`` and ``new`` are GSS codes (``old_la`` / ``new_la``: DfE 3-digit numbers).  Where a
    source year has any ``old`` area and no ``new`` area, the old areas' total is split over the
    new ones by their shares in the first year of that source that has the new areas (per
    category where one exists), integer-exactly.  ``kind`` is ``recode`` (one to one),
    ``merge``, ``split`` or ``reorganise`` (many to many).
    """

    old: tuple[str, ...]
    new: tuple[str, ...]
    old_la: tuple[str, ...]
    new_la: tuple[str, ...]
    kind: str
    effective: str
    note: str


BOUNDARY_CHANGES: tuple[BoundaryChange, ...] = (
    BoundaryChange(("E08000020",), ("E08000037",), ("390",), ("390",), "recode", "2014-04",
                   "Gateshead GSS code changed (boundary correction)"),
    BoundaryChange(("E06000048",), ("E06000057",), ("929",), ("929",), "recode", "2014-04",
                   "Northumberland GSS code changed (boundary correction)"),
    BoundaryChange(("E10000002",), ("E06000060",), ("825",), ("825",), "recode", "2020-04",
                   "Buckinghamshire county (and its districts) became a unitary authority"),
    BoundaryChange(("E10000009", "E06000028", "E06000029"), ("E06000059", "E06000058"),
                   ("835", "837", "836"), ("838", "839"), "reorganise", "2019-04",
                   "Dorset county, Bournemouth and Poole became Dorset and Bournemouth,"
                   " Christchurch and Poole (Christchurch moved from Dorset to BCP)"),
    BoundaryChange(("E10000021",), ("E06000061", "E06000062"), ("928",), ("940", "941"),
                   "split", "2021-04",
                   "Northamptonshire split into North and West Northamptonshire"),
)
"""Council boundary changes between 2009 and January 2022 (the DfE geography of January 2022
is the current geography of the shipped extract; the April-2023 changes in Cumbria, North
Yorkshire and Somerset are after the data cut-off)."""

ENGLAND = "E92000001"
REGION_PREFIX = "E12"

PLACEMENT_LABELS = PLACEMENTS
