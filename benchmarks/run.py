"""simsend benchmark suite: pupil-steps per second, wall time and peak memory.

One command: ``python benchmarks/run.py --out benchmarks/results.json`` (``--quick`` for a
smoke run with small sizes, ``--cases a,b`` for a subset).  Each case runs in its own fresh
subprocess, so its peak resident memory (``ru_maxrss``, which also sees Numba's allocations)
is its own; JIT compilation is warmed up (or loaded from Numba's on-disk cache) before timing
unless the case measures it; each figure is the median of ``--repeat`` timings.  A plain NumPy
implementation of the step is timed in the same invocation and is the ratio's denominator.
Where the time of one year goes, stage by stage: ``python benchmarks/profile_year.py year``.

Cases
-----
transition_numba   the tier-transition step (kernels.transitions.tier_step): each pupil draws
                   one counter-based uniform, moves tier by its cell's row, and the new tiers
                   are tallied by (cell, tier); pupils grouped by (age, need, area)
transition_numpy   the same step in plain vectorised NumPy (reference.step_tally: gather the
                   row, compare, bincount) with NumPy's own uniforms: the ratio's denominator
fused_numba        the engine's fused per-pupil kernel (ageing, leaving, tier and placement
                   moves, flow tallies; three uniforms per pupil)
fused_numpy        the same fused step in NumPy (reference.step_pupils): the denominator of
                   every engine-level ratio below (a lower bound on a NumPy year's cost)
year_engine        a whole simulated year of configs/base.toml (England) through the engine,
                   every process included; pupil-steps = individuals at the census before
years_in_run       the whole years of a run: engine.simulate of configs/base.toml (England),
                   8 draws x 13 years, draws shared between threads as in a run, no
                   results assembly; pupil-steps = individuals at each census before the last
run_council        configs/council.toml (one council, 2022-2035), --council-draws draws
                   (default 1,000): first run in a fresh process (kernels loaded from the
                   on-disk cache) and the median of the runs after it
compile_cold       first small run in a fresh process with an empty Numba cache (compiles)
compile_cached     the same with the project's cache (loads machine code from disk)
run_england        configs/base.toml (England as one area, 2022-2035), --draws draws
run_all_councils   every council as a separate area (--area all), 2022-2035,
                   --all-draws draws; the time for 1,000 draws is extrapolated linearly and
                   labelled so (draws are independent: the baseline is loaded once, the rest
                   of the run is linear in draws)
stream_all_councils     every council as a separate area, 2022-2035, --stream-draws draws
                   (default 20) streamed into a Zarr store (simsend.runner.stream.run_zarr, default
                   draws per chunk) in a temporary directory, after a one-draw warm-up run
                   (one council, same config) in the same process; --repeat // 3 timed
                   runs (median); also the
                   size of the whole result in memory (what the in-memory path would hold)
                   and of the store on disk
stream_all_councils_2x  the same with twice the draws: peak memory that does not grow with
                   draws shows the results are streamed, not assembled
calibration        simsend.calibration.calibrate on configs/base.toml with its defaults
                   (wall time and memory; no NumPy counterpart)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_A, N_N, N_P = 26, 13, 7


def _population(n: int, n_area: int, seed: int = 0):
    """N pupils in cell order with random states, plus random tables."""
    from simsend.kernels.merge import cell_of
    from simsend.kernels.transitions import Pupils

    rng = np.random.default_rng(seed)
    age = rng.integers(0, N_A - 1, n)
    need = rng.integers(0, N_N, n)
    area = rng.integers(0, n_area, n)
    cells = cell_of(age, need, area, N_N, n_area)
    order = np.argsort(cells, kind="stable")
    tier = rng.integers(1, 4, n).astype(np.int8)
    p = Pupils(tier=tier, plan=np.where(tier == 3, 3, 1).astype(np.int8),
               age=age[order].astype(np.int8), need=need[order].astype(np.int8),
               area=area[order].astype(np.int16),
               placement=rng.integers(0, N_P, n).astype(np.int8),
               pid=np.arange(n, dtype=np.int64),
               alloc=np.zeros(n, np.int8))
    cell_start = np.searchsorted(cells[order], np.arange(N_A * N_N * n_area + 1)).astype(np.int64)
    pr = rng.dirichlet([20, 70, 6, 4], size=(N_A, N_N, n_area, 4))
    tier_cdf = np.cumsum(pr, axis=-1)
    tier_cdf[..., -1] = 1.0
    q = rng.dirichlet(np.ones(N_P), size=(4, N_A, N_P)) * 0.05
    q[:, :, np.arange(N_P), np.arange(N_P)] += 0.95
    place_cdf = np.cumsum(q, axis=-1)
    place_cdf[..., -1] = 1.0
    p_leave = np.full((4, N_A), 0.02)
    return p, cell_start, (tier_cdf, place_cdf, p_leave, np.zeros((0, N_A, N_P, N_P)),
                           np.zeros((0, N_A, N_P)))


def _time(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def case_transition_numba(n: int, n_area: int, repeat: int) -> dict:
    import numba

    from simsend.engine.loop import _chunks
    from simsend.kernels.transitions import tier_step

    p, cell_start, (tier_cdf, _, _) = _population(n, n_area)
    n_cells = len(cell_start) - 1
    cdf = np.ascontiguousarray(tier_cdf.reshape(n_cells, 4, 4))
    chunks = _chunks(cell_start, 8 * numba.config.NUMBA_NUM_THREADS)
    counts = np.zeros((n_cells, 4), np.int64)
    tier, pid = p.tier.copy(), p.pid.view(np.uint64)
    year = [0]

    def once():
        year[0] += 1  # a new key each simulated year, as in the engine
        counts[:] = 0
        tier_step(tier, pid, cell_start, cdf, np.uint64(year[0]), chunks, counts)

    once()  # JIT warm-up (compiled code is cached on disk between runs)
    return {"times": _time(once, repeat), "pupil_steps": n,
            "threads": numba.config.NUMBA_NUM_THREADS}


def case_transition_numpy(n: int, n_area: int, repeat: int) -> dict:
    from simsend import reference

    p, _, (tier_cdf, _, _) = _population(n, n_area)
    rng = np.random.default_rng(1)
    tier = p.tier.astype(np.int64)
    age, need, area = p.age.astype(np.int64), p.need.astype(np.int64), p.area.astype(np.int64)

    def once():
        nonlocal tier
        tier, _ = reference.step_tally(tier, age, need, area, rng.random(n), tier_cdf)

    once()
    return {"times": _time(once, repeat), "pupil_steps": n, "threads": 1}


def case_fused_numba(n: int, n_area: int, repeat: int) -> dict:
    import numba

    from simsend.engine.loop import _chunks
    from simsend.engine.tally import make_layout
    from simsend.kernels.transitions import N_FLOW_ROWS, Pupils, step_pupils

    p0, cell_start, tables = _population(n, n_area)
    layout = make_layout(("tier", "age_group", "need", "area"),
                         tuple(str(i) for i in range(n_area)))
    t = numba.config.NUMBA_NUM_THREADS
    m = layout.size
    out = (np.zeros((t, N_FLOW_ROWS, m), np.int64), np.zeros((t, 4, 4), np.int64),
           np.zeros((t, N_A, n_area), np.int64),
           np.zeros(len(cell_start) - 1 + N_N * n_area, np.int64), np.zeros(2, np.int8))
    chunks = _chunks(cell_start, 8 * t)
    keys = np.array([1, 2, 3], np.uint64)
    work = Pupils(*(a.copy() for a in p0))

    def once():
        for a, b in zip(work, p0, strict=True):
            a[:] = b  # restore state (memcpy, a small part of the time; included honestly)
        step_pupils(work, chunks, cell_start, tables, keys, layout.marginal, out)

    once()  # JIT warm-up (compiled code is cached on disk between runs)
    return {"times": _time(once, repeat), "pupil_steps": n, "threads": t}


def case_fused_numpy(n: int, n_area: int, repeat: int) -> dict:
    from simsend import reference

    p, _, tables = _population(n, n_area)
    rng = np.random.default_rng(1)
    tier, plan, age = p.tier.astype(np.int64), p.plan.astype(np.int64), p.age.astype(np.int64)
    need, area = p.need.astype(np.int64), p.area.astype(np.int64)
    plac = p.placement.astype(np.int64)
    m_strides = np.array([1, 0, 4, 0, 0, 0])

    def once():
        u = rng.random((3, n))
        r = reference.step_pupils(tier, plan, age, need, area, plac, u, tables)
        idx = np.maximum(r["tier"], 0) * m_strides[0] + r["age"] * m_strides[2]
        np.bincount(idx[r["tier"] >= 0], minlength=4 * 27)

    once()
    return {"times": _time(once, repeat), "pupil_steps": n, "threads": 1}


def case_year_engine(n_draws: int, repeat: int) -> dict:
    from simsend import api
    from simsend.config import load
    from simsend.engine.loop import _Scratch, baseline_stock, run_year
    from simsend.engine.population import Population
    from simsend.engine.streams import draw_keys
    from simsend.engine.tally import make_layout
    from simsend.rates.demography import demography_source

    cfg = load(ROOT / "configs" / "base.toml")
    base = api.load_baseline(cfg)
    src = api.parameter_source(cfg, base)
    layout = make_layout(cfg.outputs.by, base.areas)
    pop = Population(len(base.areas), int(base.individuals.sum() * 1.3))
    sc = _Scratch(len(base.areas), layout.size, pop.n_cells)
    keys = draw_keys(1, 0, 14)
    ps = src.get(0)
    moves = demography_source(cfg, base).get(0)  # migration and births, as a run has them

    def once():
        pop.load_counts(base.individuals, base.pool)
        baseline_stock(pop, layout)
        n0 = pop.n
        t0 = time.perf_counter()
        run_year(pop, ps, 1, keys[1], layout, sc, moves)
        return time.perf_counter() - t0, n0

    once()
    res = [once() for _ in range(repeat)]
    return {"times": [r[0] for r in res], "pupil_steps": res[0][1], "threads": 0}


def case_years_in_run(n_draws: int, repeat: int) -> dict:
    """Whole simulated years as a run does them: ``engine.simulate`` of England, 2025-2035.

    Every process of every year included (tables, identification, moves, allocation,
    tallies), with the draws shared between threads as in a run; no results assembly.
    Pupil-steps are the individuals at each census before the last (``_run_pupil_steps``).
    """
    from simsend import api
    from simsend.config import load
    from simsend.engine.loop import Job, simulate
    from simsend.engine.tally import make_layout
    from simsend.rates.demography import demography_source

    cfg = load(ROOT / "configs" / "base.toml")
    base = api.load_baseline(cfg)
    src = api.run_source(cfg, base, None)
    demo = demography_source(cfg, base)
    layout = make_layout(cfg.outputs.by, base.areas)
    n_years = cfg.run.end_year - cfg.run.start_year + 1
    simulate(Job(base.individuals, base.pool, 2, 1, layout, demography=demo), src, [0])

    def once():
        return simulate(Job(base.individuals, base.pool, n_years, 1, layout, demography=demo),
                        src, range(n_draws))

    out = once()
    stock = out.stock.reshape(n_draws, n_years, *layout.shape)[:, :-1]
    steps = int(stock.take(range(1, 4), axis=2 + layout.by.index("tier")).sum())
    return {"times": _time(once, repeat), "pupil_steps": steps, "draws": n_draws,
            "years": n_years - 1, "threads": 0}


def _run_pupil_steps(ds, n_draws: int) -> int:
    """Individual pupil-steps of a run: identified children at each census before the last."""
    ind = ds["n_pupils"].sel(tier=["targeted", "targeted_plus", "specialist"])
    return int(ind.isel(year=slice(0, -1)).sum())


def case_run(config: str, n_draws: int, repeat: int, areas=None) -> dict:
    """Full runs of ``config``: the first in this fresh process, then ``repeat`` more."""
    import simsend

    cfg = ROOT / "configs" / config
    t0 = time.perf_counter()
    ds = simsend.run(cfg, draws=n_draws, areas=areas)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ds = simsend.run(cfg, draws=n_draws, areas=areas)
        times.append(time.perf_counter() - t0)
    timings = json.loads(ds.attrs.get("timings", "{}"))
    return {"times": times or [first], "first_run_s": first, "draws": n_draws,
            "baseline_s": timings.get("baseline_s"), "areas": int(ds.sizes.get("area", 1)),
            "pupil_steps": _run_pupil_steps(ds, n_draws),
            "result_mib": ds.nbytes / 2**20, "threads": 0}


def case_stream(n_draws: int, repeat: int) -> dict:
    """Every council, ``n_draws`` draws, streamed into a Zarr store chunk by chunk."""
    import tempfile

    import xarray as xr

    import simsend
    from simsend.runner.stream import run_zarr

    warm = simsend.load(ROOT / "configs" / "base.toml")
    warm = warm.replace_run(end_year=warm.run.start_year + 1, draws=1)
    simsend.run(warm, areas=("E06000017",))  # kernels (allocation too) loaded, data read once
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeat):
            t0 = time.perf_counter()
            path = run_zarr(ROOT / "configs" / "base.toml", Path(tmp) / f"all{k}.zarr",
                            draws=n_draws, areas=("all",))
            times.append(time.perf_counter() - t0)
        store = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        with xr.open_zarr(path) as ds:
            timings = json.loads(ds.attrs["timings"])
            steps = _run_pupil_steps(ds, n_draws)
            return {"times": times, "draws": n_draws, "baseline_s": timings["baseline_s"],
                    "draw_chunk": timings["streamed_draw_chunk"],
                    "areas": int(ds.sizes.get("area", 1)), "pupil_steps": steps,
                    "result_mib": ds.nbytes / 2**20, "store_mib": store / 2**20,
                    "threads": 0}


def case_compile() -> dict:
    """A small run in this fresh process: kernels compiled, or loaded from the disk cache."""
    import simsend

    cfg = simsend.load(ROOT / "configs" / "council.toml")
    cfg = cfg.replace_run(end_year=cfg.run.start_year + 1, draws=1)
    t0 = time.perf_counter()
    import simsend.engine.loop  # noqa: F401  (imports the kernels)

    simsend.run(cfg)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    simsend.run(cfg)
    return {"times": [first], "second_run_s": time.perf_counter() - t0, "pupil_steps": 0,
            "threads": 0}


def case_calibration(repeat: int) -> dict:
    import tempfile

    from simsend.calibration import calibrate

    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeat):
            t0 = time.perf_counter()
            calibrate(ROOT / "configs" / "base.toml", Path(tmp) / f"post{k}.nc",
                      allow_failed_diagnostics=True)
            times.append(time.perf_counter() - t0)
    return {"times": times, "pupil_steps": 0, "threads": 0}


CASES = {
    "transition_numba": lambda a: case_transition_numba(a.n, a.areas, a.repeat),
    "transition_numpy": lambda a: case_transition_numpy(a.n, a.areas, a.repeat),
    "fused_numba": lambda a: case_fused_numba(a.n, a.areas, a.repeat),
    "fused_numpy": lambda a: case_fused_numpy(a.n, a.areas, a.repeat),
    "year_engine": lambda a: case_year_engine(1, a.repeat),
    "years_in_run": lambda a: case_years_in_run(8, max(1, a.repeat // 3)),
    "run_council": lambda a: case_run("council.toml", a.council_draws, max(1, a.repeat // 3)),
    "compile_cold": lambda a: case_compile(),
    "compile_cached": lambda a: case_compile(),
    "run_england": lambda a: case_run("base.toml", a.draws, max(1, a.repeat // 3)),
    "run_all_councils": lambda a: case_run("base.toml", a.all_draws, max(1, a.repeat // 3),
                                           areas=("all",)),
    "stream_all_councils": lambda a: case_stream(a.stream_draws, max(1, a.repeat // 3)),
    "stream_all_councils_2x": lambda a: case_stream(2 * a.stream_draws, max(1, a.repeat // 3)),
    "calibration": lambda a: case_calibration(1),
}

NUMPY_OF = {"transition_numba": "transition_numpy", "fused_numba": "fused_numpy",
            "year_engine": "fused_numpy", "years_in_run": "fused_numpy",
            "run_council": "fused_numpy",
            "run_england": "fused_numpy", "run_all_councils": "fused_numpy",
            "stream_all_councils": "fused_numpy", "stream_all_councils_2x": "fused_numpy"}
"""Which NumPy case is each case's ratio denominator (pupil-steps/s, same invocation)."""


def _child(args) -> None:
    res = CASES[args.case](args)
    res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


def _run_case(case: str, args, tmp: Path) -> dict | None:
    cmd = [sys.executable, __file__, "--case", case, "--n", str(args.n), "--areas",
           str(args.areas), "--draws", str(args.draws), "--repeat", str(args.repeat),
           "--council-draws", str(args.council_draws), "--all-draws", str(args.all_draws),
           "--stream-draws", str(args.stream_draws)]
    env = dict(os.environ)
    if case == "compile_cold":
        env["NUMBA_CACHE_DIR"] = str(tmp / "empty_numba_cache")  # nothing cached: compiles
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode != 0:
        print(f"{case}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    r["median_s"] = statistics.median(r["times"])
    if r["pupil_steps"]:
        r["pupil_steps_per_s"] = r["pupil_steps"] / r["median_s"]
    if "draws" in r:
        # linear in draws: loading the baseline once, everything else once per draw
        fixed = r.get("baseline_s") or 0.0
        r["per_1000_draws_s_extrapolated"] = fixed + (r["median_s"] - fixed) / r["draws"] * 1000
    return r


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    ap.add_argument("--cases", help="comma-separated subset of the cases (default: all)")
    ap.add_argument("--n", type=int, default=10_000_000, help="pupils for kernel cases")
    ap.add_argument("--areas", type=int, default=150, help="areas for kernel cases")
    ap.add_argument("--draws", type=int, default=20, help="draws for run_england")
    ap.add_argument("--council-draws", type=int, default=1000, help="draws for run_council")
    ap.add_argument("--all-draws", type=int, default=10, help="draws for run_all_councils")
    ap.add_argument("--stream-draws", type=int, default=20,
                    help="draws for stream_all_councils (twice as many for its _2x case)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--out", type=Path, help="write the figures as JSON")
    args = ap.parse_args()
    if args.quick:
        args.n, args.repeat, args.draws = 200_000, 3, 2
        args.council_draws, args.all_draws, args.stream_draws = 20, 1, 1
    if args.case:
        _child(args)
        return
    cases = list(CASES) if not args.cases else args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        ap.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            r = _run_case(case, args, Path(tmp))
            if r is None:
                continue
            results[case] = r
            rate = (f"{r['pupil_steps_per_s']:10.3e} pupil-steps/s" if "pupil_steps_per_s" in r
                    else " " * 24)
            print(f"{case:18s} median {r['median_s']:9.3f} s  {rate}  peak RSS "
                  f"{r['peak_rss_mib']:7.0f} MiB", flush=True)
    for case, den in NUMPY_OF.items():
        if case in results and den in results and "pupil_steps_per_s" in results[case]:
            ratio = results[case]["pupil_steps_per_s"] / results[den]["pupil_steps_per_s"]
            results[case]["ratio_to_numpy"] = ratio
            results[case]["numpy_case"] = den
            print(f"{case} / {den} (pupil-steps/s, same invocation, medians): {ratio:.1f}x")
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform(), "n": args.n, "areas": args.areas,
                          "load_average": os.getloadavg()}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
