"""Summarise the council-question scenarios for the README: tables and a chart.

Usage (after ``simsend run configs/scenarios/council_questions.toml --draws 100``)::

    python scripts/council_scenarios.py results/council_questions.nc --out docs

Writes ``docs/scenarios.png`` (effect on specialist-tier pupils and on requests, median and
90% band of the paired per-draw difference from the baseline) and ``docs/scenarios.csv``
(the ``simsend compare`` tables), and prints Markdown tables of selected years.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from simsend.analysis.compare import combine, compare  # noqa: E402

PANELS = (
    ("n_pupils", {"tier": "specialist"}, "specialist-tier pupils (January census)"),
    ("n_requests", None, "EHC needs-assessment requests in the year"),
    ("n_pupils", {"tier": "specialist", "placement": "special_state"},
     "specialist-tier pupils in state special schools"),
    ("n_pupils", {"tier": "specialist", "placement": "special_independent"},
     "specialist-tier pupils in independent special schools"),
)


def main() -> None:
    """Read the results, write the chart and CSV, print the Markdown tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--years", default="2026,2028,2030,2035")
    args = ap.parse_args()
    ds = combine(args.results)
    years = [int(y) for y in args.years.split(",")]
    tables = []
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), constrained_layout=True)
    axes = axes.ravel()
    for ax, (var, sel, title) in zip(axes, PANELS, strict=True):
        t = compare(ds, variable=var, select=sel)
        where = "" if sel is None else " [" + ", ".join(f"{k}={v}" for k, v in sel.items()) + "]"
        t.insert(1, "variable", var + where)
        tables.append(t)
        for s, g in t.groupby("scenario", sort=False):
            line, = ax.plot(g["year"], g["diff_median"], label=s)
            ax.fill_between(g["year"], g["diff_q05"], g["diff_q95"], alpha=0.2,
                            color=line.get_color(), linewidth=0)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(f"{title}:\nscenario minus baseline (median, 90% band)", fontsize=10)
        ax.set_xlabel("January census year")
    axes[0].legend(fontsize=8, loc="lower left")
    n = ds.sizes["draw"]
    rates = (f"posterior {ds.attrs['posterior_file']}" if ds.attrs.get("posterior_file")
             else "fixed [model] rates")
    fig.suptitle(f"England, {rates}, {n} paired draws per scenario", fontsize=10)
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "scenarios.png", dpi=110)
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(args.out / "scenarios.csv", index=False, float_format="%.4g")
    for var, g in table.groupby("variable", sort=False):
        g = g[g["year"].isin(years)]
        print(f"\n{var}\n")
        print("| scenario | year | baseline (median) | scenario - baseline: median [90% band] "
              "| P(scenario < baseline) | var ratio |")
        print("| --- | --- | --- | --- | --- | --- |")
        for _, r in g.iterrows():
            print(f"| {r['scenario']} | {r['year']} | {r['baseline_median']:,.0f} | "
                  f"{r['diff_median']:+,.0f} [{r['diff_q05']:+,.0f}, {r['diff_q95']:+,.0f}] | "
                  f"{r['p_below']:.2f} | {r['var_ratio']:.3f} |")


if __name__ == "__main__":
    main()
