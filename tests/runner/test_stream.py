"""Streaming a run into Zarr chunk by chunk (simsend.runner.stream): the store equals the in-memory run.

The cluster variants (a LocalCluster of two processes) are in tests/test_distributed.py, which
owns the module's cluster.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import simsend
from simsend.cli import main
from simsend.config import parse
from simsend.io import read_zarr, write_zarr
from simsend.runner.distributed import Cluster
from simsend.runner.stream import CHUNK_BYTES, default_draw_chunk, run_zarr
from simsend.testing import pin_2022

ROOT = Path(__file__).resolve().parents[2]
WALL_TIMES = ("created_at", "timings")
AREAS = '["E06000017", "E06000001"]'  # Rutland, Hartlepool: small, with places in the plan


def scenario_cfg(tmp_path, draws=4):
    """configs/base.toml (with its provision plan) for two small councils, two scenarios."""
    text = pin_2022((ROOT / "configs" / "base.toml").read_text())
    text = re.sub(r"(?m)^areas = .*$", f"areas = {AREAS}", text)
    text = re.sub(r"(?m)^end_year = .*$", "end_year = 2025", text)
    text = re.sub(r"(?m)^draws = .*$", f"draws = {draws}", text)
    text += """
[scenarios.surge]
description = "requests up a half"
events = [{ type = "request_surge", factor = 1.5, years = "2023-2024" }]
[[scenarios.slow.modify]]
rate = "pipeline.p_within_20_weeks"
op = "multiply"
value = 0.5
"""
    return parse(text, "streamed.toml", tmp_path)


def assert_same(streamed: xr.Dataset, ds: xr.Dataset) -> None:
    """Identical values, dims, coords, dtypes and attrs, except the attrs holding wall times."""
    assert set(streamed.variables) == set(ds.variables)
    for name, v in ds.variables.items():
        assert streamed[name].dims == v.dims, name
        assert streamed[name].dtype == v.dtype, name
    keep = [k for k in ds.attrs if k not in WALL_TIMES]
    assert sorted(k for k in streamed.attrs if k not in WALL_TIMES) == sorted(keep)
    a, b = streamed.copy(), ds.copy()
    a.attrs = {k: streamed.attrs[k] for k in keep}
    b.attrs = {k: ds.attrs[k] for k in keep}
    xr.testing.assert_identical(a, b)  # exact equality: no tolerance, NaN equal to NaN


@pytest.fixture(scope="module")
def council():
    cfg = simsend.load(ROOT / "configs" / "council.toml").replace_run(end_year=2028, draws=7)
    return cfg, simsend.run(cfg)


@pytest.mark.parametrize("chunk", [1, 3, 7, None])
def test_streamed_store_equals_the_in_memory_run(council, tmp_path, chunk):
    cfg, ds = council
    assert float(ds["n_requests"].sum()) > 0 and int(ds["n_pupils"].sum()) > 0
    path = run_zarr(cfg, tmp_path / "r.zarr", cluster=Cluster(draw_chunk=chunk))
    got = read_zarr(path)
    assert_same(got, ds)
    # the same as writing the in-memory Dataset, and chunked by draws on disk
    write_zarr(ds, tmp_path / "whole.zarr")
    assert_same(got, read_zarr(tmp_path / "whole.zarr"))
    size = chunk or default_draw_chunk(7, 4, ds["n_pupils"][0, 0].size)
    with xr.open_zarr(path) as lazy:
        assert lazy["n_pupils"].chunks[0][0] == size
    assert json.loads(got.attrs["timings"])["streamed_draw_chunk"] == size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.zarr", "whole.zarr"]


def test_scenarios_stream_by_scenario_and_chunk_of_draws(tmp_path):
    cfg = scenario_cfg(tmp_path)
    ds = simsend.run(cfg)
    assert ds["n_pupils"].dims[:2] == ("scenario", "draw") and ds.sizes["scenario"] == 3
    ticks = []
    got = read_zarr(run_zarr(cfg, tmp_path / "s.zarr", cluster=Cluster(draw_chunk=3),
                             progress=lambda d, t: ticks.append((d, t))))
    assert_same(got, ds)
    assert ticks[-1] == (12, 12) and [d for d, _ in ticks] == sorted(d for d, _ in ticks)
    # one scenario's name picks it (and the baseline), as simsend.run does
    one = simsend.run(cfg, scenario="surge")
    assert_same(read_zarr(run_zarr(cfg, tmp_path / "one.zarr", scenario="surge")), one)


def test_provision_tallies_stream_too(tmp_path):
    """The optional allocation tallies (Outputs.alloc) come through the chunks unchanged."""
    from simsend.engine.tally import ALLOC_VARS

    cfg = scenario_cfg(tmp_path, draws=3)
    cfg = parse(cfg.text.split("\n[scenarios.")[0], "plain.toml", tmp_path)
    ds = simsend.run(cfg)
    assert set(ALLOC_VARS) <= set(ds.data_vars)
    got = read_zarr(run_zarr(cfg, tmp_path / "p.zarr", cluster=Cluster(draw_chunk=2)))
    assert_same(got, ds)


def test_a_failed_run_leaves_no_partial_store_and_keeps_the_old_one(council, tmp_path,
                                                                   monkeypatch):
    import simsend.runner.forecast as engine  # where every path calls the engine

    cfg, ds = council
    path = run_zarr(cfg, tmp_path / "r.zarr", draws=2)
    before = read_zarr(path)
    real, calls = engine.simulate, []

    def fails_second_chunk(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return real(*args, **kw)

    monkeypatch.setattr(engine, "simulate", fails_second_chunk)
    with pytest.raises(RuntimeError, match="worker lost"):
        run_zarr(cfg, path, cluster=Cluster(draw_chunk=2))
    assert len(calls) == 2  # the first chunk was written to the temporary store
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.zarr"]
    xr.testing.assert_identical(read_zarr(path), before)


def test_cli_streams_zarr_and_checks_chunk_options(council, tmp_path):
    cfg, ds = council
    cfg_path = tmp_path / "council.toml"
    cfg_path.write_text(cfg.text.replace("end_year = 2035", "end_year = 2028")
                        .replace("draws = 1000", "draws = 7"))
    runner = CliRunner()
    res = runner.invoke(main, ["run", str(cfg_path), "--quiet", "--draw-chunk", "2", "--out",
                               str(tmp_path / "c.zarr")])
    assert res.exit_code == 0, res.output
    got = read_zarr(tmp_path / "c.zarr")
    assert json.loads(got.attrs["timings"])["streamed_draw_chunk"] == 2
    assert_same(got, simsend.run(cfg_path))
    np.testing.assert_array_equal(got["n_issued"].values, ds["n_issued"].values)
    for args, msg in [(["--area-chunk", "1", "--out", str(tmp_path / "x.zarr")],
                       "--area-chunk needs --workers or --scheduler"),
                      (["--draw-chunk", "2", "--out", str(tmp_path / "x.nc")],
                       "--draw-chunk needs one of them or a .zarr output")]:
        res = runner.invoke(main, ["run", str(cfg_path), "--quiet", *args])
        assert res.exit_code == 2 and msg in res.output, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.zarr", "council.toml"]


def test_arguments_checked(council, tmp_path):
    cfg, _ = council
    with pytest.raises(ValueError, match="area_chunk needs a cluster"):
        run_zarr(cfg, tmp_path / "x.zarr", cluster=Cluster(area_chunk=1))
    with pytest.raises(ValueError, match="at most one"):
        Cluster(workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match=">= 1"):
        run_zarr(cfg, tmp_path / "x.zarr", cluster=Cluster(draw_chunk=0))
    assert not list(tmp_path.iterdir())


def test_default_chunk_bounds_the_chunk_size():
    cells = 4 * 5 * 14 * 152  # every council: tier x age group x need x area
    per_draw = 14 * cells * 4 * 24  # 14 years, 24 four-byte values a cell (see stream.py)
    c = default_draw_chunk(1000, 14, cells)
    assert 1 <= c and c * per_draw <= CHUNK_BYTES < (c + 1) * per_draw
    assert default_draw_chunk(5, 14, 10) == 5  # never more than the draws
    assert default_draw_chunk(10**6, 14, 10**9) == 1  # never fewer than one
    assert default_draw_chunk(1000, 4, 280, n_threads=2) == 125  # four tasks per thread
    assert np.all([default_draw_chunk(d, 4, 280) <= d for d in (1, 2, 999)])


def test_variables_without_draw_are_written_once_per_scenario(tmp_path, monkeypatch):
    """A variable with no draw dimension (e.g. a per-scenario table) is each scenario's own."""
    from simsend.runner.plan import RunPlan

    real = RunPlan.dataset

    def with_table(self, k, out, attrs):
        ds = real(self, k, out, attrs)
        name = ds.attrs["scenario"]
        ds["table"] = xr.DataArray(np.arange(3.0) * len(name), dims="x",
                                   attrs={"long_name": "per-scenario table"})
        return ds

    monkeypatch.setattr(RunPlan, "dataset", with_table)
    cfg = scenario_cfg(tmp_path, draws=3)
    ds = simsend.run(cfg, scenario="surge")
    assert not np.array_equal(ds["table"].sel(scenario="surge"),
                              ds["table"].sel(scenario="baseline"))
    got = read_zarr(run_zarr(cfg, tmp_path / "t.zarr", scenario="surge",
                             cluster=Cluster(draw_chunk=2)))
    assert_same(got, ds)


def test_a_streamed_store_missing_a_chunk_is_refused(council, tmp_path):
    from click.testing import CliRunner

    from simsend.cli import main

    cfg, _ = council
    path = run_zarr(cfg, tmp_path / "g.zarr", draws=2)
    chunk = sorted(p for p in (path / "n_pupils").iterdir() if not p.name.startswith("."))[0]
    chunk.unlink()
    res = CliRunner().invoke(main, ["export", str(path), "--out", str(tmp_path / "g.csv")])
    assert res.exit_code == 2, res.output
    assert "incomplete: chunks missing in n_pupils" in res.output
    assert not (tmp_path / "g.csv").exists()
