"""A council's own records in the tidy format feed the calibration (not only SEN2)."""

import re
from pathlib import Path

import numpy as np
import xarray as xr

from simsend.calibration import calibrate
from simsend.calibration.fit import load_targets
from simsend.calibration.targets import NEW_PLANS_LAG
from simsend.config import load
from simsend.testing import pin_2022

BASE = Path(__file__).resolve().parents[2] / "configs" / "base.toml"
GROUPS = ("under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25")
YEARS = range(2016, 2023)


def council_files(tmp_path):
    """Counts a council would aggregate from its linked pupil records, 2016-2022."""
    rng = np.random.default_rng(5)
    pop = "year,area,age,count\n" + "".join(
        f"{y},north,{a},{3000 + 10 * a}\n" for y in range(2015, 2023) for a in range(26))
    ehcp = {y: [40 + 4 * k, 300 + 25 * k, 260 + 22 * k, 110 + 9 * k, 20 + k]
            for k, y in enumerate(YEARS)}
    new = {y: [int(x) for x in rng.integers([15, 40, 25, 6, 1], [25, 60, 40, 12, 4])]
           for y in range(2015, 2022)}
    stock = ["year,area,plan,age_group,count"]
    for y in YEARS:
        stock += [f"{y},north,ehcp,{g},{v}" for g, v in zip(GROUPS, ehcp[y], strict=True)]
        stock += [f"{y},north,ehcp,all,{sum(ehcp[y])}", f"{y},north,sen_support,all,{9000 + 50 * (y - 2016)}"]
    flows = ["year,area,flow,age_group,count"]
    for y, v in new.items():
        flows += [f"{y},north,new_plans,{g},{x}" for g, x in zip(GROUPS, v, strict=True)]
    for name, text in (("population", pop), ("stock", "\n".join(stock) + "\n"),
                       ("flows", "\n".join(flows) + "\n")):
        (tmp_path / f"{name}.csv").write_text(text)
    text = pin_2022(BASE.read_text())  # the council's records run to January 2022
    text = text.replace('source = "builtin"', 'source = "files"\nfiles = { population = '
                        '"population.csv", stock = "stock.csv", flows = "flows.csv" }', 1)
    text = text.replace('areas = ["E92000001"]', 'areas = ["north"]', 1)
    text = re.sub(r'(?m)^posterior = .*$', "", text, count=1)
    cfg_path = tmp_path / "council.toml"
    cfg_path.write_text(text)
    return load(cfg_path), ehcp, new


def test_tidy_records_are_the_calibration_targets(tmp_path):
    cfg, ehcp, new = council_files(tmp_path)
    t, prov = load_targets(cfg)
    assert [str(a) for a in t["area"].values] == ["north"]
    assert set(prov.get("sha256", {})) >= {"population", "stock", "flows"}
    for y in YEARS:
        np.testing.assert_array_equal(t["ehcp"].sel(year=y, area="north").values, ehcp[y])
        np.testing.assert_array_equal(t["new_plans"].sel(year=y, area="north").values,
                                      new[y - NEW_PLANS_LAG])
    # the fit sees the same numbers and records them in the artefact
    out = calibrate(cfg, tmp_path / "north.nc", draws=100, tune=100, chains=2,
                    allow_failed_diagnostics=True)
    obs = xr.open_dataset(out, group="observed_data", engine="h5netcdf")
    np.testing.assert_array_equal(obs["ehcp"].sel(year=2022, area="north").values, ehcp[2022])
    np.testing.assert_array_equal(obs["new_plans"].sel(year=2022, area="north").values,
                                  new[2022 - NEW_PLANS_LAG])
    obs.close()
