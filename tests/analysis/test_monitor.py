"""simsend monitor: percentile ranks and observed-minus-counterfactual against exact answers."""

import json

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from simsend.analysis.monitor import monitor
from simsend.cli import main
from simsend.data.errors import DataError
from simsend.io import write_netcdf


def results():
    d = 100
    draws = np.arange(d, dtype=float)  # draw k has value k in every cell
    base = np.broadcast_to(draws[:, None, None, None], (d, 2, 2, 2)).copy()  # draw year tier area
    reform = base - 10.0
    ds = xr.Dataset(
        {"n_pupils": (("scenario", "draw", "year", "tier", "area"), np.stack([base, reform]))},
        coords={"scenario": ["baseline", "reform"], "draw": np.arange(d), "year": [2030, 2031],
                "tier": ["targeted", "specialist"], "area": ["A", "B"]})
    ds.attrs = {"root_seed": 1, "areas": json.dumps(["A", "B"])}
    return ds


def write_actuals(tmp_path, rows, header="year,area,variable,value,tier", name="actuals.csv"):
    p = tmp_path / name
    p.write_text(header + "\n" + "\n".join(rows) + "\n")
    return p


def test_ranks_and_effects_are_exact(tmp_path):
    ds = results()
    p = write_actuals(tmp_path, ["2030,A,n_pupils,49.5,specialist", "2031,B,n_pupils,130,",
                                 "2031,A,n_pupils,20,all"])
    t = monitor(ds, p, forecast="reform", counterfactual="baseline")
    # row 1: the reform's draws are k - 10 (k = 0..99): 60 of them lie below 49.5
    assert t.loc[0, "percentile_rank"] == pytest.approx(0.60)
    eff = 49.5 - np.arange(100.0)  # observed minus the counterfactual's draws
    assert t.loc[0, "effect_median"] == pytest.approx(np.median(eff))
    assert t.loc[0, "effect_q05"] == pytest.approx(np.quantile(eff, 0.05))
    assert t.loc[0, "effect_q95"] == pytest.approx(np.quantile(eff, 0.95))
    # row 2: both tiers summed: draws 2(k - 10); 130 = 2 * 65 -> 75 below, one equal
    assert t.loc[1, "percentile_rank"] == pytest.approx(0.755)
    assert t.loc[1, "forecast_median"] == pytest.approx(np.median(2 * (np.arange(100.0) - 10)))
    # the default: ranks within the counterfactual itself
    t2 = monitor(ds, p)
    assert t2.loc[0, "percentile_rank"] == pytest.approx(0.5)


@pytest.mark.parametrize("rows, header, message", [
    (["2030,A,n_pupils,x,specialist"], None, r"row 2, column value: 'x' is not a number"),
    (["2030,A,n_pupils,1,specialist", "20x0,A,n_pupils,1,"], None, r"row 3, column year"),
    (["2030,A,n_pupil,1,"], None, r"row 2: variable 'n_pupil' not in the results"),
    (["2029,A,n_pupils,1,"], None, r"row 2: year 2029 not in the forecast years"),
    (["2030,Z,n_pupils,1,"], None, r"row 2: area 'Z' not in the results"),
    (["2030,A,n_pupils,1,core"], None, r"row 2: tier 'core' not in the results"),
    (["2030,A,1"], "year,area,value", r"missing column\(s\) \['variable'\]"),
])
def test_bad_actuals_name_file_row_and_column(tmp_path, rows, header, message):
    p = write_actuals(tmp_path, rows, header or "year,area,variable,value,tier")
    with pytest.raises(DataError, match=message):
        monitor(results(), p)


def test_cli_monitor(tmp_path):
    r = tmp_path / "r.nc"
    write_netcdf(results(), r)
    p = write_actuals(tmp_path, ["2030,A,n_pupils,49.5,specialist"])
    out = tmp_path / "m.csv"
    res = CliRunner().invoke(main, ["monitor", str(r), str(p), "--forecast", "reform",
                                    "--csv", str(out)])
    assert res.exit_code == 0, res.output
    assert "percentile_rank" in res.output and out.exists()
    bad = write_actuals(tmp_path, ["2030,A,n_pupils,oops,"], name="bad.csv")
    res = CliRunner().invoke(main, ["monitor", str(r), str(bad)])
    assert res.exit_code == 2 and "not a number" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["monitor", str(r), str(p), "--counterfactual", "nope"])
    assert res.exit_code == 2 and "no scenario 'nope'" in res.output
