"""The statutory pipeline: exact laws of its draws, identities, and a request surge."""

import re
from pathlib import Path

import numpy as np
from scipy import stats

import simsend
from simsend.config import PIPELINE_RATES, PipelineConfig, parse
from simsend.engine.streams import STREAMS, draw_keys
from simsend.kernels.statutory import OUT, negbin_failures, pipeline_cells
from simsend.testing import pin_2022

ROOT = Path(__file__).resolve().parents[2]


def test_first_seven_stream_keys_unchanged_by_appended_streams():
    ss = np.random.SeedSequence(20260123, spawn_key=(5,))
    old = ss.generate_state(256 * 7, dtype=np.uint64).reshape(256, 7)[:14]
    k = draw_keys(20260123, 5, 14)
    assert k.shape == (14, len(STREAMS))
    np.testing.assert_array_equal(k[:, :7], old)
    assert len(np.unique(k)) == k.size


def test_negbin_matches_numpy_law():
    r, p_fail, n = 7, 0.3, 20000
    x = np.array([negbin_failures(r, p_fail, np.uint64(9), np.uint64(c)) for c in range(n)])
    # NumPy's negative_binomial(r, p) counts failures before r successes of probability p
    pmf = stats.nbinom(r, 1 - p_fail).pmf(np.arange(12))
    obs = np.bincount(np.minimum(x, 12), minlength=13)
    exp = np.append(pmf * n, n * (1 - pmf.sum()))
    chi2 = ((obs - exp) ** 2 / exp).sum()
    assert chi2 < stats.chi2(12).ppf(0.999), chi2
    assert negbin_failures(0, 0.3, np.uint64(1), np.uint64(0)) == 0
    assert negbin_failures(5, 0.0, np.uint64(1), np.uint64(0)) == 0


def test_pipeline_identities_and_rates():
    rates = PipelineConfig().rates
    issued = np.full(400, 250, np.int64)
    keys = np.arange(1, 6, dtype=np.uint64) * np.uint64(12345)
    out = np.zeros((len(OUT), issued.size))
    pipeline_cells(issued, np.zeros(issued.size, np.int64), rates[None], keys, out)
    o = dict(zip(OUT, out, strict=True))
    np.testing.assert_array_equal(o["n_issued"], issued)
    np.testing.assert_array_equal(o["n_assessed"], o["n_issued"] + o["n_not_issued"])
    np.testing.assert_array_equal(o["n_requests"], o["n_assessed"] + o["n_refused"])
    assert (o["n_within_20_weeks"] <= issued).all() and (o["n_appeals_upheld"] <= o["n_appeals"]).all()
    r = dict(zip(PIPELINE_RATES, rates, strict=True))
    tot = {k: v.sum() for k, v in o.items()}
    # ratios of large totals against the rates (binomial standard errors, 5 sigma)
    for num, den, p in (("n_refused", "n_requests", r["p_refuse"]),
                        ("n_not_issued", "n_assessed", r["p_not_issue"]),
                        ("n_within_20_weeks", "n_issued", r["p_within_20_weeks"])):
        se = np.sqrt(p * (1 - p) / tot[den])
        assert abs(tot[num] / tot[den] - p) < 5 * se, (num, tot[num] / tot[den], p)
    n_late = tot["n_issued"] - tot["n_within_20_weeks"]
    mean_w = (tot["n_within_20_weeks"] * r["mean_weeks_within"] + n_late * (20 + r["mean_weeks_over"]))
    assert abs(tot["dur_weeks_total"] - mean_w) < 5 * r["mean_weeks_over"] * np.sqrt(n_late)
    again = np.zeros_like(out)
    pipeline_cells(issued, np.zeros(issued.size, np.int64), rates[None], keys, again)
    np.testing.assert_array_equal(out, again)


def small(extra=""):
    # the config's fixed pipeline rates (tests/statutory/test_pipeline_rates.py runs the posterior)
    text = pin_2022((ROOT / "configs" / "base.toml").read_text())
    text = text.replace('posterior = "pipeline_2025"\n', "")
    text = text.replace('areas = ["E92000001"]', 'areas = ["E06000017"]')
    text = re.sub(r"(?m)^end_year = .*$", "end_year = 2028", text)
    return parse(text + extra, "small.toml")


def test_request_surge_raises_requests_assessments_plans_only_while_it_applies():
    cfg = small("""
[scenarios.surge]
events = [{ type = "request_surge", factor = 1.33, years = "2025-2026" }]
""")
    ds = simsend.run(cfg, draws=30)
    dims = [d for d in ds["n_requests"].dims if d not in ("scenario", "draw", "year")]
    for v in ("n_requests", "n_assessed", "n_issued"):
        tot = ds[v].sum(dims)
        b, s = tot.sel(scenario="baseline"), tot.sel(scenario="surge")
        before = [2023, 2024]
        np.testing.assert_array_equal(s.sel(year=before).values, b.sel(year=before).values)
        if v == "n_issued":  # same uniforms, higher thresholds: never fewer plans in 2025
            assert (s.sel(year=2025) >= b.sel(year=2025)).all()
        during = s.sel(year=[2025, 2026]).sum() / b.sel(year=[2025, 2026]).sum()
        assert 1.15 < float(during) < 1.5, (v, float(during))
        after = s.sel(year=[2027, 2028]).mean() / b.sel(year=[2027, 2028]).mean()
        assert float(after) < 1.05, (v, float(after))  # not raised once it ends
    # plans issued are the engine's moves into the specialist tier
    esc = ds["n_escalated"].sel(tier="specialist").sum([d for d in dims if d != "tier"])
    np.testing.assert_array_equal(ds["n_issued"].sum(dims).sel(year=slice(2023, None)).values,
                                  esc.sel(year=slice(2023, None)).values)


def test_pipeline_rate_modifier_and_disabled():
    cfg = small("""
[scenarios.strict_la]
[[scenarios.strict_la.modify]]
rate = "pipeline.p_refuse"
op = "set"
value = 0.5
years = "2027-2028"
""")
    ds = simsend.run(cfg, draws=10)
    dims = [d for d in ds["n_refused"].dims if d not in ("scenario", "draw", "year")]
    ref = ds["n_refused"].sum(dims)
    np.testing.assert_array_equal(ref.sel(scenario="strict_la", year=[2023, 2024, 2025, 2026]),
                                  ref.sel(scenario="baseline", year=[2023, 2024, 2025, 2026]))
    assert (ref.sel(scenario="strict_la", year=2027) > ref.sel(scenario="baseline",
                                                             year=2027)).all()
    np.testing.assert_array_equal(ds["n_issued"].sel(scenario="strict_la"),
                                  ds["n_issued"].sel(scenario="baseline"))
    text = small().text.replace("[pipeline]\n", "[pipeline]\nenabled = false\n")
    off = simsend.run(parse(text, "off.toml"), draws=2)
    assert "n_requests" not in off and "n_pupils" in off


def test_ceased_plans_come_from_the_engine_flows():
    # Rutland: a few plans a year end with needs met (England's share 0.045 to 2022), so
    # enough draws that some do
    ds = simsend.run(small(), draws=12)
    sp = ds["n_transitions"].sel(tier_from="specialist",
                                 tier=["targeted", "targeted_plus"]).sum("tier")
    np.testing.assert_array_equal(ds["n_ceased_needs_met"].values[:, 1:], sp.values[:, 1:])
    to_u = ds["n_transitions"].sel(tier_from="specialist", tier="universal")
    np.testing.assert_array_equal(ds["n_ceased_no_support"].values[:, 1:], to_u.values[:, 1:])
    np.testing.assert_array_equal(ds["n_ceased_left"].values,
                                  ds["n_left"].sel(tier="specialist").values)
    assert float(ds["n_ceased_needs_met"].sum()) > 0
    # left = aged out past 25 + moved; the aged-out are the specialist leavers aged 25
    np.testing.assert_array_equal(ds["n_ceased_aged_out"] + ds["n_ceased_moved"],
                                  ds["n_ceased_left"])
    assert (ds["n_ceased_moved"].fillna(0) >= 0).all()
    assert float(ds["n_ceased_aged_out"].sel(year=2024).sum()) > 0


def test_requests_by_the_tier_they_come_from():
    """Requests, assessments and plans carry the tier the child moved from; plans add up to
    the engine's moves into the specialist tier, and only the targeted tiers request."""
    ds = simsend.run(small(), draws=3)
    assert "tier" in ds["n_requests"].dims
    other = [d for d in ds["n_requests"].dims if d not in ("draw", "year", "tier")]
    for v in ("n_requests", "n_assessed", "n_issued", "n_to_specialist"):
        by_tier = ds[v].sel(year=slice(2023, None)).sum(other)
        assert float(by_tier.sel(tier=["universal", "specialist"]).sum()) == 0, v
        assert (by_tier.sel(tier="targeted").sum() > 0) and \
            (by_tier.sel(tier="targeted_plus").sum() > 0), v
    issued = ds["n_issued"].sel(year=slice(2023, None)).sum(other)
    np.testing.assert_array_equal(issued.values, ds["n_to_specialist"].sel(
        year=slice(2023, None)).sum(other).values)
    # summed over the tier moved from, the same as the moves into the specialist tier
    np.testing.assert_array_equal(
        ds["n_to_specialist"].sum(["tier", *other]).values[:, 1:],
        ds["n_escalated"].sel(tier="specialist").sum(other).values[:, 1:])
    # and the same as n_transitions into specialist from each tier (draw, year only)
    tr = ds["n_transitions"].sel(tier="specialist", tier_from=["targeted", "targeted_plus"])
    np.testing.assert_array_equal(
        ds["n_to_specialist"].sel(tier=["targeted", "targeted_plus"]).sum(other)
        .values[:, 1:], tr.values[:, 1:])


def _cell_before_workforce(n_i, rates, keys, c):
    """The pipeline of one cell as drawn before the workforce existed (plain Python)."""
    from simsend.kernels.sampling import binomial
    from simsend.kernels.statutory import exp_sum

    p_ref, p_ni, p20, ap_ref, ap_ni, ap_con, p_up, w_in, w_over = rates[:9]
    cu = np.uint64(c)
    n_ni = negbin_failures(n_i, p_ni, keys[0], cu)
    n_a = n_i + n_ni
    n_f = negbin_failures(n_a, p_ref, keys[1], cu)
    n_20 = binomial(n_i, p20, keys[2], np.uint64(2 * c))
    weeks = n_20 * w_in + (n_i - n_20) * 20.0 + exp_sum(n_i - n_20, w_over, keys[2],
                                                         np.uint64(2 * c + 1))
    n_ap = (binomial(n_f, ap_ref, keys[3], np.uint64(3 * c))
            + binomial(n_ni, ap_ni, keys[3], np.uint64(3 * c + 1))
            + binomial(n_i, ap_con, keys[3], np.uint64(3 * c + 2)))
    return [n_a + n_f, n_f, n_a, n_ni, n_i, n_20, weeks, n_ap,
            binomial(n_ap, p_up, keys[4], cu)]


def test_pipeline_without_workforce_draws_as_before():
    """No workforce (coverage 1): every cell's draws are those of the kernel before it."""
    rates = PipelineConfig().rates
    issued = np.array([0, 1, 2, 7, 40, 250, 3000, 0, 31], np.int64)
    keys = np.arange(3, 8, dtype=np.uint64) * np.uint64(2654435761)
    out = np.zeros((len(OUT), issued.size))
    pipeline_cells(issued, np.zeros(issued.size, np.int64), rates[None], keys, out)
    want = np.array([_cell_before_workforce(int(n), rates, keys, c)
                     for c, n in enumerate(issued)], np.float64).T
    np.testing.assert_array_equal(out, want)


def test_serial_pipeline_draws_equal_the_parallel_ones():
    from simsend.kernels.statutory import (
        pipeline_cells,
        pipeline_cells_cover,
        pipeline_cells_serial,
    )

    rng = np.random.default_rng(3)
    issued = rng.integers(0, 60, 300).astype(np.int64)
    rates = np.array([0.22, 0.06, 0.6, 0.04, 0.1, 0.05, 0.95, 16.0, 12.0])
    keys = np.array([11, 12, 13, 14, 15], np.uint64)
    par, ser = np.zeros((9, 300)), np.zeros((9, 300))
    # three rate rows, cells spread over them (as a run's areas)
    unit = rng.integers(0, 3, 300).astype(np.int64)
    rates = np.stack([rates, rates * 0.5, np.minimum(rates * 1.5, [1] * 7 + [99] * 2)])
    pipeline_cells(issued, unit, rates, keys, par)
    pipeline_cells_serial(issued, np.ones(300), unit, rates, keys, ser)
    np.testing.assert_array_equal(par, ser)
    cover = rng.uniform(0.3, 1.0, 300)
    pipeline_cells_cover(issued, cover, unit, rates, keys, par)
    pipeline_cells_serial(issued, cover, unit, rates, keys, ser)
    np.testing.assert_array_equal(par, ser)


def test_draws_on_threads_equal_parallel_kernel(monkeypatch):
    # Several draws share two threads with the one-thread kernel; a lone draw uses the
    # parallel kernels (the threshold lowered so that they run), with and without coverage.
    import numba

    from simsend.statutory import ehc_pipeline as pipeline

    rng = np.random.default_rng(3)
    issued = rng.integers(0, 400, (4, 5, 300))
    rates = np.tile(PipelineConfig().rates, (5, 1))
    cover = rng.uniform(0.5, 1.0, issued.shape)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_PLANS", 0)
    numba.set_num_threads(2)
    try:
        for cov in (None, cover):
            many = pipeline.simulate_pipeline(issued, rates, [0, 1, 2, 3], 11, cover=cov)
            ones = [pipeline.simulate_pipeline(
                issued[j:j + 1], rates, [j], 11, cover=None if cov is None else cov[j:j + 1])
                for j in range(4)]
            np.testing.assert_array_equal(many, np.concatenate(ones))
            assert np.isnan(many[:, 0]).all() and not np.isnan(many[:, 1:]).any()
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
