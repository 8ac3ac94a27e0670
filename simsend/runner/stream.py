"""Stream a run's results into a Zarr store chunk by chunk, so memory does not grow with draws.

:func:`simsend.runner.forecast.run_forecast` returns one Dataset holding every draw; for
every council and 1,000 draws that is tens of GB.  :func:`run_zarr` runs the same forecast
(the same :class:`~simsend.runner.plan.RunPlan`) in chunks of draws (in this process, or as
``dask.distributed`` tasks) and, for each chunk, builds exactly the Dataset the in-memory run
would hold for those draws (:meth:`RunPlan.dataset <simsend.runner.plan.RunPlan.dataset>`, the
one every path uses: the tallies, the provision plan's places and the statutory pipeline) and
writes it into its region of the store along ``draw``.  Peak memory is then set by the chunk size,
not the number of draws.

The store read back equals the in-memory run's Dataset bit for bit (values, dims, coords,
dtypes, attrs; only the wall-time attrs ``created_at`` and ``timings`` differ), because every
random number, the pipeline's included, is keyed by (seed, draw, stream, year, pupil id or
cell), so a draw's results do not depend on which draws share its chunk.  Runs with scenarios
stream too: each (scenario, chunk of draws) is written into its region of the leading
``scenario`` dimension, laid out as :func:`simsend.runner.scenarios.stack_runs` lays it out.

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

import dask.array as da
import numba
import numpy as np
import xarray as xr

from simsend.config import SimConfig
from simsend.io import EVERY_CHUNK, replace_store
from simsend.results.manifest import with_total_time
from simsend.runner.distributed import (
    Cluster,
    empty_outputs,
    iter_chunks,
    n_threads,
    place_chunk,
    spans,
)
from simsend.runner.forecast import simulate_run
from simsend.runner.plan import BYTES_PER_CELL, RunPlan, ScenarioArg, prepare

CHUNK_BYTES = 512 * 2**20
"""Target size of one chunk's results in memory (the default draws per chunk aim at it).

Every council: 9 draws a chunk, 1.3 GiB peak in all for 20 or 40 draws (4 draws a chunk:
0.96 GiB, but about 1 s more per chunk, mostly the engine rebuilding its state per call;
``benchmarks/results_stream.json``)."""

def default_draw_chunk(n_draws: int, n_years: int, n_cells: int,
                       n_threads: int | None = None, multiple_of: int = 1) -> int:
    """Draws per chunk: about :data:`CHUNK_BYTES` of results, at least 1.

    With ``n_threads`` (a cluster's worker threads) also at most about four tasks per
    thread, as :func:`simsend.runner.distributed.simulate_distributed` chooses.  ``multiple_of``
    (the engine's draw threads, :func:`simsend.engine.threads.draw_threads`) rounds a chunk down to
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
    per_draw = max(1, n_years * n_cells * BYTES_PER_CELL)
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
                    consolidated=False, write_empty_chunks=True)
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
        part.to_zarr(self.tmp, region=region, zarr_format=2, consolidated=False,
                     write_empty_chunks=True)  # every chunk: a missing one is damage

    def _create(self, ds: xr.Dataset) -> None:
        tmpl = _template(ds, self.draws, self.size)
        self.coords = {n: v.variable for n, v in ds.coords.items() if "draw" not in v.dims}
        if self.stack is not None:
            tmpl = self.stack(tmpl)
        self.attrs = dict(tmpl.attrs)
        tmpl.to_zarr(self.tmp, mode="w", compute=False, zarr_format=2, consolidated=False,
                     write_empty_chunks=True)

    def finish(self, attrs: dict) -> None:
        """Set the store's attrs and consolidate its metadata."""
        import zarr

        group = zarr.open_group(self.tmp, mode="r+", zarr_format=2)
        group.attrs.put({**attrs, EVERY_CHUNK: "1"})
        zarr.consolidate_metadata(self.tmp, zarr_format=2)


def run_zarr(cfg: SimConfig | str | Path, path: str | Path, *, draws: int | None = None,
             seed: int | None = None, areas: Sequence[str] | None = None,
             scenario: ScenarioArg = None, progress: Callable[[int, int], None] | None = None,
             cluster: Cluster | None = None) -> Path:
    """Run a config's forecast, streaming its results into a Zarr store at ``path``.

    Same arguments and the same results as :func:`simsend.runner.forecast.run_forecast`
    followed by :func:`simsend.io.write_zarr`, but only one chunk of draws (per cluster task
    in flight) is held in memory at a time.

    Parameters
    ----------
    cfg : SimConfig or path
        A parsed config or the path of a TOML file.
    path : str or Path
        The Zarr store to write (replaced whole when it exists).
    draws, seed, areas, scenario
        As for :func:`simsend.runner.forecast.run_forecast`.
    progress : callable, optional
        ``progress(done, total)`` as draws finish; ``total`` counts every scenario's draws.
    cluster : Cluster, optional
        Run the chunks as ``dask.distributed`` tasks (``area_chunk`` needs one).  Without
        one, or with only ``draw_chunk`` set, chunks run in this process; ``draw_chunk`` is
        the draws per chunk (and per task, and per Zarr chunk), default
        :func:`default_draw_chunk`.

    Returns
    -------
    Path
        The written store; read it with :func:`simsend.io.read_zarr` or lazily with
        ``xarray.open_zarr``.

    Examples
    --------
    >>> run_zarr("configs/base.toml", "results/all.zarr", areas=("all",),
    ...          draws=1000)  # doctest: +SKIP

    """
    cluster = cluster or Cluster()
    if cluster.area_chunk is not None and not cluster.named:
        raise ValueError("area_chunk needs a cluster (workers, scheduler or client)")
    plan = prepare(cfg, draws=draws, seed=seed, areas=areas, scenario=scenario)
    # Provenance of each run; the timings are filled in once the store is complete.
    attrs = [plan.provenance(k, {}) for k in range(len(plan.runs))]

    def build(k: int, out) -> xr.Dataset:
        return plan.dataset(k, out, attrs[k])

    stack = None
    if plan.stacked:
        def stack(tmpl):
            return plan.combine([tmpl] * len(plan.runs))

    total = len(plan.runs) * len(plan.draws)

    def write(tmp: Path) -> None:
        if cluster.named:
            store = _fill_cluster(_Store(tmp, plan.draws, 0, stack), plan, build, cluster,
                                  (progress, total))
        else:
            size = cluster.draw_chunk or default_draw_chunk(
                len(plan.draws), len(plan.years), plan.layout.size,
                multiple_of=numba.get_num_threads())
            store = _Store(tmp, plan.draws, size, stack)
            _fill_serial(store, plan, build, (progress, total))
        now = _time.perf_counter()
        # The attrs of the template (to_dataset's, the statutory pipeline's and, with
        # scenarios, the stacking's), with the first run's provenance and this run's times.
        final = dict(store.attrs)
        final["created_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        final.update(plan.provenance(0, plan.timings(
            now - plan.clock["t0"] - plan.clock["baseline_s"], streamed_draw_chunk=store.size)))
        if plan.stacked:
            final["timings"] = with_total_time(xr.Dataset(
                coords={"scenario": [str(i) for i in range(len(plan.runs))]},
                attrs={"timings": final["timings"]}), now - plan.clock["t0"]).attrs["timings"]
        store.finish(final)

    return replace_store(write, path)


def _fill_serial(store: _Store, plan: RunPlan, build, progress: tuple) -> None:
    """Run the chunks in this process, one after another, writing each.

    (Building and writing a chunk on a second thread while the next is simulated was
    measured slower, 27.3 s against 26.2 s for every council and 32 draws, and held one
    more chunk in memory: the simulation already keeps both cores busy.)
    """
    report, total = progress
    done = 0
    for k in range(len(plan.runs)):
        for d0, d1 in spans(len(plan.draws), store.size):
            tick = None if report is None else (lambda j, b=done: report(b + j, total))
            out = simulate_run(plan, k, plan.draws[d0:d1], progress=tick)
            ds = build(k, out)
            del out  # the chunk's Dataset holds what it needs
            store.write(ds, k, d0, d1)
            del ds
            done += d1 - d0


def _fill_cluster(store: _Store, plan: RunPlan, build, cluster: Cluster,
                  progress: tuple) -> _Store:
    """Run the chunks as ``dask.distributed`` tasks and write each as its draws finish."""
    report, total = progress
    draws = plan.draws
    job = plan.job
    n_total = job.pool.shape[1]
    with cluster.connect() as cl:
        threads = n_threads(cl)
        store.size = cluster.draw_chunk or default_draw_chunk(
            len(draws), len(plan.years), plan.layout.size, threads)
        parts: dict = {}
        done = 0
        # At most a few chunks per worker thread in flight: finished chunks wait on the
        # workers (or here, while their area tasks finish) only that long.
        for k, d0, d1, lo, hi, part, last in iter_chunks(
                cl, job, plan.sources, draws, store.size, cluster.area_chunk or n_total,
                retries=cluster.retries, window=2 * threads + 1):
            if (lo, hi) == (0, n_total):
                buf = part
            else:
                buf = parts.get((k, d0))
                if buf is None:
                    buf = parts[k, d0] = empty_outputs(part, draws[d0:d1], plan.layout)
                place_chunk(buf, part, slice(0, d1 - d0), plan.layout, lo, hi)
            del part
            if not last:
                continue
            parts.pop((k, d0), None)
            ds = build(k, buf)
            del buf
            store.write(ds, k, d0, d1)
            del ds
            done += d1 - d0
            if report is not None:
                report(done, total)
    return store
