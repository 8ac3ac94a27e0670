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

Two ways to collect the results:

* :func:`simulate_distributed` places every task's tallies into one :class:`Outputs` in the
  client's memory (:func:`simsend.api.run`; NetCDF output);
* :func:`simsend.stream.run_zarr` (``--out results.zarr``) turns each finished chunk of draws
  into its part of the results Dataset and writes it into a Zarr store straight away, with a
  bounded number of chunks in flight, so the client's memory does not grow with the draws.

Both read tasks through :func:`iter_chunks` and combine area chunks with :func:`_place`, which
is generic over the array fields of :class:`Outputs` (a field that is None is skipped; fields
not over the marginal are named in :data:`_NOT_BY_CELL`).  Zarr stores are written under a
temporary name and renamed into place when complete (:func:`write_zarr`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from simsend.engine import Outputs, simulate
from simsend.params import ParameterSet, ParameterSource, WrappedSource
from simsend.recorder import Layout, make_layout

_AREA_AXIS = {"identification": 1, "tiers": 4, "births": 0, "places": 1}
"""Axis of the area dimension in each area-indexed field of :class:`ParameterSet`."""


def _slice_params(ps: ParameterSet, lo: int, hi: int) -> ParameterSet:
    """Restrict a parameter set to areas ``lo .. hi - 1``."""
    n = ps.n_areas
    changes = {}
    for name, axis in _AREA_AXIS.items():
        a = getattr(ps, name)
        if a is None:  # optional (places: only with a provision plan)
            continue
        if a.shape[axis] != n:
            raise ValueError(f"parameter {name!r} has {a.shape[axis]} areas, expected {n}")
        changes[name] = np.ascontiguousarray(np.take(a, np.arange(lo, hi), axis=axis))
    if getattr(ps, "modifiers", ()):
        from simsend.scenarios import slice_modifiers

        changes["modifiers"] = slice_modifiers(ps.modifiers, lo, hi)  # area filters renumbered
    return dataclasses.replace(ps, **changes)


class ClusterError(Exception):
    """The cluster a run names cannot be used (e.g. no scheduler at the address)."""


class AreaSlice(WrappedSource):
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

    def wrap(self, ps: ParameterSet) -> ParameterSet:
        """Return the whole run's set ``ps`` restricted to this chunk's areas."""
        return _slice_params(ps, self.lo, self.hi)


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


_NOT_BY_CELL = {"param_draw": "label", "transitions": "sum"}
"""How chunks over areas combine the :class:`Outputs` fields that are not over the marginal:
``label`` (one value per draw, the same in every area chunk) is copied, ``sum`` (a tally over
every area) is added.  Every other field is a tally ``(D, ..., M)`` over the run's marginal
and is placed along its ``area`` axis (or added when the marginal has no ``area``)."""


def _draw_fields(out: Outputs) -> list[tuple[str, np.ndarray]]:
    """Return the array fields of ``out`` with a leading draw dim (``draws``, None skipped)."""
    return [(f.name, getattr(out, f.name)) for f in dataclasses.fields(out)
            if f.name != "draws" and isinstance(getattr(out, f.name), np.ndarray)]


def _whole(name: str, a: np.ndarray, n_draws: int, m: int) -> np.ndarray:
    """Return a zeroed whole-run array for a chunk's field ``name`` (``m``: run marginal)."""
    kind = _NOT_BY_CELL.get(name)
    if kind == "label":
        return np.full((n_draws, *a.shape[1:]), -1, a.dtype)
    shape = (n_draws, *a.shape[1:]) if kind == "sum" else (n_draws, *a.shape[1:-1], m)
    return np.zeros(shape, a.dtype)


def _empty_outputs(part: Outputs, draws: np.ndarray, layout: Layout) -> Outputs:
    """Zeroed :class:`Outputs` for ``draws`` over every area, with ``part``'s fields."""
    draws = np.asarray(draws, np.int64)
    return type(part)(draws=draws, **{name: _whole(name, a, len(draws), layout.size)
                                      for name, a in _draw_fields(part)})


def _place(res: Outputs, part: Outputs, rows: slice, layout: Layout, lo: int,
           hi: int) -> None:
    """Write a chunk's tallies into the whole run's at draws ``rows`` (exact integer arithmetic).

    Generic over the array fields of :class:`Outputs` (see :data:`_NOT_BY_CELL`); a field that
    ``res`` does not hold yet (None) is allocated.  Writes go through basic-slice views, so no
    temporary copy of ``res`` is made.
    """
    n_total, m = layout.pool_index.shape[1], layout.size
    whole_run = (lo, hi) == (0, n_total)
    for name, a in _draw_fields(part):
        dest = getattr(res, name)
        if dest is None:
            dest = _whole(name, a, len(res.draws), m)
            setattr(res, name, dest)
        kind = _NOT_BY_CELL.get(name, "cell")
        if kind == "label" or whole_run:
            dest[rows] = a
        elif kind == "sum" or "area" not in layout.by:
            dest[rows] += a
        else:
            ax = layout.by.index("area")
            sub = list(layout.shape)
            sub[ax] = hi - lo
            if a.shape[-1] != math.prod(sub):
                raise ValueError(f"Outputs.{name}: last axis {a.shape[-1]} is not the "
                                 f"chunk's marginal ({math.prod(sub)} cells); a field that "
                                 "is not over the marginal must be listed in _NOT_BY_CELL")
            lead = dest.shape[1:-1]
            view = dest.reshape(dest.shape[0], *lead, *layout.shape)
            sel = (rows, *(slice(None),) * (len(lead) + ax), slice(lo, hi))
            view[sel] = a.reshape(a.shape[0], *lead, *sub)


@contextlib.contextmanager
def _cluster(client=None, workers: int | None = None, scheduler: str | None = None):
    """Yield a ``distributed.Client`` for exactly one of the three ways to name a cluster.

    ``client`` as given, a local cluster of ``workers`` processes, or the cluster at
    ``scheduler``; what is started here is closed afterwards.
    """
    from distributed import Client, LocalCluster

    given = [x is not None for x in (client, workers, scheduler)]
    if sum(given) != 1:
        raise ValueError("give exactly one of client, workers or scheduler")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if client is not None:
        yield client
        return
    cluster = None
    if workers is not None:
        # One Numba thread per worker process: the processes are the parallelism.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", env={"NUMBA_NUM_THREADS": "1"})
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler)
        except (OSError, TimeoutError, ValueError) as exc:  # unreachable or malformed address
            raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler!r} "
                               f"({exc}); start one (`dask scheduler`) or use --workers N"
                               ) from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def n_threads(client) -> int:
    """Worker threads of a ``distributed.Client``'s cluster (at least 1)."""
    return max(1, sum(client.nthreads().values()))


def iter_chunks(client, individuals: np.ndarray, pool: np.ndarray,
                sources: Sequence[ParameterSource], draws: np.ndarray, n_years: int,
                seed: int, layout: Layout, draw_chunk: int, area_chunk: int, *,
                retries: int = 3, window: int | None = None) -> Iterator[tuple]:
    """Run (source, chunk of draws, chunk of areas) tasks and yield their tallies as they finish.

    Parameters
    ----------
    client : distributed.Client
    individuals, pool, draws, n_years, seed, layout
        As for :func:`simsend.engine.simulate`.
    sources : sequence of ParameterSource
        One per run (e.g. per scenario); every run covers all ``draws``.
    draw_chunk, area_chunk : int
        Draws and areas per task.
    retries : int
        Times a task that raised is re-run.
    window : int, optional
        Most units (a source and a chunk of draws, i.e. all its area tasks) submitted and not
        yet finished, which bounds the memory that finished results take before they are
        used (default: every unit at once).

    Yields
    ------
    tuple
        ``(k, d0, d1, lo, hi, part, last)``: source index ``k``, draws ``draws[d0:d1]``, areas
        ``lo .. hi - 1``, the task's :class:`Outputs` and whether it was the unit's last task.

    """
    import dask
    from distributed import as_completed, wait

    if draw_chunk < 1 or area_chunk < 1:
        raise ValueError("draw_chunk and area_chunk must be >= 1")
    n_total = pool.shape[1]
    # The inputs go to the cluster once per source, as a task (not scattered data, which is
    # lost for good when its worker dies; a task's result is recomputed).  They are sent once,
    # on purpose, so the large-graph warning threshold is raised.
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "2GiB"}):
        inputs = [client.submit(_inputs, individuals, pool, src, layout, pure=False)
                  for src in sources]
    units = [(k, d0, d1) for k in range(len(sources)) for d0, d1 in _spans(len(draws),
                                                                          draw_chunk)]
    areas = _spans(n_total, area_chunk)
    window = len(units) if window is None else max(1, window)
    meta, left = {}, {}
    ac = as_completed()

    def submit(u: int) -> None:
        k, d0, d1 = units[u]
        left[u] = len(areas)
        for lo, hi in areas:
            fut = client.submit(_run_chunk, inputs[k], draws[d0:d1], n_years, seed, lo, hi,
                                n_total, retries=retries, pure=False)
            meta[fut] = (u, lo, hi)
            if u == 0 and (lo, hi) == areas[0]:
                # The first task compiles (or loads) the kernels alone: Numba's on-disk cache
                # is not safe when processes sharing it write it at the same time.
                wait(fut)
            ac.add(fut)

    nxt = 0
    while nxt < min(window, len(units)):
        submit(nxt)
        nxt += 1
    for fut in ac:
        u, lo, hi = meta.pop(fut)
        box = [fut.result()]  # handed over below without a reference left in this frame
        fut.release()
        left[u] -= 1
        last = left[u] == 0
        if last:
            del left[u]
            if nxt < len(units):
                submit(nxt)
                nxt += 1
        k, d0, d1 = units[u]
        yield k, d0, d1, lo, hi, box.pop(), last


def simulate_distributed(individuals: np.ndarray, pool: np.ndarray, source: ParameterSource,
                         draws: Sequence[int], n_years: int, seed: int, layout: Layout, *,
                         client=None, workers: int | None = None, scheduler: str | None = None,
                         draw_chunk: int | None = None, area_chunk: int | None = None,
                         retries: int = 3,
                         progress: Callable[[int], None] | None = None) -> Outputs:
    """Run draws as ``dask.distributed`` tasks; same arguments and result as ``simulate``.

    The returned tallies are bit-identical to :func:`simsend.engine.simulate` with the same
    arguments, whatever the cluster and chunk sizes.  The whole result is assembled in this
    process's memory; :func:`simsend.stream.run_zarr` streams chunks into a Zarr store instead.

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
    draws = np.asarray(list(draws), dtype=np.int64)
    individuals, pool = np.asarray(individuals), np.asarray(pool)
    with _cluster(client, workers, scheduler) as cl:
        d, n_total = len(draws), pool.shape[1]
        if draw_chunk is None:
            draw_chunk = max(1, math.ceil(d / (4 * n_threads(cl))))
        if area_chunk is None:
            area_chunk = n_total
        if d == 0:
            return simulate(individuals, pool, source, draws, n_years, seed, layout)
        res, done = None, 0
        for _, d0, d1, lo, hi, part, last in iter_chunks(
                cl, individuals, pool, [source], draws, n_years, seed, layout, draw_chunk,
                area_chunk, retries=retries):
            if res is None:
                res = _empty_outputs(part, draws, layout)
            _place(res, part, slice(d0, d1), layout, lo, hi)
            del part
            if last:
                done += d1 - d0
                if progress is not None:
                    progress(done)
        return res


def _replace_store(write: Callable[[Path], object], path) -> Path:
    """Call ``write(tmp)`` on a temporary directory beside ``path``, then rename it into place.

    A failure removes the temporary store and leaves an existing ``path`` untouched; an
    existing store is replaced only by a complete one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = path.with_name(f".{path.name}.old")
    try:
        write(tmp)
        tmp.chmod(0o777 & ~_umask())
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    return _replace_store(
        lambda tmp: ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2), path)


def read_zarr(path):
    """Read a Zarr results store fully into memory."""
    import xarray as xr

    with xr.open_zarr(path, consolidated=True) as ds:
        return ds.load()
