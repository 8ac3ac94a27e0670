"""Pipeline rates per cell: kernels against references, posterior rates in runs, modifiers."""

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import simsend
from simsend.config import PIPELINE_RATES, PipelineConfig, parse
from simsend.config.scenarios import Modifier
from simsend.config.toml import ConfigError
from simsend.kernels.statutory import OUT, assessed_cells, pipeline_cells, pipeline_cells_serial
from simsend.rates.modifiers import apply_modifiers, compile_modifiers
from simsend.rates.pipeline import ESTIMATED
from simsend.statutory import ehc_pipeline as pipeline
from simsend.testing import pin_2022

ROOT = Path(__file__).resolve().parents[2]
K = {r: i for i, r in enumerate(PIPELINE_RATES)}


def three_rows():
    base = PipelineConfig().rates
    rows = np.tile(base, (3, 1))
    rows[:, K["p_refuse"]] = [0.1, 0.3, 0.6]
    rows[:, K["p_not_issue"]] = [0.02, 0.1, 0.2]
    rows[:, K["p_within_20_weeks"]] = [0.9, 0.5, 0.1]
    rows[:, K["p_appeal_content"]] = [0.0, 0.2, 0.5]
    return rows


def test_each_cell_draws_as_if_alone_with_its_rows_rates():
    """Reference: the one-rate-set kernel run with the cell's own row, cell by cell."""
    rng = np.random.default_rng(4)
    issued = rng.integers(0, 80, 60).astype(np.int64)
    unit = rng.integers(0, 3, 60).astype(np.int64)
    rows = three_rows()
    keys = np.array([21, 22, 23, 24, 25], np.uint64)
    out = np.zeros((len(OUT), issued.size))
    pipeline_cells(issued, unit, rows, keys, out)
    zero = np.zeros(issued.size, np.int64)
    for u in range(3):
        alone = np.zeros_like(out)
        pipeline_cells_serial(issued, np.ones(issued.size), zero, rows[u:u + 1], keys, alone)
        np.testing.assert_array_equal(out[:, unit == u], alone[:, unit == u])
    a = np.zeros(issued.size, np.int64)
    assessed_cells(issued, unit, np.ascontiguousarray(rows[:, K["p_not_issue"]]), keys[0], a)
    np.testing.assert_array_equal(a, out[OUT.index("n_assessed")])


def test_per_row_rates_give_their_expected_ratios():
    """Large cells: each row's refusals, not-issued and timely shares against its rates."""
    issued = np.full(3000, 60, np.int64)
    unit = np.arange(3000, dtype=np.int64) % 3
    rows = three_rows()
    out = np.zeros((len(OUT), issued.size))
    pipeline_cells(issued, unit, rows, np.array([5, 6, 7, 8, 9], np.uint64), out)
    o = dict(zip(OUT, out, strict=True))
    for u in range(3):
        m = unit == u
        for num, den, r in (("n_refused", "n_requests", "p_refuse"),
                            ("n_not_issued", "n_assessed", "p_not_issue"),
                            ("n_within_20_weeks", "n_issued", "p_within_20_weeks")):
            p, n = rows[u, K[r]], o[den][m].sum()
            assert abs(o[num][m].sum() / n - p) < 5 * np.sqrt(p * (1 - p) / n), (u, r)
        # appeals: exact expectation of the three binomials given the drawn counts
        want = (o["n_refused"][m].sum() * rows[u, K["p_appeal_refusal"]]
                + o["n_not_issued"][m].sum() * rows[u, K["p_appeal_not_issue"]]
                + o["n_issued"][m].sum() * rows[u, K["p_appeal_content"]])
        assert abs(o["n_appeals"][m].sum() - want) < 5 * np.sqrt(want) + 1e-9, (u, want)


def test_simulate_pipeline_rows_per_draw_on_threads_and_chunks(monkeypatch):
    import numba

    rng = np.random.default_rng(8)
    issued = rng.integers(0, 300, (4, 3, 90))
    unit = np.arange(90) % 3
    rates = np.broadcast_to(three_rows(), (4, 3, 3, len(PIPELINE_RATES))).copy()
    rates[1, :, :, K["p_refuse"]] = 0.45  # draws differ
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_PLANS", 0)
    numba.set_num_threads(2)
    try:
        many = pipeline.simulate_pipeline(issued, rates, [0, 1, 2, 3], 7, unit=unit)
        ones = [pipeline.simulate_pipeline(issued[j:j + 1], rates[j:j + 1], [j], 7, unit=unit)
                for j in range(4)]
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(many, np.concatenate(ones))
    again = pipeline.simulate_pipeline(issued, rates, [0, 1, 2, 3], 7, unit=unit)
    np.testing.assert_array_equal(many, again)
    # one rate set broadcast to every row draws the same numbers as the (Y, K) form
    one = PipelineConfig().rates
    flat = pipeline.simulate_pipeline(issued, np.tile(one, (3, 1)), [0, 1, 2, 3], 7)
    rows = pipeline.simulate_pipeline(issued, np.broadcast_to(one, (4, 3, 3, len(one))),
                                      [0, 1, 2, 3], 7, unit=unit)
    np.testing.assert_array_equal(flat, rows)


@pytest.mark.parametrize(("op", "value"), [("multiply", 1.8), ("add", -0.3), ("set", 0.7)])
def test_modify_rates_matches_apply_modifiers_row_by_row(op, value):
    mods = compile_modifiers([Modifier(key="scenarios.x.modify[0]", rate="pipeline.p_refuse",
                                       op=op, value=value, years=(2026, 2027)),
                              Modifier(key="scenarios.x.modify[1]",
                                       rate="pipeline.mean_weeks_over", op=op, value=value,
                                       years=(2027, 2030))], [])
    table = np.random.default_rng(1).uniform(0.05, 0.9, (2, 3, len(PIPELINE_RATES)))
    for year in (2025, 2026, 2027):
        got = pipeline.modify_rates(table, mods, year)
        for d in range(2):
            for u in range(3):
                want = apply_modifiers(mods, year, {"pipeline": table[d, u]})["pipeline"]
                np.testing.assert_array_equal(got[d, u], want)


# --------------------------------------------------------------------------- runs

AREAS = ("E06000017", "E06000001")  # Rutland, Hartlepool


def artefact(path, n_draws=5):
    """Rutland refuses 10% (+1% a draw), Hartlepool 60%; other rates alike."""
    base = {"p_refuse": (0.10, 0.60), "p_not_issue": (0.05, 0.05),
            "p_within_20_weeks": (0.5, 0.5), "p_appeal_refusal": (0.02, 0.02),
            "p_appeal_not_issue": (0.05, 0.05), "p_appeal_content": (0.1, 0.1)}
    step = np.arange(n_draws)[:, None] * np.array([0.01, 0.0])
    xr.Dataset({r: (("draw", "area"), (np.array(v)[None] + step * (r == "p_refuse"))
                    .astype(np.float32)) for r, v in base.items()},
               coords={"draw": np.arange(n_draws), "area": list(AREAS)}
               ).to_netcdf(path, engine="h5netcdf")
    return path


def config(extra="", pipeline_line="", by=None):
    text = pin_2022((ROOT / "configs" / "base.toml").read_text())
    text = text.replace('areas = ["E92000001"]', f"areas = {list(AREAS)!r}".replace("'", '"'))
    text = re.sub(r"(?m)^end_year = .*$", "end_year = 2025", text)
    if by is not None:
        text = re.sub(r"(?m)^by = .*$", f"by = {by}", text)
    text = text.replace('posterior = "pipeline_2025"\n', "")  # the shipped fit: not in tests
    text = text.replace("[pipeline]\n", f"[pipeline]\n{pipeline_line}\n")
    return parse(text + extra, "pipe.toml")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = artefact(tmp_path_factory.mktemp("pipe") / "pipe.nc")
    line = f'posterior = "{path.as_posix()}"'
    scen = """
[scenarios.strict]
[[scenarios.strict.modify]]
rate = "pipeline.p_refuse"
op = "set"
value = 0.0
years = "2024-2025"
"""
    with_post = simsend.run(config(scen, line), draws=4)
    without = simsend.run(config(scen), draws=4)
    return path, line, with_post, without


def _by_area(ds, v):
    return ds[v].sum([d for d in ds[v].dims if d not in ("scenario", "draw", "year", "area")])


def test_each_council_draws_with_its_own_posterior_rates(runs):
    _, _, ds, without = runs
    b = ds.sel(scenario="baseline")
    ref, req = _by_area(b, "n_refused"), _by_area(b, "n_requests")
    share = (ref.sel(year=slice(2023, None)).sum("year")
             / req.sel(year=slice(2023, None)).sum("year"))
    assert float(share.sel(area="E06000001").mean()) > 0.5  # Hartlepool: 60%
    assert float(share.sel(area="E06000017").mean()) < 0.2  # Rutland: 10% (+1% a draw)
    # plans issued come from the engine: the posterior changes the pipeline only
    np.testing.assert_array_equal(b["n_issued"].values,
                                  without.sel(scenario="baseline")["n_issued"].values)
    assert "pipeline_posterior" in ds.attrs["input_sha256"]


def test_modifiers_still_apply_on_top_of_the_posterior(runs):
    _, _, ds, _ = runs
    s = _by_area(ds.sel(scenario="strict"), "n_refused")
    assert float(s.sel(year=[2024, 2025]).sum()) == 0.0
    b = _by_area(ds.sel(scenario="baseline"), "n_refused")
    np.testing.assert_array_equal(s.sel(year=2023).values, b.sel(year=2023).values)


def test_same_seed_same_numbers(runs):
    path, line, ds, _ = runs
    again = simsend.run(config("", line), draws=3)
    for v in ("n_requests", "n_refused", "n_appeals", "n_within_20_weeks"):
        np.testing.assert_array_equal(again[v].values,
                                      ds[v].sel(scenario="baseline").isel(draw=slice(0, 3)).values)


def test_several_areas_need_area_in_the_marginals(runs):
    _, line, _, _ = runs
    with pytest.raises(ConfigError, match=r"pipe.toml: \[pipeline.posterior\] needs 'area'"):
        simsend.run(config("", line, by='["tier", "age_group"]'), draws=1)
    # said when the run is prepared, before any draw is simulated
    from simsend.runner.plan import prepare
    with pytest.raises(ConfigError, match=r"needs 'area' in outputs.by"):
        prepare(config("", line, by='["tier", "age_group"]'))


def test_config_key_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"pipeline.posterior.*no shipped pipeline posterior"):
        config("", 'posterior = "no_such_fit"')
    with pytest.raises(ConfigError, match=r"pipeline.posterior.*file not found"):
        config("", f'posterior = "{(tmp_path / "x.nc").as_posix()}"')
    p = artefact(tmp_path / "other.nc")
    xr.open_dataset(p).load().sel(area=["E06000017"]).to_netcdf(tmp_path / "rut.nc")
    cfg = config("", f'posterior = "{(tmp_path / "rut.nc").as_posix()}"')
    with pytest.raises(ConfigError, match=r"\[pipeline.posterior\] rut.nc: no pipeline rates "
                                          r"for area\(s\) \['E06000001'\]"):
        simsend.run(cfg, draws=1)
    assert set(ESTIMATED) <= set(PIPELINE_RATES)
