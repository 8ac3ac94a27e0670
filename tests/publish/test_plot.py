"""Fan charts: bands from summed draws, history matching, scenarios, files written, CLI."""

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import simsend
from simsend.cli import main
from simsend.io import write_netcdf
from simsend.publish.plot import PlotError, fan_chart, history_for, load_history, panel_draws, plot
from simsend.testing import pin_2022, scaled_scenario

BASE = Path(__file__).resolve().parents[2] / "configs" / "base.toml"
RUTLAND = "E06000017"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plot")
    text = re.sub(r"(?m)^end_year = .*$", "end_year = 2024", pin_2022(BASE.read_text()), count=1)
    cfg = tmp / "small.toml"
    cfg.write_text(text.replace('areas = ["E92000001"]', f'areas = ["{RUTLAND}"]'))
    ds = simsend.run(cfg, draws=5, seed=3)
    return ds, write_netcdf(ds, tmp / "r.nc")


def with_scenario(ds):
    return scaled_scenario(ds, 1.3, "growth")


def image_stats(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)[..., :3]
    grey = img.mean(axis=-1)
    return img.shape, float((grey < 0.5).mean()), float(grey.std())


def test_panel_draws_sum_over_hidden_marginals(results):
    ds, _ = results
    da = panel_draws(ds, "n_pupils", facet="tier", select={"need": "ASD+SEMH"})
    want = ds["n_pupils"].sel(need=["ASD", "SEMH"]).sum(["need", "age_group", "area"])
    np.testing.assert_array_equal(da.transpose("draw", "year", "tier").values, want.values)
    with pytest.raises(PlotError, match="need='XYZ' not in the results"):
        panel_draws(ds, "n_pupils", select={"need": "XYZ"})
    with pytest.raises(PlotError, match="no dimension 'colour'"):
        panel_draws(ds, "n_pupils", facet="colour")
    with pytest.raises(PlotError, match="unknown variable"):
        panel_draws(ds, "n_nothing")


def test_history_matches_only_comparable_panels(results):
    ds, _ = results
    hist = load_history(ds)
    assert hist is not None and list(hist["area"].values) == [RUTLAND]
    spec, label = history_for(hist, "n_pupils", {"tier": ["specialist"]}, None, None)
    want = hist["ehcp"].sum("age_group", min_count=1).sel(area=RUTLAND).dropna("year")
    np.testing.assert_array_equal(spec.values, want.values)
    assert "EHC plans" in label and int(spec["year"][-1]) == 2022
    # the recorded EHC plans at the baseline equal the run's specialist tier at the baseline
    base = ds["n_pupils"].sel(tier="specialist", year=2022).sum(["age_group", "need", "area"])
    assert float(spec.sel(year=2022)) == float(base.isel(draw=0))
    assert history_for(hist, "n_pupils", {"tier": ["specialist"], "need": ["ASD"]},
                       None, None) is None
    assert history_for(hist, "n_pupils", {}, "tier", "universal") is None
    sen, label = history_for(hist, "n_pupils", {"tier": ["targeted", "targeted_plus"]},
                             None, None)
    assert "SEN support" in label
    assert history_for(hist, "n_left", {"tier": ["specialist"]}, None, None) is None


def test_fan_chart_png_and_svg(results, tmp_path):
    ds, _ = results
    paths = plot(ds, tmp_path / "tiers", facet="tier", formats=("png", "svg"))
    assert [p.suffix for p in paths] == [".png", ".svg"]
    shape, dark, std = image_stats(paths[0])
    assert shape[0] > 500 and shape[1] > 800
    assert 0.003 < dark < 0.5 and std > 0.05  # drawn lines and text, not blank
    svg = paths[1].read_text()
    assert ds.attrs["config_sha256"][:12] in svg and "seed 3" in svg
    assert "median" in svg and "90% band" in svg


def test_scenario_against_baseline_on_one_chart(results):
    ds, _ = results
    fig = fan_chart(with_scenario(ds), select={"tier": "specialist"}, history=False)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "baseline: median" in labels and "growth: median" in labels
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert lines["baseline: median"].get_linestyle() == "-"
    assert lines["growth: median"].get_linestyle() == "--"  # black-and-white: line styles
    hatched = [c for c in ax.collections if c.get_hatch()]
    assert len(hatched) == 2  # the scenario's bands are hatched, the baseline's grey
    growth = lines["growth: median"].get_ydata()
    base = lines["baseline: median"].get_ydata()
    assert np.all(growth > base)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cli_plot(results, tmp_path):
    _, path = results
    out = tmp_path / "c"
    res = CliRunner().invoke(main, ["plot", str(path), "--select", "tier=specialist",
                                    "--by", "age_group", "--out", str(out), "--format", "png"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c.png").stat().st_size > 10_000
    res = CliRunner().invoke(main, ["plot", str(path), "--select", "tier=nope"])
    assert res.exit_code == 2 and "tier='nope' not in the results" in res.output
