"""EHC plans re-spread within SEN2's age bands by a calibrated profile."""

import dataclasses

import numpy as np
import pytest

from simsend.data.band_ages import respread_bands
from simsend.dims import AGE_GROUPS, TIER
from simsend.testing import toy_baseline

S = TIER["specialist"]


@dataclasses.dataclass(frozen=True)
class _Base:
    individuals: np.ndarray
    pool: np.ndarray
    areas: tuple
    provenance: dict


def _base(published=()):
    ind, pool, _ = toy_baseline(n_areas=2, scale=400, seed=4)
    return _Base(ind, pool, ("A0", "A1"), {"assumptions": [],
                                          "ehcp_ages_published": list(published)})


def _share(seed=0):
    """Random within-band shares (26, 2), each band summing to 1."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 1.0, size=(26, 2))
    for lo, hi in AGE_GROUPS.values():
        w[lo:hi + 1] /= w[lo:hi + 1].sum(axis=0)
    return w


def test_respread_keeps_cells_and_population_and_follows_the_profile():
    base, share = _base(), _share()
    out = respread_bands(base, share, source="test.nc")
    ind0, ind1 = base.individuals, out.individuals
    for lo, hi in AGE_GROUPS.values():
        # every (band, need, area, placement) cell keeps its plans
        np.testing.assert_array_equal(ind0[S, lo:hi + 1].sum(axis=0),
                                      ind1[S, lo:hi + 1].sum(axis=0))
        # dealt in proportion to the profile: within about one plan of it per cell, and
        # within one plan per age of the band
        cells = ind0[S, lo:hi + 1].sum(axis=0)  # (need, area, placement)
        want = cells[None] * share[lo:hi + 1, None, :, None]
        assert np.abs(ind1[S, lo:hi + 1] - want).max() < 2.0
        band = cells.sum(axis=(0, 2))  # (area,)
        got = ind1[S, lo:hi + 1].sum(axis=(1, 3))
        assert np.abs(got - band[None] * share[lo:hi + 1]).max() < 1.0
    # each age's population (pool + every tier) is kept; other tiers untouched
    np.testing.assert_array_equal(out.pool + ind1.sum(axis=(0, 2, 4)),
                                  base.pool + ind0.sum(axis=(0, 2, 4)))
    np.testing.assert_array_equal(ind1[:S], ind0[:S])
    assert (out.pool >= 0).all()
    assert out.provenance["ehcp_band_ages"]["source"] == "test.nc"
    assert any("ehcp_band_ages" in a for a in out.provenance["assumptions"])
    assert base.provenance["assumptions"] == []  # the input is not modified


def test_small_cells_still_follow_the_profile_in_total():
    """A council whose cells hold one plan each: the band's ages follow the profile within one
    plan (dealt cell by cell, every one-plan cell went to the same, likeliest age)."""
    base = _base()
    ind = np.zeros_like(base.individuals)
    ind[S, 5, :, :, 0] = 1  # 13 needs x 2 areas: one plan each, all at age 5, band 5-10
    ind[S, 6, :6, :, 1] = 1
    pool = base.pool + base.individuals.sum(axis=(0, 2, 4)) - ind.sum(axis=(0, 2, 4))
    small = dataclasses.replace(base, individuals=ind, pool=pool)
    share = _share(2)
    out = respread_bands(small, share)
    lo, hi = AGE_GROUPS["5_to_10"]
    by_age = out.individuals[S, lo:hi + 1].sum(axis=(1, 3))  # (ages, area)
    total = ind[S, lo:hi + 1].sum(axis=(0, 1, 3))
    assert np.abs(by_age - total[None] * share[lo:hi + 1]).max() < 1.0
    np.testing.assert_array_equal(out.individuals[S].sum(axis=0), ind[S].sum(axis=0))


def test_published_single_ages_are_left_alone():
    base = _base(published=("A1",))
    out = respread_bands(base, _share())
    np.testing.assert_array_equal(out.individuals[S, :, :, 1], base.individuals[S, :, :, 1])
    assert not np.array_equal(out.individuals[S, :, :, 0], base.individuals[S, :, :, 0])
    assert list(out.provenance["ehcp_band_ages"]["plans_moved"]) == ["A0"]


def test_bad_profiles_are_refused():
    base = _base()
    with pytest.raises(ValueError, match="shape"):
        respread_bands(base, np.ones((25, 2)))
    bad = _share()
    bad[0, 0] += 0.5
    with pytest.raises(ValueError, match="A0 at ages 0-4 sum to"):
        respread_bands(base, bad)


def test_a_run_on_a_propagated_posterior_starts_from_its_profile(tmp_path, toy_config):
    """prepare() re-spreads the baseline's banded plans by the posterior's ``ehcp_age_share``
    when the run starts at the posterior's origin, and not when it starts elsewhere."""
    pytest.importorskip("arviz")
    import arviz as az

    from simsend.calibration.fit import write_artefact
    from simsend.calibration.synthetic import REF_ESC_T, REF_ESC_TP, REF_EXIT
    from simsend.runner.plan import prepare

    cfg = toy_config
    plain = prepare(cfg)
    areas = [str(a) for a in plain.baseline.areas]
    share = _share(1)[:, :1].repeat(len(areas), axis=1)
    n = len(areas)
    idata = az.from_dict(
        posterior={"escalation_multiplier": np.ones((1, 2, 5, n)),
                   "exit_multiplier": np.ones((1, 2, 5, n)),
                   "escalation_trend": np.zeros((1, 2)),
                   "ehcp_age_share": np.broadcast_to(share, (1, 2, 26, n)).copy()},
        constant_data={"esc_ref_targeted": REF_ESC_T, "esc_ref_targeted_plus": REF_ESC_TP,
                       "exit_ref_specialist": REF_EXIT},
        coords={"age_group": ["under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25"],
                "area": areas, "age": np.arange(26)},
        dims={"escalation_multiplier": ["age_group", "area"],
              "exit_multiplier": ["age_group", "area"], "ehcp_age_share": ["age", "area"]})
    start = cfg.run.start_year
    path = write_artefact(idata, tmp_path / "p.nc", {"reference_year": start + 1})
    on = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, posterior=str(path)))
    plan = prepare(on)
    assert "ehcp_band_ages" in plan.baseline.provenance
    spec = plan.baseline.individuals[S].sum(axis=(1, 3))  # (age, area)
    lo, hi = AGE_GROUPS["16_to_19"]
    got = spec[lo:hi + 1] / spec[lo:hi + 1].sum(axis=0)
    np.testing.assert_allclose(got, share[lo:hi + 1], atol=0.02)
    later = prepare(on.replace_run(start_year=start + 1))
    assert "ehcp_band_ages" not in later.baseline.provenance
