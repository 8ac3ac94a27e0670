"""Reading and writing results: NetCDF files and Zarr stores.

Both are written atomically (temporary, then rename).  :func:`check_output` is the one check
every command runs on the paths it will write, before it does any work.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import xarray as xr


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file, read in 1 MiB blocks (input-file provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class WriteError(RuntimeError):
    """Output could not be written (disk full, I/O error): an environment failure, exit 1.

    The temporary file is removed and any existing output is left as it was.
    """


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
    check_space(path, ds.nbytes)  # HDF5 can crash, not fail, when the disk fills mid-write
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf", encoding=enc))


def check_space(path: str | Path, need: int) -> None:
    """Refuse to write ``need`` bytes (uncompressed: an upper bound) where there is less room.

    Raises
    ------
    WriteError
        Naming the path, the space needed and the space free.

    """
    parent = Path(path).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if need > free:
        raise WriteError(f"{path}: cannot write: the results take up to {need / 2**20:,.0f} MiB "
                         f"uncompressed and {parent} has {free / 2**20:,.0f} MiB free; free some "
                         "space or write elsewhere")


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
    except OSError as exc:  # disk full, I/O error: one line, the temporary file removed
        Path(tmp).unlink(missing_ok=True)
        raise WriteError(f"{path}: could not write: {exc.strerror or exc}") from exc
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
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            old.rename(path)
        if isinstance(exc, OSError):  # disk full, I/O error: one line, nothing left behind
            raise WriteError(f"{path}: could not write: {exc.strerror or exc}") from exc
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
        lambda tmp: ds.assign_attrs({EVERY_CHUNK: "1"}).to_zarr(
            tmp, mode="w", consolidated=True, zarr_format=2, write_empty_chunks=True), path)


EVERY_CHUNK = "zarr_every_chunk_written"
"""Attribute of a store simsend wrote with every chunk (empty ones too), so that a missing
chunk is damage, not a chunk of fill values that Zarr skipped."""


class IncompleteStoreError(ValueError):
    """A Zarr results store with chunks missing (copied or synced in part, or damaged)."""


def check_store(path) -> None:
    """Check that every chunk of every array of a simsend Zarr store is present.

    Zarr reads a missing chunk as its fill value (zeros), so a store copied in part would
    read as results; simsend writes every chunk (:data:`EVERY_CHUNK`) and checks here.
    Stores written without that attribute (by other tools or older simsend versions) are not
    checked.

    Raises
    ------
    IncompleteStoreError
        Naming the store, the first variables with chunks missing and how many.

    """
    import zarr

    group = zarr.open_group(str(path), mode="r")
    if str(group.attrs.get(EVERY_CHUNK, "")) != "1":
        return
    missing = []
    for name, arr in group.arrays():
        have, want = arr.nchunks_initialized, arr.nchunks
        if have < want:
            missing.append(f"{name} ({want - have} of {want} chunks)")
    if missing:
        raise IncompleteStoreError(
            f"{path}: the Zarr store is incomplete: chunks missing in {', '.join(missing[:5])}"
            f"{' and more' if len(missing) > 5 else ''}; it was copied or written in part, so "
            "write it again (simsend run ... --out STORE.zarr)")


def read_zarr(path):
    """Read a Zarr results store fully into memory, after :func:`check_store`."""
    check_store(path)
    with xr.open_zarr(path, consolidated=True) as ds:
        ds = ds.load()
    ds.attrs.pop(EVERY_CHUNK, None)  # how the store was written, not part of the results
    return ds


class OutputPathError(ValueError):
    """An output path that must not or cannot be written (an input, a directory...)."""


def _is_store(path: Path) -> bool:
    """Whether a directory is a Zarr store (version 2 or 3 metadata at its top)."""
    return any((path / name).exists() for name in (".zgroup", ".zattrs", "zarr.json"))


def check_output(path: str | Path, inputs: Iterable[str | Path | None] = (),
                 option: str = "--out", store: bool = False) -> Path:
    """Refuse an output path before any work is done; return it unchanged when it is fine.

    Refused: a path that is one of ``inputs`` (resolved paths, so symlinks and ``..`` count;
    hard links too where both exist) or lies inside an input directory (a Zarr store), an
    existing directory (unless ``store`` and it is a Zarr store, which :func:`replace_store`
    replaces), and a path whose nearest existing parent is a file or not writable.

    Parameters
    ----------
    path : str or Path
        The path the command will write.
    inputs : iterable of str or Path or None
        The files the command reads (``None`` entries are skipped).
    option : str
        How the user gave the path (``--out``, ``--csv``...), for the message.
    store : bool
        The output is a directory store (a ``.zarr`` results store).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputPathError
        One line naming the path and what is wrong with it.

    """
    path = Path(path)
    where = f"{option} {path}"
    target = path.resolve()
    for inp in inputs:
        if inp is None:
            continue
        src = Path(inp).resolve()
        same = target == src
        if not same and path.exists() and src.exists():
            same = os.path.samefile(path, src)
        if same:
            raise OutputPathError(f"{where}: is the input {inp}; writing it would destroy "
                                  "it, give another output path")
        if src.is_dir() and src in target.parents:
            raise OutputPathError(f"{where}: is inside the input {inp}; give a path outside it")
    if path.is_dir() and not (store and _is_store(path)):
        raise OutputPathError(f"{where}: is a directory" + (
            " that is not a Zarr store; give a new .zarr path" if store else
            "; give a file path"))
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise OutputPathError(f"{where}: its parent {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{where}: cannot write in {parent} (not writable)")
    return path
