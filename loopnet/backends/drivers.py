"""What the compiled backends (numba, cuda) share: the cache directory, the registration
of loopnet.scalar's helpers, the one NumPy shim numba-cuda needs, and generated driver
modules.

A driver is a few lines of Python that loop over a grid and call one op's body. Numba can
cache compiled code only for functions that live in a real source file, so each driver
is written to a file in the cache directory and imported from there.
"""

import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile

import numpy as np

from loopnet import scalar
from loopnet.errors import BackendError


def cache_dir(kind):
    """Where one compiled backend (`kind`: "numba" or "cuda") keeps its kernels and driver
    files: $LOOPNET_CACHE_DIR/kind, else the user cache directory ($XDG_CACHE_HOME/loopnet
    or ~/.cache/loopnet). Never inside the installed package, which may be read-only."""
    root = os.environ.get("LOOPNET_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "loopnet"
    )
    return os.path.join(root, kind)


def register_helpers():
    """Make loopnet.scalar's helpers callable from compiled bodies (njit and CUDA device
    code alike). The functions stay plain Python, so the Python backend steps into them."""
    from numba.extending import register_jitable

    for helper in scalar.HELPERS:
        register_jitable(helper)


def restore_row_stack():
    """numba-cuda 0.30 calls `np.row_stack`, which NumPy 2.5 removed: put back the alias
    (row_stack was always vstack) before numba.cuda is imported. No NumPy pin needed."""
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack


def cuda_simulated():
    """True when NUMBA_ENABLE_CUDASIM=1: CUDA kernels run on Numba's CPU simulator."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def importable(body):
    """True when `body` can be imported again by module and name (so a driver file can
    import it); False for a body defined in a script, a notebook or an exec'd string."""
    module = sys.modules.get(body.__module__)
    return (
        module is not None and body.__module__ != "__main__"
        and getattr(module, body.__name__, None) is body and getattr(module, "__file__", None)
    )


def names(body, rank):
    """The generated driver's argument names: grid sizes g0.., indices i0.., arrays a0.."""
    arity = len(inspect.signature(body).parameters) - rank
    if arity < 0:
        raise BackendError(f"{body.__name__} takes fewer arguments than its grid has axes ({rank})")
    return [f"g{k}" for k in range(rank)], [f"i{k}" for k in range(rank)], [f"a{k}" for k in range(arity)]


def contraction_roles(body):
    """For a declared contraction: which generated array name plays OUT, A, B and INIT."""
    return {role: f"a{position}" for role, position in body.contraction.positions(body).items()}


def import_line(body):
    return f"from {body.__module__} import {body.__name__} as body_source"


def compile_in_memory(body, source, namespace, label):
    """For a body that is not importable: run the driver's source with the body given."""
    namespace = dict(namespace, body_source=body)
    exec(compile(source.replace(import_line(body), ""), f"<{label} driver for {body.__name__}>", "exec"), namespace)
    return namespace["drive"]


def load(body, source, directory, prefix):
    """Write `source` (a driver for `body`) to a file in `directory` and import it.

    The file name carries a hash of the driver, of the body's source and of
    loopnet/scalar.py, so editing an op compiles it afresh instead of loading stale code.
    An existing file is never rewritten (its timestamp keys Numba's cache), and a new one
    is written then renamed, so a process reading it never sees half a file.
    """
    digest = hashlib.sha1((source + inspect.getsource(body) + inspect.getsource(scalar)).encode()).hexdigest()[:12]
    module_name = f"{prefix}_{body.__module__.replace('.', '_')}_{body.__name__}_{digest}"
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, module_name + ".py")
    if not os.path.exists(path):
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(handle, "w") as out:
            out.write(source)
        os.replace(temporary, path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module.drive
