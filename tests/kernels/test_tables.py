"""cdf_rows writes exactly what NumPy's cumsum over the transposed table gives."""

import numpy as np

from simsend.kernels.tables import cdf_rows


def test_cdf_rows_equals_numpy_cumsum_bit_for_bit():
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(4), size=(4, 26, 13, 3)).transpose(0, 4, 1, 2, 3).copy()
    want = np.cumsum(np.transpose(p, (2, 3, 4, 0, 1)), axis=-1)
    want[..., -1] = 1.0
    out = np.full(p.shape[2:] + (4, 4), np.nan)
    cdf_rows(p.reshape(4, 4, -1), out.reshape(-1, 4, 4))
    np.testing.assert_array_equal(out, want)
    # a row short of 1 (here by 0.1) still ends at exactly 1
    p[1, :, 0] *= 0.9
    cdf_rows(p.reshape(4, 4, -1), out.reshape(-1, 4, 4))
    assert out[0, 0, 0, 1, -1] == 1.0
    assert out[0, 0, 0, 1, -2] == np.cumsum(p[1, :, 0, 0, 0])[-2]
