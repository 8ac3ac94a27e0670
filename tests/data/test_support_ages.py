"""SEN support by age: the cohort profile of the config's rates, and the spread that uses it."""

import dataclasses

import numpy as np
import pytest

from simsend.config import load
from simsend.data import DataSpec, load_baseline
from simsend.data.baseline import SCHOOL_PARTICIPATION
from simsend.data.configured import load_config_baseline
from simsend.data.early_years import identified_share
from simsend.data.errors import DataError
from simsend.data.support_ages import cohort_shares, support_profile
from simsend.dims import TIER

U, T, TP, S = (TIER[k] for k in ("universal", "targeted", "targeted_plus", "specialist"))


@pytest.fixture(scope="module")
def model():
    return load("configs/base.toml").model


def _only(model, identification, **moves):
    """The model with every move zero except those given (``(from, to): rate by age``)."""
    tiers = np.zeros_like(model.tiers)
    for (a, b), v in moves.get("tiers", {}).items():
        tiers[a, b] = v
    leaving = np.zeros_like(model.leaving)
    for a, v in moves.get("leaving", {}).items():
        leaving[a] = v
    return dataclasses.replace(model, identification=np.asarray(identification, float),
                               tiers=tiers, leaving=leaving,
                               need_multiplier=np.ones_like(model.need_multiplier))


def test_identification_alone_gives_the_identified_share(model):
    p = np.linspace(0.0, 0.05, 26)
    np.testing.assert_allclose(support_profile(_only(model, p), 0.25), identified_share(p),
                               rtol=1e-12)


def test_constant_rates_reach_the_closed_form_steady_state(model):
    """Identified at p a year and returned at b (the newly identified stay their first year):
    x' = x (1 - b) + p (1 - x), so x* = p / (p + b)."""
    p, b = 0.2, 0.3  # 1 - p - b = 0.5: converged to 1e-7 by 25
    m = _only(model, np.full(26, p), tiers={(T, U): np.full(26, b), (TP, U): np.full(26, b)})
    x = support_profile(m, 0.25)
    star = p / (p + b)
    assert x[25] == pytest.approx(star, rel=1e-5)
    assert np.all(np.diff(x) > 0)  # filling up towards it from below


def test_matches_the_markov_chain_of_the_cohort(model):
    """The shipped rates against the cohort's state vector pushed through one matrix a year.

    States (universal, targeted tiers, specialist); each year the leaving matrix, then one
    matrix of identification and tier moves at the new age (row vectors): the identified go
    to the targeted tiers and take no tier move that year (the engine's order), the targeted
    escalate or return, plans step down.  Both tiers' shares are checked.
    """
    w = 0.25
    need = model.need_mix @ model.need_multiplier
    v = np.array([1.0, 0.0, 0.0])
    want = []
    for a in range(26):
        lt = (1 - w) * model.leaving[T, a] + w * model.leaving[TP, a]
        ls = model.leaving[S, a]
        leave = np.array([[1, 0, 0], [lt, 1 - lt, 0], [ls, 0, 1 - ls]])
        i = model.identification[a]
        esc = ((1 - w) * model.tiers[T, S, a] + w * model.tiers[TP, S, a]) * need[a]
        back = (1 - w) * model.tiers[T, U, a] + w * model.tiers[TP, U, a]
        down = model.tiers[S, T, a] + model.tiers[S, TP, a]
        step = np.array([[1 - i, i, 0], [back, 1 - back - esc, esc], [0, down, 1 - down]])
        v = v @ leave @ step
        want.append(v[1:].copy())
    want = np.array(want)
    got = support_profile(model, w)
    np.testing.assert_allclose(got, want[:, 0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(cohort_shares(model, w)[1], want[:, 1], rtol=1e-12, atol=1e-15)
    # the shape the data layer spreads by: rising through primary school, lower after 16
    assert got[4] < got[7] < got[10]
    assert got[16] < 0.5 * got[15]


@pytest.fixture(scope="module")
def england_2022(model):
    prof = tuple(float(v) for v in support_profile(model, 0.25))
    flat = load_baseline(DataSpec(baseline_year=2022))
    shaped = load_baseline(DataSpec(baseline_year=2022, sen_support_profile=prof))
    return flat, shaped, np.asarray(prof)


def _support_by_age(base):
    return base.individuals[T:S].sum(axis=(0, 2, 4))[:, 0]


def test_spread_is_population_times_profile_with_the_total_kept(england_2022):
    flat, shaped, prof = england_2022
    x, x0 = _support_by_age(shaped), _support_by_age(flat)
    assert x.sum() == x0.sum()  # the recorded total is exact either way
    school = np.array([SCHOOL_PARTICIPATION.get(a, 0.0) > 0 for a in range(26)])
    assert (x[~school] == 0).all()
    pop = (shaped.pool + shaped.individuals.sum(axis=(0, 2, 4)))[:, 0]
    np.testing.assert_array_equal(pop, (flat.pool + flat.individuals.sum(axis=(0, 2, 4)))[:, 0])
    w = pop * prof * school
    expected = x.sum() * w / w.sum()
    np.testing.assert_allclose(x[school], expected[school], rtol=2e-3, atol=3)
    # against the flat spread: fewer at 4-6, more at 9-11
    assert (x[4:7] < 0.8 * x0[4:7]).all() and (x[9:12] > x0[9:12]).all()
    assert any(a.startswith("sen_support_profile") for a in shaped.provenance["assumptions"])
    assert not any(a.startswith("sen_support_ages") for a in shaped.provenance["assumptions"])


@pytest.mark.parametrize("profile", [(1.0,) * 25, (np.nan,) + (1.0,) * 25,
                                     (-1.0,) + (1.0,) * 25, (1.0,) * 4 + (0.0,) * 22])
def test_a_bad_profile_is_a_data_error(profile):
    with pytest.raises(DataError, match="sen_support_profile"):
        load_baseline(DataSpec(baseline_year=2022, sen_support_profile=profile))


def test_a_config_baseline_spreads_by_its_own_rates(model):
    cfg = load("configs/base.toml").replace_run(start_year=2022)
    base = load_config_baseline(cfg)
    x = _support_by_age(base)
    prof = support_profile(cfg.model, cfg.data.targeted_plus_share)
    # ages 5-15 in proportion to population x profile (the early years are filled apart)
    pop = (base.pool + base.individuals.sum(axis=(0, 2, 4)))[:, 0]
    r = x[5:16] / (pop[5:16] * prof[5:16])
    assert r.max() / r.min() < 1.01


def test_flat_keeps_the_spread_a_posterior_was_fitted_on(tmp_path):
    text = open("configs/base.toml").read().replace('sen_support_ages = "profile"',
                                                    'sen_support_ages = "flat"', 1)
    (tmp_path / "flat.toml").write_text(text)
    cfg = load(tmp_path / "flat.toml").replace_run(start_year=2022)
    assert cfg.data.sen_support_ages == "flat"
    base = load_config_baseline(cfg)
    assert any(a.startswith("sen_support_ages") for a in base.provenance["assumptions"])
    x = _support_by_age(base)
    pop = (base.pool + base.individuals.sum(axis=(0, 2, 4)))[:, 0]
    r = x[5:16] / pop[5:16]  # flat: in proportion to population alone
    assert r.max() / r.min() < 1.01


def test_an_unknown_spread_names_its_key(tmp_path):
    from simsend.config.toml import ConfigError

    text = open("configs/base.toml").read().replace('sen_support_ages = "profile"',
                                                    'sen_support_ages = "fla"', 1)
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(ConfigError, match="data.sen_support_ages"):
        load(tmp_path / "bad.toml")


def test_rates_that_identify_nobody_keep_the_flat_spread(model):
    cfg = load("configs/base.toml").replace_run(start_year=2022)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(
        cfg.model, identification=np.zeros_like(cfg.model.identification)))
    from simsend.data.configured import data_spec

    assert data_spec(cfg).sen_support_profile is None
    assert data_spec(load("configs/base.toml")).sen_support_profile is not None
