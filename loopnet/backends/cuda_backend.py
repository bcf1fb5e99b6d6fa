"""The CUDA backend: the op files' own loop bodies, one GPU thread per grid point.

For each body the backend writes a small driver module (like the numba backend's) and
imports it:

    from loopnet.ops.affine import affine_forward as body_source
    body = cuda.jit(device=True)(body_source)

    @cuda.jit
    def drive(g0, g1, a0, a1, a2, a3):
        point = cuda.grid(1)                  # one thread per grid point
        if point < g0 * g1:
            i1 = point % g1                   # the last grid axis varies fastest, so
            i0 = point // g1                  # neighbouring threads touch neighbouring
            body(i0, i1, a0, a1, a2, a3)      # elements of a row: coalesced access

Arrays live on the device for the whole forward, backward and optimizer step: values,
grads, optimizer buffers and scratch arrays are device arrays, and data goes to the GPU
once per minibatch. Host copies happen only where a person reads: `.value` and `.grad`
outside the loops, `trace`, a checkpoint, the loss printed per step.

Without a GPU: `NUMBA_ENABLE_CUDASIM=1` runs the same kernels on Numba's CUDA simulator
(plain Python threads, about 0.3 ms per simulated thread: small shapes only). That is how
CI tests this backend. With neither, selecting `cuda` is an error that says so.

numba-cuda 0.30 calls `np.row_stack`, which NumPy 2.5 removed; the one guarded shim for
it is below, before numba.cuda is imported.
"""

import os

import numpy as np

from loopnet.backends import drivers
from loopnet.errors import BackendError

name = "cuda"
THREADS_PER_BLOCK = 128
TILE = 16  # a declared contraction runs as TILE x TILE output tiles staged through shared memory

cuda = None
_drivers = {}


def check_available():
    global cuda
    if not hasattr(np, "row_stack"):  # NumPy >= 2.5 removed it; numba-cuda 0.30 still calls it
        np.row_stack = np.vstack
    try:
        from numba import cuda as numba_cuda
        from numba.extending import register_jitable
    except ImportError as err:
        raise BackendError(
            f"the cuda backend needs numba-cuda ({err}); install it with `pip install 'loopnet[cuda]'`"
        ) from None
    simulated = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    if not simulated:
        try:
            available = numba_cuda.is_available()
        except Exception:  # noqa: BLE001 - a broken driver install reads as "no GPU"
            available = False
        if not available:
            raise BackendError(
                "no CUDA GPU is visible here; to run the cuda backend on Numba's CPU simulator, "
                "set NUMBA_ENABLE_CUDASIM=1 (slow: small shapes only)"
            )
    cuda = numba_cuda
    from loopnet import scalar

    for helper in scalar.HELPERS:
        register_jitable(helper)


def simulated():
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


# -- storage: device arrays --------------------------------------------------------------


def empty(shape, dtype):
    return cuda.device_array(shape, dtype)


def zeros(shape, dtype):
    array = cuda.device_array(shape, dtype)
    fill(array, 0)
    return array


def owns(array):
    return array is not None and hasattr(array, "copy_to_host")  # device arrays, real or simulated


def adopt(array):
    """A device copy of a host array (device arrays are kept as they are)."""
    if owns(array):
        return array
    return cuda.to_device(np.ascontiguousarray(array))


def asarray(host_array):
    return adopt(host_array)


def to_host(array):
    return array.copy_to_host() if owns(array) else array


def fill_body(i, a, value):
    a[i] = value


def fill(array, value):
    if array.size:
        loop(fill_body, (array.size,), (array.reshape(-1), value))


# -- loops ---------------------------------------------------------------------------------


def loop(body, grid, args):
    points = 1
    for n in grid:
        points *= n
    if points == 0:
        return
    key = (body, len(grid))
    driver = _drivers.get(key)
    if driver is None:
        driver = _drivers[key] = _load_driver(body, len(grid))
    blocks = (points + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    try:
        if getattr(driver, "kernels", None) is not None:  # a scheduled contraction picks its own launch
            driver(*grid, *args)
        else:
            driver[blocks, THREADS_PER_BLOCK](*grid, *args)
    except Exception as err:  # noqa: BLE001 - typing errors, launch failures: one paragraph
        if type(err).__name__ in ("TypingError", "UnsupportedError", "LoweringError", "NumbaError",
                                  "CudaAPIError", "CudaSupportError"):
            raise BackendError(f"cuda could not run {body.__module__}.{body.__name__}: "
                               f"{str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__}") from None
        raise


def contraction_source(body):
    """A tiled kernel for a declared contraction (loopnet.schedule), one per dtype.

    Each block of TILE x TILE threads computes a TILE x TILE tile of OUT. For each slice
    of TILE summed indices, the block copies the matching tiles of A and B into shared
    memory (neighbouring threads read neighbouring elements: coalesced), waits, and every
    thread adds its TILE products from shared memory: each element of A and B is read
    from device memory once per tile instead of once per output. Edges are zero-padded.
    """
    spec = body.contraction
    _, _, arrays = drivers.names(body, 2)
    at = drivers.contraction_roles(body)
    T = TILE
    init = f"{at['init']}[j] + " if "init" in at else ""
    lines = [
        f"# Generated by loopnet.backends.cuda_backend for {body.__module__}.{body.__name__}; do not edit.",
        f"# Declared schedule: {spec.spec}",
        "import numba",
        "from numba import cuda",
        drivers.import_line(body),
        "",
    ]
    for dtype in ("float32", "float64"):
        lines += [
            "@cuda.jit",
            f"def drive_{dtype}(g0, g1, {', '.join(arrays)}):",
            f"    tile_a = cuda.shared.array(({T}, {T + 1}), numba.{dtype})  # +1 column: no bank conflicts",
            f"    tile_b = cuda.shared.array(({T}, {T + 1}), numba.{dtype})",
            "    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y",
            f"    i = cuda.blockIdx.y * {T} + ty",
            f"    j = cuda.blockIdx.x * {T} + tx",
            f"    j_load = cuda.blockIdx.x * {T} + ty  # the row of B this thread copies",
            f"    K = {at['a']}.shape[1]",
            f"    acc = numba.{dtype}(0)",
            f"    for k0 in range(0, K, {T}):",
            f"        tile_a[ty, tx] = {at['a']}[i, k0 + tx] if i < g0 and k0 + tx < K else numba.{dtype}(0)",
            f"        tile_b[ty, tx] = {at['b']}[j_load, k0 + tx] if j_load < g1 and k0 + tx < K else numba.{dtype}(0)",
            "        cuda.syncthreads()",
            f"        for k in range({T}):",
            "            acc += tile_a[ty, k] * tile_b[tx, k]",
            "        cuda.syncthreads()",
            "    if i < g0 and j < g1:",
            f"        {at['out']}[i, j] {'+=' if spec.accumulate else '='} {init}acc",
            "",
        ]
    lines += [
        f"def drive(g0, g1, {', '.join(arrays)}):",
        f"    kernel = drive_float32 if {at['out']}.dtype == numba.float32 or str({at['out']}.dtype) == 'float32' else drive_float64",
        f"    kernel[((g1 + {T - 1}) // {T}, (g0 + {T - 1}) // {T}), ({T}, {T})](g0, g1, {', '.join(arrays)})",
        "",
        'drive.kernels = {"float32": drive_float32, "float64": drive_float64}',
    ]
    return "\n".join(lines) + "\n"


def driver_source(body, rank):
    if rank == 2 and getattr(body, "contraction", None) is not None:
        return contraction_source(body)
    grid, index, arrays = drivers.names(body, rank)
    lines = [
        f"# Generated by loopnet.backends.cuda_backend for {body.__module__}.{body.__name__}; do not edit.",
        "from numba import cuda",
        drivers.import_line(body),
        "body = cuda.jit(device=True)(body_source)",
        "",
        "@cuda.jit",
        f"def drive({', '.join(grid + arrays)}):",
        "    point = cuda.grid(1)",
    ]
    total = " * ".join(grid) if grid else "1"
    lines.append(f"    if point < {total}:")
    rest = "point"
    for k in reversed(range(rank)):  # the last axis varies fastest between neighbouring threads
        if k == 0:
            lines.append(f"        i0 = {rest}")
        else:
            lines.append(f"        i{k} = {rest} % g{k}")
            lines.append(f"        rest{k} = {rest} // g{k}")
            rest = f"rest{k}"
    lines.append(f"        body({', '.join(index + arrays)})")
    return "\n".join(lines) + "\n"


def _load_driver(body, rank):
    from loopnet.backends.numba_backend import cache_dir

    source = driver_source(body, rank)
    if not drivers.importable(body):
        return drivers.compile_in_memory(body, source, {"cuda": cuda}, "cuda")
    # (a scheduled contraction's module never uses the body, but imports it so its file
    # name still carries the body's hash: editing the op recompiles)
    return drivers.load(body, source, os.path.join(os.path.dirname(cache_dir()), "cuda"), f"loopnet_cuda_{rank}")
