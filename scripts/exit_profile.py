"""Print England's rate of EHC plans ending by age (SEN2), the shape of the config's exits.

Usage::

    python scripts/exit_profile.py ../shared/data [--year 2024]

Plans ended in the calendar year other than by a transfer to another council (SEN2 2025
release, ``ceased_plans.csv``, "Age plan ceased"), by age when ended, over the EHC plans of
that age at the January census of that year (the shipped extract's single ages).  The config's
``[model.leaving] specialist`` by age at the next census is the mean of the rates at ages
``a - 1`` and ``a``, less the config's moves down (0.013); the calibration scales the shape per
age group and council.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _age(label: str) -> int:
    if label == "age 2 and under":
        return 2
    if label in ("age 20 and over", "Age unknown"):  # unknown: nearly all reached 25
        return 20
    return int(label.split()[1])


def main(argv=None) -> int:
    """Print the rates; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path)
    p.add_argument("--year", type=int, default=2024)
    a = p.parse_args(argv)
    f = pd.read_csv(a.data / "sen2_2025" / "data" / "ceased_plans.csv")
    e = f[(f["geographic_level"] == "National") & (f["breakdown_topic"] == "Age plan ceased")
          & (f["time_period"] == a.year)].copy()
    e["a"] = e["breakdown"].map(_age)
    ended = (e["total_ceased"] - e["transfer"]).groupby(e["a"]).sum()
    st = pd.read_csv(ROOT / "simsend" / "data" / "builtin" / "stock.csv.gz")
    s = st[(st["area"] == "E92000001") & (st["plan"] == "ehcp") & (st["age"] != "all")
           & (st["placement"] == "all") & (st["need"] == "all") & (st["year"] == a.year)].copy()
    if s.empty:
        print(f"no single-age EHC plans for January {a.year} in the extract", file=sys.stderr)
        return 1
    s["a"] = s["age"].astype(int).clip(lower=2, upper=20)
    rate = ended / s.groupby("a")["count"].sum()
    for age in rate.index:
        prev = rate.get(age - 1, rate[age])
        print(f"age {age:>2}{'+' if age == 20 else ' '}  ended {rate[age]:.4f}  "
              f"at next census age {0.5 * (prev + rate[age]):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
