"""Reading and writing results: NetCDF written atomically (temporary file, then rename)."""

from __future__ import annotations

import hashlib
import os
import tempfile
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars
           if ds[v].dtype.kind in "iuf" and ds[v].ndim > 0}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=enc)
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
