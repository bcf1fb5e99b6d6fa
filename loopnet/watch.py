"""Watching the Python backend's loops: work counts and the ownership (race) check.

    with watch() as w:               # Python backend only
        forward(loss); backward(loss)
    w.counts[node.name]["backward"]  # {"mul": ..., "add": ..., "reads": ..., "writes": ...}

Inside `watch`, each loop body gets its arrays wrapped in recorders (as GPU-Puzzles wraps
its kernels' memory): every element read and written is counted, every value read is a
float that counts the multiplications and additions done with it, and every write
remembers which grid point made it. If two grid points of one loop write the same
element, the loop is not race-free on prange or CUDA threads: OwnershipError names
both. The op files are not changed.
"""

import contextlib
import itertools
from collections import defaultdict

from loopnet import graph
from loopnet.backends import current_backend, python_backend
from loopnet.errors import LoopnetError


class OwnershipError(LoopnetError, AssertionError):
    """Two grid points of one loop wrote the same element: a race on parallel backends."""


class _Counter:
    def __init__(self):
        self.mul = self.add = self.reads = self.writes = 0


class CountingFloat(float):
    """A float that counts the arithmetic done with it (and stays counting)."""

    __array_ufunc__ = None  # NumPy scalars then defer to our reflected operators
    counter = None

    def _result(self, value, kind):
        setattr(CountingFloat.counter, kind, getattr(CountingFloat.counter, kind) + 1)
        return CountingFloat(value)

    def __add__(self, other): return self._result(float(self) + float(other), "add")
    def __radd__(self, other): return self._result(float(other) + float(self), "add")
    def __sub__(self, other): return self._result(float(self) - float(other), "add")
    def __rsub__(self, other): return self._result(float(other) - float(self), "add")
    def __mul__(self, other): return self._result(float(self) * float(other), "mul")
    def __rmul__(self, other): return self._result(float(other) * float(self), "mul")
    def __truediv__(self, other): return self._result(float(self) / float(other), "mul")
    def __rtruediv__(self, other): return self._result(float(other) / float(self), "mul")
    def __neg__(self): return CountingFloat(-float(self))


class WatchedArray:
    """An array as a loop body sees it, with every read and write recorded."""

    def __init__(self, array, watch):
        self.array, self.watch, self.owner = array, watch, {}
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, index):
        self.watch.counter.reads += 1
        value = self.array[index]
        return CountingFloat(value) if self.dtype.kind == "f" else value

    def __setitem__(self, index, value):
        self.watch.counter.writes += 1
        key = index if isinstance(index, tuple) else (index,)
        point = self.watch.point
        if self.watch.check_ownership:
            first = self.owner.setdefault(key, point)
            if first != point:
                raise OwnershipError(
                    f"loop {self.watch.body.__module__}.{self.watch.body.__name__}: grid points {first} and {point} "
                    f"both write element {list(key)}; gather form needs each element owned by one grid point"
                )
        self.array[index] = float(value)


class Watch:
    def __init__(self, counts, check_ownership):
        self.counts_enabled, self.check_ownership = counts, check_ownership
        self.counts = defaultdict(lambda: {"forward": _Counter(), "backward": _Counter()})
        self.counter = _Counter()  # where the running loop's counts go
        self.point = self.body = None

    def run(self, body, grid, args):
        node, phase = graph.current_step if graph.current_step else ("(outside a graph)", "forward")
        name = getattr(node, "name", node)
        self.counter = self.counts[name][phase]
        CountingFloat.counter = self.counter
        self.body = body
        wrapped = [WatchedArray(a, self) if hasattr(a, "shape") and hasattr(a, "dtype") and a.shape != ()
                   else a for a in args]
        for index in itertools.product(*(range(n) for n in grid)):
            self.point = index
            body(*index, *wrapped)

    def table(self):
        """Per node: counts of its forward and backward loops, as plain dicts."""
        return {
            name: {phase: vars(counter).copy() for phase, counter in phases.items()}
            for name, phases in self.counts.items()
        }


@contextlib.contextmanager
def watch(counts=True, check_ownership=True):
    """Record reads, writes, arithmetic and write ownership of every loop run inside."""
    if current_backend() is not python_backend:
        raise LoopnetError("watch() records the Python backend's loops: run inside ln.use('python')")
    watcher = Watch(counts, check_ownership)
    previous, python_backend.watcher = python_backend.watcher, watcher
    try:
        yield watcher
    finally:
        python_backend.watcher = previous
