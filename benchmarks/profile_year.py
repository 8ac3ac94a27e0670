"""Where the time of one simulated year goes, and of a streamed every-council run.

``python benchmarks/profile_year.py year`` times each stage of one year of every council
(``configs/base.toml --area all``, with its demography, on one thread as a run's draw threads
do) by wrapping the kernels :mod:`simsend.engine.loop` calls; what is left is the loop's own
Python and NumPy.  Medians over ``--repeat`` years (the same year from the same baseline).

``python benchmarks/profile_year.py stream --draws 8`` runs every council streamed into a
Zarr store under cProfile and prints the largest cumulative entries: the engine's draws
(``simulate``), the statutory pipeline, the Dataset assembly and the Zarr writes.

Profiling, not benchmarking: the wrappers add a few microseconds per call.  Quote
``benchmarks/run.py`` for figures.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("migrate_decide", "migrate_write", "pool_departures", "pool_arrivals", "thin_pool",
          "new_pupils_serial", "step_pupils_serial", "allocate", "sort_new",
          "merge_and_tally_serial", "year_pass", "arrivals", "hide_new", "restore_new",
          "tally_census", "queue_new", "resolve", "requests_tally", "year_tables")


def profile_year(repeat: int, areas: tuple[str, ...], rates_only: bool = False) -> None:
    import numba

    numba.set_num_threads(1)
    from simsend import api
    from simsend.config import load
    from simsend.engine import loop
    from simsend.engine.population import Population
    from simsend.engine.streams import draw_keys
    from simsend.engine.tally import make_layout
    from simsend.rates.demography import demography_source
    from simsend.runner.plan import with_overrides

    cfg = with_overrides(load(ROOT / "configs" / "base.toml"), areas=areas)
    base = api.load_baseline(cfg)
    # as a run has it (provision plan included), or the parameter source alone
    src = api.parameter_source(cfg, base) if rates_only else api.run_source(cfg, base, None)
    layout = make_layout(cfg.outputs.by, base.areas)
    pop = Population(len(base.areas), int(base.individuals.sum() * 1.3))
    sc = loop._Scratch(len(base.areas), layout.size, pop.n_cells, serial=True)
    keys = draw_keys(1, 0, 14)
    ps = src.get(0)
    moves = demography_source(cfg, base).get(0)
    spent: dict[str, list[float]] = defaultdict(list)

    def wrap(name, fn):
        def timed(*a, **k):
            t0 = time.perf_counter()
            r = fn(*a, **k)
            spent[name][-1] += time.perf_counter() - t0
            return r
        return timed

    for name in STAGES[:-1]:
        if hasattr(loop, name):  # the stages of the code being profiled
            setattr(loop, name, wrap(name, getattr(loop, name)))
    year_tables = ps.year_tables

    def tables(yi):
        t0 = time.perf_counter()
        r = year_tables(yi)
        spent["year_tables"][-1] += time.perf_counter() - t0
        return r

    object.__setattr__(ps, "year_tables", tables)  # a frozen dataclass: patched for the run
    totals = []
    n0 = 0
    for _ in range(repeat + 1):
        pop.load_counts(base.individuals, base.pool)
        n0 = pop.n
        for name in STAGES:
            spent[name].append(0.0)
        t0 = time.perf_counter()
        loop.run_year(pop, ps, 1, keys[1], layout, sc, moves)
        totals.append(time.perf_counter() - t0)
    # the first year compiles or loads the kernels: dropped
    med = {name: statistics.median(v[1:]) for name, v in spent.items() if any(v[1:])}
    total = statistics.median(totals[1:])
    print(f"one year, {len(base.areas)} areas, {n0:,} individuals, one thread, median of "
          f"{repeat} (load {open('/proc/loadavg').read().split()[:3]})")
    for name in sorted(med, key=med.get, reverse=True):
        print(f"  {name:24s} {med[name] * 1e3:8.2f} ms")
    rest = total - sum(med.values())
    print(f"  {'rest (Python, NumPy)':24s} {rest * 1e3:8.2f} ms")
    print(f"  {'total':24s} {total * 1e3:8.2f} ms  ({n0 / total:.3e} pupil-steps/s)")


def profile_stream(n_draws: int, areas: tuple[str, ...], top: int) -> None:
    import simsend
    from simsend.runner.stream import run_zarr

    warm = simsend.load(ROOT / "configs" / "base.toml")
    warm = warm.replace_run(end_year=warm.run.start_year + 1, draws=1)
    simsend.run(warm, areas=("E06000017",))
    with tempfile.TemporaryDirectory() as tmp:
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        run_zarr(ROOT / "configs" / "base.toml", Path(tmp) / "all.zarr", draws=n_draws,
                 areas=areas)
        prof.disable()
        wall = time.perf_counter() - t0
    print(f"streamed run, {n_draws} draws, areas {areas}: {wall:.2f} s "
          f"(load {os.getloadavg()})")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=("year", "stream"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--area", default="all", help="area code, or all (default)")
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--rates-only", action="store_true",
                    help="year: the parameter source without the run's provision plan")
    a = ap.parse_args()
    areas = (a.area,)
    if a.what == "year":
        profile_year(a.repeat, areas, a.rates_only)
    else:
        profile_stream(a.draws, areas, a.top)


if __name__ == "__main__":
    main()
