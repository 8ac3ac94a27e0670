"""Configuration: TOML parsed at the edge into frozen, typed objects.

One module per TOML table (:mod:`~simsend.config.run` for ``[run]``, ``[outputs]`` and
``[data]``; :mod:`~simsend.config.model`, :mod:`~simsend.config.reform`,
:mod:`~simsend.config.statutory` for ``[pipeline]``, :mod:`~simsend.config.scenarios`,
:mod:`~simsend.config.provision`, :mod:`~simsend.config.workforce`; cost files in
:mod:`~simsend.config.costs`), the value readers they share in :mod:`~simsend.config.toml`, and
:func:`load` / :func:`parse` in :mod:`~simsend.config.loader`.  Nothing here imports a layer
above ``dims``.
"""

from simsend.config.loader import SimConfig, load, parse
from simsend.config.model import SHIPPED_MODELS, ModelConfig, PlacementRule
from simsend.config.reform import ReformConfig
from simsend.config.run import MARGINALS, DataConfig, OutputConfig, RunConfig
from simsend.config.statutory import PIPELINE_RATES, PipelineConfig
from simsend.config.toml import ConfigError, read_text

__all__ = ["MARGINALS", "PIPELINE_RATES", "SHIPPED_MODELS", "ConfigError", "DataConfig",
           "ModelConfig", "OutputConfig", "PipelineConfig", "PlacementRule", "ReformConfig",
           "RunConfig", "SimConfig", "load", "parse", "read_text"]
