"""Scale-out: chunks of draws and areas as ``dask.distributed`` tasks, assembled exactly.

A run is split into tasks, one per (chunk of draws, chunk of areas).  Each task calls the
engine's own :func:`simsend.engine.simulate` on its draws and areas and returns raw integer
tallies; the client writes them into one :class:`simsend.engine.Outputs` at their draw and
area positions.  The result is bit-identical to the single-process run for any worker count
and any chunking, because

* every random number is a pure function of (seed, draw, year, stream, pupil id or cell
  counter) (:mod:`simsend.rng`), so a draw does not depend on which other draws run with it;
* areas do not interact within a draw, and a chunk of areas keys its pupil ids and cell
  counters by the areas' indices in the whole run (``area_base`` / ``area_total`` of
  :func:`simsend.engine.simulate`), so it draws exactly the numbers the whole run draws for
  those areas;
* tallies are integers: chunks over areas are placed along the ``area`` dimension, or summed
  exactly when the output has no ``area`` dimension.

Tasks are pure functions of their inputs, so a task whose worker dies is simply run again
(the scheduler reschedules it; ``retries`` also re-runs tasks that raised) with the same
result.

Run it with ``simsend run CONFIG --workers N`` (a local cluster of ``N`` worker processes) or
``--scheduler ADDRESS`` (an existing cluster), or from Python with
``simsend.run(cfg, workers=N)`` / :func:`simulate_distributed`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from simsend.engine import Outputs, simulate
from simsend.params import ParameterSet, ParameterSource
from simsend.recorder import FLOWS, Layout, make_layout

_AREA_AXIS = {"identification": 1, "tiers": 4, "births": 0}
"""Axis of the area dimension in each area-indexed field of :class:`ParameterSet`."""


def _slice_params(ps: ParameterSet, lo: int, hi: int) -> ParameterSet:
    """Restrict a parameter set to areas ``lo .. hi - 1``."""
    n = ps.n_areas
    changes = {}
    for name, axis in _AREA_AXIS.items():
        a = getattr(ps, name)
        if a.shape[axis] != n:
            raise ValueError(f"parameter {name!r} has {a.shape[axis]} areas, expected {n}")
        changes[name] = np.ascontiguousarray(np.take(a, np.arange(lo, hi), axis=axis))
    if getattr(ps, "modifiers", ()):
        from simsend.scenarios import slice_modifiers

        changes["modifiers"] = slice_modifiers(ps.modifiers, lo, hi)  # area filters renumbered
    return dataclasses.replace(ps, **changes)


class AreaSlice:
    """A :class:`ParameterSource` restricted to the areas ``lo .. hi - 1`` of another.

    Parameters
    ----------
    source : ParameterSource
        The whole run's source (picklable: it travels to the workers).
    lo, hi : int
        Area index range in the whole run.

    """

    def __init__(self, source: ParameterSource, lo: int, hi: int):
        self.source, self.lo, self.hi = source, int(lo), int(hi)

    def get(self, draw: int) -> ParameterSet:
        """Return the whole run's set for ``draw``, restricted to this chunk's areas."""
        return _slice_params(self.source.get(draw), self.lo, self.hi)


def _chunk_layout(layout: Layout, lo: int, hi: int) -> Layout:
    """Build the layout of a chunk of areas (same marginal, the chunk's area labels)."""
    n_total = layout.pool_index.shape[1]
    if lo == 0 and hi == n_total:
        return layout
    if "area" in layout.by:
        areas = tuple(layout.coords["area"][lo:hi])
    else:
        areas = tuple(str(i) for i in range(lo, hi))
    return make_layout(layout.by, areas)


def _inputs(individuals, pool, source, layout):
    """Hold the run's inputs as one task result (recomputed by the scheduler if lost)."""
    return individuals, pool, source, layout


def _run_chunk(inputs, draws, n_years, seed, lo, hi, n_total):
    """One task: the engine over ``draws`` and areas ``lo .. hi - 1`` (runs on a worker)."""
    individuals, pool, source, layout = inputs
    if (lo, hi) != (0, n_total):
        source = AreaSlice(source, lo, hi)
    out = simulate(individuals[..., lo:hi, :], pool[:, lo:hi], source, draws, n_years, seed,
                   _chunk_layout(layout, lo, hi), area_base=lo, area_total=n_total)
    return out


def _spans(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _place(res: Outputs, part: Outputs, rows: np.ndarray, layout: Layout, lo: int,
           hi: int) -> None:
    """Write a chunk's tallies into the whole run's (exact integer arithmetic)."""
    d, y = part.stock.shape[:2]
    shape, n_total = layout.shape, layout.pool_index.shape[1]
    res.param_draw[rows] = part.param_draw
    res.transitions[rows] += part.transitions
    if (lo, hi) == (0, n_total):
        res.stock[rows] = part.stock
        res.flows[rows] = part.flows
        return
    if "area" in layout.by:
        ax = layout.by.index("area")
        sub = list(shape)
        sub[ax] = hi - lo
        sel = (slice(None),) * ax + (slice(lo, hi),)
        full_s = res.stock.reshape(len(res.draws), y, *shape)
        full_f = res.flows.reshape(len(res.draws), y, len(FLOWS), *shape)
        full_s[(rows, slice(None), *sel)] = part.stock.reshape(d, y, *sub)
        full_f[(rows, slice(None), slice(None), *sel)] = part.flows.reshape(d, y, len(FLOWS),
                                                                           *sub)
    else:
        res.stock[rows] += part.stock
        res.flows[rows] += part.flows


def simulate_distributed(individuals: np.ndarray, pool: np.ndarray, source: ParameterSource,
                         draws: Sequence[int], n_years: int, seed: int, layout: Layout, *,
                         client=None, workers: int | None = None, scheduler: str | None = None,
                         draw_chunk: int | None = None, area_chunk: int | None = None,
                         retries: int = 3,
                         progress: Callable[[int], None] | None = None) -> Outputs:
    """Run draws as ``dask.distributed`` tasks; same arguments and result as ``simulate``.

    The returned tallies are bit-identical to :func:`simsend.engine.simulate` with the same
    arguments, whatever the cluster and chunk sizes.

    Parameters
    ----------
    individuals, pool, source, draws, n_years, seed, layout
        As for :func:`simsend.engine.simulate`.
    client : distributed.Client, optional
        Use this client (and its cluster).
    workers : int, optional
        Start a local cluster of this many single-threaded worker processes for the run.
    scheduler : str, optional
        Address of a running scheduler (e.g. ``tcp://10.0.0.5:8786``).
    draw_chunk : int, optional
        Draws per task (default: about four tasks per worker thread).
    area_chunk : int, optional
        Areas per task (default: every area in one task).
    retries : int
        Times a task that raised is re-run (a task whose worker died is rescheduled by the
        scheduler, up to its ``allowed-failures`` setting).
    progress : callable, optional
        Called with the number of draws whose every area chunk has finished.

    Returns
    -------
    Outputs
        Raw tallies in the order of ``draws``.

    Examples
    --------
    >>> out = simulate_distributed(ind, pool, src, range(8), 4, 1, layout,
    ...                            workers=2)  # doctest: +SKIP

    """
    import dask
    from distributed import Client, LocalCluster, as_completed, wait

    given = [x is not None for x in (client, workers, scheduler)]
    if sum(given) != 1:
        raise ValueError("give exactly one of client, workers or scheduler")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    draws = np.asarray(list(draws), dtype=np.int64)
    individuals, pool = np.asarray(individuals), np.asarray(pool)
    n_total = pool.shape[1]
    cluster = None
    own_client = client is None
    if workers is not None:
        # One Numba thread per worker process: the processes are the parallelism.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", env={"NUMBA_NUM_THREADS": "1"})
        client = Client(cluster)
    elif scheduler is not None:
        client = Client(scheduler)
    try:
        n_threads = max(1, sum(client.nthreads().values()))
        d = len(draws)
        if draw_chunk is None:
            draw_chunk = max(1, math.ceil(d / (4 * n_threads)))
        if area_chunk is None:
            area_chunk = n_total
        if draw_chunk < 1 or area_chunk < 1:
            raise ValueError("draw_chunk and area_chunk must be >= 1")
        m = layout.size
        res = Outputs(draws=draws, param_draw=np.full(d, -1, np.int64),
                      stock=np.zeros((d, n_years, m), np.int32),
                      flows=np.zeros((d, n_years, len(FLOWS), m), np.int32),
                      transitions=np.zeros((d, n_years, 4, 4), np.int32))
        # The inputs go to the cluster once, as a task (not scattered data, which is lost
        # for good when its worker dies; a task's result is recomputed).
        # They are sent once, on purpose, so the large-graph warning threshold is raised.
        with dask.config.set({"distributed.admin.large-graph-warning-threshold": "2GiB"}):
            inputs = client.submit(_inputs, individuals, pool, source, layout, pure=False)
        tasks = {}
        for k, (d0, d1, lo, hi) in enumerate(
                (d0, d1, lo, hi) for d0, d1 in _spans(d, draw_chunk)
                for lo, hi in _spans(n_total, area_chunk)):
            fut = client.submit(_run_chunk, inputs, draws[d0:d1], n_years, seed, lo, hi,
                                n_total, retries=retries, pure=False)
            tasks[fut] = (d0, d1, lo, hi)
            if k == 0:
                # The first task compiles (or loads) the kernels alone: Numba's on-disk cache
                # is not safe when processes sharing it write it at the same time.
                wait(fut)
        left = {}
        for (d0, _, _, _) in tasks.values():
            left[d0] = left.get(d0, 0) + 1
        done = 0
        for fut in as_completed(tasks):
            d0, d1, lo, hi = tasks.pop(fut)
            _place(res, fut.result(), np.arange(d0, d1), layout, lo, hi)
            fut.release()
            left[d0] -= 1
            if left[d0] == 0:
                done += d1 - d0
                if progress is not None:
                    progress(done)
        return res
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


def write_zarr(ds, path) -> Path:
    """Write a results Dataset to a Zarr store at ``path``, atomically.

    The store is written beside ``path`` under a temporary name and renamed into place when
    complete, so a failure leaves no partial store and an existing store is replaced only by
    a complete one.  Read it back with :func:`read_zarr` (or ``xarray.open_zarr`` lazily, for
    results larger than memory).

    Returns
    -------
    Path
        The written path.

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = path.with_name(f".{path.name}.old")
    try:
        ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
        if path.exists():
            path.rename(old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            old.rename(path)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return path


def read_zarr(path):
    """Read a Zarr results store fully into memory."""
    import xarray as xr

    with xr.open_zarr(path, consolidated=True) as ds:
        return ds.load()
