"""Calibrated placements: the filter against its exact posterior, recovery of a known truth from
data simulated by the model, the forecast paths' law and keys, and the run's wiring."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

import simsend
from simsend import api
from simsend.config import ConfigError
from simsend.rates.placement_mix import HALF, prior_shape, specialist_rows
from simsend.rates.placements import PlacementSource, fit_placements, kalman_trend
from simsend.testing import pin_2022

ROOT = Path(__file__).resolve().parents[2]
MU = np.array([0.0, -0.06, -0.05, -0.01, -0.03, -0.04, 0.05])
TRUTH = dict(common=0.03, tau=0.04, walk=0.06, noise=0.05)


def simulate(seed, n_areas=150, n_years=8, **truth):
    """Margins of EHC plans by age band and placement from the model with a known truth."""
    t = {**TRUTH, **truth}
    rng = np.random.default_rng(seed)
    delta = rng.normal(0, t["tau"], (n_areas, 7))
    eta = rng.normal(0, t["common"], (n_years, 7))
    level = np.zeros((n_years, n_areas, 7))
    level[0] = rng.normal(0, 0.5, (n_areas, 7))
    for y in range(1, n_years):
        level[y] = level[y - 1] + MU + eta[y] + delta + rng.normal(0, t["walk"], (n_areas, 7))
    c = level + rng.normal(0, t["noise"], level.shape)
    c[..., 0] = level[..., 0] = delta[:, 0] = 0.0
    bands = rng.uniform(800, 4000, (n_years, n_areas, 5))
    x = prior_shape()[None, None] * np.exp(c)[..., None, :]
    joint = x * (bands / x.sum(-1))[..., None]
    return bands, joint.sum(-2) - HALF, level, delta


def fit_sim(seed, **kw):
    bands, places, level, delta = simulate(seed, **kw)
    n_years, n_areas = bands.shape[:2]
    fit = fit_placements(bands, places, range(2025 - n_years + 1, 2026),
                         [f"A{i:03d}" for i in range(n_areas)], own_drift=True)
    return fit, level, delta


def test_filter_matches_the_exact_gaussian_posterior():
    """(level, drift) after T years equals the posterior of the linear Gaussian model."""
    rng = np.random.default_rng(1)
    n_t, tau2, sw2, su2 = 6, 0.04**2, 0.05**2, 0.07**2
    y = rng.normal(0, 0.3, (n_t, 4))
    y[2, 1] = np.nan  # a missing census
    m, p = kalman_trend(y, tau2, sw2, su2)
    for j in range(4):
        # theta = (L0, delta, w_1..w_T-1); flat prior on L0 (huge variance)
        obs = np.flatnonzero(np.isfinite(y[:, j]))
        h = np.zeros((n_t, n_t + 1))
        for t in range(n_t):
            h[t, 0], h[t, 1] = 1.0, t
            h[t, 2:2 + t] = 1.0
        # information form: a flat prior on L0 is a zero prior precision, exactly
        prior_prec = np.diag([0.0, 1 / tau2] + [1 / sw2] * (n_t - 1))
        ho = h[obs]
        post_cov = np.linalg.inv(ho.T @ ho / su2 + prior_prec)
        post_mean = post_cov @ ho.T @ y[obs, j] / su2
        last = np.r_[1.0, n_t - 1, np.ones(n_t - 1)]  # L_T = L0 + (T-1) delta + sum w
        pick = np.vstack([last, np.eye(n_t + 1)[1]])
        np.testing.assert_allclose(m[j], pick @ post_mean, atol=1e-6)
        np.testing.assert_allclose(p[j], pick @ post_cov @ pick.T, atol=1e-6)


def test_recovers_a_known_truth_from_data_simulated_by_the_model():
    """Shared drift, year-to-year spread, councils' own drifts, walk and noise, over 6 seeds.

    Tolerances are about three times each estimator's spread over seeds (measured: drift
    0.013, common sd 0.008, between-area sd 0.004, walk 0.003 per seed average, noise 0.010).
    """
    got = []
    for seed in range(6):
        fit, level, delta = fit_sim(seed)
        got.append((fit.mu, fit.common_sd[1:].mean(), fit.tau[1:].mean(),
                    fit.walk_sd[1:].mean(), fit.noise_sd[1:].mean(),
                    np.corrcoef(fit.own_mean[:, 1:].ravel(), delta[:, 1:].ravel())[0, 1]))
    mu = np.array([g[0] for g in got])
    np.testing.assert_allclose(mu.mean(0), MU, atol=0.02)
    common, tau, walk, noise, corr = (np.array([g[i] for g in got]) for i in range(1, 6))
    assert abs(common.mean() - TRUTH["common"]) < 0.012
    assert abs(tau.mean() - TRUTH["tau"]) < 0.01
    assert abs(walk.mean() - TRUTH["walk"]) < 0.015
    assert abs(noise.mean() - TRUTH["noise"]) < 0.02
    assert corr.min() > 0.7  # each council's own drift is told apart from the others'
    # and a truth without own drifts gives (almost) none
    fit, _, _ = fit_sim(7, tau=0.0)
    assert fit.tau[1:].max() < 0.02


@pytest.mark.xfail(strict=True, reason="plug-in variance components: the filtered level's 90% "
                   "intervals hold about 0.71 (drift's 0.80), below nominal")
def test_filtered_intervals_hold_the_truth_at_their_nominal_rate():
    inside_l, inside_d = [], []
    for seed in range(6):
        fit, level, delta = fit_sim(seed)
        sd_l = np.sqrt(np.maximum(fit.cov[:, 1:, 0, 0], 1e-12))
        sd_d = np.sqrt(np.maximum(fit.cov[:, 1:, 1, 1], 1e-12))
        inside_l.append(np.abs(fit.smooth[:, 1:] - level[-1][:, 1:]) < 1.645 * sd_l)
        inside_d.append(np.abs(fit.own_mean[:, 1:] - delta[:, 1:]) < 1.645 * sd_d)
    assert 0.85 <= np.mean(inside_l) <= 0.95 and 0.85 <= np.mean(inside_d) <= 0.95


def test_paths_follow_the_fit_in_law_and_are_keyed_by_area_code():
    fit, _, _ = fit_sim(2, n_areas=12)
    src = PlacementSource(None, fit, seed=9, n_years=5)
    paths = np.array([src.path(d) for d in range(4000)])  # (draw, year, area, placement)
    np.testing.assert_array_equal(paths[:, 0], np.broadcast_to(fit.level, paths[:, 0].shape))
    for h in (1, 4):
        mean = fit.smooth + h * (fit.mu + fit.own_mean)
        cov = fit.cov
        var = (cov[..., 0, 0] + 2 * h * cov[..., 0, 1] + h * h * cov[..., 1, 1]
               + h * h * fit.mu_sd ** 2 + h * fit.common_sd ** 2 + h * fit.walk_sd ** 2
               + fit.noise_sd ** 2)
        got = paths[:, h]
        se = np.sqrt(var / len(paths))
        z = (got.mean(0) - mean)[:, 1:] / se[:, 1:]
        assert np.abs(z).max() < 4.5
        np.testing.assert_allclose(got.var(0)[:, 1:], var[:, 1:], rtol=0.2)
    np.testing.assert_array_equal(src.path(3), src.path(3))
    # an area's path depends on its code, not on which other areas share the run
    sub = fit.select(fit.areas[5:7])
    np.testing.assert_array_equal(PlacementSource(None, sub, 9, 5).path(11),
                                  src.path(11)[:, 5:7])
    assert not np.array_equal(src.path(11), src.path(12))


def test_an_area_without_a_recent_census_walks_on_from_its_last():
    bands, places, _, _ = simulate(3, n_areas=5)
    bands[-2:, 1] = np.nan  # area A001: no census for the last two years
    fit = fit_placements(bands, places, range(2018, 2026), [f"A{i:03d}" for i in range(5)])
    from simsend.rates.placement_mix import placement_effects
    last = placement_effects(bands[-3, 1], places[-3, 1])
    np.testing.assert_allclose(fit.level[1], last + 2 * (fit.mu + fit.own_mean[1]))
    bands[:, 2] = np.nan
    with pytest.raises(ValueError, match="A002"):
        fit_placements(bands, places, range(2018, 2026), [f"A{i:03d}" for i in range(5)])


def test_a_single_area_is_not_pooled_and_its_drift_is_its_own():
    bands, places, _, _ = simulate(4, n_areas=1)
    fit = fit_placements(bands, places, range(2018, 2026), ["E92000001"])
    assert (fit.tau == 0).all() and (fit.own_mean == 0).all()
    # its yearly changes are the common ones: the drift is their median
    from simsend.rates.placement_mix import placement_effects
    c = placement_effects(bands[:, 0], places[:, 0])
    np.testing.assert_allclose(fit.mu, np.median(np.diff(c, axis=0), axis=0))


def test_runs_use_calibrated_placements_and_record_it():
    cfg = simsend.load(ROOT / "configs" / "base.toml").replace_data(areas=("E06000017",))
    assert cfg.model.placements == "calibrated"
    base = api.load_baseline(cfg)
    src = api.run_source(cfg, base, None)
    a, b = src.get(0), src.get(1)
    assert a.placement_path.shape == (cfg.run.end_year - cfg.run.start_year + 1, 1, 7)
    assert not np.array_equal(a.placement_path, b.placement_path)
    tab = a.year_tables(1)
    assert tab.spec_cdf.shape == (1, 26, 7, 7) and tab.entry_cdf.shape == (1, 26, 7)
    # the rules' rows stay for the targeted tiers; without a path no calibrated rows
    rules = dataclasses.replace(a, placement_path=None).year_tables(1)
    np.testing.assert_array_equal(tab.place_cdf, rules.place_cdf)
    assert rules.spec_cdf.shape[0] == 0
    stay, entry = specialist_rows(a.placement_path[0], a.placement_path[1])
    np.testing.assert_allclose(np.diff(tab.spec_cdf, prepend=0.0, axis=-1), stay, atol=1e-12)
    np.testing.assert_allclose(np.diff(tab.entry_cdf, prepend=0.0, axis=-1), entry, atol=1e-12)


def test_calibrated_placements_need_placement_history(tmp_path):
    text = (ROOT / "configs" / "base.toml").read_text().replace(
        'placements = "calibrated"', 'placements = "somehow"')
    with pytest.raises(ConfigError, match=r"model\.placements"):
        simsend.config.parse(text, "t.toml", ROOT / "configs")


def test_calibrated_placements_change_placements_only():
    """Same baseline (the posterior's age re-spread included) and the same tiers bit for bit."""
    from simsend.runner.plan import prepare

    # from 2022, when SEN2 published age bands: the posterior re-spreads them over ages
    text = pin_2022((ROOT / "configs" / "base.toml").read_text())
    cfg = simsend.config.parse(text, "base.toml", ROOT / "configs").replace_data(
        areas=("E06000001",))
    cfg = cfg.replace_run(draws=4, end_year=cfg.run.start_year + 3).replace_outputs(
        by=("tier", "age_group", "placement"))
    rules = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, placements="rules"))
    a, b = prepare(cfg), prepare(rules)
    np.testing.assert_array_equal(np.asarray(a.baseline.individuals),
                                  np.asarray(b.baseline.individuals))
    assert "ehcp_band_ages" in a.baseline.provenance  # the posterior's re-spread is applied
    ra, rb = simsend.run(cfg), simsend.run(rules)
    np.testing.assert_array_equal(ra["n_pupils"].sum("placement").values,
                                  rb["n_pupils"].sum("placement").values)
    assert not np.array_equal(ra["n_pupils"].values, rb["n_pupils"].values)
    assert "calibrated per area" in ra.attrs["placements"]


def test_placement_modifiers_act_on_the_calibrated_rows():
    """A scenario that stops moves into state special schools at 11 stops them here too."""
    from simsend.config.scenarios import Modifier
    from simsend.rates.modifiers import compile_modifiers
    from simsend.rates.parameters import ParameterSet

    rng = np.random.default_rng(8)
    path = np.zeros((3, 2, 7))
    path[..., 1:] = rng.normal(0, 0.5, (3, 2, 6))
    path[1:, :, 2] += 1.0  # state special gains share: children move into it
    base = ParameterSet(identification=np.zeros((26, 2)), leaving=np.zeros((4, 26)),
                        tiers=np.broadcast_to(np.eye(4)[:, :, None, None, None],
                                              (4, 4, 26, 13, 2)).copy(),
                        need_mix=np.full((26, 13), 1 / 13), placement_new=np.full((26, 7), 1 / 7),
                        placement=np.broadcast_to(np.eye(7), (4, 26, 7, 7)).copy(),
                        births=np.zeros(2, np.int64), start_year=2025, placement_path=path)
    mod = Modifier("placement", "multiply", 0.0, tier=("specialist",), to=("special_state",),
                   ages=(11, 11))
    mods = compile_modifiers([mod], ("A", "B"))
    tab = base.year_tables(1)
    off = dataclasses.replace(base, modifiers=mods).year_tables(1)
    p = np.diff(tab.spec_cdf, axis=-1, prepend=0.0)
    q = np.diff(off.spec_cdf, axis=-1, prepend=0.0)
    e = np.diff(off.entry_cdf, axis=-1, prepend=0.0)
    assert (p[:, 11, 0, 2] > 0).all()  # without the scenario children move at 11
    np.testing.assert_array_equal(q[:, 11, :, 2][:, [0, 1, 3, 4, 5, 6]], 0.0)
    assert (e[:, 11, 2] == 0).all()
    np.testing.assert_allclose(q.sum(-1), 1.0)
    np.testing.assert_array_equal(q[:, 12], p[:, 12])  # other ages untouched


def test_a_baseline_before_the_first_year_holds_its_mix():
    import xarray as xr

    from simsend.dims import AGE_GROUPS, PLACEMENTS
    from simsend.rates.placements import fit_from_history

    bands, places, _, _ = simulate(6, n_areas=3, n_years=3)
    hist = xr.Dataset({"ehcp": (("year", "area", "age_group"), bands),
                       "ehcp_placement": (("year", "area", "placement"), places)},
                      coords={"year": [2015, 2016, 2017], "area": ["A", "B", "C"],
                              "age_group": list(AGE_GROUPS), "placement": list(PLACEMENTS)})
    fit = fit_from_history(hist, ["A", "B", "C"])
    assert fit.years == (2017,)
    assert (fit.mu == 0).all() and (fit.walk_sd == 0).all() and (fit.common_sd == 0).all()


def test_a_council_gets_the_same_placement_walk_alone_as_beside_others():
    """Fitted to every council whatever the run holds: the forecast does not depend on it."""
    cfg = simsend.load(ROOT / "configs" / "council.toml")
    alone = api.run_source(cfg.replace_data(areas=("E06000001",)),
                           api.load_baseline(cfg.replace_data(areas=("E06000001",))), None)
    pair_cfg = cfg.replace_data(areas=("E08000025", "E06000001"))
    pair = api.run_source(pair_cfg, api.load_baseline(pair_cfg), None)
    np.testing.assert_array_equal(alone.get(3).placement_path[:, 0],
                                  pair.get(3).placement_path[:, 1])


def test_data_without_placements_fall_back_to_the_rules_and_say_so(tmp_path, caplog):
    """A council's own tidy files with EHC plan totals only: the rules, logged and recorded."""
    pop = "year,area,age,count\n" + "".join(
        f"{y},C1,{a},{1000 + a}\n" for y in (2021, 2022) for a in range(26))
    (tmp_path / "population.csv").write_text(pop)
    (tmp_path / "stock.csv").write_text("year,area,plan,count\n2022,C1,ehcp,30\n"
                                        "2022,C1,sen_support,120\n")
    rates = tmp_path / "rates.toml"
    rates.write_text(re.sub(r"(?m)^posterior = .*$", "",  # C1 is in no posterior
                            (ROOT / "configs" / "council.toml").read_text()))
    (tmp_path / "c.toml").write_text(
        f'extends = "{rates.as_posix()}"\n[run]\nstart_year = 2022\nend_year = 2023\n'
        'draws = 2\n[data]\nsource = "files"\nareas = ["C1"]\n[data.files]\n'
        'population = "population.csv"\nstock = "stock.csv"\n')
    with caplog.at_level("WARNING", logger="simsend"):
        ds = simsend.run(tmp_path / "c.toml")
    assert "placement_moves rules are used" in caplog.text
    assert "was not used" in ds.attrs["placements"]
