"""The run recipe: one plan, the same results and provenance from every path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from simsend.cli import main
from simsend.config import load
from simsend.data import DataError
from simsend.rates.posterior import PosteriorParameters
from simsend.rates.provision import ProvisionSource
from simsend.rates.scenario import ScenarioSource
from simsend.rates.sources import innermost
from simsend.runner.forecast import run_forecast, simulate_run
from simsend.runner.plan import prepare

ROOT = Path(__file__).resolve().parents[2]


def test_provenance_names_the_posterior_area_under_every_wrapper():
    """A posterior and a provision plan: the posterior's area mapping is still recorded."""
    cfg = load(ROOT / "configs" / "base.toml")
    assert cfg.model.posterior and cfg.provision is not None
    plan = prepare(cfg, draws=1, areas=("E06000017",))
    src = plan.sources[0]
    assert isinstance(src, ProvisionSource) and isinstance(src.source, ScenarioSource)
    assert isinstance(innermost(src), PosteriorParameters)
    attrs = plan.provenance(0, {})
    assert json.loads(attrs["posterior_area_source"]) == {"E06000017": "E92000001"}
    assert attrs["posterior_file"] == "england_2025.nc"


def test_scenario_runs_share_one_baseline_and_differ_only_by_their_sources():
    cfg = load(ROOT / "configs" / "scenarios" / "council_questions.toml")
    plan = prepare(cfg, draws=2, areas=("E06000017",), scenario=["request_surge"])
    assert plan.stacked and [getattr(s, "name", None) for s in plan.runs] == [
        "baseline", "request_surge"]
    a, b = (simulate_run(plan, k, plan.draws) for k in range(2))
    np.testing.assert_array_equal(a.stock[:, 0], b.stock[:, 0])  # same baseline census
    assert not np.array_equal(a.flows, b.flows)  # the surge changes the flows


def test_plan_dataset_of_a_draw_subset_is_that_slice_of_the_whole_run():
    cfg = load(ROOT / "configs" / "council.toml").replace_run(end_year=2028)
    whole = run_forecast(cfg, draws=4, areas=("E06000017",))
    plan = prepare(cfg, draws=4, areas=("E06000017",))
    part = plan.dataset(0, simulate_run(plan, 0, plan.draws[2:]), plan.provenance(0, {}))
    for name in part.data_vars:
        if "draw" in part[name].dims:
            np.testing.assert_array_equal(part[name].values, whole[name].isel(draw=[2, 3]).values,
                                          err_msg=name)


def test_results_that_cannot_fit_in_memory_are_refused_before_simulating():
    """--draws 10000001 used to allocate 146 GiB and die; now it is refused with an estimate."""
    import pytest

    from simsend.config import ConfigError
    from simsend.runner.plan import BYTES_PER_CELL, machine_memory

    cfg = load(ROOT / "configs" / "council.toml")
    plan = prepare(cfg, draws=10_000_000, areas=("E06000017",))
    assert plan.result_bytes() == 10_000_000 * 11 * plan.layout.size * BYTES_PER_CELL
    assert machine_memory() > 2**30
    with pytest.raises(ConfigError, match=r"GiB in memory.*--out results.zarr.*--draws"):
        plan.check_memory()
    plan.check_memory(total=plan.result_bytes())  # exactly what fits is allowed
    with pytest.raises(ConfigError, match="draws"):
        run_forecast(cfg, draws=10_000_000, areas=("E06000017",))


def test_a_scenario_run_counts_its_draws_once_over_every_run():
    """Seven unlabelled progress bars (one per scenario run) became one count."""
    cfg = load(ROOT / "configs" / "scenarios" / "council_questions.toml").replace_run(
        end_year=2027)
    ticks = []
    run_forecast(cfg, draws=2, areas=("E06000017",), scenario=["request_surge"],
                 progress=lambda d, t: ticks.append((d, t)))
    assert {t for _, t in ticks} == {4}
    assert sorted(d for d, _ in ticks) == [1, 2, 3, 4]


def _plan_config(tmp_path: Path, rows: str) -> Path:
    """configs/base.toml to 2027 with a provision plan of ``rows`` (after a comment line)."""
    (tmp_path / "plan.csv").write_text("area,placement,year,places\n# Rutland's own\n" + rows)
    p = tmp_path / "c.toml"
    p.write_text(f'extends = "{(ROOT / "configs" / "base.toml").as_posix()}"\n'
                 '[run]\nend_year = 2027\n[provision]\nplan = "plan.csv"\n')
    return p


def test_a_mistyped_plan_area_stops_the_run_with_file_line_and_code(tmp_path):
    """Rutland's expansion under E0600017 used to be skipped: Rutland then had 48 places for
    ever, without a word."""
    p = _plan_config(tmp_path, "E06000017,special_state,2025,48\n"
                               "E0600017,special_state,2028,70\n")
    with pytest.raises(DataError) as err:
        prepare(p, draws=1, areas=("E06000017",))
    assert [(f.file, f.row, f.column, f.value) for f in err.value.findings] == [
        (str(tmp_path / "plan.csv"), 4, "area", "E0600017")]
    res = CliRunner().invoke(main, ["run", str(p), "--draws", "1", "--area", "E06000017",
                                    "--out", str(tmp_path / "o.nc")])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and not (tmp_path / "o.nc").exists()
    assert ("plan.csv:4: area='E0600017': unknown area code: did you mean E06000017 (Rutland)?"
            " This run's areas are ['E06000017']") in res.output


def test_plan_rows_of_the_data_s_other_areas_are_skipped_and_another_code_is_named(tmp_path):
    """A plan of every council run on one is fine; North Yorkshire under ONS's code is not."""
    p = _plan_config(tmp_path, "E06000017,special_state,2025,48\nE06000001,special_state,2025,9\n"
                               "E92000001,special_state,2025,163705\n")
    plan = prepare(p, draws=1, areas=("E06000017",))
    assert plan.sources[0].places[0, 0, 2] == 48
    p = _plan_config(tmp_path, "E10000023,special_state,2025,900\n"
                               "E06000065,special_state,2028,990\n")
    with pytest.raises(DataError, match=r"plan.csv:4: area='E06000065': another code of North "
                                        r"Yorkshire, which this run's data call E10000023"):
        prepare(p, draws=1, areas=("E10000023",))
