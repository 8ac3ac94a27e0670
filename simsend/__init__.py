"""simsend: probabilistic demand simulation for England's SEND system."""

from simsend._version import __version__
from simsend.api import load_baseline, run, validate
from simsend.config import ConfigError, SimConfig, load
from simsend.io import read_netcdf, write_netcdf
from simsend.results.summary import summary

__all__ = [
    "ConfigError",
    "SimConfig",
    "__version__",
    "load",
    "load_baseline",
    "read_netcdf",
    "run",
    "summary",
    "validate",
    "write_netcdf",
]
