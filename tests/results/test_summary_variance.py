"""Law-of-total-variance split of results by parameter draw."""

import numpy as np
import pytest
import xarray as xr

from simsend.results.summary import variance_split


def test_hand_example():
    ds = xr.Dataset({"y": ("draw", [1.0, 3.0, 11.0, 13.0]),
                     "param_draw": ("draw", [0, 0, 1, 1])})
    out = variance_split(ds, "y")
    # group means 2 and 12 (grand mean 7): between = 25; within = 1 in each group.
    assert float(out.between) == 25.0
    assert float(out.within) == 1.0
    assert float(out.total) == 26.0
    assert float(out.share_between) == pytest.approx(25 / 26)


def test_identity_unequal_groups_and_extra_dims():
    rng = np.random.default_rng(3)
    pd_ = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 5])
    y = rng.normal(size=(10, 4)) + pd_[:, None]
    ds = xr.Dataset({"y": (("draw", "year"), y), "param_draw": ("draw", pd_)})
    out = variance_split(ds, "y")
    assert out.total.dims == ("year",)
    np.testing.assert_allclose(out.between + out.within, y.var(axis=0))
    # between by hand, weighted by group sizes
    grand = y.mean(0)
    b = sum((pd_ == g).mean() * (y[pd_ == g].mean(0) - grand) ** 2 for g in np.unique(pd_))
    np.testing.assert_allclose(out.between, b)


def test_fixed_rates_have_no_parameter_share():
    ds = xr.Dataset({"y": ("draw", [1.0, 2.0, 4.0]), "param_draw": ("draw", [-1, -1, -1])})
    out = variance_split(ds, "y")
    assert float(out.between) == 0.0
    assert float(out.share_between) == 0.0


def test_singleton_draws_cannot_split():
    ds = xr.Dataset({"y": ("draw", [1.0, 2.0, 4.0]), "param_draw": ("draw", [0, 1, 2])})
    with pytest.raises(ValueError, match="single replicate"):
        variance_split(ds, "y")
