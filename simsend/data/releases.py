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


ESTABLISHMENT_COLUMNS: tuple[tuple[str, str], ...] = (
    # SEN2 person-level release (2023 on; caseload.csv, newplans.csv): one column per
    # establishment type -> placement group.  Every detail column is listed; the subtotals
    # (ESTABLISHMENT_SUBTOTALS) and the percentage columns (*_pc) are never summed.
    ("mainstream_la_maintained", "mainstream"),
    ("mainstream_academy", "mainstream"),
    ("mainstream_free_school", "mainstream"),
    ("mainstream_independent", "mainstream"),
    ("mainstream_la_maintained_resourced_provision", "inclusion_base"),
    ("mainstream_la_maintained_senunit", "inclusion_base"),
    ("mainstream_academy_resourced_provision", "inclusion_base"),
    ("mainstream_academy_senunit", "inclusion_base"),
    ("mainstream_free_school_resourced_provision", "inclusion_base"),
    ("mainstream_free_school_senunit", "inclusion_base"),
    ("special_la_maintained", "special_state"),
    ("special_academy_free", "special_state"),
    ("special_independent", "special_independent"),
    ("special_non_maintained", "special_independent"),
    ("ap_pru_academy", "alternative_provision"),
    ("ap_pru_free_school", "alternative_provision"),
    ("ap_pru_la_maintained", "alternative_provision"),
    ("general_fe_tertiary_colleges", "post16_fe"),
    ("specialist_post_16_institutions", "post16_fe"),
    ("ukrlp_provider", "post16_fe"),
    ("elective_home_education", "other"),
    ("other_arrangements_la", "other"),
    ("other_arrangements_parents", "other"),
    ("online_provider", "other"),
    ("w_settings", "other"),
    ("other_schools", "other"),
    ("other_placement_settings", "other"),
    ("neet", "other"),
    ("neet_ntci", "other"),
    ("neet_other", "other"),
    ("neet_other_csa", "other"),
    ("nm_early_years", "other"),
    ("placement_unknown", "other"),
    ("await_prov_2022", "other"),
    ("perm_ex_2022", "other"),
)
"""SEN2 (person-level release) establishment-type column -> placement group."""

ESTABLISHMENT_SUBTOTALS: dict[str, tuple[str, ...]] = {
    "mainstream_total": tuple(c for c, p in ESTABLISHMENT_COLUMNS[:10]),
    "special_total": ("special_la_maintained", "special_academy_free", "special_independent",
                      "special_non_maintained"),
    "ap_pru_total": ("ap_pru_academy", "ap_pru_free_school", "ap_pru_la_maintained"),
    "fe_total": ("general_fe_tertiary_colleges", "specialist_post_16_institutions",
                 "ukrlp_provider"),
    "ed_elsewhere": (),
}
"""Subtotal columns of the person-level release and the columns each sums (checked, never
counted).  ``ed_elsewhere`` (educated elsewhere) is not checked: its composition changed in
2023 (``other_placement_settings``, online providers, Welsh and other schools included from
then on)."""

NEED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("number_asd", "ASD"), ("number_semh", "SEMH"), ("number_slcn", "SLCN"),
    ("number_mld", "MLD"), ("number_spld", "SpLD"), ("number_sld", "SLD"),
    ("number_pmld", "PMLD"), ("number_hi", "HI"), ("number_vi", "VI"), ("number_msi", "MSI"),
    ("number_pd", "PD"), ("number_oth", "OTH"),
    # 'Primary need is not recorded' -> NSA (no specialist assessment of need), so that the
    # published need margin is kept whole (England January 2025: 4,870 of 638,745 plans)
    ("number_need_unknown", "NSA"),
)
"""SEN2 ``sen_needs_all_plans.csv`` need columns -> ``dims.NEEDS`` (Down syndrome is in OTH)."""

AGE_SPANS = {
    "under 3": (0, 2), "age 2 and under": (0, 2), "aged 2 and under": (0, 2),
    "age 20 and over": (20, 25), "aged 20 and over": (20, 25),
}
"""Person-level SEN2 age labels that cover several single years (lower case)."""

AGE_UNKNOWN = ("unknown", "age unknown")
"""Person-level SEN2 labels of an unrecorded age (lower case)."""


def age_span(label: str) -> tuple[int, int] | None:
    """Ages a person-level SEN2 age label covers, or None for an unknown age.

    Examples
    --------
    >>> age_span("age 6"), age_span("Aged 14"), age_span("under 3"), age_span("Age unknown")
    ((6, 6), (14, 14), (0, 2), None)

    Raises
    ------
    ValueError
        For a label that is not an age.

    """
    s = label.strip().lower()
    if s in AGE_SPANS:
        return AGE_SPANS[s]
    if s in AGE_UNKNOWN:
        return None
    m = re.fullmatch(r"aged? (\d+)", s)
    if m is None:
        raise ValueError(f"not an age label: {label!r}")
    return int(m.group(1)), int(m.group(1))


@dataclass(frozen=True)
class PublishedDefect:
    """Cells a publisher (or its documentation) says are wrong, and what the readers do.

    Attributes
    ----------
    family : str
        Release family.
    years : tuple of int
        Census years (stocks) or calendar years (flows), as the readers label them.
    areas : tuple of str
        GSS codes concerned (empty: every area).
    scope : str
        ``"all"`` (every row and value of the area-year), ``"total"`` (the total rows only) or
        a dimension (``"age"``, ``"placement"``: the breakdown rows of that dimension).
    flag : str
        ``recording_error`` (cells set to NaN) or ``inconsistent_total`` (kept; the breakdown
        is known not to sum to the total).
    note : str
        What is wrong and the source of that statement.

    """

    family: str
    years: tuple[int, ...]
    areas: tuple[str, ...]
    scope: str
    flag: str
    note: str


YORKSHIRE_COUNCILS = ("E08000016", "E08000017", "E08000018", "E08000019", "E08000032",
                      "E08000033", "E08000034", "E08000035", "E08000036", "E06000010",
                      "E06000011", "E06000012", "E06000013", "E10000023", "E06000014")

PUBLISHED_DEFECTS: tuple[PublishedDefect, ...] = (
    PublishedDefect("sen2_caseload", (2025,), ("E09000025",), "all", "recording_error",
                    "Newham January 2025: 1,199 EHC plans after 2,705 in 2024, a recording "
                    "error (shared/data/SOURCES.md); excluded"),
    PublishedDefect("sen2_needs", (2025,), ("E09000025",), "all", "recording_error",
                    "Newham January 2025 (same 1,199 plans by primary need); excluded"),
    PublishedDefect("sen2_new_plans", (2022,), YORKSHIRE_COUNCILS, "total", "recording_error",
                    "new EHC plans in calendar 2022: every Yorkshire and The Humber council's "
                    "total is printed as 6,078, the region's total (SOURCES.md names Leeds: "
                    "548-958 in the other years); the totals are excluded, the placement and "
                    "age rows (which sum to the region) kept"),
    PublishedDefect("sen2_caseload", (2024,), ("E92000001", "E12000006", "E12000007"), "age",
                    "inconsistent_total",
                    "January 2024: Hackney and Peterborough returned totals only (data "
                    "guidance, caseload footnote 5), so England's, London's and the East's "
                    "age rows sum to less than their totals"),
    PublishedDefect("sen2_caseload", (2024,), ("E92000001", "E12000006", "E12000007"),
                    "placement", "inconsistent_total",
                    "January 2024: Hackney and Peterborough returned totals only (footnote 5);"
                    " placement columns sum to less than the totals"),
    PublishedDefect("sen2_new_plans", (2022,), ("E92000001", "E12000003"), "age",
                    "inconsistent_total",
                    "calendar 2022: Wakefield submitted aggregate figures only (data guidance, "
                    "newplans footnote 4), so England's and Yorkshire and The Humber's age rows "
                    "sum to less than their totals"),
    PublishedDefect("sen2_new_plans", (2022,), ("E92000001", "E12000003"), "placement",
                    "inconsistent_total", "calendar 2022: Wakefield aggregate figures only "
                    "(footnote 4); placement columns sum to less than the totals"),
    PublishedDefect("sen2_new_plans", (2024,), ("E06000023", "E06000050", "E06000019",
                                                 "E06000051", "E09000029"), "placement",
                    "inconsistent_total",
                    "calendar 2024: Bristol, Cheshire West and Chester, Herefordshire, "
                    "Shropshire and Sutton count 6-17 new plans under 'educated elsewhere' in "
                    "columns printed 'x' (online providers, Welsh and other schools), so their "
                    "placement columns sum to less than the total"),
    PublishedDefect("sen2_new_plans", (2019, 2020, 2021), (), "placement",
                    "inconsistent_total",
                    "calendar 2019-2021 (aggregate collection): the placement columns of many "
                    "councils sum to up to 5 % less than their totals (types not collected "
                    "then are 'x'); the extract takes these years from the 2022 release"),
)
"""Known defects of published cells (see ``docs/data.md``, "Known issues")."""

SERIES_BREAKS = {
    "sen2": "DfE marks a break in the SEN2 series at 2023: the collection changed from "
            "council aggregates to person-level records (caseload from January 2023, flows "
            "from calendar 2022 in the 2025 release); totals are continuous (January "
            "2019-2022 totals are equal in both releases) but placement and flow definitions "
            "changed",
}
"""Breaks in series the extract spans (recorded in provenance and docs)."""


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
        ``"ees"`` (explore-education-statistics underlying data, one category column),
        ``"ees_wide"`` (SEN2 person-level release from 2023: categories as columns, rows
        ``breakdown_topic`` / ``breakdown``), ``"lait"``, ``"ons_mye"``, ``"national_metric"``
        or ``"cin_need"``.
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
    topics : dict
        ``ees_wide`` only: ``breakdown_topic`` -> tidy dimension of its ``breakdown`` labels
        (``None`` for the total row, ``"age"`` for ages); rows of other topics (sex,
        ethnicity ...) are not read.
    columns : tuple of (str, str)
        ``ees_wide`` only: category columns -> tidy label of ``column_dimension`` (e.g.
        establishment-type columns -> placement group).  They break down the first measure of
        ``values``; columns not listed (subtotals, percentages) are never summed.
    column_dimension : str or None
        Tidy dimension of ``columns`` (``placement`` or ``need``).
    subtotals : dict
        ``ees_wide`` only: published subtotal column -> the columns it sums; checked against
        them, never counted (an empty tuple: a subtotal that is not checked).
    markers : dict
        Missing-value markers whose meaning differs in this family (over
        :data:`MISSING_MARKERS`).

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
    topics: dict[str, str | None] = field(default_factory=dict)
    columns: tuple[tuple[str, str], ...] = ()
    column_dimension: str | None = None
    subtotals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    markers: dict[str, str] = field(default_factory=dict)


SEN2_URL = ("https://explore-education-statistics.service.gov.uk/find-statistics/"
            "education-health-and-care-plans/2022")
SEN2_2025_URL = ("https://explore-education-statistics.service.gov.uk/find-statistics/"
                 "education-health-and-care-plans/2025")
SEN_URL = ("https://explore-education-statistics.service.gov.uk/find-statistics/"
           "special-educational-needs-in-england")
ONS_URL = ("https://www.ons.gov.uk/peoplepopulationandcommunity/populationandmigration/"
           "populationestimates/datasets/"
           "populationestimatesforukenglandandwalesscotlandandnorthernireland")
LAIT_URL = "https://www.gov.uk/government/publications/local-authority-interactive-tool-lait"
CIN_URL = ("https://explore-education-statistics.service.gov.uk/find-statistics/outcomes-for-"
           "children-in-need-including-children-looked-after-by-local-authorities-in-england")

_SEN2 = dict(publisher="DfE (SEN2 collection)", url=SEN2_URL, layout="ees")
_SEN2W = dict(publisher="DfE (SEN2 person-level collection)", url=SEN2_2025_URL,
              layout="ees_wide", markers={"x": "not_available"},  # guidance: x = unavailable
              required=("time_period", "geographic_level", "breakdown_topic",
                                           "breakdown"))
_FLOW_AGE = "Child or young persons age"

RELEASES: dict[str, ReleaseFamily] = {
    f.name: f for f in (
        ReleaseFamily(
            name="sen2_age_caseload", title="EHC plans at January by age band", **_SEN2,
            patterns=("sen2_age_caseload*.csv", "*ehc*plans*age*caseload*.csv"), kind="stock",
            values={"Total_all": "ehcp", "total_all": "ehcp", "Total_ehc": "ehcp",
                    "num_caseload": "ehcp"},
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
            name="sen2_caseload", **_SEN2W, kind="stock",
            title="EHC plans at January by establishment type and single year of age "
                  "(person-level SEN2, January 2019-2025)",
            patterns=("caseload.csv", "sen2_caseload*.csv"), values={"ehcplans": "ehcp"},
            topics={"All EHC plans": None, "Child or young persons age": "age"},
            columns=ESTABLISHMENT_COLUMNS, column_dimension="placement",
            subtotals=ESTABLISHMENT_SUBTOTALS),
        ReleaseFamily(
            name="sen2_new_plans", **_SEN2W, kind="flows",
            title="New EHC plans in the calendar year by establishment type and age at start "
                  "(person-level SEN2, 2019-2024)",
            patterns=("newplans.csv", "sen2_newplans*.csv"), values={"new_ehc_plans": "new_plans"},
            topics={"New EHC plans": None, "Age when plan started": "age"},
            columns=ESTABLISHMENT_COLUMNS, column_dimension="placement",
            subtotals=ESTABLISHMENT_SUBTOTALS),
        ReleaseFamily(
            name="sen2_requests", **_SEN2W, kind="flows",
            title="Requests for an EHC needs assessment in the calendar year (2019-2024)",
            patterns=("requests.csv", "sen2_requests*.csv"),
            values={"requests_received_in_year": "requests",
                    "requests_decided_not_to_assess": "requests_refused",
                    "requests_decided_to_assess": "requests_assessed"},
            topics={"All requests for EHC needs assessments": None, _FLOW_AGE: "age"}),
        ReleaseFamily(
            name="sen2_assessments", **_SEN2W, kind="flows",
            title="EHC needs assessments in the calendar year and their outcome (2019-2024)",
            patterns=("assessments.csv", "sen2_assessments*.csv"),
            values={"assess_in_year": "assessments", "assess_issued": "assessed_plan_issued",
                    "assess_not_issued": "assessed_no_plan"},
            topics={"All EHC needs assessments": None, _FLOW_AGE: "age"}),
        ReleaseFamily(
            name="sen2_timeliness", **_SEN2W, kind="flows",
            title="EHC plans issued in the calendar year, within 20 weeks (2019-2024)",
            patterns=("timeliness_20_week.csv", "sen2_timeliness*.csv"),
            values={"plans_issued_den": "plans_issued",
                    "plans_issued_within_20_weeks": "plans_issued_within_20_weeks",
                    "plans_issued_den_ex": "plans_issued_excl_exceptions",
                    "plans_issued_20_weeks_ex": "plans_issued_within_20_weeks_excl_exceptions"},
            topics={"All EHC plans issued": None, _FLOW_AGE: "age"}),
        ReleaseFamily(
            name="sen2_ceased", **_SEN2W, kind="flows",
            title="EHC plans ceased in the calendar year by reason (2022-2024)",
            patterns=("ceased_plans.csv", "sen2_ceased*.csv"),
            values={"total_ceased": "ceased", "transfer": "ceased_moved_la",
                    "moved_outside_eng": "ceased_moved_outside_england",
                    "needs_met": "ceased_needs_met", "max_age": "ceased_max_age",
                    "he": "ceased_higher_education", "employ": "ceased_employment",
                    "no_engage": "ceased_disengaged", "deceased": "ceased_deceased",
                    # as the data guidance defines them: not_rec = "ceased for other reasons",
                    # other = "reason is not recorded"
                    "not_rec": "ceased_other", "other": "ceased_reason_not_recorded"},
            topics={"All ceased EHC plans": None, "Age plan ceased": "age"}),
        ReleaseFamily(
            name="sen2_needs", **_SEN2W, kind="stock",
            title="EHC plans at January by primary need (person-level SEN2, January 2025)",
            patterns=("sen_needs_all_plans.csv", "sen2_needs*.csv"), values={"ehc_plans": "ehcp"},
            topics={"All EHC plans": None}, columns=NEED_COLUMNS, column_dimension="need"),
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
    BoundaryChange(("E10000006",), ("E06000063", "E06000064"), ("909",), ("942", "943"),
                   "split", "2023-04",
                   "Cumbria county (and its districts) replaced by the unitary Cumberland and "
                   "Westmorland and Furness"),
)
"""Council boundary changes between 2009 and April 2023 (the April-2023 council geography, 153
councils, is the current geography of the shipped extract).  North Yorkshire and Somerset
became unitary councils in April 2023 with the counties' boundaries: DfE kept the county codes,
ONS uses new ones, so they are :data:`CODE_ALIASES`, not boundary changes."""

CODE_ALIASES = {
    "E10000002": ("E06000060", "Buckinghamshire: DfE's SEN2 files of January 2024 and later "
                               "print the former county code E10000002 again; the unitary "
                               "council's code since April 2020 is E06000060"),
    "E06000065": ("E10000023", "North Yorkshire: ONS code of the unitary council (April 2023); "
                               "DfE keeps the county code E10000023 (same area)"),
    "E06000066": ("E10000027", "Somerset: ONS code of the unitary council (April 2023); DfE "
                               "keeps the county code E10000027 (same area)"),
}
"""Other code of a current council -> (the code the extract uses, why).  The extract keeps the
code of its January-2022 geography for each council (continuity), and GSS codes for councils
created later.  Readers' frames are relabelled to the extract's code;
:func:`simsend.data.geography.resolve_areas` accepts both."""

ENGLAND = "E92000001"
REGION_PREFIX = "E12"

PLACEMENT_LABELS = PLACEMENTS
