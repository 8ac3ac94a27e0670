"""Outcome indicators of a run, per draw and year (bands come from the draws).

The reform's measures and the questions a council's plan must answer, computed from a run's
results draw by draw so that their bands are those of the indicator itself (a ratio of
medians is not the median of the ratio):

=============================== ==================================================================
indicator                       definition
=============================== ==================================================================
``rel_specialist_mainstream``   specialist-tier pupils in mainstream schools or inclusion bases
                                / all specialist-tier pupils (the reform's inclusion measure;
                                needs a ``placement`` dim)
``rel_within_20_weeks``         plans issued within 20 weeks / plans issued (statutory pipeline)
``n_out_of_area``               pupils placed out of area (provision plan)
``n_special_independent``       specialist-tier pupils in independent special schools (needs
                                ``placement``)
``n_unmet_specialist``          specialist-tier pupils waiting for a place at the census plus
                                specialist-tier admissions redirected by overflow during the year
                                (provision plan)
``rel_special_state_places_used`` in-area pupils in state special schools / places (provision
                                plan with ``placement``; above 1 only where places were cut
                                below the pupils already there)
=============================== ==================================================================

An indicator whose inputs a run lacks is left out and named in ``attrs["not_available"]``
with the reason.  Every indicator sums over the run's other dims (area, need, age ...);
``by`` keeps some of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

INDICATORS = ("rel_specialist_mainstream", "rel_within_20_weeks", "n_out_of_area",
              "n_special_independent", "n_unmet_specialist", "rel_special_state_places_used")
"""Indicator names, in output order."""

_LONG = {
    "rel_specialist_mainstream": "share of specialist-tier pupils in mainstream schools or "
                                 "inclusion bases",
    "rel_within_20_weeks": "share of EHC plans issued within 20 weeks",
    "n_out_of_area": "pupils placed out of area",
    "n_special_independent": "specialist-tier pupils in independent special schools",
    "n_unmet_specialist": "unmet specialist demand: specialist-tier pupils waiting for a place "
                          "plus admissions redirected by overflow in the year",
    "rel_special_state_places_used": "pupils in state special schools of the area / places",
}


class IndicatorError(ValueError):
    """Results that allow no indicator at all, or a ``by`` dim they lack."""


def _sum(da: xr.DataArray, keep: Sequence[str]) -> xr.DataArray:
    return da.sum([d for d in da.dims if d not in keep], min_count=1).reset_coords(drop=True)


def indicators(ds: xr.Dataset, by: Sequence[str] = ()) -> xr.Dataset:
    """Compute the outcome indicators of a run, per draw and year.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of :func:`simsend.run`.
    by : sequence of str
        Result dims to keep besides ``scenario``, ``draw`` and ``year`` (e.g. ``("area",)``).

    Returns
    -------
    xarray.Dataset
        One variable per available indicator (:data:`INDICATORS`), dims
        ``(scenario, draw, year, *by)`` as the results have them.

    Raises
    ------
    IndicatorError
        When a ``by`` dim is missing or no indicator can be computed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"n_issued": (("draw", "year"), [[10.0, 20.0]]),
    ...                  "n_within_20_weeks": (("draw", "year"), [[5.0, 15.0]])})
    >>> indicators(ds)["rel_within_20_weeks"].values.tolist()
    [[0.5, 0.75]]

    """
    missing = [d for d in by if d not in ds.dims]
    if missing:
        raise IndicatorError(f"results have no {missing} dim (they have {list(ds.dims)})")
    keep = [d for d in ("scenario", "draw", "year") if d in ds.dims] + list(by)
    out, absent = {}, {}
    has_pl = "placement" in ds.dims
    tier_ok = "n_pupils" in ds and "tier" in ds["n_pupils"].dims
    sp = {"tier": "specialist"}

    if tier_ok and has_pl:
        pupils = ds["n_pupils"].sel(sp)
        main = _sum(pupils.sel(placement=["mainstream", "inclusion_base"]), keep)
        out["rel_specialist_mainstream"] = main / _sum(pupils, keep)
        out["n_special_independent"] = _sum(pupils.sel(placement="special_independent"), keep)
    else:
        why = "needs n_pupils by tier and placement (add 'placement' to outputs.by)"
        absent["rel_specialist_mainstream"] = absent["n_special_independent"] = why
    if "n_issued" in ds and "n_within_20_weeks" in ds:
        out["rel_within_20_weeks"] = (_sum(ds["n_within_20_weeks"], keep)
                                      / _sum(ds["n_issued"], keep))
    else:
        absent["rel_within_20_weeks"] = "needs the statutory pipeline ([pipeline] enabled)"
    if "n_out_of_area" in ds:
        out["n_out_of_area"] = _sum(ds["n_out_of_area"], keep)
        if "tier" in ds["n_waiting"].dims:
            wait = ds["n_waiting"].sel(sp)
            over = ds["n_overflow"].sel(sp).fillna(0)
            out["n_unmet_specialist"] = _sum(wait, keep) + _sum(over, keep)
        else:
            absent["n_unmet_specialist"] = "needs a tier dim in outputs.by"
    else:
        absent["n_out_of_area"] = absent["n_unmet_specialist"] = "needs a [provision] plan"
    if "places" in ds and has_pl and "n_out_of_area" in ds:
        st = {"placement": "special_state"}
        inside = _sum((ds["n_pupils"] - ds["n_out_of_area"]).sel(st), keep)
        places = _sum(ds["places"].sel(st), [d for d in keep if d != "draw"])
        out["rel_special_state_places_used"] = inside / places
    else:
        absent["rel_special_state_places_used"] = ("needs a [provision] plan and a placement "
                                                   "dim")
    if not out:
        raise IndicatorError(f"no indicator can be computed from these results: {absent}")
    res = xr.Dataset({k: out[k] for k in INDICATORS if k in out})
    for k in res.data_vars:
        res[k] = res[k].transpose(*[d for d in keep if d in res[k].dims])
        res[k].attrs = {"long_name": _LONG[k], "units": "1"}
    res.attrs = {**ds.attrs, "not_available": "; ".join(f"{k}: {v}" for k, v in absent.items())}
    return res


def indicator_table(ind: xr.Dataset, quantiles: Sequence[float] = (0.05, 0.5, 0.95),
                    years: Sequence[int] | None = None):
    """Return a tidy table of indicator bands: one row per (scenario, year, by..., indicator)."""
    import pandas as pd

    rows = []
    sel = ind if years is None else ind.sel(year=list(years))
    for name, da in sel.data_vars.items():
        q = da.quantile(list(quantiles), dim="draw") if "draw" in da.dims else da
        df = q.to_dataframe(name)[name].unstack("quantile").reset_index()
        df.insert(0, "indicator", name)
        df.columns = [f"q{float(c):g}" if isinstance(c, float) else str(c)
                      for c in df.columns]
        rows.append(df)
    table = pd.concat(rows, ignore_index=True)
    return table.replace([np.inf, -np.inf], np.nan)
