"""Canonical NumPy dtypes for state arrays, indices and tallies (shared by kernels)."""

import numpy as np

STATE = np.int8
"""Small categorical states: tier, plan, age, need, placement."""
AREA = np.int16
"""Area index (up to 32,767 areas or school clusters)."""
ID = np.int64
"""Pupil identifier; also the counter for the random number generator."""
COUNT = np.int64
"""Tallies and pool counts."""
RATE = np.float64
"""Probabilities and cumulative thresholds."""
