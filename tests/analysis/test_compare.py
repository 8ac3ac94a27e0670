"""simsend compare: paired per-draw differences against NumPy, bad input, the CLI."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from simsend.analysis.compare import CompareError, combine, compare
from simsend.cli import main
from simsend.io import write_netcdf


def synthetic(rng, names=("baseline", "a", "b"), seed=1):
    d, y = 50, 3
    base = rng.normal(100, 10, size=(d, y, 2))  # (draw, year, tier)
    vals = np.stack([base + k * rng.normal(-3, 1, size=base.shape) for k in range(len(names))])
    ds = xr.Dataset({"n_pupils": (("scenario", "draw", "year", "tier"), vals)},
                    coords={"scenario": list(names), "draw": np.arange(d),
                            "year": [2022, 2023, 2024], "tier": ["targeted", "specialist"]})
    ds.attrs["root_seed"] = seed
    return ds


def test_compare_matches_numpy(rng):
    ds = synthetic(rng)
    t = compare(ds, by=("year",), select={"tier": "specialist"})
    assert list(t["scenario"].unique()) == ["a", "b"] and len(t) == 6
    v = ds["n_pupils"].sel(tier="specialist").values  # (S, D, Y)
    for s, k in (("a", 1), ("b", 2)):
        diff = v[k] - v[0]
        rows = t[t["scenario"] == s].sort_values("year")
        np.testing.assert_allclose(rows["diff_median"], np.median(diff, axis=0))
        np.testing.assert_allclose(rows["diff_q05"], np.quantile(diff, 0.05, axis=0))
        np.testing.assert_allclose(rows["diff_q95"], np.quantile(diff, 0.95, axis=0))
        np.testing.assert_allclose(rows["diff_q25"], np.quantile(diff, 0.25, axis=0))
        np.testing.assert_allclose(rows["p_below"], (diff < 0).mean(axis=0))
        np.testing.assert_allclose(rows["baseline_median"], np.median(v[0], axis=0))
        ratio = diff.var(axis=0, ddof=1) / (v[k].var(axis=0, ddof=1) + v[0].var(axis=0, ddof=1))
        np.testing.assert_allclose(rows["var_ratio"], ratio)
    # summing over tier when it is not kept or selected
    t2 = compare(ds, scenarios=["a"], by=())
    tot = ds["n_pupils"].sum(["tier", "year"]).values  # (S, D)
    diff = tot[1] - tot[0]
    np.testing.assert_allclose(t2["diff_median"], [np.median(diff)])


def test_combine_separate_files_and_refuse_unpaired(rng, tmp_path):
    ds = synthetic(rng)
    parts = []
    for s in ds["scenario"].values:
        one = ds.sel(scenario=s, drop=True)
        one.attrs = {**ds.attrs, "scenario": str(s)}
        p = tmp_path / f"{s}.nc"
        write_netcdf(one, p)
        parts.append(p)
    both = combine(parts)
    np.testing.assert_array_equal(both["n_pupils"].values, ds["n_pupils"].values)
    other = synthetic(rng, names=("x",), seed=2)
    with pytest.raises(CompareError, match="different root_seed"):
        combine([ds, other])
    with pytest.raises(CompareError, match="no scenario 'baseline'"):
        compare(ds.sel(scenario=["a", "b"]))
    with pytest.raises(CompareError, match="no variable 'n_plans'"):
        compare(ds, variable="n_plans")
    with pytest.raises(CompareError, match="tier=universal not found"):
        compare(ds, select={"tier": "universal"})


def test_cli_compare_table_csv_and_errors(rng, tmp_path):
    ds = synthetic(rng)
    p = tmp_path / "r.nc"
    write_netcdf(ds, p)
    out = tmp_path / "cmp.csv"
    res = CliRunner().invoke(main, ["compare", str(p), "--select", "tier=specialist",
                                    "--csv", str(out)])
    assert res.exit_code == 0, res.output
    assert "diff_median" in res.output and f"wrote {out}" in res.output
    table = pd.read_csv(out)
    np.testing.assert_allclose(table["diff_median"],
                               compare(ds, select={"tier": "specialist"})["diff_median"])
    res = CliRunner().invoke(main, ["compare", str(p), "--baseline", "zzz"])
    assert res.exit_code == 2 and "no scenario 'zzz'" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(main, ["compare", str(p), "--select", "tier"])
    assert res.exit_code == 2


def test_cli_compare_baseline_only_and_garbage_are_user_errors(rng, tmp_path):
    """Both gave tracebacks ("No objects to concatenate"; h5py's file-signature error)."""
    ds = synthetic(rng).sel(scenario=["baseline"])
    p = tmp_path / "base_only.nc"
    write_netcdf(ds, p)
    res = CliRunner().invoke(main, ["compare", str(p)])
    assert res.exit_code == 2 and "nothing to compare" in res.output, res.output
    junk = tmp_path / "junk.nc"
    junk.write_text("not a results file")
    res = CliRunner().invoke(main, ["compare", str(junk)])
    assert res.exit_code == 2 and "junk.nc: not a readable results file" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
