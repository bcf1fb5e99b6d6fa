"""Backends run loop bodies: `python` (the reference), `numba` (CPU), `cuda` (GPU).

Select one with `ln.use("numba")` (a call, or a `with` block that restores the previous
one), the environment variable `LOOPNET_BACKEND`, or the CLI's `--backend`. A backend that
cannot run here is an error that says why, never a silent fallback to another.
"""

import importlib
import importlib.util
import os

from loopnet.errors import BackendError

BACKENDS = ("python", "numba", "cuda")

_loaded = {}
_current = None


def get_backend(name):
    """The backend module called `name`, loaded (and checked) on first use."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    if name not in _loaded:
        if importlib.util.find_spec(f"loopnet.backends.{name}_backend") is None:
            raise BackendError(f"the {name} backend is not part of this version of loopnet yet; use python or numba")
        module = importlib.import_module(f"loopnet.backends.{name}_backend")
        module.check_available()  # raises BackendError with the reason and the fix
        _loaded[name] = module
    return _loaded[name]


def default_backend():
    """The backend the CLI uses when none is named: $LOOPNET_BACKEND, else `numba` where
    Numba is installed (fast), else `python`. The library itself starts on `python`,
    the one to step through in a debugger."""
    chosen = os.environ.get("LOOPNET_BACKEND")
    if chosen:
        return chosen
    return "numba" if importlib.util.find_spec("numba") is not None else "python"


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
