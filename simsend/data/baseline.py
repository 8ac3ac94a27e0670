"""Baseline construction: tidy tables -> pupils by (tier, age, need, area, placement).

Every modelling assumption is listed in :data:`ASSUMPTIONS`; those applied to a baseline are
copied into ``Baseline.provenance["assumptions"]`` (with details such as imputed cells).
"""

from __future__ import annotations

import difflib
import functools
import json
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from simsend.data.checks import check_within_population, population_findings, raise_findings
from simsend.data.errors import DataError, Finding, Report
from simsend.data.geography import INCONSISTENT_FLAG, AreaSelection, resolve_areas
from simsend.data.readers import family_of, read_release
from simsend.data.releases import RELEASES
from simsend.data.rounding import controlled_round, ipf, largest_remainder, split_rank_one
from simsend.data.tidy import ALL, read_tidy, write_tidy
from simsend.dims import AGE_GROUPS, AGES, NEEDS, PLACEMENTS, TIER, TIERS
from simsend.io import file_sha256

N_A, N_N, N_P, N_G = len(AGES), len(NEEDS), len(PLACEMENTS), len(AGE_GROUPS)
GROUPS = tuple(AGE_GROUPS)
FIRST_BASELINE_YEAR = 2015
BUILTIN_FILES = {"stock": "stock.csv.gz", "flows": "flows.csv.gz",
                 "population": "population.csv.gz", "need_mix": "need_mix.csv",
                 "areas": "areas.csv"}
"""The shipped extract, as tidy files by kind (see ``docs/data.md``)."""

FILE_KINDS = ("stock", "flows", "population", "need_mix", "areas")

# ----------------------------------------------------------------------------- priors

EHCP_PLACEMENT_PRIOR = np.array([
    # mainstream, inclusion_base, special_state, special_independent, AP, post16_fe, other
    [0.30, 0.02, 0.12, 0.01, 0.002, 0.0, 0.55],    # under_5: early years settings, nurseries
    [0.55, 0.06, 0.30, 0.04, 0.01, 0.0, 0.04],     # 5_to_10
    [0.40, 0.05, 0.33, 0.09, 0.03, 0.0, 0.10],     # 11_to_15
    [0.15, 0.02, 0.25, 0.05, 0.005, 0.40, 0.13],   # 16_to_19: sixth forms, FE, NEET
    [0.0, 0.0, 0.01, 0.02, 0.0, 0.60, 0.37],       # 20_to_25: FE, NEET, other
])
"""Prior joint shape of EHC plans by age band x placement, fitted to SEN2's two published
margins by IPF.  Zeros get a floor of 1e-4 so any pair of margins can be fitted."""

SEN_SUPPORT_PLACEMENT = {"mainstream": 0.985, "alternative_provision": 0.012,
                         "special_state": 0.003}
"""Placement of pupils on SEN support (school census 2018, England: 1.12 % in state AP,
0.26 % in state special schools, the rest in mainstream incl. independent schools)."""

SCHOOL_PARTICIPATION = {4: 1.0, **{a: 1.0 for a in range(5, 16)}, 16: 0.45, 17: 0.40,
                        18: 0.05, 19: 0.02}
"""Weight of each age in the spread of SEN support over ages (share of the cohort on a
school roll at the January census: reception to Y11 all, school sixth forms about 40 %)."""

ASSUMPTIONS = {
    "specialist_tier": "specialist tier = EHC plans at the January census of the baseline year "
                       "(SEN2 caseload, statements and EHC plans combined)",
    "ehcp_joint": "EHC plans by age band x placement: SEN2 publishes only the two margins; the "
                  "joint table is the IPF fit of a documented prior (EHCP_PLACEMENT_PRIOR) to "
                  "both margins, rounded by controlled rounding so both margins are exact",
    "ehcp_ages": "each age band x placement cell is spread over single years of age in "
                 "proportion to the ONS population (integer-exact within the band)",
    "need_mix": "primary need: where the stock has no need rows for an area (EHC plans before "
                "January 2025, SEN support always) the national mix by primary need (school "
                "census; SEN2 for EHC plans in January 2025) is used at every age, placement "
                "and area, dealt integer-exactly",
    "need_published": "EHC plans by primary need as published for the area (SEN2 January "
                      "2025), dealt over age x placement cells integer-exactly (the need "
                      "margin is exact, its joint with age and placement is not published)",
    "need_mix_year": "need mix of the nearest census year with published need data (2017 for "
                     "baselines 2015-2016)",
    "sen_support": "targeted + targeted_plus tiers = pupils on SEN support at the January "
                   "school census (England: published count; councils: England count shared by "
                   "council % on SEN support x population aged 4-15; regions: sum of councils)",
    "targeted_split": "targeted_plus = round(targeted_plus_share x SEN support) in each area, "
                      "dealt over cells in proportion; the rest is targeted",
    "sen_support_ages": "SEN support spread over ages 4-19 by population x school-roll "
                        "participation (SCHOOL_PARTICIPATION), placement by "
                        "SEN_SUPPORT_PLACEMENT",
    "sen_support_profile": "SEN support spread over the ages on a school roll (4-19) by "
                           "population x the share of a birth cohort in the targeted tiers "
                           "at each age under the config's rates (DataSpec.sen_support_profile;"
                           " simsend.data.support_ages), placement by SEN_SUPPORT_PLACEMENT",
    "universal_pool": "universal pool = ONS population by age minus identified children, "
                      "clipped at 0",
    "population_label": "ONS mid-year estimate of mid-year Y-1 is the population at the "
                        "January census of year Y (age at mid-year taken as age at January)",
    "births": "entrants each year = age-0 population at the baseline census",
    "placement_rescaled": "where SEN2's establishment table total differs from its age table "
                          "total (2016, 2018), the placement margin is rescaled to the age "
                          "total (largest remainder)",
    "suppressed_imputed": "suppressed cells of a breakdown are imputed as the published total "
                          "minus the published cells, spread by national shares",
    "sen_support_imputed": "SEN support missing for an area at the baseline year: nearest "
                           "year's count scaled by the school-age population",
    "boundary_changes": "data before a council boundary change are apportioned to the current "
                        "councils by their shares in the first year after the change",
    "merged_area": "a former council code is the sum of its successor councils",
    "ehcp_imputed": "EHC plans of an area whose published count at the baseline census is a "
                    "known recording error (flag recording_error, e.g. Newham January 2025): "
                    "its latest earlier published count and margins, scaled by England's "
                    "change between the two censuses (largest remainder)",
    "ehcp_single_ages": "EHC plans by single year of age as published (SEN2 from January "
                        "2024); the published 'under 3' is spread over ages 0-2 by "
                        "population (build of the extract)",
    "need_not_recorded": "EHC plans whose primary need is not recorded are given need NSA",
    "default_need_mix": "no need data in the files: the shipped national need mix is used",
    "default_sen_support": "no SEN support in the files: shipped England prevalence (SEN support "
                           "per child aged 4-15) x the area's population is used",
}
"""Every assumption the baseline construction can make, keyed by name."""


# ----------------------------------------------------------------------------- spec / result


@dataclass(frozen=True)
class DataSpec:
    """What data a baseline is built from.

    Attributes
    ----------
    source : str
        ``"builtin"`` (the shipped extract) or ``"files"`` (tidy CSVs in ``files``).
    areas : tuple of str
        GSS codes (``"E92000001"`` England, ``"E12..."`` regions, council codes), 3-digit DfE
        LA numbers, former council codes (= sum of successors), or ``("all",)``.
    baseline_year : int
        January census year of the baseline (2015-2025 for the builtin extract).
    targeted_plus_share : float
        Share of SEN support placed in the targeted-plus tier.
    files : dict of str to Path
        Tidy files by kind (``stock``, ``flows``, ``population``, ``need_mix``, ``areas``),
        and published files by release-family name (e.g. ``sen2_caseload``, ``ons_mye``),
        converted as they are read (:func:`read_tables`).
    sen_support_profile : tuple of 26 floats, optional
        Relative SEN support by census age (0-25) that the spread of each area's SEN support
        over the ages on a school roll uses with population (the engine's own cohort
        profile, :func:`simsend.data.support_ages.support_profile`; a config's baseline sets
        it).  None: population x :data:`SCHOOL_PARTICIPATION`, flat over ages 4-15.

    """

    source: str = "builtin"
    areas: tuple[str, ...] = ("E92000001",)
    baseline_year: int = 2025
    targeted_plus_share: float = 0.25
    files: dict[str, Path] = field(default_factory=dict)
    sen_support_profile: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Baseline:
    """The starting state of a simulation and the observed history behind it.

    Attributes
    ----------
    individuals : int64 ndarray (4, 26, 13, n_areas, 7)
        Children by (tier, age, need, area, placement); the universal slice is zero.
    pool : int64 ndarray (26, n_areas)
        Universal-tier children by age.
    births : int64 ndarray (n_areas,)
        Age-0 population at the baseline census (entrants each year).
    areas, area_names : tuple of str
        Area codes and names.
    year : int
        Baseline January census year.
    targeted_plus_share : float
        Share of SEN support in the targeted-plus tier.
    spec : DataSpec
        The spec the baseline was built from.
    provenance : dict
        JSON-serialisable: sources, sha256 of files used, assumptions applied.
    history : xarray.Dataset
        ``ehcp`` (year, age_group, area), ``ehcp_age`` (year, age, area; caseload by single
        age, published from January 2024), ``ehcp_placement`` (year, placement, area),
        ``new_plans`` (year, age_group, area; calendar year), ``new_plans_age`` (year, age,
        area; single age at start, published for 3-19 from calendar 2022), ``sen_support``
        (year, area),
        ``requests``, ``ceased``, ``ceased_moved_la``, ``ceased_needs_met`` (year, area; calendar
        year), ``ceased_age``, ``ceased_moved_la_age`` (year, age_group, area); no data
        after ``year`` (flows: none after ``year - 1``); NaN = not published.
    population : xarray.DataArray
        (year, age, area): ONS estimates labelled by the January census they feed.

    """

    individuals: np.ndarray
    pool: np.ndarray
    births: np.ndarray
    areas: tuple[str, ...]
    area_names: tuple[str, ...]
    year: int
    targeted_plus_share: float
    spec: DataSpec
    provenance: dict[str, Any]
    history: xr.Dataset
    population: xr.DataArray


@dataclass
class Tables:
    """Tidy tables a baseline is built from (normalised frames, see :func:`read_tidy`)."""

    stock: pd.DataFrame
    flows: pd.DataFrame
    population: pd.DataFrame
    need_mix: pd.DataFrame
    areas: pd.DataFrame
    files: dict[str, str]
    report: Report
    provenance: dict[str, Any]
    defaults: list[str]


def builtin_dir() -> Path:
    """Folder of the shipped extract."""
    return Path(str(resources.files("simsend.data") / "builtin"))


def builtin_paths() -> dict[str, Path]:
    """Paths of the shipped tidy files by kind."""
    d = builtin_dir()
    return {k: d / v for k, v in BUILTIN_FILES.items()}


def read_tables(paths: dict[str, Path], report: Report | None = None) -> Tables:
    """Read and check the files of a spec by kind; population is required.

    Keys are tidy file kinds (:data:`FILE_KINDS`) or release-family names of published files
    (:data:`~simsend.data.releases.RELEASES`, e.g. ``sen2_caseload``, ``ons_mye``), which are
    converted to tidy frames of their family's kind with :func:`raw_to_tidy` and checked like
    tidy files; frames of one kind from several files are merged (a row given twice keeps the
    first file's value, tidy files first).  Returns the tables and the report (with findings);
    does not raise on findings.
    """
    report = Report() if report is None else report
    tidy, raw = {}, {}
    for k, p in paths.items():
        if k in FILE_KINDS:
            tidy[k] = p
        elif k in RELEASES and RELEASES[k].layout in RAW_LAYOUTS:
            raw[k] = p
        else:
            report.add("error", "spec", None, "files", k, unknown_file_key(k, p))
    kinds = {k: RELEASES[k].kind for k in raw}
    if "population" not in tidy and "population" not in kinds.values():
        report.add("error", "spec", None, "files", None,
                   "a 'population' file is required (year, area, age, count; or a published "
                   "ONS file as [data.files.ons_mye])")
        return Tables(*(pd.DataFrame() for _ in range(5)), {}, report, {}, [])
    with tempfile.TemporaryDirectory(prefix="simsend_raw_") as tmp:
        def read_kind(kind, known=None, pop=None):
            parts = []
            if kind in tidy:
                parts.append(read_tidy(tidy[kind], kind, report, known_areas=known)[0])
            for k in (k for k, v in kinds.items() if v == kind):
                parts.append(_read_raw(k, raw[k], Path(tmp), report, known, pop))
            return _merge(parts, kind, report)

        pop = read_kind("population")
        pop_file = Path(tidy.get("population") or next(
            raw[k] for k, v in kinds.items() if v == "population")).name
        if "population" in tidy:
            _no_rows(pop, tidy["population"], "one row per year, area and age 0-25", report)
        known = set(pop["area"]) if len(pop) else None
        areas = None
        if "areas" in tidy:
            areas, _ = read_tidy(tidy["areas"], "areas", report)
            if {"code", "name"} <= set(areas.columns):
                known = (known or set()) | set(areas["code"])
            else:  # the missing column is reported; the file cannot name areas
                areas = None
        frames = {kind: read_kind(kind, known if kind != "need_mix" else None, pop)
                  for kind in ("stock", "flows", "need_mix")}
    if "stock" in tidy:
        _no_rows(frames["stock"], tidy["stock"], "children by year, area and plan", report)
    stock_files = [Path(p).name for k, p in paths.items()
                   if k == "stock" or kinds.get(k) == "stock"]
    if stock_files:
        check_within_population(frames["stock"], pop, " + ".join(stock_files), pop_file,
                                report)
    if areas is None:
        names = {}
        for df in (pop, frames["stock"]):
            if len(df) and "area_name" in df:
                names.update(dict(zip(df["area"], df["area_name"], strict=True)))
        codes = sorted(set(pop["area"])) if len(pop) else []
        areas = pd.DataFrame({"code": codes, "name": [names.get(c, c) or c for c in codes],
                              "level": "la", "old_la_code": "", "region_code": "",
                              "status": "current", "successors": ""})
    sha = {k: file_sha256(p) for k, p in paths.items() if k in FILE_KINDS or k in raw}
    return Tables(frames["stock"], frames["flows"], pop, frames["need_mix"], areas,
                  {k: str(p) for k, p in paths.items()}, report,
                  {"sha256": sha}, [])


def kind_file(files: dict, kind: str) -> str:
    """Name of the file(s) a spec gives for a tidy kind (tidy or published), for messages."""
    names = [Path(p).name for k, p in files.items()
             if k == kind or (k in RELEASES and RELEASES[k].kind == kind)]
    return " + ".join(names) or kind


RAW_LAYOUTS = ("ees", "ees_wide", "ons_mye", "cin_need")
"""Layouts of published files a run can read directly (converted by :func:`raw_to_tidy`).
LAIT and the national metric file hold percentages and other measures, not counts by area."""


def raw_to_tidy(df: pd.DataFrame, family: str, population: pd.DataFrame | None = None,
                report: Report | None = None, file: str = "") -> pd.DataFrame:
    """Convert a reader's frame of a published file to a tidy frame of its family's kind.

    Parameters
    ----------
    df : DataFrame
        As returned by :func:`simsend.data.readers.read_release`.
    family : str
        Release family name.
    population : DataFrame, optional
        Tidy population (``year, area, age, count``): an age row covering several ages (the
        person-level release's ``under 3``) is split over them by population, as in the
        builtin extract; without the population of its year and area, the year's single
        ages are summed into age bands.
    report : Report, optional
        Warnings (rows left out) are added here.
    file : str
        File name for the findings.

    Returns
    -------
    DataFrame
        Tidy columns (``year, area, plan`` or ``flow``, breakdowns, ``count, flag``).  Flow
        ages are summed into age bands; rows of an unknown age are left out (the age rows of
        that year and area are then flagged ``inconsistent_total``); rows breaking down more
        than one dimension (the published joint tables) are not kept.

    """
    report = Report() if report is None else report
    kind = RELEASES[family].kind
    if kind == "population":
        out = df.assign(year=(df["mid_year"] + 1).astype(int))
        out = out[out["age"].between(0, N_A - 1)]
        return out.assign(age=out["age"].astype(int).astype(str))[
            ["year", "area", "area_name", "age", "count", "flag"]]
    if kind == "need_mix":
        return df[["year", "area", "plan", "need", "count", "flag"]]
    d = df.copy()
    for col in ("age", "need"):
        if col not in d:
            d[col] = ALL
    n_dims = (d["age"] != ALL).astype(int) + (d["placement"] != ALL) + (d["need"] != ALL)
    d = d[n_dims <= 1]
    unknown = d["age"] == "unknown"
    lost = d[unknown & (d["count"].fillna(0) > 0)]
    d = d[~unknown]
    key = ["year", "area", "measure"]
    if len(lost):
        report.add("warning", file, None, "breakdown", "unknown",
                   f"{len(lost)} row(s) of an unknown age left out (the age rows of those "
                   "years and areas are flagged inconsistent_total)")
        hit = d.set_index(key).index.isin(lost.set_index(key).index) & (d["age"] != ALL)
        d.loc[hit, "flag"] = np.where(d.loc[hit, "flag"] != "",
                                      d.loc[hit, "flag"] + ";" + INCONSISTENT_FLAG,
                                      INCONSISTENT_FLAG)
    ages = d[d["age"] != ALL]
    rest = d[d["age"] == ALL]
    spread = []
    if len(ages):
        pop = population.set_index(["year", "area", "age"])["count"] if population is not \
            None and len(population) else None
        for (y, a, m), g in ages.groupby(key, sort=False):
            spans = [tuple(int(x) for x in str(v).split("-")) if "-" in str(v) else
                     (int(v), int(v)) for v in g["age"]]
            w = None
            if kind == "stock" and pop is not None:
                w = {(lo, hi): np.array([pop.get((y, a, str(k)), np.nan)
                                         for k in range(lo, hi + 1)]) for lo, hi in spans}
                if not all(np.isfinite(v).all() for v in w.values()):
                    w = None
            if w is None:  # bands
                b = g.groupby("age_group", as_index=False).agg(
                    count=("count", lambda c: c.sum(min_count=len(c))),
                    flag=("flag", lambda f: next((x for x in f if x), "")))
                spread.append(b.assign(year=y, area=a, measure=m, age=ALL, placement=ALL,
                                       need=ALL))
                continue
            for r, (lo, hi) in zip(g.to_dict("records"), spans, strict=True):
                if lo == hi:
                    spread.append(pd.DataFrame([r]))
                    continue
                v = (largest_remainder(int(round(r["count"])), w[(lo, hi)]).astype(float)
                     if np.isfinite(r["count"]) else [np.nan] * (hi - lo + 1))
                f = r["flag"] if not np.isfinite(r["count"]) else \
                    (r["flag"] + ";" if r["flag"] else "") + "spread_by_population"
                spread.append(pd.DataFrame([{**r, "age": str(k), "count": float(c), "flag": f}
                                            for k, c in zip(range(lo, hi + 1), v,
                                                            strict=True)]))
    out = pd.concat([rest, *spread], ignore_index=True)
    out = out.rename(columns={"measure": "plan" if kind == "stock" else "flow"})
    cols = ["year", "area", "area_name", "plan" if kind == "stock" else "flow", "age_group",
            "age", "need", "placement", "count", "flag"]
    for c in cols:
        if c not in out:
            out[c] = ALL if c != "area_name" else ""
    return out[cols]


def _read_raw(key: str, path: Path, tmp: Path, report: Report, known: set | None,
              population: pd.DataFrame | None) -> pd.DataFrame:
    """Read a published file, convert it, and check the result as a tidy file."""
    fam = RELEASES[key]
    try:
        df, _ = read_release(path, fam, report)
    except DataError as exc:
        report.add("error", Path(path).name, None, None, None, str(exc))
        return pd.DataFrame()
    if df.empty:
        return df
    tidy = raw_to_tidy(df, key, population, report, Path(path).name)
    if known is not None and fam.kind in ("stock", "flows"):
        out = ~tidy["area"].isin(known)
        if out.any():
            report.add("warning", Path(path).name, None, "area", None,
                       f"{tidy.loc[out, 'area'].nunique()} area(s) without a population "
                       f"estimate left out ({', '.join(sorted(set(tidy.loc[out, 'area']))[:5])}"
                       f"{' ...' if tidy.loc[out, 'area'].nunique() > 5 else ''})")
            tidy = tidy[~out]
    conv = tmp / f"{Path(path).name} as tidy {fam.kind}.csv"
    write_tidy(tidy, conv, fam.kind)
    frame, _ = read_tidy(conv, fam.kind, report,
                         known_areas=known if fam.kind in ("stock", "flows") else None)
    report.files.remove(str(conv))
    return frame


def _merge(parts: list[pd.DataFrame], kind: str, report: Report) -> pd.DataFrame:
    """Frames of one kind from several files; a row given twice keeps the first one."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame()
    if len(parts) == 1:
        return parts[0]
    df = pd.concat(parts, ignore_index=True)
    key = [c for c in ("year", "area", "plan", "tier", "flow", "need", "age_group", "age",
                       "placement") if c in df]
    df[key] = df[key].fillna(ALL) if kind != "population" else df[key]
    dup = df.duplicated(key, keep="first")
    if dup.any():
        first = df[~dup].set_index(key)["count"]
        other = df[dup].set_index(key)["count"]
        differ = int((np.abs(first.reindex(other.index).to_numpy() - other.to_numpy()) > 0.5)
                     .sum())
        if differ:
            report.add("warning", kind, None, "count", None,
                       f"{differ} {kind} row(s) given by several files with different counts;"
                       " the first file's kept (tidy files first, then published files in "
                       "the order given)")
    return df[~dup].reset_index(drop=True)


def unknown_file_key(key: str, path: Path) -> str:
    """Message for a ``[data.files]`` key that is neither a tidy kind nor a readable family."""
    close = difflib.get_close_matches(key, FILE_KINDS, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    fam = RELEASES.get(key) or family_of(path)
    if fam is not None and fam.layout not in RAW_LAYOUTS:
        raw = (f"; {Path(path).name} is a published {fam.name} file, which a run cannot read "
               "(it holds percentages or national measures, not counts by area): convert it "
               "to a tidy file (docs/data.md)")
    elif fam is not None:
        raw = (f"; {Path(path).name} is a published {fam.name} file: give it as "
               f"[data.files.{fam.name}] and a run converts it (docs/data.md)")
    else:
        raw = ""
    readable = [f for f, r in RELEASES.items() if r.layout in RAW_LAYOUTS]
    return (f"[data.files.{key}] unknown key{hint}; expected one of {list(FILE_KINDS)} or a "
            f"published file's family ({', '.join(readable)}){raw}")


def _no_rows(df: pd.DataFrame, path: Path, expected: str, report: Report) -> None:
    """Report a required tidy file without a usable row (header only, or every row bad)."""
    if df.empty and not any(f.file == Path(path).name and f.row == 1 for f in report.errors):
        report.add("error", Path(path).name, None, None, None,
                   f"no usable data rows (only a header, or every row has an error); "
                   f"expected {expected}")


@functools.lru_cache(maxsize=1)
def _builtin_tables() -> Tables:
    t = read_tables(builtin_paths())
    t.report.raise_errors("shipped extract simsend/data/builtin")
    prov = json.loads((builtin_dir() / "PROVENANCE.json").read_text())
    t.provenance = {
        "source": "builtin", "extract": "simsend/data/builtin",
        "release": prov.get("title"), "built": prov.get("built"),
        "sources": prov.get("sources"), "shipped_sha256": prov.get("shipped_sha256"),
        "geography": prov.get("geography"),
        "series_breaks": prov.get("series_breaks"),
        "published_defects": prov.get("published_defects"),
    }
    return t


def load_tables(spec: DataSpec) -> Tables:
    """Read the tables a spec names (builtin tables are cached); raise on errors."""
    if spec.source == "builtin":
        if spec.files:
            raise DataError("source = 'builtin' takes no [data.files]; use source = 'files'")
        return _builtin_tables()
    if spec.source != "files":
        raise DataError(f"unknown data source {spec.source!r}; expected 'builtin' or 'files'")
    if not spec.files:
        raise DataError("source = 'files' needs [data.files] (population and stock at least)")
    paths = {k: Path(v) for k, v in spec.files.items()}
    for k, p in paths.items():
        if not p.exists():
            raise DataError(f"data file {k} = {p}: file not found")
    t = read_tables(paths)
    t.report.raise_errors("data files")
    t.provenance = {"source": "files", "files": t.files, "sha256": t.provenance["sha256"]}
    if t.need_mix.empty and (t.stock.empty or (t.stock["need"] == ALL).all()):
        b = _builtin_tables()
        t.need_mix = b.need_mix
        t.defaults.append("default_need_mix")
    return t


@functools.lru_cache(maxsize=1)
def _shipped_areas() -> pd.DataFrame:
    return pd.read_csv(builtin_paths()["areas"], dtype=str, keep_default_na=False)


def area_table(spec: DataSpec, shipped_only: bool = False) -> pd.DataFrame:
    """Return every area the spec's data know, as ``areas.csv`` lists them.

    The shipped geography (England, regions, councils, former councils and other codes of a
    council), and for a council's own files (``source = "files"``) their areas first: the
    ``areas`` file's and the population file's codes.  ``shipped_only`` skips reading those
    files (the shipped geography alone).

    Examples
    --------
    >>> t = area_table(DataSpec())
    >>> t.loc[t.code == "E06000017", "name"].item()
    'Rutland'

    """
    shipped = _shipped_areas().copy()
    if spec.source == "builtin" or shipped_only:
        return shipped
    t = load_tables(spec)
    own = t.areas[[c for c in shipped.columns if c in t.areas]].astype(str)
    pop = sorted(set(t.population["area"]) - set(own["code"])) if len(t.population) else []
    own = pd.concat([own, pd.DataFrame({"code": pop, "name": pop, "status": "current"})])
    return pd.concat([own, shipped[~shipped["code"].isin(own["code"])]],
                     ignore_index=True).fillna("")


# ----------------------------------------------------------------------------- aggregation


def _select(df: pd.DataFrame, sel: AreaSelection) -> pd.DataFrame:
    """Rows of the selected areas, former / merged areas summed from their members."""
    if df.empty:
        return df
    parts = []
    for code, members in zip(sel.codes, sel.members, strict=True):
        if members == (code,):
            parts.append(df[df["area"] == code])
            continue
        sub = df[df["area"].isin(members)]
        keys = [c for c in ("year", "plan", "tier", "flow", "age_group", "age", "need",
                            "placement") if c in sub]
        g = sub.groupby(keys, dropna=False)
        agg = g["count"].sum(min_count=1).to_frame()
        agg["n"] = g["area"].nunique()
        agg["nan"] = g["count"].apply(lambda s: s.isna().any())
        agg.loc[(agg["n"] < len(members)) | agg["nan"], "count"] = np.nan
        agg = agg.reset_index()
        agg["area"] = code
        agg["flag"] = "merged"
        parts.append(agg.drop(columns=["n", "nan"]))
    return pd.concat(parts, ignore_index=True)


def _population(tables: Tables, sel: AreaSelection, year: int) -> xr.DataArray:
    pop = _select(tables.population, sel)
    pop = pop[pop["year"] <= year]
    years = np.array(sorted(pop["year"].unique()), dtype=np.int64)
    arr = np.full((len(years), N_A, len(sel.codes)), np.nan)
    yi = {y: i for i, y in enumerate(years)}
    ai = {c: i for i, c in enumerate(sel.codes)}
    ages = pop["age"].astype(int).to_numpy()
    arr[pop["year"].map(yi).to_numpy(), ages, pop["area"].map(ai).to_numpy()] = \
        pop["count"].to_numpy(float)
    return xr.DataArray(arr, dims=("year", "age", "area"),
                        coords={"year": years, "age": np.arange(N_A), "area": list(sel.codes)},
                        name="population",
                        attrs={"long_name": "ONS mid-year population estimate (mid-year Y-1)"
                                            " labelled by the January census year Y",
                               "units": "1"})


# ----------------------------------------------------------------------------- history


def _grid(df: pd.DataFrame, years, dim: str | None, labels, areas) -> np.ndarray:
    shape = (len(years), len(labels), len(areas)) if dim else (len(years), len(areas))
    out = np.full(shape, np.nan)
    if df.empty:
        return out
    yi = {int(y): i for i, y in enumerate(years)}
    ai = {a: i for i, a in enumerate(areas)}
    df = df[df["year"].isin(yi) & df["area"].isin(ai)]
    y = df["year"].map(yi).to_numpy()
    a = df["area"].map(ai).to_numpy()
    if dim:
        li = {lab: i for i, lab in enumerate(labels)}
        df_l = df[dim].map(li)
        ok = df_l.notna().to_numpy()
        out[y[ok], df_l[ok].astype(int).to_numpy(), a[ok]] = df["count"].to_numpy(float)[ok]
    else:
        out[y, a] = df["count"].to_numpy(float)
    return out


def _margin_rows(df: pd.DataFrame, dim: str) -> pd.DataFrame:
    """Rows breaking down ``dim`` only (every other breakdown 'all')."""
    m = df[dim] != ALL
    for o in ("age_group", "age", "need", "placement"):
        if o != dim and o in df and not (dim == "age" and o == "age_group"):
            m &= df[o] == ALL
    return df[m]


def _total_rows(df: pd.DataFrame) -> pd.DataFrame:
    m = np.ones(len(df), bool)
    for o in ("age_group", "age", "need", "placement"):
        if o in df:
            m &= (df[o] == ALL).to_numpy()
    return df[m]


def _history(tables: Tables, sel: AreaSelection, year: int) -> xr.Dataset:
    stock = _select(tables.stock, sel)
    flows = _select(tables.flows, sel)
    stock = stock[stock["year"] <= year] if len(stock) else stock
    flows = flows[flows["year"] <= year - 1] if len(flows) else flows
    ys = [year]
    for df in (stock, flows):
        if len(df):
            ys.append(int(df["year"].min()))
    years = np.arange(min(ys), year + 1)
    areas = list(sel.codes)
    e = stock[stock["plan"] == "ehcp"] if len(stock) else stock
    ehcp_g = _margin_rows(e, "age_group") if len(e) else e
    if len(e) and (e["age"] != ALL).any():
        # censuses published by single year of age (and not by band): bands summed from them
        ages = _margin_rows(e, "age")
        have = set(zip(ehcp_g["year"], ehcp_g["area"], strict=True))
        ages = ages[[k not in have for k in zip(ages["year"], ages["area"], strict=True)]]
        summed = ages.groupby(["year", "area", "age_group"], as_index=False)["count"].sum(
            min_count=1)
        n = ages.groupby(["year", "area", "age_group"])["count"].apply(
            lambda c: bool(c.isna().any())).to_numpy()
        summed.loc[n, "count"] = np.nan  # a missing age leaves its band unknown
        ehcp_g = pd.concat([ehcp_g, summed], ignore_index=True)
    ss = _total_rows(stock[stock["plan"] == "sen_support"]) if len(stock) else stock
    new = flows[flows["flow"] == "new_plans"] if len(flows) else flows

    def flow_total(name: str) -> pd.DataFrame:
        return _total_rows(flows[flows["flow"] == name]) if len(flows) else flows

    def flow_bands(name: str) -> pd.DataFrame:
        return (_margin_rows(flows[flows["flow"] == name], "age_group") if len(flows)
                else flows)

    req = flow_total("requests")
    ds = xr.Dataset(
        {
            "ehcp": (("year", "age_group", "area"), _grid(ehcp_g, years, "age_group", GROUPS,
                                                          areas),
                     {"long_name": "EHC plans (and statements) at the January census",
                      "source": "SEN2 caseload by age band", "units": "1"}),
            "ehcp_placement": (("year", "placement", "area"),
                               _grid(_margin_rows(e, "placement") if len(e) else e, years,
                                     "placement", PLACEMENTS, areas),
                               {"long_name": "EHC plans at the January census by placement"
                                             " group (SEN2 establishment types mapped)",
                                "units": "1"}),
            "new_plans": (("year", "age_group", "area"),
                          _grid(_margin_rows(new, "age_group") if len(new) else new, years,
                                "age_group", GROUPS, areas),
                          {"long_name": "new EHC plans issued in calendar year `year`",
                           "units": "1 year-1"}),
            "sen_support": (("year", "area"), _grid(ss, years, None, None, areas),
                            {"long_name": "pupils on SEN support at the January census",
                             "units": "1"}),
            "requests": (("year", "area"), _grid(req, years, None, None, areas),
                         {"long_name": "initial requests for an EHC needs assessment in "
                                       "calendar year `year` (SEN2 InreqEHC to 2021, "
                                       "requests_received_in_year from 2022)",
                          "units": "1 year-1"}),
            "ceased": (("year", "area"), _grid(flow_total("ceased"), years, None, None, areas),
                       {"long_name": "EHC plans ceased in calendar year `year` (SEN2 "
                                     "total_ceased from 2022; to 2021 the sum of the four "
                                     "discontinued-plan reasons)",
                        "units": "1 year-1"}),
            "ceased_moved_la": (("year", "area"),
                                _grid(flow_total("ceased_moved_la"), years, None, None, areas),
                                {"long_name": "EHC plans ceased in calendar year `year` "
                                              "because the child or young person moved to "
                                              "another council in England (SEN2 transfer; "
                                              "DisleaEHC to 2021)",
                                 "units": "1 year-1"}),
            "new_plans_age": (("year", "age", "area"),
                              _grid(_margin_rows(new, "age") if len(new) else new, years,
                                    "age", [str(a) for a in range(N_A)], areas),
                              {"long_name": "new EHC plans issued in calendar year `year` by "
                                            "single age at start (SEN2, calendar 2022 on; "
                                            "published for ages 3-19 only, the end rows are "
                                            "ranges)", "units": "1 year-1"}),
            "ehcp_age": (("year", "age", "area"),
                         _grid(_margin_rows(e, "age") if len(e) else e, years, "age",
                               [str(a) for a in range(N_A)], areas),
                         {"long_name": "EHC plans at the January census by single year of age "
                                       "(SEN2 caseload, age at the 31 August before; published "
                                       "from January 2024)", "units": "1"}),
            "ceased_age": (("year", "age_group", "area"),
                           _grid(flow_bands("ceased"), years, "age_group", GROUPS, areas),
                           {"long_name": "EHC plans ceased in calendar year `year` by age "
                                         "band when the plan ceased (SEN2, from 2023)",
                            "units": "1 year-1"}),
            "ceased_moved_la_age": (("year", "age_group", "area"),
                                    _grid(flow_bands("ceased_moved_la"), years, "age_group",
                                          GROUPS, areas),
                                    {"long_name": "EHC plans ceased in calendar year `year` "
                                                  "on transfer to another council, by age "
                                                  "band when the plan ceased (SEN2, from "
                                                  "2023)", "units": "1 year-1"}),
            "ceased_needs_met": (("year", "area"),
                                 _grid(flow_total("ceased_needs_met"), years, None, None,
                                       areas),
                                 {"long_name": "EHC plans ceased in calendar year `year` "
                                               "because the needs were met (SEN2 needs_met;"
                                               " DismetEHC to 2021)",
                                  "units": "1 year-1"}),
        },
        coords={"year": years, "age_group": list(GROUPS), "age": np.arange(N_A),
                "placement": list(PLACEMENTS), "area": areas},
        attrs={"baseline_year": year,
               "note": "stocks at the January census of `year`; flows in calendar year `year`;"
                       " NaN = not published (suppressed, not applicable, not collected or a "
                       "known recording error)",
               **({"series_break": "SEN2 changed from council aggregates to person-level "
                                   "records in 2023 (caseload from January 2023, flows from "
                                   "calendar 2022): DfE marks a break in series"}
                  if tables.provenance.get("source") == "builtin" else {})},
    )
    return ds


# ----------------------------------------------------------------------------- baseline cells


def _impute(values: np.ndarray, total: float, ref: np.ndarray, what: str,
            notes: list[str]) -> np.ndarray:
    """Fill NaN cells of a breakdown: published total minus published cells, by ref shares."""
    v = values.copy()
    nan = ~np.isfinite(v)
    if not nan.any():
        return v
    known = np.nansum(v)
    resid = max(int(round(total - known)), 0) if np.isfinite(total) else None
    if resid is None:
        resid = int(round(np.sum(ref[nan]) / max(np.sum(ref[~nan]), 1e-9) * known))
    v[nan] = largest_remainder(resid, ref[nan])
    notes.append(f"{what}: {int(nan.sum())} suppressed or unavailable cell(s) imputed "
                 f"({resid} in total)")
    return v


def _ref_shares(df: pd.DataFrame, plan: str, year: int, dim: str, labels) -> np.ndarray:
    """National / pooled shares of a breakdown at a year (for imputation and defaults)."""
    if df.empty:
        return np.ones(len(labels))
    d = _margin_rows(df[(df["plan"] == plan)], dim)
    if d.empty:
        return np.ones(len(labels))
    yrs = d["year"].unique()
    y = min(yrs, key=lambda v: (abs(int(v) - year), -int(v)))
    d = d[d["year"] == y]
    eng = d[d["area"] == "E92000001"]
    d = eng if len(eng) else d
    s = d.groupby(dim)["count"].sum().reindex(list(labels)).fillna(0).to_numpy(float)
    return s if s.sum() > 0 else np.ones(len(labels))


def _need_shares(need_mix: pd.DataFrame, area_rows: pd.DataFrame, plan: str, year: int,
                 notes: list[str], applied: set[str]) -> np.ndarray:
    own = _margin_rows(area_rows[(area_rows["plan"] == plan) & (area_rows["year"] == year)],
                       "need") if len(area_rows) else area_rows
    if len(own) and np.isfinite(own["count"]).all():
        applied.add("need_published")
        return own.groupby("need")["count"].sum().reindex(list(NEEDS)).fillna(0).to_numpy(
            float)
    nm = need_mix[need_mix["plan"] == plan] if len(need_mix) else need_mix
    if nm.empty:
        applied.add("default_need_mix")
        return np.ones(N_N)
    yrs = sorted(nm["year"].unique())
    y = min(yrs, key=lambda v: (abs(int(v) - year), -int(v)))
    if y != year:
        applied.add("need_mix_year")
        notes.append(f"need mix of {plan}: census {y} used for baseline {year}")
    d = nm[nm["year"] == y]
    return d.groupby("need")["count"].sum().reindex(list(NEEDS)).fillna(0).to_numpy(float)


def _support_profile(profile) -> np.ndarray:
    """Check :attr:`DataSpec.sen_support_profile`: 26 finite, non-negative weights."""
    p = np.asarray(profile, float)
    school = [a for a in AGES if SCHOOL_PARTICIPATION.get(a, 0.0) > 0]
    wrong = (f"shape {p.shape}" if p.shape != (N_A,)
             else "a value that is not finite" if not np.isfinite(p).all()
             else f"a negative value at age {int(np.argmax(p < 0))}" if (p < 0).any()
             else "no positive weight at ages 4-19" if p[school].sum() <= 0 else None)
    if wrong:
        raise DataError(f"DataSpec.sen_support_profile: expected {N_A} finite, non-negative "
                        f"weights by age 0-25, some of them positive at ages 4-19; got {wrong}")
    return p


def _plan_cells(rows: pd.DataFrame, total: int, pop: np.ndarray, age_weight: np.ndarray,
                prior: np.ndarray, need_share: np.ndarray, ref: dict, label: str,
                notes: list[str], applied: set[str]) -> np.ndarray:
    """Integer children of one plan by (age, need, placement) reproducing published margins."""
    out = np.zeros((N_A, N_N, N_P), np.int64)
    if total <= 0:
        return out
    w = pop * age_weight
    band_w = np.array([w[lo:hi + 1].sum() for lo, hi in AGE_GROUPS.values()])
    # age band margin
    g_rows = _margin_rows(rows, "age_group")
    a_rows = _margin_rows(rows, "age") if "age" in rows else rows.iloc[:0]
    single = None
    if len(a_rows):
        single = np.zeros(N_A)
        idx = a_rows["age"].astype(int).to_numpy()
        single[idx] = _impute(a_rows["count"].to_numpy(float), total, w[idx],
                              f"{label} by age", notes)
        single = largest_remainder(total, single) if single.sum() != total else \
            single.astype(np.int64)
        A = np.array([single[lo:hi + 1].sum() for lo, hi in AGE_GROUPS.values()])
    elif len(g_rows):
        vals = g_rows.set_index("age_group")["count"].reindex(list(GROUPS)).to_numpy(float)
        vals = _impute(vals, total, ref["age_group"], f"{label} by age band", notes)
        A = vals.astype(np.int64)
        if A.sum() != total:
            notes.append(f"{label}: age bands sum to {A.sum()}, total {total}; rescaled")
            A = largest_remainder(total, vals)
    else:
        A = largest_remainder(total, band_w)
    # placement margin
    p_rows = _margin_rows(rows, "placement")
    if len(p_rows):
        vals = p_rows.set_index("placement")["count"].reindex(list(PLACEMENTS)).to_numpy(float)
        vals = _impute(vals, total, ref["placement"], f"{label} by placement", notes)
        P = vals.astype(np.int64)
        if P.sum() != total:
            applied.add("placement_rescaled")
            notes.append(f"{label}: placement groups sum to {P.sum()} but the age table total"
                         f" is {total}; placement margin rescaled")
            P = largest_remainder(total, vals)
    else:
        P = largest_remainder(total, (prior / prior.sum(axis=1, keepdims=True)).T @ A)
    fit = ipf(np.maximum(prior, 1e-4), A.astype(float), P.astype(float))
    gp = controlled_round(fit, A, P)
    # spread bands over single ages
    ap = np.zeros((N_A, N_P), np.int64)
    for g, (lo, hi) in enumerate(AGE_GROUPS.values()):
        if A[g] == 0:
            continue
        band = np.arange(lo, hi + 1)
        age_tot = single[band] if single is not None else largest_remainder(A[g], w[band])
        ap[band, :] = split_rank_one(gp[g], age_tot).T
    # needs
    n_rows = _margin_rows(rows, "need")
    if len(n_rows):
        vals = n_rows.set_index("need")["count"].reindex(list(NEEDS)).to_numpy(float)
        vals = _impute(vals, total, need_share, f"{label} by need", notes)
        N = vals.astype(np.int64) if vals.sum() == total else largest_remainder(total, vals)
    else:
        N = largest_remainder(total, need_share)
    cells = ap.ravel()
    nz = np.flatnonzero(cells)
    split = split_rank_one(cells[nz], N)
    flat = np.zeros((N_A * N_P, N_N), np.int64)
    flat[nz] = split
    return flat.reshape(N_A, N_P, N_N).transpose(0, 2, 1)


def _total(rows: pd.DataFrame, label: str) -> float:
    t = _total_rows(rows)
    if len(t) and np.isfinite(t["count"]).all():
        return float(t["count"].sum())  # several total rows only when split by tier
    for dim in ("age_group", "placement", "age", "need"):
        m = _margin_rows(rows, dim) if dim in rows else rows.iloc[:0]
        if len(m) and np.isfinite(m["count"]).all():
            return float(m["count"].sum())
    return np.nan


def _year_check(tables: Tables, year: int) -> None:
    pop_years = sorted(set(tables.population["year"]))
    ehcp = tables.stock[tables.stock["plan"] == "ehcp"] if len(tables.stock) else tables.stock
    st_years = sorted(set(ehcp["year"])) if len(ehcp) else []
    if year not in pop_years or (st_years and year not in st_years) or not st_years:
        raise DataError(
            f"baseline year {year} outside the data: EHC plans (stock, plan=ehcp) cover "
            f"{_span(st_years)}, population covers {_span(pop_years)}; choose a year in both"
            + (f" (builtin: {FIRST_BASELINE_YEAR}-{max(pop_years)})" if tables.provenance.get(
                "source") == "builtin" else ""))
    if tables.provenance.get("source") == "builtin" and year < FIRST_BASELINE_YEAR:
        raise DataError(f"baseline year {year} outside the data: the builtin extract supports "
                        f"{FIRST_BASELINE_YEAR}-{max(pop_years)}")


def _no_ehcp_total(tables: Tables, code: str, year: int, rows: pd.DataFrame) -> None:
    """Raise: area ``code`` has no usable EHC plan total at the baseline census."""
    file = kind_file(tables.files, "stock")
    if rows.empty:
        msg = (f"no EHC plan rows (plan=ehcp) for area {code} at census {year}, an area of the "
               "run; expected its total (every breakdown 'all'), or leave the area out of "
               "data.areas")
    else:
        msg = (f"no usable EHC plan total for area {code} at census {year} (suppressed or "
               "partial rows); expected a row with plan=ehcp and every breakdown 'all', or "
               "complete breakdown rows")
    raise_findings([Finding("error", file, None, "area", code, msg)], file)


def _span(years) -> str:
    return f"{min(years)}-{max(years)}" if len(years) else "no years"


def load_baseline(spec: DataSpec) -> Baseline:
    """Build the baseline a :class:`DataSpec` describes.

    Parameters
    ----------
    spec : DataSpec
        Source, areas, baseline year, targeted-plus share and (for ``files``) the files.

    Returns
    -------
    Baseline

    Raises
    ------
    DataError
        Unknown area codes (with suggestions), a baseline year outside the data, or invalid
        tidy files (the message lists file, row, column, value and expectation).

    Examples
    --------
    >>> b = load_baseline(DataSpec(areas=("E92000001",), baseline_year=2022))  # doctest: +SKIP
    >>> int(b.individuals[TIER["specialist"]].sum())  # doctest: +SKIP
    473255

    """
    if not 0.0 <= float(spec.targeted_plus_share) <= 1.0:
        raise DataError(f"targeted_plus_share {spec.targeted_plus_share} outside [0, 1]")
    tables = load_tables(spec)
    year = int(spec.baseline_year)
    sel = resolve_areas(tuple(spec.areas), tables.areas)  # a wrong area first: it is the typo
    _year_check(tables, year)
    applied = {"specialist_tier", "ehcp_joint", "need_mix", "sen_support",
               "targeted_split", "sen_support_ages", "universal_pool", "population_label",
               "births"}
    applied |= set(tables.defaults)
    notes: list[str] = list(sel.notes)
    if any(m != (c,) for c, m in zip(sel.codes, sel.members, strict=True)):
        applied.add("merged_area")
    if tables.provenance.get("source") == "builtin":
        applied.add("boundary_changes")
    pop_file = kind_file(tables.files, "population")
    raise_findings(population_findings(tables.population, list(zip(sel.codes, sel.members,
                                                                   strict=True)),
                                       year, pop_file),
                   f"{pop_file}: population incomplete at census {year}")
    population = _population(tables, sel, year)
    pop_y = population.sel(year=year).transpose("age", "area").values
    stock = _select(tables.stock, sel)
    n_r = len(sel.codes)
    ind = np.zeros((len(TIERS), N_A, N_N, n_r, N_P), np.int64)
    share_tp = float(spec.targeted_plus_share)
    ref = {p: {"age_group": _ref_shares(tables.stock, p, year, "age_group", GROUPS),
               "placement": _ref_shares(tables.stock, p, year, "placement", PLACEMENTS)}
           for p in ("ehcp", "sen_support")}
    school_w = np.array([SCHOOL_PARTICIPATION.get(a, 0.0) for a in AGES])
    if spec.sen_support_profile is not None:
        school_w = np.where(school_w > 0, _support_profile(spec.sen_support_profile), 0.0)
        applied.discard("sen_support_ages")
        applied.add("sen_support_profile")
    ss_prior = np.tile([SEN_SUPPORT_PLACEMENT.get(p, 0.0) for p in PLACEMENTS], (N_G, 1))
    ages_published: list[str] = []
    for r, code in enumerate(sel.codes):
        rows = stock[(stock["area"] == code) & (stock["year"] == year)]
        pop = pop_y[:, r]
        # specialist tier
        e_rows = rows[rows["plan"] == "ehcp"]
        t = _total(e_rows, "ehcp")
        if not np.isfinite(t) and _flagged(e_rows, RECORDING_ERROR):
            e_rows, t = _impute_ehcp(tables.stock, stock, code, year, notes)
            applied.add("ehcp_imputed")
        if not np.isfinite(t):
            _no_ehcp_total(tables, code, year, e_rows)
        if "age" in e_rows and len(_margin_rows(e_rows, "age")):
            applied.add("ehcp_single_ages")
            ages_published.append(code)
        else:
            applied.add("ehcp_ages")
        ns = _need_shares(tables.need_mix, rows, "ehcp", year, notes, applied)
        if tables.provenance.get("source") == "builtin" and year >= NEED_ROWS_FROM:
            applied.add("need_not_recorded")
        ind[TIER["specialist"], :, :, r, :] = _plan_cells(
            e_rows, int(round(t)), pop, np.ones(N_A), EHCP_PLACEMENT_PRIOR, ns, ref["ehcp"],
            f"{code} EHC plans {year}", notes, applied)
        # targeted tiers
        s_rows = rows[(rows["plan"] == "sen_support")]
        s = _total(s_rows, "sen_support")
        if not np.isfinite(s):
            s = _impute_sen_support(tables, stock, code, year, pop_y[:, r], population, r,
                                    notes, applied)
        ns = _need_shares(tables.need_mix, rows, "sen_support", year, notes, applied)
        ss = _plan_cells(s_rows, int(round(s)), pop, school_w, ss_prior, ns,
                         ref["sen_support"], f"{code} SEN support {year}", notes, applied)
        share = share_tp
        if "tier" in s_rows and (s_rows["tier"] == "targeted_plus").any():
            tp = s_rows[s_rows["tier"] == "targeted_plus"]["count"].sum()
            share = float(tp / s) if s > 0 else share_tp
            notes.append(f"{code}: targeted_plus share {share:.3f} from the stock file")
        tp_total = int(round(share * ss.sum()))
        tp_cells = largest_remainder(tp_total, share * ss.astype(float).ravel()).reshape(
            ss.shape)
        tp_cells = np.minimum(tp_cells, ss)
        ind[TIER["targeted_plus"], :, :, r, :] = tp_cells
        ind[TIER["targeted"], :, :, r, :] = ss - tp_cells
    identified = ind.sum(axis=(0, 2, 4))  # (age, area)
    raw_pool = pop_y.astype(np.int64) - identified
    clipped = np.argwhere(raw_pool < 0)
    if len(clipped):
        notes.append("universal pool clipped at 0 where identified children exceed the "
                     "population: " + ", ".join(
                         f"{sel.codes[a]} age {g} ({-raw_pool[g, a]})" for g, a in clipped[:20])
                     + (" ..." if len(clipped) > 20 else ""))
    pool = np.clip(raw_pool, 0, None).astype(np.int64)
    births = pop_y[0].astype(np.int64)
    history = _history(tables, sel, year)
    prov = {
        **tables.provenance,
        "areas": list(sel.codes), "area_names": list(sel.names),
        "baseline_year": year, "targeted_plus_share": share_tp,
        "assumptions": [f"{k}: {ASSUMPTIONS[k]}" for k in ASSUMPTIONS if k in applied],
        "details": notes,
        "pool_clipped": [{"area": sel.codes[a], "age": int(g), "excess": int(-raw_pool[g, a])}
                         for g, a in clipped],
        # areas whose EHC plans are by published single year of age at the baseline census
        # (a later step that re-spreads ages within a band should leave these alone)
        "ehcp_ages_published": ages_published,
        "documentation": "docs/data.md",
    }
    return Baseline(individuals=ind, pool=pool, births=births, areas=tuple(sel.codes),
                    area_names=tuple(sel.names), year=year, targeted_plus_share=share_tp,
                    spec=spec, provenance=json.loads(json.dumps(prov, default=str)),
                    history=history, population=population)


def councils_history(spec: DataSpec) -> xr.Dataset:
    """Return the recorded history of every council of the spec's source to its baseline year.

    As :attr:`Baseline.history`, for ``"all"`` councils whatever areas the spec asks for: a
    calibration that pools councils (the placement mix, :mod:`simsend.rates.placements`)
    estimates from all of them, so a council's forecast does not depend on which other
    councils share its run.
    """
    if spec.source == "builtin" and not spec.files:  # the cached builtin tables: once a year
        return _builtin_councils_history(int(spec.baseline_year)).copy()
    tables = load_tables(spec)
    return _history(tables, resolve_areas(("all",), tables.areas), int(spec.baseline_year))


@functools.lru_cache(maxsize=4)
def _builtin_councils_history(year: int) -> xr.Dataset:
    tables = _builtin_tables()
    return _history(tables, resolve_areas(("all",), tables.areas), year)


RECORDING_ERROR = "recording_error"
"""Flag of published cells the publisher calls a recording error (excluded, NaN)."""
NEED_ROWS_FROM = 2025
"""First census of the builtin extract with EHC plans by primary need (SEN2)."""


def _flagged(rows: pd.DataFrame, flag: str) -> bool:
    return bool(len(rows)) and "flag" in rows and \
        rows["flag"].astype(str).str.contains(flag).any()


def _impute_ehcp(all_stock: pd.DataFrame, stock: pd.DataFrame, code: str, year: int,
                 notes: list[str]) -> tuple[pd.DataFrame, float]:
    """EHC plan rows of ``code`` at ``year`` from its latest earlier published census.

    The earlier total is scaled by England's change between the two censuses (or, without an
    England row, by the change of all other areas' sum) and each of its complete margins is
    dealt to the new total by largest remainder.  Returns the rows and the total (NaN when no
    earlier census has a total).
    """
    mine = stock[(stock["area"] == code) & (stock["plan"] == "ehcp") & (stock["year"] < year)]
    tot = _total_rows(mine)
    tot = tot[np.isfinite(tot["count"].to_numpy(float))]
    if tot.empty:
        return mine.iloc[:0], np.nan
    y0 = int(tot["year"].max())
    t0 = float(tot[tot["year"] == y0]["count"].sum())
    e = _total_rows(all_stock[all_stock["plan"] == "ehcp"])
    e = e[np.isfinite(e["count"].to_numpy(float))]
    eng = e[e["area"] == "E92000001"].groupby("year")["count"].sum()
    if y0 in eng.index and year in eng.index:
        factor, base = float(eng[year] / eng[y0]), "England's"
    else:
        both = e[e["area"] != code]
        both = both.groupby("area").filter(lambda g: {y0, year} <= set(g["year"]))
        s = both.groupby("year")["count"].sum()
        factor = float(s[year] / s[y0]) if len(s) == 2 and s[y0] > 0 else 1.0
        base = "the other areas'"
    t = float(round(t0 * factor))
    prev = mine[mine["year"] == y0]
    out = [_total_rows(prev).assign(count=t)]
    for dim in ("age_group", "age", "placement", "need"):
        if dim not in prev:
            continue
        m = _margin_rows(prev, dim)
        v = m["count"].to_numpy(float)
        if len(m) and np.isfinite(v).all() and v.sum() > 0:
            out.append(m.assign(count=largest_remainder(int(t), v).astype(float)))
    rows = pd.concat(out, ignore_index=True).assign(year=year, flag="imputed")
    notes.append(f"{code}: EHC plans at census {year} are a known recording error; census "
                 f"{y0}'s {t0:.0f} x {base} change {factor:.4f} = {t:.0f} used, with its "
                 "margins")
    return rows, t


def _impute_sen_support(tables, stock, code, year, pop, population, r, notes, applied):
    ss = _total_rows(stock[(stock["area"] == code) & (stock["plan"] == "sen_support")])
    ss = ss[np.isfinite(ss["count"])]
    school = slice(4, 16)
    if len(ss):
        yrs = ss["year"].to_numpy()
        y = int(yrs[np.argmin(np.abs(yrs - year) * 2 + (yrs > year))])
        val = float(ss[ss["year"] == y]["count"].iloc[0])
        if y in population["year"].values:
            ratio = float(pop[school].sum() / population.sel(year=y).values[school, r].sum())
        else:
            ratio = 1.0
        applied.add("sen_support_imputed")
        notes.append(f"{code}: SEN support at {year} not published; {y} count {val:.0f} x "
                     f"school-age population ratio {ratio:.3f}")
        return round(val * ratio)
    b = _builtin_tables()
    eng = b.stock[(b.stock["area"] == "E92000001") & (b.stock["plan"] == "sen_support")]
    bp = b.population[b.population["area"] == "E92000001"]
    yrs = eng["year"].to_numpy()
    y = int(yrs[np.argmin(np.abs(yrs - year))])
    e = float(_total_rows(eng[eng["year"] == y])["count"].iloc[0])
    p = float(bp[(bp["year"] == y) & bp["age"].astype(int).between(4, 15)]["count"].sum())
    applied.add("default_sen_support")
    notes.append(f"{code}: no SEN support data; England {y} prevalence {e / p:.4f} per child "
                 "aged 4-15 used")
    return round(e / p * pop[school].sum())
