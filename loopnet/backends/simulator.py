"""What the cuda backend does differently on numba-cuda's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1), which runs each thread of a block as a Python thread.

- The simulator's host thread waits for a block by polling its threads in a loop that
  never sleeps. Python lets a thread run for its switch interval (5 ms) before another
  may take the interpreter, so each time a block's threads meet at `syncthreads` the
  poll spins through up to 5 ms of nothing: most of a tiled kernel's time. During a
  launch, `switching` shortens the interval, then puts it back. Measured on a 2-core
  machine: a digits MLP of width 4 trained two epochs on 12 images, 20 s -> 3 s.
- `cuda.shared.array` on the simulator looks for the block's array and makes it if
  there is none, in two steps. With threads switching that often, two threads of a block
  can both find none and each keep an array of its own: the block's threads then share
  nothing, and a tiled kernel adds garbage (seen as wrong weights after a training run).
  `lock_shared_arrays` makes the look-up and the making one step. (numba-cuda 0.30.4;
  the simulator's other per-thread global, the swapped cuda module, already has a lock.)
"""

import contextlib
import sys
import threading

import numpy as np

SWITCH_INTERVAL = 5e-5  # seconds; 2e-4 and 2e-5 measured the same, 5e-3 (Python's default) 7x slower


@contextlib.contextmanager
def switching():
    """Run the body with Python's thread switch interval at SWITCH_INTERVAL."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def lock_shared_arrays():
    """Make the simulator's shared-array look-up atomic. Its arrays are keyed, as its own
    code keys them, by the file and line that asks: one `cuda.shared.array` per line."""
    from numba.cuda.simulator import kernelapi
    from numba.cuda import types  # (as the simulator's own module imports them)
    from numba.cuda.np import numpy_support

    if getattr(kernelapi.FakeCUDAShared.array, "loopnet_locked", False):
        return
    unlocked, lock = kernelapi.FakeCUDAShared.array, threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory is one buffer; alignment is refused
            return unlocked(self, shape, dtype, alignment)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with lock:
            if key not in self._allocations:
                numpy_dtype = numpy_support.as_dtype(dtype) if isinstance(dtype, types.Type) else dtype
                self._allocations[key] = np.empty(shape, numpy_dtype)
            return self._allocations[key]

    array.loopnet_locked, array.unlocked = True, unlocked  # (the tests put the simulator's own back)
    kernelapi.FakeCUDAShared.array = array
