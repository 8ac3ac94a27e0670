"""Bayesian calibration of simsend's transition rates to published aggregate series.

Pipeline: :func:`~simsend.calibration.targets.targets_from_baseline` (observed series in
the engine's dims) -> :func:`build_model` (PyMC stock-and-flow model) ->
:func:`calibrate` (NUTS, diagnostics gate, NetCDF artefact under ``models/``) ->
:class:`PosteriorParameters` (one engine parameter set per posterior draw) ->
:func:`backtest` (forecast scoring against what happened).

PyMC and ArviZ are imported here and nowhere else in simsend: the forecast reads a posterior
artefact with xarray alone (:mod:`simsend.rates.posterior`), so the core installs without them.
"""

import logging
import warnings

with warnings.catch_warnings():
    # ArviZ announces its coming 1.0 refactor with a FutureWarning at import; a user of
    # `simsend calibrate` has nothing to act on, so it is not printed before our output.
    warnings.filterwarnings("ignore", message="ArviZ is undergoing a major refactor",
                            category=FutureWarning)
    import arviz  # noqa: F401
    import pymc  # noqa: F401  (sets its own logger's level on import: quietened below)

# PyTensor's notes that it found no BLAS to link (a speed note for PyTensor's users, printed
# before our own output, nothing a user of simsend calibrate or backtest can act on), and
# PyMC's INFO lines ("Auto-assigning NUTS sampler...", "Sequential sampling..."): simsend
# reports the calibration's progress itself.
warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS installation",
                        category=UserWarning)
logging.getLogger("pytensor.tensor.blas").setLevel(logging.ERROR)
logging.getLogger("pymc").setLevel(logging.WARNING)

from simsend.calibration.backtest import backtest  # noqa: E402
from simsend.calibration.fit import CalibrationError, calibrate  # noqa: E402
from simsend.calibration.model import PriorConfig, build_model  # noqa: E402
from simsend.calibration.targets import make_targets, targets_from_baseline  # noqa: E402
from simsend.rates.posterior import PosteriorParameters  # noqa: E402
from simsend.results.summary import variance_split  # noqa: E402

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
