"""The reform timeline: reviews at phase transfer after the legislation year, ISPs, dual running."""

import numpy as np

from simsend.config import ReformConfig, parse
from simsend.dims import PLAN, TIER
from simsend.engine.loop import Job, simulate
from simsend.engine.tally import make_layout
from simsend.rates.reform import apply_reform, is_reformed, reviewing
from simsend.rates.scenario import ScenarioSource

N_YEARS = 6  # censuses 2022 .. 2027
STRICT = ReformConfig(legislation_year=2024, steady_state_year=2026, review_share=0.5,
                      review_ages=(5, 11, 16))


def test_apply_reform_table():
    rng = np.random.default_rng(0)
    tiers = rng.uniform(0, 0.05, size=(4, 4, 26, 3))
    for s in range(4):
        tiers[s, s] = 1.0 - (tiers[s].sum(axis=0) - tiers[s, s])
    assert apply_reform(STRICT, 2024, tiers) is tiers  # legislation year: current law
    assert apply_reform(STRICT, 2027, tiers) is tiers  # after steady state: no more reviews
    out = apply_reform(STRICT, 2025, tiers)
    sp, tp = TIER["specialist"], TIER["targeted_plus"]
    ages = [5, 11, 16]
    np.testing.assert_allclose(out[sp, tp, ages], tiers[sp, tp, ages] + 0.5 * tiers[sp, sp, ages])
    np.testing.assert_allclose(out[sp, sp, ages], 0.5 * tiers[sp, sp, ages])
    other = [a for a in range(26) if a not in ages]
    assert np.array_equal(out[:, :, other], tiers[:, :, other])
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    entry = apply_reform(ReformConfig(legislation_year=2024, entry_factor=0.5), 2025, tiers)
    np.testing.assert_allclose(entry[1:3, sp], 0.5 * tiers[1:3, sp])
    np.testing.assert_allclose(entry.sum(axis=1), 1.0, atol=1e-12)
    assert not is_reformed(STRICT, 2024) and is_reformed(STRICT, 2025)
    assert [reviewing(STRICT, y) for y in (2024, 2025, 2026, 2027)] == [False, True, True, False]


def run(toy, reform, by=("tier", "age", "area"), draws=range(8)):
    ind, pool, births, src = toy
    layout = make_layout(by, ("A", "B"))
    out = simulate(Job(ind, pool, N_YEARS, 11, layout), ScenarioSource(src, 2022, reform), draws)
    return out, layout


def test_stricter_threshold_moves_specialist_to_targeted_plus_at_phase_transfer_only(toy):
    base, lay = run(toy, ReformConfig(legislation_year=2024))
    strict, _ = run(toy, STRICT)
    shape = (*base.flows.shape[:3], *lay.shape)  # (D, Y, flow, tier, age, area)
    deesc_b = base.flows.reshape(shape)[:, :, 2].sum(axis=-1)  # (D, Y, tier, age)
    deesc_s = strict.flows.reshape(shape)[:, :, 2].sum(axis=-1)
    tp = TIER["targeted_plus"]
    # censuses up to the legislation year (2022-2024): identical, draw by draw
    for f in ("stock", "flows", "transitions"):
        np.testing.assert_array_equal(getattr(strict, f)[:, :3], getattr(base, f)[:, :3])
    # the first reformed year (2025): more moves into targeted-plus at 5, 11 and 16 ...
    y = 3
    for a in (5, 11, 16):
        assert (deesc_s[:, y, tp, a] >= deesc_b[:, y, tp, a]).all()
        assert deesc_s[:, y, tp, a].sum() > deesc_b[:, y, tp, a].sum() + 10
    # ... and at no other age (every state was the same at the start of the year)
    other = [a for a in range(26) if a not in (5, 11, 16)]
    np.testing.assert_array_equal(deesc_s[:, y, :, other], deesc_b[:, y, :, other])
    # specialist -> targeted_plus transitions rise; the specialist stock falls
    sp = TIER["specialist"]
    assert (strict.transitions[:, y, sp, tp] > base.transitions[:, y, sp, tp]).all()
    stock_s = strict.stock.reshape(*strict.stock.shape[:2], *lay.shape)[:, y, sp].sum()
    stock_b = base.stock.reshape(*base.stock.shape[:2], *lay.shape)[:, y, sp].sum()
    assert stock_s < stock_b


def test_isp_after_the_legislation_year(toy):
    out, lay = run(toy, ReformConfig(legislation_year=2024), by=("tier", "plan"), draws=range(2))
    stock = out.stock.reshape(*out.stock.shape[:2], *lay.shape)  # (D, Y, tier, plan)
    isp = stock[:, :, :, PLAN["isp"]].sum(axis=(0, 2))
    assert (isp[:3] == 0).all() and (isp[3:] > 0).all()
    # dual running: SEN support continues for those who have not moved since
    assert (stock[:, 3:, TIER["targeted"], PLAN["sen_support"]] > 0).all()


def test_reform_table_in_config(toy_text):
    cfg = parse(toy_text + "\n[reform]\nlegislation_year = 2030\nreview_share = 0.1\n"
                "review_ages = [4, 10]\n", "t.toml")
    assert cfg.reform == ReformConfig(legislation_year=2030, steady_state_year=2035,
                                      review_share=0.1, review_ages=(4, 10))
