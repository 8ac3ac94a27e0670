"""Bands from draws against NumPy, and the raw draws left untouched."""

import numpy as np
import pytest
import xarray as xr

from simsend.io import read_netcdf, write_netcdf
from simsend.results.summary import DEFAULT_QUANTILES, summary


def draws_dataset(rng):
    data = rng.poisson(100, size=(50, 3, 4)).astype(np.int32)
    return xr.Dataset(
        {"n_pupils": (("draw", "year", "tier"), data)},
        coords={"draw": np.arange(50), "year": [2022, 2023, 2024],
                "tier": ["universal", "targeted", "targeted_plus", "specialist"]},
    )


def test_quantiles_match_numpy_and_raw_untouched(rng):
    ds = draws_dataset(rng)
    before = ds["n_pupils"].values.copy()
    s = summary(ds)
    assert list(s["quantile"].values) == list(DEFAULT_QUANTILES)
    want = np.quantile(before, DEFAULT_QUANTILES, axis=0)
    np.testing.assert_allclose(s["n_pupils"].transpose("quantile", "year", "tier").values, want)
    np.testing.assert_allclose(s["n_pupils_mean"].values, before.mean(axis=0))
    np.testing.assert_array_equal(ds["n_pupils"].values, before)
    assert "draw" not in s["n_pupils"].dims


def test_bad_quantiles(rng):
    with pytest.raises(ValueError, match="quantiles"):
        summary(draws_dataset(rng), quantiles=[0.5, 1.5])


def test_netcdf_round_trip_is_exact(rng, tmp_path):
    ds = draws_dataset(rng)
    ds.attrs["config_sha256"] = "abc"
    p = write_netcdf(ds, tmp_path / "r.nc")
    back = read_netcdf(p)
    xr.testing.assert_identical(back, ds)
    assert not list(tmp_path.glob("*.tmp"))
