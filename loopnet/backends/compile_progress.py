"""Compile progress for the numba backend: what Numba compiles, shown while it compiles.

A cache miss costs a second or more per kernel; a silent wait that long looks like a hang,
so every compile of a loopnet driver is shown on stderr while it runs (stdout stays clean
for `trace --format json`), and loading from the cache stays silent. The numba backend
installs `progress` when it starts; warmup reads its count.
"""

import atexit
import os
import re
import sys
import threading
import time
from dataclasses import dataclass

_DRIVER_MODULE = re.compile(r"loopnet_drv_(\d+)([ps])_")  # see numba_backend._load_driver's prefix


def _kernel_name(dispatcher):
    """`affine_grad_W (parallel)` for a loopnet driver; None for any other function,
    such as the op's body that a driver compiles inside itself (part of the driver's
    compile, not a kernel of its own)."""
    func = getattr(dispatcher, "py_func", None)
    match = _DRIVER_MODULE.match(getattr(func, "__module__", None) or "")
    if match is None:
        return None
    body = func.__globals__.get("body_source")
    name = getattr(body, "__name__", func.__module__)
    return f"{name} (parallel)" if match.group(2) == "p" else name


def _cached(dispatcher):
    """False for a driver compiled in memory (its body is in a script or a notebook)."""
    return not dispatcher.py_func.__module__.endswith("_in_memory")


@dataclass
class _Burst:
    """Compiles shown together: from the first one to the last before a pause."""
    terminal: bool  # stderr is a terminal: one line, redrawn in place
    started: float
    done: int = 0
    in_memory: int = 0  # of those done, kernels Numba cannot cache (see numba_backend._load_driver)
    seconds: float = 0.0  # spent compiling (the pauses between compiles not counted)
    current: str = None  # the kernel being compiled now, if any
    since: float = 0.0  # when the current compile started, or the last one ended
    width: int = 0  # length of the line on screen, so the next one can blank it out


def summary(done, in_memory, seconds):
    """The line that ends a burst: how many compiled, and which of them the next run loads
    from the cache instead of compiling again."""
    kernels = f"{done} kernel" + ("" if done == 1 else "s")
    why = "a body in a script or notebook, or no usable cache"
    if in_memory == done:
        again = "it compiles" if done == 1 else "they compile"
        return f"compiled {kernels} in {seconds:.1f} s, in memory ({why}): {again} again in every run"
    text = f"compiled {kernels} in {seconds:.1f} s; later runs load {'it' if done == 1 else 'them'} from the cache"
    if in_memory:
        text += f", but for {in_memory} compiled in memory ({why}), which compile again in every run"
    return text


class CompileProgress:
    """Shows what Numba compiles while it compiles, on stderr (stdout stays clean for
    `trace --format json`). Loading from the cache stays silent.

    Numba announces each compile as a "numba:compile" event; only loopnet's drivers are
    counted (see `_kernel_name`). On a terminal, while a kernel compiles, one line shows
    it and is redrawn in place every TICK seconds by a daemon thread. That thread gets its
    turn even during one long compile: Numba's Python code lets other threads in every few
    milliseconds, and LLVM runs in ctypes calls, which release the GIL.

        compiling kernels: 3 done, 2.4 s, now affine_grad_W (parallel)

    Between compiles the line is wiped, so what the program prints next starts on a clean
    line. Elsewhere (a log, a pipe) there is one line when compiling starts. Either way,
    when no compile has started for QUIET seconds, or at exit, a summary ends the burst:

        compiled 7 kernels in 4.9 s; later runs load them from the cache
    """

    TICK = 0.2  # seconds between redraws: the line moves at least twice a second
    QUIET = 0.5  # seconds without a compile that end a burst of compiles

    def __init__(self):
        self.lock = threading.Lock()  # the compiling thread and the drawing thread share the state
        self.shown = True  # warmup's workers turn it off: their parent draws one bar for all
        self.compiled = 0  # driver compiles in this process, shown or not
        self.burst = None
        self.installed = False

    def install(self):
        """Listen to Numba's compile events (once per process)."""
        if self.installed:
            return
        from numba.core import event

        progress = self

        class Listener(event.Listener):
            def on_start(self, ev):
                dispatcher = (ev.data or {}).get("dispatcher")
                name = _kernel_name(dispatcher)
                if name is not None:
                    progress.started(name)

            def on_end(self, ev):
                dispatcher = (ev.data or {}).get("dispatcher")
                if _kernel_name(dispatcher) is not None:
                    # Failed or not: look for the result. (Numba 0.68's `ev.is_failed`
                    # says the opposite of its name: True when there was no error.)
                    failed = tuple(ev.data["args"]) not in dispatcher.overloads
                    progress.ended(failed, _cached(dispatcher))

        event.register("numba:compile", Listener())
        atexit.register(self.finish)
        self.installed = True

    def started(self, name):
        with self.lock:
            now = time.perf_counter()
            if self.burst is None and self.shown:
                self.burst = _Burst(terminal=_is_terminal(sys.stderr), started=now)
                if not self.burst.terminal:
                    _write("compiling kernels...\n")
                threading.Thread(target=self._tick, args=(self.burst,), daemon=True).start()
            if self.burst is not None:
                self.burst.current, self.burst.since = name, now
                self._draw()

    def ended(self, failed, cached=True):
        with self.lock:
            self.compiled += 0 if failed else 1
            burst = self.burst
            if burst is None:
                return
            now = time.perf_counter()
            burst.done += 0 if failed else 1
            burst.in_memory += 0 if failed or cached else 1
            burst.seconds += now - burst.since
            burst.current, burst.since = None, now
            if failed:  # the error message comes next: end the burst before it
                self._summarise()
            else:
                self._draw()

    def finish(self):
        """End the burst now (at exit, where the drawing thread, a daemon, just stops)."""
        with self.lock:
            if self.burst is not None:
                self._summarise()

    def _tick(self, burst):
        """The drawing thread of one burst: redraw its line, and end it after a pause."""
        while True:
            time.sleep(self.TICK)
            with self.lock:
                if self.burst is not burst:  # ended already (a failed compile, or exit)
                    return
                if burst.current is None and time.perf_counter() - burst.since >= self.QUIET:
                    self._summarise()
                    return
                self._draw()

    def _draw(self):
        """On a terminal: the line while a kernel compiles, nothing between compiles."""
        burst = self.burst
        if not burst.terminal:
            return
        text = ""
        if burst.current is not None:
            text = (f"compiling kernels: {burst.done} done, {time.perf_counter() - burst.started:.1f} s, "
                    f"now {burst.current}")
        # a line longer than the terminal would wrap, and "\r" goes back only to its last row
        self._rewrite(text[:_columns() - 1])

    def _rewrite(self, text, end=""):
        """Go back to the start of the line and write `text` over what was there."""
        if not text and not end and self.burst.width == 0:
            return  # wiped already
        _write("\r" + text.ljust(self.burst.width) + ("\r" if not text else "") + end)
        self.burst.width = len(text)

    def _summarise(self):
        burst = self.burst
        if burst.done == 0:  # the only compile failed (or was interrupted): its error says enough
            if burst.terminal:
                self._rewrite("")
            self.burst = None
            return
        text = summary(burst.done, burst.in_memory, burst.seconds)
        if burst.terminal:
            self._rewrite(text, end="\n")
        else:
            _write(text + "\n")
        self.burst = None


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _columns():
    """The width of the terminal stderr writes to (80 where it does not say)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def _write(text):
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (ValueError, OSError):  # stderr closed (at exit, or a test runner's capture)
        pass


progress = CompileProgress()
