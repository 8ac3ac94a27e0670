"""Build simsend's shipped data extract (``simsend/data/builtin``) from the published files.

Usage::

    python scripts/build_builtin.py ../shared/data [--out simsend/data/builtin]

Reads the SEN2 2022 release (aggregate collection, 2009-2022), the SEN2 2025 release
(person-level collection, January 2019-2025 and calendar 2019-2024), the January-2023 SEN2 age
bands, the LAIT SEN indicators (2015-2025), the national school-census SEN figures, the
national SEN-by-need table and the ONS mid-year estimates (mid-2014 to mid-2024), see
``docs/data.md``; puts every year on the April-2023 council geography (153 councils; boundary
changes apportioned, see ``simsend.data.releases.BOUNDARY_CHANGES``; North Yorkshire and
Somerset under DfE's codes, ``CODE_ALIASES``), and writes tidy files:

``stock.csv.gz``
    EHC plans at January: totals 2010-2025; age bands 2010-2023 (SEN2 2022 release to 2022,
    SEN2 2023 age table for 2023); single years of age 0-25 for 2024-2025 (person-level
    release; its ``under 3`` row spread over ages 0-2 by population); placement groups
    2010-2025; primary need 2025.  Pupils on SEN support (school census, 2015-2025; councils
    estimated, see below).
``flows.csv.gz``
    Calendar-year flows: new EHC plans by age band and placement group (2009-2024) and by
    single age at start 3-19 (2022-2024), requests,
    assessments, plans issued (within 20 weeks), ceased plans by reason (SEN2 2022 release
    to 2021, person-level release from 2022).
``population.csv.gz``
    ONS mid-year estimates, persons by single year of age 0-25, labelled by the January
    census they feed (mid-2014 -> 2015, ..., mid-2024 -> 2025).
``need_mix.csv``
    England, pupils by primary need for EHC plans and SEN support (school census, 2017-2022)
    and EHC plans by primary need (SEN2, January 2025).
``areas.csv``
    England, the 9 regions, the 153 councils of April 2023, former councils with their
    successors, and other codes of current councils (aliases).
``components_mid2023.csv``
    ONS components of population change, mid-2022 to mid-2023 (MYE3), England, regions and
    the 153 councils (not a tidy table of the baseline; read by the demography check).
``PROVENANCE.json``
    Source URLs, sha256 of every raw input, build date, boundary changes applied, published
    defects, method notes.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simsend.data.errors import Report  # noqa: E402
from simsend.data.geography import INCONSISTENT_FLAG, apportion  # noqa: E402
from simsend.data.readers import ALIAS_TO_CODE, read_release  # noqa: E402
from simsend.data.releases import (  # noqa: E402
    BOUNDARY_CHANGES,
    CODE_ALIASES,
    ENGLAND,
    LAIT_AGGREGATE_NUMBERS,
    PUBLISHED_DEFECTS,
    RELEASES,
    SERIES_BREAKS,
)
from simsend.data.rounding import largest_remainder  # noqa: E402
from simsend.data.tidy import write_tidy  # noqa: E402
from simsend.dims import age_group_of  # noqa: E402
from simsend.io import file_sha256  # noqa: E402

INPUTS = {
    # key: (release family, path under the data folder, release)
    "sen2_age_caseload": ("sen2_age_caseload", "sen2_2022/data/sen2_age_caseload.csv", "2022"),
    "sen2_estab_caseload": ("sen2_estab_caseload", "sen2_2022/data/sen2_estab_caseload.csv",
                            "2022"),
    "sen2_age_new_plans": ("sen2_age_new_plans", "sen2_2022/data/sen2_age_new_plans.csv",
                           "2022"),
    "sen2_estab_new_plans": ("sen2_estab_new_plans", "sen2_2022/data/sen2_estab_new_plans.csv",
                             "2022"),
    "sen2_mi": ("sen2_mi", "sen2_2022/data/sen2_mi.csv", "2022"),
    "sen2_age_caseload_2023": ("sen2_age_caseload",
                               "sen2_extra/sen2_age_caseload_la_2023.csv", "2023"),
    "sen2_caseload": ("sen2_caseload", "sen2_2025/data/caseload.csv", "2025"),
    "sen2_new_plans": ("sen2_new_plans", "sen2_2025/data/newplans.csv", "2025"),
    "sen2_requests": ("sen2_requests", "sen2_2025/data/requests.csv", "2025"),
    "sen2_assessments": ("sen2_assessments", "sen2_2025/data/assessments.csv", "2025"),
    "sen2_timeliness": ("sen2_timeliness", "sen2_2025/data/timeliness_20_week.csv", "2025"),
    "sen2_ceased": ("sen2_ceased", "sen2_2025/data/ceased_plans.csv", "2025"),
    "sen2_needs": ("sen2_needs", "sen2_2025/data/sen_needs_all_plans.csv", "2025"),
    "lait_sen": ("lait_sen", "school_census/lait_la_sen_indicators_2015_2022.csv",
                 "as in SOURCES-extra.md"),
    "lait_sen_2022_2025": ("lait_sen", "school_census/lait_la_sen_indicators_2022_2025.csv",
                           "as in SOURCES.md"),
    "school_census_national": ("school_census_national",
                               "national/school_census_sen_national.csv",
                               "as in SOURCES-extra.md"),
    "cin_sen_by_need": ("cin_sen_by_need",
                        "school_census/cin_publication_sen_national_by_need_2017_2022.csv",
                        "as in SOURCES-extra.md"),
    "ons_mye": ("ons_mye", "population/ons_mye_persons_age0to25_england_areas_2014_2022.csv",
                "mid-2014 to mid-2022, each as first published"),
    "ons_mye_2023": ("ons_mye", "population/ons_mye_persons_age0to25_england_areas_2023.csv",
                     "mid-2023 (mye23tablesew.xlsx, MYE2)"),
    "ons_mye_2024": ("ons_mye", "population/ons_mye_persons_age0to25_england_areas_2024.csv",
                     "mid-2024 (mye24tablesew.xlsx, MYE2)"),
    "ons_mye3_components": (None, "population/ons_mye3_components_england_areas_mid2023.csv",
                            "mid-2023 (mye23tablesew.xlsx, MYE3)"),
}
LAST_CENSUS = 2025
LAST_OLD_CENSUS = 2022
"""Last January census taken from the SEN2 2022 release (aggregate collection); later
censuses come from the person-level release (and its 2023 age table)."""
LAST_OLD_FLOW = 2021
"""Last calendar year of flows taken from the SEN2 2022 release."""
NEW_PLANS_SINGLE_AGES = (3, 19)
"""Single ages at start of the new plans kept as such (SEN2 2025 release, calendar 2022-2024);
the release's end rows are the ranges 'age 2 and under' and 'age 20 and over'."""
SCHOOL_AGES = (4, 15)
"""Ages whose population is the pupil proxy for council SEN support counts (reception-Y11)."""

PUBLISHED_SEN_SUPPORT = {
    # January census: (pupils on SEN support in all schools in England, where published)
    2023: (1_183_384, "https://explore-education-statistics.service.gov.uk/find-statistics/"
                      "special-educational-needs-in-england/2022-23 (headline 1,183,384; "
                      "quoted e.g. by https://www.sanctuarypersonnel.com/blog/2023/08/"
                      "over-1-dot-5-million-children-with-sen)"),
    2024: (1_238_851, "https://explore-education-statistics.service.gov.uk/find-statistics/"
                      "special-educational-needs-in-england/2023-24 (headline 1,238,851; "
                      "quoted e.g. by https://ascl.org.uk/Help-and-Advice/Inclusion/SEND/"
                      "Summary-of-June-2024-DfE-SEND-data)"),
    2025: (1_284_284, "https://explore-education-statistics.service.gov.uk/find-statistics/"
                      "special-educational-needs-in-england/2024-25 (headline 1,284,284; "
                      "quoted e.g. by https://www.enablelaw.com/news-and-insights/"
                      "more-than-1-7-million-pupils-in-england-have-special-educational-needs/)"),
}
"""England's published SEN support counts after the national file's last year (2022).  Check:
LAIT's England % (13.0, 13.6, 14.2) x DfE's pupil headcounts give the same to 0.1 %."""

SHIPPED = ("areas.csv", "components_mid2023.csv", "flows.csv.gz", "need_mix.csv",
           "population.csv.gz", "stock.csv.gz")
"""Files the build writes (with PROVENANCE.json); nothing else in the folder is touched."""

STOCK_COLS = ["year", "area", "plan", "age_group", "age", "placement", "need", "count", "flag"]
FLOW_COLS = ["year", "area", "flow", "age_group", "age", "placement", "need", "count", "flag"]
SPREAD_FLAG = "spread_by_population"
HELPER_FLAG = "_helper"


def _with_flag(flags: pd.Series, extra: str) -> pd.Series:
    return pd.Series(np.where(flags != "", flags + ";" + extra, extra), index=flags.index)


def build_areas(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Build the area table: England, regions, current and former councils, code aliases."""
    df = pd.concat([f[["year", "area", "area_name", "level", "old_la_code", "region_code"]]
                    for f in frames], ignore_index=True)
    latest = df["year"].max()
    recs = {}
    for r in df.sort_values("year", kind="stable").to_dict("records"):
        lvl = {"national": "national", "regional": "region"}.get(r["level"], "la")
        recs[r["area"]] = {"code": r["area"], "name": r["area_name"], "level": lvl,
                           "old_la_code": r["old_la_code"] or "",
                           "region_code": r["region_code"] if lvl == "la" else "",
                           "last_year": r["year"]}
    succ = {}
    for ch in BOUNDARY_CHANGES:
        for o in ch.old:
            succ[o] = ";".join(ch.new)
    rows = []
    for code, r in recs.items():
        current = r.pop("last_year") == latest
        r["status"] = "current" if current else "former"
        r["successors"] = "" if current else succ.get(code, "")
        if not current and not r["successors"]:
            raise SystemExit(f"former area {code} {r['name']} has no boundary change entry")
        rows.append(r)
    for alias, (code, _) in CODE_ALIASES.items():
        base = recs[code]
        rows.append({"code": alias, "name": base["name"], "level": base["level"],
                     "old_la_code": "", "region_code": base["region_code"],
                     "status": "alias", "successors": code})
    out = pd.DataFrame(rows)
    order = {"national": 0, "region": 1, "la": 2}
    status = {"current": 0, "former": 1, "alias": 2}
    out["_o"] = out["level"].map(order)
    out["_s"] = out["status"].map(status)
    return (out.sort_values(["_s", "_o", "code"]).drop(columns=["_o", "_s"])
            .reset_index(drop=True))


def mark_inconsistent(age: pd.DataFrame, estab: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Flag estab breakdown rows whose table total differs from the age table's total."""
    key = ["year", "area", "measure"]
    ta = age[(age["age_group"] == "all")].set_index(key)["count"]
    te = estab[(estab["placement"] == "all")].set_index(key)["count"]
    diff = (te - ta.reindex(te.index)).dropna()
    diff = diff[diff != 0]
    e = estab[estab["placement"] != "all"].copy()
    bad = e.set_index(key).index.isin(diff.index)
    e.loc[bad, "flag"] = _with_flag(e.loc[bad, "flag"], INCONSISTENT_FLAG)
    info = [{"year": int(k[0]), "area": k[1], "measure": k[2], "age_table_total": float(ta[k]),
             "estab_table_total": float(te[k])} for k in diff.index]
    return e, info


def spread_under_3(ages: pd.DataFrame, pop: pd.DataFrame) -> pd.DataFrame:
    """Replace each ``0-2`` age row by ages 0, 1, 2 split by population (largest remainder).

    Only rows without a placement and need breakdown are spread (the age margin).
    """
    span = ages[ages["age"] == "0-2"]
    rest = ages[ages["age"] != "0-2"]
    p = pop.set_index(["year", "area", "age"])["count"]
    rows = []
    for r in span.to_dict("records"):
        w = np.array([p.get((r["year"], r["area"], a), np.nan) for a in (0, 1, 2)])
        if not np.isfinite(w).all():
            raise SystemExit(f"no population for ages 0-2 of {r['area']} at {r['year']}")
        vals = (largest_remainder(int(round(r["count"])), w).astype(float)
                if np.isfinite(r["count"]) else [np.nan] * 3)
        flag = r["flag"] if not np.isfinite(r["count"]) else \
            (r["flag"] + ";" if r["flag"] else "") + SPREAD_FLAG
        for a, v in zip((0, 1, 2), vals, strict=True):
            rows.append({**r, "age": str(a), "age_group": "under_5", "count": float(v),
                         "flag": flag})
    return pd.concat([rest, pd.DataFrame(rows)], ignore_index=True)


def build_stock(age22, estab22, age23, case, needs, pop) -> tuple[pd.DataFrame, list, dict]:
    """EHC plans at January on the current geography (see the module docstring)."""
    a = age22[age22["year"] <= LAST_OLD_CENSUS]
    e, inc = mark_inconsistent(a, estab22[estab22["year"] <= LAST_OLD_CENSUS])
    c = case[case["year"] > LAST_OLD_CENSUS]
    tot = c[(c["age"] == "all") & (c["placement"] == "all")]
    place = c[(c["age"] == "all") & (c["placement"] != "all")]
    single = c[(c["age"] != "all") & (c["placement"] == "all")]
    # January 2023 age bands (the person-level release has single ages from 2024 only)
    b23 = age23[(age23["year"] == 2023) & (age23["age_group"] != "all")].copy()
    sums = b23.groupby(["year", "area"])["count"].sum(min_count=1)
    t23 = tot[tot["year"] == 2023].set_index(["year", "area"])["count"]
    off = (sums - t23.reindex(sums.index)).dropna()
    off = off[off != 0]
    bad = b23.set_index(["year", "area"]).index.isin(off.index)
    b23.loc[bad, "flag"] = _with_flag(b23.loc[bad, "flag"], INCONSISTENT_FLAG)
    inc += [{"year": 2023, "area": k[1], "measure": "ehcp", "caseload_total": float(t23[k]),
             "age_table_total": float(sums[k])} for k in off.index]
    single = spread_under_3(single, pop)
    helpers = (single.groupby(["year", "area", "measure", "age_group"], as_index=False)
               .agg(count=("count", lambda s: s.sum(min_count=len(s)))))
    helpers["flag"] = HELPER_FLAG
    for col in ("placement", "age", "need"):
        helpers[col] = "all"
    need = needs[(needs["need"] != "all") & (needs["age"] == "all")]
    t_need = needs[(needs["need"] == "all") & (needs["age"] == "all")
                   & (needs["placement"] == "all")].set_index(["year", "area"])["count"]
    t_case = tot.set_index(["year", "area"])["count"]
    need_vs_case = (t_need - t_case.reindex(t_need.index)).dropna()
    frame = pd.concat([a, e, b23, tot, place, helpers], ignore_index=True)
    frame = frame.assign(plan="ehcp")
    for col in ("age", "need"):
        frame[col] = frame[col].fillna("all")
    out, log = apportion(frame[STOCK_COLS], ["plan"], ["age_group", "placement"])
    out = out[~out["flag"].astype(str).str.contains(HELPER_FLAG)]
    rest = pd.concat([single, need], ignore_index=True).assign(plan="ehcp")
    out = pd.concat([out, rest[STOCK_COLS]], ignore_index=True)
    notes = {"inconsistent": inc,
             "need_total_vs_caseload_total": {f"{k[0]} {k[1]}": float(v)
                                              for k, v in need_vs_case.items() if v != 0}}
    return out, log, notes


def check_overlap(old: pd.DataFrame, new: pd.DataFrame, years, measure: str) -> dict:
    """Compare totals of the two SEN2 releases in the years both cover (for provenance)."""
    def totals(df):
        t = df[(df["age_group"] == "all") & (df["placement"] == "all")
               & (df["measure"] == measure) & df["year"].isin(years)]
        return t.set_index(["year", "area"])["count"]
    a, b = totals(old), totals(new)
    d = (b - a.reindex(b.index)).dropna()
    return {"years": [int(y) for y in years], "measure": measure,
            "areas_compared": int(len(d)), "areas_differing": int((d != 0).sum()),
            "largest_difference": float(d.abs().max()) if len(d) else 0.0}


CEASED_BY_AGE = ("ceased", "ceased_moved_la", "ceased_needs_met")
"""Ceased-plan reasons kept by age band (SEN2 person-level release, calendar 2023-2024)."""


def build_flows(age_new, estab_new, mi, wide: dict[str, pd.DataFrame]
                ) -> tuple[pd.DataFrame, list, list]:
    """Calendar-year flows on the current geography (see the module docstring)."""
    a = age_new[age_new["year"] <= LAST_OLD_FLOW]
    e, info = mark_inconsistent(a, estab_new[estab_new["year"] <= LAST_OLD_FLOW])
    m = mi[mi["year"] <= LAST_OLD_FLOW]
    reasons = ["ceased_left_education", "ceased_needs_met", "ceased_moved_la", "ceased_other"]
    d = m[m["measure"].isin(reasons)]
    ceased = (d.groupby(["year", "area"], as_index=False)
              .agg(count=("count", lambda s: s.sum(min_count=len(reasons))),
                   n=("measure", "nunique")))
    ceased = ceased[ceased["n"] == len(reasons)].drop(columns="n")
    ceased = ceased.assign(measure="ceased", age_group="all", placement="all", age="all",
                           need="all", flag=np.where(np.isfinite(ceased["count"]), "derived",
                                                     "not_available"))
    parts = [a, e, m, ceased]
    for fam, df in wide.items():
        df = df[df["year"] > LAST_OLD_FLOW]
        parts.append(df[(df["age"] == "all") & (df["placement"] == "all")])
        if fam == "sen2_new_plans":
            parts.append(df[(df["age"] == "all") & (df["placement"] != "all")])
        if fam in ("sen2_new_plans", "sen2_ceased"):
            # by age band; ceased plans by age when the plan ceased: all reasons, transfers
            # and needs met (the calibration's plan endings by age)
            if fam == "sen2_ceased":
                # SEN2's "Age unknown" ceased plans are nearly all ceased at the maximum age
                # (England 2024: 30 of 32), so they join the 20-25 band.
                df = df[df["measure"].isin(CEASED_BY_AGE)].copy()
                df.loc[(df["age"] != "all") & (df["age_group"] == "unknown"),
                       "age_group"] = "20_to_25"
            ages = df[(df["age"] != "all") & (df["placement"] == "all")
                      & (df["age_group"] != "unknown")]
            bands = (ages.groupby(["year", "area", "measure", "age_group"], as_index=False)
                     .agg(count=("count", lambda s: s.sum(min_count=len(s))),
                          flag=("flag", lambda f: next((x for x in f if x), ""))))
            parts.append(bands.assign(placement="all", age="all", need="all"))
    df = pd.concat(parts, ignore_index=True).rename(columns={"measure": "flow"})
    for col in ("age", "need"):
        df[col] = df[col].fillna("all")
    out, log = apportion(df[FLOW_COLS], ["flow"], ["age_group", "placement"],
                         fallback=("new_plans",))
    # New plans by single age at start, 3-19 (the calibration's escalation by single age);
    # the end rows 'age 2 and under' and 'age 20 and over' are ranges, so only their bands
    # are kept (under 5 less ages 3 and 4 gives 0-2).  The person-level release is on the
    # current geography already, so these rows need no apportioning.
    new = wide["sen2_new_plans"]
    single = new[(new["year"] > LAST_OLD_FLOW) & (new["placement"] == "all")
                 & new["age"].astype(str).str.fullmatch(r"\d+")].copy()
    single = single[single["age"].astype(int).between(*NEW_PLANS_SINGLE_AGES)]
    # The release prints no zero rows (no council's age row reads 0, none is suppressed):
    # an age missing where the council and year have an age breakdown had no new plans.
    lo, hi = NEW_PLANS_SINGLE_AGES
    full = single[["year", "area"]].drop_duplicates().merge(
        pd.DataFrame({"age": [str(a) for a in range(lo, hi + 1)]}), how="cross")
    single = full.merge(single, on=["year", "area", "age"], how="left")
    single["count"] = single["count"].fillna(0.0)
    single["flag"] = single["flag"].fillna("")
    single["measure"] = "new_plans"
    single["placement"] = "all"
    single["age_group"] = single["age"].astype(int).map(age_group_of)
    single = single.rename(columns={"measure": "flow"}).assign(need="all")
    out = pd.concat([out, single[FLOW_COLS]], ignore_index=True)
    return out, log, info


def build_population(ons: pd.DataFrame, areas: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Label ONS estimates by census year (mid-year + 1), on current geography, to 2025."""
    df = ons[ons["area"].isin(set(areas["code"]))].copy()
    df["year"] = (df["mid_year"] + 1).astype(int)
    df = df[df["year"] <= LAST_CENSUS]
    df["age"] = df["age"].astype(int)
    df = df[["year", "area", "age", "count", "flag"]]
    out, log = apportion(df, [], ["age"])
    cur = set(areas.loc[areas["status"] == "current", "code"])
    out = out[out["area"].isin(cur)]
    for y, g in out.groupby("year"):
        miss = cur - set(g["area"])
        if miss:
            raise SystemExit(f"population {y}: no estimate for {sorted(miss)}")
    return out.sort_values(["year", "area", "age"]).reset_index(drop=True), log


def england_sen_support(nat: pd.DataFrame, lait: pd.DataFrame
                        ) -> tuple[dict[int, float], dict[int, str]]:
    """England pupils on SEN support at each January census (all schools)."""
    eng = lait[lait["la_number"] == "970"]

    def metric(name):
        if name.endswith("_lait"):
            m = {"sen_support_pct_lait": "sen_support_pct",
                 "ehc_plan_or_statement_pct_lait": "ehcp_pct"}[name]
            s = eng[eng["measure"] == m].set_index("year")["value"]
        else:
            s = nat[nat["metric"] == name].set_index("year")["value"]
        return {int(k): float(v) for k, v in s.items() if np.isfinite(v)}

    counts, how = {}, {}
    ss = metric("sen_support_pupils")
    ehc = metric("ehc_plan_or_statement_pupils")
    for y in range(2015, LAST_CENSUS + 1):
        if y in ss:
            counts[y], how[y] = ss[y], "published (school census, all schools)"
            continue
        if y in PUBLISHED_SEN_SUPPORT:
            counts[y] = float(PUBLISHED_SEN_SUPPORT[y][0])
            how[y] = "published (school census, all schools): " + PUBLISHED_SEN_SUPPORT[y][1]
            continue
        pct_ss = next((metric(m)[y] for m in ("sen_support_pct_2dp", "sen_support_pct_lait",
                                               "sen_support_pct") if y in metric(m)), None)
        pct_ehc = next((metric(m)[y] for m in ("ehc_plan_or_statement_pct_2dp",
                                                "ehc_plan_or_statement_pct_lait",
                                                "ehc_plan_or_statement_pct")
                        if y in metric(m)), None)
        if y in ehc and pct_ss and pct_ehc:
            counts[y] = round(ehc[y] / pct_ehc * pct_ss)
            how[y] = ("derived: EHC/statement pupils / EHC % x SEN support % "
                      f"({ehc[y]:.0f} / {pct_ehc} x {pct_ss})")
    return counts, how


def build_sen_support(lait: pd.DataFrame, nat: pd.DataFrame, pop: pd.DataFrame,
                      ons: pd.DataFrame, areas: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Council SEN support counts: England count shared by % on SEN support x pupils proxy."""
    la_areas = areas[areas["level"] == "la"]
    num_to_code = {}
    for r in la_areas.to_dict("records"):
        if r["old_la_code"] and (r["old_la_code"] not in num_to_code or r["status"] == "current"):
            num_to_code[r["old_la_code"]] = r["code"]
    for num, code in LAIT_AGGREGATE_NUMBERS.items():
        if code:
            num_to_code[num] = code
    pct = lait[lait["measure"] == "sen_support_pct"].copy()
    pct["area"] = pct["la_number"].map(num_to_code)
    pct = pct[pct["area"].notna() & (pct["area"] != ENGLAND) & np.isfinite(pct["value"])]
    pct = pct.drop_duplicates(["year", "area"]).set_index(["year", "area"])["value"]
    cur = la_areas[la_areas["status"] == "current"]["code"].tolist()
    eng, how = england_sen_support(nat, lait)
    school = pop[pop["age"].between(*SCHOOL_AGES)].groupby(["year", "area"])["count"].sum()
    ons_school = ons[ons["age"].between(*SCHOOL_AGES)].groupby(["mid_year", "area"])[
        "count"].sum()
    pred = {n: ch.old for ch in BOUNDARY_CHANGES for n in ch.new if len(ch.old) > 0}
    rows, notes = [], {"england": {str(k): v for k, v in how.items()}, "councils": []}
    for y in sorted(eng):
        val, flag = {}, {}
        for a in cur:
            if (y, a) in pct.index:
                val[a], flag[a] = pct[(y, a)], "estimated"
                continue
            olds = [o for o in pred.get(a, ()) if (y, o) in pct.index]
            if olds:
                w = []
                for o in olds:
                    s = ons_school.xs(o, level="area") if o in ons_school.index.get_level_values(
                        "area") else pd.Series(dtype=float)
                    w.append(float(s.iloc[np.argmin(np.abs(s.index - (y - 1)))]) if len(s)
                             else 1.0)
                val[a] = float(np.average([pct[(y, o)] for o in olds], weights=w))
                flag[a] = "estimated_from_predecessors"
                continue
            have = [yy for yy in pct.index.get_level_values("year").unique()
                    if (yy, a) in pct.index]
            if have:
                near = min(have, key=lambda yy: (abs(yy - y), yy))
                val[a], flag[a] = pct[(near, a)], f"not_available (pct of {near} used to scale)"
            else:  # pragma: no cover - every council has some year
                val[a], flag[a] = np.nan, "not_available"
        raw = {a: val[a] / 100.0 * school[(y, a)] for a in cur if np.isfinite(val[a])}
        factor = eng[y] / sum(raw.values())
        cnt = {a: raw[a] * factor for a in raw}
        # integer counts summing to England exactly (largest remainder)
        keys = list(cnt)
        ints = dict(zip(keys, largest_remainder(int(round(eng[y])),
                                                np.array([cnt[k] for k in keys])), strict=True))
        for a in cur:
            missing = flag[a].startswith("not_available")
            rows.append({"year": y, "area": a, "count": np.nan if missing else ints[a],
                         "flag": "not_available" if missing else flag[a]})
        reg = la_areas[la_areas["status"] == "current"].groupby("region_code")["code"].agg(list)
        for rc, members in reg.items():
            rows.append({"year": y, "area": rc, "count": float(sum(ints[m] for m in members)),
                         "flag": "estimated"})
        rows.append({"year": y, "area": ENGLAND, "count": float(round(eng[y])),
                     "flag": "" if "published" in how[y] else "derived"})
        notes["councils"].append({"year": y, "scale_factor": factor,
                                  "not_available": [a for a in cur if flag[a].startswith(
                                      "not_available")]})
    out = pd.DataFrame(rows)
    out["plan"] = "sen_support"
    for col in ("age_group", "age", "placement", "need"):
        out[col] = "all"
    return out, notes


def build_need_mix(cin: pd.DataFrame, needs: pd.DataFrame) -> pd.DataFrame:
    """England need mix: school census (EHC plans, SEN support) and SEN2 January 2025."""
    nm = cin[cin["year"] <= LAST_OLD_CENSUS]
    s = needs[(needs["area"] == ENGLAND) & (needs["need"] != "all") & (needs["age"] == "all")]
    s = pd.DataFrame({"year": s["year"], "area": ENGLAND, "plan": "ehcp", "need": s["need"],
                      "count": s["count"], "flag": "sen2_all_plans"})
    return pd.concat([nm, s], ignore_index=True).sort_values(["year", "plan", "need"])


COMPONENT_COLUMNS = {
    "Births": "births", "Deaths": "deaths", "Internal Migration Net": "internal_net",
    "International Migration Net": "international_net", "Other": "other",
    "Estimated Population mid-2022": "population_mid2022",
    "Estimated Population mid-2023": "population_mid2023",
}


def build_components(path: Path, areas: pd.DataFrame) -> pd.DataFrame:
    """ONS MYE3 components mid-2022 to mid-2023 for England, regions and current councils."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    raw["area"] = raw["Code"].str.strip().replace(ALIAS_TO_CODE)
    cur = areas[areas["status"] == "current"]
    names = dict(zip(cur["code"], cur["name"], strict=True))
    df = raw[raw["area"].isin(names)].copy()
    miss = sorted(set(names) - set(df["area"]))
    if miss:
        raise SystemExit(f"components: no row for {miss}")
    out = pd.DataFrame({"area": df["area"], "area_name": df["area"].map(names)})
    for col, name in COMPONENT_COLUMNS.items():
        v = df[col].str.strip().str.replace(",", "")
        num = pd.to_numeric(v.where(v != "No data"), errors="coerce")
        bad = num.isna() & (v != "No data")
        if bad.any():
            raise SystemExit(f"components: unreadable {col} for {list(df['area'][bad])}")
        out[name] = num.map(lambda x: "" if pd.isna(x) else str(int(x)))
    level = out["area"].map(dict(zip(cur["code"], cur["level"], strict=True)))
    order = level.map({"national": 0, "region": 1, "la": 2})
    return out.assign(_o=order).sort_values(["_o", "area"]).drop(columns="_o")


def _keep_others(prov: dict, path: Path) -> None:
    """Carry over the provenance of files other builders ship in the folder.

    ``tribunals.csv`` is written by ``python -m simsend.data.tribunals``: its source entry
    (``built_by``) and checksum stay as they are when this script rewrites PROVENANCE.json.
    """
    if not path.exists():
        return
    old = json.loads(path.read_text())
    for k, v in old.get("sources", {}).items():
        if isinstance(v, dict) and "built_by" in v and k not in prov["sources"]:
            prov["sources"][k] = v
    for name, sha in old.get("shipped_sha256", {}).items():
        if name not in SHIPPED and (path.parent / name).exists():
            prov["shipped_sha256"][name] = sha


def main(argv: list[str] | None = None) -> int:
    """Build the extract; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="folder of published data (e.g. ../shared/data)")
    p.add_argument("--out", type=Path, default=ROOT / "simsend" / "data" / "builtin")
    args = p.parse_args(argv)
    src = {k: args.data / v[1] for k, v in INPUTS.items()}
    for k, path in src.items():
        if not path.exists():
            raise SystemExit(f"missing input {k}: {path}")
    report = Report()
    r = {k: read_release(src[k], fam, report)[0] for k, (fam, _, _) in INPUTS.items()
         if fam is not None}
    errors = [f for f in report.errors]
    if errors:
        print(report.format(limit=30))
        return 1

    lait = (pd.concat([r["lait_sen"], r["lait_sen_2022_2025"]], ignore_index=True)
            .drop_duplicates(["year", "la_number", "measure"]))
    ons = pd.concat([r["ons_mye"], r["ons_mye_2023"], r["ons_mye_2024"]], ignore_index=True)
    case = r["sen2_caseload"]
    areas = build_areas([r["sen2_age_caseload"], case])
    pop, log_pop = build_population(ons, areas)
    stock, log_stock, stock_notes = build_stock(
        r["sen2_age_caseload"], r["sen2_estab_caseload"], r["sen2_age_caseload_2023"], case,
        r["sen2_needs"], pop)
    wide = {k: r[k] for k in ("sen2_new_plans", "sen2_requests", "sen2_assessments",
                              "sen2_timeliness", "sen2_ceased")}
    flows, log_flows, inc_flows = build_flows(r["sen2_age_new_plans"], r["sen2_estab_new_plans"],
                                              r["sen2_mi"], wide)
    ss, ss_notes = build_sen_support(lait, r["school_census_national"], pop, ons, areas)
    stock = pd.concat([stock, ss], ignore_index=True)
    cur = set(areas.loc[areas["status"] == "current", "code"])
    stock = stock[stock["area"].isin(cur)]
    flows = flows[flows["area"].isin(cur)]
    stock["_age"] = pd.to_numeric(stock["age"], errors="coerce").fillna(-1)
    stock = (stock.sort_values(["year", "area", "plan", "age_group", "_age", "placement",
                                "need"]).drop(columns="_age").reset_index(drop=True))
    flows = flows.sort_values(["year", "area", "flow", "age_group", "placement"]).reset_index(
        drop=True)
    need = build_need_mix(r["cin_sen_by_need"], r["sen2_needs"])
    components = build_components(src["ons_mye3_components"], areas)
    overlap = [check_overlap(r["sen2_age_caseload"].assign(measure="ehcp"), case,
                             range(2019, 2023), "ehcp"),
               check_overlap(r["sen2_age_new_plans"], r["sen2_new_plans"], range(2019, 2022),
                             "new_plans"),
               check_overlap(r["sen2_mi"], r["sen2_requests"], range(2019, 2022), "requests")]

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_tidy(stock, out / "stock.csv.gz", "stock")
    write_tidy(flows, out / "flows.csv.gz", "flows")
    write_tidy(pop, out / "population.csv.gz", "population")
    write_tidy(need, out / "need_mix.csv", "need_mix")
    write_tidy(areas, out / "areas.csv", "areas")
    components.to_csv(out / "components_mid2023.csv", index=False, lineterminator="\n")

    shipped = {name: file_sha256(out / name) for name in SHIPPED}
    prov = {
        "title": "simsend builtin extract: SEN2 2022 and 2025 releases, school census SEN "
                 "2015-2025, ONS MYE mid-2014 to mid-2024",
        "built": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": "scripts/build_builtin.py",
        "licence": "Open Government Licence v3.0",
        "last_census_year": LAST_CENSUS,
        "last_flow_year": int(flows["year"].max()),
        "geography": "council geography of April 2023 (153 councils: Cumberland and "
                     "Westmorland and Furness replace Cumbria; North Yorkshire E10000023 and "
                     "Somerset E10000027 under DfE's codes, ONS's E06000065 / E06000066 are "
                     "aliases), 9 regions, England",
        "code_aliases": {k: {"code": v[0], "note": v[1]} for k, v in CODE_ALIASES.items()},
        "sources": {k: {"file": INPUTS[k][1], "sha256": file_sha256(path),
                        "family": INPUTS[k][0],
                        "title": RELEASES[INPUTS[k][0]].title if INPUTS[k][0] else
                        "ONS components of population change (MYE3), mid-2022 to mid-2023",
                        "publisher": RELEASES[INPUTS[k][0]].publisher if INPUTS[k][0] else "ONS",
                        "url": RELEASES[INPUTS[k][0]].url if INPUTS[k][0] else
                        RELEASES["ons_mye"].url,
                        "release": INPUTS[k][2]}
                    for k, path in src.items()},
        "years_by_source": {
            "ehcp_stock": "January 2010-2022: SEN2 2022 release (age bands, establishment "
                          "types); January 2023: totals and placements of the SEN2 2025 "
                          "release, age bands of the SEN2 2023 age table (sen2_extra); "
                          "January 2024-2025: SEN2 2025 release (totals, placements, single "
                          "ages; primary need 2025)",
            "flows": "calendar 2009-2021: SEN2 2022 release; calendar 2022-2024: SEN2 2025 "
                     "release",
            "overlap_checks": overlap,
        },
        "assumptions": {
            "under_3": "the person-level release's 'under 3' age row (January 2024-2025) is "
                       "spread over ages 0, 1 and 2 in proportion to the ONS population of the "
                       "area at those ages (largest remainder; rows flagged "
                       f"'{SPREAD_FLAG}')",
            "need_not_recorded": "EHC plans whose primary need is not recorded (SEN2 2025 "
                                 "'number_need_unknown') are given need NSA",
            "ceased_before_2022": "ceased plans (total) in calendar 2014-2021 = sum of the "
                                  "SEN2 2022 release's four discontinued-plan reasons (EHC "
                                  "plans; flag 'derived')",
            "new_plans_age": "new plans by age at start (2022-2024) are summed into age bands "
                             "('age 2 and under' -> under_5, 'age 20 and over' -> 20_to_25); "
                             "single ages 3-19 are also kept (rows with a whole 'age'); an "
                             "age with no row in the release is 0 (the release prints no "
                             "zero and suppresses nothing in these rows)",
        },
        "shipped_sha256": shipped,
        "boundary_changes": {"stock": log_stock, "flows": log_flows, "population": log_pop},
        "published_defects": [{"family": d.family, "years": list(d.years),
                               "areas": list(d.areas) or "all", "scope": d.scope,
                               "flag": d.flag, "note": d.note} for d in PUBLISHED_DEFECTS],
        "series_breaks": SERIES_BREAKS,
        "inconsistent_published_totals": {
            "note": "SEN2 publishes the same total in the age and the establishment tables; "
                    "where they differ (caseload 2016 and 2018, new plans 2009-2017) the age "
                    "table's total is kept as the total row and the establishment rows are "
                    "flagged 'inconsistent_total' (they sum to the establishment table's "
                    "total).  January 2023: age bands of the 2023 age table flagged where they "
                    "do not sum to the person-level release's total",
            "stock": stock_notes["inconsistent"], "flows": inc_flows,
            "need_total_vs_caseload_total": stock_notes["need_total_vs_caseload_total"]},
        "sen_support_method": {
            "rule": "council count = England count x (council % on SEN support, LAIT "
                    "SEN_TotSENSuP) x (population aged 4-15) / sum over councils; "
                    "regions = sum of their councils",
            **ss_notes},
        "suppressed_cells": int((stock["flag"] == "suppressed").sum()
                                + (flows["flag"] == "suppressed").sum()),
    }
    _keep_others(prov, out / "PROVENANCE.json")
    (out / "PROVENANCE.json").write_text(json.dumps(prov, indent=1, default=str) + "\n")
    files = [out / name for name in (*SHIPPED, "PROVENANCE.json")]
    total = sum(f.stat().st_size for f in files)
    print(f"wrote {out} ({total / 1024:.0f} KiB): "
          + ", ".join(f"{f.name} {f.stat().st_size / 1024:.0f} KiB" for f in files))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
