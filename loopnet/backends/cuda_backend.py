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
(plain Python threads, about 0.3 ms per simulated thread: small shapes only, and blocks of
16 threads and 4 x 4 tiles instead of 128 and 16 x 16; see simulator.py). That is how CI
tests this backend. With neither, selecting `cuda` is an error that says so.

numba-cuda 0.30 calls `np.row_stack`, which NumPy 2.5 removed: `check_available` puts the
alias back (`drivers.restore_row_stack`) before numba.cuda is imported.
"""

import contextlib
import inspect

import numpy as np

from loopnet.backends import drivers, simulator
from loopnet.errors import BackendError

__all__ = ["name", "check_available", "empty", "zeros", "owns", "adopt", "to_host", "fill", "loop"]

name = "cuda"
THREADS_PER_BLOCK = 128
GROUP_LIMIT = 12  # loops per loop_group launch: Adam's 12 take 3.4 KB of kernel arguments, under CUDA's old 4 KB
SIMULATOR_THREADS_PER_BLOCK = 16  # each simulated thread is a Python thread: a loop over 5 points paid for 128
TILE = 16  # a declared contraction runs as TILE x TILE output tiles staged through shared memory
SIMULATOR_TILE = 4  # small tiles on the simulator: small test shapes still cross tile edges

cuda = None
_drivers = {}


def check_available():
    global cuda
    drivers.restore_row_stack()
    try:
        from numba import cuda as numba_cuda
    except ImportError as err:
        raise BackendError(
            f"the cuda backend needs numba-cuda ({err}); install it with `pip install 'loopnet[cuda]'`"
        ) from None
    if not drivers.cuda_simulated():
        try:
            available = numba_cuda.is_available()
        except Exception:  # noqa: BLE001 - a broken driver install reads as "no GPU"
            available = False
        if not available:
            raise BackendError(
                "no CUDA GPU is visible here; to run the cuda backend on Numba's CPU simulator, "
                "set NUMBA_ENABLE_CUDASIM=1 (slow: small shapes only)"
            )
    if drivers.cuda_simulated():
        simulator.lock_shared_arrays()
    cuda = numba_cuda
    drivers.register_helpers()


def tile():
    """The side of a contraction's output tile: TILE on a GPU, SIMULATOR_TILE on the
    simulator, where a 16 x 16 block is 256 Python threads and shapes are kept small."""
    return SIMULATOR_TILE if drivers.cuda_simulated() else TILE


def threads_per_block():
    """Threads in a block of a per-point loop or a declared reduction: THREADS_PER_BLOCK on
    a GPU, SIMULATOR_THREADS_PER_BLOCK on the simulator (still several, so the guard past the
    last point and the reduction's tree and strided shares are exercised)."""
    return SIMULATOR_THREADS_PER_BLOCK if drivers.cuda_simulated() else THREADS_PER_BLOCK


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
    host = np.asarray(array)  # (np.ascontiguousarray would make a 0-d array 1-d: a scalar's grad)
    return cuda.to_device(host if host.flags.c_contiguous else np.ascontiguousarray(host))


def to_host(array):
    return array.copy_to_host() if owns(array) else array


def transposed_view(matrix):
    """A matrix's transpose as a view of the same device memory, its strides swapped: what
    `loops.transposed` gives on this backend instead of a copy. The kernels that read it
    (the declared contractions) load their shared-memory tiles in whichever order keeps
    neighbouring threads on neighbouring addresses, so a copy would only cost a launch and
    a pass over the matrix (six launches of an MNIST training step's 23)."""
    matrix = adopt(matrix)  # (a host array passed in goes to the device first, as a copy)
    if drivers.cuda_simulated():
        return matrix.T  # (the simulator's arrays wrap NumPy's, and .T is a view)
    # (DeviceNDArray.T launches a kernel that copies; this one shares the memory)
    from numba.cuda.cudadrv.devicearray import DeviceNDArray

    return DeviceNDArray(matrix.shape[::-1], matrix.strides[::-1], matrix.dtype, stream=matrix.stream,
                         gpu_data=matrix.gpu_data)


def fill_body(i, a, value, start, seed):
    a[i] = seed if i >= start else value


def fill(array, value):
    fill_seeded(array.reshape(-1), value, array.size, value)


def fill_seeded(block, value, start, seed):
    """fill(block, value), then block[start:] = seed, in one launch: a backward's zeroed
    grads and the seed of its root's grad, whose view ends the block (graph._zero_grads)."""
    if block.size:
        loop(fill_body, (block.size,), (block, value, start, seed))


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
    threads = threads_per_block()
    if getattr(driver, "kernels", None) is not None:  # a scheduled contraction picks its own launch
        _launch(body, driver, *grid, *args)
    else:
        _launch(body, driver[(points + threads - 1) // threads, threads], *grid, *args)


def loop_group(body, launches):
    """Several flat loops of one per-point `body` as one launch: `launches` is a list of
    (points, args), and the grid runs through each loop's points in turn. An optimizer's
    update of every parameter is one launch this way, not one per parameter (one per
    GROUP_LIMIT parameters: a kernel's arguments have a size limit)."""
    if len(launches) > GROUP_LIMIT:
        for start in range(0, len(launches), GROUP_LIMIT):
            loop_group(body, launches[start:start + GROUP_LIMIT])
        return
    total = sum(points for points, _ in launches)
    if total == 0:
        return
    key = (body, "group", len(launches))
    driver = _drivers.get(key)
    if driver is None:
        driver = _drivers[key] = _load_driver(body, 1, len(launches))
    threads = threads_per_block()
    sizes, args = [points for points, _ in launches], [a for _, group in launches for a in group]
    _launch(body, driver[(total + threads - 1) // threads, threads], *sizes, *args)


def _launch(body, kernel, *args):
    """Run a configured kernel; Numba's typing errors and CUDA's launch failures become one line."""
    try:
        with simulator.switching() if drivers.cuda_simulated() else contextlib.nullcontext():
            kernel(*args)
    except Exception as err:  # noqa: BLE001 - typing errors, launch failures: one paragraph
        if type(err).__name__ in ("TypingError", "UnsupportedError", "LoweringError", "NumbaError",
                                  "CudaAPIError", "CudaSupportError", "nvvmError", "NvvmError"):
            raise BackendError(f"cuda could not run {body.__module__}.{body.__name__}: "
                               f"{str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__}") from None
        raise


def _decode(flat, names, prefix, indent):
    """Lines that split `flat` into row-major digits over the extents of `names`, one
    variable prefix_name each (e_name holds each extent)."""
    out, rest = [], flat
    for position in reversed(range(len(names))):
        name = names[position]
        if position == 0:
            out.append(f"{indent}{prefix}_{name} = {rest}")
        else:
            out.append(f"{indent}{prefix}_{name} = {rest} % e_{name}")
            out.append(f"{indent}{prefix}rest{position} = {rest} // e_{name}")  # (never a prefix_name)
            rest = f"{prefix}rest{position}"
    return out


def _product(names):
    return " * ".join(f"e_{name}" for name in names) or "1"


class _Tiling:
    """The pieces of a tiled kernel's source, named for what they play in the matrix
    product that a declared contraction reads as (see contraction_source)."""

    def __init__(self, body, rank):
        spec = self.spec = body.contraction
        self.grid, _, self.arrays = drivers.names(body, rank)
        self.at = drivers.contraction_roles(body)
        self.argument = dict(zip(list(inspect.signature(body).parameters)[rank:], self.arrays))  # X -> a0, sh -> a5
        self.extents = [f"    e_{name} = {self.argument[spec.extent(name)[0]]}.shape[{spec.extent(name)[1]}]"
                        for name in spec.out_index + spec.summed]
        batch = {name: f"z_{name}" for name in spec.batch}
        summed = {name: f"k_{name}" for name in spec.summed}
        self.a_element, self.a_tests = self.element(spec.a, spec.a_index, {**batch, **summed, **{n: f"r_{n}" for n in spec.rows}})
        self.b_element, self.b_tests = self.element(spec.b, spec.b_index, {**batch, **summed, **{n: f"l_{n}" for n in spec.cols}})
        written = {**batch, **{n: f"r_{n}" for n in spec.rows}, **{n: f"c_{n}" for n in spec.cols}}
        self.out_element = f"{self.at['out']}[{', '.join(written[n] for n in spec.out_index)}]"
        self.init = f"{self.at['init']}[{', '.join(written[n] for n in spec.init_index)}] + " if spec.init else ""
        self.signature = ", ".join(self.grid + self.arrays)
        # the plain form's A and B may come as views with rows next to each other in memory
        # (loops.transposed on this backend): a flag per operand says so, for each launch
        self.kernel_signature = self.signature + (", a_across, b_across" if spec.plain else "")

    def element(self, array, index, variable):
        """ARRAY[...] with each index name replaced by its variable, each scale and divisor
        by the scalar argument; and the tests for the positions that are sums or differences
        (inside the array) or divided (inside, and no remainder)."""
        positions, tests = [], []
        for axis, expression in enumerate(index):
            text, divisor = "", None
            for op, name in expression:
                if op == "/":
                    divisor = self.argument[name]
                else:
                    text += f" * {self.argument[name]}" if op == "*" else f" {op} {variable[name]}"
            text = text.lstrip(" +")
            if divisor:
                tests.append(f"({text}) % {divisor} == 0")
                text = f"({text}) // {divisor}"
            positions.append(text)
            if len(expression) > 1:
                tests.append(f"0 <= {text} < {self.argument[array]}.shape[{axis}]")
        return f"{self.argument[array]}[{', '.join(positions)}]", tests

    def kernel(self, dtype, T):
        """One dtype's kernel: a block of T x T threads computes a T x T tile of OUT."""
        spec = self.spec
        return [
            "@cuda.jit",
            f"def drive_{dtype}({self.kernel_signature}):",
            f"    tile_a = cuda.shared.array(({T}, {T + 1}), numba.{dtype})  # +1 column: a column's reads hit different banks",
            f"    tile_b = cuda.shared.array(({T}, {T + 1}), numba.{dtype})",
            *self.extents,
            f"    rows, cols, depth = {_product(spec.rows)}, {_product(spec.cols)}, {_product(spec.summed)}",
            "    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y",
            f"    row = cuda.blockIdx.y * {T} + ty  # this thread's output, and the row of A it copies",
            f"    col = cuda.blockIdx.x * {T} + tx",
            f"    col_load = cuda.blockIdx.x * {T} + ty  # the row of B it copies",
            *_decode("cuda.blockIdx.z", spec.batch, "z", "    "),
            *_decode("row", spec.rows, "r", "    "),
            *_decode("col", spec.cols, "c", "    "),
            *_decode("col_load", spec.cols, "l", "    "),
            "    total = numba.float64(0)  # each slice's sum is added here: long sums stay accurate",
            *self.slices(dtype, T),
            "    if row < rows and col < cols:",
            f"        {self.out_element} {'+=' if spec.accumulate else '='} {self.init}total",
            "",
        ]

    def slices(self, dtype, T):
        """The loop over slices of T summed positions: stage both tiles, then add."""
        return [
            f"    for k0 in range(0, depth, {T}):",
            "        k = k0 + tx",
            *_decode("k", self.spec.summed, "k", "        "),
            *self.stage(dtype),
            "        cuda.syncthreads()",
            f"        acc = numba.{dtype}(0)  # T products in the array's dtype, then into float64",
            f"        for t in range({T}):",
            "            acc += tile_a[ty, t] * tile_b[tx, t]",
            "        total += acc",
            "        cuda.syncthreads()",
        ]

    def stage(self, dtype):
        """Each thread copies one element of A's tile and one of B's into shared memory.
        Neighbouring threads (tx) take neighbouring summed positions, which lie next to
        each other in memory when A and B are laid out as the declaration reads them. In
        the plain form an operand may instead come with its rows next to each other (a
        transposed view, a_across or b_across); then neighbouring threads take
        neighbouring rows, so either way a warp reads memory in order (coalesced)."""

        def load(tile, at, tests, element, indent):  # the element, or a zero past an edge
            pad = " " * indent
            return [f"{pad}if {' and '.join(tests)}:", f"{pad}    {tile}[{at}] = {element}",
                    f"{pad}else:", f"{pad}    {tile}[{at}] = numba.{dtype}(0)"]

        a = load("tile_a", "ty, tx", ["row < rows", "k < depth", *self.a_tests], self.a_element, 8)
        b = load("tile_b", "ty, tx", ["col_load < cols", "k < depth", *self.b_tests], self.b_element, 8)
        if not self.spec.plain:
            return a + b
        (i, j), k = self.spec.out_index, self.spec.summed[0]
        a_across, _ = self.element(self.spec.a, self.spec.a_index, {i: "row_across", k: "k_across"})
        b_across, _ = self.element(self.spec.b, self.spec.b_index, {j: "col", k: "k_across"})
        return ["        k_across = k0 + ty", "        row_across = row - ty + tx",
                "        if a_across:", *load("tile_a", "tx, ty", ["row_across < rows", "k_across < depth"], a_across, 12),
                "        else:", *["    " + line for line in a],
                "        if b_across:", *load("tile_b", "tx, ty", ["col < cols", "k_across < depth"], b_across, 12),
                "        else:", *["    " + line for line in b]]

    def launcher(self, T):
        """The host function: picks the dtype's kernel and launches one block per tile."""
        spec = self.spec
        return [
            f"def drive({self.signature}):",
            *self.extents,
            f"    rows, cols, batch = {_product(spec.rows)}, {_product(spec.cols)}, {_product(spec.batch)}",
            "    if rows * cols * batch == 0:",
            "        return",
            f"    kernel = drive_float32 if str({self.at['out']}.dtype) == 'float32' else drive_float64",
            *([f"    a_across = {self.argument[spec.a]}.strides[0] < {self.argument[spec.a]}.strides[1]",
               f"    b_across = {self.argument[spec.b]}.strides[0] < {self.argument[spec.b]}.strides[1]"]
              if spec.plain else []),
            f"    kernel[((cols + {T - 1}) // {T}, (rows + {T - 1}) // {T}, batch), ({T}, {T})]({self.kernel_signature})",
            "",
            'drive.kernels = {"float32": drive_float32, "float64": drive_float64}',
        ]


def contraction_source(body, rank):
    """Tiled kernels for a declared contraction (loopnet.schedule), one per dtype.

    Read as a matrix product: OUT's row indices (those only A uses) flattened make the
    rows, its column indices (only B) the columns, the summed indices the shared axis,
    and each value of the batch indices (both use) is one product, `blockIdx.z`.

    Each block of TILE x TILE threads computes a TILE x TILE tile of OUT. For each slice
    of TILE summed positions, the block copies the matching tiles of A and B into shared
    memory (neighbouring threads read neighbouring summed positions, or neighbouring
    rows of an operand that is a transposed view: `_Tiling.stage`), waits, and every
    thread adds its TILE products from shared memory: each element of A and B is read
    from device memory once per tile instead of once per output. Positions past an edge,
    outside an array (a convolution's window off the image) or between its strides (a
    divided index with a remainder), load as zero.

    Each slice's TILE products are added in the array's dtype, and the slice's sum into a
    float64 total (one float64 add per TILE multiply-adds), so a long float32 sum is as
    accurate as the body's, which accumulates in float64 throughout.
    """
    tiling, T = _Tiling(body, rank), tile()
    lines = [
        f"# Generated by loopnet.backends.cuda_backend for {body.__module__}.{body.__name__}; do not edit.",
        f"# Declared schedule: {tiling.spec.spec}",
        "import numba",
        "from numba import cuda",
        drivers.import_line(body),
        "",
    ]
    for dtype in ("float32", "float64"):
        lines += tiling.kernel(dtype, T)
    return "\n".join(lines + tiling.launcher(T)) + "\n"


def reduction_source(body):
    """A kernel for a declared reduction (loopnet.reduction), launched as one block: each
    thread runs the body's own loop over a strided share of the positions (neighbouring
    threads read neighbouring elements), the block adds the shares in a shared-memory tree
    (float64, halving each step: no two threads write one place), and thread 0 runs the
    body's statements after the loop."""
    spec = body.reduction
    acc, i, threads = spec.accumulator, spec.index, threads_per_block()
    return "\n".join([
        f"# Generated by loopnet.backends.cuda_backend for {body.__module__}.{body.__name__}; do not edit.",
        f"# Declared reduction: the loop over {i} adds into {acc}, so each thread adds a share of it.",
        "import numba as reduce_numba",
        "from numba import cuda as reduce_cuda",
        drivers.import_line(body),
        *drivers.module_imports(body, spec.globals),
        "",
        "@reduce_cuda.jit",
        f"def drive({', '.join(spec.parameters)}):",
        f"    reduce_shares = reduce_cuda.shared.array({threads}, reduce_numba.float64)",
        "    reduce_thread = reduce_cuda.threadIdx.x",
        *drivers.pasted(spec.before, 4),
        f"    {acc} = {spec.start}",
        f"    for {i} in range(reduce_thread, {spec.extent}, {threads}):",
        *drivers.pasted(spec.term, 8),
        f"    reduce_shares[reduce_thread] = {acc}",
        "    reduce_cuda.syncthreads()",
        f"    reduce_step = {threads // 2}",
        "    while reduce_step > 0:",
        "        if reduce_thread < reduce_step:",
        "            reduce_shares[reduce_thread] += reduce_shares[reduce_thread + reduce_step]",
        "        reduce_cuda.syncthreads()",
        "        reduce_step //= 2",
        "    if reduce_thread == 0:",
        f"        {acc} = reduce_shares[0]",
        *drivers.pasted(spec.after, 8),
    ]) + "\n"


def driver_source(body, rank):
    if getattr(body, "contraction", None) is not None:
        return contraction_source(body, rank)
    if rank == 0 and getattr(body, "reduction", None) is not None and drivers.importable(body):
        return reduction_source(body)
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


def group_source(body, count):
    """A kernel running `count` flat loops of a per-point body as one grid: n0 points of
    the first loop's arrays, then n1 of the second's, and so on."""
    arrays = drivers.names(body, 1)[2]
    groups = [[f"{a}_{k}" for a in arrays] for k in range(count)]
    lines = [f"# Generated by loopnet.backends.cuda_backend for {body.__module__}.{body.__name__}; do not edit.",
             f"# {count} flat loops in one launch (loop_group).", "from numba import cuda", drivers.import_line(body),
             "body = cuda.jit(device=True)(body_source)", "", "@cuda.jit",
             f"def drive({', '.join([f'n{k}' for k in range(count)] + [a for group in groups for a in group])}):",
             "    point = cuda.grid(1)"]
    for k, group in enumerate(groups):
        lines += [f"    if point < n{k}:", f"        body(point, {', '.join(group)})", "        return",
                  f"    point -= n{k}"]
    return "\n".join(lines) + "\n"


def _load_driver(body, rank, group=None):
    """The driver of `body` over a grid of `rank` axes, or (group) the kernel of loop_group."""
    source = driver_source(body, rank) if group is None else group_source(body, group)
    if not drivers.importable(body):
        return drivers.compile_in_memory(body, source, {"cuda": cuda}, "cuda")
    # (a scheduled contraction's module never uses the body, but imports it so its file
    # name still carries the body's hash: editing the op recompiles)
    prefix = f"loopnet_cuda_{rank}" if group is None else f"loopnet_cuda_group{group}"
    return drivers.load(body, source, drivers.cache_dir("cuda"), prefix)
