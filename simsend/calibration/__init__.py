"""Bayesian calibration of simsend's transition rates to published aggregate series.

Pipeline: :func:`~simsend.calibration.targets.targets_from_baseline` (observed series in
the engine's dims) -> :func:`build_model` (PyMC stock-and-flow model) ->
:func:`calibrate` (NUTS, diagnostics gate, NetCDF artefact under ``models/``) ->
:class:`PosteriorParameters` (one engine parameter set per posterior draw) ->
:func:`backtest` (forecast scoring against what happened).
"""

from simsend.calibration.backtest import backtest
from simsend.calibration.fit import CalibrationError, calibrate
from simsend.calibration.model import PriorConfig, build_model
from simsend.calibration.posterior import PosteriorParameters
from simsend.calibration.targets import make_targets, targets_from_baseline
from simsend.summary import variance_split

__all__ = [
    "CalibrationError",
    "PosteriorParameters",
    "PriorConfig",
    "backtest",
    "build_model",
    "calibrate",
    "make_targets",
    "targets_from_baseline",
    "variance_split",
]
