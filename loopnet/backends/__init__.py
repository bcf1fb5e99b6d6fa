"""Backends run loop bodies: `python` (the reference), `numba` (CPU), `cuda` (GPU).

Select one with `ln.use("numba")` (a call, or a `with` block that restores the previous
one), the environment variable `LOOPNET_BACKEND`, or the CLI's `--backend`. A backend that
cannot run here is an error that says why, never a silent fallback to another.

The backend protocol
--------------------
A backend is a module `loopnet/backends/<name>_backend.py` whose name is in BACKENDS. It
provides exactly the names in PROTOCOL (its `__all__`; a test holds every backend to it):

    name                   "python", "numba" or "cuda"
    check_available()      raise BackendError saying why and how to fix it, if this machine
                           cannot run the backend; called once, on first use
  storage: where the loops' arrays live (host memory for python and numba, the GPU for cuda)
    empty(shape, dtype)    a new array, contents undefined
    zeros(shape, dtype)    a new array of zeros
    owns(array)            True if the loops can use `array` as it is
    adopt(array)           this backend's array for data from anywhere (a NumPy array, or
                           another backend's array); no copy where none is needed
    to_host(array)         a NumPy array of the same values, for a person or a file
    fill(array, value)     set every element (one launch on a GPU)
  running:
    loop(body, grid, args) call body(*index, *args) at every index of the tuple `grid`, in
                           any order or all at once: each grid point owns its writes

Optional names, looked up where they are used: numba's `settled_launcher(body, grid)` (the
compiled driver itself, for loops.launcher and replay); cuda's `transposed_view(matrix)`
(loops.transposed gives a view there, not a copy) and `fill_seeded(block, value, start,
seed)` (a backward's zeroed grads and its seed in one launch, graph._zero_grads) and
`loop_group(body, [(points, args), ...])` (an optimizer's update of every parameter as
one launch).

Nothing in this package imports the engine (graph, op, loops), the ops, the tools or the
test kit: backends are the ground floor, and only `loopnet.errors` and `loopnet.scalar`
lie beneath them. Shared pieces live here once: `host` (NumPy storage, for python and
numba) and `drivers` (the compiled backends' cache directory, generated driver files,
helper registration and the one NumPy shim numba-cuda needs).
"""

import importlib
import importlib.util
import os

from loopnet.errors import BackendError, did_you_mean

BACKENDS = ("python", "numba", "cuda")
PROTOCOL = ("name", "check_available", "empty", "zeros", "owns", "adopt", "to_host", "fill", "loop")

_loaded = {}
_current = None


def get_backend(name):
    """The backend module called `name`, loaded (and checked) on first use."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}{did_you_mean(name, BACKENDS)}; choose one of: {', '.join(BACKENDS)}")
    if name not in _loaded:
        if importlib.util.find_spec(f"loopnet.backends.{name}_backend") is None:
            raise BackendError(f"the {name} backend is not part of this version of loopnet yet; use python or numba")
        module = importlib.import_module(f"loopnet.backends.{name}_backend")
        module.check_available()  # raises BackendError with the reason and the fix
        _loaded[name] = module
    return _loaded[name]


def default_backend(fallback="python"):
    """The backend to use when none is named: $LOOPNET_BACKEND if set, else `fallback`.

    Each command passes its own fallback (precedence: --backend > LOOPNET_BACKEND >
    the command's default): `python` for the reading tools (trace, explain, jacobian,
    gradcheck), so a breakpoint in an op file stops; each model's own for train and
    evaluate; `numba` for the benchmarks. The library itself starts on $LOOPNET_BACKEND,
    else `python`. The name is checked when it is used (`use`), not here."""
    return os.environ.get("LOOPNET_BACKEND") or fallback


def current_backend():
    global _current
    if _current is None:
        _current = get_backend(os.environ.get("LOOPNET_BACKEND", "python") or "python")
    return _current


class use:
    """Select the backend by name: `ln.use("numba")`, or `with ln.use("numba"): ...`.

    As a call it switches for the rest of the program; as a context manager it switches
    back to the previous backend at the end of the block.
    """

    def __init__(self, name):
        global _current
        backend = get_backend(name)
        self.previous = _current
        self.name = name
        _current = backend

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _current
        _current = self.previous
        return False

    def __repr__(self):
        return f"use({self.name!r})"
