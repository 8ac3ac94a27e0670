"""Disclosure control: primary + secondary suppression audited by solving for suppressed cells."""

import numpy as np
import pytest
from scipy.optimize import linprog

from simsend.publish import disclosure as d


def with_totals(x: np.ndarray) -> np.ndarray:
    """Append the total along every dimension (totals of totals included)."""
    for k in range(x.ndim):
        x = np.concatenate([x, x.sum(axis=k, keepdims=True)], axis=k)
    return x


def attacker_ranges(table: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Independent check: every line of a totals table as explicit equations, solved by LP.

    Written from scratch (not via simsend.publish.disclosure.line_matrix): for each dimension and each
    line along it, sum(cells) - total = 0; published cells fixed; all cells >= 0.
    """
    idx = np.arange(table.size).reshape(table.shape)
    rows = []
    for k in range(table.ndim):
        moved = np.moveaxis(idx, k, -1)
        for line in moved.reshape(-1, table.shape[k]):
            row = np.zeros(table.size)
            row[line[:-1]] = 1.0
            row[line[-1]] = -1.0
            rows.append(row)
    a = np.array(rows)
    x = table.ravel()
    sup = np.flatnonzero(mask.ravel())
    pub = np.flatnonzero(~mask.ravel())
    a_s, rhs = a[:, sup], -(a[:, pub] @ x[pub])
    lo, hi = [], []
    for j in range(len(sup)):
        c = np.zeros(len(sup))
        c[j] = 1.0
        r1 = linprog(c, A_eq=a_s, b_eq=rhs, bounds=(0, None), method="highs")
        r2 = linprog(-c, A_eq=a_s, b_eq=rhs, bounds=(0, None), method="highs")
        assert r1.status == 0 and r2.status in (0, 3)
        lo.append(r1.fun)
        hi.append(np.inf if r2.status == 3 else -r2.fun)
    return np.array(lo), np.array(hi)


def test_round_to_nearest_five_halves_up():
    v = np.array([0, 1, 2.49, 2.5, 7.4999, 7.5, 12, 13, np.nan])
    np.testing.assert_array_equal(d.round_to(v, 5)[:-1], [0, 0, 0, 5, 5, 10, 10, 15])
    assert np.isnan(d.round_to(v, 5)[-1])
    np.testing.assert_array_equal(d.round_to(v, 0)[:-1], v[:-1])


def test_line_matrix_encodes_every_line_once():
    t = with_totals(np.arange(6.0).reshape(2, 3))
    a = d.line_matrix(t.shape, (True, True))
    assert a.shape == (4 + 3, t.size)  # 4 lines along dim 0 (incl. total column), 3 along dim 1
    np.testing.assert_allclose(a @ t.ravel(), 0.0)


def test_two_by_two_classic():
    t = np.array([[3.0, 10, 13], [20, 30, 50], [23, 40, 63]])
    mask = d.protect(t, 5, (True, True))
    # the 3 plus one cell in its row, one in its column and the opposite corner
    np.testing.assert_array_equal(mask, [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    lo, hi = attacker_ranges(t, mask)
    # by hand: a = t[0, 0] in [0, 13], b = 13 - a, c = 23 - a, d = 27 + a
    np.testing.assert_allclose(lo, [0, 0, 10, 27])
    np.testing.assert_allclose(hi, [13, 13, 23, 40])


@pytest.mark.parametrize("seed, shape", [(0, (5, 7)), (1, (4, 6)), (2, (3, 4, 5)),
                                         (3, (6, 3, 4)), (4, (2, 8, 3))])
def test_no_small_cell_published_and_none_recoverable(seed, shape):
    rng = np.random.default_rng(seed)
    x = rng.poisson(rng.choice([0.0, 0.0, 1.0, 3.0, 20.0, 80.0], size=shape)).astype(float)
    t = with_totals(x)
    has = (True,) * t.ndim
    mask = d.protect(t, 5, has)
    small = (t > 0) & (t < 5)
    assert small.any()
    assert not (small & ~mask).any(), "a value below the threshold was published"
    assert not (mask & (t == 0)).any(), "zeros are published"
    lo, hi = attacker_ranges(t, mask)
    vals = t.ravel()[np.flatnonzero(mask.ravel())]
    assert np.all(lo <= vals + 1e-6) and np.all(hi >= vals - 1e-6)
    # every suppressed cell: the attacker's feasible interval is wider than a point
    assert np.all(hi - lo >= 1.0 - 1e-6), (hi - lo).min()
    # and simsend's own solver agrees with the independent one
    lo2, hi2 = d.feasible_ranges(t, mask, has)
    np.testing.assert_allclose(lo2, lo, atol=1e-6)
    np.testing.assert_allclose(hi2, hi, atol=1e-6)


def bridge_case():
    """Two suppressed 2x2 cycles joined by one cell: every line has two suppressed cells, yet
    the joining cell is pinned (it lies on no cycle)."""
    x = np.full((4, 4), 50.0)
    t = with_totals(x)
    mask = np.zeros(t.shape, bool)
    for r, c in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (0, 2)]:
        mask[r, c] = True
    return t, mask


def test_line_rule_alone_can_leave_a_cell_recoverable():
    t, mask = bridge_case()
    # every line holds 0 or >= 2 suppressed cells ...
    for k in range(2):
        counts = mask.sum(axis=k)
        assert np.all((counts == 0) | (counts >= 2))
    # ... but solving gives the joining cell exactly
    lo, hi = attacker_ranges(t, mask)
    cells = np.flatnonzero(mask.ravel())
    pinned = cells[hi - lo < 1e-6]
    assert pinned.tolist() == [2]  # flat index of (0, 2)
    assert d._determined(t, mask, (True, True)).tolist() == [2]


def test_audit_repairs_the_recoverable_cell():
    t, primary = bridge_case()
    mask = d.protect(t, 5, (True, True), primary=primary)
    assert (mask >= primary).all()
    lo, hi = attacker_ranges(t, mask)
    assert np.all(hi - lo >= 1.0 - 1e-6)


def test_nothing_to_protect():
    t = with_totals(np.array([[0.0, 10], [20, 0]]))
    assert not d.protect(t, 5, (True, True)).any()
    assert not d.protect(with_totals(np.array([[1.0, 2]])), 0, (True, True)).any()


def test_large_component_check_agrees_with_dense_null_space():
    """The sparse least-squares test used for big tables against the exact dense SVD."""
    from scipy.linalg import null_space

    rng = np.random.default_rng(1)
    n_pinned = 0
    for _ in range(3):
        t = with_totals(rng.poisson(rng.choice([0, 1, 3, 20, 60], size=(8, 9, 7))).astype(float))
        mask = (t > 0) & (t < 20)
        a = d.line_matrix(t.shape, (True,) * 3)
        for comp, lines in d._components(a, np.flatnonzero(mask.ravel())):
            sub = a[lines][:, comp]
            ns = null_space(sub.toarray())
            exact = (np.abs(ns) > 1e-9).any(axis=1)
            np.testing.assert_array_equal(d._free_large(sub.tocsr()), exact)
            n_pinned += int((~exact).sum())
    assert n_pinned > 0  # the comparison covered pinned cells as well as free ones


def test_one_dimensional_table():
    """A table with one marginal (e.g. a council's export --by tier) is protected too."""
    t = np.array([3.0, 10.0, 20.0, 33.0])
    mask = d.protect(t, 5, (True,))
    assert mask.tolist() == [True, True, False, False]
    lo, hi = d.feasible_ranges(t, mask, (True,))
    assert np.all(hi - lo > 1e-3)
    # zeros are published: the total goes with the small cell
    assert d.protect(np.array([3.0, 0.0, 3.0]), 5, (True,)).tolist() == [True, False, True]


def test_default_rule_decides_by_the_areas():
    assert d.default_suppression(["E92000001"])[0] == 0
    for areas in (["E06000017"], ["E92000001", "E09000001"], ["E12000007"], ["E01000001"],
                  ["X"], []):
        threshold, why = d.default_suppression(areas, "coordinate 'area'")
        assert threshold == d.DEFAULT_SUPPRESS and why.startswith("default "), areas
    assert "council-level" in d.default_suppression(["E06000017"])[1]
    assert "region-level" in d.default_suppression(["E12000007"])[1]
    assert "unknown" in d.default_suppression([])[1]
