"""Write the England default provision plan, configs/provision/england_<baseline year>.csv.

Usage::

    python scripts/make_provision_plan.py [--out configs/provision/england_2025.csv]

The baseline year is ``run.start_year`` of ``configs/base.toml`` (January 2025); the same
script with a 2022 config wrote ``england_2022.csv``, which the 2022 backtests keep using.

Rows for England (E92000001) and every council of the shipped baseline, so that
``simsend run configs/base.toml`` and ``--areas all`` both find their places.  Every figure is
an ASSUMPTION built from the shipped baseline (SEN2 EHC plans by placement and school-census
SEN support at its January census), because no published series gives places by council:

* ``special_state`` places at the baseline census = pupils in state special schools in the
  baseline
  (EHC plans plus SEN support): the schools are taken as full, which is kind (DfE reported
  about 6,500 more pupils than places in state special schools in 2024);
* expansions: 7,500 places a year for census years 2023-2026 (30,000 in all, of the size of
  the 2021 spending review's high needs capital programme), then 2,000 a year (special free
  school waves);
* only expansions after the baseline census count (from a 2025 baseline: 7,500 in 2026, then
  2,000 a year);
* ``inclusion_base`` places at the baseline census = pupils in resourced provision and SEN units
  in the baseline; the 2026 reform's inclusion bases add 10,000 places a year for census years
  2028-2032 (the white paper funds "tens of thousands": 50,000 here);
* a council's expansions are England's shared in proportion to its baseline pupils in that
  placement (rounded; councils with none get none).

Independent special schools, mainstream and the other placements have unlimited places (no
row).  The numbers are a starting point for a council to replace with its own plan.

``--expansion trend`` writes ``england_<year>_trend.csv`` instead: the same baseline places,
but each area's ``special_state`` places grow by the Theil-Sen slope (median of the pairwise
yearly changes, robust to one mis-recorded year) of its SEN2 EHC plans in state special schools,
January 2019 to the baseline (``stock.csv.gz``), floored at 0: ASSUMPTION: schools were full
(DfE reported more pupils than places in 2024), so pupils grew as places did, and places keep
growing as they did.  ``inclusion_base`` rows are the default plan's (the reform's bases are
policy, not a trend).
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from simsend.api import load_baseline
from simsend.config import load
from simsend.data.baseline import builtin_dir
from simsend.dims import PLACEMENT

ROOT = Path(__file__).resolve().parents[1]
EXPANSIONS = {
    "special_state": {**{y: 7_500 for y in range(2023, 2027)},
                      **{y: 2_000 for y in range(2027, 2036)}},
    "inclusion_base": {y: 10_000 for y in range(2028, 2033)},
}


def plan_rows(areas: list[str], occupancy: dict[str, np.ndarray], year: int) -> list[tuple]:
    """Rows (area, placement, year, places) from occupancy per area at census ``year``."""
    rows = []
    for pl, occ in occupancy.items():
        total = occ.sum()
        for a, code in enumerate(areas):
            places = int(occ[a])
            rows.append((code, pl, year, places))
            for y, add in sorted(EXPANSIONS[pl].items()):
                if y <= year:
                    continue
                places += int(round(add * occ[a] / total)) if total else 0
                rows.append((code, pl, y, places))
    return rows


TREND_FROM = 2019
"""First January of the SEN2 series the trend plan's slope is fitted to."""


def trend_slopes(stock, areas: list[str], year: int, placement: str = "special_state") -> dict:
    """Return each area's Theil-Sen slope of SEN2 EHC plans in ``placement`` (a year, >= 0).

    Fitted to January :data:`TREND_FROM` to ``year``; areas with fewer than three years get
    none (and keep their baseline places).
    """
    from scipy.stats import theilslopes
    s = stock[(stock["plan"] == "ehcp") & (stock["placement"] == placement)
              & (stock["age_group"] == "all") & (stock["age"] == "all")
              & (stock["need"] == "all") & stock["year"].between(TREND_FROM, year)]
    out = {}
    for code in areas:
        r = s[s["area"] == code].dropna(subset=["count"])
        if r["year"].nunique() >= 3:
            out[code] = max(0.0, float(theilslopes(r["count"], r["year"]).slope))
    return out


def trend_rows(areas: list[str], occupancy: dict[str, np.ndarray], year: int,
               slopes: dict) -> list[tuple]:
    """Rows of the trend plan: ``special_state`` baseline + slope x years, to 2035."""
    rows = []
    for a, code in enumerate(areas):
        base = int(occupancy["special_state"][a])
        rows.append((code, "special_state", year, base))
        for y in range(year + 1, 2036):
            rows.append((code, "special_state", y,
                         base + int(round(slopes.get(code, 0.0) * (y - year)))))
    ib = {"inclusion_base": occupancy["inclusion_base"]}
    return rows + plan_rows(areas, ib, year)


def main() -> None:
    """Build the plan from the shipped baseline and write it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cfg = load(ROOT / "configs" / "base.toml")
    year = cfg.run.start_year
    ap.add_argument("--expansion", choices=("assumed", "trend"), default="assumed",
                    help="places added after the baseline: the assumed programmes (default) "
                         "or each area's SEN2 trend in state special schools")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    tail = "" if args.expansion == "assumed" else "_trend"
    out = args.out or ROOT / "configs" / "provision" / f"england_{year}{tail}.csv"
    stock = pd.read_csv(builtin_dir() / "stock.csv.gz", dtype={"year": int, "count": float})
    rows = []
    for areas in (("E92000001",), ("all",)):
        base = load_baseline(cfg.replace_data(areas=areas))
        ind = base.individuals.sum(axis=(0, 1, 2))  # (area, placement)
        occ = {pl: ind[:, PLACEMENT[pl]] for pl in EXPANSIONS}
        codes = [str(a) for a in base.areas]
        rows += (plan_rows(codes, occ, year) if args.expansion == "assumed" else
                 trend_rows(codes, occ, year, trend_slopes(stock, codes, year)))
    how = ("ASSUMPTIONS, not published places" if args.expansion == "assumed" else
           f"state special places grow by each area's SEN2 trend {TREND_FROM}-{year} (ASSUMPTION)")
    buf = io.StringIO()
    buf.write(f"# simsend provision plan for England and every council, January {year} baseline.\n"
              f"# {how}: written by scripts/make_provision_plan.py\n"
              "# (its docstring and docs/provision.md give every figure and its reasoning).\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("area", "placement", "year", "places"))
    w.writerows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(buf.getvalue())
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
