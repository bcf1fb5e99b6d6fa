"""The reference backend: plain Python runs the op's own loop body at every grid point.

Nothing is compiled or copied, so a breakpoint inside a body in `loopnet/ops/` stops
there, one scalar of the chain rule at a time. Slow by design; exact by definition.
"""

import itertools

import numpy as np

from loopnet.backends.host import adopt, empty, fill, owns, to_host, zeros

__all__ = ["name", "check_available", "empty", "zeros", "owns", "adopt", "to_host", "fill", "loop"]

name = "python"

# A hook for tools that watch loops run (loopnet.watch): when set, each loop is handed to
# `watcher.run(body, grid, args)` instead of the plain loop below.
watcher = None


def check_available():
    """Plain Python is always available."""


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
