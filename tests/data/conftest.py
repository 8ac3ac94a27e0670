import functools
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@functools.cache
def _england_all_2022():
    from simsend.data import DataSpec, load_baseline

    return load_baseline(DataSpec(areas=("all",), baseline_year=2022))


@pytest.fixture(scope="session")
def baseline_all_2022():
    return _england_all_2022()


@pytest.fixture
def fixtures():
    return FIXTURES
