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
    settings = {"end_year": 2028, "draws": 3, **run}
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
    assert ds.sizes["draw"] == 3 and list(ds["year"].values) == [2025, 2026, 2027, 2028]
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
        ("universal = 0.0\n", "universal = 1.2\n", r"probability 1\.2 outside \[0, 1\]"),
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
    res = invoke("backtest", BASE, "--origin", "2025", "--out", out, "--quiet")
    assert res.exit_code == 2
    assert "no recorded year after origin 2025" in res.output
    assert "Traceback" not in res.output
    assert not out.exists() and not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- output paths
# Every command that writes a file refuses, before any work, an output path that is one of its
# inputs, a directory, or a path whose parent is a file or not writable (simsend.io.check_output).

COSTS = BASE.parent / "costs" / "england_2021_22.toml"


@pytest.fixture(scope="module")
def results_file(tmp_path_factory):
    from simsend.io import write_netcdf

    tmp = tmp_path_factory.mktemp("outputs")
    ds = simsend.run(small_config(tmp, end_year=2026, draws=2))
    return write_netcdf(ds, tmp / "R.nc")


def writers(r: Path, out: Path) -> dict[str, list]:
    """Each command that writes a file, reading ``r`` and writing ``out``."""
    return {
        "export": ["export", r, "--by", "tier", "--out", out],
        "report": ["report", r, "--out", out, "--no-history"],
        "indicators": ["indicators", r, "--out", out],
        "compare": ["compare", r, "--csv", out],
        "monitor": ["monitor", r, COSTS, "--csv", out],
        "costs": ["costs", r, COSTS, "--out", out],
        "sensitivity": ["sensitivity", r, "--out", out],
        "plot": ["plot", r, "--out", out],
    }


def no_work(monkeypatch):
    """Make reading results or running a forecast fail loudly: a refusal must come first."""
    import simsend.api
    import simsend.results.manifest

    def boom(*_, **__):
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr(simsend.results.manifest, "read_results", boom)
    monkeypatch.setattr(simsend.api, "run", boom)
    monkeypatch.setattr(simsend.api, "run_zarr", boom)


def refused(res, path, why: str) -> None:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: ") and str(path) in lines[0] and why in lines[0]
    assert "Traceback" not in res.output


@pytest.mark.parametrize("command", list(writers(Path("r"), Path("o"))))
def test_writers_refuse_their_input_as_output(results_file, tmp_path, monkeypatch, command):
    before = results_file.read_bytes()
    link = tmp_path / "link.csv"
    link.symlink_to(results_file)
    no_work(monkeypatch)
    if command == "plot":  # plot writes <out>.png: results named R.png, --out R
        r = tmp_path / "R.png"
        r.write_bytes(b"results")
        refused(invoke(*writers(r, tmp_path / "R")[command]), r, "is the input")
        assert r.read_bytes() == b"results"
        return
    for out in (results_file, link, tmp_path / ".." / tmp_path.name / "link.csv"):
        refused(invoke(*writers(results_file, out)[command]), out, "is the input")
    assert results_file.read_bytes() == before


@pytest.mark.parametrize("command", list(writers(Path("r"), Path("o"))))
def test_writers_refuse_directories_and_unwritable_parents(results_file, tmp_path,
                                                           monkeypatch, command):
    import os

    no_work(monkeypatch)
    folder = tmp_path / "folder"
    folder.mkdir()
    if command != "plot":  # plot's --out is a name without suffix: folder -> folder.png
        refused(invoke(*writers(results_file, folder)[command]), folder, "is a directory")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out in (a_file / "x.csv", a_file / "deeper" / "x.csv"):
        refused(invoke(*writers(results_file, out)[command]), out, f"parent {a_file} is a file")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked
                        else real_access(p, mode, **kw))
    out = locked / "new" / "x.csv"
    refused(invoke(*writers(results_file, out)[command]), out, f"cannot write in {locked}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "folder", "locked"]


def test_default_output_beside_results_is_checked_too(tmp_path, monkeypatch):
    """``export R.csv`` (a results file named .csv) would overwrite R.csv with its CSV."""
    r = tmp_path / "R.csv"
    r.write_bytes(b"results")
    no_work(monkeypatch)
    refused(invoke("export", r), r, "is the input")
    refused(invoke("report", r.with_suffix(".html")), r.with_suffix(".html"), "is the input")
    assert r.read_bytes() == b"results"


def test_run_refuses_a_bad_output_before_simulating(tmp_path, monkeypatch):
    cfg = small_config(tmp_path)
    no_work(monkeypatch)
    folder = tmp_path / "folder"
    folder.mkdir()
    refused(invoke("run", cfg, "--out", cfg), cfg, "is the input")
    refused(invoke("run", cfg, "--out", folder), folder, "is a directory")
    refused(invoke("run", cfg, "--out", cfg / "x.nc"), cfg / "x.nc", "is a file")
    not_store = tmp_path / "data.zarr"
    not_store.mkdir()
    (not_store / "keep.txt").write_text("mine")
    refused(invoke("run", cfg, "--out", not_store), not_store, "not a Zarr store")
    assert (not_store / "keep.txt").read_text() == "mine"
    # outputs.path in the config is checked the same way
    cfg.write_text(cfg.read_text().replace(f'path = "{(tmp_path / "out.nc").as_posix()}"',
                                           f'path = "{folder.as_posix()}"'))
    refused(invoke("run", cfg), folder, "is a directory")
    assert "outputs.path" in invoke("run", cfg).output


def test_calibrate_and_backtest_refuse_their_config_as_output(tmp_path, monkeypatch):
    cfg = small_config(tmp_path)
    before = cfg.read_text()
    refused(invoke("calibrate", cfg, "--out", cfg), cfg, "is the input")
    refused(invoke("backtest", cfg, "--origin", 2022, "--out", cfg), cfg, "is the input")
    assert cfg.read_text() == before


def test_run_refuses_an_output_it_would_not_write_as_named(tmp_path):
    """`run --out x.csv` wrote NetCDF under a .csv name (issue 17)."""
    res = CliRunner().invoke(main, ["run", str(BASE), "--draws", "1",
                                    "--out", str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and "results are written as NetCDF or Zarr" in res.output
    assert "simsend export" in res.output and not list(tmp_path.iterdir())
