"""Integer-exact allocation: largest remainder, IPF and controlled rounding of 2-D tables."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Split the integer ``total`` proportionally to ``weights`` into integers summing to it.

    Ties in the fractional parts go to the earlier position (deterministic).  Zero weights get
    zero unless every weight is zero, in which case the split is even.

    Examples
    --------
    >>> largest_remainder(10, np.array([1.0, 1.0, 1.0])).tolist()
    [4, 3, 3]

    """
    w = np.asarray(weights, float).ravel()
    total = int(total)
    if total < 0:
        raise ValueError(f"negative total {total}")
    if w.size == 0:
        if total:
            raise ValueError("cannot split a positive total over nothing")
        return np.zeros(0, np.int64)
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    if w.sum() <= 0:
        w = np.ones_like(w)
    exact = total * w / w.sum()
    out = np.floor(exact).astype(np.int64)
    rem = total - int(out.sum())
    if rem > 0:
        frac = exact - out
        order = np.lexsort((np.arange(len(frac)), -frac))
        out[order[:rem]] += 1
    return out.reshape(np.shape(weights))


def ipf(prior: np.ndarray, rows: np.ndarray, cols: np.ndarray, tol: float = 1e-10,
        max_iter: int = 5000) -> np.ndarray:
    """Fit a non-negative 2-D ``prior`` to row and column sums (iterative proportional fitting).

    Rows (columns) with a zero target become zero.  Prior cells must be positive wherever a
    solution needs them; callers pass a prior with a small floor.

    Examples
    --------
    >>> t = ipf(np.ones((2, 2)), np.array([3.0, 1.0]), np.array([2.0, 2.0]))
    >>> np.allclose(t.sum(1), [3, 1]) and np.allclose(t.sum(0), [2, 2])
    True

    """
    x = np.asarray(prior, float).copy()
    rows = np.asarray(rows, float)
    cols = np.asarray(cols, float)
    scale = max(rows.sum(), 1.0)
    for _ in range(max_iter):
        rs = x.sum(axis=1)
        x *= np.divide(rows, rs, out=np.zeros_like(rs), where=rs > 0)[:, None]
        cs = x.sum(axis=0)
        x *= np.divide(cols, cs, out=np.zeros_like(cs), where=cs > 0)[None, :]
        if np.abs(x.sum(axis=1) - rows).max() <= tol * scale:
            break
    return x


def controlled_round(table: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Round a non-negative 2-D table to integers with exactly the given row and column sums.

    Each cell is rounded to the floor or ceiling of its value (a controlled rounding), chosen
    to minimise the total absolute deviation from ``table``; this is a transportation problem
    whose linear relaxation has integer vertices.  If ``table``'s own margins are too far from
    the integer targets for that to be feasible, an integer programme minimising the absolute
    deviation subject to the exact margins is solved instead (``scipy.optimize.milp``).

    Parameters
    ----------
    table : ndarray (m, n)
        Fitted (real) table, ideally with margins close to ``rows`` / ``cols``.
    rows, cols : int arrays (m,), (n,)
        Target integer margins with equal sums.

    Returns
    -------
    ndarray of int64 (m, n)

    Examples
    --------
    >>> t = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> controlled_round(t, np.array([1, 1]), np.array([1, 1])).sum(axis=0).tolist()
    [1, 1]

    """
    f = np.clip(np.asarray(table, float), 0.0, None)
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    m, n = f.shape
    if rows.sum() != cols.sum():
        raise ValueError(f"row sums {rows.sum()} != column sums {cols.sum()}")
    if rows.sum() == 0:
        return np.zeros((m, n), np.int64)
    base = np.floor(f + 1e-9).astype(np.int64)
    frac = f - base
    frac[frac < 0] = 0.0
    r = rows - base.sum(axis=1)
    c = cols - base.sum(axis=0)
    movable = frac > 1e-9
    if (np.all(r >= 0) and np.all(c >= 0) and np.all(r <= movable.sum(axis=1))
            and np.all(c <= movable.sum(axis=0))):
        sol = _round_lp(frac, movable, r, c)
        if sol is not None:
            return base + sol
    return _round_milp(f, rows, cols)


def _incidence(mask: np.ndarray):
    m, n = mask.shape
    idx = np.flatnonzero(mask.ravel())
    i, j = np.divmod(idx, n)
    a_row = np.zeros((m, idx.size))
    a_row[i, np.arange(idx.size)] = 1.0
    a_col = np.zeros((n, idx.size))
    a_col[j, np.arange(idx.size)] = 1.0
    return idx, a_row, a_col


def _round_lp(frac, movable, r, c):
    idx, a_row, a_col = _incidence(movable)
    if idx.size == 0:
        return np.zeros(frac.shape, np.int64) if (r == 0).all() and (c == 0).all() else None
    cost = 1.0 - 2.0 * frac.ravel()[idx]
    res = linprog(cost, A_eq=np.vstack([a_row, a_col]), b_eq=np.concatenate([r, c]),
                  bounds=(0, 1), method="highs-ds")
    if res.status != 0:
        return None
    x = np.round(res.x)
    if np.abs(x - res.x).max() > 1e-6:
        return None
    out = np.zeros(frac.size, np.int64)
    out[idx] = x.astype(np.int64)
    out = out.reshape(frac.shape)
    if (out.sum(axis=1) != r).any() or (out.sum(axis=0) != c).any():
        return None
    return out


def _round_milp(f, rows, cols):
    m, n = f.shape
    k = m * n
    _, a_row, a_col = _incidence(np.ones((m, n), bool))
    # variables: x (k, integer >= 0), t (k, >= |x - f|); minimise sum t
    eye = sparse.identity(k, format="csr")
    zero_r = sparse.csr_matrix((m, k))
    zero_c = sparse.csr_matrix((n, k))
    cons = [
        LinearConstraint(sparse.hstack([sparse.csr_matrix(a_row), zero_r]), rows, rows),
        LinearConstraint(sparse.hstack([sparse.csr_matrix(a_col), zero_c]), cols, cols),
        LinearConstraint(sparse.hstack([eye, -eye]), -np.inf, f.ravel()),
        LinearConstraint(sparse.hstack([-eye, -eye]), -np.inf, -f.ravel()),
    ]
    res = milp(np.concatenate([np.zeros(k), np.ones(k)]), constraints=cons,
               integrality=np.concatenate([np.ones(k), np.zeros(k)]),
               bounds=Bounds(0, np.inf))
    if res.status != 0:  # pragma: no cover - feasible whenever the margins agree
        raise ValueError(f"controlled rounding failed: {res.message}")
    return np.round(res.x[:k]).astype(np.int64).reshape(m, n)


def split_rank_one(cells: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Integer table with row sums ``cells`` and column sums ``totals`` close to their product.

    For the rank-one table ``cells[i] * totals[j] / T`` (e.g. children of each age and
    placement spread over needs by one national mix), units are dealt in the order of the
    Sainte-Laguë (Webster) seat sequence of ``totals`` and row ``i`` takes the units
    ``S[i-1]..S[i]`` of that sequence (``S`` = cumulative ``cells``).  Because the divisor
    method is house-monotone, both margins are reproduced exactly and every cell stays within
    about one unit of its proportional share.  Runs in ``O(T log T)``.

    Parameters
    ----------
    cells, totals : int arrays (m,), (n,)
        Row and column margins with equal sums.

    Examples
    --------
    >>> split_rank_one(np.array([2, 2]), np.array([3, 1])).tolist()
    [[2, 0], [1, 1]]

    """
    cells = np.asarray(cells, np.int64)
    totals = np.asarray(totals, np.int64)
    if cells.sum() != totals.sum():
        raise ValueError(f"row sums {cells.sum()} != column sums {totals.sum()}")
    if np.any(cells < 0) or np.any(totals < 0):
        raise ValueError("negative margins")
    n = len(totals)
    if totals.sum() == 0:
        return np.zeros((len(cells), n), np.int64)
    party = np.repeat(np.arange(n), totals)
    k = np.concatenate([np.arange(t) for t in totals])
    quot = totals[party] / (k + 0.5)
    order = np.lexsort((party, -quot))
    seq = party[order]
    bounds = np.concatenate([[0], np.cumsum(cells)])
    out = np.zeros((len(cells), n), np.int64)
    for i in np.flatnonzero(cells):
        out[i] = np.bincount(seq[bounds[i]:bounds[i + 1]], minlength=n)
    return out
