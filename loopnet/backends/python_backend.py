"""The reference backend: plain Python runs the op's own loop body at every grid point.

Nothing is compiled or copied, so a breakpoint inside a body in `loopnet/ops/` stops
there, one scalar of the chain rule at a time. Slow by design; exact by definition.
"""

import itertools

import numpy as np

name = "python"

# Set by loopnet.backends.watch.watch(): runs each loop with recording arrays instead.
watcher = None


def check_available():
    """Plain Python is always available."""


# Storage: NumPy arrays in host memory (the numba backend uses the same functions).


def empty(shape, dtype):
    return np.empty(shape, dtype)


def zeros(shape, dtype):
    return np.zeros(shape, dtype)


def owns(array):
    """True for an array this backend's loops can use as it is."""
    return isinstance(array, np.ndarray)


def adopt(array):
    """This backend's copy of an array from anywhere (a device array comes back to the host)."""
    return array if isinstance(array, np.ndarray) else array.copy_to_host()


def asarray(host_array):
    """A host array (a dropout mask, say) ready for this backend's loops."""
    return host_array


def to_host(array):
    return adopt(array)


def fill(array, value):
    array.fill(value)


def loop(body, grid, args):
    """Call `body(*index, *args)` for every index of `grid`, last index fastest."""
    # Array elements are NumPy scalars, which warn on overflow or 0/0; compiled backends
    # stay silent. Inf and NaN remain in the values either way (see check_finite).
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if watcher is not None:
            watcher.run(body, grid, args)
            return
        if len(grid) == 1:  # the common case, spelled out so stepping through it is obvious
            for i in range(grid[0]):
                body(i, *args)
            return
        for index in itertools.product(*(range(n) for n in grid)):
            body(*index, *args)
