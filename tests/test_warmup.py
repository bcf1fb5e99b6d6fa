"""`cli.py warmup` and the compile progress: what compiles, what is counted, what is shown.

Each command runs in a fresh process with its own LOOPNET_CACHE_DIR under tmp_path: Numba
reads its cache directory once per process, and the user's cache must stay untouched.
The op set is shrunk to relu (and no optimizers) so that a cold compile takes seconds.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import loopnet as ln
from loopnet import data as datasets, models, optim, targets, tracing
from loopnet.backends import get_backend, python_backend
from loopnet.tools import kernels, warmup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The CLI with only relu's kernels (2 bodies: forward and grad, serial and parallel).
SMALL_CLI = """
import sys
import loopnet as ln
from loopnet import optim
from loopnet.cli import main
if __name__ == "__main__":
    ln.OPS = {"relu": ln.OPS["relu"]}
    optim.OPTIMIZERS = {}
    main(sys.argv[1:])
"""

# Runs relu forward and backward on numba, counting every compile Numba announces.
LAZY_RUN = """
import json
import numpy as np
import loopnet as ln
from loopnet.backends import numba_backend
from numba.core import event

events = []
class Every(event.Listener):
    def on_start(self, ev): events.append(ev.data["dispatcher"].py_func.__name__)
    def on_end(self, ev): pass
event.register("numba:compile", Every())
with ln.use("numba"):
    y = ln.relu(ln.Parameter(np.array([-1.0, 2.0])))
    ln.forward(y)
    ln.backward(y)
print(json.dumps({"drivers": numba_backend.kernels_compiled(), "events": events}))
"""


def run_python(code, cache, *args):
    env = dict(os.environ, LOOPNET_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def first_warmup(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, run_python(SMALL_CLI, cache, "warmup", "--dtype", "float64", "--jobs", "1")


def test_warmup_compiles_into_an_empty_cache_and_reports_the_count(first_warmup):
    cache, result = first_warmup
    assert result.returncode == 0, result.stderr
    # relu_forward and relu_grad_x, each serial and parallel, for float64
    assert "compiled 4 kernels: 4 drivers ready for float64" in result.stdout
    assert f"cache: {cache}" in result.stdout
    assert len(os.listdir(cache / "numba" / "drivers")) == 4
    assert "compiling (1 worker)" in result.stderr and "Traceback" not in result.stderr


def test_a_second_warmup_says_nothing_needed_compiling(first_warmup):
    cache, _ = first_warmup
    result = run_python(SMALL_CLI, cache, "warmup", "--dtype", "float64", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "nothing to compile: all 4 drivers for float64 were already in the cache" in result.stdout


@pytest.fixture(scope="module")
def lazy_run(tmp_path_factory):
    result = run_python(LAZY_RUN, tmp_path_factory.mktemp("cache"))
    assert result.returncode == 0, result.stderr
    return result


def test_compile_progress_off_a_terminal_is_one_line_at_the_start_and_one_at_the_end(lazy_run):
    lines = lazy_run.stderr.splitlines()
    assert len(lines) == 2, lazy_run.stderr
    assert lines[0] == "compiling kernels..."
    assert lines[1].startswith("compiled 2 kernels in ") and lines[1].endswith("later runs load them from the cache")
    assert lazy_run.stdout.startswith("{")  # stdout holds only what the program printed


def test_the_summary_says_which_kernels_a_later_run_loads_from_the_cache():
    from loopnet.backends.compile_progress import summary

    assert summary(2, 0, 1.26) == "compiled 2 kernels in 1.3 s; later runs load them from the cache"
    assert summary(3, 1, 2.0) == ("compiled 3 kernels in 2.0 s; later runs load them from the cache, but for 1 "
                                  "compiled in memory (a body in a script or notebook, or no usable cache), "
                                  "which compile again in every run")
    assert summary(4, 4, 3.3) == ("compiled 4 kernels in 3.3 s, in memory (a body in a script or notebook, or no "
                                  "usable cache): they compile again in every run")
    assert summary(1, 1, 0.7).endswith("usable cache): it compiles again in every run")
    assert summary(1, 0, 0.7) == "compiled 1 kernel in 0.7 s; later runs load it from the cache"


def test_the_compile_counter_counts_drivers_not_the_bodies_compiled_inside_them(lazy_run):
    report = json.loads(lazy_run.stdout)
    assert sorted(report["events"]) == ["drive", "drive", "relu_forward", "relu_grad_x"]
    assert report["drivers"] == 2


def test_a_kernel_that_fails_in_a_worker_comes_back_as_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOPNET_CACHE_DIR", str(tmp_path))  # the worker's cache
    unit = warmup.Unit(not_compilable, [(1, False, get_backend("numba").signature((2,), (np.zeros(2),)))])
    with pytest.raises(warmup.WarmupError) as caught:
        warmup.compile_in_workers([unit], jobs=1)
    message = str(caught.value)
    assert "numba could not compile" in message and "not_compilable" in message and "\n" not in message


def not_compilable(i, x):
    x[i] = object()  # Numba cannot type an object


def launches(run):
    """{(body, grid rank, Numba argument types)} of every loop `run()` starts on the python backend."""
    recorder = kernels._Recorder(get_backend("numba").signature)
    saved, python_backend.watcher = python_backend.watcher, recorder
    try:
        with ln.use("python"):
            run()
    finally:
        python_backend.watcher = saved
    return {(body, rank, types) for body, found in recorder.kernels.items() for rank, types in found}


def planned():
    return {(unit.body, rank, types) for unit in warmup.plan() for rank, _, types in unit.kernels}


def run_targets_and_models():
    """What trace, train and evaluate run: every trace target (as built, and in each
    dtype), and a training step and a prediction of every model in each dtype."""
    for name in targets.TARGETS:
        for dtype in (None, "float64", "float32"):
            node = targets.build_target(name)
            if dtype:
                ln.set_dtype(node, dtype)
            tracing.trace(node)
    for name, spec in models.MODELS.items():
        data = datasets.load(spec.data)
        for dtype in ("float64", "float32"):
            model = models.build(name, data.input_shape, data.classes, dtype=dtype, channels=2,
                                 width=4 if name != "xor" else None, dropout=0.2 if "dropout" in spec.uses else 0.0)
            model.set_batch(data.train.x[:3], data.train.y[:3])
            ln.forward(model.loss)
            ln.backward(model.loss)
            optim.make_optimizer(spec.optimizer, model.params, spec.lr, 0.9, 1e-4, 1.0).step()
            model.predict(data.val.x[:5])


def test_warmup_plans_every_kernel_the_models_and_trace_targets_launch():
    missing = launches(run_targets_and_models) - planned()
    assert not missing, sorted(f"{body.__name__} {types}" for body, _, types in missing)


def test_warmup_plans_every_kernel_many_more_sample_draws_launch(monkeypatch):
    # warmup draws EXAMPLES samples per op; a branch only later draws take would be missed
    plan = planned()
    monkeypatch.setattr(kernels, "EXAMPLES", 12)
    missing = launches(kernels.run_every_kernel) - plan
    assert not missing, sorted(f"{body.__name__} {types}" for body, _, types in missing)
