"""Sampling kernels against NumPy/SciPy references, at fixed keys (deterministic tests).

The binomial goodness-of-fit check is shown to reject deliberately wrong samplers at the
same sample size, so its passes are informative.
"""

import math

import numba
import numpy as np
import pytest
from scipy import special, stats

from simsend.kernels.rng import fill_uniform
from simsend.kernels.sampling import (
    _btpe_accept,
    _btpe_setup,
    _stirling,
    binomial,
    binomial_many,
    categorical,
    categorical_count,
    multinomial,
)

KEY = np.uint64(0xB1_2024_0007)  # fixed once; all fits below pass for it
M = 20_000  # draws per (n, p) case
NS = [0, 1, 5, 30, 100, 1000, 10**5, 10**7]
PS = [0.0, 1e-4, 0.01, 0.3, 0.5, 0.7, 0.999, 1.0]


# --- helpers -------------------------------------------------------------------------------


def draws(n, p, key=KEY, m=M, first=0):
    out = np.empty(m, np.int64)
    ns = np.full(m, n, np.int64)
    ps = np.full(m, p, np.float64)
    if first == 0:
        binomial_many(ns, ps, key, out)
    else:
        out[:] = [binomial(n, p, key, np.uint64(first + i)) for i in range(m)]
    return out


def merge_small(obs, exp, min_exp=5.0):
    """Merge neighbouring bins until each expects at least ``min_exp`` counts."""
    o_out, e_out, o_acc, e_acc = [], [], 0.0, 0.0
    for o, e in zip(obs, exp, strict=True):
        o_acc, e_acc = o_acc + o, e_acc + e
        if e_acc >= min_exp:
            o_out.append(o_acc)
            e_out.append(e_acc)
            o_acc = e_acc = 0.0
    if e_out:
        o_out[-1] += o_acc
        e_out[-1] += e_acc
    else:
        o_out, e_out = [o_acc], [e_acc]
    return np.array(o_out), np.array(e_out)


def chi2_pvalue(x, n, p, n_bins=50):
    """Chi-square p-value of samples ``x`` against Binomial(n, p), on ~equiprobable bins."""
    dist = stats.binom(n, p)
    edges = np.unique(dist.ppf(np.linspace(0, 1, n_bins + 1)[1:-1]))
    cdf = np.concatenate([[0.0], dist.cdf(edges), [1.0]])
    obs = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
    o, e = merge_small(obs, np.diff(cdf) * len(x))
    if len(o) < 2:
        return 1.0
    return stats.chisquare(o, e * o.sum() / e.sum()).pvalue


def fit(x, n, p):
    """Mean and variance z-scores and chi-square p-value of ``x`` against Binomial(n, p)."""
    mean, var, skew, kurt = (float(v) for v in stats.binom.stats(n, p, moments="mvsk"))
    m = len(x)
    mu4 = (kurt + 3.0) * var**2
    var_of_s2 = mu4 / m - var**2 * (m - 3) / (m * (m - 1))  # exact variance of s^2
    return {
        "mean_z": (x.mean() - mean) / math.sqrt(var / m),
        "var_z": (x.var(ddof=1) - var) / math.sqrt(var_of_s2),
        "chi2_p": chi2_pvalue(x, n, p),
    }


def fits(f):
    return abs(f["mean_z"]) < 5 and abs(f["var_z"]) < 5 and f["chi2_p"] > 1e-4


# --- categorical ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 4, 13, 50])
def test_categorical_matches_searchsorted(k):
    rng = np.random.default_rng(k)
    cdf = np.cumsum(rng.dirichlet(np.full(k, 0.5), size=400), axis=1)
    cdf[:, -1] = 1.0
    cdf[::7, 0] = 0.0  # zero-mass first category
    if k > 2:
        cdf[::5, 1] = cdf[::5, 0]  # zero-mass middle category
    u = np.empty(cdf.shape[0] * 10)
    fill_uniform(KEY, np.arange(u.size, dtype=np.uint64), u)
    u[:k] = cdf[0]  # u exactly on a threshold
    rows = np.repeat(np.arange(cdf.shape[0]), 10)
    got = np.array([categorical(ui, cdf[r]) for ui, r in zip(u, rows, strict=True)])
    want = [np.searchsorted(cdf[r], ui, side="right") for ui, r in zip(u, rows, strict=True)]
    np.testing.assert_array_equal(got, np.minimum(want, k - 1))
    # the branch-free count is the same draw on a cumulative row, ties and all
    count = np.array([categorical_count(ui, cdf[r]) for ui, r in zip(u, rows, strict=True)])
    np.testing.assert_array_equal(count, got)


def test_categorical_caps_at_last_index():
    cdf = np.array([0.25, 0.5, 0.9999999])  # rounds below 1
    assert categorical(0.99999995, cdf) == 2
    assert categorical(0.0, cdf) == 0
    assert categorical(0.25, cdf) == 1
    for u in (0.99999995, 0.0, 0.25):
        assert categorical_count(u, cdf) == categorical(u, cdf)


# --- binomial: exactness of the pieces -----------------------------------------------------


def test_stirling_remainder_matches_gammaln():
    for x in [21.0, 50.0, 200.0, 1e3]:  # larger x: gammaln - base loses digits
        base = (x - 0.5) * math.log(x) - x + 0.5 * math.log(2 * math.pi)
        assert _stirling(x) == pytest.approx(special.gammaln(x) - base, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("n", "r", "dy"), [(1000, 0.3, 30), (100, 0.45, -25), (10**5, 0.2, 500),
                                            (200, 0.2, 25)])
def test_btpe_final_test_uses_exact_log_ratio(n, r, dy):
    """Step 5.3 accepts v iff v <= f(y)/f(m): checked 1e-9 either side of the exact ratio.

    NumPy's constants (13680, all signs +) are off by ~1e-3 here and would fail.
    """
    m, hat = _btpe_setup(n, r)
    y = m + dy
    log_ratio = stats.binom.logpmf(y, n, r) - stats.binom.logpmf(m, n, r)
    assert _btpe_accept(y, math.exp(log_ratio - 1e-9), n, r, m, hat[1])
    assert not _btpe_accept(y, math.exp(log_ratio + 1e-9), n, r, m, hat[1])


# --- binomial: distribution ----------------------------------------------------------------


def test_binomial_grid_matches_scipy():
    cases = [(n, p) for n in NS for p in PS]
    ns = np.repeat([n for n, _ in cases], M).astype(np.int64)
    ps = np.repeat([p for _, p in cases], M)
    out = np.empty(ns.size, np.int64)
    binomial_many(ns, ps, KEY, out)
    for i, (n, p) in enumerate(cases):
        x = out[i * M : (i + 1) * M]
        assert x.min() >= 0 and x.max() <= n, (n, p)
        if n == 0 or p in (0.0, 1.0):
            assert np.all(x == round(n * p)), (n, p)
            continue
        f = fit(x, n, p)
        assert fits(f), (n, p, f)


def test_grid_covers_both_algorithms_and_symmetry():
    r = [(n, min(p, 1 - p)) for n in NS for p in PS if n > 0 and 0 < p < 1]
    assert any(n * q <= 30 for n, q in r) and any(n * q > 30 for n, q in r)
    big = [(n, p) for n in NS for p in PS if p > 0.5 and n * (1 - p) > 30]
    small = [(n, p) for n in NS for p in PS if 0.5 < p < 1 and 0 < n * (1 - p) <= 30]
    assert big and small


@pytest.mark.parametrize(
    ("n", "p", "wrong"),
    [
        (1000, 0.3, lambda n, p: draws(n, p * 1.02)),  # BTPE with p off by 2 %
        (10**5, 0.05, lambda n, p: draws(n, p * 1.02)),
        (30, 0.3, "normal"),  # rounded normal approximation
        (100, 0.05, "normal"),
    ],
)
def test_fit_rejects_wrong_samplers(n, p, wrong):
    if wrong == "normal":
        u = np.empty(M)
        fill_uniform(KEY, np.arange(M, dtype=np.uint64), u)
        z = special.ndtri(u)
        x = np.clip(np.rint(n * p + math.sqrt(n * p * (1 - p)) * z), 0, n).astype(np.int64)
    else:
        x = wrong(n, p)
    assert fits(fit(draws(n, p), n, p))
    assert not fits(fit(x, n, p))


def test_binomial_edges_are_exact():
    k = np.uint64(9)
    for c in range(5):
        c = np.uint64(c)
        assert binomial(0, 0.5, k, c) == 0
        assert binomial(-3, 0.5, k, c) == 0
        assert binomial(10, 0.0, k, c) == 0
        assert binomial(10, -0.1, k, c) == 0
        assert binomial(10, math.nan, k, c) == 0
        assert binomial(10, 1.0, k, c) == 10
        assert binomial(10, 1.5, k, c) == 10
        assert binomial(10**12, 1.0, k, c) == 10**12


def test_binomial_is_reproducible_and_counter_specific():
    for n, p in [(20, 0.3), (1000, 0.3), (10**4, 0.05), (10**6, 0.9)]:
        a = draws(n, p, m=2000)
        np.testing.assert_array_equal(a, draws(n, p, m=2000))
        for i in [0, 1, 1999]:
            assert binomial(n, p, KEY, np.uint64(i)) == a[i]
        assert len(np.unique(a)) > 5
        other = draws(n, p, key=np.uint64(KEY + np.uint64(1)), m=2000)
        assert not np.array_equal(a, other)
        # neighbouring counters are independent
        assert abs(np.corrcoef(a[:-1], a[1:])[0, 1] * math.sqrt(len(a))) < 5


def test_binomial_matches_its_python_function():
    for n, p in [(40, 0.2), (1000, 0.3), (10**5, 0.7)]:
        for c in range(30):
            c = np.uint64(c)
            assert binomial.py_func(n, p, KEY, c) == binomial(n, p, KEY, c)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_binomial_many_independent_of_threads():
    rng = np.random.default_rng(3)
    ns = rng.integers(0, 10**6, 50_000)
    ps = rng.uniform(0, 1, 50_000)
    before = numba.get_num_threads()
    out1, out2 = np.empty(50_000, np.int64), np.empty(50_000, np.int64)
    try:
        numba.set_num_threads(1)
        binomial_many(ns, ps, KEY, out1)
        numba.set_num_threads(2)
        binomial_many(ns, ps, KEY, out2)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(out1, out2)


@pytest.mark.slow
@pytest.mark.parametrize(("n", "p"), [(10**4, 0.05), (200, 0.4), (10**7, 0.999), (60, 0.5)])
def test_binomial_large_sample_fit(n, p):
    x = draws(n, p, m=2_000_000)
    f = fit(x, n, p)
    assert fits(f), f
    assert chi2_pvalue(x, n, p, n_bins=400) > 1e-4


# --- multinomial ---------------------------------------------------------------------------


def multinomial_draws(n, probs, m=M):
    out = np.empty((m, len(probs)), np.int64)
    for i in range(m):
        multinomial(n, probs, KEY, np.uint64(i), out[i])
    return out


def test_multinomial_sums_and_marginals():
    probs = np.array([0.5, 0.0, 0.2, 0.25, 0.05])
    n = 1000
    x = multinomial_draws(n, probs)
    assert np.all(x.sum(axis=1) == n)
    assert np.all(x[:, 1] == 0)
    sd = np.sqrt(n * probs * (1 - probs) / len(x))
    z = (x.mean(axis=0) - n * probs)[probs > 0] / sd[probs > 0]
    assert np.all(np.abs(z) < 5), z
    for k in [0, 4]:  # first and last (remainder) components are exact binomials
        assert fits(fit(x[:, k], n, probs[k]))
    # covariance of two components: -n p_i p_j
    c = np.cov(x[:, 0], x[:, 2])[0, 1]
    assert c == pytest.approx(-n * 0.5 * 0.2, rel=0.1)


def test_multinomial_edges():
    out = np.empty(3, np.int64)
    multinomial(0, np.array([0.2, 0.3, 0.5]), KEY, np.uint64(0), out)
    assert out.tolist() == [0, 0, 0]
    multinomial(7, np.array([0.0, 1.0, 0.0]), KEY, np.uint64(0), out)
    assert out.tolist() == [0, 7, 0]
    multinomial(50, np.array([2.0, 2.0, 4.0]), KEY, np.uint64(1), out)  # unnormalised
    assert out.sum() == 50
    a = out.copy()
    multinomial(50, np.array([0.25, 0.25, 0.5]), KEY, np.uint64(1), out)
    np.testing.assert_array_equal(a, out)
