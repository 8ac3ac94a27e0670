"""The README's worked example: places, overflow, spend and timeliness of the council questions.

Usage (after ``simsend run configs/scenarios/council_questions.toml --draws 100``)::

    python scripts/provision_example.py results/council_questions.nc \
        --costs configs/costs/england_2021_22.toml --out docs

Writes ``docs/provision.png`` (four panels, medians and 90% bands over the draws) and
``docs/provision_example.csv`` (the indicator and spend bands per scenario and year), and prints
the README's Markdown table for the chosen years.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from simsend.analysis.compare import combine  # noqa: E402
from simsend.analysis.costs import load_costs, spend  # noqa: E402
from simsend.analysis.indicators import indicators  # noqa: E402

STYLES = ("-", "--", ":", "-.", (0, (8, 2, 1, 2, 1, 2)), (0, (3, 1, 1, 1, 1, 1)))


def band(da: xr.DataArray) -> xr.DataArray:
    """5%, 50% and 95% quantiles over draws."""
    return da.quantile([0.05, 0.5, 0.95], dim="draw")


def plan_name(ds: xr.Dataset) -> str:
    """Name of the shipped provision plan the run used, found by the SHA-256 it recorded."""
    sha = json.loads(ds.attrs.get("input_sha256", "{}")).get("provision_plan")
    for f in sorted(Path("configs/provision").glob("*.csv")):
        if hashlib.sha256(f.read_bytes()).hexdigest() == sha:
            return f.stem
    return "(not a shipped plan)" if sha else "(none)"


def per_draw(ds: xr.Dataset, costs) -> xr.Dataset:
    """Return the example's quantities per scenario, draw and year."""
    ind = indicators(ds)
    keep = ["scenario", "draw", "year"]
    sp = ds["n_pupils"].sel(tier="specialist")
    out = xr.Dataset({
        "specialist_pupils": sp.sum([d for d in sp.dims if d not in keep]),
        "special_state_pupils": ds["n_pupils"].sel(placement="special_state").sum(
            [d for d in ds["n_pupils"].dims if d not in keep + ["placement"]]),
        "special_state_places": ds["places"].sel(placement="special_state").sum("area"),
        "independent_pupils": ind["n_special_independent"],
        "overflow_in_year": ds["n_overflow"].sum([d for d in ds["n_overflow"].dims
                                                  if d not in keep]),
        "overflow_special_state": ds["n_overflow"].sel(placement="special_state").sum(
            [d for d in ds["n_overflow"].dims if d not in keep + ["placement"]]),
        "within_20_weeks": ind["rel_within_20_weeks"],
        "inclusion_share": ind["rel_specialist_mainstream"],
    })
    sp_ds = spend(ds, costs, threshold=1e9)
    # NaN in the baseline year: flows (assessments, tribunals) were not simulated then
    out["spend_bn"] = sp_ds["spend_total"].sum([d for d in sp_ds["spend_total"].dims
                                                if d not in keep], min_count=1) / 1e9
    out["p_deficit_1bn"] = sp_ds["p_deficit"] if "p_deficit" in sp_ds else np.nan
    return out.reset_coords(drop=True)


def main() -> None:
    """Read the results, write the chart and CSV, print the Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--costs", type=Path, default=Path("configs/costs/england_2021_22.toml"))
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--years", default="2028,2035")
    args = ap.parse_args()
    ds = combine(args.results)
    pd_ = per_draw(ds, load_costs(args.costs))
    scen = [str(s) for s in ds["scenario"].values]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), constrained_layout=True)
    panels = (("special_state_pupils", "pupils in state special schools (solid/dashed) and "
               "places (grey)"),
              ("independent_pupils", "specialist-tier pupils in independent special schools"),
              ("spend_bn", "high needs + SEND transport spend, GBP bn at 2021-22 prices"),
              ("within_20_weeks", "share of EHC plans issued within 20 weeks"))
    show = [s for s in ("baseline", "no_new_special_places", "request_surge", "add_ep_staff",
                        "early_intervention") if s in scen]
    for ax, (var, title) in zip(axes.ravel(), panels, strict=True):
        for k, s in enumerate(show):
            q = band(pd_[var].sel(scenario=s)).dropna("year", how="all")
            yrs = q["year"].values
            ax.plot(yrs, q.sel(quantile=0.5), linestyle=STYLES[k], color="black", label=s,
                    linewidth=1.4)
            ax.fill_between(yrs, q.sel(quantile=0.05), q.sel(quantile=0.95), color="black",
                            alpha=0.08, linewidth=0)
            if var == "special_state_pupils":
                pl = pd_["special_state_places"].sel(scenario=s)
                ax.step(yrs, pl, where="post", color="grey", linestyle=STYLES[k],
                        linewidth=2.2, alpha=0.6)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("January census year")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left")
    n = ds.sizes["draw"]
    where = ", ".join(json.loads(ds.attrs.get("area_names", '["?"]')))
    plan = plan_name(ds)
    fig.suptitle(f"{where}: calibrated posterior, provision plan {plan}, {n} draws per "
                 "scenario (median, 90% band)", fontsize=10)
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "provision.png", dpi=110)
    q = pd_.quantile([0.05, 0.5, 0.95], dim="draw")
    table = q.to_dataframe().reset_index()
    table.to_csv(args.out / "provision_example.csv", index=False, float_format="%.6g")
    years = [int(y) for y in args.years.split(",")]
    cols = [("specialist_pupils", "specialist-tier pupils", "{:,.0f}"),
            ("special_state_pupils", "in state special", "{:,.0f}"),
            ("special_state_places", "state special places", "{:,.0f}"),
            ("independent_pupils", "in independent special", "{:,.0f}"),
            ("overflow_in_year", "overflow admissions in year", "{:,.0f}"),
            ("overflow_special_state", "of which from state special", "{:,.0f}"),
            ("within_20_weeks", "within 20 weeks", "{:.2f}"),
            ("spend_bn", "spend GBP bn", "{:.2f}"),
            ("p_deficit_1bn", "P(deficit > GBP 1bn)", "{:.2f}")]
    print("| scenario | year | " + " | ".join(c[1] for c in cols) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in cols) + " |")
    for s in scen:
        for y in years:
            cells = []
            for var, _, f in cols:
                v = q[var].sel(scenario=s, year=y)
                if "quantile" not in v.dims:
                    cells.append(f.format(float(v)))
                    continue
                lo, med, hi = (float(v.sel(quantile=x)) for x in (0.05, 0.5, 0.95))
                cells.append(f.format(med) if lo == hi else
                             f"{f.format(med)} [{f.format(lo)}, {f.format(hi)}]")
            print(f"| {s} | {y} | " + " | ".join(cells) + " |")
    print(f"\nwrote {args.out / 'provision.png'} and {args.out / 'provision_example.csv'}")


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
