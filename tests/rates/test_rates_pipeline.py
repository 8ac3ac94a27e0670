"""Reading a pipeline posterior: draws per area, the config's rates kept, clear errors."""

import numpy as np
import pytest
import xarray as xr

from simsend.config import PIPELINE_RATES, PipelineConfig
from simsend.config.toml import ConfigError
from simsend.rates.pipeline import ESTIMATED, PipelinePosterior, load_pipeline_posterior


def write(path, n_draws=4, areas=("E06000017", "E10000014", "E92000001"), **change):
    """A small artefact: rate r of draw d, area a = 0.01 * (1 + r) + 0.001 * d + 0.0001 * a."""
    d, a = np.arange(n_draws), np.arange(len(areas))
    ds = xr.Dataset(
        {r: (("draw", "area"), (0.01 * (1 + i) + 0.001 * d[:, None] + 0.0001 * a[None])
             .astype(np.float32)) for i, r in enumerate(ESTIMATED)},
        coords={"draw": d, "area": list(areas)}, attrs={"rate_year": 2025})
    for k, v in change.items():
        if v is None:
            ds = ds.drop_vars(k)
        else:
            ds[k] = ds[k] * 0 + v
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def test_rates_take_draw_modulo_and_keep_config_rates(tmp_path):
    post = PipelinePosterior(write(tmp_path / "p.nc"))
    base = PipelineConfig().rates
    out = post.rates(base, [0, 1, 5], ["E92000001", "E06000017"])
    assert out.shape == (3, 2, len(PIPELINE_RATES)) and out.dtype == np.float64
    for i, r in enumerate(ESTIMATED):
        k = PIPELINE_RATES.index(r)
        for j, draw in enumerate([0, 1, 5]):
            for u, a in enumerate([2, 0]):
                want = np.float32(0.01 * (1 + i) + 0.001 * (draw % 4) + 0.0001 * a)
                assert out[j, u, k] == np.float64(want)
    for r in ("p_upheld", "mean_weeks_within", "mean_weeks_over"):
        k = PIPELINE_RATES.index(r)
        assert (out[..., k] == base[k]).all()
    assert len(post) == 4 and post.rate_year == 2025


def test_unknown_area_is_named(tmp_path):
    post = PipelinePosterior(write(tmp_path / "p.nc"))
    with pytest.raises(ConfigError, match=r"p.nc: no pipeline rates for area\(s\) \['E09000001'\]"):
        post.rates(PipelineConfig().rates, [0], ["E09000001"])


@pytest.mark.parametrize(("change", "match"), [
    ({"p_refuse": None}, r"not a pipeline posterior \(no \['p_refuse'\]"),
    ({"p_not_issue": 1.5}, "probabilities in"),
    ({"p_within_20_weeks": np.nan}, "probabilities in"),
])
def test_bad_artefacts_fail_clearly(tmp_path, change, match):
    with pytest.raises(ConfigError, match=match):
        PipelinePosterior(write(tmp_path / "p.nc", **change))


def test_unreadable_file_fails_clearly(tmp_path):
    p = tmp_path / "junk.nc"
    p.write_text("not netcdf")
    with pytest.raises(ConfigError, match="junk.nc: cannot be read as a pipeline posterior"):
        PipelinePosterior(p)
    with pytest.raises(ConfigError, match="gone.nc: cannot be read"):
        load_pipeline_posterior(tmp_path / "gone.nc")


def test_cached_read_is_refreshed_when_the_file_changes(tmp_path):
    p = write(tmp_path / "p.nc")
    a = load_pipeline_posterior(p)
    assert load_pipeline_posterior(p) is a
    import os
    write(p, n_draws=6)
    os.utime(p, ns=(os.stat(p).st_atime_ns, os.stat(p).st_mtime_ns + 10**9))
    assert len(load_pipeline_posterior(p)) == 6
