"""The single Numba decorator every kernel is compiled through.

Options are fixed here so that every kernel caches its machine code between runs and
follows NumPy's error model (division by zero gives inf/nan instead of raising).
``fastmath`` stays off: reassociated floating point would break bit-identical results.
"""

import numba

_OPTIONS = {"cache": True, "error_model": "numpy", "nogil": True}


def njit(*args, parallel: bool = False, **kwargs):
    """Compile a kernel with simsend's fixed Numba options.

    Parameters
    ----------
    parallel : bool
        Enable ``prange`` loops (only for kernels whose result does not depend on the
        thread count, i.e. those that reduce into per-thread buffers then sum them).

    """
    opts = dict(_OPTIONS, parallel=parallel, **kwargs)
    if args and callable(args[0]):
        return numba.njit(**opts)(args[0])
    return numba.njit(*args, **opts)
