"""simsend's data layer: published DfE / ONS data -> a simulation baseline.

Public interface
----------------
:class:`DataSpec`, :func:`load_baseline` -> :class:`Baseline`, :func:`validate_data` ->
:class:`Report` (of :class:`Finding`), and :class:`DataError` for user mistakes.  The shipped
extract lives in ``simsend/data/builtin`` (built by ``scripts/build_builtin.py``); the tidy
format for a council's own files is described in ``docs/data.md``.
"""

from simsend.data.baseline import ASSUMPTIONS, Baseline, DataSpec, load_baseline
from simsend.data.errors import DataError, Finding, Report
from simsend.data.validate import validate_data

__all__ = ["ASSUMPTIONS", "Baseline", "DataError", "DataSpec", "Finding", "Report",
           "load_baseline", "validate_data"]
