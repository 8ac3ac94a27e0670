"""ONS population of a baseline's areas for years after the baseline (checks only).

A baseline carries the population up to its census and no further, so a forecast cannot
see the future.  The ``observed`` demography mode, which checks the engine against what ONS
estimated after the baseline, needs the later years: this module reads them, for the same
areas (former councils summed from their successors).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from simsend.data.baseline import Baseline, load_tables
from simsend.data.errors import DataError
from simsend.data.geography import resolve_areas
from simsend.dims import AGES


def population_through(baseline: Baseline, last_year: int) -> xr.DataArray:
    """ONS population (year, age, area) of ``baseline``'s areas up to census ``last_year``.

    Years after the last one in the data are left out.

    Raises
    ------
    DataError
        If an area has no population in one of the years asked for.

    """
    tables = load_tables(baseline.spec)
    pop = tables.population
    members_of = resolve_areas(tuple(baseline.areas), tables.areas).members
    last_year = min(int(last_year), int(pop["year"].max()))  # what ONS has published
    years = np.arange(int(pop["year"].min()), last_year + 1)
    out = np.full((len(years), len(AGES), len(baseline.areas)), np.nan)
    for r, members in enumerate(members_of):
        sub = pop[pop["area"].isin(members) & pop["year"].isin(years)]
        g = sub.groupby(["year", "age"])["count"].agg(["sum", "count"])
        g = g[g["count"] == len(members)]
        for (y, a), v in g["sum"].items():
            out[int(y) - years[0], int(a), r] = v
    have = np.isfinite(out).all(axis=(1, 2))
    if not have[-1]:
        last = years[have][-1] if have.any() else "?"
        raise DataError(f"population of census {last_year} not in the data for every area "
                        f"of the run (it covers {years[0]}-{last})")
    return xr.DataArray(out, dims=("year", "age", "area"),
                        coords={"year": years, "age": np.arange(len(AGES)),
                                "area": list(baseline.areas)},
                        name="population", attrs=dict(baseline.population.attrs))
