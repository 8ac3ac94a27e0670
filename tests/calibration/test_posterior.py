"""PosteriorParameters: posterior draws mapped onto engine parameter sets."""

import arviz as az
import numpy as np
import pytest

from simsend.calibration import PosteriorParameters
from simsend.calibration.fit import write_artefact
from simsend.calibration.synthetic import REF_ESC_T, REF_ESC_TP, REF_EXIT
from simsend.calibration.targets import band_of_age
from simsend.dims import TIER
from simsend.rates.sources import FixedParameters

T, TP, S = TIER["targeted"], TIER["targeted_plus"], TIER["specialist"]


GROUPS5 = ["under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25"]


def _artefact(path, posterior, dims, ident_ref=None, reference_year=2023, ident_scaled=None):
    """Write a hand-made posterior over areas A and B with the synthetic reference rates."""
    const = {"esc_ref_targeted": REF_ESC_T, "esc_ref_targeted_plus": REF_ESC_TP,
             "exit_ref_specialist": REF_EXIT}
    if ident_ref is not None:
        const["identification_ref"] = ident_ref
    if ident_scaled is not None:
        const["identification_scaled"] = ident_scaled
    dims = {"escalation_multiplier": ["age_group", "area"],
            "exit_multiplier": ["age_group", "area"], "escalation_trend": ["age_group"], **dims}
    idata = az.from_dict(posterior=posterior, constant_data=const,
                         coords={"age_group": GROUPS5, "area": ["A", "B"]}, dims=dims)
    return write_artefact(idata, path, {"reference_year": reference_year})


@pytest.fixture
def artefact(tmp_path):
    """A hand-made posterior: 2 chains x 3 draws, 2 areas, known multipliers."""
    rng = np.random.default_rng(0)
    theta = np.exp(rng.normal(0.0, 0.2, size=(2, 3, 5, 2)))
    kappa = np.exp(rng.normal(0.0, 0.2, size=(2, 3, 5, 2)))
    trend = rng.normal(0.05, 0.01, size=(2, 3))
    coords = {"age_group": ["under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25"],
              "area": ["A", "B"]}
    dims = {"escalation_multiplier": ["age_group", "area"],
            "exit_multiplier": ["age_group", "area"]}
    idata = az.from_dict(
        posterior={"escalation_multiplier": theta, "exit_multiplier": kappa,
                   "escalation_trend": trend},
        constant_data={"esc_ref_targeted": REF_ESC_T, "esc_ref_targeted_plus": REF_ESC_TP,
                       "exit_ref_specialist": REF_EXIT},
        coords=coords, dims=dims)
    path = write_artefact(idata, tmp_path / "post.nc", {"reference_year": 2023,
                                                         "origin_year": 2022})
    return path, theta.reshape(6, 5, 2), kappa.reshape(6, 5, 2), trend.ravel()


def test_draw_indexing_and_labels(artefact, toy_config):
    path, *_ = artefact
    src = PosteriorParameters(path, toy_config.model, np.array([100, 200]),
                              replicates_per_draw=2)
    assert len(src) == 6
    labels = [src.get(d).label for d in range(15)]
    assert labels == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0, 0, 1]


def test_rates_map_onto_engine_tables(artefact, toy_config):
    path, theta, kappa, trend = artefact
    model = toy_config.model
    src = PosteriorParameters(path, model, np.array([100, 200]))
    fixed = FixedParameters(model, np.array([100, 200])).params
    band = band_of_age()
    for k in (0, 4):
        ps = src.get(k)
        assert ps.escalation_trend == pytest.approx(trend[k])
        # rows are probability distributions
        np.testing.assert_allclose(ps.tiers.sum(axis=1), 1.0, atol=1e-12)
        assert (ps.tiers >= 0).all()
        # escalation = multiplier x stored reference x config need multiplier
        need = model.need_multiplier
        want = theta[k][band][:, None, :] * REF_ESC_T[:, None, None] * need[None, :, None]
        np.testing.assert_allclose(ps.tiers[T, S], want)
        want_tp = theta[k][band][:, None, :] * REF_ESC_TP[:, None, None] * need[None, :, None]
        np.testing.assert_allclose(ps.tiers[TP, S], want_tp)
        # exits: 1 - (1 - leaving)(1 - de-escalation) = 1 - (1 - c_ref)^kappa
        c = 1.0 - (1.0 - REF_EXIT[:, None]) ** kappa[k][band]
        stay = ps.tiers[S, S]  # (26, 13, 2)
        exit_p = 1.0 - (1.0 - ps.leaving[S][:, None, None]) * stay
        np.testing.assert_allclose(exit_p, np.broadcast_to(c[:, None, :], exit_p.shape))
        assert (ps.leaving[S] <= model.leaving[S] + 1e-15).all()
        # uncalibrated rates come from the config
        np.testing.assert_array_equal(ps.identification, fixed.identification)
        np.testing.assert_array_equal(ps.tiers[T, TP], fixed.tiers[T, TP])
        np.testing.assert_array_equal(ps.leaving[:S], fixed.leaving[:S])


def test_area_selection_and_start_year(artefact, toy_config):
    path, theta, _, trend = artefact
    src = PosteriorParameters(path, toy_config.model, np.array([5]), areas=["B"],
                              start_year=2024)
    ps = src.get(2)
    band = band_of_age()
    shift = np.exp(trend[2] * (2025 - 2023))
    np.testing.assert_allclose(ps.tiers[T, S, :, 0, 0],
                               theta[2][band][:, 1] * REF_ESC_T * shift
                               * toy_config.model.need_multiplier[0])
    with pytest.raises(ValueError, match="not in the posterior"):
        PosteriorParameters(path, toy_config.model, np.array([5]), areas=["Z"])
    with pytest.raises(ValueError, match="areas"):
        PosteriorParameters(path, toy_config.model, np.array([5, 6, 7]))


def test_engine_runs_with_posterior_and_variance_splits(artefact, toy_config):
    from simsend.calibration import variance_split
    from simsend.engine.loop import Job, simulate
    from simsend.engine.tally import make_layout
    from simsend.results.dataset import to_dataset
    from simsend.testing import toy_baseline

    path, *_ = artefact
    ind, pool, births = toy_baseline(n_areas=2, scale=100, seed=4)
    src = PosteriorParameters(path, toy_config.model, births, replicates_per_draw=4)
    layout = make_layout(("tier", "area"), ("A", "B"))
    out = simulate(Job(ind, pool, 4, 1, layout), src, range(24))
    ds = to_dataset(out, layout, [2022, 2023, 2024, 2025], {})
    assert ds["param_draw"].values.tolist() == [d // 4 % 6 for d in range(24)]
    split = variance_split(ds, "n_pupils")
    spec = split.sel(tier="specialist", year=2025)
    assert (spec.between >= 0).all() and (spec.within > 0).all()
    np.testing.assert_allclose(spec.between + spec.within, spec.total)


def test_national_posterior_serves_any_area(tmp_path, toy_config):
    theta = np.full((1, 2, 5, 1), 1.5)
    idata = az.from_dict(
        posterior={"escalation_multiplier": theta, "exit_multiplier": np.ones((1, 2, 5, 1)),
                   "escalation_trend": np.zeros((1, 2))},
        constant_data={"esc_ref_targeted": REF_ESC_T, "esc_ref_targeted_plus": REF_ESC_TP,
                       "exit_ref_specialist": REF_EXIT},
        coords={"age_group": ["under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25"],
                "area": ["E92000001"]},
        dims={"escalation_multiplier": ["age_group", "area"],
              "exit_multiplier": ["age_group", "area"]})
    path = write_artefact(idata, tmp_path / "eng.nc", {"reference_year": 2023})
    src = PosteriorParameters(path, toy_config.model, np.array([5, 6]),
                              areas=["E06000017", "E08000025"])
    assert src.area_source == {"E06000017": "E92000001", "E08000025": "E92000001"}
    ps = src.get(1)
    np.testing.assert_allclose(ps.tiers[T, S, :, 0, 0],
                               1.5 * REF_ESC_T * toy_config.model.need_multiplier[0])
    np.testing.assert_array_equal(ps.tiers[..., 0], ps.tiers[..., 1])


def test_engine_expected_escalations_equal_calibrated_rate_times_exposure(artefact, toy_config):
    """Through the engine's own tables: expected new plans = multiplier x reference x exposure.

    This is the quantity the calibration fits (``mu`` in :mod:`simsend.calibration.model`),
    evaluated on the engine's own targeted-tier children after ageing and leaving.
    """
    from simsend.testing import tier_probs, toy_baseline

    path, theta, _, _ = artefact
    ind, pool, births = toy_baseline(n_areas=2, scale=300, seed=5)
    src = PosteriorParameters(path, toy_config.model, births)
    band = band_of_age()
    need = toy_config.model.need_multiplier
    for k in (1, 3):
        ps = src.get(k)
        tab = ps.year_tables(1)
        x = np.zeros(ind.shape)
        x[:, 1:] = ind[:, :-1] * (1.0 - tab.p_leave[:, 1:, None, None, None])
        p = tier_probs(tab.tier_cdf)  # (age, need, area, src, dst)
        engine = (np.einsum("anrp,anr->ar", x[T], p[..., T, S])
                  + np.einsum("anrp,anr->ar", x[TP], p[..., TP, S]))
        exposure_t = np.einsum("anrp,n->ar", x[T], need)
        exposure_tp = np.einsum("anrp,n->ar", x[TP], need)
        model = theta[k][band] * (REF_ESC_T[:, None] * exposure_t
                                  + REF_ESC_TP[:, None] * exposure_tp)
        np.testing.assert_allclose(engine, model, rtol=1e-10, atol=1e-9)


@pytest.fixture
def walk_artefact(tmp_path):
    """Area trends, a random walk (innovation sd 0.1) and yearly noise (sd 0.05): 1 x 4."""
    theta = np.full((1, 4, 5, 2), 1.2)
    trend_area = np.broadcast_to(np.array([0.02, 0.08])[None, None, None, :],
                                 (1, 4, 5, 2)).copy()
    idata = az.from_dict(
        posterior={"escalation_multiplier": theta, "exit_multiplier": np.ones((1, 4, 5, 2)),
                   "escalation_trend": np.full((1, 4, 5), 0.05),
                   "escalation_trend_area": trend_area,
                   "escalation_innovation_sd": np.full((1, 4), 0.1),
                   "escalation_noise_sd": np.full((1, 4), 0.05)},
        constant_data={"esc_ref_targeted": REF_ESC_T, "esc_ref_targeted_plus": REF_ESC_TP,
                       "exit_ref_specialist": REF_EXIT},
        coords={"age_group": ["under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25"],
                "area": ["A", "B"]},
        dims={"escalation_multiplier": ["age_group", "area"],
              "exit_multiplier": ["age_group", "area"],
              "escalation_trend": ["age_group"],
              "escalation_trend_area": ["age_group", "area"]})
    return write_artefact(idata, tmp_path / "walk.nc", {"reference_year": 2023})


def test_walk_is_keyed_by_seed_and_draw_only(walk_artefact, toy_config):
    births = np.array([100, 200])
    a = PosteriorParameters(walk_artefact, toy_config.model, births, seed=3, start_year=2022)
    b = PosteriorParameters(walk_artefact, toy_config.model, births, seed=3, start_year=2022)
    c = PosteriorParameters(walk_artefact, toy_config.model, births, seed=4, start_year=2022)
    first = [a.get(d).escalation_shock for d in range(6)]
    backwards = [b.get(d).escalation_shock for d in reversed(range(6))][::-1]
    for x, y in zip(first, backwards, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[2], c.get(2).escalation_shock)
    assert not np.array_equal(first[2], first[3])  # draws sharing no posterior draw differ
    assert a.get(1).label == 1 and a.get(5).label == 1  # posterior draw still cycles
    np.testing.assert_array_equal(first[0][0], 0.0)  # nothing before the first year


def test_walk_variance_grows_with_the_horizon(walk_artefact, toy_config):
    """Row i of a draw's shock sums i innovations of sd 0.1 plus one yearly shock of sd
    0.05: variance 0.01 i + 0.0025, the same in every area, independent between areas; a
    run starting two years after the posterior's reference year is two steps further on."""
    def variance(start_year):
        src = PosteriorParameters(walk_artefact, toy_config.model, np.array([1, 1]), seed=0,
                                  start_year=start_year)
        w = np.array([src.shock(d)[:6] for d in range(4000)])  # (draw, year, area)
        return w, w.var(axis=0)

    w, var = variance(2022)
    i = np.arange(1, 6)[:, None]
    # sample variance of 4,000 normal draws: relative sd sqrt(2/3999) = 2.2%; allow 4.5 sd
    np.testing.assert_allclose(var[1:], np.broadcast_to(0.01 * i + 0.0025, (5, 2)), rtol=0.10)
    assert (var[0] == 0).all()
    assert abs(np.corrcoef(w[:, 3, 0], w[:, 3, 1])[0, 1]) < 0.06  # areas independent
    _, later = variance(2024)
    np.testing.assert_allclose(later[1:], np.broadcast_to(0.01 * (i + 2) + 0.0025, (5, 2)),
                               rtol=0.10)


def test_walk_and_area_trends_reach_the_year_tables(walk_artefact, toy_config):
    """Escalation of year i = multiplier x reference x exp(trend_area t + walk[i]), per area."""
    from simsend.testing import tier_probs

    src = PosteriorParameters(walk_artefact, toy_config.model, np.array([1, 1]), seed=9,
                              start_year=2022)
    ps = src.get(2)
    need0 = toy_config.model.need_multiplier[0]
    for i in (1, 3):
        p = tier_probs(ps.year_tables(i).tier_cdf)  # (age, need, area, src, dst)
        expected = (1.2 * REF_ESC_T[:, None] * need0
                    * np.exp(np.array([0.02, 0.08])[None] * (i - 1)
                             + ps.escalation_shock[i][None]))
        np.testing.assert_allclose(p[:, 0, :, T, S], expected, rtol=1e-9)


def test_identification_multiplier_trend_and_walk_reach_the_tables(tmp_path, toy_config):
    """p_identify of year i = reference x multiplier x exp(trend t + walk[i]), per area."""
    ident_ref = np.linspace(0.001, 0.03, 26)
    path = _artefact(
        tmp_path / "id.nc",
        {"escalation_multiplier": np.ones((1, 3, 5, 2)), "exit_multiplier": np.ones((1, 3, 5, 2)),
         "escalation_trend": np.zeros((1, 3, 5)),
         "identification_multiplier": np.tile([[1.5, 0.5]], (1, 3, 1)),
         "identification_trend_area": np.tile([[0.1, -0.05]], (1, 3, 1)),
         "identification_innovation_sd": np.full((1, 3), 0.2)},
        {"identification_multiplier": ["area"], "identification_trend_area": ["area"]},
        ident_ref=ident_ref)
    src = PosteriorParameters(path, toy_config.model, np.array([1, 1]), seed=2,
                              start_year=2022)
    ps = src.get(1)
    np.testing.assert_allclose(ps.identification, ident_ref[:, None] * [1.5, 0.5])
    walk = ps.identification_shock
    assert walk.shape[1] == 2 and (walk[0] == 0).all() and (walk[1:4] != 0).all()
    for i in (1, 3):
        got = ps.year_tables(i).p_identify
        want = ident_ref[:, None] * [1.5, 0.5] * np.exp(np.array([0.1, -0.05]) * (i - 1)
                                                        + walk[i])
        np.testing.assert_allclose(got, np.clip(want, 0, 1), rtol=1e-12)
    # identification's walk is its own: independent of escalation's shocks
    esc, ident = src.shocks(1)
    np.testing.assert_array_equal(ident, walk)
    assert (esc == 0).all()  # this posterior has no walk in escalation


def test_identification_below_the_scaled_ages_keeps_the_reference(tmp_path, toy_config):
    """With ``identification_scaled`` 0 at ages 0-3: those ages keep the reference rate in
    every year (no multiplier, trend, walk or drift); ages 4-25 get all of them."""
    ident_ref = np.linspace(0.001, 0.03, 26)
    scaled = (np.arange(26) >= 4).astype(np.int8)
    path = _artefact(
        tmp_path / "id4.nc",
        {"escalation_multiplier": np.ones((1, 3, 5, 2)), "exit_multiplier": np.ones((1, 3, 5, 2)),
         "escalation_trend": np.zeros((1, 3, 5)),
         "identification_multiplier": np.tile([[1.5, 0.5]], (1, 3, 1)),
         "identification_trend_area": np.tile([[0.1, -0.05]], (1, 3, 1)),
         "identification_innovation_sd": np.full((1, 3), 0.2),
         "identification_drift": np.full((1, 3), 0.03)},
        {"identification_multiplier": ["area"], "identification_trend_area": ["area"]},
        ident_ref=ident_ref, ident_scaled=scaled)
    src = PosteriorParameters(path, toy_config.model, np.array([1, 1]), seed=2,
                              start_year=2022)
    ps = src.get(1)
    walk = ps.identification_shock
    assert (walk[1:4] != 0).all()
    for i in (1, 3):
        got = ps.year_tables(i).p_identify
        np.testing.assert_array_equal(got[:4], np.repeat(ident_ref[:4, None], 2, axis=1))
        want = ident_ref[4:, None] * [1.5, 0.5] * np.exp(np.array([0.1, -0.05]) * (i - 1)
                                                         + walk[i])
        np.testing.assert_allclose(got[4:], np.clip(want, 0, 1), rtol=1e-12)


def test_exit_split_sends_the_needs_met_share_down_and_the_rest_out(artefact, tmp_path,
                                                                   toy_config):
    """With ``deescalation_share``: P(down) = delta c, P(out of support) = (1 - delta) c."""
    _, theta, kappa, _ = artefact
    delta = np.array([[[0.1, 0.4]] * 3] * 2)  # (chain, draw, area)
    idata = az.from_dict(
        posterior={"escalation_multiplier": theta.reshape(2, 3, 5, 2),
                   "exit_multiplier": kappa.reshape(2, 3, 5, 2),
                   "escalation_trend": np.zeros((2, 3)), "deescalation_share": delta},
        constant_data={"esc_ref_targeted": REF_ESC_T, "esc_ref_targeted_plus": REF_ESC_TP,
                       "exit_ref_specialist": REF_EXIT},
        coords={"age_group": ["under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25"],
                "area": ["A", "B"]},
        dims={"escalation_multiplier": ["age_group", "area"],
              "exit_multiplier": ["age_group", "area"], "deescalation_share": ["area"]})
    path = write_artefact(idata, tmp_path / "split.nc", {"reference_year": 2023})
    model = toy_config.model
    src = PosteriorParameters(path, model, np.array([100, 200]))
    band = band_of_age()
    U = TIER["universal"]
    for k in (0, 5):
        ps = src.get(k)
        np.testing.assert_allclose(ps.tiers.sum(axis=1), 1.0, atol=1e-12)
        assert (ps.tiers >= 0).all()
        c = 1.0 - (1.0 - REF_EXIT[:, None]) ** kappa[k][band]  # (26, 2)
        stay = 1.0 - ps.leaving[S][:, None, None]
        down = stay * (ps.tiers[S, T] + ps.tiers[S, TP])  # unconditional, (26, 13, 2)
        out = (1.0 - stay) + stay * ps.tiers[S, U]
        np.testing.assert_allclose(down, np.broadcast_to((c * [0.1, 0.4])[:, None, :],
                                                         down.shape), rtol=1e-12)
        np.testing.assert_allclose(out, np.broadcast_to((c * [0.9, 0.6])[:, None, :],
                                                        out.shape), rtol=1e-12)
        # targeted : targeted-plus in the config's proportions
        cfg = model.tiers[S]
        w = cfg[TP] / (cfg[T] + cfg[TP])
        np.testing.assert_allclose(ps.tiers[S, TP] * (1 - w)[:, None, None],
                                   ps.tiers[S, T] * w[:, None, None], atol=1e-15)
        assert (ps.leaving[S] <= model.leaving[S] + 1e-15).all()


def test_damped_trend_reaches_the_year_tables(tmp_path, toy_config):
    """With ``escalation_damping`` phi and the step ``escalation_trend_ref`` b at the
    reference year, escalation of year i = multiplier x reference x exp(b sum_{j<i-1} phi^j);
    a run starting two years later starts b (1 + phi) further on with step b phi^2."""
    from simsend.testing import tier_probs

    phi, b = 0.6, np.array([0.05, 0.2])
    path = _artefact(
        tmp_path / "damped.nc",
        {"escalation_multiplier": np.full((1, 1, 5, 2), 1.5),
         "exit_multiplier": np.ones((1, 1, 5, 2)), "escalation_trend": np.full((1, 1, 5), 0.3),
         "escalation_trend_area": np.full((1, 1, 5, 2), 0.3),
         "escalation_trend_ref": np.broadcast_to(b, (1, 1, 5, 2)).copy(),
         "escalation_damping": np.full((1, 1), phi)},
        {"escalation_trend_area": ["age_group", "area"],
         "escalation_trend_ref": ["age_group", "area"]})
    need0 = toy_config.model.need_multiplier[0]
    for start, lead in ((2022, 0.0), (2024, 1.0 + phi)):
        ps = PosteriorParameters(path, toy_config.model, np.array([1, 1]),
                                 start_year=start).get(0)
        for i, steps in ((1, 0.0), (2, 1.0), (4, 1.0 + phi + phi ** 2)):
            p = tier_probs(ps.year_tables(i).tier_cdf)
            step = b * phi ** (start - 2022)
            expected = 1.5 * REF_ESC_T[:, None] * need0 * np.exp(b * lead + step * steps)
            np.testing.assert_allclose(p[:, 0, :, T, S], expected, rtol=1e-9)


@pytest.mark.parametrize("d", [0.0, 0.04])
def test_damped_identification_trend_reaches_the_tables(tmp_path, toy_config, d):
    """With ``identification_damping`` rho, the step ``identification_trend_ref`` g and the
    drift ``identification_drift`` d: p_identify of year i = reference x multiplier x
    exp(g sum_{j<i-1} rho^j + d (i - 1)); starting two years after the posterior's origin moves
    the multiplier on by g (1 + rho) + 2 d, the step to g rho^2."""
    ident_ref = np.linspace(0.001, 0.03, 26)
    rho, g = 0.5, np.array([0.1, -0.05])
    post = {"escalation_multiplier": np.ones((1, 1, 5, 2)),
            "exit_multiplier": np.ones((1, 1, 5, 2)), "escalation_trend": np.zeros((1, 1, 5)),
            "identification_multiplier": np.tile([[1.5, 0.5]], (1, 1, 1)),
            "identification_trend_area": np.tile([[0.9, 0.9]], (1, 1, 1)),
            "identification_trend_ref": g[None, None],
            "identification_damping": np.full((1, 1), rho),
            "identification_innovation_sd": np.zeros((1, 1))}
    if d:  # a posterior without a drift (fitted before it existed) has none
        post["identification_drift"] = np.full((1, 1), d)
    path = _artefact(
        tmp_path / "idd.nc", post,
        {"identification_multiplier": ["area"], "identification_trend_area": ["area"],
         "identification_trend_ref": ["area"]}, ident_ref=ident_ref)
    for start, lead in ((2022, 0.0), (2024, 1.0 + rho)):
        ps = PosteriorParameters(path, toy_config.model, np.array([1, 1]),
                                 start_year=start).get(0)
        gap = start - 2022
        step = g * rho ** gap
        for i, steps in ((1, 0.0), (2, 1.0), (4, 1.0 + rho + rho ** 2)):
            want = ident_ref[:, None] * [1.5, 0.5] * np.exp(g * lead + step * steps
                                                           + d * (gap + i - 1))
            np.testing.assert_allclose(ps.year_tables(i).p_identify, np.clip(want, 0, 1),
                                       rtol=1e-12)


@pytest.fixture
def residual_artefact(tmp_path):
    """Over-dispersion only: new plans' cv 0.3, EHC plans' cv 0.02-0.10 by band, SEN
    support's 0.04 (1 chain x 2 draws, no walk)."""
    ident_ref = np.linspace(0.001, 0.03, 26)
    ones = np.ones((1, 2, 5, 2))
    return _artefact(
        tmp_path / "resid.nc",
        {"escalation_multiplier": ones, "exit_multiplier": ones,
         "escalation_trend": np.zeros((1, 2, 5)),
         "new_plans_cv": np.full((1, 2, 5), 0.3),
         "ehcp_cv": np.broadcast_to([0.10, 0.02, 0.04, 0.06, 0.08], (1, 2, 5)).copy(),
         "identification_multiplier": np.ones((1, 2, 2)),
         "identification_trend_area": np.zeros((1, 2, 2)),
         "identification_innovation_sd": np.zeros((1, 2)),
         "sen_support_cv": np.full((1, 2), 0.04)},
        {"new_plans_cv": ["age_group"], "ehcp_cv": ["age_group"],
         "identification_multiplier": ["area"], "identification_trend_area": ["area"]},
        ident_ref=ident_ref)


def test_residuals_have_the_calibrated_spread(residual_artefact, toy_config):
    """Escalation's factor is lognormal with mean 1 and log sd sqrt(log(1 + cv^2)); the net
    flows are cv z by band of the closing census's age (specialist) and per area (both
    targeted tiers, equal); the universal row, the oldest age and row 0 are 0."""
    src = PosteriorParameters(residual_artefact, toy_config.model, np.array([1, 1]), seed=5,
                              start_year=2022, n_years=4)
    esc, net = map(np.array, zip(*(src.residuals(d) for d in range(3000)), strict=True))
    assert esc.shape == (3000, 4, 26, 2) and net.shape == (3000, 4, 4, 26, 2)
    assert (esc[:, 0] == 0).all() and (net[:, 0] == 0).all()
    assert (net[:, :, TIER["universal"]] == 0).all() and (net[:, :, :, -1] == 0).all()
    sd_log = np.sqrt(np.log1p(0.09))
    # 3,000 draws: sd of a sample sd about 1.3%, of a sample mean of factors 0.6%
    np.testing.assert_allclose(esc[:, 1:].std(axis=0), sd_log, rtol=0.06)
    np.testing.assert_allclose(np.exp(esc[:, 1:]).mean(axis=0), 1.0, atol=0.025)
    band = band_of_age()
    cv = np.array([0.10, 0.02, 0.04, 0.06, 0.08])[band[np.minimum(np.arange(25) + 1, 25)]]
    np.testing.assert_allclose(net[:, 1:, S, :-1].std(axis=0),
                               np.broadcast_to(cv[None, :, None], (3, 25, 2)), rtol=0.06)
    np.testing.assert_array_equal(net[:, :, T], net[:, :, TP])
    np.testing.assert_allclose(net[:, 1:, T, :-1].std(axis=0), 0.04, rtol=0.06)
    # ages of one band share a draw; bands, areas and years are independent
    np.testing.assert_array_equal(esc[:, :, 5], esc[:, :, 10])
    assert abs(np.corrcoef(esc[:, 2, 5, 0], esc[:, 2, 11, 0])[0, 1]) < 0.06
    assert abs(np.corrcoef(net[:, 2, S, 5, 0], net[:, 2, S, 5, 1])[0, 1]) < 0.06
    assert abs(np.corrcoef(net[:, 2, S, 5, 0], net[:, 3, S, 5, 0])[0, 1]) < 0.06


def test_residuals_reach_the_year_tables_and_are_keyed_by_draw(residual_artefact, toy_config):
    """The factor multiplies the year's escalations; the net flow is the tables' net_flow;
    the same (seed, draw) gives the same residuals in any order and for any run length."""
    from simsend.testing import tier_probs

    births = np.array([1, 1])
    src = PosteriorParameters(residual_artefact, toy_config.model, births, seed=2,
                              start_year=2022, n_years=4)
    longer = PosteriorParameters(residual_artefact, toy_config.model, births, seed=2,
                                 start_year=2022, n_years=8)
    ps = src.get(7)
    esc, net = src.residuals(7)
    np.testing.assert_array_equal(ps.escalation_shock, esc)  # no walk: the factor alone
    np.testing.assert_array_equal(ps.stock_shock, net)
    np.testing.assert_array_equal(longer.residuals(7)[1][:4], net)
    need0 = toy_config.model.need_multiplier[0]
    for i in (1, 3):
        tab = ps.year_tables(i)
        p = tier_probs(tab.tier_cdf)
        np.testing.assert_allclose(p[:, 0, :, T, S], REF_ESC_T[:, None] * need0
                                   * np.exp(esc[i]), rtol=1e-9)
        np.testing.assert_array_equal(tab.net_flow, net[i])
    other = PosteriorParameters(residual_artefact, toy_config.model, births, seed=2,
                                start_year=2022, n_years=4)
    for d in (9, 7, 3):
        np.testing.assert_array_equal(other.get(d).stock_shock, src.residuals(d)[1])
    assert not np.array_equal(src.residuals(3)[1], net)


def test_no_residuals_without_over_dispersion(artefact, toy_config):
    """A posterior without the cv variables draws none: the tables are the fixed ones."""
    path, *_ = artefact
    src = PosteriorParameters(path, toy_config.model, np.array([100, 200]), start_year=2022)
    assert src.residuals(0) == (None, None)
    ps = src.get(0)
    assert ps.stock_shock is None and ps.escalation_shock is None
    assert ps.year_tables(1).net_flow is None


@pytest.fixture
def common_artefact(tmp_path):
    """A walk common to the areas only (innovation sd 0.05): 1 chain x 2 draws, 3 areas."""
    n = (1, 2)
    idata = az.from_dict(
        posterior={"escalation_multiplier": np.full((*n, 5, 3), 1.2),
                   "exit_multiplier": np.ones((*n, 5, 3)),
                   "escalation_trend_area": np.zeros((*n, 5, 3)),
                   "escalation_common_sd": np.full(n, 0.05)},
        constant_data={"esc_ref_targeted": REF_ESC_T, "esc_ref_targeted_plus": REF_ESC_TP,
                       "exit_ref_specialist": REF_EXIT},
        coords={"age_group": ["under_5", "5_to_10", "11_to_15", "16_to_19", "20_to_25"],
                "area": ["A", "B", "C"]},
        dims={"escalation_multiplier": ["age_group", "area"],
              "exit_multiplier": ["age_group", "area"],
              "escalation_trend_area": ["age_group", "area"]})
    return write_artefact(idata, tmp_path / "common.nc", {"reference_year": 2023})


def test_common_walk_is_shared_by_every_area_and_has_its_law(common_artefact, toy_config):
    """The common walk moves every area's escalation alike; over draws, ``i`` years on, it
    has mean 0 and variance ``0.05^2 i``; a run starting later is further along the same
    path; a chunk of areas draws the same path as the whole run."""
    src = PosteriorParameters(common_artefact, toy_config.model, np.ones(3), seed=2,
                              start_year=2022)
    w = np.array([src.shock(d)[:6] for d in range(4000)])  # (draw, year, area)
    np.testing.assert_array_equal(w[..., 0], w[..., 2])  # no area's own walk: all alike
    assert (w[:, 0] == 0).all()
    for i in range(1, 6):
        var = 0.05 ** 2 * i
        # mean: standard error sqrt(var / 4000); variance: relative sd 2.2%
        assert abs(w[:, i, 0].mean()) < 4 * np.sqrt(var / 4000)
        assert w[:, i, 0].var() == pytest.approx(var, rel=0.10)
    later = PosteriorParameters(common_artefact, toy_config.model, np.ones(3), seed=2,
                                start_year=2024)
    np.testing.assert_allclose(later.shock(7)[1:4, 0], src.shock(7)[3:6, 0], rtol=1e-12)
    alone = PosteriorParameters(common_artefact, toy_config.model, np.ones(1), seed=2,
                                start_year=2022, areas=["B"])
    np.testing.assert_array_equal(alone.shock(5)[:, 0], src.shock(5)[:, 1])
    assert not np.array_equal(src.shock(5), src.shock(6))  # its own path per draw


def test_age_effect_multiplies_each_single_ages_escalation(tmp_path, toy_config):
    """``escalation_age_effect`` (sample, age) scales escalation at each single age."""
    rng = np.random.default_rng(12)
    theta = np.exp(rng.normal(0.0, 0.2, size=(2, 3, 5, 2)))
    kappa = np.ones((2, 3, 5, 2))
    delta = rng.normal(0.0, 0.4, size=(2, 3, 26))
    post = {"escalation_multiplier": theta, "exit_multiplier": kappa,
            "escalation_trend": np.zeros((2, 3, 5)), "escalation_age_effect": delta}
    path = _artefact(tmp_path / "age.nc", post, {"escalation_age_effect": ["age"]})
    plain = _artefact(tmp_path / "plain.nc", {k: v for k, v in post.items()
                                              if k != "escalation_age_effect"}, {})
    births = np.array([100, 200])
    src = PosteriorParameters(path, toy_config.model, births)
    ref = PosteriorParameters(plain, toy_config.model, births)
    for k in (0, 5):
        got, base = src.get(k).tiers, ref.get(k).tiers
        for s_ in (T, TP):
            np.testing.assert_allclose(
                got[s_, S], base[s_, S] * np.exp(delta.reshape(6, 26)[k])[:, None, None])
        np.testing.assert_array_equal(got[S], base[S])  # exits untouched
