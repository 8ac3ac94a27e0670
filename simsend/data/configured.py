"""The baseline a config's ``[data]`` table names, with the early years its rates imply."""

from __future__ import annotations

from simsend.config import SimConfig
from simsend.data.baseline import SCHOOL_PARTICIPATION, Baseline, DataSpec, load_baseline
from simsend.data.early_years import fill_early_years
from simsend.data.support_ages import support_profile


def data_spec(cfg: SimConfig) -> DataSpec:
    """Return the :class:`~simsend.data.baseline.DataSpec` a config's ``[data]`` table describes.

    SEN support is spread over ages by the cohort profile the config's rates give
    (:func:`~simsend.data.support_ages.support_profile`), so a run starts on the age shape its
    own rates hold; ``[data] sen_support_ages = "flat"`` keeps the flat spread.
    """
    d = cfg.data
    profile = None
    if d.sen_support_ages == "profile":
        p = support_profile(cfg.model, d.targeted_plus_share)
        # rates that never identify anyone hold no shape: keep the flat spread
        on_roll = sum(p[a] for a, w in SCHOOL_PARTICIPATION.items() if w > 0)
        profile = tuple(float(v) for v in p) if on_roll > 0 else None
    return DataSpec(source=d.source, areas=tuple(d.areas), baseline_year=cfg.run.start_year,
                    targeted_plus_share=d.targeted_plus_share, files=dict(d.files),
                    sen_support_profile=profile)


def load_config_baseline(cfg: SimConfig) -> Baseline:
    """Build the baseline (pupils, pool, history) that a config's ``[data]`` table names.

    Ages the school census does not cover start with the identified children the config's
    identification rates imply (see :mod:`simsend.data.early_years`).
    """
    return fill_early_years(load_baseline(data_spec(cfg)), cfg.model)
