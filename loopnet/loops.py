"""Launching loops: what an op's `forward` and `backward` (and an optimizer's update) call
to run a loop body over a grid on the selected backend.

    loop(affine_forward, out.shape, x.value, transposed(W.value), b.value, out.value)

`loop(body, grid, *arrays)` calls `body(*index, *arrays)` at every index of `grid`. Each
grid point owns the elements it writes (gather form), so the points can run in any order
or all at once: Python runs them as nested loops, Numba with `prange`, CUDA as threads.
The helpers below shape arrays for a loop (flat and row views), make arrays where the
loops run (scratch, to_backend), and lay an operand out for a fast inner loop (transposed).
"""

import functools

from loopnet.backends import current_backend
from loopnet.schedule import tiles


def loop(body, grid, *args):
    """Run `body(*index, *args)` for every index in `grid` on the selected backend."""
    current_backend().loop(body, tuple(grid), args)


def loop_group(body, launches):
    """Several flat loops of one per-point body, `launches` a list of (points, args): one
    launch where the backend runs them back to back on one grid (cuda), else one loop each."""
    group = getattr(current_backend(), "loop_group", None)
    if group is not None:
        return group(body, launches)
    for points, args in launches:
        loop(body, (points,), *args)


def launcher(body, grid):
    """`run` such that `run(*args)` does `loop(body, grid, *args)`, for a loop launched
    again and again with the same body and grid (an optimizer's update, every step), and
    whether `run` calls the compiled code directly. On numba, once the grid's serial or
    parallel choice is settled, `run` is the compiled driver with the grid filled in: a
    call skips the dispatch, which on a small model costs more than the loop (digits MLP:
    a quarter of the update). Everywhere else it is `loop`, so a breakpoint still stops."""
    backend, grid = current_backend(), tuple(grid)
    settled = getattr(backend, "settled_launcher", None)
    drive = settled(body, grid) if settled else None
    if drive is None:
        return functools.partial(loop, body, grid), False
    return functools.partial(drive, *grid), True


def flat(array):
    """A 1-D view of a contiguous array, so one elementwise loop serves every rank."""
    return array.reshape(-1)


def rows(array):
    """A 2-D view (rows, last axis) of a contiguous array, so one row loop serves every rank."""
    # shape[ndim - 1], not shape[-1]: CUDA device arrays (and the simulator's) refuse
    # negative indices into their shape
    return array.reshape(-1, array.shape[array.ndim - 1])


def scratch(shape, dtype):
    """A zeroed array for a loop to write (e.g. which maxout piece won), on the backend's
    device, so it never travels to the host between forward and backward."""
    return current_backend().zeros(shape, dtype)


def to_backend(host_array):
    """A NumPy array made outside the loops (a dropout mask) moved where the loops run."""
    return current_backend().adopt(host_array)


@tiles(8, "A")  # reads A down a column: where its rows share cache sets, Numba runs 8 x 8 tiles
def transpose_body(j, i, A, AT):
    AT[j, i] = A[i, j]


def transposed(array):
    """A row-major copy of a matrix's transpose, made by a loop like any other (on cuda,
    a view: see the end).

    Contractions use it so their inner loop walks memory in order: a sum over k of
    A[i,k] * B[k,j] reads B down a column (one cache line per term), while the same sum
    over BT[j,k] reads a row (unit stride: Numba vectorises it). The copy costs one pass
    over B; the sum reads B once per row of A.

    On CUDA it is a view instead (swapped strides, no launch): the contraction kernels
    stage their operands through shared memory in whichever order reads memory in order
    (cuda_backend.transposed_view). Numba needs the copy for its vectorised inner loop, and
    the Python backend makes it with the loop below, so it can be stepped through.
    """
    backend = current_backend()
    in_place = getattr(backend, "transposed_view", None)
    if in_place is not None:
        return in_place(array)
    out = backend.empty((array.shape[1], array.shape[0]), array.dtype)
    loop(transpose_body, out.shape, array, out)
    return out
