"""Which runs a config asks for (the baseline, then its scenarios) and how they stack.

Every run shares the root seed, so the draws of a scenario and its baseline are paired
(common random numbers); the results gain a leading ``scenario`` dimension, ``"baseline"``
first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import xarray as xr

from simsend.config.scenarios import BASELINE, Scenario
from simsend.config.toml import ConfigError


def select(cfg, names: str | Sequence[str] | None) -> list[Scenario | None]:
    """Return the runs asked for: None (the baseline) first, then the named scenarios.

    ``names`` None runs every scenario of ``cfg``; ``"baseline"`` may be named too.

    Raises
    ------
    ConfigError
        For a name the config does not define.

    """
    known = {s.name: s for s in cfg.scenarios}
    if names is None:
        return [None, *cfg.scenarios]
    names = [names] if isinstance(names, str) else list(names)
    out: list[Scenario | None] = [None]
    for n in names:
        if n == BASELINE:
            continue
        if n not in known:
            raise ConfigError(f"{cfg.source_path}: no scenario named {n!r}; expected one of "
                              f"{[BASELINE, *known]}")
        if known[n] not in out:
            out.append(known[n])
    return out


def stack_runs(runs: Sequence[Scenario | None], results: Sequence[xr.Dataset]) -> xr.Dataset:
    """Stack each run's Dataset along a leading ``scenario`` dimension (``"baseline"`` first).

    Parameters
    ----------
    runs : sequence of (Scenario or None)
        The runs, as :func:`select` returns them (None or a run named ``"baseline"`` = the
        baseline).
    results : sequence of xarray.Dataset
        One Dataset per run, in the same order; the first run's attrs are kept.

    """
    labels = [BASELINE if s is None else s.name for s in runs]
    ds = xr.concat(list(results), dim="scenario", data_vars="all", coords="minimal",
                   compat="override", combine_attrs="override")
    ds = ds.assign_coords(scenario=labels)
    ds.attrs.pop("scenario", None)  # the runs' own names are the coordinate now
    ds["scenario"].attrs = {"long_name": "scenario run against the same baseline and seed"}
    ds.attrs["scenarios"] = json.dumps(
        {BASELINE: "no modifiers", **{s.name: s.description for s in runs if s is not None}})
    return ds
