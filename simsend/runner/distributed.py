"""Scale-out: chunks of draws and areas as ``dask.distributed`` tasks, assembled exactly.

A run is split into tasks, one per (chunk of draws, chunk of areas).  Each task calls the
engine's own :func:`simsend.engine.loop.simulate` on its draws and areas and returns raw integer
tallies; the client writes them into one :class:`simsend.engine.loop.Outputs` at their draw and
area positions.  The result is bit-identical to the single-process run for any worker count
and any chunking, because

* every random number is a pure function of (seed, draw, year, stream, pupil id or cell
  counter) (:mod:`simsend.engine.streams`), so a draw does not depend on which other draws run
  with it;
* areas do not interact within a draw, and a chunk of areas keys its pupil ids and cell
  counters by the areas' indices in the whole run (``area_base`` / ``area_total`` of
  :func:`simsend.engine.loop.simulate`), so it draws exactly the numbers the whole run draws for
  those areas;
* tallies are integers: chunks over areas are placed along the ``area`` dimension, or summed
  exactly when the output has no ``area`` dimension.

Tasks are pure functions of their inputs, so a task whose worker dies is simply run again
(the scheduler reschedules it; ``retries`` also re-runs tasks that raised) with the same
result.

Run it with ``simsend run CONFIG --workers N`` (a local cluster of ``N`` worker processes) or
``--scheduler ADDRESS`` (an existing cluster), or from Python with
``simsend.run(cfg, cluster=Cluster(workers=N))`` / :func:`simulate_distributed`.

Two ways to collect the results:

* :func:`simulate_distributed` places every task's tallies into one :class:`Outputs` in the
  client's memory (:func:`simsend.runner.forecast.run_forecast`; NetCDF output);
* :func:`simsend.runner.stream.run_zarr` (``--out results.zarr``) turns each finished chunk of draws
  into its part of the results Dataset and writes it into a Zarr store straight away, with a
  bounded number of chunks in flight, so the client's memory does not grow with the draws.

Both read tasks through :func:`iter_chunks` and combine area chunks with :func:`place_chunk`, which
is generic over the array fields of :class:`Outputs` (a field that is None is skipped; fields
not over the marginal are named in :data:`_NOT_BY_CELL`).  Zarr stores are written under a
temporary name and renamed into place when complete (:func:`simsend.io.write_zarr`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simsend.engine.loop import Job, Outputs, simulate
from simsend.engine.tally import Layout, make_layout
from simsend.rates.modifiers import slice_modifiers
from simsend.rates.parameters import ParameterSet
from simsend.rates.sources import ParameterSource, WrappedSource

_AREA_AXIS = {"identification": 1, "tiers": 4, "births": 0, "places": 1, "placement_path": 1}
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
    # Fields that are per area only in some sets: trends (per age and area, or per area) and
    # the calibrated walks and residuals (per year, [tier, age,] area).
    for name, ndim in (("escalation_trend", 2), ("identification_trend", 1),
                       ("escalation_shock", 2), ("identification_shock", 2),
                       ("stock_shock", 4)):
        a = getattr(ps, name, None)
        if a is not None and (np.ndim(a) == ndim or (name == "escalation_shock"
                                                      and np.ndim(a) == 3)):
            if np.shape(a)[-1] != n:
                raise ValueError(f"parameter {name!r} has {np.shape(a)[-1]} areas, expected {n}")
            changes[name] = np.ascontiguousarray(np.asarray(a)[..., lo:hi])
    if getattr(ps, "modifiers", ()):
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


def _inputs(individuals, pool, source, layout, demography=None):
    """Hold the run's inputs as one task result (recomputed by the scheduler if lost)."""
    return individuals, pool, source, layout, demography


def _run_chunk(inputs, draws, n_years, seed, area_span):
    """One task: the engine over ``draws`` and areas ``lo .. hi - 1`` of ``n_total``.

    Runs on a worker.
    """
    individuals, pool, source, layout, demography = inputs
    lo, hi, n_total = area_span
    if (lo, hi) != (0, n_total):
        source = AreaSlice(source, lo, hi)
        demography = None if demography is None else demography.areas(lo, hi)
    job = Job(individuals[..., lo:hi, :], pool[:, lo:hi], n_years, seed,
              _chunk_layout(layout, lo, hi), area_base=lo, area_total=n_total,
              demography=demography)
    return simulate(job, source, draws)


def spans(n: int, size: int) -> list[tuple[int, int]]:
    """Return ``[(start, stop), ...]`` cutting ``range(n)`` into runs of ``size``."""
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


def empty_outputs(part: Outputs, draws: np.ndarray, layout: Layout) -> Outputs:
    """Zeroed :class:`Outputs` for ``draws`` over every area, with ``part``'s fields."""
    draws = np.asarray(draws, np.int64)
    return type(part)(draws=draws, **{name: _whole(name, a, len(draws), layout.size)
                                      for name, a in _draw_fields(part)})


def place_chunk(res: Outputs, part: Outputs, rows: slice, layout: Layout, lo: int,
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
def cluster_client(client=None, workers: int | None = None, scheduler: str | None = None):
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


@dataclass(frozen=True)
class Cluster:
    """Where and how a run's draws go as ``dask.distributed`` tasks.

    Attributes
    ----------
    workers : int, optional
        Start a local cluster of this many single-threaded worker processes for the run.
    scheduler : str, optional
        Address of a running scheduler (e.g. ``tcp://10.0.0.5:8786``).
    client : distributed.Client, optional
        Use this client (and its cluster).  Give exactly one of the three.
    draw_chunk : int, optional
        Draws per task (default: about four tasks per worker thread).
    area_chunk : int, optional
        Areas per task (default: every area in one task).
    retries : int
        Times a task that raised is re-run (a task whose worker died is rescheduled by the
        scheduler, up to its ``allowed-failures`` setting).

    """

    workers: int | None = None
    scheduler: str | None = None
    client: Any = None
    draw_chunk: int | None = None
    area_chunk: int | None = None
    retries: int = 3

    def __post_init__(self):
        if sum(x is not None for x in (self.workers, self.scheduler, self.client)) > 1:
            raise ValueError("give at most one of workers, scheduler or client")
        for name in ("draw_chunk", "area_chunk"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")

    @property
    def named(self) -> bool:
        """Whether a cluster is named at all (else the run stays in this process)."""
        return any(x is not None for x in (self.workers, self.scheduler, self.client))

    def connect(self):
        """Context manager yielding a ``distributed.Client`` (see :func:`cluster_client`)."""
        return cluster_client(self.client, self.workers, self.scheduler)


def iter_chunks(client, job: Job, sources: Sequence[ParameterSource], draws: np.ndarray,
                draw_chunk: int, area_chunk: int, *, retries: int = 3,
                window: int | None = None) -> Iterator[tuple]:
    """Run (source, chunk of draws, chunk of areas) tasks and yield their tallies as they finish.

    Parameters
    ----------
    client : distributed.Client
    job : Job
        The run's baseline, horizon, seed and marginal.
    sources : sequence of ParameterSource
        One per run (e.g. per scenario); every run covers all ``draws``.
    draws : ndarray
        Draw numbers.
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
    individuals, pool, layout = job.individuals, job.pool, job.layout
    n_total = pool.shape[1]
    # The inputs go to the cluster once per source, as a task (not scattered data, which is
    # lost for good when its worker dies; a task's result is recomputed).  They are sent once,
    # on purpose, so the large-graph warning threshold is raised.
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "2GiB"}):
        inputs = [client.submit(_inputs, individuals, pool, src, layout, job.demography,
                                pure=False) for src in sources]
    units = [(k, d0, d1) for k in range(len(sources)) for d0, d1 in spans(len(draws),
                                                                          draw_chunk)]
    areas = spans(n_total, area_chunk)
    window = len(units) if window is None else max(1, window)
    meta, left = {}, {}
    ac = as_completed()

    def submit(u: int) -> None:
        k, d0, d1 = units[u]
        left[u] = len(areas)
        for lo, hi in areas:
            fut = client.submit(_run_chunk, inputs[k], draws[d0:d1], job.n_years, job.seed,
                                (lo, hi, n_total), retries=retries, pure=False)
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


def simulate_distributed(job: Job, source: ParameterSource, draws: Sequence[int],
                         cluster: Cluster, progress: Callable[[int], None] | None = None
                         ) -> Outputs:
    """Run draws as ``dask.distributed`` tasks; the same tallies as the engine in one process.

    The returned tallies are bit-identical to :func:`simsend.engine.loop.simulate` with the
    same inputs, whatever the cluster and chunk sizes.  The whole result is assembled in this
    process's memory; :func:`simsend.runner.stream.run_zarr` streams chunks into a Zarr store
    instead.

    Parameters
    ----------
    job : Job
        The run's baseline, horizon, seed and marginal.
    source : ParameterSource
        Hands out each draw's parameter set (picklable: it travels to the workers).
    draws : sequence of int
        Draw numbers to run.
    cluster : Cluster
        Where the tasks run and how the draws and areas are chunked.
    progress : callable, optional
        Called with the number of draws whose every area chunk has finished.

    Returns
    -------
    Outputs
        Raw tallies in the order of ``draws``.

    Examples
    --------
    >>> out = simulate_distributed(Job(ind, pool, 4, 1, layout), src, range(8),
    ...                            Cluster(workers=2))  # doctest: +SKIP

    """
    draws = np.asarray(list(draws), dtype=np.int64)
    individuals, pool = np.asarray(job.individuals), np.asarray(job.pool)
    job = dataclasses.replace(job, individuals=individuals, pool=pool)
    with cluster.connect() as cl:
        d, n_total = len(draws), pool.shape[1]
        draw_chunk = cluster.draw_chunk or max(1, math.ceil(d / (4 * n_threads(cl))))
        area_chunk = cluster.area_chunk or n_total
        if d == 0:
            return simulate(job, source, draws)
        res, done = None, 0
        for _, d0, d1, lo, hi, part, last in iter_chunks(
                cl, job, [source], draws, draw_chunk, area_chunk, retries=cluster.retries):
            if res is None:
                res = empty_outputs(part, draws, job.layout)
            place_chunk(res, part, slice(d0, d1), job.layout, lo, hi)
            del part
            if last:
                done += d1 - d0
                if progress is not None:
                    progress(done)
        return res
