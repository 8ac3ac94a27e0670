"""Canonical dimension labels of the simsend state space.

Codes are the positions in these tuples; kernels see only the integer codes.
"""

from __future__ import annotations

import numpy as np

TIERS = ("universal", "targeted", "targeted_plus", "specialist")
"""Support tiers of the 2026 reform; ``universal`` children are held as counts."""

PLANS = ("none", "sen_support", "isp", "ehcp")
"""Plan held: today's SEN support, the reform's Individual Support Plan, or an EHC plan."""

NEEDS = ("ASD", "SEMH", "SLCN", "MLD", "SpLD", "SLD", "PMLD", "HI", "VI", "MSI", "PD", "OTH", "NSA")
"""SEN2 / school-census primary need codes (NSA: SEN support but no specialist assessment)."""

PLACEMENTS = (
    "mainstream",
    "inclusion_base",
    "special_state",
    "special_independent",
    "alternative_provision",
    "post16_fe",
    "other",
)
"""Placement groups onto which DfE establishment types are mapped."""

MAX_AGE = 25
AGES = tuple(range(MAX_AGE + 1))
"""Whole years of age at the January census, 0-25."""

AGE_GROUPS = {
    "under_5": (0, 4),
    "5_to_10": (5, 10),
    "11_to_15": (11, 15),
    "16_to_19": (16, 19),
    "20_to_25": (20, 25),
}
"""SEN2 age bands (inclusive ranges); ``age_group`` is a derived view of ``age``."""

TIER = {name: i for i, name in enumerate(TIERS)}
PLAN = {name: i for i, name in enumerate(PLANS)}
NEED = {name: i for i, name in enumerate(NEEDS)}
PLACEMENT = {name: i for i, name in enumerate(PLACEMENTS)}


def age_group_of(age: int) -> str:
    """Return the SEN2 age band label holding ``age``.

    Examples
    --------
    >>> age_group_of(11)
    '11_to_15'

    """
    for name, (lo, hi) in AGE_GROUPS.items():
        if lo <= age <= hi:
            return name
    raise ValueError(f"age {age} outside 0-{MAX_AGE}")


def band_matrix() -> np.ndarray:
    """One-hot ``M[age, age_group]`` mapping single years of age onto SEN2 age bands.

    Examples
    --------
    >>> band_matrix().sum(axis=0).tolist()
    [5.0, 6.0, 5.0, 4.0, 6.0]

    """
    m = np.zeros((len(AGES), len(AGE_GROUPS)))
    for g, (lo, hi) in enumerate(AGE_GROUPS.values()):
        m[lo:hi + 1, g] = 1.0
    return m


def band_of_age() -> np.ndarray:
    """Index of the SEN2 age band of each single year of age, shape (26,)."""
    return band_matrix().argmax(axis=1)
