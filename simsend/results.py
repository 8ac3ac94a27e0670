"""Raw tallies to one ``xarray.Dataset`` with named dims, CF-style attrs and provenance."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping

import numpy as np
import xarray as xr

from simsend._version import __version__
from simsend.dims import TIERS
from simsend.engine import Outputs
from simsend.recorder import FLOWS, Layout

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
    "n_transitions": "individuals moving from tier_from to tier during the year",
}


def to_dataset(out: Outputs, layout: Layout, years: list[int],
               attrs: Mapping[str, str]) -> xr.Dataset:
    """Assemble a run's tallies into a Dataset.

    Parameters
    ----------
    out : Outputs
        Raw tallies from :func:`simsend.engine.simulate`.
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
        from simsend.provision import ALLOC_VARS
        from simsend.provision import LONG_NAMES as ALLOC_NAMES

        for k, name in enumerate(ALLOC_VARS):
            v = out.alloc[:, :, k].reshape(shape)
            if name == "n_overflow":
                v = v.astype(np.float32)
                v[:, 0] = np.nan
                at = {"units": "1 year-1", "cell_methods": "year: sum (census to census)"}
            else:
                v = v.astype(np.int32)
                at = {"units": "year" if name == "wait_years_total" else "1"}
            data[name] = (dims, v, {**at, "long_name": ALLOC_NAMES[name]})
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
