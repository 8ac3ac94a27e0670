"""Stream a run's results into a Zarr store chunk by chunk, so memory does not grow with draws.

:func:`simsend.api.run` returns one Dataset holding every draw; for every council and 1,000
draws that is tens of GB.  :func:`run_zarr` runs the same forecast in chunks of draws (in this
process, or as ``dask.distributed`` tasks) and, for each chunk, builds exactly the Dataset the
in-memory run would hold for those draws (:func:`simsend.api.run_dataset`, the same function
:func:`simsend.api.run` calls: :func:`simsend.results.to_dataset`, the provision plan's
places, and :func:`simsend.scenarios.finish_run`, which adds the statutory pipeline) and writes
it into its region of the store along ``draw``.  Peak memory is then set by the chunk size,
not the number of draws.

The store read back equals the in-memory run's Dataset bit for bit (values, dims, coords,
dtypes, attrs; only the wall-time attrs ``created_at`` and ``timings`` differ), because every
random number, the pipeline's included, is keyed by (seed, draw, stream, year, pupil id or
cell), so a draw's results do not depend on which draws share its chunk.  Runs with scenarios
stream too: each (scenario, chunk of draws) is written into its region of the leading
``scenario`` dimension, laid out as :func:`simsend.scenarios.run_scenarios` lays it out.

Variables without a ``draw`` dimension (the provision plan's ``places``, coordinates) are
written once per run and checked to be the same in every chunk.  The attrs are the in-memory
run's; ``timings.simulate_s`` covers simulating and writing, and ``timings`` also records
``streamed_draw_chunk``.

The store is written under a temporary name beside the output path and renamed into place
when complete: a failure leaves no partial store.  Zarr chunks are one scenario by one chunk
of draws by the whole of every other dimension, so ``xarray.open_zarr`` reads a draw chunk at
a time.

Memory: in one process, the baseline, the engine's buffers and one chunk's tallies and
Dataset (about :data:`CHUNK_BYTES` by default).  On a cluster the client holds the chunk being
written and, with ``area_chunk``, the chunks whose area tasks are still running; at most
``2 * threads + 1`` chunks of draws are in flight, so finished results never pile up.
"""

from __future__ import annotations

import datetime as _dt
import math
import time as _time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

CHUNK_BYTES = 512 * 2**20
"""Target size of one chunk's results in memory (the default draws per chunk aim at it).

Every council: 9 draws a chunk, 1.3 GiB peak in all for 20 or 40 draws (4 draws a chunk:
0.96 GiB, but about 1 s more per chunk, mostly the engine rebuilding its state per call;
``benchmarks/results_stream.json``)."""

_BYTES_PER_CELL = 4 * 24
"""Bytes held per (draw, year, marginal cell) while a chunk is built: about 17 float32/int32
result variables per cell (census stock, flows, pipeline, ceased plans), the engine's raw
tallies and the conversion temporaries, rounded up (allocation tallies add four more)."""


def default_draw_chunk(n_draws: int, n_years: int, n_cells: int,
                       n_threads: int | None = None, multiple_of: int = 1) -> int:
    """Draws per chunk: about :data:`CHUNK_BYTES` of results, at least 1.

    With ``n_threads`` (a cluster's worker threads) also at most about four tasks per
    thread, as :func:`simsend.distributed.simulate_distributed` chooses.  ``multiple_of``
    (the engine's draw threads, :func:`simsend.engine.draw_threads`) rounds a chunk down to
    a multiple of it when it holds more, so no thread idles at a chunk's end (9 draws on 2
    threads take as long as 10).

    Examples
    --------
    >>> default_draw_chunk(1000, 14, 42_560)  # every council, tier x age group x need
    9
    >>> default_draw_chunk(1000, 14, 280)  # one council: all draws at once
    1000
    >>> default_draw_chunk(1000, 14, 42_560, multiple_of=2)  # on two draw threads
    8

    """
    per_draw = max(1, n_years * n_cells * _BYTES_PER_CELL)
    c = max(1, min(n_draws, CHUNK_BYTES // per_draw))
    if n_threads is not None:
        c = min(c, max(1, math.ceil(n_draws / (4 * n_threads))))
    if multiple_of > 1 and multiple_of < c < n_draws:
        c -= c % multiple_of
    return int(c)


def _template(chunk: xr.Dataset, draws: np.ndarray, size: int) -> xr.Dataset:
    """Return a lazy Dataset shaped like the whole run, from one chunk's Dataset.

    Variables over ``draw`` become dask arrays of zeros (never computed: only their metadata
    is written), chunked ``size`` draws by the whole of every other dimension; the others are
    the chunk's own (checked against every later chunk by :class:`_Store`).
    """
    import dask.array as da

    def lazy(v: xr.Variable) -> xr.Variable:
        ax = v.dims.index("draw")
        shape, chunks = list(v.shape), list(v.shape)
        shape[ax], chunks[ax] = len(draws), size
        return xr.Variable(v.dims, da.zeros(shape, dtype=v.dtype, chunks=chunks), v.attrs,
                           v.encoding)

    data = {k: lazy(v.variable) if "draw" in v.dims else v.variable
            for k, v in chunk.data_vars.items()}
    coords = {}
    for k, v in chunk.coords.items():
        if k == "draw":
            coords[k] = xr.Variable(("draw",), np.asarray(draws, v.dtype), v.attrs, v.encoding)
        else:
            coords[k] = lazy(v.variable) if "draw" in v.dims else v.variable
    return xr.Dataset(data, coords=coords, attrs=dict(chunk.attrs))


class _Store:
    """A Zarr store being filled by regions (created from the first chunk that arrives)."""

    def __init__(self, tmp: Path, draws: np.ndarray, size: int, stack=None):
        self.tmp, self.draws, self.size, self.stack = tmp, draws, size, stack
        self.coords: dict[str, xr.Variable] | None = None
        self.fixed: dict[int, dict[str, xr.Variable]] = {}
        self.attrs: dict | None = None

    def write(self, ds: xr.Dataset, k: int, d0: int, d1: int) -> None:
        """Write one run's (``k``) Dataset for draws ``d0 .. d1 - 1`` into its region.

        Variables without a ``draw`` dimension are written once per run (coordinates once
        per store) and must be the same in every chunk of the run.
        """
        if self.coords is None:
            self._create(ds)
        fixed = {n: v.variable for n, v in ds.data_vars.items() if "draw" not in v.dims}
        if k not in self.fixed:
            self.fixed[k] = fixed
            if fixed and self.stack is not None:  # the scenario's own values
                xr.Dataset(fixed).expand_dims("scenario").to_zarr(
                    self.tmp, region={"scenario": slice(k, k + 1)}, zarr_format=2,
                    consolidated=False)
        same = [(n, c.variable, self.coords.get(n)) for n, c in ds.coords.items()
                if "draw" not in c.dims]
        same += [(n, v, self.fixed[k].get(n)) for n, v in fixed.items()]
        for name, v, first in same:
            if first is None or not first.identical(v):
                raise ValueError(f"variable {name!r} has no draw dimension and differs "
                                 "between chunks of draws; it cannot be streamed")
        drop = [n for n in ds.variables if n in ds.coords or n in fixed]
        part = ds.drop_vars(drop)  # (attrs are not written in region mode)
        region = {"draw": slice(d0, d1)}
        if self.stack is not None:
            part = part.expand_dims("scenario")
            region["scenario"] = slice(k, k + 1)
        part.to_zarr(self.tmp, region=region, zarr_format=2, consolidated=False)

    def _create(self, ds: xr.Dataset) -> None:
        tmpl = _template(ds, self.draws, self.size)
        self.coords = {n: v.variable for n, v in ds.coords.items() if "draw" not in v.dims}
        if self.stack is not None:
            tmpl = self.stack(tmpl)
        self.attrs = dict(tmpl.attrs)
        tmpl.to_zarr(self.tmp, mode="w", compute=False, zarr_format=2, consolidated=False)

    def finish(self, attrs: dict) -> None:
        """Set the store's attrs and consolidate its metadata."""
        import zarr

        group = zarr.open_group(self.tmp, mode="r+", zarr_format=2)
        group.attrs.put(attrs)
        zarr.consolidate_metadata(self.tmp, zarr_format=2)


def run_zarr(cfg, path: str | Path, *, draws: int | None = None, seed: int | None = None,
             areas: tuple[str, ...] | None = None,
             progress: Callable[[int, int], None] | None = None, workers: int | None = None,
             scheduler: str | None = None, client=None, draw_chunk: int | None = None,
             area_chunk: int | None = None, scenario=None) -> Path:
    """Run a config's forecast, streaming its results into a Zarr store at ``path``.

    Same arguments and the same results as :func:`simsend.api.run` followed by
    :func:`simsend.distributed.write_zarr`, but only one chunk of draws (per cluster task in
    flight) is held in memory at a time.

    Parameters
    ----------
    cfg : SimConfig or path
        A parsed config or the path of a TOML file.
    path : str or Path
        The Zarr store to write (replaced whole when it exists).
    draws, seed, areas, scenario
        As for :func:`simsend.api.run` (``scenario`` may also be a
        :class:`simsend.scenarios.Scenario`, run alone).
    progress : callable, optional
        ``progress(done, total)`` as draws finish; ``total`` counts every scenario's draws.
    workers, scheduler, client : optional
        Run the chunks as ``dask.distributed`` tasks on a local cluster of ``workers``
        processes, on the cluster at ``scheduler``, or through ``client`` (at most one).
    draw_chunk : int, optional
        Draws per chunk (and per task, and per Zarr chunk); default
        :func:`default_draw_chunk`.
    area_chunk : int, optional
        Areas per task (needs a cluster; default every area).  A chunk of draws is assembled
        from its area tasks before it is written.

    Returns
    -------
    Path
        The written store; read it with :func:`simsend.distributed.read_zarr` or lazily with
        ``xarray.open_zarr``.

    Examples
    --------
    >>> run_zarr("configs/base.toml", "results/all.zarr", areas=("all",),
    ...          draws=1000)  # doctest: +SKIP

    """
    import numba

    from simsend import api
    from simsend.distributed import _replace_store
    from simsend.manifest import with_total_time
    from simsend.recorder import make_layout
    from simsend.scenarios import BASELINE_RUN, Scenario, run_scenarios, select

    if sum(x is not None for x in (workers, scheduler, client)) > 1:
        raise ValueError("give at most one of workers, scheduler or client")
    if area_chunk is not None and workers is None and scheduler is None and client is None:
        raise ValueError("area_chunk needs a cluster (workers, scheduler or client)")
    if draw_chunk is not None and draw_chunk < 1 or area_chunk is not None and area_chunk < 1:
        raise ValueError("draw_chunk and area_chunk must be >= 1")
    cfg = api._with_overrides(cfg, draws, seed, areas)
    stacked = not isinstance(scenario, Scenario) and (bool(cfg.scenarios)
                                                      or scenario is not None)
    if stacked:
        runs: list = [s or BASELINE_RUN for s in select(cfg, scenario)]
    else:
        runs = [scenario if isinstance(scenario, Scenario) else None]
    if cfg.run.threads:
        numba.set_num_threads(min(cfg.run.threads, numba.config.NUMBA_NUM_THREADS))
    t0, started = _time.perf_counter(), _dt.datetime.now(_dt.UTC)
    base = api.load_baseline(cfg)
    t_base = _time.perf_counter()
    layout = make_layout(cfg.outputs.by, base.areas)
    years = list(range(cfg.run.start_year, cfg.run.end_year + 1))
    sources = [api.run_source(cfg, base, s) for s in runs]
    # Provenance of each run; the timings are filled in once the store is complete.
    attrs = [api.run_provenance(cfg, base, src, {}) for src in sources]
    all_draws = np.arange(cfg.run.draws, dtype=np.int64)
    stack = None
    if stacked:
        def stack(tmpl):
            return run_scenarios(cfg, scenario, lambda s: tmpl)

    def build(k: int, out) -> xr.Dataset:
        return api.run_dataset(out, cfg, base, layout, years, sources[k], attrs[k], runs[k])

    total = len(runs) * len(all_draws)
    cluster = workers is not None or scheduler is not None or client is not None

    def fill(tmp: Path) -> _Store:
        if cluster:
            return _fill_cluster(tmp, base, sources, all_draws, years, cfg.run.seed, layout,
                                 build, stack, progress, total, workers, scheduler, client,
                                 draw_chunk, area_chunk)
        size = draw_chunk or default_draw_chunk(len(all_draws), len(years), layout.size,
                                                 multiple_of=numba.get_num_threads())
        store = _Store(tmp, all_draws, size, stack)
        _fill_serial(store, base, sources, all_draws, len(years), cfg.run.seed, layout, build,
                     progress, total)
        return store

    def write(tmp: Path) -> None:
        store = fill(tmp)
        now = _time.perf_counter()
        # The attrs of the template (to_dataset's, finish_run's and, with scenarios,
        # run_scenarios'), with the first run's provenance and this run's wall times.
        final = dict(store.attrs)
        final["created_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        final.update(api.run_provenance(cfg, base, sources[0], {
            "started_at": started.isoformat(timespec="seconds"),
            "baseline_s": round(t_base - t0, 3),
            "simulate_s": round(now - t_base, 3),
            "threads": numba.get_num_threads(),
            "streamed_draw_chunk": store.size}))
        if stacked:
            final["timings"] = with_total_time(xr.Dataset(
                coords={"scenario": [str(i) for i in range(len(runs))]},
                attrs={"timings": final["timings"]}), now - t0).attrs["timings"]
        store.finish(final)

    return _replace_store(write, path)


def _fill_serial(store: _Store, base, sources: Sequence, draws: np.ndarray, n_years: int,
                 seed: int, layout, build, progress, total: int) -> None:
    """Run the chunks in this process, one after another, writing each.

    (Building and writing a chunk on a second thread while the next is simulated was
    measured slower, 27.3 s against 26.2 s for every council and 32 draws, and held one
    more chunk in memory: the simulation already keeps both cores busy.)
    """
    from simsend.distributed import _spans
    from simsend.engine import simulate

    done = 0
    for k, src in enumerate(sources):
        for d0, d1 in _spans(len(draws), store.size):
            tick = None if progress is None else (lambda j, b=done: progress(b + j, total))
            out = simulate(base.individuals, base.pool, src, draws[d0:d1], n_years, seed,
                           layout, progress=tick)
            ds = build(k, out)
            del out  # the chunk's Dataset holds what it needs
            store.write(ds, k, d0, d1)
            del ds
            done += d1 - d0


def _fill_cluster(tmp: Path, base, sources, draws, years, seed, layout, build, stack,
                  progress, total, workers, scheduler, client, draw_chunk,
                  area_chunk) -> _Store:
    """Run the chunks as ``dask.distributed`` tasks and write each as its draws finish."""
    from simsend.distributed import (
        _cluster,
        _empty_outputs,
        _place,
        iter_chunks,
        n_threads,
    )

    individuals, pool = np.asarray(base.individuals), np.asarray(base.pool)
    n_total = pool.shape[1]
    with _cluster(client, workers, scheduler) as cl:
        threads = n_threads(cl)
        size = draw_chunk or default_draw_chunk(len(draws), len(years), layout.size, threads)
        store = _Store(tmp, draws, size, stack)
        parts: dict = {}
        done = 0
        # At most a few chunks per worker thread in flight: finished chunks wait on the
        # workers (or here, while their area tasks finish) only that long.
        for k, d0, d1, lo, hi, part, last in iter_chunks(
                cl, individuals, pool, sources, draws, len(years), seed, layout, size,
                area_chunk or n_total, window=2 * threads + 1):
            if (lo, hi) == (0, n_total):
                buf = part
            else:
                buf = parts.get((k, d0))
                if buf is None:
                    buf = parts[k, d0] = _empty_outputs(part, draws[d0:d1], layout)
                _place(buf, part, slice(0, d1 - d0), layout, lo, hi)
            del part
            if not last:
                continue
            parts.pop((k, d0), None)
            ds = build(k, buf)
            del buf
            store.write(ds, k, d0, d1)
            del ds
            done += d1 - d0
            if progress is not None:
                progress(done, total)
    return store
