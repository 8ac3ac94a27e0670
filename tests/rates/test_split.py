"""The targeted / targeted-plus split held at a stated share (simsend.rates.split)."""

from pathlib import Path

import numpy as np
import pytest

from simsend.config import load
from simsend.config.toml import ConfigError
from simsend.rates.sources import FixedParameters, SplitSource
from simsend.rates.split import balance_split

U, T, TP, S = 0, 1, 2, 3


def random_tiers(rng, shape=(26, 3, 2)):
    """Random row-stochastic tier moves ``[src, dst, age, need, area]`` (universal stays)."""
    out = np.zeros((4, 4, *shape))
    out[U, U] = out[S, S] = 1.0
    out[T, U], out[T, S] = rng.uniform(0, 0.15, shape), rng.uniform(0, 0.08, shape)
    out[T, TP] = rng.uniform(0, 0.1, shape)
    out[TP, U], out[TP, T] = rng.uniform(0, 0.1, shape), rng.uniform(0, 0.1, shape)
    out[TP, S] = rng.uniform(0.05, 0.35, shape)
    for src in (T, TP):
        out[src, src] = 1.0 - out[src].sum(axis=0) + out[src, src]
    return out


@pytest.mark.parametrize("share", [0.1, 0.25, 0.5])
def test_a_cohort_split_at_the_share_keeps_it_after_the_year(share):
    """One year's expected moves of (1 - s) X targeted and s X targeted-plus children: those
    still in SEN support are split s (where no clip binds); rows stay distributions."""
    tiers = random_tiers(np.random.default_rng(1))
    out = balance_split(tiers, share)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert (out >= 0).all()
    x = np.array([0.0, 1.0 - share, share, 0.0])  # the cohort's opening split
    after = np.einsum("s,sd...->d...", x, out)
    m = out[T, TP]
    free = (m > 0) & (m < 1.0 - tiers[T, U] - tiers[T, S])
    assert free.mean() > 0.5  # most cells unclipped: the check is not vacuous
    got = after[TP] / (after[T] + after[TP])
    np.testing.assert_allclose(got[free], share, rtol=1e-12)
    # where targeted escalates more than targeted-plus, the move is 0 and the share rises
    np.testing.assert_array_less(share - 1e-12, got[~free & (m == 0)])
    # only the targeted row's moves up and stay change
    keep = np.ones((4, 4), bool)
    keep[T, T] = keep[T, TP] = False
    np.testing.assert_array_equal(out[keep], tiers[keep])


def test_the_engine_expectation_holds_the_share_the_rates_drain():
    """Exact expected states of the default config's rates on the default England baseline
    (one year's split at 25%): with every identified child entering targeted, targeted-plus
    drains at under 11; balanced, under 5 to 15 hold 25% within a point."""
    import dataclasses

    from simsend.dims import band_matrix
    from simsend.runner.plan import prepare
    from simsend.testing import expected_states

    plan = prepare("configs/base.toml", draws=1)
    ind, pool = np.asarray(plan.baseline.individuals), np.asarray(plan.baseline.pool)
    rates = FixedParameters(plan.cfg.model, plan.baseline.births).params
    m = band_matrix()

    def shares(ps):
        states, _ = expected_states(ind, pool, ps, 4)
        by = states.sum(axis=(3, 4, 5))  # (year, tier, age)
        tp, ss = by[:, TP] @ m, (by[:, T] + by[:, TP]) @ m
        return tp[:, :4] / ss[:, :4]  # (year, age band) under 5 to 16-19

    share = plan.baseline.targeted_plus_share
    np.testing.assert_allclose(shares(rates)[0], share, atol=0.005)  # the baseline's split
    drained = shares(rates)[-1]
    held = shares(dataclasses.replace(rates, targeted_plus_share=share))[-1]
    # three years on: under 5 about 6%, 5-10 about 18% (uncalibrated rates; the calibrated
    # escalation of targeted-plus drains it faster)
    assert drained[0] < share - 0.15 and drained[1] < share - 0.05, drained
    np.testing.assert_allclose(held[:3], share, atol=0.01)
    # at 16-19 plans ending with needs met step down to targeted-plus (the config's move),
    # many beside the band's SEN support: the share rises by about 2.6 points in three years
    assert share < held[3] < share + 0.03


def test_share_out_of_range_is_refused():
    tiers = random_tiers(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        balance_split(tiers, 1.0)
    with pytest.raises(ValueError, match="targeted_plus_share"):
        SplitSource(None, -0.1)


def test_targeted_split_is_parsed_and_a_wrong_value_named(tmp_path):
    cfg = load("configs/base.toml")
    assert cfg.model.targeted_split == "balanced"
    text = open("configs/base.toml", encoding="utf-8").read().replace(
        'targeted_split = "balanced"', 'targeted_split = "even"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="model.targeted_split"):
        load(bad)


def test_a_share_of_one_is_refused_with_the_keys(tmp_path):
    """Balanced with every SEN-support child in targeted-plus: a config error naming both keys,
    before anything runs."""
    from simsend.runner.plan import prepare

    text = open("configs/base.toml", encoding="utf-8").read().replace(
        "targeted_plus_share = 0.25", "targeted_plus_share = 1.0")
    assert "targeted_plus_share = 1.0" in text
    bad = tmp_path / "one.toml"
    bad.write_text(text.replace('posterior = "england_2025"', 'posterior = "'
                                + str(Path("models/england_2025.nc").resolve()) + '"')
                   .replace('plan = "england_2025"', 'plan = "'
                            + str(Path("configs/provision/england_2025.csv").resolve()) + '"'),
                   encoding="utf-8")
    with pytest.raises(ConfigError, match=r"targeted_split.*targeted_plus_share\] below 1"):
        prepare(bad, draws=1)
