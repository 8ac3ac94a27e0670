"""Split forecast variance into parameter and process parts (law of total variance)."""

from __future__ import annotations

import numpy as np
import xarray as xr


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
