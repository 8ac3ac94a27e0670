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


def _disk_full(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_leaves_no_temporary_file_and_the_old_output(tmp_path, monkeypatch):
    from simsend.io import WriteError, write_netcdf

    ds = _ds().compute()
    path = write_netcdf(ds, tmp_path / "r.nc")
    before = path.read_bytes()
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _disk_full)
    with pytest.raises(WriteError, match=r"r\.nc: could not write: No space left on device"):
        write_netcdf(ds, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.nc"]
    monkeypatch.setattr(xr.Dataset, "to_zarr", _disk_full)
    with pytest.raises(WriteError, match=r"z\.zarr: could not write: No space left on device"):
        write_zarr(ds, tmp_path / "z.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.nc"]


def test_too_little_room_is_refused_before_writing(tmp_path, monkeypatch):
    import shutil

    from simsend.io import WriteError, write_netcdf

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 10))
    with pytest.raises(WriteError, match="uncompressed and .* MiB free"):
        write_netcdf(_ds().compute(), tmp_path / "r.nc")
    assert not list(tmp_path.iterdir())


def test_cli_disk_full_is_one_line_and_exit_1(tmp_path, monkeypatch):
    """Disk full during export left a .manifest.json orphan and a traceback."""
    import pandas as pd
    from click.testing import CliRunner

    from simsend.cli import main
    from simsend.io import write_netcdf

    ds = xr.Dataset({"n_pupils": (("draw", "year", "tier"), np.ones((4, 2, 2), np.int32),
                                  {"units": "1"})},
                    coords={"draw": range(4), "year": [2022, 2023], "tier": ["a", "b"]},
                    attrs={"areas": '["E92000001"]'})
    write_netcdf(ds, tmp_path / "r.nc")
    monkeypatch.setattr(pd.DataFrame, "to_csv", _disk_full)
    res = CliRunner().invoke(main, ["export", str(tmp_path / "r.nc"), "--out",
                                    str(tmp_path / "t.csv"), "--quiet"])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.output.strip().splitlines() == [
        f"error: {tmp_path / 't.csv'}: could not write: No space left on device"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.nc"]
