import re

import numpy as np
import pytest

from simsend.config import ConfigError, load, parse


def test_base_config_parses():
    cfg = load("configs/base.toml")
    assert cfg.run.start_year == 2025 and cfg.run.end_year == 2035
    assert cfg.run.draws == 1000
    assert cfg.data.areas == ("E92000001",)
    assert len(cfg.sha256) == 64
    # every tier row is a probability distribution at every age
    rows = cfg.model.tiers[1:].sum(axis=1)
    np.testing.assert_allclose(rows, 1.0)
    assert (cfg.model.tiers >= 0).all()


def test_toy_parses(toy_config):
    m = toy_config.model
    assert m.identification[4] == 0.05 and m.identification[3] == 0.02
    np.testing.assert_allclose(m.need_mix.sum(axis=1), 1.0)
    assert m.tiers[1, 0, 10] == 0.15 and m.tiers[1, 0, 11] == 0.25
    assert m.tiers[1, 1, 11] == pytest.approx(1 - 0.25 - 0.10 - 0.03)


@pytest.mark.parametrize(
    "edit, message",
    [
        (("[model]", "[model]\nbogus = 1"), r"\[model.bogus\] unknown key"),
        (("[model.leaving]", "[run]\ndraws = 'many'\n[model.leaving]"), r"\[run.draws\] expected an integer"),
        (("[model.leaving]", "[run]\ndraws = 0\n[model.leaving]"), r"\[run.draws\] value 0 out of range"),
        (("universal = 0.01", "universal = 1.5"), r"\[model.leaving.universal\] probability 1.5 outside"),
        (("targeted_plus = 0.10", "targeted_plus = 0.80"), r"\[model.tiers.targeted\] .* sum to"),
        (('"0-3" = 0.02, ', ""), r"\[model.identification\] age ranges must cover .* missing ages \[0, 1, 2, 3\]"),
        (('"0-3" = 0.02', '"0-5" = 0.02'), r"overlaps"),
        (("SLCN = 0.3", "SLCN = 0.4"), r"shares must sum to 1"),
        (('to = "special_state"', 'to = "hogwarts"'), r"\[model.placement_moves\[0\].to\] unknown value 'hogwarts'"),
        (("[model.leaving]", "[data]\nfiles = { sen2 = 'nope.csv' }\n[model.leaving]"), r"\[data.files.sen2\] file not found"),
        (("[model.leaving]", "[outputs]\nby = ['age']\n[model.leaving]"), r"\[outputs.by\] must include 'tier'"),
        (("[model.leaving]", "[run]\nstart_year = 2030\nend_year = 2025\n[model.leaving]"), r"\[run.end_year\]"),
        (("ASD = 1.5", "ASD = 10.0"), r"need_multiplier"),
    ],
)
def test_bad_config_names_key(toy_text, edit, message):
    old, new = edit
    assert old in toy_text
    with pytest.raises(ConfigError, match=message) as exc:
        parse(toy_text.replace(old, new, 1), "bad.toml")
    assert str(exc.value).startswith("bad.toml: ")


def test_not_toml():
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse("[run\n", "x.toml")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "nope.toml")


def test_hash_changes_with_text(toy_text):
    a = parse(toy_text, "a.toml")
    b = parse(toy_text + "\n# comment\n", "a.toml")
    assert a.sha256 != b.sha256


@pytest.mark.parametrize("value,msg", [
    ('"wales"', "[model.posterior] no shipped posterior 'wales' (models/ has ['councils_2025', "
     "'england_2022', 'england_2025'])"),
    ('"fits/none.nc"', "[model.posterior] file not found"),
])
def test_posterior_names_a_shipped_artefact_or_an_existing_file(tmp_path, value, msg):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "configs" / "base.toml").read_text()
    text = text.replace('posterior = "england_2025"', f"posterior = {value}")
    with pytest.raises(ConfigError, match=re.escape(msg)):
        parse(text, "c.toml", tmp_path)
