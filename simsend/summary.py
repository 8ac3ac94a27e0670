"""Bands from draws: quantiles and means over ``draw``; raw results are never modified."""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

DEFAULT_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def summary(ds: xr.Dataset, quantiles: Sequence[float] = DEFAULT_QUANTILES,
            variables: Sequence[str] | None = None) -> xr.Dataset:
    """Compute uncertainty bands over Monte Carlo draws.

    Parameters
    ----------
    ds : xarray.Dataset
        A run's results with a ``draw`` dimension.
    quantiles : sequence of float
        Quantiles in [0, 1] (default 5%, 25%, 50%, 75%, 95%).
    variables : sequence of str, optional
        Variables to summarise (default: every variable with a ``draw`` and ``year`` dim).

    Returns
    -------
    xarray.Dataset
        For each variable ``v``: ``v`` with a new ``quantile`` dimension and ``v_mean``.
        Attributes are carried over; ``draw`` is gone.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"n_pupils": (("draw", "year"), np.arange(10.0).reshape(5, 2))})
    >>> float(summary(ds)["n_pupils"].sel(quantile=0.5, year=0))
    4.0

    """
    qs = [float(q) for q in quantiles]
    if any(not 0.0 <= q <= 1.0 for q in qs):
        raise ValueError(f"quantiles must lie in [0, 1], got {qs}")
    if variables is None:
        variables = [v for v, da in ds.data_vars.items() if {"draw", "year"} <= set(da.dims)]
    out = {}
    for v in variables:
        da = ds[v]
        q = da.quantile(qs, dim="draw", skipna=False)
        q.attrs = dict(da.attrs)
        out[v] = q
        mean = da.mean("draw")
        mean.attrs = {**da.attrs, "cell_methods": "draw: mean"}
        out[f"{v}_mean"] = mean
    res = xr.Dataset(out)
    res.attrs = {**ds.attrs, "summary_of_draws": int(ds.sizes.get("draw", 0))}
    return res
