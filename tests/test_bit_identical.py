"""Shipped configs give bit-identical results to the checksums committed beside this test.

``golden_sha256.json`` holds, for small runs of configs/base.toml, configs/council.toml and the
council-questions scenarios (Rutland and England), the SHA-256 of every variable's values
(dtype, shape, dims and bytes) and of the attrs that do not depend on the clock or the machine.
The checksums were written by the code before the package was reorganised into layers
(issue 16) and the reorganised code reproduces them.  A change that is meant to change results
must say so and rewrite them: ``python tests/test_bit_identical.py --write``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).with_name("golden_sha256.json")

CASES = {
    "base": dict(cfg="configs/base.toml", draws=3),
    "council": dict(cfg="configs/council.toml", draws=3),
    "cq_rutland": dict(cfg="configs/scenarios/council_questions.toml", draws=2,
                       areas=("E06000017",)),
    "cq_england": dict(cfg="configs/scenarios/council_questions.toml", draws=2),
}

STABLE_ATTRS = ("config_sha256", "root_seed", "draws", "areas", "area_names", "input_sha256",
                "scenarios", "parameters", "posterior_file", "replicates_per_draw")
"""Attrs that describe the run itself (not when, where or by which commit it ran)."""


def digest(ds: xr.Dataset) -> dict[str, str]:
    """SHA-256 (16 hex digits) of every variable's dtype, shape, dims and bytes, and of
    :data:`STABLE_ATTRS`."""
    out = {}
    for name in sorted(ds.variables):
        a = ds[name].values
        h = hashlib.sha256(f"{name}|{a.dtype.str}|{a.shape}|{ds[name].dims}".encode())
        h.update(np.ascontiguousarray(a).tobytes() if a.dtype.kind != "O"
                 else json.dumps(a.tolist()).encode())
        out[str(name)] = h.hexdigest()[:16]
    for k in STABLE_ATTRS:
        if k in ds.attrs:
            out["attr:" + k] = hashlib.sha256(str(ds.attrs[k]).encode()).hexdigest()[:16]
    return out


def _run(case: str, tmp: Path) -> dict[str, str]:
    import simsend
    from simsend.io import read_netcdf, write_netcdf

    kw = dict(CASES[case])
    ds = simsend.run(ROOT / kw.pop("cfg"), **kw)
    write_netcdf(ds, tmp / f"{case}.nc")  # what a user gets: the file read back
    return digest(read_netcdf(tmp / f"{case}.nc"))


@pytest.mark.parametrize("case", list(CASES))
def test_shipped_config_gives_the_committed_checksums(case, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    want = json.loads(GOLDEN.read_text())[case]
    got = _run(case, tmp_path)
    differ = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not differ, (f"{case}: these differ from {GOLDEN.name}: {differ}; if the change "
                        "is meant to change results, rewrite it with "
                        "`python tests/test_bit_identical.py --write` and say why")


def test_digest_sees_a_one_bit_change():
    ds = xr.Dataset({"n": (("x",), np.array([1.0, 2.0], np.float32))}, attrs={"draws": 2})
    other = ds.copy(deep=True)
    other["n"].values[1] = np.nextafter(np.float32(2.0), np.float32(3.0))
    assert digest(ds)["n"] != digest(other)["n"]
    assert digest(ds) == digest(ds.copy(deep=True))


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import os
    import tempfile

    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as d:
        GOLDEN.write_text(json.dumps({c: _run(c, Path(d)) for c in CASES}, indent=1,
                                     sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
