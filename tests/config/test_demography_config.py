"""The [demography] table."""

import pytest

from simsend.config import parse
from simsend.config.demography import DemographyConfig
from simsend.config.toml import ConfigError


@pytest.fixture
def model(toy_text):
    return toy_text


def test_default_is_trend_with_transfers(model):
    cfg = parse(model, "t.toml")
    assert cfg.demography == DemographyConfig(mode="trend", projection=None, recent_years=8,
                                              transfers=True)


def test_values_and_projection_path(model, tmp_path):
    proj = tmp_path / "population_projection.csv"
    proj.write_text("year,area,age,count\n")
    cfg = parse(model + '[demography]\nmode = "observed"\nrecent_years = 2\ntransfers = false\n'
                'projection = "population_projection.csv"\n', "t.toml", base_dir=tmp_path)
    assert cfg.demography.mode == "observed"
    assert cfg.demography.recent_years == 2
    assert cfg.demography.transfers is False
    assert cfg.demography.projection == proj


@pytest.mark.parametrize("body, key", [
    ('mode = "fast"', "demography.mode"),
    ("recent_years = 0", "demography.recent_years"),
    ('transfers = "yes"', "demography.transfers"),
    ('projection = "nope.csv"', "demography.projection"),
    ("birth = 1", "demography.birth"),
])
def test_bad_values_name_their_key(body, key, model, tmp_path):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse(model + "[demography]\n" + body + "\n", "t.toml", base_dir=tmp_path)
