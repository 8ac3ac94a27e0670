"""simsend.data.demography: cohort residual, births trend, migration rates, projection file."""

import functools

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from simsend.data import demography as dm
from simsend.data.errors import DataError

AGES = np.arange(26)


# ----------------------------------------------------------------------------- helpers


def _da(values, years, areas, ages=None):
    values = np.asarray(values, dtype=float)
    ages = np.arange(values.shape[1]) if ages is None else ages
    return xr.DataArray(values, dims=("year", "age", "area"),
                        coords={"year": list(years), "age": list(ages), "area": list(areas)})


def _synthetic(years, n_areas=3, *, slope=-0.02, level=1000.0, sigma=0.0, rates=None, seed=0):
    """Population from a known log-linear births trend and known cohort rates.

    ``rates``: (n_years, 26, n_areas) rate into each year (row 0 unused), default 1 % at all ages.
    Returns (population, true slopes (n_areas,), true log level at years[-1] (n_areas,)).
    """
    rng = np.random.default_rng(seed)
    years = np.asarray(years)
    n_y = len(years)
    slopes = slope + 0.01 * np.linspace(-1, 1, n_areas)
    lvl = np.log(level * np.linspace(0.5, 2.0, n_areas))
    logb = lvl + np.outer(years - years[-1], slopes) + sigma * rng.standard_normal((n_y, n_areas))
    if rates is None:
        rates = np.full((n_y, 26, n_areas), 0.01)
    pop = np.empty((n_y, 26, n_areas))
    pop[0] = level * (1 + 0.01 * AGES[:, None])  # any starting age structure
    pop[0, 0] = np.exp(logb[0])
    for t in range(1, n_y):
        pop[t, 0] = np.exp(logb[t])
        pop[t, 1:] = pop[t - 1, :-1] * (1 + rates[t, 1:])
    return _da(pop, years, [f"A{i}" for i in range(n_areas)]), slopes, lvl


@functools.cache
def _latest_real():
    """Builtin England + Birmingham population at the latest baseline year the extract has."""
    from simsend.data.baseline import DataSpec, builtin_paths, load_baseline

    years = sorted(pd.read_csv(builtin_paths()["population"], usecols=["year"])["year"].unique())
    for y in reversed(years):
        try:
            return load_baseline(DataSpec(areas=("E92000001", "E08000025"),
                                          baseline_year=int(y))).population
        except DataError:  # population may run ahead of the EHC stock
            continue
    raise AssertionError("no baseline year in the builtin extract")


@pytest.fixture(scope="module")
def real_pop():
    return _latest_real()


def _write(tmp_path, text, name="population_projection.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _proj_rows(year, area, counts, measure=None):
    lines = []
    for a, c in enumerate(counts):
        lines.append(f"{year},{area},{a},{c}" + (f",{measure}" if measure else ""))
    return lines


# ----------------------------------------------------------------------------- cohort residual


def test_cohort_rates_hand_computed():
    # years 2020, 2021, 2023 (gap before 2023); ages 0-2; areas X, Y (Y has a zero at age 0)
    v = [[[100, 10], [200, 0], [300, 30]],
         [[110, 12], [90, 11], [220, 40]],
         [[120, 13], [130, 12], [100, 20]]]
    r = dm.cohort_rates(_da(v, [2020, 2021, 2023], ["X", "Y"]))
    assert r.dims == ("year", "age", "area")
    x = r.sel(year=2021).values
    np.testing.assert_allclose(x[1], [90 / 100 - 1, 11 / 10 - 1])
    np.testing.assert_allclose(x[2, 0], 220 / 200 - 1)
    assert np.isnan(x[2, 1])  # denominator pop(1, 2020) = 0
    assert np.isnan(r.sel(age=0)).all()  # age 0 is births, never a rate
    assert np.isnan(r.sel(year=2020)).all()  # first year
    assert np.isnan(r.sel(year=2023)).all()  # 2022 missing: no transition
    assert not r["crosses_rebasing"].any()


def test_cohort_rates_flag_rebasing_and_dim_order():
    v = np.arange(1, 2 * 3 * 1 + 1, dtype=float).reshape(2, 3, 1)
    pop = _da(v, [2021, 2022], ["X"]).transpose("area", "age", "year")
    r = dm.cohort_rates(pop)
    assert r["crosses_rebasing"].values.tolist() == [False, True]
    assert r.sel(year=2022, age=2, area="X").item() == pytest.approx(v[1, 2, 0] / v[0, 1, 0] - 1)
    assert dm.rebased_transitions([2020, 2021, 2022, 2023]) == [2022]
    assert dm.rebased_transitions([2022, 2023]) == []
    assert dm.rebased_transitions([2021, 2022], rebased={}) == []


def test_observed_rates_reproduce_population_exactly():
    years = np.arange(2015, 2026)
    rates = 0.02 * np.random.default_rng(1).standard_normal((len(years), 26, 3))
    pop, _, _ = _synthetic(years, rates=rates, sigma=0.05)
    obs = dm.observed_demography(pop, 2020, 2025)
    assert obs.births.shape == (5, 3) and obs.net_rate.shape == (5, 26, 3)
    out = dm.project_population(pop.sel(year=2020).values, obs)
    np.testing.assert_allclose(out, pop.sel(year=slice(2021, 2025)).values, rtol=1e-12)
    with pytest.raises(DataError, match="no estimates for census years \\[2026\\]"):
        dm.observed_demography(pop, 2020, 2026)


# ----------------------------------------------------------------------------- births trend


def test_fit_recovers_exact_trend_and_rates():
    years = np.arange(2012, 2023)
    rates = np.broadcast_to((0.005 * AGES - 0.03)[None, :, None], (len(years), 26, 3)).copy()
    pop, slopes, lvl = _synthetic(years, rates=rates)
    m = dm.fit_demography(pop, 2022, 2030, rebased={})
    np.testing.assert_allclose(m.births_slope, slopes, atol=1e-12)
    np.testing.assert_allclose(m.births_coef[0], lvl, atol=1e-12)
    e = m.expected()
    assert e.years.tolist() == list(range(2023, 2031))
    truth = np.exp(lvl + np.outer(e.years - 2022, slopes))
    np.testing.assert_allclose(e.births, truth, rtol=1e-10)
    np.testing.assert_allclose(e.net_rate[:, 1:], rates[:8, 1:], atol=1e-12)
    assert (e.net_rate[:, 0] == 0).all()
    d = m.draw(3, 42)  # no noise in the data: every draw is the truth
    np.testing.assert_allclose(d.births, truth, rtol=1e-10)
    np.testing.assert_allclose(d.net_rate, e.net_rate, atol=1e-12)


def test_births_slope_standard_error_is_calibrated():
    # 400 independent areas, 11 years, noise 2 %: (slope - truth) / se is t with 9 dof
    pop, slopes, _ = _synthetic(np.arange(2012, 2023), n_areas=400, sigma=0.02, seed=5)
    m = dm.fit_demography(pop, 2022, 2025, rebased={})
    z = (m.births_slope - slopes) / m.births_slope_se
    assert abs(z.mean()) < 0.2
    assert 0.85 <= np.mean(np.abs(z) < 1.833) <= 0.95  # t_9 90 % quantile
    np.testing.assert_allclose(m.births_sigma.mean(), 0.02, rtol=0.1)


def test_drawn_births_cover_truth_at_nominal_rate():
    """Over 500 synthetic areas (independent replications), the 90 % band of 400 draws holds
    the true trend (noise=False) and a fresh year (noise=True) about 90 % of the time."""
    years = np.arange(2012, 2023)
    n = 500
    pop, slopes, lvl = _synthetic(years, n_areas=n, sigma=0.03, seed=11)
    m = dm.fit_demography(pop, 2022, 2027, rebased={})
    h = np.arange(1, 6)
    true_line = lvl + np.outer(h, slopes)  # (5, n)
    fresh = true_line + 0.03 * np.random.default_rng(99).standard_normal(true_line.shape)
    for noise, truth in ((False, true_line), (True, fresh)):
        draws = np.log(np.stack([m.draw(k, 2024, noise=noise).births for k in range(400)]))
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
        cover = ((lo <= truth) & (truth <= hi)).mean(axis=1)  # by horizon
        assert np.all((cover > 0.85) & (cover < 0.95)), (noise, cover)
        assert 0.87 < cover.mean() < 0.93, (noise, cover)


def test_draws_deterministic_distinct_and_prefix_stable():
    years = np.arange(2012, 2023)
    rates = 0.01 + 0.01 * np.random.default_rng(2).standard_normal((len(years), 26, 3))
    pop, _, _ = _synthetic(years, sigma=0.03, rates=rates)
    m = dm.fit_demography(pop, 2022, 2032, rebased={})
    a, b = m.draw(7, 123), m.draw(7, 123)
    np.testing.assert_array_equal(a.births, b.births)
    np.testing.assert_array_equal(a.net_rate, b.net_rate)
    for other in (m.draw(8, 123), m.draw(7, 124)):
        assert not np.allclose(other.births, a.births)
        assert not np.allclose(other.net_rate, a.net_rate)
    short = dm.fit_demography(pop, 2022, 2026, rebased={}).draw(7, 123)
    np.testing.assert_array_equal(short.births, a.births[:4])
    np.testing.assert_array_equal(short.net_rate, a.net_rate[:4])
    assert a.births.shape == (10, 3) and a.net_rate.shape == (10, 26, 3)
    assert (a.births >= 0).all() and (a.net_rate >= -1).all() and (a.net_rate[:, 0] == 0).all()


def test_too_few_years_and_missing_values():
    # two census years: births held at the last, with no uncertainty, and said so
    pop, _, _ = _synthetic(np.arange(2020, 2022))
    m = dm.fit_demography(pop, 2021, 2025)
    assert any(n.startswith("ASSUMPTION births: held") for n in m.notes)
    held = pop.sel(year=2021, age=0).values
    for d in (m.draw(0, 1), m.draw(1, 2), m.expected()):
        np.testing.assert_array_equal(d.births, np.broadcast_to(held, d.births.shape))
    # one census year: no step to estimate migration from either
    m = dm.fit_demography(pop.sel(year=[2021]), 2021, 2025)
    assert (m.draw(0, 1).net_rate == 0).all()
    assert any(n.startswith("ASSUMPTION net migration: none") for n in m.notes)
    pop, _, _ = _synthetic(np.arange(2015, 2023))
    pop = pop.copy()
    pop.loc[{"year": 2019, "age": 0, "area": "A1"}] = np.nan
    with pytest.raises(DataError, match="census year 2019, area A1"):
        dm.fit_demography(pop, 2022, 2025)
    with pytest.raises(DataError, match="start year 2024"):
        dm.fit_demography(pop, 2024, 2025)


# ----------------------------------------------------------------------------- migration rates


def test_rates_bootstrap_over_recent_years_and_rebasing_skipped():
    years = np.arange(2015, 2023)
    shift = np.array([0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, -0.05])  # -0.05 at the rebasing
    rates = np.broadcast_to(shift[:, None, None] + 0.001 * AGES[None, :, None],
                            (len(years), 26, 3)).copy()
    pop, _, _ = _synthetic(years, rates=rates)
    m = dm.fit_demography(pop, 2022, 2041)
    assert m.rate_years.tolist() == [2019, 2020, 2021]  # 2022 crosses the rebasing
    tables = rates[4:7]
    e = m.expected()
    np.testing.assert_allclose(e.net_rate[:, 1:], np.broadcast_to(tables.mean(0), (19, 26, 3))[:, 1:])
    seen = []
    for k in range(30):
        d = m.draw(k, 5)
        for t in range(19):
            hit = [j for j in range(3) if np.allclose(d.net_rate[t, 1:], tables[j, 1:])]
            assert len(hit) == 1
            seen.append(hit[0])
    assert np.bincount(seen).min() > 0.25 * len(seen)  # each year about 1/3
    m2 = dm.fit_demography(pop, 2022, 2030, rebased={}, recent_years=2)
    assert m2.rate_years.tolist() == [2021, 2022]
    assert any("skipped (rebasing)" in n for n in m.notes)


def test_observed_flag_fixes_known_years_and_fits_on_them():
    years = np.arange(2015, 2026)
    rates = 0.01 + 0.005 * np.random.default_rng(4).standard_normal((len(years), 26, 2))
    pop, _, _ = _synthetic(years, n_areas=2, rates=rates, sigma=0.02)
    m = dm.fit_demography(pop, 2022, 2030, observed=True)
    assert m.births_years[-1] == 2025 and m.rate_years.tolist() == [2023, 2024, 2025]
    assert m.births_source[:3].tolist() == [["observed"] * 2] * 3
    assert (m.births_source[3:] == "trend").all() and (m.rate_source[3:] == "recent").all()
    for k in range(3):
        out = dm.project_population(pop.sel(year=2022).values, m.draw(k, 1))
        np.testing.assert_allclose(out[:3], pop.sel(year=[2023, 2024, 2025]).values, rtol=1e-12)
    plain = dm.fit_demography(pop, 2022, 2030)
    assert plain.births_years[-1] == 2022 and (plain.births_source == "trend").all()


# ----------------------------------------------------------------------------- projection file


def test_projection_reader_reads_population_and_components(tmp_path):
    lines = ["year,area,age,count,area_name"] + [f"{r},X" for r in _proj_rows(2023, "A0", range(26))]
    df = dm.read_population_projection(_write(tmp_path, "\n".join(lines)))
    assert df.columns.tolist() == ["year", "area", "age", "measure", "count"]
    assert len(df) == 26 and (df["measure"] == "population").all() and df["age"].tolist() == list(range(26))
    lines = (["year,area,age,count,measure", "2023,A0,,500,births"]
             + _proj_rows(2023, "A0", [0] + [-3] * 25, "net_migration")[1:])
    df = dm.read_population_projection(_write(tmp_path, "\n".join(lines)))
    assert df.loc[0, "age"] == 0 and df.loc[0, "measure"] == "births"
    assert (df.loc[1:, "count"] == -3).all()


BAD_CASES = {
    "missing column": ("year,area,age\n2023,A0,0", "population_projection.csv:1: count=", "column missing"),
    "age outside": ("year,area,age,count\n2023,A0,0,5\n2023,A0,26,5", ":3: age='26'", "age 0-25"),
    "non-numeric count": ("year,area,age,count\n2023,A0,0,lots", ":2: count='lots'", "a number"),
    "negative count": ("year,area,age,count\n2023,A0,0,-4", ":2: count='-4'", ">= 0"),
    "unknown measure": ("year,area,age,count,measure\n2023,A0,0,5,deaths", ":2: measure='deaths'", "one of population, births, net_migration"),
    "duplicated row": ("year,area,age,count\n" + "\n".join(_proj_rows(2023, "A0", range(26)))
                       + "\n2023,A0,4,7", ":28: age=4", "already on row 6"),
    "incomplete ages": ("year,area,age,count\n" + "\n".join(_proj_rows(2023, "A0", range(20))),
                        ":2: age='20-25'", "ages [20, 21, 22, 23, 24, 25] missing"),
    "mixed measures": ("year,area,age,count,measure\n" + "\n".join(_proj_rows(2023, "A0", range(26)))
                       + "\n2023,A0,0,5,births", "measure=", "population rows and births"),
    "net migration at age 0": ("year,area,age,count,measure\n2023,A0,0,5,net_migration", ":2: age='0'", "age 0 is the births row"),
    "bad year": ("year,area,age,count\n2023.5,A0,0,5", ":2: year='2023.5'", "whole census year"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_projection_reader_errors(tmp_path, case):
    text, where, what = BAD_CASES[case]
    with pytest.raises(DataError) as exc:
        dm.read_population_projection(_write(tmp_path, text))
    msg = str(exc.value)
    assert "population_projection.csv" in msg and where in msg and what in msg, msg
    assert exc.value.findings


def test_projection_replaces_trend_for_its_years(tmp_path):
    years = np.arange(2015, 2023)
    pop, _, _ = _synthetic(years, n_areas=2)
    target = {2023: 900 + 10 * AGES, 2024: 950 + 12 * AGES}
    lines = ["year,area,age,count"]
    for y, c in target.items():
        lines += _proj_rows(y, "A0", c)
    lines += _proj_rows(2023, "ELSEWHERE", range(26))  # areas not in the run are ignored
    m = dm.fit_demography(pop, 2022, 2027, projection=_write(tmp_path, "\n".join(lines)))
    assert m.births_source[:, 0].tolist() == ["projection"] * 2 + ["trend"] * 3
    assert (m.births_source[:, 1] == "trend").all() and (m.rate_source[:, 1] == "recent").all()
    for d in (m.expected(), m.draw(0, 9), m.draw(1, 9)):
        out = dm.project_population(pop.sel(year=2022).values, d)
        np.testing.assert_allclose(out[0, :, 0], target[2023])
        np.testing.assert_allclose(out[1, :, 0], target[2024])
    assert any("projection" in n for n in m.notes)


def test_projection_components_rows():
    pop, _, _ = _synthetic(np.arange(2015, 2023), n_areas=1)
    proj = pd.DataFrame({"year": [2024] * 26, "area": ["A0"] * 26, "age": AGES,
                         "measure": ["births"] + ["net_migration"] * 25,
                         "count": [700.0] + [5.0] * 25})
    m = dm.fit_demography(pop, 2022, 2025, projection=proj)
    e = m.expected()
    out = dm.project_population(pop.sel(year=2022).values, e)
    assert out[1, 0, 0] == 700.0 and m.births_source[:, 0].tolist() == ["trend", "projection", "trend"]
    # 2024: the 2023 central path plus 5 people at every age
    np.testing.assert_allclose(out[1, 1:, 0], out[0, :-1, 0] + 5.0)
    with pytest.raises(DataError, match="none of its areas"):
        dm.fit_demography(pop, 2022, 2025, projection=proj.assign(area="Z"))


# ----------------------------------------------------------------------------- components check


def _components(**over):
    row = dict(area="X", area_name="Xshire", births=100.0, deaths=50.0, internal_net=10.0,
               international_net=30.0, other=1.0, population_mid2022=1000.0,
               population_mid2023=1091.0)
    row.update(over)
    return pd.DataFrame([row])


def test_components_check_hand_computed():
    v = np.zeros((2, 26, 1))
    v[0, :, 0] = 10.0
    v[1, :, 0] = 11.0
    v[1, 0, 0] = 98.0
    out = dm.components_check(_da(v, [2023, 2024], ["X"]), _components())
    r = out.iloc[0]
    assert r["births_ratio"] == pytest.approx(0.98)
    assert r["net_change_1_25"] == pytest.approx(25.0)
    assert r["net_rate_1_25"] == pytest.approx(25 / 250)
    assert r["net_rate_all"] == pytest.approx((41 - 50) / 1000)
    assert r["population_balance"] == 0
    with pytest.raises(DataError, match="deaths"):
        dm.components_check(_da(v, [2023, 2024], ["X"]), _components().drop(columns="deaths"))
    with pytest.raises(DataError, match="census years 2023 and 2024"):
        dm.components_check(_da(v, [2022, 2023], ["X"]), _components())


# ----------------------------------------------------------------------------- real data


def test_real_rates_flag_rebasing_and_reproduce(real_pop):
    last = int(real_pop["year"].max())
    r = dm.cohort_rates(real_pop)
    assert r.sel(year=2022)["crosses_rebasing"].item()
    assert int(r["crosses_rebasing"].sum()) == 1
    # the rebasing moved England's 3-9 year olds down by about 5 %
    assert r.sel(year=2022, age=slice(3, 9), area="E92000001").mean() < -0.03
    obs = dm.observed_demography(real_pop, last - 2, last)
    out = dm.project_population(real_pop.sel(year=last - 2).values, obs)
    np.testing.assert_allclose(out, real_pop.sel(year=[last - 1, last]).values, rtol=1e-9)


def test_real_fit_is_plausible(real_pop):
    last = int(real_pop["year"].max())
    m = dm.fit_demography(real_pop, last, last + 10)
    assert m.areas == ("E92000001", "E08000025")
    n_years = int((real_pop["year"] <= last).sum())
    assert m.births_years[-1] == last and len(m.births_years) == min(11, n_years)
    assert 2022 not in m.rate_years.tolist() and len(m.rate_years) == 3
    # England's births fell by about 2 % a year over 2015-2022 (SE about 0.3 %)
    assert -0.04 < m.births_slope[0] < 0.0 and 0 < m.births_slope_se[0] < 0.01
    e = m.expected()
    assert e.births.shape == (10, 2) and e.net_rate.shape == (10, 26, 2)
    eng = e.net_rate[:, 1:, 0]
    assert np.all(np.abs(eng) < 0.1)  # England: a few % a year at most at any age
    start = real_pop.sel(year=last).values
    total = dm.project_population(start, e)[-1].sum(axis=0) / start.sum(axis=0)
    assert 0.85 < total[0] < 1.15  # no longer the 13 % drain of constant births, no migration
    draws = np.stack([m.draw(k, 0).births[-1, 0] for k in range(200)])
    lo, hi = np.quantile(draws, [0.05, 0.95])
    assert lo < e.births[-1, 0] < hi and hi / lo > 1.05


def test_real_components_check(real_pop):
    from simsend.data.baseline import builtin_dir

    path = builtin_dir() / "components_mid2023.csv"
    if not path.exists() or 2024 not in real_pop["year"].values:
        pytest.skip("needs components_mid2023.csv and population at census 2024 in the extract")
    out = dm.components_check(real_pop, pd.read_csv(path))
    eng = out.set_index("area").loc["E92000001"]
    assert 0.97 < eng["births_ratio"] < 1.03
    assert abs(eng["population_balance"]) <= 1
    assert 0 < eng["net_rate_1_25"] < 0.05
