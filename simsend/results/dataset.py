"""Raw tallies to one ``xarray.Dataset`` with named dims, CF-style attrs and provenance."""

from __future__ import annotations

import datetime as _dt
import json
import weakref
from collections.abc import Mapping

import numpy as np
import xarray as xr

from simsend._version import __version__
from simsend.dims import PLACEMENTS, TIERS
from simsend.engine.loop import Outputs
from simsend.engine.tally import ALLOC_LONG_NAMES, ALLOC_VARS, FLOWS, PLACEMENT_COORD, Layout
from simsend.rates.sources import ParameterSource

_LONG_NAMES = {
    "n_pupils": "children and young people at the January census",
    "n_identified": "children identified from the universal tier during the year",
    "n_escalated": "moves into a higher tier during the year (by tier moved into)",
    "n_deescalated": "moves into a lower tier during the year (by tier moved into)",
    "n_left": "children leaving the system during the year (age-out past 25 or moving away),"
              " by state at the previous census",
    "n_to_specialist": "moves into the specialist tier during the year (new EHC plans), by tier"
                       " moved from and state before the move",
    "n_aged_out": "children leaving the system because they aged past 25 (part of n_left),"
                  " by state at the previous census",
    "n_moved_out": "children moving out of the area at the start of the year (migration; "
                   "EHC plans transferred to another council), by state at the previous census",
    "n_moved_in": "children moving into the area at the start of the year (migration; EHC "
                  "plans transferred from another council), by state at the previous census",
    "n_residual_out": "children removed at the start of the year by the stock residual (the "
                      "census-to-census variation the calibrated rates do not explain, drawn "
                      "from the posterior's over-dispersion), by state at the previous census",
    "n_residual_in": "children added at the start of the year by the stock residual (copies "
                     "of pupils already in the cell), by state at the previous census",
    "n_transitions": "individuals moving from tier_from to tier during the year",
}


def to_dataset(out: Outputs, layout: Layout, years: list[int],
               attrs: Mapping[str, str]) -> xr.Dataset:
    """Assemble a run's tallies into a Dataset.

    Parameters
    ----------
    out : Outputs
        Raw tallies from :func:`simsend.engine.loop.simulate`.
    layout : Layout
        The marginal the tallies are over.
    years : list of int
        Census years, baseline first.
    attrs : mapping
        Provenance attributes (config text and hash, seed, input hashes, ...).

    Returns
    -------
    xarray.Dataset
        ``n_pupils`` (int32) and the flows (float32, NaN at the baseline year, when no flow
        was simulated) with dims ``(draw, year, *layout.by)``; ``n_transitions`` with dims
        ``(draw, year, tier_from, tier)``; ``param_draw`` with dim ``draw``.

    """
    d, y = len(out.draws), len(years)
    dims = ("draw", "year", *layout.by)
    coords = {"draw": out.draws, "year": np.asarray(years, np.int32), **layout.coords,
              "tier_from": list(TIERS)}
    if "tier" not in coords:
        coords["tier"] = list(TIERS)
    shape = (d, y, *layout.shape)
    # The engine's stock is int32 already: the Dataset takes it without a copy.
    data = {"n_pupils": (dims, out.stock.reshape(shape).astype(np.int32, copy=False),
                         {"units": "1", "long_name": _LONG_NAMES["n_pupils"]})}
    for k, name in enumerate(FLOWS):
        f = out.flows[:, :, k].reshape(shape).astype(np.float32)
        f[:, 0] = np.nan
        data[name] = (dims, f, {"units": "1 year-1", "long_name": _LONG_NAMES[name],
                                "cell_methods": "year: sum (census to census)"})
    if out.alloc is not None:
        for k, name in enumerate(ALLOC_VARS):
            v = out.alloc[:, :, k].reshape(shape)
            if name == "n_overflow":
                v = v.astype(np.float32)
                v[:, 0] = np.nan
                at = {"units": "1 year-1", "cell_methods": "year: sum (census to census)"}
            else:
                v = v.astype(np.int32)
                at = {"units": "year" if name == "wait_years_total" else "1"}
            data[name] = (dims, v, {**at, "long_name": ALLOC_LONG_NAMES[name]})
    tr = out.transitions.astype(np.float32)
    tr[:, 0] = np.nan
    data["n_transitions"] = (("draw", "year", "tier_from", "tier"), tr,
                             {"units": "1 year-1", "long_name": _LONG_NAMES["n_transitions"]})
    data["param_draw"] = (("draw",), out.param_draw,
                          {"long_name": "parameter set (posterior draw) feeding each replicate;"
                                        " -1 = fixed rates"})
    ds = xr.Dataset(data, coords=coords)
    ds["year"].attrs = {"long_name": "January census year", "units": "1"}
    ds.attrs = {
        "title": "simsend forecast",
        "Conventions": "CF-1.10",
        "simsend_version": __version__,
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **{k: v if isinstance(v, str | int | float) else json.dumps(v) for k, v in attrs.items()},
    }
    return ds


_PLACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""The places of each source already built, by (areas, years): a streamed run asks once per
chunk of draws, and each time draw 0's year tables were built again (0.2 s for every
council)."""


def places_variable(source: ParameterSource, areas: tuple[str, ...], years: list[int]):
    """Return the places a run used, as a DataArray ``(year, area, placement)`` (NaN = unlimited).

    Taken from draw 0's parameter set after the scenario's modifiers (places do not vary by
    draw); the baseline year shows the plan's first year.  Built once per source, areas and
    years (a copy is returned).
    """
    key = (tuple(areas), tuple(years))
    try:
        memo = _PLACES.setdefault(source, {})
    except TypeError:  # a source that cannot be weakly referenced or hashed: no memo
        memo = {}
    if key not in memo:
        memo[key] = _places_variable(source, areas, years)
    return memo[key].copy(deep=True)


def _places_variable(source: ParameterSource, areas: tuple[str, ...], years: list[int]):
    ps = source.get(0)
    rows = [ps.places[0]] + [ps.year_tables(yi).places for yi in range(1, len(years))]
    arr = np.full((len(years), len(areas), len(PLACEMENT_COORD)), np.nan)
    arr[:, :, :len(PLACEMENTS)] = np.where(np.isinf(rows), np.nan, rows)
    return xr.DataArray(arr, dims=("year", "area", "placement"),
                        coords={"year": np.asarray(years, np.int32), "area": list(areas),
                                "placement": list(PLACEMENT_COORD)},
                        attrs={"units": "1", "long_name": "places available for the year "
                               "ending at the census (provision plan after the scenario's "
                               "modifiers); NaN = unlimited"})
