"""Bad input in config and cost files: each mistake is a ConfigError naming file and key path;
valid input is not rejected (escalation checked age by age, a byte-order mark accepted)."""

import re
from pathlib import Path

import numpy as np
import pytest

from simsend.config import ConfigError, load, parse
from simsend.config.costs import load_costs

ROOT = Path(__file__).resolve().parents[2]
TARGETED_UNIVERSAL = 'universal = { "0-10" = 0.15, "11-25" = 0.25 }'


# --------------------------------------------------------------------------- escalation by age


def test_need_multiplier_check_is_per_age(toy_text):
    """Escalation is largest at ages 0-4 and moves down largest at 16-25: each age still fits.

    Targeted escalation is 0.18 at ages 0-4 and 0.13 from age 5; with ASD = 1.5, age 16 moves
    0.13 x 1.5 + 0.80 = 0.995 <= 1 (the old check added 0.18 x 1.5 to 0.80: 1.07).
    """
    assert TARGETED_UNIVERSAL in toy_text
    cfg = parse(toy_text.replace(TARGETED_UNIVERSAL,
                                 'universal = { "0-15" = 0.15, "16-25" = 0.80 }'), "ok.toml")
    assert cfg.model.tiers[1, 0, 16] == 0.80
    worst = cfg.model.tiers[1, 2:, 16].sum() * cfg.model.need_multiplier.max()
    assert worst + cfg.model.tiers[1, 0, 16] <= 1.0


def test_need_multiplier_names_the_age_and_tier(toy_text):
    text = toy_text.replace(TARGETED_UNIVERSAL, 'universal = { "0-15" = 0.15, "16-25" = 0.81 }')
    with pytest.raises(ConfigError, match=r"^bad.toml: \[model.need_multiplier\] at age 16, "
                                          r"escalation from 'targeted' \(0.13\) times the "
                                          r"largest need multiplier \(ASD = 1.5\) plus the moves "
                                          r"down \(0.81\) sums to 1.005"):
        parse(text, "bad.toml")


# --------------------------------------------------------------------------- scenario years


SCEN = """
[scenarios.late]
[[scenarios.late.modify]]
rate = "identification"
op = "multiply"
value = 2.0
years = "{years}"
"""


@pytest.mark.parametrize("years", ["2050-2060", "2015-2021", "2036", "2040-2045"])
def test_modifier_years_wholly_outside_the_run(toy_text, years):
    with pytest.raises(ConfigError, match=re.escape(
            "bad.toml: [scenarios.late.modify[0].years] years " + years
            + " lie wholly outside the run's years 2022-2035 (run.start_year-run.end_year)")):
        parse(toy_text + SCEN.format(years=years), "bad.toml")


def test_event_years_outside_the_run_name_the_event(toy_text):
    text = toy_text + """
[run]
end_year = 2030
[scenarios.surge]
events = [{ type = "request_surge", factor = 1.3, years = "2031-2033" }]
"""
    with pytest.raises(ConfigError, match=re.escape(
            "[scenarios.surge.events[0].years] years 2031-2033 lie wholly outside the run's "
            "years 2022-2030")):
        parse(text, "bad.toml")


@pytest.mark.parametrize("years", ["2030-2060", "2010-2022", "2035"])
def test_modifier_years_overlapping_the_run_are_kept(toy_text, years):
    cfg = parse(toy_text + SCEN.format(years=years), "ok.toml")
    lo, hi = (int(y) for y in (years.split("-") * 2)[:2])
    assert cfg.scenarios[0].modifiers[0].years == (lo, hi)


# --------------------------------------------------------------------------- byte-order mark


def test_config_file_with_bom_loads(tmp_path, toy_text):
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + toy_text.encode("utf-8"))
    cfg = load(p)
    plain = parse(toy_text, "plain.toml")
    assert cfg.sha256 == plain.sha256 and not cfg.text.startswith("\ufeff")
    np.testing.assert_array_equal(cfg.model.tiers, plain.model.tiers)
    assert parse("\ufeff" + toy_text, "text.toml").sha256 == plain.sha256


def test_extended_config_with_bom_loads(tmp_path, toy_text):
    (tmp_path / "parent.toml").write_bytes(b"\xef\xbb\xbf" + toy_text.encode("utf-8"))
    child = tmp_path / "child.toml"
    child.write_bytes(b'\xef\xbb\xbfextends = "parent.toml"\n[run]\ndraws = 7\n')
    cfg = load(child)
    assert cfg.run.draws == 7 and cfg.model.identification[4] == 0.05


def test_cost_file_with_bom_loads(tmp_path):
    src = ROOT / "configs" / "costs" / "england_2021_22.toml"
    p = tmp_path / "costs.toml"
    p.write_bytes(b"\xef\xbb\xbf" + src.read_bytes())
    c = load_costs(p)
    assert c.sha256 == load_costs(src).sha256 and c.items == load_costs(src).items


def test_bom_in_the_middle_is_still_an_error(tmp_path, toy_text):
    p = tmp_path / "mid.toml"
    p.write_text(toy_text + "\ufeff\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(p)
