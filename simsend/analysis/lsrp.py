r"""A forecast's EHC plans by the 14 provision types of the local SEND reform plan (LSRP).

The engine forecasts specialist-tier pupils (EHC plans) by seven placement groups.  The LSRP
template asks for 14 provision types, some finer than a group (the ``other`` group holds early
years settings, elective home education, EOTAS and NEET; ``post16_fe`` holds mainstream and
specialist post-16 institutions).  :func:`provision_view` splits each group of each draw by the
area's SEN2 shares (:func:`simsend.data.lsrp.establishment_shares`), so that every figure is
still a draw and bands come from the draws:

.. math::

    N_{d,y,a,t} = \sum_g N_{d,y,a,g} \, s_{a,g,t}, \qquad \sum_{t \in g} s_{a,g,t} = 1,

where ``s`` is the share of group ``g``'s plans in provision type ``t`` in area ``a`` at the
SEN2 January census of the run's start year (the latest complete one at or before it).  Each
type lies in one group, so a group's total is kept exactly (the shares are dyadic: see
:data:`simsend.data.lsrp.SHARE_BITS`).

**ASSUMPTION:** the split within each group is held at the baseline census's for every
forecast year (the engine does not forecast, say, EHE separately from NEET); types SEN2 cannot
separate (support bases, NMSS or independent under other arrangements, mainstream post-16
specialist provision) are 0.  :func:`provision_table` gives the median and quartile bands.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from simsend.config import ConfigError
from simsend.data.lsrp import ASSUMPTION, NOT_SEPARATED, PROVISION_TYPES, establishment_shares
from simsend.dims import PLACEMENTS

QUANTILES = (0.5, 0.05, 0.25, 0.75, 0.95)
"""Quantiles of :func:`provision_table`, in column order."""
QUANTILE_COLUMNS = ("median", "p05", "p25", "p75", "p95")
EXTRA_LABELS = {"not_recorded": "Placement not recorded"}
"""Labels of result placements outside the engine's seven groups (kept as their own row)."""


def start_year(ds: xr.Dataset) -> int:
    """Return the run's start year: the baseline census, the results' first year.

    Examples
    --------
    >>> start_year(xr.Dataset(coords={"year": [2025, 2026]}))
    2025

    """
    if "year" not in ds.coords or ds["year"].size == 0:
        raise ConfigError("results have no year coordinate: pass the census year of the "
                          "shares (year=)")
    return int(np.min(ds["year"].values))


def _areas(ds: xr.Dataset, pupils: xr.DataArray) -> list[str]:
    """Area codes the shares are needed for (the area coordinate, or the run's one area)."""
    if "area" in pupils.dims:
        return [str(a) for a in ds["area"].values]
    try:
        areas = [str(a) for a in json.loads(ds.attrs.get("areas", "[]"))]
    except (TypeError, json.JSONDecodeError):
        areas = []
    if len(areas) == 1:
        return areas
    raise ConfigError("results have no area dimension and do not name one area (attrs "
                      f"'areas': {ds.attrs.get('areas')!r}): each area has its own shares, so "
                      "run with \"area\" in [outputs] by")


def provision_view(ds: xr.Dataset, year: int | None = None,
                   tier: str | None = "specialist") -> xr.Dataset:
    """Split a forecast's pupils by placement group into the 14 LSRP provision types.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of :func:`simsend.run` whose ``n_pupils`` has a ``placement`` dimension (runs
        whose ``[outputs] by`` includes ``"placement"``, e.g. ``configs/council_returns.toml``).
    year : int, optional
        January census of the SEN2 shares (default: the run's start year, :func:`start_year`;
        the latest census at or before it that the area published in full is used).
    tier : str or None
        Tier kept (default ``"specialist"``: EHC plans, which the shares describe); None keeps
        every tier of the results (each split with the same shares).

    Returns
    -------
    xarray.Dataset
        ``n_pupils`` (float64) over the results' dims with ``placement`` replaced by
        ``provision_type`` (the 14 keys of :data:`simsend.data.lsrp.PROVISION_TYPES` in
        template order, plus ``not_recorded`` where the results hold pupils with no placement)
        and ``draw`` kept; coordinate ``provision_label`` (the template's labels) and, with an
        area dim, ``share_census_year``.  Attrs of ``n_pupils`` give the shares
        (``provision_shares``, JSON), their census year and the ASSUMPTION (``comment``).

    Raises
    ------
    ConfigError
        Results without a ``placement`` (or, for a tier, ``tier``) dimension: the message names
        ``[outputs] by``.
    DataError
        An area with no SEN2 establishment counts, or no census at or before ``year``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from simsend.dims import PLACEMENTS
    >>> n = np.zeros((1, 1, 1, len(PLACEMENTS)), np.int32)
    >>> n[..., PLACEMENTS.index("post16_fe")] = 100
    >>> ds = xr.Dataset({"n_pupils": (("draw", "year", "area", "placement"), n)},
    ...                 coords={"year": [2025], "area": ["E92000001"],
    ...                         "placement": list(PLACEMENTS)})
    >>> v = provision_view(ds, tier=None)["n_pupils"]
    >>> float(v.sum("provision_type").item())
    100.0
    >>> round(float(v.sel(provision_type="specialist_post16").item()), 1)
    11.0

    """
    if "n_pupils" not in ds:
        raise ConfigError("results have no n_pupils variable (expected the results of "
                          "`simsend run`)")
    pupils = ds["n_pupils"]
    if "placement" not in pupils.dims:
        raise ConfigError(f"results have no placement dimension (n_pupils is by "
                          f"{list(pupils.dims)}): the provision types split each placement "
                          "group, so run with \"placement\" in [outputs] by (e.g. "
                          "configs/council_returns.toml)")
    if tier is not None:
        if "tier" not in pupils.dims:
            raise ConfigError("results have no tier dimension, so the specialist tier (EHC "
                              "plans) cannot be kept: run with \"tier\" in [outputs] by, or "
                              "pass tier=None")
        tiers = [str(t) for t in ds["tier"].values]
        if tier not in tiers:
            raise ConfigError(f"tier {tier!r} not in the results (tiers: {tiers})")
        pupils = pupils.sel(tier=tier)
    year = start_year(ds) if year is None else int(year)
    areas = _areas(ds, pupils)
    shares = establishment_shares(areas, year)
    places = [str(p) for p in pupils["placement"].values]
    groups = [p for p in places if p in PLACEMENTS]
    counts = pupils.sel(placement=groups).astype(np.float64)
    sh = shares.sel(placement=groups).drop_vars("census_year")
    if "area" not in pupils.dims:
        sh = sh.isel(area=0, drop=True)
    # each type lies in one group, so the dot adds exact zeros to one exact product
    out = xr.dot(counts, sh, dim="placement")
    extra, dropped = [], []
    for p in places:
        if p in PLACEMENTS:
            continue
        x = pupils.sel(placement=p, drop=True).astype(np.float64)
        if bool((x != 0).any()):
            extra.append(x.expand_dims(provision_type=[p]))
        else:
            dropped.append(p)
    if extra:
        out = xr.concat([out, *extra], dim="provision_type")
    at = pupils.dims.index("placement")
    order = [d if d != "placement" else "provision_type" for d in pupils.dims]
    out = out.transpose(*order[:at], "provision_type", *order[at + 1:])
    types = [str(t) for t in out["provision_type"].values]
    out = out.assign_coords(provision_label=("provision_type", [
        PROVISION_TYPES.get(t, EXTRA_LABELS.get(t, t)) for t in types]))
    census = {a: int(y) for a, y in zip(areas, shares["census_year"].values, strict=True)}
    if "area" in out.dims:
        out = out.assign_coords(share_census_year=("area", shares["census_year"].values))
    if tier is not None and "tier" not in out.coords:
        out = out.assign_coords(tier=tier)
    vals = shares.sel(placement=groups).values  # (area, group, type)
    used = {a: {g: {t: float(vals[i, j, k]) for k, t in enumerate(PROVISION_TYPES)
                    if vals[i, j, k] > 0}
                for j, g in enumerate(groups)} for i, a in enumerate(areas)}
    out.attrs = {
        "long_name": ("EHC plans (specialist tier)" if tier == "specialist" else
                      f"pupils ({'every tier' if tier is None else tier + ' tier'})")
                     + " at the January census by LSRP provision type",
        "units": "1",
        "comment": ASSUMPTION,
        "provision_shares": json.dumps(used),
        "share_census_year": json.dumps(census),
        "share_source": shares.attrs["source"],
        "england_fallback": shares.attrs["england_fallback"],
        "predecessor_fallback": shares.attrs["predecessor_fallback"],
        "not_separated": shares.attrs["not_separated"],
        "placements_dropped": ", ".join(dropped),
    }
    res = xr.Dataset({"n_pupils": out})
    years = sorted(set(census.values()))
    res.attrs = {**ds.attrs,
                 "provision_types": "n_pupils split into the LSRP's 14 provision types by SEN2 "
                                    f"January {'/'.join(map(str, years))} shares within each "
                                    "engine placement group (simsend.analysis.lsrp)",
                 "provision_share_year": int(year)}
    return res


def provision_table(view: xr.Dataset,
                    quantiles: Sequence[float] = QUANTILES) -> pd.DataFrame:
    """Return the bands of a :func:`provision_view` by year x provision type (x area).

    Each draw is summed over the other dims (age, need ...) first, so every band is the band
    of the draws of that total; an area column is kept when the view holds several areas, a
    scenario column when it holds scenarios.

    Parameters
    ----------
    view : xarray.Dataset
        The output of :func:`provision_view`.
    quantiles : sequence of float
        Quantiles over draws (default median, 5 %, 25 %, 75 %, 95 %).

    Returns
    -------
    DataFrame
        Columns ``[scenario,] year, [area,] no, provision_type, label`` then one per quantile
        (``median``, ``p05`` ... for the defaults; ``q<q>`` otherwise).

    """
    n = view["n_pupils"]
    keep = [d for d in ("scenario", "year") if d in n.dims]
    if "area" in n.dims and n.sizes["area"] > 1:
        keep.append("area")
    keep.append("provision_type")
    total = n.sum([d for d in n.dims if d not in (*keep, "draw")])
    q = (total.quantile(list(quantiles), dim="draw") if "draw" in total.dims
         else total.expand_dims(quantile=list(quantiles)))
    q = q.reset_coords(drop=True)
    df = q.to_dataframe("v")["v"].unstack("quantile").reset_index()
    names = (dict(zip(QUANTILES, QUANTILE_COLUMNS, strict=True))
             if tuple(quantiles) == QUANTILES else {x: f"q{x:g}" for x in quantiles})
    df = df.rename(columns={float(k): v for k, v in names.items()})
    df.columns.name = None
    types = [str(t) for t in n["provision_type"].values]
    labels = dict(zip(types, [str(x) for x in n["provision_label"].values], strict=True))
    df.insert(len(keep) - 1, "no", df["provision_type"].map({t: i + 1 for i, t in
                                                            enumerate(types)}))
    df.insert(len(keep) + 1, "label", df["provision_type"].map(labels))
    df = df.sort_values([*keep[:-1], "no"], kind="stable").reset_index(drop=True)
    return df[[*keep[:-1], "no", "provision_type", "label", *names.values()]]


def provision_notes(view: xr.Dataset) -> list[str]:
    """Return the lines a reader of the table needs: shares, their census, the ASSUMPTION."""
    a = view["n_pupils"].attrs
    census = json.loads(a["share_census_year"])
    by_year: dict[int, list[str]] = {}
    for area, y in census.items():
        by_year.setdefault(y, []).append(area)
    out = ["shares: SEN2 January " + "; ".join(
        f"{y} ({', '.join(v) if len(v) <= 5 else f'{len(v)} areas'})"
        for y, v in sorted(by_year.items()))
        + " (" + a["share_source"] + ")"]
    if a.get("england_fallback"):
        out.append(f"England's shares for groups with no published plans: {a['england_fallback']}")
    if a.get("predecessor_fallback"):
        out.append(f"shares of former councils: {a['predecessor_fallback']}")
    out.append(a["comment"])
    out.append("not separated in SEN2 (0): " + ", ".join(NOT_SEPARATED))
    return out
