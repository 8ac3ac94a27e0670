"""Statistical neighbours: the shipped DfE list, recorded rates, the table and the report section."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simsend
from simsend.data import DataError
from simsend.data.baseline import builtin_dir
from simsend.data.neighbours import neighbours_of, read_neighbours
from simsend.publish.neighbours import (
    forecast_rate,
    neighbour_chart,
    neighbour_table,
    recorded_rates,
)
from simsend.publish.report import render

ROOT = Path(__file__).resolve().parents[2]
RUTLAND = "E06000017"


@pytest.fixture(scope="module")
def rutland(tmp_path_factory):
    """A real council run: Rutland, 4 draws, 2025 to 2030."""
    text = (ROOT / "configs" / "council.toml").read_text()
    text = re.sub(r"(?m)^end_year = .*$", "end_year = 2030", text, count=1)
    text = text.replace('areas = ["E08000025"]', f'areas = ["{RUTLAND}"]')
    cfg = tmp_path_factory.mktemp("neighbours") / "rutland.toml"
    cfg.write_text(text)
    return simsend.run(cfg, draws=4, seed=2)


def test_every_council_has_ten_known_neighbours():
    nb = read_neighbours()
    areas = pd.read_csv(builtin_dir() / "areas.csv", dtype=str)
    current = set(areas.loc[(areas["level"] == "la") & (areas["status"] == "current"), "code"])
    assert current <= set(nb["code"])  # every current council (153)
    # a current council's neighbours are current councils (the workbook's five former
    # councils, "(Pre LG)", name each other)
    assert set(nb.loc[nb["code"].isin(current), "neighbour_code"]) <= current
    assert all(sorted(r) == list(range(1, 11)) for _, r in nb.groupby("code")["rank"])
    # as DfE's workbook (sn_may_2025.xlsx) prints them
    bd = neighbours_of("E09000002", nb)
    assert bd["neighbour_name"].tolist()[:3] == ["Enfield", "Luton", "Hounslow"]
    assert bd["closeness"].tolist()[:4] == ["Close", "Close", "Close", "Somewhat close"]
    assert set(nb["closeness"]) <= {"Extremely close", "Very close", "Close",
                                    "Somewhat close", "Not close"}
    assert neighbours_of("E92000001", nb).empty


def test_a_bad_list_is_refused(tmp_path):
    nb = read_neighbours()
    short = tmp_path / "short.csv"
    nb[nb["rank"] != 10].to_csv(short, index=False)
    with pytest.raises(DataError, match="has 9 neighbours, expected 10"):
        read_neighbours(short)
    with pytest.raises(DataError, match="not found"):
        read_neighbours(tmp_path / "none.csv")
    nb.drop(columns="closeness").to_csv(tmp_path / "cols.csv", index=False)
    with pytest.raises(DataError, match="missing column"):
        read_neighbours(tmp_path / "cols.csv")


def test_recorded_rates_from_the_shipped_extract():
    r = recorded_rates(["E92000001"], 2025)
    pop = pd.read_csv(builtin_dir() / "population.csv.gz")
    pop = pop[(pop["area"] == "E92000001") & (pop["year"] == 2025)]["count"].sum()
    # SEN2: 638,745 EHC plans in England in January 2025
    assert float(r.loc["E92000001", "ehcp_per_10k"]) == pytest.approx(638745 / pop * 1e4)
    assert 20 < float(r.loc["E92000001", "special_pct"]) < 50


def test_table_council_neighbours_england_and_the_forecast(rutland):
    t = neighbour_table(rutland)
    assert t["role"].tolist() == ["council"] + ["neighbour"] * 10 + ["England"]
    assert t.index[0] == RUTLAND and t.index[-1] == "E92000001"
    assert t["rank"].iloc[1:11].tolist() == list(range(1, 11))
    assert t.attrs["year"] == 2025 and sorted(t.attrs["forecast"]) == [2025, 2030]
    assert t[["ehcp_per_10k", "new_plans_per_10k"]].notna().all().all()
    # the run starts from the recorded caseload and the ONS population
    med, lo, hi = t.attrs["forecast"][2025]
    assert med == pytest.approx(float(t.loc[RUTLAND, "ehcp_per_10k"]), rel=1e-6)
    med, lo, hi = forecast_rate(rutland, 2030)
    assert lo <= med <= hi and (med, lo, hi) == t.attrs["forecast"][2030]
    fig = neighbour_chart(t)
    bars = [p for p in fig.axes[0].patches]
    assert len(bars) == 11
    np.testing.assert_allclose([b.get_width() for b in bars][:1],
                               [t.loc[RUTLAND, "ehcp_per_10k"]])


def test_report_shows_the_neighbours(rutland):
    html = render(rutland, history=False)
    sec = html[html.index("<h2>Statistical neighbours</h2>"):]
    sec = sec[:sec.index("<h2>", 5)]
    first = neighbours_of(RUTLAND)["neighbour_name"].iloc[0]
    assert first in sec and "England" in sec and "<img alt='EHC plans per 10,000" in sec
    eng = rutland.assign_coords(area=["E92000001"])
    eng.attrs = {**rutland.attrs, "areas": '["E92000001"]'}
    assert neighbour_table(eng) is None
    assert "No neighbour comparison" in render(eng, history=False)
