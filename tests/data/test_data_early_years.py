"""Early-years fill: identified children at ages the school census does not cover."""

import dataclasses

import numpy as np
import pytest

from simsend.config import load
from simsend.data.early_years import deal, fill_early_years, identified_share
from simsend.data.support_ages import cohort_shares
from simsend.dims import AGE_GROUPS, TIER
from simsend.testing import toy_baseline

T, TP, S = TIER["targeted"], TIER["targeted_plus"], TIER["specialist"]


@dataclasses.dataclass(frozen=True)
class _Base:
    individuals: np.ndarray
    pool: np.ndarray
    areas: tuple
    targeted_plus_share: float
    provenance: dict


@pytest.fixture(scope="module")
def model():
    return load("configs/base.toml").model


def _school_only(n_areas=2, first_age=4):
    ind, pool, _ = toy_baseline(n_areas=n_areas, scale=400, seed=3)
    ind[T:S, :first_age] = 0  # no SEN support recorded below school age
    return _Base(ind, pool, tuple(f"A{r}" for r in range(n_areas)), 0.25, {"assumptions": []})


def test_deal_is_exact_and_proportional():
    out = deal(1000, np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert out.sum() == 1000
    np.testing.assert_array_equal(out, [[100, 200], [300, 400]])
    assert deal(7, np.zeros(3)).tolist() == [0, 0, 0]


def test_identified_share_is_one_minus_product():
    p = np.array([0.1, 0.2, 0.5])
    np.testing.assert_allclose(identified_share(p), [0.1, 1 - 0.9 * 0.8, 1 - 0.9 * 0.8 * 0.5])


def test_fill_moves_expected_children_and_keeps_population(model):
    base = _school_only()
    out = fill_early_years(base, model)
    share, _ = cohort_shares(model, 0.25)
    pop_before = base.pool + base.individuals[1:].sum(axis=(0, 2, 4))
    pop_after = out.pool + out.individuals[1:].sum(axis=(0, 2, 4))
    np.testing.assert_array_equal(pop_before, pop_after)  # nobody created or lost
    targ = out.individuals[T:S].sum(axis=(0, 2, 4))  # (age, area)
    for a in range(4):  # population x the cohort's share (never more than the pool)
        want = np.minimum(np.floor(pop_before[a] * share[a] + 0.5), base.pool[a])
        np.testing.assert_array_equal(targ[a], want)
        assert (targ[a] > 0).all()
    # ages from the first census age on are untouched in the targeted tiers
    np.testing.assert_array_equal(out.individuals[T:S, 4:], base.individuals[T:S, 4:])
    # targeted-plus share as the baseline's (rounded per age and area)
    tp = out.individuals[TP, :4].sum(axis=(1, 3))
    np.testing.assert_array_equal(tp, np.floor(targ[:4] * 0.25 + 0.5))
    assert any("early_years_fill" in a for a in out.provenance["assumptions"])
    assert base.individuals[T:S, :4].sum() == 0  # the input was not modified


def test_fill_respreads_under5_plans_with_band_totals_exact(model):
    base = _school_only()
    out = fill_early_years(base, model)
    lo, hi = AGE_GROUPS["under_5"]
    before = base.individuals[S, lo:hi + 1].sum(axis=0)
    after = out.individuals[S, lo:hi + 1].sum(axis=0)
    np.testing.assert_array_equal(before, after)
    by_age = out.individuals[S, lo:hi + 1].sum(axis=(1, 2, 3))
    assert by_age[-1] > by_age[0]  # plans follow the cohort's: more at 4 than at 0
    # in proportion to population x the cohort's share in plans, age by age (rounding apart)
    _, plans = cohort_shares(model, 0.25)
    pop = (out.pool + out.individuals[1:].sum(axis=(0, 2, 4)))[lo:hi + 1]  # (ages, area)
    w = pop * plans[lo:hi + 1, None]
    got = out.individuals[S, lo:hi + 1].sum(axis=(1, 3))
    want = got.sum(axis=0)[None] * w / w.sum(axis=0)[None]
    np.testing.assert_allclose(got, want, atol=base.individuals.shape[2] * base.individuals.shape[4])
    np.testing.assert_array_equal(out.individuals[S, hi + 1:], base.individuals[S, hi + 1:])


def test_fill_leaves_recorded_early_years_alone(model):
    base = _school_only(first_age=0)  # every age already has targeted-tier children
    assert fill_early_years(base, model) is base


def test_builtin_england_baseline_has_early_years(model):
    import simsend

    b = simsend.load_baseline("configs/base.toml")
    targ = b.individuals[T:S].sum(axis=(0, 2, 3, 4))
    assert (targ[:4] > 0).all()
    assert b.provenance["early_years"]["moved_from_universal"]["E92000001"] == targ[:4].sum()


def test_published_single_ages_are_kept():
    """From January 2024 SEN2 publishes EHC plans by single year of age: the steady-state
    re-spread of the under-5 band leaves them as published (England 2025: 4,302 aged 3)."""
    from simsend.config import load
    from simsend.data.configured import load_config_baseline

    cfg = load("configs/base.toml")
    b = load_config_baseline(cfg.replace_run(start_year=2025))
    ages = b.individuals[3].sum(axis=(1, 2, 3))
    assert ages[:6].tolist() == [170, 176, 187, 4302, 22517, 30847]
    assert int(ages.sum()) == 638745
