"""The HTML report: content from the results, self-contained, and rendered by headless Chromium."""

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import simsend
from simsend.cli import main
from simsend.io import write_netcdf
from simsend.publish.report import headline_table, render, scenario_table
from simsend.testing import pin_2022, scaled_scenario

BASE = Path(__file__).resolve().parents[2] / "configs" / "base.toml"


@pytest.fixture(scope="module")
def england(tmp_path_factory):
    """The England default (configs/base.toml) cut to two simulated years and 4 draws."""
    tmp = tmp_path_factory.mktemp("report")
    cfg = tmp / "england.toml"
    cfg.write_text(re.sub(r"(?m)^end_year = .*$", "end_year = 2024", pin_2022(BASE.read_text()),
                                    count=1))
    ds = simsend.run(cfg, draws=4, seed=5)
    return ds, write_netcdf(ds, tmp / "england.nc")


def with_scenario(ds):
    return scaled_scenario(ds, 1.1, "more_plans")


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_headline_and_scenario_tables(england):
    ds, _ = england
    head = headline_table(ds)
    spec = ds["n_pupils"].sel(tier="specialist").sum(["age_group", "need", "area"])
    q = spec.sel(year=2024).quantile([0.05, 0.5, 0.95], dim="draw").values
    assert head.loc["specialist", 2024] == f"{q[1]:,.0f} ({q[0]:,.0f} to {q[2]:,.0f})"
    sc = scenario_table(with_scenario(ds))
    diff = (with_scenario(ds)["n_pupils"].sel(scenario="more_plans", tier="specialist", year=2024)
            - ds["n_pupils"].sel(tier="specialist", year=2024)).sum(["age_group", "need", "area"])
    med = float(diff.quantile(0.5, dim="draw"))
    assert sc.loc["more_plans", "specialist"].startswith(f"{med:+,.0f} (")


def test_report_is_self_contained(england, tmp_path):
    ds, _ = england
    bt = pd.DataFrame({"variable": ["ehcp", "ehcp"], "horizon": [1, 2],
                       "coverage_90": [0.875, 0.75], "crps": [812.5, 1403.0]})
    html = render(with_scenario(ds), backtest=bt)
    assert "<h1>SEND demand forecast: England</h1>" in html
    assert "Scenarios compared with <i>baseline</i>" in html and "more_plans" in html
    assert "coverage_90" in html and "0.875" in html
    assert ds.attrs["config_sha256"] in html
    assert "explore-education-statistics" in html  # data sources
    imgs = re.findall(r"<img[^>]*src='([^']*)'", html)
    assert len(imgs) == 3 and all(s.startswith("data:image/png;base64,") for s in imgs)
    for s in imgs:
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"<(script|link)\b", html)  # nothing fetched: no scripts, no CSS links
    single = render(ds, history=False)
    assert "This run has no scenarios" in single and "No backtest given" in single


def test_report_renders_in_headless_chromium(england, tmp_path):
    ds, path = england
    out = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["report", str(path), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    browser = chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")
    shot = tmp_path / "report.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1200,2000", out.resolve().as_uri()]
    env = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run(cmd, capture_output=True, timeout=120, env=env, cwd=tmp_path)
    assert shot.exists(), "chromium wrote no screenshot"
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (2000, 1200)
    grey = img.mean(axis=-1)
    dark = (grey < 0.5).mean()
    # a rendered page of text, tables and charts: neither blank nor a solid block
    assert 0.01 < dark < 0.5, dark
    assert grey.std() > 0.1
    # the charts reached the page: grey band pixels (between black text and white paper)
    mid = ((grey > 0.55) & (grey < 0.9)).mean()
    assert mid > 0.005, mid
    # rows of the page below the headline table carry ink (charts), not empty space
    assert (grey[1200:1900] < 0.5).mean() > 0.002


def test_report_cli_backtest_and_errors(england, tmp_path):
    _, path = england
    bt = tmp_path / "bt.csv"
    pd.DataFrame({"variable": ["ehcp"], "horizon": [1], "crps": [10.5]}).to_csv(bt, index=False)
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", str(path), "--out", str(out), "--backtest",
                                    str(bt), "--no-history"])
    assert res.exit_code == 0, res.output
    assert "crps" in out.read_text() and f"wrote {out}" in res.output
    res = CliRunner().invoke(main, ["report", str(tmp_path / "none.nc")])
    assert res.exit_code == 2 and "results file not found" in res.output
    np.testing.assert_equal(len(list(tmp_path.glob(".*tmp*"))), 0)


def test_real_scenario_run_gives_charts_exports_and_report(tmp_path):
    """One scenario of configs/scenarios/council_questions.toml, for Rutland, 2 draws."""
    from simsend.publish.export import tidy
    from simsend.publish.plot import plot

    cfg = BASE.parent / "scenarios" / "council_questions.toml"
    ds = simsend.run(cfg, draws=2, areas=("E06000017",), scenario=["request_surge"])
    assert [str(s) for s in ds["scenario"].values] == ["baseline", "request_surge"]
    html = render(ds, history=False)
    assert "Scenarios compared with <i>baseline</i>" in html
    assert "request_surge" in html and "+33%" in html  # its description from the results
    png = plot(ds, tmp_path / "s", select={"tier": "specialist"}, history=False)[0]
    assert png.stat().st_size > 10_000
    t = tidy(ds, variables=["n_pupils"], by=["tier", "area"]).table
    assert set(t["scenario"]) == {"baseline", "request_surge"}
    assert not ((t["value"] > 0) & (t["value"] < 5)).any()  # Rutland: area-level, suppressed
    base = t[(t.scenario == "baseline") & (t.tier == "specialist") & (t.statistic == "mean")
             & (t.area == "E06000017")].set_index("year")["value"]
    want = ds["n_pupils"].sel(scenario="baseline", tier="specialist").sum(
        ["age_group", "need", "area", "placement"]).mean("draw")
    np.testing.assert_allclose(base.to_numpy(), want.values)
