"""Validation of the data files a spec names."""

from __future__ import annotations

from pathlib import Path

from simsend.data.baseline import FILE_KINDS, DataSpec, builtin_paths, kind_file, read_tables
from simsend.data.checks import population_findings
from simsend.data.errors import DataError, Finding, Report
from simsend.data.geography import resolve_areas
from simsend.data.readers import family_of, read_release
from simsend.data.releases import RELEASES

SHOWN_PER_FILE = 5
"""Publisher-inconsistency warnings shown per file; the rest are counted in one line."""


def _keep_run_areas(report: Report, areas: set[str]) -> None:
    """Keep the warnings about the run's areas, the first few per file, and count the rest.

    A warning that names an area (:attr:`Finding.area`) outside ``areas`` is about another
    council of the data (the shipped extract covers every council) and says nothing about
    this run; it is counted, not listed.
    """
    kept, other, per_file = [], 0, {}
    for f in report.findings:
        if f.severity == "warning" and f.area is not None:
            if f.area not in areas:
                other += 1
                continue
            per_file.setdefault(f.file, []).append(f)
            if len(per_file[f.file]) > SHOWN_PER_FILE:
                continue
        kept.append(f)
    for file, fs in per_file.items():
        if len(fs) > SHOWN_PER_FILE:
            kept.append(Finding("warning", file, None, None, None,
                                f"... and {len(fs) - SHOWN_PER_FILE} more warnings like these "
                                "about the run's areas"))
    if other:
        kept.append(Finding("warning", "spec", None, None, None,
                            f"{other} warnings about areas outside this run not listed "
                            "(the data covers every council)"))
    report.findings[:] = kept


def validate_data(spec: DataSpec) -> Report:
    """Check every data file a spec names and the spec's areas and year against them.

    For ``source = "builtin"`` the shipped extract is checked; for ``"files"`` each tidy file
    and each published file given under its release-family name (e.g. ``sen2_caseload``,
    ``ons_mye``): read with its family's reader (findings on the published rows), converted
    and checked as a tidy file, as a run reads it.  Without a population, published files are
    only read and checked on their own.  Checks: required columns, types, unknown codes (need,
    placement, tier, plan, age band, ages outside 0-25), negative or non-integer counts,
    duplicate rows, year gaps and order, totals that disagree with their breakdowns, unknown
    or merged areas, suppressed cells (warnings, read as NaN), and whether the baseline year is
    covered; across files: a stock above the population of its area, year and ages, counts above
    :data:`~simsend.data.readers.MAX_COUNT`, empty population or stock files, unknown
    ``[data.files]`` keys, and every area of the run lacking a population estimate (a missing
    row or a suppressed cell) at an age 0-25 at the baseline year.

    Parameters
    ----------
    spec : DataSpec

    Returns
    -------
    Report
        ``report.ok`` is False when any error was found; ``report.format()`` prints it.

    """
    report = Report()
    if spec.source == "builtin":
        paths = builtin_paths()
    elif spec.source == "files":
        paths = {k: Path(v) for k, v in spec.files.items()}
        if not paths:
            report.add("error", "spec", None, "files", None,
                       "source = 'files' needs [data.files] (population and stock at least)")
            return report
    else:
        report.add("error", "spec", None, "source", spec.source,
                   "expected 'builtin' or 'files'")
        return report
    for k, p in list(paths.items()):
        if not p.exists():
            report.add("error", str(p), None, None, None, f"file {k} not found")
            paths.pop(k)
    kinds = {k: RELEASES[k].kind if k in RELEASES else k for k in paths}
    if "population" not in kinds.values():
        # published files without a population: each is checked on its own
        raw = {k: p for k, p in paths.items()
               if k not in FILE_KINDS and (RELEASES.get(k) or family_of(p)) is not None}
        for k, p in raw.items():
            try:
                read_release(p, RELEASES.get(k) or family_of(p), report)
            except DataError as exc:
                report.add("error", p.name, None, None, None, str(exc))
        if raw:
            return report
    unknown = [k for k in paths if k not in FILE_KINDS and k not in RELEASES]  # a typo
    try:
        tables = read_tables(paths, report)
    except DataError as exc:
        report.add("error", "spec", None, None, None, str(exc))
        return report
    sel = None
    if tables.areas is not None and len(tables.areas):
        try:
            sel = resolve_areas(tuple(spec.areas), tables.areas)
            for note in sel.notes:
                report.add("warning", "spec", None, "areas", note.split(":")[0], note)
        except DataError as exc:
            report.add("error", "spec", None, "areas", list(spec.areas), str(exc))
    if len(tables.population):
        years = set(tables.population["year"])
        if spec.baseline_year not in years:
            report.add("error", "spec", None, "baseline_year", spec.baseline_year,
                       f"no population at census {spec.baseline_year}; population covers "
                       f"{min(years)}-{max(years)}")
        elif sel is not None:
            report.findings.extend(population_findings(
                tables.population, list(zip(sel.codes, sel.members, strict=True)),
                spec.baseline_year, kind_file(paths, "population")))
    if sel is not None:
        _keep_run_areas(report, {c for codes in sel.members for c in codes} | set(sel.codes))
    if len(tables.stock):
        e = tables.stock[tables.stock["plan"] == "ehcp"]
        if spec.baseline_year not in set(e["year"]):
            report.add("error", "spec", None, "baseline_year", spec.baseline_year,
                       "no EHC plan stock (plan=ehcp) at the baseline census year")
    elif spec.source == "files" and "stock" not in kinds.values() and not unknown:
        report.add("error", "spec", None, "files", None,
                   "a 'stock' file with EHC plans (plan=ehcp) is needed for a baseline")
    return report
