"""The assessing workforce: config errors, exact hours, coverage, and its effect on timeliness."""

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import stats

import simsend
from simsend.config import PIPELINE_RATES, ConfigError, PipelineConfig, parse
from simsend.config.scenarios import Modifier
from simsend.config.toml import Ctx as _Ctx
from simsend.config.workforce import parse_workforce
from simsend.kernels.statutory import (
    COVER_FLOOR,
    OUT,
    assessed_cells,
    pipeline_cells,
    pipeline_cells_cover,
)
from simsend.statutory.ehc_pipeline import _workforce, simulate_pipeline
from simsend.statutory.workforce import Capacity, capacity, coverage
from simsend.testing import pin_2022

ROOT = Path(__file__).resolve().parents[2]
EP = "educational_psychologist"
RATE = dict(zip(PIPELINE_RATES, PipelineConfig().rates, strict=True))


def small_text(extra="", end_year=2027):
    """configs/base.toml for Rutland (E06000017) over a short horizon, plus ``extra``."""
    text = pin_2022((ROOT / "configs" / "base.toml").read_text())
    text = text.replace('areas = ["E92000001"]', 'areas = ["E06000017"]')
    text = re.sub(r"(?m)^end_year = .*$", f"end_year = {end_year}", text)
    return text + "\n" + extra


def ep_table(staff="fte_per_10k = 1.0", extra=""):
    return f"""
[workforce.{EP}]
{staff}
hours_per_fte = 1300.0
statutory_share = 0.5
hours_per_assessment = 21.6
{extra}"""


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("table, key", [
    (ep_table(extra="colour = 1"), f"[workforce.{EP}.colour] unknown key"),
    (ep_table(staff="fte = 3.0\nfte_per_10k = 1.0"), f"[workforce.{EP}] give exactly one"),
    (ep_table(staff=""), f"[workforce.{EP}] give exactly one"),
    (ep_table(staff="fte = -1.0"), f"[workforce.{EP}.fte] value -1.0 out of range"),
    (ep_table(staff="fte = { E06000017 = \"x\" }"), f"[workforce.{EP}.fte.E06000017]"),
    (ep_table(staff="fte = {}"), f"[workforce.{EP}.fte] expected a number or a non-empty"),
    (ep_table().replace("statutory_share = 0.5", "statutory_share = 1.5"),
     f"[workforce.{EP}.statutory_share] probability 1.5"),
    (ep_table().replace("hours_per_assessment = 21.6\n", ""),
     f"[workforce.{EP}.hours_per_assessment] missing required key"),
    (ep_table().replace("hours_per_fte = 1300.0", "hours_per_fte = 9000.0"),
     f"[workforce.{EP}.hours_per_fte] value 9000.0 out of range"),
    (ep_table().replace(EP, "Educational-Psychologist"),
     "[workforce.Educational-Psychologist] a profession name"),
    ("[workforce]\nenabled = true\n", "[workforce] expected at least one profession"),
    ("[workforce]\nenabled = \"yes\"\n" + ep_table(), "[workforce.enabled] expected true"),
    ("[workforce]\nstaff = 3\n", "[workforce.staff] unknown key"),
])
def test_bad_workforce_config_names_the_key(table, key):
    with pytest.raises(ConfigError) as e:
        parse(small_text(table), "w.toml")
    assert str(e.value).startswith("w.toml: ") and key in str(e.value), str(e.value)


def mod(rate, extra=""):
    return f"""
[[scenarios.more.modify]]
rate = "{rate}"
op = "multiply"
value = 2.0
{extra}"""


@pytest.mark.parametrize("text, key", [
    (ep_table() + mod("workforce.speech_therapist.fte_per_10k"),
     "[scenarios.more.modify[0].rate] no profession 'speech_therapist'"),
    (mod(f"workforce.{EP}.fte"), "[scenarios.more.modify[0].rate] this config has no"),
    (ep_table() + mod(f"workforce.{EP}.fte"),
     f"[scenarios.more.modify[0].rate] [workforce.{EP}] gives 'fte_per_10k'"),
    (ep_table() + mod(f"workforce.{EP}"), "[scenarios.more.modify[0].rate] expected 'workforce."),
    (ep_table() + mod(f"workforce.{EP}.salary"), "[scenarios.more.modify[0].rate] expected"),
    (ep_table() + mod(f"workforce.{EP}.fte_per_10k", 'ages = "5-10"'),
     "[scenarios.more.modify[0].ages] not a filter"),
])
def test_bad_workforce_modifier_names_the_key(text, key):
    with pytest.raises(ConfigError) as e:
        parse(small_text(text), "w.toml")
    assert key in str(e.value), str(e.value)


def test_workforce_must_be_a_table():
    with pytest.raises(ConfigError, match=r"x.toml: \[workforce\] expected a table"):
        parse_workforce(_Ctx("x.toml"), 3)


def test_parse_forms_and_defaults():
    w = parse(small_text(ep_table(staff='fte = { E06000017 = 2.5, E92000001 = 2000 }')),
              "w.toml").workforce
    p = w.professions[0]
    assert w.enabled and w.names == (EP,) and p.staff_key == "fte"
    assert dict(p.fte) == {"E06000017": 2.5, "E92000001": 2000.0} and p.fte_per_10k is None
    assert (p.hours_per_fte, p.statutory_share, p.hours_per_assessment) == (1300, 0.5, 21.6)
    assert parse(small_text(), "w.toml").workforce is None
    off = parse(small_text("[workforce]\nenabled = false\n" + ep_table()), "w.toml").workforce
    assert not off.enabled


def test_fte_table_without_a_run_area_fails_before_the_run():
    cfg = parse(small_text(ep_table(staff="fte = { E92000001 = 2000.0 }")), "w.toml")
    with pytest.raises(ConfigError, match=re.escape(f"[workforce.{EP}.fte] no FTE for area(s) "
                                                    "['E06000017']")):
        simsend.run(cfg, draws=1)


# --------------------------------------------------------------------------- kernels


def test_thinning_law_and_monotone_per_cell():
    rates = PipelineConfig().rates
    issued = np.full(3000, 40, np.int64)
    keys = np.arange(1, 6, dtype=np.uint64) * np.uint64(987654321)
    full = np.zeros((len(OUT), issued.size))
    pipeline_cells(issued, np.zeros(issued.size, np.int64), rates[None], keys, full)
    one = np.zeros_like(full)
    pipeline_cells_cover(issued, np.ones(issued.size), np.zeros(issued.size, np.int64),
                         rates[None], keys, one)
    np.testing.assert_array_equal(one, full)  # coverage 1: nothing drawn, same bits
    prev = full
    k20, kw = OUT.index("n_within_20_weeks"), OUT.index("dur_weeks_total")
    other = [i for i in range(len(OUT)) if i not in (k20, kw)]
    for r in (0.9, 0.6, 0.3, 0.05, 0.0):
        out = np.zeros_like(full)
        pipeline_cells_cover(issued, np.full(issued.size, r), np.zeros(issued.size, np.int64),
                             rates[None], keys, out)
        np.testing.assert_array_equal(out[other], full[other])
        assert (out[k20] <= prev[k20]).all() and (out[kw] >= prev[kw]).all()
        # law: within 20 weeks ~ Binomial(issued, p20 r) in every cell, summed over cells
        n, p = issued.sum(), RATE["p_within_20_weeks"] * r
        assert stats.binom(n, p).cdf(out[k20].sum()) > 1e-6 < stats.binom(n, p).sf(
            out[k20].sum() - 1), (r, out[k20].sum() / n, p)
        # weeks: timely plans w_in each, late ones 20 + exponential of mean w_over / max(r, 0.1)
        late = issued.sum() - out[k20].sum()
        w_late = RATE["mean_weeks_over"] / max(r, COVER_FLOOR)
        want = out[k20].sum() * RATE["mean_weeks_within"] + late * (20 + w_late)
        assert abs(out[kw].sum() - want) < 5 * w_late * np.sqrt(late), (r, out[kw].sum(), want)
        prev = out
    assert prev[k20].sum() == 0


def test_assessed_cells_are_the_pipelines_assessments():
    issued = np.arange(0, 300, 3, dtype=np.int64)
    keys = np.arange(1, 6, dtype=np.uint64) * np.uint64(777)
    out = np.zeros((len(OUT), issued.size))
    zero = np.zeros(issued.size, np.int64)
    pipeline_cells(issued, zero, PipelineConfig().rates[None], keys, out)
    a = np.zeros(issued.size, np.int64)
    assessed_cells(issued, zero, np.array([RATE["p_not_issue"]]), keys[0], a)
    np.testing.assert_array_equal(a, out[OUT.index("n_assessed")])


# --------------------------------------------------------------------------- coverage


def cap(avail, total, hpa, pooled):
    avail, total = np.asarray(avail, float), np.asarray(total, float)
    return Capacity(("ep", "slt")[:len(pooled)], ("a", "b"), np.asarray(hpa, float),
                    avail, total, np.asarray(pooled))


def test_coverage_by_area_pooled_min_over_professions_and_nothing_needed():
    assessed = np.array([[[10, 30], [0, 0]]])  # (D=1, Y=2, U=2)
    hpa = [[2.0, 1.0], [2.0, 1.0]]
    c = cap([[[10.0, 90.0], [np.nan, np.nan]]] * 2, [[100.0, 20.0]] * 2, hpa, [False, True])
    needed, avail, cover = coverage(assessed, c)
    np.testing.assert_array_equal(needed[0, 0], [[20.0, 60.0], [10.0, 30.0]])
    # ep by area: 10/20 and 90/60 -> 0.5, 1; slt pooled: 20/40 = 0.5 everywhere, split 1:3
    np.testing.assert_array_equal(avail[0, 0, 1], [5.0, 15.0])
    np.testing.assert_array_equal(cover[0, 0], [0.5, 0.5])
    np.testing.assert_array_equal(cover[0, 1], [1.0, 1.0])  # nothing needed
    np.testing.assert_array_equal(avail[0, 1, 1], [10.0, 10.0])  # split equally then
    assert (cover <= 1).all()


def test_capacity_applies_modifiers_by_year_with_ramp():
    w = parse_workforce(_Ctx("w.toml"), {"ep": {
        "fte": {"a": 2.0, "b": 4.0}, "hours_per_fte": 1000.0, "statutory_share": 0.8,
        "hours_per_assessment": 10.0}})
    mods = [Modifier("workforce.ep.fte", "multiply", 3.0, years=(2024, 2030), ramp=2),
            Modifier("workforce.ep.statutory_share", "add", 0.5, years=(2025, 2025)),
            Modifier("workforce.ep.fte", "add", 1.0, years=(2026, 2026))]
    c = capacity(w, mods, [2022, 2023, 2024, 2025, 2026], ["a", "b"], ["b", "a"],
                 np.array([1.0, 1.0]))
    per = 1000.0 * 0.8
    np.testing.assert_allclose(c.available[:, 0], [[4 * per, 2 * per], [4 * per, 2 * per],
                                                   [8 * per, 4 * per], [12 * 1000, 6 * 1000],
                                                   [13 * per, 7 * per]], rtol=1e-12)
    np.testing.assert_allclose(c.total[:, 0], c.available[:, 0].sum(-1))
    # the same table without an area dimension: the run's areas summed
    c1 = capacity(w, (), [2022], ["a", "b"], ["all"], np.array([1.0]))
    assert c1.available[0, 0, 0] == 6 * per


# --------------------------------------------------------------------------- runs


def fake_results(by_area=True, seed=5):
    """A results Dataset with just what the workforce needs: plans issued and the baseline."""
    g = np.random.default_rng(seed)
    dims = ("draw", "year", "tier", "area") if by_area else ("draw", "year", "tier")
    shape = (3, 4, 4, 2)[:len(dims)]
    coords = {"draw": np.arange(3), "year": np.arange(2022, 2026),
              "tier": ["universal", "targeted", "targeted_plus", "specialist"]}
    if by_area:
        coords["area"] = ["A1", "A2"]
    issued = g.integers(20, 200, shape).astype(np.float32)
    pupils = g.integers(5000, 20000, shape).astype(np.float32)
    return xr.Dataset({"n_to_specialist": (dims, issued), "n_pupils": (dims, pupils)},
                      coords=coords, attrs={"areas": '["A1", "A2"]'})


def workforce_of(ds, staff):
    w = parse_workforce(_Ctx("w.toml"), {"ep": {
        **staff, "hours_per_fte": 1300.0, "statutory_share": 0.5, "hours_per_assessment": 20.0}})
    rates = np.tile(PipelineConfig().rates, (ds.sizes["year"], 1))
    issued = ds["n_to_specialist"].values.astype(np.int64).reshape(3, 4, -1)
    ref = simulate_pipeline(issued, rates, ds["draw"].values, 11)  # without a workforce
    cover, wv = _workforce(ds, issued, rates, 11, w, ())
    assessed = ref[:, :, OUT.index("n_assessed")].reshape(ds["n_to_specialist"].shape)
    return cover, wv, assessed


@pytest.mark.parametrize("by_area", [True, False])
def test_how_staff_reach_areas(by_area):
    ds = fake_results(by_area)
    per_fte = 1300.0 * 0.5
    for staff in ({"fte": {"A1": 3.0, "A2": 5.0, "X": 1.0}}, {"fte": 8.0},
                  {"fte_per_10k": 2.0}):
        cover, wv, assessed = workforce_of(ds, staff)
        need = wv["dur_workforce_hours_needed"].sel(profession="ep")
        have = wv["dur_workforce_hours_available"].sel(profession="ep")
        a = assessed.astype(np.float64).sum(axis=2)  # over tier: (draw, year[, area])
        np.testing.assert_array_equal(need.values[:, 1:], a[:, 1:] * 20.0)  # exactly
        if "fte_per_10k" in staff:
            pop = ds["n_pupils"].isel(draw=0, year=0).sum("tier").values.astype(float)
            want = np.broadcast_to(2.0 * pop / 1e4 * per_fte, have.shape[:1] + pop.shape)
            for y in range(1, 4):
                np.testing.assert_allclose(have.values[:, y], want, rtol=1e-12)
        elif isinstance(staff["fte"], dict):
            want = np.array([3.0, 5.0]) * per_fte if by_area else 8.0 * per_fte
            np.testing.assert_allclose(have.values[:, 1:], np.broadcast_to(
                want, have.values[:, 1:].shape), rtol=1e-12)
        else:  # one number for the run: split in proportion to need, same coverage everywhere
            tot = have.values[:, 1:].sum(-1) if by_area else have.values[:, 1:]
            np.testing.assert_allclose(tot, 8.0 * per_fte, rtol=1e-12)
            if by_area:
                np.testing.assert_allclose(
                    wv["rel_workforce_coverage"].values[:, 1:],
                    np.minimum(1, 8.0 * per_fte / need.values[:, 1:].sum(-1, keepdims=True)
                               * np.ones(2)), rtol=1e-12)
        np.testing.assert_allclose(wv["rel_workforce_coverage"].values[:, 1:],
                                   np.minimum(1.0, have.values[:, 1:] / need.values[:, 1:]),
                                   rtol=1e-12)
        assert np.isnan(wv["rel_workforce_coverage"].values[:, 0]).all()
        # every cell carries its area's coverage
        cv = wv["rel_workforce_coverage"].values
        cells = cover.reshape(ds["n_to_specialist"].shape)
        np.testing.assert_array_equal(cells[:, 1:], np.broadcast_to(
            np.expand_dims(cv, 2), cells.shape)[:, 1:])


def share(ds):
    dims = [d for d in ds["n_issued"].dims if d not in ("scenario", "draw", "year")]
    w, i = ds["n_within_20_weeks"].sum(dims), ds["n_issued"].sum(dims)
    return w, i


SCEN = f"""
[scenarios.half]
[[scenarios.half.modify]]
rate = "workforce.{EP}.fte_per_10k"
op = "multiply"
value = 0.5
[scenarios.double]
[[scenarios.double.modify]]
rate = "workforce.{EP}.fte_per_10k"
op = "multiply"
value = 2.0
[scenarios.add_staff]
[[scenarios.add_staff.modify]]
rate = "workforce.{EP}.fte_per_10k"
op = "add"
value = 1.0
years = "2026-2027"
[scenarios.ample]
[[scenarios.ample.modify]]
rate = "workforce.{EP}.fte_per_10k"
op = "set"
value = 1000.0
"""


FTE = 0.5


@pytest.fixture(scope="module")
def runs():
    # 0.5 FTE per 10,000: binding in every draw and year (coverage at most 0.74 under the
    # damped 2022 posterior; 1.0 reached full coverage in some draws)
    with_wf = simsend.run(parse(small_text(ep_table(staff=f"fte_per_10k = {FTE}") + SCEN),
                                "w.toml"), draws=6)
    without = simsend.run(parse(small_text(), "plain.toml"), draws=6)
    off = simsend.run(parse(small_text("[workforce]\nenabled = false\n" + ep_table()),
                            "off.toml"), draws=2)
    return with_wf, without, off


PIPE = [*OUT, "n_ceased_needs_met", "n_ceased_left"]
WF = ["dur_workforce_hours_needed", "dur_workforce_hours_available", "rel_workforce_coverage"]


def test_no_workforce_or_ample_staff_change_nothing(runs):
    ds, plain, off = runs
    assert not any(v in plain for v in WF) and not any(v in off for v in WF)
    ample = ds.sel(scenario="ample")
    assert float(ample["rel_workforce_coverage"].sel(year=slice(2023, None)).min()) == 1.0
    for v in plain.data_vars:
        np.testing.assert_array_equal(ample[v].values, plain[v].values, err_msg=v)
        want = plain[v].isel(draw=[0, 1]) if "draw" in plain[v].dims else plain[v]  # places
        np.testing.assert_array_equal(off[v].values, want.values, err_msg=v)


def test_hours_needed_are_assessments_times_hours_exactly(runs):
    ds = runs[0]
    other = [d for d in ds["n_assessed"].dims if d not in ("scenario", "draw", "year", "area")]
    a = ds["n_assessed"].sum(other).astype(np.float64)
    need = ds["dur_workforce_hours_needed"].sel(profession=EP)
    np.testing.assert_array_equal(need.sel(year=slice(2023, None)).values,
                                  (a * 21.6).sel(year=slice(2023, None)).transpose(
                                      *need.dims).values)
    pop = float(ds["n_pupils"].isel(scenario=0, draw=0, year=0).sum())
    have = ds["dur_workforce_hours_available"].sel(profession=EP, scenario="baseline")
    np.testing.assert_allclose(have.sel(year=slice(2023, None)), FTE * pop / 1e4 * 650.0,
                               rtol=1e-12)
    assert float(ds["rel_workforce_coverage"].sel(scenario="baseline").max()) < 1  # binding


def test_halving_staff_lowers_the_20_week_share_doubling_cannot(runs):
    ds = runs[0]
    b, h, d = (ds.sel(scenario=s) for s in ("baseline", "half", "double"))
    k = "n_within_20_weeks"
    sim = {"year": slice(2023, None)}
    # cell by cell, draw by draw: never more plans on time with fewer staff, never fewer
    # with more; longer waits with fewer; everything else identical
    assert (h[k] <= b[k]).sel(sim).all() and (d[k] >= b[k]).sel(sim).all()
    assert (h["dur_weeks_total"] >= b["dur_weeks_total"]).sel(sim).all()
    assert (d["dur_weeks_total"] <= b["dur_weeks_total"]).sel(sim).all()
    for v in ("n_requests", "n_assessed", "n_issued", "n_appeals", "n_pupils"):
        np.testing.assert_array_equal(h[v].values, b[v].values)
    wb, ib = share(b)
    wh, _ = share(h)
    wd, _ = share(d)
    # halving (staff binding): the share falls in every simulated year, summed over draws
    assert (wh.sel(sim).sum("draw") < wb.sel(sim).sum("draw")).all()
    assert (wd.sel(sim) >= wb.sel(sim)).all()
    assert (wd.sel(sim).sum() > wb.sel(sim).sum())  # staff binding: more staff, more on time
    ratio = (wh.sel(sim).sum() / ib.sel(sim).sum()) / (wb.sel(sim).sum() / ib.sel(sim).sum())
    assert 0.35 < float(ratio) < 0.65  # p20 r with r halved: about half


def test_adding_staff_raises_the_share_only_while_it_applies(runs):
    ds = runs[0]
    b, s = ds.sel(scenario="baseline"), ds.sel(scenario="add_staff")
    before = {"year": [2022, 2023, 2024, 2025]}
    for v in [*PIPE, *WF]:
        np.testing.assert_array_equal(s[v].sel(before).values, b[v].sel(before).values, v)
    during = {"year": [2026, 2027]}
    wb, _ = share(b)
    ws, _ = share(s)
    assert (ws.sel(during) >= wb.sel(during)).all()
    assert (ws.sel(during).sum("draw") > wb.sel(during).sum("draw")).all()
    assert (s["rel_workforce_coverage"].sel(during) > b["rel_workforce_coverage"].sel(
        during)).all()
