"""Parameter sets: year tables built once per set, wrapped sources reuse their sets."""

import dataclasses
import pickle
from pathlib import Path

import numpy as np

import simsend
from simsend import api

ROOT = Path(__file__).resolve().parents[2]


def test_fixed_rates_hand_out_one_set_and_tables_once():
    cfg = simsend.load(ROOT / "configs" / "base.toml").replace_data(areas=("E06000017",))
    base = api.load_baseline(cfg)
    src = api.run_source(cfg, base, None)  # scenario and provision wrappers over the rates
    fixed = simsend.load(ROOT / "configs" / "council.toml").replace_data(areas=("E06000017",))
    fixed = dataclasses.replace(fixed, model=dataclasses.replace(fixed.model, posterior=None,
                                                                placements="rules"))
    fsrc = api.run_source(fixed, api.load_baseline(fixed), None)
    a, b = fsrc.get(0), fsrc.get(7)
    assert a is b
    assert a.year_tables(3) is b.year_tables(3)
    # a posterior source gives each draw its own set, with its own tables
    p0, p1 = src.get(0), src.get(1)
    assert p0 is not p1
    assert not np.array_equal(p0.year_tables(3).tier_cdf, p1.year_tables(3).tier_cdf)
    # pickled (as for Dask workers) without the memo and the cached tables, same tables after
    again = pickle.loads(pickle.dumps(fsrc))
    assert "_last" not in again.__dict__
    assert "_tables" not in again.get(0).__dict__
    for x, y in zip(again.get(0).year_tables(3), a.year_tables(3), strict=True):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
