"""Statutory pipeline rates per area and Monte Carlo draw from a calibrated artefact.

``[pipeline] posterior = "NAME"`` names an artefact that ``simsend calibrate-pipeline`` wrote
(:mod:`simsend.calibration.pipeline`): posterior draws ``(draw, area)`` of the pipeline's
estimated rates for the year after its data, for every council and for England and the
regions (their councils' sums).  Monte Carlo draw ``d`` takes posterior draw
``d % n_posterior`` of each of its areas, the same draw number for every area, so a run's
councils keep the correlation of their shared level and trend.  Rates the artefact does not
hold (the share upheld and the weeks) stay the config's.  Read with xarray alone: no PyMC.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from simsend.config.statutory import PIPELINE_RATES
from simsend.config.toml import ConfigError

ESTIMATED = ("p_refuse", "p_not_issue", "p_within_20_weeks", "p_appeal_refusal",
             "p_appeal_not_issue", "p_appeal_content")
"""Pipeline rates an artefact must hold (the rest of :data:`PIPELINE_RATES` stay the config's)."""


class PipelinePosterior:
    """Posterior draws of the pipeline's rates per area (see the module docstring).

    Parameters
    ----------
    path : path
        The NetCDF artefact.

    Raises
    ------
    ConfigError
        The file cannot be read, lacks a rate, or holds a rate outside [0, 1] or NaN.

    Examples
    --------
    >>> from simsend.config.model import SHIPPED_MODELS
    >>> post = PipelinePosterior(SHIPPED_MODELS / "pipeline_2025.nc")
    >>> base = np.array([0.2, 0.06, 0.5, 0.04, 0.1, 0.05, 0.95, 16.0, 12.0])
    >>> post.rates(base, [0, 1], ["E92000001"]).shape
    (2, 1, 9)

    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        name = self.path.name
        try:
            with xr.open_dataset(self.path, engine="h5netcdf") as ds:
                missing = [r for r in ESTIMATED if r not in ds]
                if missing:
                    raise ConfigError(f"{name}: not a pipeline posterior (no {missing}; write "
                                      "one with simsend calibrate-pipeline)")
                table = np.stack([ds[r].transpose("draw", "area").values.astype(np.float64)
                                  for r in ESTIMATED], -1)
                self.areas = tuple(str(a) for a in ds["area"].values)
                self.attrs = dict(ds.attrs)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{name}: cannot be read as a pipeline posterior ({exc})") from None
        if not (np.isfinite(table).all() and (table >= 0).all() and (table <= 1).all()):
            raise ConfigError(f"{name}: rates must be probabilities in [0, 1] (NaN found or "
                              "out of range)")
        self.table = table  # (draw, area, len(ESTIMATED))
        self.cols = np.array([PIPELINE_RATES.index(r) for r in ESTIMATED])

    def __len__(self) -> int:
        """Return the number of posterior draws."""
        return self.table.shape[0]

    @property
    def rate_year(self) -> int | None:
        """Calendar year the draws are for (the year after the data)."""
        y = self.attrs.get("rate_year")
        return None if y is None else int(y)

    def rates(self, base: np.ndarray, draws: Sequence[int], areas: Sequence[str]
              ) -> np.ndarray:
        """Rates of each Monte Carlo draw and area, ``(len(draws), len(areas), K)`` float64.

        ``base`` (``K = len(PIPELINE_RATES)``) gives the rates the artefact does not hold.

        Raises
        ------
        ConfigError
            An area the artefact does not hold.

        """
        where = {a: i for i, a in enumerate(self.areas)}
        miss = [a for a in areas if str(a) not in where]
        if miss:
            raise ConfigError(f"{self.path.name}: no pipeline rates for area(s) {miss[:5]} "
                              f"(it holds {len(self.areas)} areas: councils, regions, England)")
        ai = np.array([where[str(a)] for a in areas], np.int64)
        di = np.asarray(draws, np.int64) % len(self)
        out = np.broadcast_to(np.asarray(base, np.float64),
                              (len(di), len(ai), len(PIPELINE_RATES))).copy()
        out[:, :, self.cols] = self.table[di[:, None], ai[None, :]]
        return out

    def summary(self) -> str:
        """Diagnostics and sampler settings, one line (for run manifests)."""
        keep = ("rate_year", "first_year", "origin_year", "max_rhat", "min_ess_bulk",
                "n_divergent", "random_seed")
        return json.dumps({k: self.attrs[k] for k in keep if k in self.attrs}, default=str)


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int) -> PipelinePosterior:
    return PipelinePosterior(path)


def load_pipeline_posterior(path: str | Path) -> PipelinePosterior:
    """Return the artefact at ``path``, read once per process (and again if it changes)."""
    p = Path(path)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"{p.name}: cannot be read as a pipeline posterior ({exc})") from None
    return _cached(str(p), mtime)
