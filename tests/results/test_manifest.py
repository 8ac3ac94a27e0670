"""Run manifest (versions, commit, timings, posterior draws), `simsend info`, progress and logs."""

import io
import json
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import simsend
from simsend.cli import main
from simsend.io import write_netcdf
from simsend.progress import Progress, configure_logging
from simsend.results.manifest import (
    ResultsError,
    describe_param_draws,
    format_manifest,
    git_commit,
    manifest,
    read_results,
)
from simsend.testing import pin_2022

BASE = Path(__file__).resolve().parents[2] / "configs" / "base.toml"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("manifest")
    text = re.sub(r"(?m)^end_year = .*$", "end_year = 2023", pin_2022(BASE.read_text()), count=1)
    cfg = tmp / "small.toml"
    cfg.write_text(text.replace('areas = ["E92000001"]', 'areas = ["E06000017"]'))
    ds = simsend.run(cfg, draws=3, seed=9)
    return ds, write_netcdf(ds, tmp / "r.nc"), cfg


def test_run_attrs_carry_the_manifest(results):
    ds, path, _ = results
    m = manifest(read_results(path))
    assert m["package_versions"]["numpy"] == np.__version__
    assert m["package_versions"]["simsend"] == metadata.version("simsend")
    assert m["package_versions"]["xarray"] == xr.__version__
    assert set(m["timings"]) >= {"started_at", "baseline_s", "simulate_s", "threads"}
    assert m["timings"]["simulate_s"] > 0
    assert m["root_seed"] == 9 and len(m["config_sha256"]) == 64
    assert re.fullmatch(r"[0-9a-f]{40}(\+modified)?|unavailable", m["git_commit"])
    assert "/" not in m["git_commit"]  # never a path
    # base.toml names the shipped posterior: each draw records the posterior draw it used
    assert m["param_draw"] == {d: int(k) for d, k in enumerate(ds["param_draw"].values)}
    post = xr.open_dataset(BASE.parents[1] / "models" / ds.attrs["posterior_file"],
                           group="posterior", engine="h5netcdf")
    n_post = post.sizes["chain"] * post.sizes["draw"]
    post.close()
    assert all(0 <= k < n_post for k in m["param_draw"].values())
    assert m["dims"]["draw"] == 3


def test_git_commit_matches_the_checkout():
    import subprocess

    here = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    assert git_commit().split("+")[0] == head


def test_param_draw_mapping_is_reported():
    ds = xr.Dataset({"param_draw": (("draw",), np.array([17, 3, 42]))},
                    coords={"draw": [0, 1, 2]}, attrs={"root_seed": 1})
    m = manifest(ds)
    assert m["param_draw"] == {0: 17, 1: 3, 2: 42}
    assert describe_param_draws(m["param_draw"]) == \
        "draw<-posterior draw: 0<-17, 1<-3, 2<-42"
    assert describe_param_draws({0: -1, 1: -1}) == "fixed [model] rates for all 2 draws"
    # with a scenario dim the mapping is the same in each scenario
    two = xr.concat([ds, ds], dim="scenario")
    assert manifest(two)["param_draw"] == {0: 17, 1: 3, 2: 42}


def test_info_command(results):
    ds, path, _ = results
    res = CliRunner().invoke(main, ["info", str(path)])
    assert res.exit_code == 0, res.output
    assert ds.attrs["config_sha256"] in res.output
    assert "root seed          9" in res.output
    assert f"numpy {np.__version__}" in res.output
    assert describe_param_draws(manifest(ds)["param_draw"]) in res.output
    assert "draw<-posterior draw" in res.output
    assert "Rutland" in res.output and "explore-education-statistics" in res.output
    res = CliRunner().invoke(main, ["info", str(path), "--json"])
    m = json.loads(res.output)
    assert m["config_sha256"] == ds.attrs["config_sha256"] and m["param_draw"]["0"] == int(ds["param_draw"][0])
    res = CliRunner().invoke(main, ["info", str(path), "--config"])
    assert "[model]" in res.output
    assert format_manifest(manifest(ds)).splitlines()[0] == "simsend forecast"


def test_info_bad_files(tmp_path):
    res = CliRunner().invoke(main, ["info", str(tmp_path / "nope.nc")])
    assert res.exit_code == 2 and "results file not found" in res.output
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    res = CliRunner().invoke(main, ["info", str(junk)])
    assert res.exit_code == 2 and "not a readable results file" in res.output
    other = tmp_path / "other.nc"
    xr.Dataset({"x": ("t", [1, 2])}).to_netcdf(other, engine="h5netcdf")
    with pytest.raises(ResultsError, match="no simsend results"):
        read_results(other)


def test_progress_plain_lines_when_not_a_terminal():
    buf = io.StringIO()
    configure_logging(stream=buf)
    with Progress("draws", tty=False, interval=3600) as bar:
        assert bar.mode == "log"
        for k in range(1, 6):
            bar(k, 5)
    lines = buf.getvalue().splitlines()
    # the first, then nothing until the last (the interval is not reached)
    assert [re.search(r"draws (\d)/5", ln).group(1) for ln in lines] == ["1", "5"]
    assert "eta" in lines[0] and "(100%)" in lines[-1]


def _progress_lines(monkeypatch, calls) -> list[str]:
    """Log lines of a plain-mode bar called with ``(time, done, total)`` on a fake clock."""
    import simsend.progress as pr

    now = [0.0]
    monkeypatch.setattr(pr.time, "perf_counter", lambda: now[0])
    buf = io.StringIO()
    configure_logging(stream=buf)
    with Progress("draws", tty=False, interval=0) as bar:
        for t, done, total in calls:
            now[0] = t
            bar(done, total)
    return buf.getvalue().splitlines()


def test_progress_restarts_its_clock_on_a_new_cycle(monkeypatch):
    """A bar reused for several loops: done == 0 restarts elapsed time and the ETA."""
    # 100 s: e.g. a calibration before the first forecast
    lines = _progress_lines(monkeypatch, [(100.0, 0, 4), (102.0, 1, 4), (500.0, 0, 4),
                                          (510.0, 2, 4)])
    assert len(lines) == 2  # done == 0 writes nothing
    assert "elapsed 2.0s eta unknown yet" in lines[0]  # the first item carries start-up
    assert "elapsed 10.0s eta unknown yet" in lines[1]  # a new cycle starts over


def test_progress_eta_leaves_out_start_up(monkeypatch):
    """A 40 s run showed "eta 11511.8s": the first draw's JIT and data loading set the rate."""
    lines = _progress_lines(monkeypatch, [(33.0, 1, 100), (33.3, 2, 100), (33.6, 3, 100)])
    assert "eta unknown yet" in lines[0]
    assert "eta 29.4s" in lines[1] and "eta 29.1s" in lines[2]  # 0.3 s a draw after the first


def test_progress_quiet_and_verbose():
    buf = io.StringIO()
    log = configure_logging(quiet=True, stream=buf)
    with Progress("draws", quiet=True) as bar:
        assert bar.mode == "off"
        bar(1, 1)
    log.info("hidden")
    assert buf.getvalue() == ""
    log = configure_logging(verbose=True, stream=buf)
    log.debug("shown")
    assert "DEBUG shown" in buf.getvalue()
    with Progress("draws", tty=True) as bar:  # a rich bar; it draws to stderr
        assert bar.mode == "bar"
        bar(1, 2)
        bar(0, 2)  # a new cycle resets the rich task
        bar(2, 2)


def test_cli_run_logs_when_piped(results, tmp_path):
    _, _, cfg = results
    out = tmp_path / "o.nc"
    res = CliRunner().invoke(main, ["run", str(cfg), "--draws", "2", "--out", str(out),
                                    "--verbose"])
    assert res.exit_code == 0, res.output
    assert "draws 2/2 (100%)" in res.output and "DEBUG config" in res.output
    res = CliRunner().invoke(main, ["run", str(cfg), "--draws", "2", "--out", str(out),
                                    "--quiet"])
    assert res.exit_code == 0 and res.output == ""
