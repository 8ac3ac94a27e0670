"""The command line through click's CliRunner: success paths and every bad-input case."""

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import simsend
from simsend.cli import main
from simsend.io import read_netcdf

BASE = Path(__file__).resolve().parents[1] / "configs" / "base.toml"
SMALL_AREA = "E06000017"  # Rutland: the smallest council, so runs take a moment


def small_config(tmp_path: Path, text: str | None = None, **run) -> Path:
    """configs/base.toml cut down to a short horizon and few draws, written to tmp_path."""
    text = BASE.read_text() if text is None else text
    settings = {"end_year": 2025, "draws": 3, **run}
    for key, value in settings.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    text = text.replace('areas = ["E92000001"]', f'areas = ["{SMALL_AREA}"]')
    text = text.replace('path = "results/base.nc"', f'path = "{(tmp_path / "out.nc").as_posix()}"')
    p = tmp_path / "small.toml"
    p.write_text(text)
    return p


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_run_writes_netcdf_with_tier_dims(tmp_path):
    cfg = small_config(tmp_path)
    res = invoke("run", cfg)
    assert res.exit_code == 0, res.output
    out = tmp_path / "out.nc"
    assert f"wrote {out}" in res.output
    ds = read_netcdf(out)
    assert ds["n_pupils"].dims[:3] == ("draw", "year", "tier")
    assert list(ds["tier"].values) == ["universal", "targeted", "targeted_plus", "specialist"]
    assert ds.sizes["draw"] == 3 and list(ds["year"].values) == [2022, 2023, 2024, 2025]
    for v in ("n_identified", "n_escalated", "n_deescalated", "n_left"):
        assert v in ds
    assert ds.attrs["config_sha256"] and ds.attrs["root_seed"] == 20260123
    assert "[model]" in ds.attrs["config_toml"]
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_equals_python_api_and_overrides(tmp_path):
    cfg = small_config(tmp_path)
    out = tmp_path / "cli.nc"
    res = invoke("run", cfg, "--draws", 2, "--seed", 5, "--out", out, "--quiet")
    assert res.exit_code == 0 and res.output == ""
    a = read_netcdf(out)
    b = simsend.run(cfg, draws=2, seed=5)
    np.testing.assert_array_equal(a["n_pupils"].values, b["n_pupils"].values)
    assert a.attrs["root_seed"] == 5 and a.sizes["draw"] == 2


def test_validate_ok():
    res = invoke("validate", BASE)
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    "old, new, pattern",
    [
        ("\n[model]\n", "\n[model]\nbogus = 1\n", r"\[model\.bogus\] unknown key"),
        ("seed = ", "seed = 'x' #", r"\[run\.seed\] expected an integer"),
        ("draws = 3", "draws = -4", r"\[run\.draws\] value -4 out of range"),
        ("universal = 0.003", "universal = 1.2", r"probability 1\.2 outside \[0, 1\]"),
        ('targeted_plus = { "0-4" = 0.08', 'targeted_plus = { "0-4" = 0.98',
         r"\[model\.tiers\.targeted\].*sum to"),
        ('source = "builtin"', 'source = "builtin"\nfiles = { stock = "missing.csv" }',
         r"\[data\.files\.stock\] file not found"),
    ],
)
def test_bad_config_exit_2_no_traceback_no_output(tmp_path, old, new, pattern):
    cfg = small_config(tmp_path)
    text = cfg.read_text()
    assert old in text
    cfg.write_text(text.replace(old, new, 1))
    res = invoke("run", cfg)
    assert res.exit_code == 2
    assert re.search(pattern, res.output), res.output
    assert str(cfg) in res.output  # names the file
    assert "Traceback" not in res.output
    assert not (tmp_path / "out.nc").exists()
    assert invoke("validate", cfg).exit_code == 2


def test_missing_config_file(tmp_path):
    res = invoke("run", tmp_path / "nope.toml")
    assert res.exit_code == 2 and "not found" in res.output and "Traceback" not in res.output


def test_unknown_area_is_a_user_error(tmp_path):
    cfg = small_config(tmp_path)
    res = invoke("run", cfg, "--area", "E99999999")
    assert res.exit_code == 2 and "E99999999" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "out.nc").exists()


def test_failed_run_leaves_existing_output_untouched(tmp_path):
    cfg = small_config(tmp_path)
    out = tmp_path / "out.nc"
    out.write_bytes(b"previous results")
    res = invoke("run", cfg, "--area", "not-a-code")
    assert res.exit_code == 2
    assert out.read_bytes() == b"previous results"


def test_backtest_without_a_later_record_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "bt.csv"
    res = invoke("backtest", BASE, "--origin", "2022", "--out", out, "--quiet")
    assert res.exit_code == 2
    assert "no recorded year after origin 2022" in res.output
    assert "Traceback" not in res.output
    assert not out.exists() and not any(tmp_path.iterdir())
