"""Scale-out on dask.distributed: bit-identical to the serial run for any chunking and workers."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

distributed = pytest.importorskip("distributed")

import cloudpickle  # noqa: E402

import simsend  # noqa: E402
from simsend.cli import main  # noqa: E402
from simsend.config import parse  # noqa: E402
from simsend.engine.loop import Job, simulate  # noqa: E402
from simsend.engine.tally import make_layout  # noqa: E402
from simsend.io import read_netcdf, read_zarr, write_netcdf, write_zarr  # noqa: E402  # noqa: E402
from simsend.rates.sources import FixedParameters  # noqa: E402
from simsend.runner.distributed import AreaSlice, Cluster, simulate_distributed  # noqa: E402
from simsend.testing import pin_2022, toy_baseline  # noqa: E402

AREAS = ("A", "B", "C")
N_YEARS = 5
DRAWS = range(7)
SEED = 11

# Classes defined here travel to the worker processes by value (tests/ is not importable there).
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    """One LocalCluster of two worker processes for the whole module (start-up is the cost)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", env={"NUMBA_NUM_THREADS": "1"})
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def toy3(toy_model_text):
    ind, pool, births = toy_baseline(n_areas=3, scale=150, seed=3)
    return ind, pool, FixedParameters(parse(toy_model_text, "toy.toml").model, births)


def assert_same(a, b):
    for name in ("draws", "param_draw", "stock", "flows", "transitions"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("by", [("tier", "age", "area"), ("tier", "need", "placement")])
def test_any_chunking_equals_serial(client, toy3, by):
    ind, pool, src = toy3
    layout = make_layout(by, AREAS)
    serial = simulate(Job(ind, pool, N_YEARS, SEED, layout), src, DRAWS)
    assert serial.stock.sum() > 0 and serial.transitions[1:].sum() > 0
    for draw_chunk, area_chunk in [(None, None), (1, 1), (3, 2), (7, 1), (2, 3)]:
        dist = simulate_distributed(Job(ind, pool, N_YEARS, SEED, layout), src, DRAWS,
                                    Cluster(client=client, draw_chunk=draw_chunk,
                                            area_chunk=area_chunk))
        assert_same(dist, serial)


def test_area_chunk_alone_matches_its_areas_in_the_whole_run(toy3):
    """In-process: a chunk of areas keyed by its run indices is exactly the run's slice."""
    ind, pool, src = toy3
    whole = simulate(Job(ind, pool, N_YEARS, SEED, make_layout(("area", "tier"), AREAS)), src,
                     range(3))
    chunk_layout = make_layout(("area", "tier"), AREAS[1:])
    part = simulate(Job(ind[..., 1:3, :], pool[:, 1:3], N_YEARS, SEED, chunk_layout, area_base=1,
                        area_total=3), AreaSlice(src, 1, 3), range(3))
    np.testing.assert_array_equal(part.stock, whole.stock[:, :, 4:])
    # without the run's indices the chunk draws other numbers (so the keying matters)
    alone = simulate(Job(ind[..., 1:3, :], pool[:, 1:3], N_YEARS, SEED, chunk_layout),
                     AreaSlice(src, 1, 3), range(3))
    assert not np.array_equal(alone.stock[:, 1:], whole.stock[:, 1:, 4:])


class Residuals:
    """The toy's rates with per-draw escalation factors by age and net flows by tier and age
    (the shapes a posterior with over-dispersion hands the engine)."""

    def __init__(self, source):
        self.source = source

    def get(self, draw):
        import dataclasses

        ps = self.source.get(draw)
        rng = np.random.default_rng([draw, 5])
        esc = rng.normal(0.0, 0.3, size=(N_YEARS, 26, ps.n_areas))
        net = rng.normal(0.0, 0.05, size=(N_YEARS, 4, 26, ps.n_areas))
        esc[0] = net[0] = 0.0
        return dataclasses.replace(ps, escalation_shock=esc, stock_shock=net)


def test_area_chunk_with_residuals_matches_its_areas_in_the_whole_run(client, toy3):
    """Escalation factors by age and area and net flows are sliced with their areas."""
    ind, pool, fixed = toy3
    src = Residuals(fixed)
    layout = make_layout(("area", "tier"), AREAS)
    whole = simulate(Job(ind, pool, N_YEARS, SEED, layout), src, range(3))
    base = simulate(Job(ind, pool, N_YEARS, SEED, layout), fixed, range(3))
    assert not np.array_equal(whole.stock, base.stock)  # the residuals move pupils
    part = simulate(Job(ind[..., 1:3, :], pool[:, 1:3], N_YEARS, SEED,
                        make_layout(("area", "tier"), AREAS[1:]), area_base=1, area_total=3),
                    AreaSlice(src, 1, 3), range(3))
    np.testing.assert_array_equal(part.stock, whole.stock[:, :, 4:])
    dist = simulate_distributed(Job(ind, pool, N_YEARS, SEED, layout), src, range(3),
                                Cluster(client=client, draw_chunk=2, area_chunk=1))
    assert_same(dist, whole)


class DiesOnce:
    """A parameter source whose first use in a worker kills that worker's process."""

    def __init__(self, source, marker):
        self.source, self.marker = source, str(marker)

    def get(self, draw):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text("killed")
            os._exit(1)  # the worker process dies mid-run, without cleanup
        return self.source.get(draw)


def test_worker_killed_mid_run_gives_same_result(client, toy3, tmp_path):
    ind, pool, src = toy3
    layout = make_layout(("tier", "age", "area"), AREAS)
    serial = simulate(Job(ind, pool, N_YEARS, SEED, layout), src, DRAWS)
    marker = tmp_path / "killed"
    dist = simulate_distributed(Job(ind, pool, N_YEARS, SEED, layout), DiesOnce(src, marker),
                                DRAWS, Cluster(client=client, draw_chunk=2, area_chunk=2))
    assert marker.read_text() == "killed"  # a worker really died
    assert_same(dist, serial)


def test_arguments_checked(toy3):
    ind, pool, src = toy3
    layout = make_layout(("tier",), AREAS)
    job = Job(ind, pool, N_YEARS, SEED, layout)
    with pytest.raises(ValueError, match="exactly one"):
        simulate_distributed(job, src, DRAWS, Cluster())
    with pytest.raises(ValueError, match="at most one"):
        simulate_distributed(job, src, DRAWS, Cluster(workers=2, scheduler="tcp://127.0.0.1:1"))
    with pytest.raises(ValueError, match=">= 1"):
        Cluster(workers=2, draw_chunk=0)


def _council_cfg(tmp_path):
    return simsend.load("configs/council.toml").replace_run(end_year=2028, draws=6)


def _data(ds):
    return ds.drop_attrs() if hasattr(ds, "drop_attrs") else ds.copy().assign_attrs({})


def test_api_and_cli_on_a_cluster_equal_serial_and_zarr_round_trip(client, tmp_path):
    cfg = _council_cfg(tmp_path)
    serial = simsend.run(cfg)
    addr = client.scheduler.address
    dist = simsend.run(cfg, cluster=Cluster(scheduler=addr, draw_chunk=2))
    xr.testing.assert_identical(_data(dist), _data(serial))
    # the CLI: NetCDF and Zarr outputs of a distributed run equal the serial run's
    cfg_path = tmp_path / "council.toml"
    cfg_path.write_text(cfg.text.replace("end_year = 2035", "end_year = 2028")
                        .replace("draws = 1000", "draws = 6"))
    runner = CliRunner()
    for out in ("r.nc", "r.zarr"):
        res = runner.invoke(main, ["run", str(cfg_path), "--quiet", "--scheduler", addr,
                                   "--out", str(tmp_path / out), "--draw-chunk", "3"])
        assert res.exit_code == 0, res.output
    nc, zr = read_netcdf(tmp_path / "r.nc"), read_zarr(tmp_path / "r.zarr")
    xr.testing.assert_identical(_data(nc), _data(serial))
    xr.testing.assert_equal(zr, nc)
    assert zr.attrs["config_sha256"] == nc.attrs["config_sha256"]


def test_zarr_round_trip_equals_netcdf_and_replaces_atomically(toy3, tmp_path):
    ds = simsend.run(_council_cfg(tmp_path), draws=2)
    write_netcdf(ds, tmp_path / "a.nc")
    write_zarr(ds, tmp_path / "a.zarr")
    nc, zr = read_netcdf(tmp_path / "a.nc"), read_zarr(tmp_path / "a.zarr")
    xr.testing.assert_identical(zr, nc)
    for v in ds.data_vars:
        assert zr[v].dtype == ds[v].dtype
    # a second write replaces the store whole; no temporary stores are left behind
    write_zarr(ds.isel(draw=[0]), tmp_path / "a.zarr")
    assert read_zarr(tmp_path / "a.zarr").sizes["draw"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc", "a.zarr"]


def test_cli_rejects_workers_with_scheduler(tmp_path):
    res = CliRunner().invoke(main, ["run", "configs/council.toml", "--workers", "2",
                                    "--scheduler", "tcp://127.0.0.1:1", "--out",
                                    str(tmp_path / "x.nc")])
    assert res.exit_code == 2
    assert "--workers or --scheduler" in res.output
    assert not (tmp_path / "x.nc").exists()


@pytest.mark.parametrize("out", ["x.nc", "x.zarr"])
def test_cli_unreachable_scheduler_is_a_clear_error(tmp_path, out):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        res = CliRunner().invoke(main, ["run", "configs/council.toml", "--draws", "2",
                                        "--scheduler", "tcp://127.0.0.1:1", "--out",
                                        str(tmp_path / out)])
    assert res.exit_code == 2, res.output
    assert "cannot connect to the Dask scheduler at 'tcp://127.0.0.1:1'" in res.output
    assert "Traceback" not in res.output
    assert list(tmp_path.iterdir()) == []


def test_cli_workers_starts_a_local_cluster(tmp_path):
    cfg = simsend.load("configs/council.toml").replace_run(end_year=2027, draws=3)
    serial = simsend.run(cfg)
    cfg_path = tmp_path / "council.toml"
    cfg_path.write_text(cfg.text.replace("end_year = 2035", "end_year = 2027")
                        .replace("draws = 1000", "draws = 3"))
    res = CliRunner().invoke(main, ["run", str(cfg_path), "--quiet", "--workers", "2",
                                    "--out", str(tmp_path / "w.nc")])
    assert res.exit_code == 0, res.output
    xr.testing.assert_identical(_data(read_netcdf(tmp_path / "w.nc")), _data(serial))


def test_parallel_and_single_thread_kernels_give_the_same_bytes(toy3, monkeypatch):
    """The engine runs small populations on one thread (engine.PARALLEL_MIN); both paths agree.

    (Here rather than in test_engine: the switch was added with the scale-out work.)
    """
    import numba

    import simsend.engine.loop as engine

    ind, pool, src = toy3
    layout = make_layout(("tier", "age", "need", "area"), AREAS)
    monkeypatch.setattr(engine, "PARALLEL_MIN", 10**12)
    single = simulate(Job(ind, pool, N_YEARS, SEED, layout), src, range(3))
    assert engine._kernels(10**6)[1] is engine.step_pupils_serial
    monkeypatch.setattr(engine, "PARALLEL_MIN", 0)
    monkeypatch.setattr(engine, "PARALLEL_THREADS", 2)  # the parallel passes on two threads
    assert numba.get_num_threads() >= 2  # tests/conftest.py asks for two threads
    assert engine._kernels(1)[1] is engine.step_pupils
    parallel = simulate(Job(ind, pool, N_YEARS, SEED, layout), src, range(3))
    assert_same(parallel, single)


def test_population_reuses_its_baseline_only_for_equal_counts(toy3):
    """Population.load_counts builds the baseline once per run and copies it for later draws."""
    from simsend.engine.population import Population

    ind, pool, _ = toy3
    fresh = Population(3, 16)
    fresh.load_counts(ind, pool)
    pop = Population(3, 16)
    pop.load_counts(ind, pool)
    pop.cur.tier[:pop.n] = 0  # a draw scribbles over the state ...
    pop.load_counts(ind.copy(), pool)  # ... and the next draw starts from the baseline again
    assert pop.n == fresh.n
    np.testing.assert_array_equal(pop.cell_start, fresh.cell_start)
    for a, b in zip(pop.cur, fresh.cur, strict=True):
        np.testing.assert_array_equal(a[:pop.n], b[:fresh.n])
    other = ind.copy()
    other[1, 5, 0, 0, 0] += 3  # different counts: rebuilt, not copied
    pop.load_counts(other, pool)
    ref = Population(3, 16)
    ref.load_counts(other, pool)
    assert pop.n == fresh.n + 3 == ref.n
    for a, b in zip(pop.cur, ref.cur, strict=True):
        np.testing.assert_array_equal(a[:pop.n], b[:ref.n])


def test_area_chunks_with_an_area_filtered_scenario_modifier(client, toy3):
    """A scenario changing rates in one area only: area chunks still give the serial bytes."""
    import dataclasses

    from simsend.config.scenarios import Modifier
    from simsend.rates.modifiers import compile_modifiers

    ind, pool, src = toy3
    mods = compile_modifiers([Modifier("identification", "multiply", 3.0, areas=("B",)),
                              Modifier("births", "multiply", 0.5, areas=("C",))], AREAS)
    ps = dataclasses.replace(src.get(0), modifiers=mods, start_year=2022)

    class Source:
        def get(self, draw):
            return ps

    layout = make_layout(("tier", "area"), AREAS)
    serial = simulate(Job(ind, pool, N_YEARS, SEED, layout), Source(), range(4))
    plain = simulate(Job(ind, pool, N_YEARS, SEED, layout), src, range(4))
    # the modifiers act on areas B and C only
    by_area = (4, N_YEARS, 4, 3)
    s_, p_ = serial.stock.reshape(by_area), plain.stock.reshape(by_area)
    assert not np.array_equal(s_[:, 1:, :, 1], p_[:, 1:, :, 1])
    assert not np.array_equal(s_[:, 1:, :, 2], p_[:, 1:, :, 2])
    np.testing.assert_array_equal(s_[:, :, :, 0], p_[:, :, :, 0])
    for area_chunk in (1, 2):
        dist = simulate_distributed(Job(ind, pool, N_YEARS, SEED, layout), Source(), range(4),
                                    Cluster(client=client, draw_chunk=2, area_chunk=area_chunk))
        assert_same(dist, serial)


# ------------------------------------------------------------ generic placement, streaming


def test_place_is_generic_over_outputs_fields(toy3):
    """Area chunks placed field by field: a new tally field over the marginal is placed along
    area, a None field is skipped, labels are copied and tallies without cells are summed."""
    import dataclasses

    from simsend.engine.loop import Outputs
    from simsend.runner.distributed import _chunk_layout, empty_outputs, place_chunk

    @dataclasses.dataclass
    class More(Outputs):
        extra: np.ndarray | None = None
        unused: np.ndarray | None = None

    ind, pool, src = toy3
    layout = make_layout(("tier", "area", "age_group"), AREAS)
    d, rng = 4, np.random.default_rng(5)

    def chunk(lo, hi):
        job = Job(ind[..., lo:hi, :], pool[:, lo:hi], N_YEARS, SEED, _chunk_layout(layout, lo, hi),
                  area_base=lo, area_total=3)
        out = simulate(job, AreaSlice(src, lo, hi), range(d))
        m = _chunk_layout(layout, lo, hi).size
        extra = rng.integers(0, 1000, (d, N_YEARS, 2, m)).astype(np.int32)
        return More(**{f.name: getattr(out, f.name) for f in dataclasses.fields(out)},
                    extra=extra)

    parts = {(lo, hi): chunk(lo, hi) for lo, hi in [(0, 1), (1, 3)]}
    whole = simulate(Job(ind, pool, N_YEARS, SEED, layout), src, range(d))
    res = empty_outputs(parts[1, 3], np.arange(d), layout)
    assert isinstance(res, More) and res.unused is None
    for (lo, hi), part in parts.items():
        place_chunk(res, part, slice(0, d), layout, lo, hi)
    assert_same(res, whole)
    assert res.unused is None
    # the extra field, placed along area: the chunks' own values at their areas
    got = res.extra.reshape(d, N_YEARS, 2, *layout.shape)
    for (lo, hi), part in parts.items():
        sub = list(layout.shape)
        sub[1] = hi - lo
        np.testing.assert_array_equal(got[:, :, :, :, lo:hi],
                                      part.extra.reshape(d, N_YEARS, 2, *sub))


AREAS2 = '["E06000017", "E06000001"]'  # Rutland, Hartlepool: small, with places in the plan


def _scenario_cfg(tmp_path, draws=4):
    """configs/base.toml (its provision plan included) for two small councils, one scenario."""
    import re

    text = pin_2022(Path("configs/base.toml").read_text())
    text = re.sub(r"(?m)^areas = .*$", f"areas = {AREAS2}", text)
    text = re.sub(r"(?m)^end_year = .*$", "end_year = 2025", text)
    text = re.sub(r"(?m)^draws = .*$", f"draws = {draws}", text)
    text += """
[scenarios.surge]
events = [{ type = "request_surge", factor = 1.5, years = "2023-2024" }]
"""
    return parse(text, "streamed.toml", tmp_path)


def _no_wall_times(ds):
    ds = ds.copy()
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("created_at", "timings")}
    return ds


def test_streamed_zarr_on_a_cluster_equals_the_serial_run(client, tmp_path):
    """Chunks of draws and areas as tasks, written as they finish: the serial run's bytes,
    scenarios and the provision plan's allocation tallies (Outputs.alloc) included."""
    from simsend.engine.tally import ALLOC_VARS
    from simsend.runner.stream import run_zarr

    cfg = _scenario_cfg(tmp_path)
    serial = simsend.run(cfg)
    assert set(ALLOC_VARS) <= set(serial.data_vars) and serial.sizes["scenario"] == 2
    # the in-memory distributed run places the allocation tallies by area chunk too
    dist = simsend.run(cfg, cluster=Cluster(scheduler=client.scheduler.address, draw_chunk=3,
                                            area_chunk=1))
    xr.testing.assert_identical(_no_wall_times(dist), _no_wall_times(serial))
    for kw in ({"draw_chunk": 3, "area_chunk": 1}, {}):
        got = read_zarr(run_zarr(cfg, tmp_path / "s.zarr", cluster=Cluster(client=client, **kw)))
        for v in serial.variables:
            assert got[v].dtype == serial[v].dtype, v
        xr.testing.assert_identical(_no_wall_times(got), _no_wall_times(serial))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
