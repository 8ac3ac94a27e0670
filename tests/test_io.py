"""Zarr stores: written with every chunk, and a store with a chunk missing is refused."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from simsend.io import EVERY_CHUNK, IncompleteStoreError, read_zarr, write_zarr


def _ds() -> xr.Dataset:
    zeros = np.zeros((4, 3), np.int32)  # all fill value: Zarr would skip these chunks
    return xr.Dataset({"n": (("draw", "x"), zeros), "m": (("draw", "x"), zeros + 1)},
                      attrs={"draws": 4}).chunk({"draw": 2})


def test_every_chunk_is_written_and_read_back_whole(tmp_path):
    ds = _ds()
    path = write_zarr(ds, tmp_path / "r.zarr")
    assert sorted(p.name for p in (path / "n").iterdir() if not p.name.startswith(".")) == [
        "0.0", "1.0"]
    got = read_zarr(path)
    xr.testing.assert_identical(got, ds.compute())
    assert EVERY_CHUNK not in got.attrs


def test_a_missing_chunk_is_an_error_not_zeros(tmp_path):
    """`rm g.zarr/n_pupils/0.0...` used to read as zeros and export with exit 0."""
    path = write_zarr(_ds(), tmp_path / "r.zarr")
    (path / "m" / "1.0").unlink()
    with pytest.raises(IncompleteStoreError, match=r"r\.zarr: the Zarr store is incomplete: "
                                                   r"chunks missing in m \(1 of 2 chunks\)"):
        read_zarr(path)


def test_stores_without_the_mark_are_read_as_before(tmp_path):
    _ds().to_zarr(tmp_path / "other.zarr", zarr_format=2, consolidated=True)
    assert read_zarr(tmp_path / "other.zarr")["m"].values.sum() == 12
