"""Check that every loop kernel compiles for a real GPU, on a machine without one.

The CUDA simulator runs plain Python, so it accepts things real CUDA rejects (np.exp, a
list, an f-string). This compiles every driver the op set launches to PTX for a given
compute capability (default 9.0, the H100), with numba's real CUDA compiler:

    python -m loopnet.tools.ptx            # prints one line per kernel; exit 1 on failure

It needs NVVM and NVRTC (the CUDA toolkit, or the nvidia-cuda-nvrtc wheel) but no GPU: the
driver's compute capability, asked for when a device function compiles, is stood in for.
Kernels and argument types are found as warmup finds them: by running every op's samples
and every optimizer on the Python backend, recording each loop (loopnet.tools.kernels).
"""

import sys
import types

import numpy as np

from loopnet.backends import cuda_backend, drivers
from loopnet.tools import kernels


class ToolchainMissing(RuntimeError):
    """NVVM or NVRTC cannot be loaded: PTX cannot be compiled here."""


def launched_kernels():
    """{(body, grid rank, numba argument types)} for every loop the registered ops, the
    optimizers and the CUDA backend's own fill run, in float64 and float32 (the same walk
    as warmup's: loopnet.tools.kernels)."""
    import numba

    def array_types(grid, args):  # a CUDA kernel's grid sizes are int64 scalars; the rest are typed here
        return tuple(numba.typeof(a) for a in args)

    launched = kernels.launched_kernels(signature=array_types, transposes_as_views=True)  # (as cuda makes them)
    seen = {(body, rank, types) for body, launches in launched.items() for rank, types in launches}
    for dtype in ("float64", "float32"):  # cuda_backend.fill runs fill_body on device arrays only
        block, number, index = numba.typeof(np.zeros(2, dtype)), numba.typeof(1.0), numba.typeof(0)
        seen.add((cuda_backend.fill_body, 1, (block, number, index, number)))  # fill(array, value)
        seen.add((cuda_backend.fill_body, 1, (block, index, index, index)))  # fill_seeded(grads, 0, start, 1)
    return seen


def _stand_in_for_a_gpu(cc):
    """Set numba.cuda up to compile with no GPU: device functions ask the driver for its
    compute capability, so answer for it."""
    if drivers.cuda_simulated():
        raise RuntimeError("unset NUMBA_ENABLE_CUDASIM: the simulator has no compiler")
    drivers.restore_row_stack()
    from numba import cuda
    from numba.cuda import dispatcher

    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    cuda_backend.cuda = cuda
    drivers.register_helpers()
    return cuda


def compile_all(cc=(9, 0), out=print):
    """Compile every launched kernel to PTX; returns the list of (kernel, error) failures."""
    from numba import types as nb_types

    from loopnet import optim

    cuda = _stand_in_for_a_gpu(cc)
    failures = []
    updates = {cls.body for cls in optim.OPTIMIZERS.values()} | {optim.scale_step}  # (clipping's scaling, too)
    for body, rank, arg_types in sorted(launched_kernels(), key=lambda k: (k[0].__module__, k[0].__name__, str(k[2]))):
        if body in updates:  # an update runs as one loop_group over all the parameters: two loops stand for any
            dtype = "float32" if "float32" in str(arg_types) else "float64"
            _compile(cuda, cuda_backend._load_driver(body, 1, 2), (nb_types.int64,) * 2 + arg_types * 2, cc,
                     f"{body.__module__}.{body.__name__} (two loops in one launch, {dtype})", failures, out)
        drive = cuda_backend._load_driver(body, rank)
        signature = (nb_types.int64,) * rank + arg_types
        if getattr(drive, "kernels", None) and body.contraction.plain:
            signature += (nb_types.boolean, nb_types.boolean)  # a_across, b_across: see cuda_backend._Tiling.stage
        dtype = "float32" if "float32" in str(arg_types) else "float64"
        label = f"{body.__module__}.{body.__name__} ({rank}-D grid, {dtype})"
        kernel = drive.kernels[dtype] if getattr(drive, "kernels", None) else drive  # a tiled contraction
        if getattr(drive, "kernels", None):
            label += ", shared-memory tiles"
        _compile(cuda, kernel, signature, cc, label, failures, out)
    return failures


def _compile(cuda, kernel, signature, cc, label, failures, out):
    """Compile one kernel to PTX; a failure is added to `failures` and printed."""
    try:
        ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=cc)
    except Exception as err:  # noqa: BLE001
        text = f"{type(err).__name__}: {err}"
        if "nvrtc" in text.lower() or "libnvvm" in text.lower() or "DynamicLibNotFound" in text:
            raise ToolchainMissing(text.splitlines()[0]) from None
        failures.append((label, text.splitlines()[-1] if text.strip() else type(err).__name__))
        out(f"FAILED {label}: {failures[-1][1]}")
        return
    out(f"ok     {label}: {len(ptx)} bytes of PTX")


if __name__ == "__main__":
    try:
        failed = compile_all()
    except ToolchainMissing as err:
        print(f"cannot compile PTX here: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"{len(failed)} kernels failed" if failed else "every kernel compiles to PTX")
    sys.exit(1 if failed else 0)
