"""Compile every Numba kernel ahead, into the on-disk cache (`cli.py warmup`), on every core.

A kernel is one driver (a body's loop over a grid, serial or parallel) compiled for one
list of argument types. Warmup works in two steps:

1. `plan`: find the kernels by running every op's sample and every optimizer on the
   python backend with a recorder (loopnet.tools.kernels.launched_kernels). Each loop
   gets both drivers, serial and parallel (prange), since which one runs depends on the
   grid's size and on how long its first warm launches took (numba_backend.settle).
2. `compile_in_workers`: worker processes compile them into the shared cache, one body
   (all its kernels) at a time, and say how many Numba really compiled (none when the
   cache had them). One body never goes to two workers at once: Numba reads a
   function's cache index, adds an entry and writes it back without a lock, so two
   processes saving different signatures of one function could lose one, or file it
   under the other's machine code.

The parent compiles nothing and does not load the kernels again to count them: a worker
that returns has every kernel of its unit in the cache, and loading all of them once
more would take seconds (about 10 ms each).
"""

import multiprocessing
import os
import queue
import signal
from dataclasses import dataclass

import loopnet as ln
from loopnet.backends import numba_backend
from loopnet.errors import LoopnetError
from loopnet.tools.kernels import launched_kernels

WAIT = 0.5  # seconds: how often the parent, waiting for its workers, looks up


class WarmupError(LoopnetError, RuntimeError):
    """A kernel that failed to compile in a worker, or a worker that died: one line."""


@dataclass
class Unit:
    """One unit of work: every kernel of one body, compiled by one worker."""
    body: object  # the op file's function (pickled by reference: module and name)
    kernels: list  # [(grid rank, parallel, argument types)]

    @property
    def name(self):
        return self.body.__name__


def plan(dtypes=("float64", "float32")):
    """The units of work for `dtypes`, the biggest first (so no long one starts last)."""
    units = []
    for body, launches in launched_kernels(dtypes).items():
        kernels = sorted({(rank, parallel, types) for rank, types in launches
                          for parallel in ((False, True) if rank > 0 else (False,))}, key=str)
        units.append(Unit(body, kernels))
    return sorted(units, key=lambda unit: (-len(unit.kernels), unit.name))


def default_jobs():
    return os.cpu_count() or 1


def count_drivers(units):
    """How many drivers the units hold: kernels counted once per body, grid rank and
    variant, whatever the dtypes."""
    return sum(len({(rank, parallel) for rank, parallel, _ in unit.kernels}) for unit in units)


def compile_in_workers(units, jobs=None, on_unit=None, on_wait=None):
    """Compile `units` in `jobs` worker processes (default: one per core). For progress,
    `on_unit(name)` is called as each one is done, and `on_wait()` every WAIT seconds in
    between. Returns how many kernels Numba really compiled (0 when the cache had them
    all). Leaving early for any reason (an error, Ctrl-C) stops the workers."""
    # "spawn": a fresh interpreter per worker. Forking a process in which Numba has
    # started threads (prange's, the compile line's) can leave a lock held forever.
    context = multiprocessing.get_context("spawn")
    todo, done = context.Queue(), context.Queue()
    workers = [context.Process(target=_work, args=(todo, done), daemon=True)
               for _ in range(min(jobs or default_jobs(), len(units)))]
    for unit in units + [None] * len(workers):  # None: no more work, stop
        todo.put(unit)
    for worker in workers:
        worker.start()
    compiled = 0
    try:
        for _ in units:
            name, count, error = _next_result(done, workers, on_wait)
            if error:
                raise WarmupError(error)
            compiled += count
            if on_unit is not None:
                on_unit(name)
    finally:
        todo.cancel_join_thread()  # units no worker took stay behind: do not wait to send them
        for worker in workers:
            worker.terminate()  # harmless for one that has finished
            worker.join()
    return compiled


def _next_result(done, workers, on_wait):
    """The next (name, compiled, error) a worker sends. A worker that dies (killed for
    memory, say) takes its unit with it: notice, instead of waiting for ever."""
    while True:
        try:
            return done.get(timeout=WAIT)
        except queue.Empty:
            if on_wait is not None:
                on_wait()
            dead = [worker.exitcode for worker in workers if worker.exitcode not in (None, 0)]
            if dead:
                raise WarmupError(f"a warmup worker died (exit code {dead[0]}); if memory ran out, "
                                  f"try fewer workers (--jobs)") from None


def _work(todo, done):
    """A worker's life: take units until told to stop, send back what each one did."""
    # Ctrl-C reaches every process in the terminal's group: only the parent acts on it
    # (it stops the workers). The parent draws the one progress bar, so a worker's own
    # compile line stays hidden; its count still runs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    numba_backend.progress.shown = False
    try:
        ln.use("numba")
        for unit in iter(todo.get, None):  # taking a unit imports its body's module
            done.put(_compile_unit(unit))
    except Exception as err:  # noqa: BLE001 - one line for the parent, not a traceback here
        done.put(("", 0, f"a warmup worker failed: {type(err).__name__}: {err}"))


def _compile_unit(unit):
    """Compile (or load from the cache) one body's kernels. Returns the body's name, how
    many kernels Numba really compiled, and an error as one line (None if all went well)."""
    before = numba_backend.kernels_compiled()
    try:
        for rank, parallel, types in unit.kernels:
            numba_backend.compile_kernel(unit.body, rank, parallel, types)
    except LoopnetError as err:
        return unit.name, 0, str(err)
    except Exception as err:  # noqa: BLE001 - a bug here must still reach the parent as one line
        return unit.name, 0, f"compiling {unit.name} failed: {type(err).__name__}: {err}"
    return unit.name, numba_backend.kernels_compiled() - before, None
