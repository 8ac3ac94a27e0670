"""Backtest scoring without a calibration: hand-made records and forecasts, seconds to run.

The record and the forecasts are built here, so every score has a known value: the banded
naive growth rule on constant series with one jump, coverage / CRPS / PIT against direct
NumPy, the pooled summary rows against direct group means, the council size bands, the
engine's variables against its own flows, and the command line's ``--origins``.
"""

import importlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner

from simsend.calibration import scores
from simsend.dims import AGE_GROUPS, PLACEMENTS

bt = importlib.import_module("simsend.calibration.backtest")  # the package exports a function
GROUPS = list(AGE_GROUPS)
BASE = Path(__file__).resolve().parents[2] / "configs" / "base.toml"
SMALL_AREA = "E06000017"  # Rutland: the smallest council, so an engine run takes a moment


def record(values: dict[str, np.ndarray], years, extra: bool = True) -> xr.Dataset:
    """A record whose EHC plan totals per area are ``values[area]`` (one per year).

    Plans are split over the age groups in fixed shares 1:2:3:2:2; new plans are a tenth of
    the stock, SEN support three times it and ceased plans a twentieth (``extra``).
    """
    areas = list(values)
    tot = np.stack([np.asarray(values[a], float) for a in areas], axis=1)  # (year, area)
    share = np.array([1, 2, 3, 2, 2]) / 10
    ds = xr.Dataset(
        {"ehcp": (("year", "age_group", "area"), tot[:, None, :] * share[None, :, None]),
         "new_plans": (("year", "age_group", "area"), 0.1 * tot[:, None, :]
                       * share[None, :, None])},
        coords={"year": np.asarray(years), "age_group": GROUPS, "area": areas})
    if extra:
        ds["sen_support"] = (("year", "area"), 3.0 * tot)
        ds["ceased"] = (("year", "area"), 0.05 * tot)
        place = np.array([4, 1, 3, 1, 0.5, 0.3, 0.2]) / 10
        ds["ehcp_placement"] = (("year", "placement", "area"),
                                tot[:, None, :] * place[None, :, None])
        ds = ds.assign_coords(placement=list(PLACEMENTS))
    return ds


def forecast(rec: xr.Dataset, origin: int, horizon: int, draws: int = 400, sd: float = 0.05,
             extra: bool = True, seed: int = 0) -> xr.Dataset:
    """Draws scattered (lognormal, ``sd``) around the record of the years after ``origin``."""
    rng = np.random.default_rng(seed)
    fut = rec.sel(year=slice(origin + 1, origin + horizon))
    out = {}
    for var in ("ehcp", "new_plans",
                *(("sen_support", "ceased", "ehcp_placement") if extra else ())):
        if var not in fut:
            continue
        da = fut[var]
        noise = np.exp(rng.normal(0.0, sd, (draws, *da.shape)))
        out[var] = (("draw", *da.dims), da.values[None] * noise)
    coords = {"draw": np.arange(draws), "year": fut["year"].values, "age_group": GROUPS,
              "area": rec["area"].values}
    if "ehcp_placement" in out:
        coords["placement"] = list(PLACEMENTS)
    return xr.Dataset(out, coords=coords,
                      attrs={"origin_year": origin})


# ----------------------------------------------------------------------------- the naive band


def test_banded_naive_growth_exact_on_constant_series_with_one_jump():
    """Area A jumps from 100 to 200 in the origin year; B and C stay at 100.

    Lead-1 errors of the 3-year growth rule from origins 2017-2019: A gives 0, 0, log 2
    (the jump); B and C give 0, 0, 0 each: nine pooled errors, eight 0 and one log 2.  B's
    forecast of 2021 is 100, so its sample is eight 100s and one 200: 90% interval [100,
    160] (linear interpolation at 0.95 * 8 = 7.6), 50% interval [100, 100].
    """
    years = np.arange(2015, 2022)
    rec = record({"A": [100, 100, 100, 100, 100, 200, 250],
                  "B": [100] * 6 + [150], "C": [100] * 6 + [90]}, years, extra=False)
    pts = bt.score_points(forecast(rec, 2020, 1), rec)
    g = pts[(pts.variable == "ehcp") & (pts.method == "naive_growth")].set_index("area")
    b = g.loc["B"]
    assert b["point"] == pytest.approx(100.0) and b["median"] == pytest.approx(100.0)
    assert (b["lo90"], b["hi90"]) == pytest.approx((100.0, 160.0))
    assert (b["lo50"], b["hi50"]) == pytest.approx((100.0, 100.0))
    assert bool(b["in90"]) and not bool(b["in50"])
    assert b["pit"] == pytest.approx(8 / 9)  # eight draws below 150, none equal
    # CRPS by hand: E|X - 150| = (8 * 50 + 50) / 9; E|X - X'| = 2 * 8 * 100 / 81.
    assert b["crps"] == pytest.approx(50.0 - 800 / 81)
    # A: 3-year growth (200 / 100) ** (1/3) from 200; the same pooled errors scale it.
    a = g.loc["A"]
    assert a["point"] == pytest.approx(200 * 2 ** (1 / 3))
    assert a["hi90"] == pytest.approx(1.6 * a["point"])
    # C is below its whole band: PIT 0, outside both intervals.
    assert g.loc["C", "pit"] == 0.0 and not bool(g.loc["C", "in90"])
    # The straight line through 2016-2020 (A): 100, 100, 100, 100, 200 -> 2021.
    lin = pts[(pts.variable == "ehcp") & (pts.method == "naive_linear")].set_index("area")
    assert lin.loc["A", "point"] == pytest.approx(scores.naive_linear_trend(
        [100, 100, 100, 100, 200.0], 1)[0])
    assert lin["crps"].isna().all() and lin["in90"].isna().all()


def test_naive_band_uses_nothing_after_the_origin():
    years = np.arange(2015, 2024)
    rng = np.random.default_rng(1)
    vals = {f"R{i}": 200 * (1.05 + 0.02 * i) ** np.arange(9) * np.exp(rng.normal(0, 0.04, 9))
            for i in range(6)}
    rec = record(vals, years)
    fc = forecast(rec, 2020, 3)
    cols = ["point", "median", "lo50", "hi50", "lo90", "hi90", "size_band"]
    base = bt.score_points(fc, rec)
    # Change every recorded value after the origin (and add later years): the naive
    # forecasts and bands, and the size bands, stay the same; the observations follow.
    later = rec.where(rec["year"] <= 2020, rec * 3.7)
    longer = xr.concat([later, later.sel(year=[2023]).assign_coords(year=[2024])], "year")
    moved = bt.score_points(fc, longer)
    naive = base["method"] != "simsend"
    pd.testing.assert_frame_equal(base.loc[naive, cols], moved.loc[naive, cols])
    assert not np.allclose(base["observed"], moved["observed"])
    assert base[naive & (base.method == "naive_growth")]["lo90"].notna().all()


def test_naive_growth_band_needs_enough_past_errors():
    """One area with a short history: too few errors for a band (point forecast only)."""
    years = np.arange(2016, 2021)
    rec = record({"A": [100, 110, 121, 133.1, 146.41]}, years, extra=False)
    pts = bt.score_points(forecast(rec, 2019, 1), rec)
    g = pts[(pts.method == "naive_growth") & (pts.variable == "ehcp")].iloc[0]
    assert g["point"] == pytest.approx(146.41) and np.isnan(g["lo90"])
    assert pd.isna(g["in90"]) and np.isnan(g["crps"]) and np.isnan(g["pit"])


# ----------------------------------------------------------------------------- point scores


@pytest.fixture(scope="module")
def scored():
    years = np.arange(2014, 2024)
    rng = np.random.default_rng(5)
    vals = {f"E{i:02d}": rng.uniform(100, 5000) * (1.08 ** np.arange(10))
            * np.exp(rng.normal(0, 0.05, 10)) for i in range(9)}
    rec = record(vals, years)
    fcs = [forecast(rec, o, 3, sd=0.06, seed=o) for o in (2019, 2020)]
    pts = pd.concat([bt.score_points(f, rec) for f in fcs], ignore_index=True)
    return rec, fcs, pts


def test_every_variable_scored_and_missing_ones_skipped(scored):
    rec, fcs, pts = scored
    assert list(dict.fromkeys(pts["variable"])) == list(bt.VARIABLES)
    assert {f"ehcp_{g}" for g in GROUPS} <= set(pts["variable"])
    assert set(pts["method"]) == set(bt.METHODS) and set(pts["lead"]) == {1, 2, 3}
    # 9 areas x 3 leads x 3 methods per variable and origin.
    assert (pts.groupby(["origin", "variable"]).size() == 81).all()
    # The aggregate path has no SEN support, ceased plans or placements: those are skipped.
    no_extra = forecast(rec, 2020, 2, extra=False)
    assert not {"sen_support", *bt.PLACEMENT_VARIABLES} & set(
        bt.score_points(no_extra, rec)["variable"])
    # A record without them (calibration targets alone): skipped as well.
    assert "ceased" not in set(bt.score_points(fcs[0], rec.drop_vars(["ceased"]))["variable"])


def test_point_scores_against_direct_numpy(scored):
    rec, fcs, pts = scored
    fc = fcs[1]
    for var, sims, obs in (
            ("ehcp", fc["ehcp"].sum("age_group"), rec["ehcp"].sum("age_group")),
            ("ehcp_11_to_15", fc["ehcp"].sel(age_group="11_to_15"),
             rec["ehcp"].sel(age_group="11_to_15")),
            ("ceased", fc["ceased"], rec["ceased"])):
        x = sims.sel(area="E03", year=2022).values
        y = float(obs.sel(area="E03", year=2022))
        row = pts[(pts.origin == 2020) & (pts.variable == var) & (pts.area == "E03")
                  & (pts.year == 2022) & (pts.method == "simsend")].iloc[0]
        q = np.quantile(x, [0.05, 0.25, 0.75, 0.95])
        assert (row["lo90"], row["lo50"], row["hi50"], row["hi90"]) == pytest.approx(tuple(q))
        assert bool(row["in90"]) == bool(q[0] <= y <= q[3])
        assert bool(row["in50"]) == bool(q[1] <= y <= q[2])
        crps = np.abs(x - y).mean() - 0.5 * np.abs(x[:, None] - x[None, :]).mean()
        assert row["crps"] == pytest.approx(crps)
        assert row["pit"] == pytest.approx((x < y).mean() + 0.5 * (x == y).mean())
        assert row["lead"] == 2 and row["point"] == pytest.approx(np.median(x))


def test_summary_rows_against_direct_group_means(scored):
    _, _, pts = scored
    tab = bt.summarise(pts)
    assert list(tab.columns) == ["origin", "variable", "lead", "method", "size_band", "area",
                                 "n", "coverage_50", "coverage_90", "crps", "mape", "bias"]

    def row(**k):
        m = np.ones(len(tab), bool)
        for key, v in {"area": "all", "size_band": "all", **k}.items():
            m &= (tab[key] == v).to_numpy()
        assert m.sum() == 1, k
        return tab[m].iloc[0]

    for method in bt.METHODS:
        p = pts[(pts.origin == 2019) & (pts.variable == "ehcp") & (pts.lead == 2)
                & (pts.method == method)]
        r = row(origin="2019", variable="ehcp", lead="2", method=method)
        assert r["n"] == len(p) == 9
        assert r["mape"] == pytest.approx(scores.mape(p["point"], p["observed"]))
        assert r["bias"] == pytest.approx(scores.bias(p["point"], p["observed"]))
        if method == "naive_linear":
            assert np.isnan(r["coverage_90"]) and np.isnan(r["crps"])
        else:
            assert r["coverage_90"] == pytest.approx(p["in90"].astype(float).mean())
            assert r["coverage_50"] == pytest.approx(p["in50"].astype(float).mean())
            assert r["crps"] == pytest.approx(p["crps"].mean())
    # pooled over origins and leads, and per size band
    p = pts[(pts.variable == "sen_support") & (pts.method == "simsend")]
    r = row(origin="all", variable="sen_support", lead="all", method="simsend")
    assert r["n"] == len(p) == 2 * 3 * 9
    assert r["coverage_90"] == pytest.approx(p["in90"].astype(float).mean())
    for band in bt.SIZE_BANDS:
        q = p[p.size_band == band]
        rb = row(origin="all", variable="sen_support", lead="all", method="simsend",
                 size_band=band)
        assert rb["n"] == len(q) == 18 and rb["crps"] == pytest.approx(q["crps"].mean())
    # per area, pooled over leads (and over origins)
    one = tab[(tab.area == "E04") & (tab.origin == "all") & (tab.variable == "new_plans")
              & (tab.method == "simsend")]
    assert len(one) == 1 and one["n"].item() == 6 and one["lead"].item() == "all"
    # the CSV round trip keeps the flags readable
    back = bt.summarise(pd.read_csv(io.StringIO(pts.to_csv(index=False))))
    pd.testing.assert_frame_equal(back, tab, check_dtype=False)


def test_size_bands_are_terciles_of_plans_at_the_origin(scored):
    rec, _, pts = scored
    assert bt.size_bands(pd.Series([5.0, 1.0, 9.0, 3.0, 7.0, 2.0])).tolist() == [
        "medium", "small", "large", "medium", "large", "small"]
    assert bt.size_bands(pd.Series([np.nan, 4.0])).tolist() == ["unknown", "small"]
    at = rec["ehcp"].sum("age_group").sel(year=2019).to_series()
    order = at.sort_values().index
    want = dict(zip(order, ["small"] * 3 + ["medium"] * 3 + ["large"] * 3, strict=True))
    got = pts[pts.origin == 2019].groupby("area")["size_band"].agg(set)
    assert all(got[a] == {want[a]} for a in want)


def test_pit_chart_is_written_atomically_with_a_panel_per_group(scored, tmp_path):
    import matplotlib.image as mpimg

    _, _, pts = scored
    png = bt.plot_pit(pts, tmp_path / "pit.png")
    img = mpimg.imread(png)
    assert img.shape[0] > 600 and img.shape[1] > 1200  # two rows of three panels, six used
    assert img[..., :3].std() > 0.05
    assert [p.name for p in tmp_path.iterdir()] == ["pit.png"]
    # fewer groups, fewer panels (one row)
    small = bt.plot_pit(pts[pts.variable == "ehcp"], tmp_path / "one.png")
    assert mpimg.imread(small).shape[0] < img.shape[0]


def test_record_takes_sen_support_and_lagged_ceased_plans_from_the_history():
    years = np.arange(2018, 2022)
    t = record({"A": [10.0, 11, 12, 13], "B": [20.0, 21, 22, 23]}, years, extra=False)
    hy = np.arange(2016, 2022)
    hist = xr.Dataset(
        {"sen_support": (("year", "area"), np.arange(18.0).reshape(6, 3)),
         "ceased": (("year", "area"), 100 + np.arange(18.0).reshape(6, 3)),
         "ehcp": (("year", "age_group", "area"), np.zeros((6, 5, 3))),
         "ehcp_placement": (("year", "placement", "area"),
                            np.arange(6 * 7 * 3.0).reshape(6, 7, 3))},
        coords={"year": hy, "area": ["B", "Z", "A"], "age_group": GROUPS,
                "placement": list(PLACEMENTS)})
    out = bt.with_history(t, hist)
    # by placement: same census year, (year, placement, area); scored as ehcp_<placement>
    assert out["ehcp_placement"].dims == ("year", "placement", "area")
    assert out["ehcp_placement"].sel(year=2020, placement="special_state",
                                     area="A").item() == (4 * 7 + 2) * 3 + 2
    series = bt._series(out, False)
    assert series["ehcp_special_state"].sel(year=2020, area="A").item() == (4 * 7 + 2) * 3 + 2
    assert out["sen_support"].dims == ("year", "area")
    # SEN support: same census year; B is the history's first column, A its third.
    assert out["sen_support"].sel(year=2019, area="B").item() == 3 * 3 + 0
    assert out["sen_support"].sel(year=2021, area="A").item() == 5 * 3 + 2
    # Ceased in calendar 2018 (history row 2) is scored at census 2019.
    assert out["ceased"].sel(year=2019, area="A").item() == 100 + 2 * 3 + 2
    assert out["ceased"].sel(year=2018, area="B").item() == 100 + 1 * 3
    xr.testing.assert_equal(out["ehcp"], t["ehcp"])  # the targets are left as they were
    # No history series of that name: nothing added.
    assert "ceased" not in bt.with_history(t, hist.drop_vars("ceased"))


# ----------------------------------------------------------------------------- the engine


def test_engine_variables_follow_the_engines_own_flows(tmp_path):
    """SEN support and ceased plans from a small engine run agree with its flows."""
    import dataclasses

    from simsend.config import load
    from simsend.runner.forecast import simulate_run
    from simsend.runner.plan import prepare

    cfg = load(BASE)
    c = dataclasses.replace(
        cfg.replace_run(start_year=2022, end_year=2024, draws=2)
           .replace_outputs(by=("tier", "age_group", "area")).replace_data(areas=(SMALL_AREA,)),
        model=dataclasses.replace(cfg.model, posterior=None), provision=None, scenarios=(),
        pipeline=dataclasses.replace(cfg.pipeline, enabled=False))
    plan = prepare(c)
    ds = plan.dataset(0, simulate_run(plan, 0, plan.draws), {})
    out = bt.engine_variables(ds, 2022)
    assert out["year"].values.tolist() == [2023, 2024]
    assert out["ehcp"].dims == ("draw", "year", "age_group", "area")
    assert out["ceased"].dims == out["sen_support"].dims == ("draw", "year", "area")
    later = ds.sel(year=[2023, 2024])
    ss = later["n_pupils"].sel(tier=["targeted", "targeted_plus"]).sum(["tier", "age_group"])
    np.testing.assert_array_equal(out["sen_support"].values, ss.values)
    sp = later.sel(tier="specialist")
    met = later["n_transitions"].sel(tier_from="specialist",
                                     tier=["universal", "targeted", "targeted_plus"]).sum("tier")
    left = (sp["n_left"] + sp["n_moved_out"]).sum("age_group").isel(area=0)
    np.testing.assert_allclose(out["ceased"].isel(area=0).values, (left + met).values)
    assert (out["ceased"] > 0).all()
    # the stock residual's moves change the stock but are not endings
    res_in = xr.zeros_like(ds["n_left"]).where(ds["tier"] != "specialist", 40)
    res_out = xr.zeros_like(ds["n_left"]).where(ds["tier"] != "specialist", 15)
    res_in[{"year": 0}] = res_out[{"year": 0}] = 0
    # each year's net moves stay in the stock at every later census
    moved = ds.assign(n_residual_in=res_in, n_residual_out=res_out,
                      n_pupils=ds["n_pupils"] + (res_in - res_out).cumsum("year"))
    again = bt.engine_variables(moved, 2022)
    xr.testing.assert_equal(again["ceased"], out["ceased"])
    assert (again["ehcp"] != out["ehcp"]).any()
    # by placement as well: the same draws (the marginal does not change them), the totals
    # and the stock of each placement group
    by4 = prepare(c.replace_outputs(by=("tier", "age_group", "area", "placement")))
    ds4 = by4.dataset(0, simulate_run(by4, 0, by4.draws), {})
    out4 = bt.engine_variables(ds4, 2022)
    for v in ("ehcp", "new_plans", "sen_support", "ceased"):
        xr.testing.assert_equal(out4[v], out[v])
    place = out4["ehcp_placement"]
    assert place.dims == ("draw", "year", "placement", "area")
    assert place["placement"].values.tolist() == list(PLACEMENTS)
    xr.testing.assert_equal(place.sum("placement"), out["ehcp"].sum("age_group"))
    ref = ds4["n_pupils"].sel(tier="specialist", placement="special_state", year=[2023, 2024])
    np.testing.assert_array_equal(place.sel(placement="special_state").values,
                                  ref.sum("age_group").values)
    assert (place.sel(placement="special_state") > 0).all()
    assert set(bt.score_points(out4, record({SMALL_AREA: np.full(4, 300.0)},
                                           np.arange(2021, 2025)))["variable"]) == set(
        bt.VARIABLES)


# ----------------------------------------------------------------------------- the command


@pytest.fixture()
def fake_backtest(monkeypatch, scored):
    """Replace the calibrate-and-forecast loop with the hand-made points; record the call."""
    rec, _, pts = scored
    calls = []

    def rolling(cfg, origins, horizon, draws, **kw):
        calls.append({"origins": list(origins), "horizon": horizon, "draws": draws})
        tab = bt.summarise(pts)
        tab.attrs.update(points=pts, method="engine", record=rec)
        return tab

    monkeypatch.setattr(bt, "rolling_backtest", rolling)
    return calls


def test_cli_origins_range_writes_every_output(fake_backtest, tmp_path):
    from simsend.cli import main

    out = tmp_path / "bt.csv"
    res = CliRunner().invoke(main, ["backtest", str(BASE), "--origins", "2019-2021", "--out",
                                    str(out)])
    assert res.exit_code == 0, res.output
    assert fake_backtest == [{"origins": [2019, 2020, 2021], "horizon": 3, "draws": 200}]
    for name in ("bt.csv", "bt_points.csv", "bt.png", "bt_pit.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "bt_pit.png" in res.output and "naive_growth" in res.output
    tab = pd.read_csv(out)
    assert {"all", "small", "medium", "large"} <= set(tab["size_band"])
    res = CliRunner().invoke(main, ["backtest", str(BASE), "--origin", "2020", "--origin",
                                    "2019", "--horizon", "2", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert fake_backtest[-1] == {"origins": [2020, 2019], "horizon": 2, "draws": 200}


@pytest.mark.parametrize("args, says", [
    (["--origins", "2019-20"], "'2019-20' is not a range of census years"),
    (["--origins", "2022-2019"], "FIRST <= LAST"),
    (["--origins", "twenty"], "--origins"),
    (["--origins", "2019-2020", "--origin", "2021"], "not both"),
    ([], "--origin YEAR"),
])
def test_cli_origins_errors(fake_backtest, tmp_path, args, says):
    from simsend.cli import main

    res = CliRunner().invoke(main, ["backtest", str(BASE), *args, "--out",
                                    str(tmp_path / "bt.csv")])
    assert res.exit_code == 2 and says in res.output, res.output
    assert "Traceback" not in res.output and not fake_backtest
    assert not any(tmp_path.iterdir())
