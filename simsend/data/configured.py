"""The baseline a config's ``[data]`` table names, with the early years its rates imply."""

from __future__ import annotations

from simsend.config import SimConfig
from simsend.data.baseline import Baseline, DataSpec, load_baseline
from simsend.data.early_years import fill_early_years


def data_spec(cfg: SimConfig) -> DataSpec:
    """Return the :class:`~simsend.data.baseline.DataSpec` a config's ``[data]`` table describes."""
    d = cfg.data
    return DataSpec(source=d.source, areas=tuple(d.areas), baseline_year=cfg.run.start_year,
                    targeted_plus_share=d.targeted_plus_share, files=dict(d.files))


def load_config_baseline(cfg: SimConfig) -> Baseline:
    """Build the baseline (pupils, pool, history) that a config's ``[data]`` table names.

    Ages the school census does not cover start with the identified children the config's
    identification rates imply (see :mod:`simsend.data.early_years`).
    """
    return fill_early_years(load_baseline(data_spec(cfg)), cfg.model)
