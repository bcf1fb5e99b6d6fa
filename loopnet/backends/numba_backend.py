"""The Numba backend: the op files' own loop bodies, compiled for the CPU.

For each body (say `affine_forward` in loopnet/ops/affine.py) this backend writes a small
driver module into the cache directory and imports it:

    from loopnet.ops.affine import affine_forward as body_source
    body = numba.njit(body_source, ...)

    @numba.njit(parallel=True, ...)
    def drive(g0, g1, a0, a1, a2, a3):
        for i0 in numba.prange(g0):           # grid points own their writes: no races
            for i1 in range(g1):
                body(i0, i1, a0, a1, a2, a3)

No op is written twice: the driver only loops over the grid. Drivers live in real files
because Numba can cache only functions with a source file; the file name carries a hash
of the body's source (and of loopnet/scalar.py), so editing an op compiles it afresh
instead of loading stale machine code.

Options: `fastmath={"reassoc", "contract"}` lets reductions vectorise and use FMA, but
never the no-NaN/no-Inf flags, so NaN and Inf stay visible; `error_model="numpy"` makes
x/0 give inf as in the other backends instead of raising.
"""

import inspect
import math
import os
import re
import time
import traceback

from loopnet.backends import drivers
from loopnet.backends.compile_progress import progress
from loopnet.backends.host import adopt, empty, fill, owns, to_host, zeros
from loopnet.errors import BackendError

__all__ = ["name", "check_available", "empty", "zeros", "owns", "adopt", "to_host", "fill", "loop"]

name = "numba"
# Storage is host memory, as for the python backend (loopnet.backends.host): the compiled
# loops read and write the same NumPy arrays.

FASTMATH = {"reassoc", "contract"}
OPTIONS = "cache=True, fastmath={" + ", ".join(map(repr, sorted(FASTMATH))) + "}, error_model='numpy', nogil=True"

# Serial or parallel: a grid's launches guess by its size (below PARALLEL_MIN_POINTS points
# a serial loop beats starting threads) until TIMED_LAUNCHES of them have run a kernel
# already compiled. The fastest of those settles the choice for that body and grid size
# where the guess was clearly wrong. A point's work varies by a thousand times between ops
# (an add; a whole convolution plane), so the size alone misjudges both ways: measured on
# 2 cores, conv2d's 1,024 planes ran 1.9x faster in parallel, and the digits MLP's
# 4,096-point loops faster serially. The fastest of three, not the first: threads that
# have slept wake slowly (a 64x64 transpose in parallel took 4 us, and 7.8 ms after 0.2 s
# idle), and one slow launch once kept such a grid parallel for a whole benchmark.
# Either way each grid point runs the same arithmetic: the answer does not depend on it.
PARALLEL_MIN_POINTS = 4096
SERIAL_BELOW_SECONDS = 25e-6  # a parallel launch this quick is mostly starting threads
PARALLEL_ABOVE_SECONDS = 250e-6  # a serial launch this slow is worth the threads
TIMED_LAUNCHES = 3
_settled = {}  # (body, grid) -> parallel, from the grid's timed launches
_timed = {}  # (body, grid) -> (the fastest of its timed launches so far, how many), until settled
_drivers = {}  # (body, grid rank, parallel) -> compiled driver
_cache = None  # the usable cache directory, None where there is none (see check_available)
numba = None


def check_available():
    global numba
    try:
        import numba as numba_module
    except ImportError as err:
        raise BackendError(f"the numba backend needs Numba ({err}); install it with `pip install numba`") from None
    numba = numba_module
    global _cache
    _cache = drivers.usable_cache_dir("numba")
    if _cache is not None:
        numba.config.CACHE_DIR = _cache
    drivers.register_helpers()
    progress.install()


def cache_in_use():
    """The directory compiled kernels are kept in; None where none could be used."""
    return _cache


def kernels_compiled():
    """How many kernels (a driver for one signature) Numba really compiled in this process:
    cache misses only; a kernel loaded from the cache is not counted."""
    return progress.compiled


def loop(body, grid, args):
    grid = tuple(grid)
    key = (body, grid)
    parallel = _settled.get(key)
    if parallel is not None:
        _run(body, parallel, grid, args)
        return
    parallel = _by_size(grid)
    drive = driver(body, len(grid), parallel)
    kernels = len(drive.overloads)
    start = time.perf_counter()
    _run(body, parallel, grid, args)
    if len(drive.overloads) == kernels:  # (a launch that compiled or loaded its kernel is not timed)
        fastest, count = _timed.get(key, (math.inf, 0))
        fastest, count = min(fastest, time.perf_counter() - start), count + 1
        if count < TIMED_LAUNCHES:
            _timed[key] = (fastest, count)
        else:  # (pop, not del: two threads launching one grid may both get here)
            _settled[key] = settle(parallel, fastest, len(grid) > 0)
            _timed.pop(key, None)


def _by_size(grid):
    return len(grid) > 0 and math.prod(grid) >= PARALLEL_MIN_POINTS


def settled_launcher(body, grid):
    """The compiled driver that `loop(body, grid, ...)` runs, to call as
    `driver(*grid, *args)`, once the grid's serial or parallel choice is settled; None
    until then (launches go through `loop`). What a replayed step (loopnet.replay) and an
    optimizer's update (loopnet.loops.launcher) call directly."""
    parallel = _settled.get((body, grid))
    return None if parallel is None else driver(body, len(grid), parallel)


def settle(parallel, seconds, has_grid):
    """The choice for the launches after timed ones that ran `parallel`, the fastest in `seconds`."""
    if parallel and seconds < SERIAL_BELOW_SECONDS:
        return False
    if not parallel and has_grid and seconds > PARALLEL_ABOVE_SECONDS:
        return True
    return parallel


def _run(body, parallel, grid, args):
    drive = _drivers.get((body, len(grid), parallel)) or driver(body, len(grid), parallel)
    try:
        drive(*grid, *args)
    except numba.core.errors.NumbaError as err:
        raise BackendError(_explain(body, err)) from None
    except Exception as err:  # noqa: BLE001 - only a damaged cache entry is handled here
        if not _from_numbas_cache(err):
            raise
        _forget_cached(drive)  # unreadable entries are a miss: compile again, never a crash
        drive(*grid, *args)


def _from_numbas_cache(err):
    """True when `err` was raised while Numba read its on-disk cache (an index or data file
    cut short, emptied or overwritten: pickle's errors, EOFError, ...)."""
    frames = traceback.extract_tb(err.__traceback__)
    return any(frame.filename.endswith(os.path.join("numba", "core", "caching.py")) for frame in frames)


def _forget_cached(drive):
    """Start the driver's and its body's cache indexes afresh (their data files go with
    them), and say so once."""
    drivers.warn("a damaged entry in the kernel cache was dropped; its kernels compile again")
    for dispatcher in (drive, drive.py_func.__globals__.get("body")):
        cache = getattr(dispatcher, "_cache", None)
        if cache is not None:
            cache.flush()


def driver(body, rank, parallel):
    """The driver that runs `body` over a grid of `rank` axes, serial or with prange:
    made (its module written and imported) on first use, then kept."""
    key = (body, rank, parallel)
    if key not in _drivers:
        _drivers[key] = _load_driver(body, rank, parallel)
    return _drivers[key]


def signature(grid, args):
    """The argument types Numba sees when `loop(body, grid, args)` calls a driver."""
    from numba.core.typing.typeof import Purpose

    return tuple(numba.typeof(value, Purpose.argument) for value in (*grid, *args))


def compile_kernel(body, rank, parallel, types):
    """Compile `body`'s driver for the argument types `types` (see `signature`) without
    running it, or load it from the cache: what `cli.py warmup` does ahead of time."""
    try:
        driver(body, rank, parallel).compile(types)
    except numba.core.errors.NumbaError as err:
        raise BackendError(_explain(body, err)) from None


def _explain(body, err):
    """One paragraph: which op's body failed to compile, and Numba's first reason."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # Numba colours its messages
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # Numba's first line names the failing stage; the reason is the first line after it
    reasons = [line for line in lines if not line.startswith(("Failed in", "During:", "File", "<source", "^"))]
    reason = reasons[0] if reasons else lines[0] if lines else type(err).__name__
    return (
        f"numba could not compile {body.__module__}.{body.__name__} "
        f"(op file {inspect.getsourcefile(body)}): {reason}. Loop bodies may use only scalar "
        f"arithmetic, indexing, range loops, math.* and loopnet.scalar; run with --backend python to debug."
    )


TILE_ROWS, TILE_COLS = 4, 3  # a block of outputs per step in a scheduled contraction
# (4 x 3: twelve vector accumulators, three of B's rows and one of A's fill AVX2's sixteen
# vector registers; 4 x 4 spills to the stack. Measured in one sitting, alternating: 4 x 3
# gave 1.4x the GFLOP/s of 4 x 4 on matmul 1024, 1.25x on the MNIST step; 3 x 3, 4 x 2,
# 5 x 2, 6 x 2 and 2 x 4 fell between)
BLOCK = 512  # summed positions per block: added in the array's dtype, then the block into float64
# (512, not 128: each block ends in horizontal sums of vector accumulators; measured 1.15x on matmul 1024 f32)


def _contraction_source(body, parallel):
    """A driver for a declared contraction (loopnet.schedule): TILE_ROWS x TILE_COLS blocks
    of outputs with their accumulators in registers; blocks past an edge call the body.

    The sum runs blockwise, as NumPy's float32 sums do: BLOCK products at a time in the
    array's dtype (float32 stays float32 and vectorises), each block's partial sum then
    added into a float64 total. A float32 sum of n terms drifts like n; this one like
    BLOCK, and the body (float64 throughout) agrees with it to float32 rounding."""
    spec = body.contraction
    _, _, arrays = drivers.names(body, 2)
    at = drivers.contraction_roles(body)
    R, C = TILE_ROWS, TILE_COLS
    acc = [[f"c{r}_{c}" for c in range(C)] for r in range(R)]
    total = [[f"s{r}_{c}" for c in range(C)] for r in range(R)]
    lines = [
        *_head(body, parallel, ["g0", "g1", *arrays], f"Declared schedule: {spec.spec}"),
        f"    K = {at['a']}.shape[1]",
        f"    for t0 in {'numba.prange' if parallel else 'range'}((g0 + {R - 1}) // {R}):",
        f"        i0 = t0 * {R}",
        f"        for t1 in range((g1 + {C - 1}) // {C}):",
        f"            j0 = t1 * {C}",
        f"            if i0 + {R} <= g0 and j0 + {C} <= g1:",
        f"                zero = {at['out']}.dtype.type(0)",
        "                " + " = ".join(name for row in total for name in row) + " = 0.0  # float64 totals",
        f"                for k0 in range(0, K, {BLOCK}):",
        "                    " + " = ".join(name for row in acc for name in row) + " = zero",
        # an unsigned k: Numba wraps a negative signed index (x[-1] is the last element)
        # with a compare and a select on each read, and k cannot be negative
        f"                    for k in range(numba.uint64(k0), numba.uint64(min(k0 + {BLOCK}, K))):",
        "                        " + "; ".join(f"x{r} = {at['a']}[i0 + {r}, k]" for r in range(R)),
        "                        " + "; ".join(f"y{c} = {at['b']}[j0 + {c}, k]" for c in range(C)),
    ]
    for r in range(R):
        lines.append("                        " + "; ".join(f"{acc[r][c]} += x{r} * y{c}" for c in range(C)))
    for r in range(R):
        lines.append("                    " + "; ".join(f"{total[r][c]} += {acc[r][c]}" for c in range(C)))
    assign = "+=" if spec.accumulate else "="
    for r in range(R):
        for c in range(C):
            init = f"{at['init']}[j0 + {c}] + " if "init" in at else ""
            lines.append(f"                {at['out']}[i0 + {r}, j0 + {c}] {assign} {init}{total[r][c]}")
    lines += [
        "            else:",
        f"                for i in range(i0, min(i0 + {R}, g0)):",
        f"                    for j in range(j0, min(j0 + {C}, g1)):",
        f"                        body(i, j, {', '.join(arrays)})",
    ]
    return "\n".join(lines) + "\n"


CHUNK = 4096  # positions per parallel chunk of a declared reduction (a sum of fewer than
# two chunks runs the body itself: starting threads costs about as much as 4096 adds)


def _reduction_source(body):
    """A driver for a declared reduction (loopnet.reduction): the body's own loop, pasted,
    run in chunks of CHUNK positions across threads, each chunk into its own float64
    partial; then the partials are added in order and the body's last statements run."""
    spec = body.reduction
    acc, i = spec.accumulator, spec.index
    lines = [
        f"# Generated by loopnet.backends.numba_backend for {body.__module__}.{body.__name__}; do not edit.",
        f"# Declared reduction: the loop over {i} adds into {acc}, so chunks of it run in parallel.",
        "import numba as reduce_numba",
        "import numpy as reduce_numpy",
        drivers.import_line(body),
        *drivers.module_imports(body, spec.globals),
        f"reduce_body = reduce_numba.njit(body_source, {OPTIONS})",
        "",
        f"@reduce_numba.njit(parallel=True, {OPTIONS})",
        f"def drive({', '.join(spec.parameters)}):",
        *drivers.pasted(spec.before, 4),
        f"    reduce_extent = {spec.extent}",
        f"    if reduce_extent < {2 * CHUNK}:",
        f"        reduce_body({', '.join(spec.parameters)})",
        "        return",
        f"    reduce_chunks = (reduce_extent + {CHUNK - 1}) // {CHUNK}",
        "    reduce_partial = reduce_numpy.empty(reduce_chunks, reduce_numpy.float64)",
        "    for reduce_chunk in reduce_numba.prange(reduce_chunks):",
        f"        {acc} = {spec.start}",
        f"        for {i} in range(reduce_chunk * {CHUNK}, min(reduce_extent, reduce_chunk * {CHUNK} + {CHUNK})):",
        *drivers.pasted(spec.term, 12),
        f"        reduce_partial[reduce_chunk] = {acc}",
        f"    {acc} = {spec.start}",
        "    for reduce_chunk in range(reduce_chunks):",
        f"        {acc} += reduce_partial[reduce_chunk]",
        *drivers.pasted(spec.after, 4),
    ]
    return "\n".join(lines) + "\n"


TILED_ROW_BYTES = 1024  # a body declared with @tiles runs in tiles where its array's rows
# lie a multiple of this many bytes apart: in a common L1 cache (32 KiB, 8 ways, 64-byte
# lines: 64 sets) a column's elements then fall in at most 4 sets (32 lines), and a walk
# down more rows than that evicts each line before the next column reuses it. Measured on
# 2 cores, transposes in parallel, float32: 1024 x 1024 2.4-3.0 -> 0.73-0.77 ms, 256 x
# 1024 0.43 -> 0.15 ms, 256 x 256 within noise (43 -> 34 us in one run, 48 -> 58 in
# another). In tiles, 512 x 784 (rows 3136 bytes apart) took 210 us against 95 in grid
# order, and 784 x 500 (2000 bytes) 0.22 ms against 0.16, so those keep grid order.


def _tiled_source(body, parallel):
    """A driver for a body declared with @tiles (loopnet.schedule): the grid in order, or
    in size x size tiles where the declared array's rows lie a multiple of TILED_ROW_BYTES
    apart (a stride of 0, a broadcast, counts: harmless, the answer is the same)."""
    _, _, arrays = drivers.names(body, 2)
    size = body.tiles.size
    column_read = arrays[list(inspect.signature(body).parameters).index(body.tiles.array) - 2]
    each = "numba.prange" if parallel else "range"
    call = f"body(i0, i1, {', '.join(arrays)})"
    # one loop over all the tiles, a row of tiles after another, so that threads share them
    # out even where the grid is one tile wide (a tall, narrow slice: 2.75 -> 1.5 ms). The
    # division per tile costs little: a serial 1024 x 1024 copy took 1.42 ms, against
    # 1.31-1.38 with a loop per axis of tiles (and a grid that large settles parallel)
    return "\n".join([
        *_head(body, parallel, ["g0", "g1", *arrays],
               f"Declared schedule: {size} x {size} tiles where {body.tiles.array}'s rows share cache sets."),
        f"    if {column_read}.strides[0] % {TILED_ROW_BYTES} == 0:",
        f"        across = (g1 + {size - 1}) // {size}",
        f"        for tile in {each}((g0 + {size - 1}) // {size} * across):",
        f"            start0 = numba.int64(tile) // across * {size}  # (signed: see _driver_source)",
        f"            start1 = numba.int64(tile) % across * {size}",
        f"            for i0 in range(start0, min(start0 + {size}, g0)):",
        f"                for i1 in range(start1, min(start1 + {size}, g1)):",
        f"                    {call}",
        "    else:",
        f"        for u0 in {each}(g0):",
        "            i0 = numba.int64(u0)",
        "            for i1 in range(g1):",
        f"                {call}",
    ]) + "\n"


def _driver_source(body, rank, parallel):
    if rank == 0 and getattr(body, "reduction", None) is not None and drivers.importable(body):
        return _reduction_source(body)  # (a body in a script or notebook runs as written)
    if rank == 2 and getattr(body, "contraction", None) is not None and body.contraction.plain:
        return _contraction_source(body, parallel)
    if rank == 2 and getattr(body, "tiles", None) is not None:
        return _tiled_source(body, parallel)
    grid, index, arrays = drivers.names(body, rank)
    lines = _head(body, parallel, grid + arrays)
    for depth, (i, g) in enumerate(zip(index, grid)):
        loop_range = "numba.prange" if depth == 0 and parallel else "range"
        lines.append("    " * (depth + 1) + f"for {i} in {loop_range}({g}):")
    # prange's index is unsigned, and unsigned with signed arithmetic gives float64 in Numba
    # (an index like `i % sizes[a]` would become a float): hand the body a signed one
    signed = [f"numba.int64({index[0]})" if parallel else index[0], *index[1:]] if rank else []
    lines.append("    " * (rank + 1) + f"body({', '.join(signed + arrays)})")
    return "\n".join(lines) + "\n"


def _head(body, parallel, parameters, note=None):
    """A driver module's first lines, down to `def drive(...):`."""
    return [
        f"# Generated by loopnet.backends.numba_backend for {body.__module__}.{body.__name__}; do not edit.",
        *([f"# {note}"] if note else []),
        "import numba",
        drivers.import_line(body),
        f"body = numba.njit(body_source, {OPTIONS})",
        "",
        f"@numba.njit(parallel={parallel}, {OPTIONS})",
        f"def drive({', '.join(parameters)}):",
    ]


def _load_driver(body, rank, parallel):
    source = _driver_source(body, rank, parallel)
    prefix = f"loopnet_drv_{rank}{'p' if parallel else 's'}"
    if drivers.importable(body) and _cache is not None:
        try:
            return drivers.load(body, source, os.path.join(_cache, "drivers"), prefix)
        except OSError as err:  # the disk filled up, the directory went away: go on uncached
            drivers.warn(f"cannot write to the kernel cache ({err.strerror or err}): compiling in memory")
    # A body defined in a script or notebook (Numba can cache only what it can find again
    # by module and file), or no usable cache: compile in memory, without the disk cache.
    # The module name it gets is only for the compile progress, which looks for it.
    namespace = {"__name__": f"{prefix}_{body.__name__}_in_memory"}
    return drivers.compile_in_memory(body, source.replace("cache=True", "cache=False"), namespace, "numba")
