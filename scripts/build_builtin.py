"""Build simsend's shipped data extract (``simsend/data/builtin``) from the published files.

Usage::

    python scripts/build_builtin.py ../shared/data [--out simsend/data/builtin]

Reads the SEN2 2022 release, the LAIT SEN indicators, the national school-census SEN
figures, the national SEN-by-need table and the ONS mid-year estimates (see
``docs/data.md``), puts every year on the January-2022 DfE council geography (boundary
changes apportioned, see ``simsend.data.releases.BOUNDARY_CHANGES``), and writes tidy files:

``stock.csv.gz``
    EHC plans at January by age band and by placement group (SEN2, 2010-2022), and pupils
    on SEN support (school census, 2015-2022; councils estimated, see below).
``flows.csv.gz``
    New EHC plans in each calendar year by age band and placement group (2009-2021) and the
    SEN2 process counts (requests, assessments, discontinued plans; 2014-2021).
``population.csv.gz``
    ONS mid-year estimates, persons by single year of age 0-25, labelled by the January
    census they feed (mid-2014 -> 2015, ..., mid-2021 -> 2022).
``need_mix.csv``
    England, pupils by primary need for EHC plans and SEN support (2017-2022).
``areas.csv``
    England, the 9 regions, every council of January 2022, and former councils with their
    successors.
``PROVENANCE.json``
    Source URLs, sha256 of every raw input, build date, boundary changes applied, method
    notes.
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
from simsend.data.readers import (  # noqa: E402
    read_cin_need,
    read_ees,
    read_lait,
    read_national_metrics,
    read_ons_mye,
)
from simsend.data.releases import (  # noqa: E402
    BOUNDARY_CHANGES,
    ENGLAND,
    LAIT_AGGREGATE_NUMBERS,
    RELEASES,
)
from simsend.data.tidy import write_tidy  # noqa: E402
from simsend.io import file_sha256  # noqa: E402

INPUTS = {
    "sen2_age_caseload": "sen2_2022/data/sen2_age_caseload.csv",
    "sen2_estab_caseload": "sen2_2022/data/sen2_estab_caseload.csv",
    "sen2_age_new_plans": "sen2_2022/data/sen2_age_new_plans.csv",
    "sen2_estab_new_plans": "sen2_2022/data/sen2_estab_new_plans.csv",
    "sen2_mi": "sen2_2022/data/sen2_mi.csv",
    "lait_sen": "school_census/lait_la_sen_indicators_2015_2022.csv",
    "school_census_national": "national/school_census_sen_national.csv",
    "cin_sen_by_need": "school_census/cin_publication_sen_national_by_need_2017_2022.csv",
    "ons_mye": "population/ons_mye_persons_age0to25_england_areas_2014_2022.csv",
}
LAST_CENSUS = 2022
SCHOOL_AGES = (4, 15)
"""Ages whose population is the pupil proxy for council SEN support counts (reception-Y11)."""


def build_areas(age: pd.DataFrame) -> pd.DataFrame:
    """Build the area table: England, regions, current and former councils (successors)."""
    latest = age["year"].max()
    recs = {}
    for r in age.sort_values("year").to_dict("records"):
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
    out = pd.DataFrame(rows)
    order = {"national": 0, "region": 1, "la": 2}
    out["_o"] = out["level"].map(order)
    return out.sort_values(["status", "_o", "code"]).drop(columns="_o").reset_index(drop=True)


def mark_inconsistent(age: pd.DataFrame, estab: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Flag estab breakdown rows whose table total differs from the age table's total."""
    key = ["year", "area", "measure"]
    ta = age[(age["age_group"] == "all")].set_index(key)["count"]
    te = estab[(estab["placement"] == "all")].set_index(key)["count"]
    diff = (te - ta.reindex(te.index)).dropna()
    diff = diff[diff != 0]
    e = estab[estab["placement"] != "all"].copy()
    bad = e.set_index(key).index.isin(diff.index)
    e.loc[bad, "flag"] = np.where(e.loc[bad, "flag"] != "", e.loc[bad, "flag"] + ";", "") \
        + INCONSISTENT_FLAG
    info = [{"year": int(k[0]), "area": k[1], "measure": k[2], "age_table_total": float(ta[k]),
             "estab_table_total": float(te[k])} for k in diff.index]
    return e, info


def build_stock(age: pd.DataFrame, estab: pd.DataFrame) -> tuple[pd.DataFrame, list, list]:
    """Build EHC plan stock by age band and placement group on the current geography."""
    a = age.assign(plan="ehcp")
    e, info = mark_inconsistent(age, estab)
    e = e.assign(plan="ehcp")
    cols = ["year", "area", "plan", "age_group", "placement", "count", "flag"]
    df = pd.concat([a[cols], e[cols]], ignore_index=True)
    out, log = apportion(df, ["plan"], ["age_group", "placement"])
    return out, log, info


def build_flows(age_new, estab_new, mi) -> tuple[pd.DataFrame, list, list]:
    """Build new plans by age band / placement and SEN2 process counts (current geography)."""
    cols = ["year", "area", "flow", "age_group", "placement", "count", "flag"]
    a = age_new.rename(columns={"measure": "flow"})
    e, info = mark_inconsistent(age_new, estab_new)
    e = e.rename(columns={"measure": "flow"})
    m = mi.rename(columns={"measure": "flow"})
    df = pd.concat([a[cols], e[cols], m[cols]], ignore_index=True)
    out, log = apportion(df, ["flow"], ["age_group", "placement"])
    return out, log, info


def build_population(ons: pd.DataFrame, areas: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Label ONS estimates by census year (mid-year + 1), on current geography, to 2022."""
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
        from simsend.data.rounding import largest_remainder
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
    out["age_group"] = "all"
    out["placement"] = "all"
    return out, notes


def main(argv: list[str] | None = None) -> int:
    """Build the extract; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="folder of published data (e.g. ../shared/data)")
    p.add_argument("--out", type=Path, default=ROOT / "simsend" / "data" / "builtin")
    args = p.parse_args(argv)
    src = {k: args.data / v for k, v in INPUTS.items()}
    for k, path in src.items():
        if not path.exists():
            raise SystemExit(f"missing input {k}: {path}")
    report = Report()
    age, _ = read_ees(src["sen2_age_caseload"], report=report)
    estab, _ = read_ees(src["sen2_estab_caseload"], report=report)
    age_new, _ = read_ees(src["sen2_age_new_plans"], report=report)
    estab_new, _ = read_ees(src["sen2_estab_new_plans"], report=report)
    mi, _ = read_ees(src["sen2_mi"], report=report)
    lait, _ = read_lait(src["lait_sen"], report=report)
    nat, _ = read_national_metrics(src["school_census_national"], report=report)
    need, _ = read_cin_need(src["cin_sen_by_need"], report=report)
    ons, _ = read_ons_mye(src["ons_mye"], report=report)
    if not report.ok:
        print(report.format(limit=30))
        return 1

    areas = build_areas(age)
    stock, log_stock, inc_stock = build_stock(age, estab)
    flows, log_flows, inc_flows = build_flows(age_new, estab_new, mi)
    pop, log_pop = build_population(ons, areas)
    ss, ss_notes = build_sen_support(lait, nat, pop, ons, areas)
    stock = pd.concat([stock, ss], ignore_index=True)
    cur = set(areas.loc[areas["status"] == "current", "code"])
    stock = stock[stock["area"].isin(cur)]
    flows = flows[flows["area"].isin(cur)]
    sort = ["year", "area", "plan", "age_group", "placement"]
    stock = stock.sort_values(sort).reset_index(drop=True)
    flows = flows.sort_values(["year", "area", "flow", "age_group", "placement"]).reset_index(
        drop=True)
    need = need[need["year"] <= LAST_CENSUS].sort_values(["year", "plan", "need"])

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_tidy(stock, out / "stock.csv.gz", "stock")
    write_tidy(flows, out / "flows.csv.gz", "flows")
    write_tidy(pop, out / "population.csv.gz", "population")
    write_tidy(need, out / "need_mix.csv", "need_mix")
    write_tidy(areas, out / "areas.csv", "areas")

    shipped = {f.name: file_sha256(f) for f in sorted(out.iterdir()) if f.name != "PROVENANCE.json"}
    prov = {
        "title": "simsend builtin extract: SEN2 2022, school census SEN 2015-2022, ONS MYE",
        "built": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": "scripts/build_builtin.py",
        "licence": "Open Government Licence v3.0",
        "last_census_year": LAST_CENSUS,
        "geography": "DfE council geography of January 2022 (152 councils), 9 regions, England",
        "sources": {k: {"file": INPUTS[k], "sha256": file_sha256(path),
                        "title": RELEASES[k].title, "publisher": RELEASES[k].publisher,
                        "url": RELEASES[k].url,
                        "release": "2022" if k.startswith("sen2") else "as in SOURCES-extra.md"}
                    for k, path in src.items()},
        "shipped_sha256": shipped,
        "boundary_changes": {"stock": log_stock, "flows": log_flows, "population": log_pop},
        "inconsistent_published_totals": {
            "note": "SEN2 publishes the same total in the age and the establishment tables; "
                    "where they differ (caseload 2016 and 2018, new plans 2009-2017) the age "
                    "table's total is kept as the total row and the establishment rows are "
                    "flagged 'inconsistent_total' (they sum to the establishment table's total)",
            "stock": inc_stock, "flows": inc_flows},
        "sen_support_method": {
            "rule": "council count = England count x (council % on SEN support, LAIT "
                    "SEN_TotSENSuP) x (population aged 4-15) / sum over councils; "
                    "regions = sum of their councils",
            **ss_notes},
        "suppressed_cells": int(sum((stock["flag"] == "suppressed").sum()
                                    + (flows["flag"] == "suppressed").sum() for _ in [0])),
    }
    (out / "PROVENANCE.json").write_text(json.dumps(prov, indent=1, default=str) + "\n")
    total = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({total / 1024:.0f} KiB): "
          + ", ".join(f"{f.name} {f.stat().st_size / 1024:.0f} KiB" for f in sorted(out.iterdir())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
