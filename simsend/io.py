"""Reading and writing results: NetCDF files and Zarr stores.

Both are written atomically (temporary, then rename).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import xarray as xr


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file, read in 1 MiB blocks (input-file provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to ``path`` as NetCDF-4 (h5netcdf, zlib level 4), atomically.

    The file appears under its final name only once complete: a failure leaves no partial
    output and does not touch an existing file of that name.

    Returns
    -------
    Path
        The written path.

    """
    enc = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars
           if ds[v].dtype.kind in "iuf" and ds[v].ndim > 0}
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf", encoding=enc))


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    The temporary name keeps ``path``'s suffix (writers that choose a format by suffix see
    the right one).  A failure removes the temporary file and leaves any existing ``path``
    untouched; the finished file gets the usual umask mode, not mkstemp's 0600.

    Returns
    -------
    Path
        The written path.

    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        public_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def public_mode(path: str | Path) -> None:
    """Give a file written through ``tempfile.mkstemp`` (mode 0600) the usual umask mode."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def read_netcdf(path: str | Path) -> xr.Dataset:
    """Read a results file fully into memory (the file is closed afterwards)."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def replace_store(write: Callable[[Path], object], path) -> Path:
    """Call ``write(tmp)`` on a temporary directory beside ``path``, then rename it into place.

    A failure removes the temporary store and leaves an existing ``path`` untouched; an
    existing store is replaced only by a complete one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = path.with_name(f".{path.name}.old")
    try:
        write(tmp)
        tmp.chmod(0o777 & ~_umask())
        if path.exists():
            path.rename(old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            old.rename(path)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_zarr(ds, path) -> Path:
    """Write a results Dataset to a Zarr store at ``path``, atomically.

    The store is written beside ``path`` under a temporary name and renamed into place when
    complete, so a failure leaves no partial store and an existing store is replaced only by
    a complete one.  Read it back with :func:`read_zarr` (or ``xarray.open_zarr`` lazily, for
    results larger than memory).

    Returns
    -------
    Path
        The written path.

    """
    return replace_store(
        lambda tmp: ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2), path)


def read_zarr(path):
    """Read a Zarr results store fully into memory."""
    with xr.open_zarr(path, consolidated=True) as ds:
        return ds.load()
