"""Cost files: the [council], [dsg], [scenarios] tables and [prices] correlation, parsed."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simsend.config import ConfigError
from simsend.config.costs import OVERRIDE_END, Growth, Inflation, load_costs, parse_costs

ROOT = Path(__file__).resolve().parents[2]
COUNCIL = ROOT / "configs" / "costs" / "council_2021_22.toml"

HEAD = '[prices]\nbase = "2021-22"\n[costs.x]\ncount = "n_pupils"\nunit = 5\n'


def test_shipped_council_file_parses_with_every_part():
    c = load_costs(COUNCIL)
    assert c.council.unit_costs == "builtin" and c.correlation == 0.5
    keyed = {it.name: it.council_unit for it in c.items if it.council_unit}
    assert keyed["special_independent"] == "special_independent"
    assert keyed["specialist"] == "specialist" and "transport_mainstream" not in keyed
    d = c.dsg
    assert d.opening == "builtin" and d.bridge == "mean" and d.override_end == 2028
    assert d.thresholds == (0.0, 5e7, 1e8)
    assert d.growth.dist.kind == "normal" and d.growth.dist.params == (0.03, 0.02)
    assert c.budget is None


def test_dsg_values_parse_to_census_years_and_paths_resolve_from_the_file(tmp_path):
    p = tmp_path / "sub" / "c.toml"
    p.parent.mkdir()
    p.write_text(HEAD + '[council]\nunit_costs = "mine.csv"\n[dsg]\n'
                 'opening = { E10000016 = -1.5e8 }\nopening_year = "2023-24"\n'
                 'balances = "b.csv"\nincome = { E10000016 = { "2024-25" = 3e8 } }\n'
                 'bridge = "zero"\ngrowth = { rates = { "2025-26" = 0.05 }, rate = 0.02 }\n'
                 'thresholds = 5e7\n')
    c = load_costs(p)
    assert c.council.unit_costs == str(p.parent / "mine.csv")
    assert c.dsg.balances == str(p.parent / "b.csv")
    assert c.dsg.opening == {"E10000016": -1.5e8} and c.dsg.opening_year == 2024
    assert c.dsg.income == {"E10000016": {2025: 3e8}} and c.dsg.thresholds == (5e7,)
    f = c.dsg.growth.factors([2025, 2026, 2027], 2025, np.array([0.3]))
    np.testing.assert_allclose(f, [[1.0, 1.05, 1.05 * 1.02]])


def test_growth_distribution_may_be_negative_and_is_held_per_draw():
    g = parse_costs(HEAD + '[dsg]\ngrowth = { dist = "uniform", low = -0.04, high = 0.02 }\n'
                    ).dsg.growth
    f = g.factors([2022, 2023, 2024], 2022, np.array([0.0, 1.0]))
    np.testing.assert_allclose(f, [[1.0, 0.96, 0.96 ** 2], [1.0, 1.02, 1.02 ** 2]])
    assert "drawn once per draw" in g.describe()
    assert Growth(path=Inflation(rate=0.0)).describe() == "0 a year"


@pytest.mark.parametrize(("text", "pattern"), [
    ("[council]\nfile = 'x'\n", r"\[council.file\] unknown key"),
    ("[council]\nunit_costs = ''\n", r"\[council.unit_costs\] expected 'builtin' or the path"),
    ("[costs.y]\ncount = 'n_pupils'\nunit = 1\ncouncil_unit = 'special_state'\n",
     r"\[costs.y.council_unit\] needs a \[council\] table"),
    ("[costs.y]\ncount = 'n_pupils'\nunit = 1\ncouncil_unit = 3\n[council]\n",
     r"\[costs.y.council_unit\] expected a string"),
    ("[dsg]\nopening = 'last'\n", r"\[dsg.opening\] expected 'builtin', pounds"),
    ("[dsg]\nopening = { Kent = 1 }\n", r"\[dsg.opening.Kent\] expected a GSS area code"),
    ("[dsg]\nopening_year = '2024'\n", r"\[dsg.opening_year\] expected a financial year"),
    ("[dsg]\nincome = { E10000016 = { '2024-25' = -5 } }\n",
     r"\[dsg.income.E10000016.\"2024-25\"\] value -5 must be >= 0"),
    ("[dsg]\nincome = { E10000016 = 3e8 }\n", r"\[dsg.income.E10000016\] expected a table"),
    ("[dsg]\nbridge = 'average'\n", r"\[dsg.bridge\] expected 'mean', 'last', 'zero'"),
    ("[dsg]\ngrowth = { dist = 'lognormal', median = 0.03, low = 0.01, high = 0.05 }\n",
     r"\[dsg.growth.dist\] expected one of \['fixed', 'normal', 'triangular', 'uniform'\]"),
    ("[dsg]\ngrowth = { dist = 'normal', mean = 0.03 }\n", r"\[dsg.growth.sd\] missing"),
    ("[dsg]\ngrowth = { dist = 'normal', mean = 3, sd = 0.1 }\n",
     r"\[dsg.growth.mean\] value 3 must be <= 1"),
    ("[dsg]\ngrowth = { dist = 'uniform', low = 0.05, high = 0.01 }\n",
     r"\[dsg.growth\] expected low < high"),
    ("[dsg]\noverride_end = 2028\n", r"\[dsg.override_end\] expected a financial year"),
    ("[dsg]\noverride_end = '2028'\n", r"\[dsg.override_end\] expected a financial year "
                                       r"'YYYY-YY' such as '2027-28'.* or 'none', got '2028'"),
    ("[dsg]\noverride_end = '2027-29'\n", r"\[dsg.override_end\] expected a financial year"),
    ("[dsg]\nthresholds = [0, -1]\n", r"\[dsg.thresholds\[1\]\] value -1 must be >= 0"),
    ("[dsg]\nthresholds = []\n", r"\[dsg.thresholds\] expected at least one"),
    ("[dsg]\nreserves = 5\n", r"\[dsg.reserves\] unknown key"),
    ("[scenarios.a]\nunit = { y = 1.1 }\n", r"\[scenarios.a.unit.y\] no cost item 'y'"),
    ("[scenarios.a]\nunit = { x = -1 }\n", r"\[scenarios.a.unit.x\] value -1 must be >= 0"),
    ("[scenarios.a]\nprice = 2\n", r"\[scenarios.a.price\] unknown key"),
    ("[scenarios.a]\ninflation = { rate = 2 }\n", r"\[scenarios.a.inflation.rate\] value 2"),
])
def test_bad_council_dsg_and_scenario_tables_name_file_and_key(text, pattern):
    with pytest.raises(ConfigError, match=r"^c\.toml: " + pattern):
        parse_costs(HEAD + text, "c.toml")


def test_bad_correlation_names_the_key():
    for v in ("1.5", "-0.1", "'high'"):
        with pytest.raises(ConfigError, match=re.escape("c.toml: [prices.correlation]")):
            parse_costs(HEAD.replace('base = "2021-22"', f'base = "2021-22"\ncorrelation = {v}'),
                        "c.toml")


@pytest.mark.parametrize("name", ["england_2021_22.toml", "council_2021_22.toml"])
def test_transport_items_are_the_rebase_of_the_shipped_spend(name):
    """Each transport item's unit, range and growth are what transport_rebase derives from
    transport_spend.csv and SEN2's January caseloads with the file's own shares."""
    from simsend.data.finance import _caseload, transport_rebase

    c = load_costs(ROOT / "configs" / "costs" / name)
    items = {it.name: it for it in c.items if it.category == "transport"}
    shares = {it.placement[0]: it.share.params[1] for it in items.values()
              if it.placement is not None}
    assert len(shares) == 7
    t = transport_rebase(shares)
    unit = t.unit_at(c.price_base)
    assert unit == pytest.approx(9_257.90, abs=0.005)
    for it in items.values():
        median, low, high = it.unit.params
        assert median == pytest.approx(unit, abs=0.005), it.name
        assert (low, high) == pytest.approx((median / 1.3, median * 1.3), abs=0.005), it.name
        assert it.inflation.rate == pytest.approx(t.growth, abs=5e-6), it.name
        # census 2024 (financial year 2023-24) is priced at the published figure
        assert it.inflation.index([2024], c.base_year)[0] * median == pytest.approx(
            t.unit[-1], rel=1e-5)  # the rate is written to 5 decimals
    # the no-placement share: the placement shares weighted by January 2024 placements
    n = _caseload(pd.read_csv(
        ROOT / "simsend" / "data" / "builtin" / "stock.csv.gz",
        dtype={"year": int, "count": float}), 2024).loc["E92000001", list(shares)]
    assert items["transport_specialist"].share.params[1] == pytest.approx(
        t.eligible[-1] / n.sum(), abs=5e-5)


def test_override_end_defaults_to_the_end_of_2027_28_and_none_switches_it_off():
    # MHCLG, Fair Funding Review 2.0 consultation, 20 June 2025: extended to the end of 2027-28
    assert OVERRIDE_END == 2028
    assert parse_costs(HEAD + "[dsg]\n").dsg.override_end == 2028
    assert parse_costs(HEAD + '[dsg]\noverride_end = "none"\n').dsg.override_end is None
    assert parse_costs(HEAD + '[dsg]\noverride_end = "2029-30"\n').dsg.override_end == 2030
    # the shipped council file states the same date, with its source
    text = COUNCIL.read_text()
    assert 'override_end = "2027-28"' in text and "20 June 2025" in text
