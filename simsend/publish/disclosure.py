"""Statistical disclosure control for published tables: suppression and rounding.

A table here is an N-dimensional array in which some dimensions carry a *total* as their last
index (the sum of the other entries along that dimension).  Every one-dimensional slice along
such a dimension is a *line*: its cells add up to its total.

:func:`protect` marks cells to publish as confidential:

1. **primary** suppression: cells whose value lies strictly between 0 and the threshold (true
   zeros are published, as DfE does);
2. **secondary** suppression: while any line holds exactly one suppressed cell, the smallest
   positive unsuppressed cell of that line is suppressed too (a total only when nothing else is
   left; zeros are always published), so no cell is the difference between a total and
   published cells;
3. an **audit** that the suppressed cells cannot be solved for from all the lines together (a
   suppressed cell is recoverable when every solution of the line equations, with the
   published cells fixed and all cells non-negative, gives it the same value; as every
   suppressed cell is positive, that is when the null space of the suppressed cells' line
   equations does not move it; exact dense SVD for groups of up to 600 linked cells, the
   projection of random vectors on that null space by sparse least squares for larger ones):
   any that can gets a further cell suppressed beside it, and the loop repeats.

:func:`feasible_ranges` solves for each suppressed cell by linear programming (the attacker's
view: the smallest and largest value consistent with everything published); :func:`round_to`
rounds to a base as DfE does (halves away from zero).

Which tables get suppression by default is decided here too, and only here:
:func:`default_suppression` looks at what the rows describe (the areas of the results, read by
:func:`results_areas` from the ``area`` coordinate and the ``areas`` attribute), never at which
columns a table keeps: anything below England (a region, a council, a smaller area, or areas
the file does not state) is suppressed at :data:`DEFAULT_SUPPRESS`; England alone is not.  The
sentence it returns names the rule and the areas that triggered it, for the log line, the
README sheet and the export's manifest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.linalg import null_space
from scipy.sparse.csgraph import connected_components

from simsend.data.releases import ENGLAND, REGION_PREFIX

#: The DfE symbol for a confidential (suppressed) value.
SUPPRESSED = "c"


def round_to(values: np.ndarray, base: float) -> np.ndarray:
    """Round to the nearest multiple of ``base``, halves away from zero (NaN stays NaN).

    Examples
    --------
    >>> round_to(np.array([0.0, 2.4, 2.5, 7.5, 12.0, -2.5]), 5).tolist()
    [0.0, 0.0, 5.0, 10.0, 10.0, -5.0]

    """
    v = np.asarray(values, dtype=float)
    if base <= 0:
        return v.copy()
    return np.sign(v) * np.floor(np.abs(v) / base + 0.5) * base


def line_matrix(shape: Sequence[int], has_total: Sequence[bool]) -> sparse.csr_matrix:
    """Return the line equations of a table as a sparse matrix ``A`` with ``A @ x.ravel() == 0``.

    One row per line: +1 on the line's cells, -1 on its total.

    Examples
    --------
    >>> line_matrix((3,), (True,)).toarray().tolist()
    [[1.0, 1.0, -1.0]]

    """
    shape = tuple(int(s) for s in shape)
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    rows, cols, vals = [], [], []
    n = 0
    for k, tot in enumerate(has_total):
        if not tot:
            continue
        lines = np.moveaxis(idx, k, -1).reshape(-1, shape[k])
        m = lines.shape[0]
        r = np.repeat(np.arange(n, n + m), shape[k])
        rows.append(r)
        cols.append(lines.ravel())
        v = np.ones_like(lines, dtype=float)
        v[:, -1] = -1.0
        vals.append(v.ravel())
        n += m
    if not rows:
        return sparse.csr_matrix((0, idx.size))
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n, idx.size))


def _complete_lines(values: np.ndarray, mask: np.ndarray, has_total: Sequence[bool]) -> bool:
    """Suppress a second cell in every line holding exactly one; True if anything changed."""
    changed_any = False
    big = np.nanmax(np.abs(values)) + 1.0 if np.isfinite(values).any() else 1.0
    while True:
        changed = False
        for k, tot in enumerate(has_total):
            if not tot:
                continue
            m = np.moveaxis(mask, k, -1)[None]  # a leading axis: a 1-d table has lines too
            v = np.moveaxis(values, k, -1)[None]
            one = m.sum(axis=-1) == 1
            if not one.any():
                continue
            cost = np.where(v > 0, v, np.inf)  # zeros are published, never suppressed
            cost[..., -1] += 2 * big  # the total only when nothing else is left
            cost = np.where(m, np.inf, cost)
            pick = np.argmin(cost, axis=-1)
            sel = np.nonzero(one)
            m[(*sel, pick[sel])] = True  # m is a view of mask
            changed = changed_any = True
        if not changed:
            return changed_any


def _components(a: sparse.csr_matrix, cells: np.ndarray):
    """Yield groups of suppressed cells linked through shared lines, with their lines."""
    sub = a[:, cells].tocsr()
    lines = np.flatnonzero(np.diff(sub.indptr) > 0)
    sub = sub[lines]
    n_l, n_c = sub.shape
    graph = sparse.bmat([[None, sub], [sub.T, None]]).tocsr()
    graph.data[:] = 1
    _, lab = connected_components(graph, directed=False)
    lab_l, lab_c = lab[:n_l], lab[n_l:]
    for g in np.unique(lab_c):
        yield cells[lab_c == g], lines[lab_l == g]


def feasible_ranges(values: np.ndarray, mask: np.ndarray, has_total: Sequence[bool],
                    only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Solve for each suppressed cell: its smallest and largest value consistent with the table.

    The published cells are fixed at their values, every cell is non-negative, and every line
    adds up to its total (``scipy.optimize.linprog``, HiGHS).

    Parameters
    ----------
    values : ndarray
        The true (unrounded, additive) table.
    mask : bool ndarray
        Suppressed cells.
    has_total : sequence of bool
        Whether each dimension's last index is its total.
    only : int ndarray, optional
        Flat indices of the suppressed cells to solve for (default all); ``lo`` and ``hi``
        then follow this order.

    Returns
    -------
    lo, hi : ndarray
        Per suppressed cell in ``np.flatnonzero(mask)`` order (or ``only``'s).

    """
    from scipy.optimize import linprog

    a = line_matrix(values.shape, has_total)
    x = np.nan_to_num(np.asarray(values, float).ravel())
    cells = np.flatnonzero(mask.ravel())
    target = cells if only is None else np.asarray(only)
    lo = np.full(len(target), np.nan)
    hi = np.full(len(target), np.nan)
    pos = {int(c): i for i, c in enumerate(target)}
    if len(cells) == 0:
        return lo, hi
    published = np.ones(x.size, bool)
    published[cells] = False
    for comp, lines in _components(a, cells):
        a_s = a[lines][:, comp].toarray()
        rhs = -(a[lines][:, published] @ x[published])
        for j, c in enumerate(comp):
            if int(c) not in pos:
                continue
            obj = np.zeros(len(comp))
            obj[j] = 1.0
            r_min = linprog(obj, A_eq=a_s, b_eq=rhs, bounds=(0, None), method="highs")
            r_max = linprog(-obj, A_eq=a_s, b_eq=rhs, bounds=(0, None), method="highs")
            lo[pos[int(c)]] = r_min.fun if r_min.status == 0 else np.nan
            hi[pos[int(c)]] = -r_max.fun if r_max.status == 0 else (np.inf if r_max.status == 3
                                                                else np.nan)
    return lo, hi


#: Components up to this many suppressed cells get an exact (dense SVD) null space.
_DENSE_MAX = 600


def _free_large(sub: sparse.csr_matrix, rel: float = 1e-6) -> np.ndarray:
    """Return which cells the null space of a large sparse system moves.

    The residual of the least-squares problem ``sub.T @ y ~ r`` is the projection of ``r`` on
    the null space of ``sub``; for random ``r`` a cell's component is zero (up to rounding)
    exactly when every null-space vector leaves the cell alone.  Two random vectors guard
    against an unlucky draw.
    """
    from scipy.sparse.linalg import lsqr

    rng = np.random.default_rng(0)  # deterministic: the same table gets the same pattern
    n = sub.shape[1]
    free = np.zeros(n, bool)
    for _ in range(2):
        r = rng.standard_normal(n)
        y = lsqr(sub.T.tocsr(), r, atol=1e-14, btol=1e-14, iter_lim=20 * n)[0]
        resid = r - sub.T @ y
        free |= np.abs(resid) > rel * np.sqrt(n)
    return free


def _determined(values: np.ndarray, mask: np.ndarray, has_total: Sequence[bool],
                tol: float = 1e-9) -> np.ndarray:
    """Return the flat indices of suppressed cells the published table pins to a point."""
    a = line_matrix(values.shape, has_total)
    cells = np.flatnonzero(mask.ravel())
    bad = []
    if len(cells) == 0:
        return np.array([], int)
    for comp, lines in _components(a, cells):
        if len(lines) == 0:
            continue
        # Every suppressed cell is positive, so a small step along any solution of the
        # homogeneous line equations stays non-negative: a cell is pinned exactly when no such
        # solution moves it.
        sub = a[lines][:, comp]
        if len(comp) <= _DENSE_MAX:
            ns = null_space(sub.toarray())
            free = (np.abs(ns) > tol).any(axis=1) if ns.size else np.zeros(len(comp), bool)
        else:
            free = _free_large(sub.tocsr())
        bad.extend(comp[~free])
    return np.asarray(bad, int)


def protect(values: np.ndarray, threshold: float, has_total: Sequence[bool],
            primary: np.ndarray | None = None, max_rounds: int = 100) -> np.ndarray:
    """Return the cells to suppress (primary and secondary) in a table with totals.

    Parameters
    ----------
    values : ndarray
        The table, each dimension with ``has_total`` holding its total as the last index.
    threshold : float
        Primary suppression of values ``0 < v < threshold`` (``0`` disables suppression).
    has_total : sequence of bool
        Per dimension: is the last index that dimension's total?
    primary : bool ndarray, optional
        Primary cells when they are decided otherwise (e.g. on several statistics of a cell).
    max_rounds : int
        Audit rounds before giving up (a line is then suppressed whole).

    Returns
    -------
    bool ndarray
        Suppressed cells, the shape of ``values``.

    Examples
    --------
    A 2 x 2 table with both totals; the 3 must go, and with it three more cells, so that
    no row or column gives it away:

    >>> t = np.array([[3., 10., 13.], [20., 30., 50.], [23., 40., 63.]])
    >>> int(protect(t, 5, (True, True)).sum())
    4

    """
    values = np.asarray(values, dtype=float)
    if primary is None:
        primary = (values > 0) & (values < threshold)
    mask = np.array(primary, dtype=bool, copy=True)
    if threshold <= 0 and primary is None:
        return mask
    if not mask.any():
        return mask
    for _ in range(max_rounds):
        _complete_lines(values, mask, has_total)
        bad = _determined(values, mask, has_total)
        if len(bad) == 0:
            return mask
        # open each pinned cell: suppress the smallest positive published cell that shares a
        # line with it (a total last), or failing that one a line further away.
        a = line_matrix(values.shape, has_total).tocsc()
        n_last = _last_index_cells(values.shape, has_total)
        flat_v, flat_m = values.ravel(), mask.ravel()
        for c in bad:
            near = np.array([c])
            for _ in range(3):
                lines = np.unique(a[:, near].nonzero()[0])
                near = np.unique(a[lines].nonzero()[1])
                cand = near[~flat_m[near] & (np.nan_to_num(flat_v[near]) > 0)]
                if len(cand):
                    flat_m[cand[np.argmin(flat_v[cand] + n_last[cand] * 1e15)]] = True
                    break
        mask = flat_m.reshape(values.shape)
    raise RuntimeError("disclosure control did not converge")


def _last_index_cells(shape: Sequence[int], has_total: Sequence[bool]) -> np.ndarray:
    """Count the total coordinates of each flat cell (0 for an interior cell)."""
    grids = np.indices(shape)
    n = np.zeros(shape, int)
    for k, tot in enumerate(has_total):
        if tot:
            n += grids[k] == shape[k] - 1
    return n.ravel()


# ----------------------------------------------------------------------------- which tables
# The one place that decides whether a table gets disclosure control by default.

#: Default primary-suppression threshold for tables below England.
DEFAULT_SUPPRESS = 5
#: GSS code prefixes of England's geographies, coarsest first (for the audit line only: the
#: decision is "England or not").
_LEVELS = ((ENGLAND[:3], "England"), (REGION_PREFIX, "region"), ("E10", "council"),
           ("E06", "council"), ("E08", "council"), ("E09", "council"), ("E07", "council"),
           ("E05", "area smaller than a council"), ("E02", "area smaller than a council"),
           ("E01", "area smaller than a council"), ("E00", "area smaller than a council"))


def results_areas(ds) -> tuple[tuple[str, ...], str]:
    """Return the area codes a results file describes, and where they were read.

    Both sources count (their union): the ``area`` coordinate (what the rows hold) and the
    ``areas`` attribute (a JSON list of the codes the run simulated), so a table summed over
    ``area``, or a file written without the ``area`` dimension, still knows its areas.

    Parameters
    ----------
    ds : xarray.Dataset
        Results as written by ``simsend run``.

    Returns
    -------
    codes : tuple of str
        Area codes in order of first appearance (empty when neither source names any).
    source : str
        ``"coordinate 'area'"``, ``"attribute 'areas'"``, both joined by ``and``, or ``"none"``.

    Examples
    --------
    >>> import xarray as xr
    >>> results_areas(xr.Dataset(attrs={"areas": '["E06000017"]'}))
    (('E06000017',), "attribute 'areas'")

    """
    import json

    codes: list[str] = []
    sources = []
    if "area" in getattr(ds, "coords", {}):
        codes += [str(a) for a in ds["area"].values]
        sources.append("coordinate 'area'")
    raw = ds.attrs.get("areas")
    if raw is not None and raw != "":
        try:
            listed = json.loads(raw) if isinstance(raw, str) else list(raw)
        except (TypeError, ValueError):
            listed = [str(raw)]
        listed = [listed] if isinstance(listed, str) else listed
        codes += [str(a) for a in listed]
        sources.append("attribute 'areas'")
    return tuple(dict.fromkeys(codes)), " and ".join(sources) or "none"


def area_level(code: str) -> str:
    """Name the geography of a GSS code (``England``, ``region``, ``council`` ...).

    Examples
    --------
    >>> area_level("E06000017"), area_level("E92000001"), area_level("X1")
    ('council', 'England', 'unrecognised area')

    """
    for prefix, level in _LEVELS:
        if code.startswith(prefix):
            return level
    return "unrecognised area"


def default_suppression(areas: Sequence[str], source: str = "the results") -> tuple[float, str]:
    """Decide the default suppression threshold of a table from the areas its rows describe.

    The rule, applied whatever marginals a table keeps (a council's table by tier alone still
    describes that council): suppression at :data:`DEFAULT_SUPPRESS` for every table whose
    areas include anything other than England (``E92000001``): a region, a council, a smaller
    area, an unrecognised code, or no stated area at all (fail safe); none for England-only
    tables.

    Parameters
    ----------
    areas : sequence of str
        Area codes the results describe (see :func:`results_areas`).
    source : str
        Where the codes were read, for the audit sentence.

    Returns
    -------
    threshold : float
        ``DEFAULT_SUPPRESS`` or ``0``.
    reason : str
        The rule that applied and why, for logs, README sheets and manifests.

    Examples
    --------
    >>> default_suppression(["E92000001"], "coordinate 'area'")[0]
    0.0
    >>> t, why = default_suppression(["E06000017"], "attribute 'areas'")
    >>> t, why.split(":")[0]
    (5.0, 'default for council-level results')

    """
    areas = [str(a) for a in areas]
    if not areas:
        return float(DEFAULT_SUPPRESS), (
            "default when the areas are unknown: the results name no area (no 'area' "
            "coordinate, no 'areas' attribute), so they are treated as below England")
    below = [a for a in areas if a != ENGLAND]
    if not below:
        return 0.0, (f"default for England-level results: the only area in {source} is "
                     f"England ({ENGLAND})")
    rank = {lv: k for k, (_, lv) in enumerate(_LEVELS)}
    finest = max((area_level(a) for a in below), key=lambda lv: rank.get(lv, len(rank)))
    level = {"area smaller than a council": "small-area", "unrecognised area": "sub-England"
             }.get(finest, finest)
    shown = ", ".join(below[:3]) + (f" and {len(below) - 3} more" if len(below) > 3 else "")
    return float(DEFAULT_SUPPRESS), (
        f"default for {level}-level results: the areas in {source} include {shown} "
        f"({finest}), and every table of areas below England is suppressed whatever --by "
        "keeps")
