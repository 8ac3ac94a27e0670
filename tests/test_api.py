"""The public pipeline on the built-in England data: a run starts exactly at the baseline."""

import numpy as np

import simsend
from simsend.dims import AGE_GROUPS, NEEDS, TIERS


def test_base_run_reproduces_baseline_stock_at_first_year():
    cfg = simsend.load("configs/base.toml").replace_run(end_year=2023)
    base = simsend.load_baseline(cfg)
    ds = simsend.run(cfg, draws=1)
    first = ds["n_pupils"].sel(year=2022).isel(draw=0)
    # by tier: the individuals (targeted and above) and the universal pool
    by_tier = first.sum([d for d in first.dims if d != "tier"])
    expected = base.individuals.sum(axis=(1, 2, 3, 4))
    expected[0] = base.pool.sum()
    np.testing.assert_array_equal(by_tier.sel(tier=list(TIERS)).values, expected)
    # by tier x age group x need: the same cells as the baseline, exactly
    for t, tier in enumerate(TIERS[1:], start=1):
        for g, (lo, hi) in AGE_GROUPS.items():
            got = first.sel(tier=tier, age_group=g, need=list(NEEDS)).sum("area").values
            want = base.individuals[t, lo:hi + 1].sum(axis=(0, 2, 3))
            np.testing.assert_array_equal(got, want)
    # the specialist tier is SEN2's EHC plan count for January 2022
    assert int(by_tier.sel(tier="specialist")) == int(base.history["ehcp"].sel(year=2022).sum())
    # the year after differs (the run moved)
    assert not np.array_equal(ds["n_pupils"].sel(year=2023).values, first.values)
