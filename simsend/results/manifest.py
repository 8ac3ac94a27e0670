"""The run manifest: what produced a results file, carried in its attrs and in every export.

A run's Dataset attrs hold the config text and SHA-256, input-file hashes, root seed and data
provenance (:func:`simsend.api.run`); :func:`run_attrs` adds the package versions, the git commit
of the simsend source when it is a git checkout, and timings.  The ``param_draw`` variable says
which posterior draw fed each Monte Carlo replicate.  :func:`manifest` gathers all of it into one
plain dict, :func:`format_manifest` prints it (``simsend info RESULTS``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from simsend.io import read_netcdf, read_zarr

#: Distributions whose versions are recorded (those installed; none is imported to find out).
PACKAGES = ("simsend", "numpy", "numba", "llvmlite", "scipy", "xarray", "pandas", "h5netcdf",
            "h5py", "pymc", "arviz", "matplotlib", "pyarrow", "openpyxl")

#: Attrs that hold JSON text; :func:`manifest` decodes them.
_JSON_ATTRS = ("areas", "area_names", "input_sha256", "data_provenance", "package_versions",
               "timings", "scenarios")


def package_versions() -> dict[str, str]:
    """Return the Python version and the installed versions of :data:`PACKAGES`.

    Examples
    --------
    >>> "numpy" in package_versions()
    True

    """
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str:
    """Return the git commit of the simsend source tree, or ``"unavailable"``.

    The commit is looked up only when the installed package sits in a git work tree that is
    simsend's own (an editable install of a clone); ``"+modified"`` is appended when tracked
    files differ from the commit.  No path is returned.
    """
    src = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel"))
        if not (top / "simsend" / "results" / "manifest.py").is_file():
            return "unavailable"
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unavailable"
    return f"{sha}+modified" if dirty else sha


def run_attrs(timings: dict[str, Any]) -> dict[str, str]:
    """Return the manifest attrs a run adds to its results: versions, git commit, timings.

    Parameters
    ----------
    timings : dict
        JSON-serialisable timings (ISO start/finish times, seconds per stage).

    Returns
    -------
    dict of str
        ``package_versions`` and ``timings`` as JSON text and ``git_commit``.

    """
    return {"package_versions": json.dumps(package_versions()), "git_commit": git_commit(),
            "timings": json.dumps(timings)}


def _decode(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def manifest(ds: xr.Dataset) -> dict[str, Any]:
    """Gather a results Dataset's manifest into one plain, JSON-serialisable dict.

    Parameters
    ----------
    ds : xarray.Dataset
        Results (or a summary of them) as written by ``simsend run``.

    Returns
    -------
    dict
        Every attr (JSON attrs decoded), plus ``param_draw``: the posterior draw that fed
        each Monte Carlo draw (``-1`` = the fixed ``[model]`` rates) when the Dataset has it,
        and ``dims``: the size of each dimension.

    Examples
    --------
    >>> import xarray as xr
    >>> m = manifest(xr.Dataset(attrs={"root_seed": 7, "timings": '{"total_s": 1.5}'}))
    >>> m["root_seed"], m["timings"]["total_s"]
    (7, 1.5)

    """
    out: dict[str, Any] = {}
    for key, value in ds.attrs.items():
        value = _decode(value)
        if key in _JSON_ATTRS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[key] = value
    out["dims"] = {str(k): int(v) for k, v in ds.sizes.items()}
    if "param_draw" in ds and "draw" in ds["param_draw"].dims:
        pd_ = ds["param_draw"]
        pd_ = pd_.isel({d: 0 for d in pd_.dims if d != "draw"})  # same for every scenario
        out["param_draw"] = {int(d): int(p) for d, p in zip(pd_["draw"].values, pd_.values,
                                                             strict=True)}
    return out


def describe_param_draws(mapping: dict[int, int], limit: int = 12) -> str:
    """Return one line saying which parameter set fed which Monte Carlo draw."""
    if not mapping:
        return "not recorded"
    if all(p < 0 for p in mapping.values()):
        return f"fixed [model] rates for all {len(mapping)} draws"
    items = [f"{d}<-{p}" for d, p in list(mapping.items())[:limit]]
    more = f" ... ({len(mapping)} draws)" if len(mapping) > limit else ""
    return "draw<-posterior draw: " + ", ".join(items) + more


def identity(ds_or_manifest: xr.Dataset | dict[str, Any]) -> str:
    """Return a short identity line for chart footers: version, config hash, seed, draws, commit."""
    m = manifest(ds_or_manifest) if isinstance(ds_or_manifest, xr.Dataset) else ds_or_manifest
    parts = [f"simsend {m.get('simsend_version', '?')}",
             f"config {str(m.get('config_sha256', '?'))[:12]}",
             f"seed {m.get('root_seed', '?')}",
             f"{m.get('draws', m.get('dims', {}).get('draw', '?'))} draws"]
    commit = m.get("git_commit")
    if commit and commit != "unavailable":
        parts.append(f"commit {commit[:10]}{'+mod' if commit.endswith('+modified') else ''}")
    if m.get("created_at"):
        parts.append(f"run {m['created_at']}")
    return " | ".join(parts)


def format_manifest(m: dict[str, Any], config: bool = False) -> str:
    """Format a manifest (from :func:`manifest`) as text for ``simsend info``.

    Parameters
    ----------
    m : dict
        The manifest.
    config : bool
        Also print the full config TOML.

    """
    lines = [f"{m.get('title', 'simsend results')}"]

    def row(label: str, value: Any) -> None:
        lines.append(f"  {label:<18} {value}")

    row("simsend version", m.get("simsend_version", "?"))
    row("created", m.get("created_at", "?"))
    row("git commit", m.get("git_commit", "not recorded"))
    row("config", m.get("config_path", "?"))
    row("config sha256", m.get("config_sha256", "?"))
    row("root seed", m.get("root_seed", "?"))
    row("draws", m.get("draws", m.get("dims", {}).get("draw", "?")))
    row("dims", ", ".join(f"{k}={v}" for k, v in m.get("dims", {}).items()))
    if isinstance(m.get("areas"), list):
        names = m.get("area_names") or []
        shown = [f"{a} {n}".strip() for a, n in zip(m["areas"], list(names) + [""] * len(
            m["areas"]), strict=False)]
        row("areas", ", ".join(shown[:8]) + (f" ... ({len(shown)})" if len(shown) > 8 else ""))
    if "scenarios" in m:
        row("scenarios", m["scenarios"])
    row("parameter draws", describe_param_draws(m.get("param_draw", {})))
    timings = m.get("timings")
    if isinstance(timings, dict):
        row("timings", ", ".join(f"{k}={v}" for k, v in timings.items()))
    else:
        row("timings", "not recorded")
    versions = m.get("package_versions")
    if isinstance(versions, dict):
        row("packages", ", ".join(f"{k} {v}" for k, v in versions.items()))
    else:
        row("packages", "not recorded")
    inputs = m.get("input_sha256")
    if isinstance(inputs, dict) and inputs:
        for name, sha in inputs.items():
            row(f"input {name}", sha)
    else:
        row("input files", "none named in the config (built-in data; see data provenance)")
    prov = m.get("data_provenance")
    if isinstance(prov, dict):
        row("data", prov.get("release", prov.get("source", "?")))
        for name, src in (prov.get("sources") or {}).items():
            if isinstance(src, dict):
                src = f"{src.get('title', '')} ({src.get('publisher', '')}) {src.get('url', '')}"
            row(f"  source {name}", src)
    if config and m.get("config_toml"):
        lines.append("")
        lines.append("config TOML:")
        lines.append(str(m["config_toml"]))
    return "\n".join(lines)


class ResultsError(ValueError):
    """A results file that cannot be read (missing, not NetCDF/Zarr, or no simsend results)."""


def read_results(path: str | Path) -> xr.Dataset:
    """Read a results file written by ``simsend run`` (NetCDF, or a ``.zarr`` store).

    Raises
    ------
    ResultsError
        When the file is missing, unreadable or holds no simsend results.

    """
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"{path}: results file not found")
    try:
        if path.is_dir() or path.suffix == ".zarr":
            ds = read_zarr(path)
        else:
            ds = read_netcdf(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ResultsError(f"{path}: not a readable results file ({exc})") from None
    if "n_pupils" not in ds or "draw" not in ds.dims:
        raise ResultsError(f"{path}: no simsend results in it (expected a variable n_pupils "
                           "over a draw dimension, as `simsend run` writes)")
    return ds


def with_total_time(ds: xr.Dataset, seconds: float) -> xr.Dataset:
    """Record the wall time of a whole multi-scenario run in ``ds.attrs["timings"]``.

    The per-run timings (``baseline_s``, ``simulate_s``) then describe the first scenario run;
    ``total_s`` covers every scenario.
    """
    try:
        timings = json.loads(ds.attrs.get("timings", "{}"))
    except (TypeError, json.JSONDecodeError):
        timings = {}
    timings["total_s"] = round(float(seconds), 3)
    if "scenario" in ds.dims:
        timings["scenarios_run"] = int(ds.sizes["scenario"])
    ds.attrs["timings"] = json.dumps(timings)
    return ds
