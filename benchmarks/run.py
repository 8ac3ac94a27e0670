"""simsend benchmark suite: pupil-steps per second, wall time and peak memory.

Run ``python benchmarks/run.py`` (``--quick`` for a smoke run, ``--out FILE.json`` to keep the
figures).  Each case runs in its own subprocess so its peak resident memory is its own; JIT
compilation is warmed up before timing; each figure is the median of ``--repeat`` timings.

Cases
-----
transition_numba   the tier-transition step (kernels.transitions.tier_step): each pupil draws
                   one counter-based uniform, moves tier by its cell's row, and the new tiers
                   are tallied by (cell, tier); pupils grouped by (age, need, area)
transition_numpy   the same step in plain vectorised NumPy (reference.step_tally: gather the
                   row, compare, bincount) with NumPy's own uniforms: the ratio's denominator
fused_numba        the engine's fused per-pupil kernel (ageing, leaving, tier and placement
                   moves, flow tallies; three uniforms per pupil)
fused_numpy        the same fused step in NumPy (reference.step_pupils)
year_engine        a whole simulated year through the engine, every process included
run_england        a full run of configs/base.toml (England, 2022-2035), draws as given
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
    from simsend.kernels.layout import cell_of
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
               pid=np.arange(n, dtype=np.int64))
    cell_start = np.searchsorted(cells[order], np.arange(N_A * N_N * n_area + 1)).astype(np.int64)
    pr = rng.dirichlet([20, 70, 6, 4], size=(N_A, N_N, n_area, 4))
    tier_cdf = np.cumsum(pr, axis=-1)
    tier_cdf[..., -1] = 1.0
    q = rng.dirichlet(np.ones(N_P), size=(4, N_A, N_P)) * 0.05
    q[:, :, np.arange(N_P), np.arange(N_P)] += 0.95
    place_cdf = np.cumsum(q, axis=-1)
    place_cdf[..., -1] = 1.0
    p_leave = np.full((4, N_A), 0.02)
    return p, cell_start, (tier_cdf, place_cdf, p_leave)


def _time(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def case_transition_numba(n: int, n_area: int, repeat: int) -> dict:
    import numba

    from simsend.engine import _chunks
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

    from simsend.engine import _chunks
    from simsend.kernels.transitions import Pupils, step_pupils
    from simsend.recorder import make_layout

    p0, cell_start, tables = _population(n, n_area)
    layout = make_layout(("tier", "age_group", "need", "area"),
                         tuple(str(i) for i in range(n_area)))
    t = numba.config.NUMBA_NUM_THREADS
    m = layout.size
    out = (np.zeros((t, 3, m), np.int64), np.zeros((t, 4, 4), np.int64),
           np.zeros((t, N_A, n_area), np.int64),
           np.zeros(len(cell_start) - 1 + N_N * n_area, np.int64), np.zeros(1, np.int8))
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
    from simsend.engine import _Scratch, baseline_stock, run_year
    from simsend.population import Population
    from simsend.recorder import make_layout
    from simsend.rng import draw_keys

    cfg = load(ROOT / "configs" / "base.toml")
    base = api.load_baseline(cfg)
    src = api.parameter_source(cfg, base)
    layout = make_layout(cfg.outputs.by, base.areas)
    pop = Population(len(base.areas), int(base.individuals.sum() * 1.3))
    sc = _Scratch(len(base.areas), layout.size, pop.n_cells)
    keys = draw_keys(1, 0, 14)
    ps = src.get(0)

    def once():
        pop.load_counts(base.individuals, base.pool)
        baseline_stock(pop, layout)
        n0 = pop.n
        t0 = time.perf_counter()
        run_year(pop, ps, 1, keys[1], layout, sc)
        return time.perf_counter() - t0, n0

    once()
    res = [once() for _ in range(repeat)]
    return {"times": [r[0] for r in res], "pupil_steps": res[0][1], "threads": 0}


def case_run_england(n_draws: int, repeat: int) -> dict:
    import simsend

    simsend.run(ROOT / "configs" / "base.toml", draws=1)  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ds = simsend.run(ROOT / "configs" / "base.toml", draws=n_draws)
        times.append(time.perf_counter() - t0)
    n_ind = int(ds["n_pupils"].sel(tier=["targeted", "targeted_plus", "specialist"])
                .isel(year=slice(0, -1)).sum()) // n_draws
    return {"times": times, "pupil_steps": n_ind * n_draws, "threads": 0}


CASES = {
    "transition_numba": lambda a: case_transition_numba(a.n, a.areas, a.repeat),
    "transition_numpy": lambda a: case_transition_numpy(a.n, a.areas, a.repeat),
    "fused_numba": lambda a: case_fused_numba(a.n, a.areas, a.repeat),
    "fused_numpy": lambda a: case_fused_numpy(a.n, a.areas, a.repeat),
    "year_engine": lambda a: case_year_engine(1, a.repeat),
    "run_england": lambda a: case_run_england(a.draws, max(1, a.repeat // 3)),
}


def _child(args) -> None:
    res = CASES[args.case](args)
    res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--case", choices=list(CASES))
    ap.add_argument("--n", type=int, default=10_000_000, help="pupils for kernel cases")
    ap.add_argument("--areas", type=int, default=150)
    ap.add_argument("--draws", type=int, default=20, help="draws for run_england")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--out", type=Path, help="write the figures as JSON")
    args = ap.parse_args()
    if args.quick:
        args.n, args.repeat, args.draws = 200_000, 3, 2
    if args.case:
        _child(args)
        return
    results = {}
    for case in CASES:
        cmd = [sys.executable, __file__, "--case", case, "--n", str(args.n), "--areas",
               str(args.areas), "--draws", str(args.draws), "--repeat", str(args.repeat)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(f"{case}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        med = statistics.median(r["times"])
        r["median_s"] = med
        r["pupil_steps_per_s"] = r["pupil_steps"] / med
        results[case] = r
        print(f"{case:18s} median {med * 1e3:9.2f} ms  {r['pupil_steps_per_s']:10.3e} "
              f"pupil-steps/s  peak RSS {r['peak_rss_mib']:7.0f} MiB", flush=True)
    if "transition_numba" in results and "transition_numpy" in results:
        ratio = (results["transition_numba"]["pupil_steps_per_s"]
                 / results["transition_numpy"]["pupil_steps_per_s"])
        results["ratio_numba_over_numpy"] = ratio
        print(f"transition kernel / NumPy (same run, medians): {ratio:.1f}x")
    if "fused_numba" in results and "fused_numpy" in results:
        ratio = (results["fused_numba"]["pupil_steps_per_s"]
                 / results["fused_numpy"]["pupil_steps_per_s"])
        results["ratio_fused_over_numpy"] = ratio
        print(f"fused pupil step / NumPy (same run, medians): {ratio:.1f}x")
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform(), "n": args.n, "areas": args.areas}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
