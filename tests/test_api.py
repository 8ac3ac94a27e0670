"""The public pipeline on the built-in England data: a run starts exactly at the baseline."""

import re
from pathlib import Path

import numpy as np
import pytest

import simsend
from simsend.config import ConfigError
from simsend.data import DataError
from simsend.dims import AGE_GROUPS, NEEDS, TIERS
from simsend.runner.plan import prepare


def test_base_run_reproduces_baseline_stock_at_first_year():
    cfg = simsend.load("configs/base.toml").replace_run(end_year=2026)
    base = simsend.load_baseline(cfg)
    ds = simsend.run(cfg, draws=1)
    first = ds["n_pupils"].sel(year=2025).isel(draw=0)
    # by tier: the individuals (targeted and above) and the universal pool
    by_tier = first.sum([d for d in first.dims if d != "tier"])
    expected = base.individuals.sum(axis=(1, 2, 3, 4))
    expected[0] = base.pool.sum()
    np.testing.assert_array_equal(by_tier.sel(tier=list(TIERS)).values, expected)
    # by tier x age group x need: the same cells as the baseline, exactly
    for t, tier in enumerate(TIERS[1:], start=1):
        for g, (lo, hi) in AGE_GROUPS.items():
            got = first.sel(tier=tier, age_group=g, need=list(NEEDS)).sum("area").values
            want = base.individuals[t, lo:hi + 1].sum(axis=(0, 2, 3))
            np.testing.assert_array_equal(got, want)
    # the specialist tier is SEN2's EHC plan count for January 2025, as published
    assert int(by_tier.sel(tier="specialist")) == 638_745
    assert int(base.history["ehcp"].sel(year=2025).sum()) == 638_745
    # the year after differs (the run moved)
    assert not np.array_equal(ds["n_pupils"].sel(year=2026).values, first.values)


# --------------------------------------------------------------------------- validate = run's checks

ROOT = Path(__file__).resolve().parents[1]
POP = "year,area,age,count\n" + "".join(
    f"{y},C1,{a},{1000 + a}\n{y},C2,{a},{900 + a}\n" for y in (2021, 2022) for a in range(26))
STOCK = """year,area,plan,count
2022,C1,ehcp,30
2022,C1,sen_support,120
2022,C2,ehcp,12
2022,C2,sen_support,60
"""
PLAN = "area,placement,year,places\nC1,special_state,2022,10\n"


def council_files(tmp_path: Path, pop=POP, stock=STOCK, plan=None, extra="") -> Path:
    """A config over two areas of tidy files (and a provision plan); returns its path."""
    (tmp_path / "population.csv").write_text(pop)
    (tmp_path / "stock.csv").write_text(stock)
    # council.toml's rates without its posterior: areas C1 and C2 are not councils it covers
    rates = tmp_path / "council_rates.toml"
    rates.write_text(re.sub(r'(?m)^posterior = .*$', '',
                            (ROOT / "configs" / "council.toml").read_text()))
    text = (f'extends = "{rates.as_posix()}"\n'
            '[run]\nstart_year = 2022\nend_year = 2024\ndraws = 2\n'
            '[data]\nsource = "files"\nareas = "all"\n'
            '[data.files]\npopulation = "population.csv"\nstock = "stock.csv"\n')
    if plan is not None:
        (tmp_path / "plan.csv").write_text(plan)
        text += '[provision]\nplan = "plan.csv"\n'
    p = tmp_path / "c.toml"
    p.write_text(text + extra)
    return p


def test_validate_passes_what_run_accepts(tmp_path):
    # a row of an area the data know but the run lacks (England's geography) is skipped
    p = council_files(tmp_path, plan=PLAN + "E06000017,special_state,2022,48\n")
    rep = simsend.validate(p)
    assert rep.ok, rep.format()
    prepare(p)  # and a run accepts it


@pytest.mark.parametrize("case, where, text", [
    ("area only in the population file", "stock.csv",
     "no EHC plan rows (plan=ehcp) for area C3 at census 2022"),
    ("header-only population file", "population.csv", "no usable data rows"),
    ("plan with a negative count", "c.toml", "plan.csv: line 2: places '-5'; expected a whole "
                                            "number >= 0 or 'unlimited'"),
    ("plan without a places column", "c.toml", "plan.csv: expected columns ['area', "
                                               "'placement', 'places', 'year']"),
    ("count of 99,999,999,999", "stock.csv", "count above 100,000,000"),
    ("plan naming an area the data lack", "plan.csv", "unknown area code: did you mean C1?"),
    ("population projection with a negative count", "population_projection.csv",
     "expected a number >= 0"),
])
def test_validate_rejects_what_run_rejects(tmp_path, case, where, text):
    kw = {
        "area only in the population file": dict(
            pop=POP + "".join(f"2022,C3,{a},50\n" for a in range(26))),
        "header-only population file": dict(pop="year,area,age,count\n"),
        "plan with a negative count": dict(plan=PLAN.replace(",10\n", ",-5\n")),
        "plan without a places column": dict(plan="area,placement,year\nC1,special_state,2022\n"),
        "count of 99,999,999,999": dict(stock=STOCK.replace(",120\n", ",99999999999\n")),
        "plan naming an area the data lack": dict(plan=PLAN + "C1 ,special_state,2025,12\n"),
        "population projection with a negative count": dict(
            extra='[demography]\nprojection = "population_projection.csv"\n'),
    }[case]
    if "projection" in case:
        (tmp_path / "population_projection.csv").write_text(
            "year,area,age,count\n" + "".join(f"2024,C1,{a},{-5 if a == 3 else 100}\n"
                                             for a in range(26)))
    p = council_files(tmp_path, **kw)
    with pytest.raises((ConfigError, DataError)):
        prepare(p)  # a run stops
    rep = simsend.validate(p)  # validate reports it, without raising
    assert not rep.ok
    hits = [f for f in rep.errors if text in f.message]
    assert hits, rep.format()
    assert Path(hits[0].file).name == where
    assert text in rep.format()


def test_validate_lists_every_run_failure(tmp_path):
    """A scenario naming an unknown area and a bad plan: both listed, each once."""
    scen = ('[scenarios.local]\n[[scenarios.local.modify]]\nrate = "births"\nop = "multiply"\n'
            'value = 1.1\nareas = ["C9"]\n')
    p = council_files(tmp_path, plan=PLAN.replace(",10\n", ",-5\n"), extra=scen)
    rep = simsend.validate(p)
    msgs = [f.message for f in rep.errors]
    assert len(msgs) == 2, rep.format()
    assert any("places '-5'" in m for m in msgs)
    assert any("[scenarios.local.modify[0].areas] area 'C9'" in m for m in msgs)


def test_validate_skips_the_run_checks_after_data_errors(tmp_path):
    p = council_files(tmp_path, stock=STOCK.replace(",120\n", ",-1\n"), plan=PLAN)
    rep = simsend.validate(p)
    assert [f.row for f in rep.errors] == [3]
    assert rep.warnings[-1].message == ("the baseline and the provision plan were not checked: "
                                        "fix the errors above first")
