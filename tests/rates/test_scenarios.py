"""Scenarios: parsing, modifiers on the year tables, no-op identity and common random numbers."""

import re
from pathlib import Path

import numpy as np
import pytest

import simsend
from simsend.config import ConfigError, ReformConfig, parse
from simsend.config.scenarios import Modifier, early_intervention
from simsend.dims import TIER
from simsend.engine.loop import Job, simulate
from simsend.engine.tally import make_layout
from simsend.rates.modifiers import apply_modifiers, compile_modifiers
from simsend.rates.scenario import ScenarioSource
from simsend.testing import pin_2022

ROOT = Path(__file__).resolve().parents[2]
N_YEARS = 6


def small_text(end_year=2026, extra=""):
    """configs/base.toml for Rutland over a short horizon, plus ``extra`` tables."""
    text = pin_2022((ROOT / "configs" / "base.toml").read_text())
    text = text.replace('areas = ["E92000001"]', 'areas = ["E06000017"]')
    text = re.sub(r"(?m)^end_year = .*$", f"end_year = {end_year}", text)
    return text + "\n" + extra


def toy_run(toy, source, draws=range(6), seed=3, by=("tier", "age", "area")):
    ind, pool, births, _ = toy
    layout = make_layout(by, ("A", "B"))
    return simulate(Job(ind, pool, N_YEARS, seed, layout), source, draws), layout


def wrap(src, mods=(), reform=None, start_year=2022):
    return ScenarioSource(src, start_year, reform or ReformConfig(),
                          compile_modifiers(mods, ("A", "B")))


# --------------------------------------------------------------------------- parsing


def test_scenarios_parse_events_modifiers_include(toy_text):
    cfg = parse(toy_text + """
[scenarios.surge]
description = "requests up a third"
events = [{ type = "request_surge", factor = 1.33, years = "2024-2025" }]
[scenarios.early]
[[scenarios.early.modify]]
rate = "escalation"
op = "multiply"
value = 0.8
tier = "targeted"
ages = "5-15"
needs = ["ASD", "SEMH"]
years = "2026-2030"
ramp = 2
[scenarios.both]
include = ["surge", "early"]
reform = { review_share = 0.2 }
""", "t.toml")
    names = [s.name for s in cfg.scenarios]
    assert names == ["surge", "early", "both"]
    surge, early, both = cfg.scenarios
    assert surge.description == "requests up a third"
    (m,) = surge.modifiers
    assert (m.rate, m.op, m.value, m.to, m.years) == ("tier", "multiply", 1.33,
                                                      ("specialist",), (2024, 2025))
    (e,) = early.modifiers
    assert (e.tier, e.ages, e.needs, e.ramp) == (("targeted",), (5, 15), ("ASD", "SEMH"), 2)
    assert both.modifiers == (m, e)
    assert both.reform.review_share == 0.2 and surge.reform.review_share == 0.0


@pytest.mark.parametrize("extra, message", [
    ("[scenarios.x]\nbogus = 1\n", r"\[scenarios\.x\.bogus\] unknown key"),
    ("[[scenarios.x.modify]]\nrate = \"tier\"\nop = \"multiply\"\nvalue = 2\nplacement = 1\n",
     r"\[scenarios\.x\.modify\[0\]\.placement\] not a filter of rate 'tier'"),
    ("[[scenarios.x.modify]]\nrate = \"tiers\"\nop = \"multiply\"\nvalue = 2\n",
     r"\[scenarios\.x\.modify\[0\]\.rate\] unknown rate 'tiers'"),
    ("[[scenarios.x.modify]]\nrate = \"tier\"\nop = \"scale\"\nvalue = 2\n",
     r"\[scenarios\.x\.modify\[0\]\.op\] unknown value 'scale'"),
    ("[[scenarios.x.modify]]\nrate = \"leaving\"\nop = \"set\"\nvalue = 0.1\nyears = \"20x\"\n",
     r"\[scenarios\.x\.modify\[0\]\.years\] year range"),
    ("[scenarios.x]\nevents = [{ type = \"surge\" }]\n", r"\[scenarios\.x\.events\[0\]\.type\]"),
    ("[scenarios.x]\nevents = [{ type = \"request_surge\", factr = 2 }]\n",
     r"\[scenarios\.x\.events\[0\]\.factr\] unknown key"),
    ("[scenarios.x]\ninclude = [\"y\"]\n", r"\[scenarios\.x\.include\[0\]\] no scenario named"),
    ("[scenarios.x]\nreform = { review_share = 2 }\n",
     r"\[scenarios\.x\.reform\.review_share\] probability"),
    ("[scenarios.baseline]\n", r"reserved"),
    ("[scenarios.x]\nevents = [{ type = \"early_intervention\", effect = 0.1, ramp = 2 }]\n",
     r"\[scenarios\.x\.events\[0\]\.ramp\] a ramp needs 'years'"),
    ("[reform]\nlegislation_yr = 2029\n", r"\[reform\.legislation_yr\] unknown key"),
    ("[pipeline]\np_refuse = 1.5\n", r"\[pipeline\.p_refuse\] probability"),
])
def test_bad_scenario_keys_name_their_path(toy_text, extra, message):
    with pytest.raises(ConfigError, match=message):
        parse(toy_text + "\n" + extra, "t.toml")


def test_extends_takes_base_tables_and_overrides(tmp_path):
    child = tmp_path / "child.toml"
    child.write_text(f'extends = "{(ROOT / "configs" / "base.toml").as_posix()}"\n'
                     "[run]\ndraws = 7\n[scenarios.s]\n"
                     'events = [{ type = "early_intervention", effect = 0.1 }]\n')
    cfg = simsend.load(child)
    base = simsend.load(ROOT / "configs" / "base.toml")
    assert cfg.run.draws == 7 and cfg.run.seed == base.run.seed
    np.testing.assert_array_equal(cfg.model.tiers, base.model.tiers)
    assert [s.name for s in cfg.scenarios] == ["s"]
    assert "extends base.toml" in cfg.text and cfg.sha256 != base.sha256
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "nowhere.toml"\n')
    with pytest.raises(ConfigError, match=r"\[extends\] file not found"):
        simsend.load(bad)


# --------------------------------------------------------------------------- modifiers


def tables(n_areas=2, seed=0):
    rng = np.random.default_rng(seed)
    tiers = rng.uniform(0.0, 0.1, size=(4, 4, 26, 13, n_areas))
    for s in range(4):
        tiers[s, s] = 1.0 - (tiers[s].sum(axis=0) - tiers[s, s])
    placement = rng.uniform(0.0, 0.05, size=(4, 26, 7, 7))
    for p in range(7):
        placement[:, :, p, p] = 1.0 - (placement[:, :, p].sum(axis=-1) - placement[:, :, p, p])
    return {"identification": rng.uniform(0, 0.1, (26, n_areas)),
            "leaving": rng.uniform(0, 0.1, (4, 26)), "tiers": tiers, "placement": placement,
            "births": np.array([100.0, 200.0]), "pipeline": np.array([0.24, 0.06, 0.6])}


def test_multiply_tier_with_filters_and_ramp():
    t = tables()
    mod = Modifier("tier", "multiply", 2.0, tier=("targeted",), to=("specialist",),
                   ages=(5, 10), needs=("ASD",), areas=("B",), years=(2025, 2030), ramp=4)
    (c,) = compile_modifiers([mod], ("A", "B"))
    assert apply_modifiers([c], 2024, t)["tiers"] is t["tiers"]  # before: untouched
    out = apply_modifiers([c], 2026, t)["tiers"]  # strength 2/4: factor 1.5
    old = t["tiers"]
    exp = old.copy()
    exp[1, 3, 5:11, 0, 1] = old[1, 3, 5:11, 0, 1] * 1.5
    exp[1, 1, 5:11, 0, 1] = 1.0 - (old[1, 0] + old[1, 2] + exp[1, 3])[5:11, 0, 1]
    np.testing.assert_allclose(out, exp, rtol=0, atol=1e-15)
    # everything outside the filter keeps its exact bits
    mask = np.zeros(old.shape, bool)
    mask[1, :, 5:11, 0, 1] = True
    assert np.array_equal(out[~mask], old[~mask])
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)


def test_escalation_add_set_and_capping():
    t = tables()
    (c,) = compile_modifiers([Modifier("escalation", "add", 0.5)], ("A", "B"))
    out = apply_modifiers([c], 2030, t)["tiers"]
    old = t["tiers"]
    # moves down are untouched; upward moves of targeted: +0.5 each, then scaled to sum 1
    np.testing.assert_array_equal(out[2, 0], old[2, 0])
    up = old[1, 2:] + 0.5
    moving = old[1, 0] + up.sum(axis=0)
    np.testing.assert_allclose(out[1, 2:], up / moving, atol=1e-15)
    np.testing.assert_allclose(out[1, 1], 0.0, atol=1e-15)
    (c,) = compile_modifiers([Modifier("leaving", "set", 0.5, tier=("specialist",))], ("A",))
    lv = apply_modifiers([c], 2030, t)["leaving"]
    assert (lv[3] == 0.5).all() and np.array_equal(lv[:3], t["leaving"][:3])
    (c,) = compile_modifiers([Modifier("births", "multiply", 1.1, areas=("A",))], ("A", "B"))
    np.testing.assert_allclose(apply_modifiers([c], 2030, t)["births"], [110.0, 200.0])
    (c,) = compile_modifiers([Modifier("pipeline.p_refuse", "set", 0.4)], ())
    np.testing.assert_allclose(apply_modifiers([c], 2030, t)["pipeline"][0], 0.4)
    with pytest.raises(ConfigError, match="not in this run's areas"):
        compile_modifiers([Modifier("births", "multiply", 1.1, areas=("Z",), key="k")], ("A",))


def test_placement_modifier_keeps_rows_distributions():
    t = tables()
    mod = Modifier("placement", "multiply", 0.0, tier=("specialist",), frm=("mainstream",),
                   to=("special_state",), ages=(11, 11))
    (c,) = compile_modifiers([mod], ("A",))
    out = apply_modifiers([c], 2030, t)["placement"]
    assert out[3, 11, 0, 2] == 0.0
    np.testing.assert_allclose(out[3, 11, 0].sum(), 1.0, atol=1e-15)
    changed = np.zeros(out.shape, bool)
    changed[3, 11, 0] = True
    assert np.array_equal(out[~changed], t["placement"][~changed])


# --------------------------------------------------------------------------- engine


def test_noop_scenario_is_bit_identical(toy):
    src = toy[3]
    plain, _ = toy_run(toy, src)
    base, _ = toy_run(toy, wrap(src))
    noop, _ = toy_run(toy, wrap(src, [Modifier("tier", "multiply", 1.0),
                                      Modifier("escalation", "add", 0.0),
                                      Modifier("identification", "multiply", 1.0)]))
    for a in (base, noop):
        for f in ("stock", "flows", "transitions"):
            np.testing.assert_array_equal(getattr(a, f), getattr(plain, f))


def test_common_random_numbers_shrink_the_variance_of_differences(toy):
    src = toy[3]
    draws = range(40)
    scen = wrap(src, [Modifier("escalation", "multiply", 0.8, years=(2024, 2027))])
    b, lay = toy_run(toy, wrap(src), draws=draws)
    s, _ = toy_run(toy, scen, draws=draws)
    ind, _ = toy_run(toy, scen, draws=draws, seed=99)  # independent random numbers
    t = TIER["specialist"]

    def spec(o):
        return o.stock.reshape(len(draws), N_YEARS, 4, -1)[:, :, t].sum(axis=-1)[:, -1]

    vb, vs = spec(b).var(ddof=1), spec(s).var(ddof=1)
    crn = np.var(spec(s) - spec(b), ddof=1) / (vb + vs)
    indep = np.var(spec(ind) - spec(b), ddof=1) / (vb + spec(ind).var(ddof=1))
    assert crn < 0.2, crn
    assert indep > 0.4, indep  # the same measure on unpaired runs is near 1
    assert (spec(s) < spec(b)).mean() > 0.9  # fewer escalations: fewer specialist pupils


def test_early_intervention_helper_and_scenario_arg():
    cfg = parse(small_text(2024), "t.toml")
    ds = simsend.run(cfg, draws=3, scenario=early_intervention(0.5, (2023, 2024)))
    assert "scenario" not in ds.dims and ds.attrs["scenario"] == "early_intervention"
    base = simsend.run(cfg, draws=3)
    assert ds["n_escalated"].sel(year=2024).sum() < base["n_escalated"].sel(year=2024).sum()


def test_run_all_and_pick_one_with_scenario_dim():
    cfg = parse(small_text(2024, """
[scenarios.noop]
[[scenarios.noop.modify]]
rate = "identification"
op = "multiply"
value = 1.0
[scenarios.more_births]
[[scenarios.more_births.modify]]
rate = "births"
op = "multiply"
value = 2.0
"""), "t.toml")
    ds = simsend.run(cfg, draws=2)
    assert list(ds["scenario"].values) == ["baseline", "noop", "more_births"]
    for v in ds.data_vars:
        np.testing.assert_array_equal(ds[v].sel(scenario="noop").values,
                                      ds[v].sel(scenario="baseline").values)
    one = simsend.run(cfg, draws=2, scenario="more_births")
    assert list(one["scenario"].values) == ["baseline", "more_births"]
    np.testing.assert_array_equal(one["n_pupils"].values, ds["n_pupils"].sel(
        scenario=["baseline", "more_births"]).values)
    with pytest.raises(ConfigError, match="no scenario named 'nope'"):
        simsend.run(cfg, draws=2, scenario="nope")


def test_cli_run_scenario_option(tmp_path):
    from click.testing import CliRunner

    from simsend.cli import main
    from simsend.io import read_netcdf

    cfg = tmp_path / "s.toml"
    out = tmp_path / "s.nc"
    cfg.write_text(small_text(2024, """
[scenarios.surge]
events = [{ type = "request_surge", factor = 1.5 }]
[scenarios.early]
events = [{ type = "early_intervention", effect = 0.3 }]
""").replace('path = "results/base.nc"', f'path = "{out.as_posix()}"'))
    res = CliRunner().invoke(main, ["run", str(cfg), "--draws", "2", "--scenario", "early",
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    ds = read_netcdf(out)
    assert list(ds["scenario"].values) == ["baseline", "early"]
    res = CliRunner().invoke(main, ["run", str(cfg), "--draws", "2", "--scenario", "nope"])
    assert res.exit_code == 2 and "no scenario named 'nope'" in res.output
    assert "Traceback" not in res.output


def test_include_carries_reform_settings(toy_text):
    cfg = parse(toy_text + """
[scenarios.strict]
events = [{ type = "threshold_change", review_share = 0.3 }]
[scenarios.entry]
reform = { entry_factor = 0.5 }
[scenarios.strict_entry]
include = ["strict", "entry"]
[scenarios.nested]
include = ["strict_entry"]
""", "t.toml")
    by = {s.name: s for s in cfg.scenarios}
    assert by["strict"].reform.review_share == 0.3 and by["strict"].modifiers == ()
    for name in ("strict_entry", "nested"):
        assert (by[name].reform.review_share, by[name].reform.entry_factor) == (0.3, 0.5)


def test_modifiers_on_a_chunk_of_areas_equal_the_whole_run_sliced():
    from simsend.rates.modifiers import slice_modifiers

    t = tables(n_areas=3)
    t["births"] = np.array([100.0, 200.0, 300.0])
    mods = [Modifier("tier", "multiply", 3.0, tier=("targeted",), areas=("B", "C")),
            Modifier("identification", "add", 0.01),  # every area
            Modifier("births", "multiply", 2.0, areas=("A",))]
    whole = apply_modifiers(compile_modifiers(mods, ("A", "B", "C")), 2030, t)
    chunk = {k: (np.take(v, [1, 2], axis={"tiers": 4, "identification": 1, "births": 0}[k])
                 if k in ("tiers", "identification", "births") else v) for k, v in t.items()}
    comp = slice_modifiers(compile_modifiers(mods, ("A", "B", "C")), 1, 3)
    assert len(comp) == 2  # the births modifier filters only area A: dropped
    part = apply_modifiers(comp, 2030, chunk)
    np.testing.assert_array_equal(part["tiers"], whole["tiers"][..., 1:3])
    np.testing.assert_array_equal(part["identification"], whole["identification"][:, 1:3])
    np.testing.assert_array_equal(part["births"], whole["births"][1:3])
    with pytest.raises(ValueError, match="slice_modifiers"):
        apply_modifiers(compile_modifiers(mods[:1], ("A", "B", "C")), 2030, chunk)
