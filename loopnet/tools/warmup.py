"""Compile every Numba kernel ahead, into the on-disk cache (`cli.py warmup`)."""

import loopnet as ln
from loopnet.backends import numba_backend
from loopnet.tools.kernels import run_every_kernel

VARIANTS = ("parallel", "serial")  # each loop has a prange driver and a serial one


def steps():
    """How many times warmup calls `on_op`: once per op per variant."""
    return len(ln.OPS) * len(VARIANTS)


def warmup(dtypes=("float64", "float32"), on_op=None):
    """Compile (or load from the cache) every kernel the ops and optimizers run, in their
    parallel and serial variants, for each dtype. `on_op(label)` is called before each op
    of each variant, for progress. Returns the number of drivers ready."""
    saved = numba_backend.PARALLEL_MIN_POINTS
    try:
        with ln.use("numba"):
            for variant in VARIANTS:
                # a threshold of 0 sends every loop to its parallel driver
                numba_backend.PARALLEL_MIN_POINTS = 0 if variant == "parallel" else saved
                report = None if on_op is None else (lambda name, v=variant: on_op(f"{name} ({v})"))
                run_every_kernel(dtypes, report)
    finally:
        numba_backend.PARALLEL_MIN_POINTS = saved
    return numba_backend.drivers_loaded()
