"""The ``[pipeline]`` table: rates of the statutory EHC needs-assessment pipeline."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import simsend.config.toml as toml

PIPELINE_RATES = ("p_refuse", "p_not_issue", "p_within_20_weeks", "p_appeal_refusal",
                  "p_appeal_not_issue", "p_appeal_content", "p_upheld",
                  "mean_weeks_within", "mean_weeks_over")
"""Rates of the statutory pipeline, in the order of :attr:`PipelineConfig.rates`."""


@dataclass(frozen=True)
class PipelineConfig:
    """Rates of the statutory EHC pipeline (``[pipeline]``).

    See :mod:`simsend.statutory.ehc_pipeline`.

    Defaults: England in calendar 2021 from DfE's SEN2 2022 release: 20,830 of 93,302 initial
    requests refused an assessment (0.223) and 3,903 of 66,083 assessments ended without a
    plan (0.059), both in the shipped extract (``simsend/data/builtin/flows.csv.gz``); 59.9%
    of plans issued within 20 weeks (the release's headline, not in the extract).  Tribunal
    and weeks figures are ASSUMPTIONS of the published size (see
    :mod:`simsend.statutory.ehc_pipeline`).
    """

    p_refuse: float = 0.223
    p_not_issue: float = 0.059
    p_within_20_weeks: float = 0.599
    p_appeal_refusal: float = 0.04
    p_appeal_not_issue: float = 0.10
    p_appeal_content: float = 0.05
    p_upheld: float = 0.95
    mean_weeks_within: float = 16.0
    mean_weeks_over: float = 12.0
    enabled: bool = True
    posterior: str | None = None

    @property
    def rates(self) -> np.ndarray:
        """The rates as a float64 array in :data:`PIPELINE_RATES` order."""
        return np.array([getattr(self, k) for k in PIPELINE_RATES], np.float64)


def parse_pipeline(ctx: toml.Ctx, raw: dict, base: Path | None = None) -> PipelineConfig:
    """Parse the ``[pipeline]`` table (``base``: the config's folder, for the posterior path)."""
    d = PipelineConfig()
    toml.check_keys(ctx, raw, "pipeline", {f.name for f in dataclasses.fields(PipelineConfig)})
    vals = {}
    for k in PIPELINE_RATES:
        v = raw.get(k, getattr(d, k))
        vals[k] = (toml.number(ctx, v, f"pipeline.{k}", 0.0, 104.0) if k.startswith("mean_")
                   else toml.prob(ctx, v, f"pipeline.{k}"))
    for k in ("p_refuse", "p_not_issue"):
        if vals[k] >= 1.0:
            raise ctx.fail(f"pipeline.{k}", "must be below 1 (plans are issued at all)")
    enabled = raw.get("enabled", d.enabled)
    if not isinstance(enabled, bool):
        raise ctx.fail("pipeline.enabled", f"expected true or false, got {enabled!r}")
    posterior = raw.get("posterior")
    if posterior is not None:
        posterior = str(toml.shipped_or_path(
            ctx, toml.string(ctx, posterior, "pipeline.posterior"), "pipeline.posterior",
            toml.PROJECT_ROOT / "models", ".nc", Path.cwd() if base is None else base,
            "pipeline posterior", lambda stem: stem.startswith("pipeline_")))
    return PipelineConfig(**vals, enabled=enabled, posterior=posterior)
