"""Bands from draws: quantiles and means over ``draw``; raw results are never modified.

:func:`variance_split` divides a result's variance between parameter draws (a calibrated
posterior) and the chance within them (law of total variance).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
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


def variance_split(ds: xr.Dataset, var: str, dim: str = "draw") -> xr.Dataset:
    r"""Share of a result's variance between parameter draws and within them.

    With ``theta`` the parameter draw feeding each replicate (``ds.param_draw``),

    .. math:: \operatorname{Var} Y = E[\operatorname{Var}(Y \mid \theta)]
              + \operatorname{Var}(E[Y \mid \theta])

    computed with population (ddof = 0) moments over the replicates, weighting each
    parameter draw by its number of replicates, so ``between + within == total`` exactly.

    Parameters
    ----------
    ds : xarray.Dataset
        Results with ``var`` and ``param_draw`` along ``dim``.
    var : str
        Variable to decompose.
    dim : str
        The replicate dimension (default ``draw``).

    Returns
    -------
    xarray.Dataset
        ``total``, ``between`` (parameter), ``within`` (process) and ``share_between``
        (NaN where the total variance is 0), over the remaining dims.

    Raises
    ------
    ValueError
        If several parameter draws are present but none has two or more replicates: the
        within part cannot be estimated (run with ``replicates_per_draw >= 2``).

    Notes
    -----
    With ``n`` replicates per parameter draw the sample ``between`` part includes about
    ``within / n`` of process noise; it is an upper bound on the parameter share for small
    ``n``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"y": ("draw", [1.0, 3.0, 11.0, 13.0]),
    ...                  "param_draw": ("draw", [0, 0, 1, 1])})
    >>> out = variance_split(ds, "y")
    >>> float(out.between), float(out.within), float(out.share_between)
    (25.0, 1.0, 0.9615384615384616)

    """
    da = ds[var].astype(float)
    groups = np.asarray(ds["param_draw"].values)
    labels, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(labels) > 1 and counts.max() < 2:
        raise ValueError("every parameter draw has a single replicate: the within-draw"
                         " (process) variance cannot be estimated")
    n = da.sizes[dim]
    key = xr.DataArray(inverse, dims=dim)
    grouped = da.assign_coords(_g=key).groupby("_g")
    means = grouped.mean(dim)
    within_g = grouped.var(dim)
    w = xr.DataArray(counts / n, dims="_g", coords={"_g": np.arange(len(labels))})
    grand = da.mean(dim)
    within = (within_g * w).sum("_g")
    between = (((means - grand) ** 2) * w).sum("_g")
    total = da.var(dim)
    share = between / total.where(total > 0)
    out = xr.Dataset({"total": total, "between": between, "within": within,
                      "share_between": share})
    out["total"].attrs = {"long_name": f"variance of {var} over {dim}"}
    out["between"].attrs = {"long_name": "variance of parameter-draw means (parameter)"}
    out["within"].attrs = {"long_name": "mean within-draw variance (process)"}
    out["share_between"].attrs = {"long_name": "parameter share of the variance"}
    return out
