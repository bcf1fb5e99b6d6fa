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


def usable_cache_dir(kind):
    """`cache_dir(kind)`, made and tried: None where it cannot be used (a read-only home, a
    path that is a file, a full disk, a name that is not UTF-8, which Numba cannot encode).
    Then one line on stderr says so, and kernels compile in memory in every run: a cache
    is a convenience, never a reason for a run to fail."""
    directory = cache_dir(kind)
    try:
        directory.encode("utf-8")  # a non-UTF-8 name from the environment arrives surrogate-escaped
        os.makedirs(os.path.join(directory, "drivers"), exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=os.path.join(directory, "drivers"))
        os.close(handle)
        os.remove(probe)
    except (OSError, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        warn(f"cannot use the kernel cache {directory!r} ({reason}): kernels are compiled in every run; "
             f"set LOOPNET_CACHE_DIR to a writable directory")
        return None
    return directory


_warned = set()


def warn(message):
    """One line on stderr, once per process."""
    if message not in _warned:
        _warned.add(message)
        sys.stderr.write(f"loopnet: {message}\n")


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
    """True when NUMBA_ENABLE_CUDASIM is a nonzero number, as Numba reads it: CUDA kernels
    run on Numba's CPU simulator."""
    try:
        return int(os.environ.get("NUMBA_ENABLE_CUDASIM", "0")) != 0
    except ValueError:
        return False


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


def _holds(path, source):
    try:
        with open(path) as existing:
            return existing.read() == source
    except (OSError, UnicodeError):
        return False


def _shared_mode():
    """0666 less the umask: what open() gives a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def pasted(statements, indent):
    """Source lines of `statements` (a body's own, as text), each indented by `indent` spaces."""
    return [" " * indent + line for statement in statements for line in statement.splitlines()]


def module_imports(body, names):
    """Import lines for the names of `body`'s module that a pasted loop reads (scalar,
    math); a name the module lacks is left out, so the compiler names it as undefined."""
    module = sys.modules.get(body.__module__)
    return [f"from {body.__module__} import {name}" for name in names if hasattr(module, name)]


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
    An existing file is rewritten only if its contents differ from `source` (damaged, or
    cut short): its timestamp keys Numba's cache, so a rewrite also recompiles it. A new
    file is written then renamed, so a process reading it never sees half a file, and it
    is readable by others like any cache file (mkstemp would make it private).
    """
    digest = hashlib.sha1((source + inspect.getsource(body) + inspect.getsource(scalar)).encode()).hexdigest()[:12]
    module_name = f"{prefix}_{body.__module__.replace('.', '_')}_{body.__name__}_{digest}"
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, module_name + ".py")
    if not _holds(path, source):
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as out:
                out.write(source)
            os.chmod(temporary, _shared_mode())
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module.drive
