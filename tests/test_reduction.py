"""Declared reductions (loopnet.reduction): the bodies that sum everything into one number
split their own loop on the compiled backends (numba: parallel chunks; cuda: a
shared-memory tree), and give the body's answer; declarations that do not fit are refused."""

import ast
import importlib.util
import os
import re
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopnet import optim
from loopnet.backends import cuda_backend, numba_backend, python_backend
from loopnet.ops import cross_entropy, losses, reductions
from loopnet.reduction import read, reduction
from loopnet.errors import BackendError
from loopnet.schedule import ScheduleError

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "loopnet")
CHUNK = numba_backend.CHUNK

DECLARED = {
    reductions.sum_forward: lambda n, dt, rng: [rng.standard_normal(n).astype(dt), np.zeros(1, dt)],
    reductions.mean_forward: lambda n, dt, rng: [rng.standard_normal(n).astype(dt), np.zeros(1, dt)],
    losses.mse_loss_forward: lambda n, dt, rng: [rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt), np.zeros(1, dt)],
    losses.logistic_loss_forward: lambda n, dt, rng: [rng.standard_normal(n).astype(dt), rng.choice([-1.0, 1.0], n).astype(dt), np.zeros(1, dt)],
    losses.hinge_loss_forward: lambda n, dt, rng: [rng.standard_normal(n).astype(dt), rng.choice([-1.0, 1.0], n).astype(dt), np.zeros(1, dt)],
    losses.binary_cross_entropy_forward: lambda n, dt, rng: [rng.uniform(0.01, 0.99, n).astype(dt), rng.integers(0, 2, n).astype(dt), np.zeros(1, dt)],
    cross_entropy.softmax_cross_entropy_forward: lambda n, dt, rng: [rng.standard_normal((n, 3)).astype(dt), rng.integers(0, 3, n), np.zeros(1, dt)],
    optim.add_sum_of_squares: lambda n, dt, rng: [rng.standard_normal(n).astype(dt), np.full(1, 0.5)],
}


def grid_of_one_bodies():
    """Every body the package runs with `loop(body, (), ...)`: the whole sum is one output."""
    found = set()
    for directory, _, files in os.walk(PACKAGE):
        for file in (f for f in files if f.endswith(".py")):
            source = open(os.path.join(directory, file)).read()
            found |= set(re.findall(r"loop\((?:self\.)?(\w+), \(\),", source))
    return found


def test_every_sum_to_one_number_is_declared():
    names = {body.__name__ for body in DECLARED}
    run_on_one_point = grid_of_one_bodies()
    assert "forward_body" in run_on_one_point  # sum, mean and the pair losses pass their body by attribute
    assert run_on_one_point - {"forward_body"} <= names
    for body in DECLARED:
        assert body.reduction.accumulator == "acc"


def equal_results(got, want, dtype):
    tolerance = 1e-12 if np.dtype(dtype) == np.float64 else 2e-7
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("body", DECLARED, ids=lambda f: f.__name__)
@settings(max_examples=6, deadline=None)
@given(n=st.sampled_from([1, 5, 2 * CHUNK - 1, 2 * CHUNK, 2 * CHUNK + 1, 3 * CHUNK + 17]), seed=st.integers(0, 99))
def test_numba_splits_the_loop_and_gives_the_body_answer(body, dtype, n, seed):
    args = DECLARED[body](n, dtype, np.random.default_rng(seed))
    want = [a.copy() for a in args]
    python_backend.loop(body, (), want)
    numba_backend.check_available()
    numba_backend.loop(body, (), args)
    equal_results(args, want, dtype)


def test_the_numba_driver_pastes_the_bodys_loop_into_parallel_chunks():
    source = numba_backend._driver_source(losses.mse_loss_forward, 0, False)
    assert "prange(reduce_chunks)" in source and "d = a[i] - b[i]" in source and "acc += d * d" in source
    assert f"if reduce_extent < {2 * CHUNK}:\n        reduce_body(a, b, L)" in source  # short sums run the body
    ast.parse(source)


def test_a_body_from_a_script_runs_as_written(tmp_path):
    namespace = {"reduction": reduction}
    path = tmp_path / "script_body.py"
    path.write_text("@reduction\ndef total(x, y):\n    acc = 0.0\n    for i in range(x.shape[0]):\n        acc += x[i]\n    y[0] = acc\n")
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # linecache-free: getsource reads the file
    assert "prange" not in numba_backend._driver_source(namespace["total"], 0, False)
    assert "reduce_shares" not in cuda_backend.driver_source(namespace["total"], 0)


@pytest.mark.parametrize("body", DECLARED, ids=lambda f: f.__name__)
def test_cuda_adds_the_threads_shares_in_a_tree(body):
    cuda_backend.check_available()
    for n, seed in ((1, 0), (cuda_backend.threads_per_block() + 37, 1)):  # one share; shares of two sizes
        args = DECLARED[body](n, np.float64, np.random.default_rng(seed))
        want = [a.copy() for a in args]
        python_backend.loop(body, (), want)
        device = [cuda_backend.adopt(a) for a in args]
        cuda_backend.loop(body, (), device)
        equal_results([cuda_backend.to_host(a) for a in device], want, np.float64)


def declared_in(tmp_path, source):
    path = tmp_path / "candidate.py"
    path.write_text("from loopnet import scalar\n\n" + source)
    spec = importlib.util.spec_from_file_location("candidate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return read(module.body)


@pytest.mark.parametrize("loop,message", [
    ("    acc = 0.0\n    y[0] = acc\n", "one top-level for loop; this body has 0"),
    ("    acc = 0.0\n    for i in range(3):\n        acc += x[i]\n    for i in range(3):\n        acc += x[i]\n    y[0] = acc\n", "has 2"),
    ("    acc = 0.0\n    for i in range(1, 3):\n        acc += x[i]\n    y[0] = acc\n", "range\\(EXTENT\\)"),
    ("    acc = 0.0\n    for i in x:\n        acc += i\n    y[0] = acc\n", "range\\(EXTENT\\)"),
    ("    acc = 0.0\n    for i in range(3):\n        acc += x[i]\n    else:\n        pass\n    y[0] = acc\n", "no else"),
    ("    acc = top = 0.0\n    for i in range(3):\n        acc += x[i]\n        top += x[i]\n    y[0] = acc\n", "exactly one accumulator"),
    ("    acc = 0.0\n    for i in range(3):\n        acc *= x[i]\n    y[0] = acc\n", "exactly one accumulator"),
    ("    acc = 0.0\n    for i in range(3):\n        acc += x[i]\n        acc *= 2\n    y[0] = acc\n", "only add into 'acc'"),
    ("    acc = 0.0\n    for i in range(3):\n        acc += x[i] * acc\n    y[0] = acc\n", "reads 'acc'"),
    ("    acc = 0.0\n    for i in range(3):\n        acc += x[i]\n        acc = 0.0\n    y[0] = acc\n", "assigns 'acc'"),
    ("    acc = 0.0\n    for i in range(3):\n        acc += x[i]\n        y[i] = 0.0\n", "writes y\\[i\\]"),
    ("    acc = 0.0\n    for i in range(3):\n        if x[i] > 0:\n            break\n        acc += x[i]\n    y[0] = acc\n", "may not break"),
    ("    acc = 0.0\n    for i in range(3):\n        acc += x[i]\n        return\n", "may not return"),
    ("    acc = 1.0\n    for i in range(3):\n        acc += x[i]\n    y[0] = acc\n", "must start at zero"),
    ("    for i in range(3):\n        acc += x[i]\n    y[0] = acc\n", "must start at zero"),
    ("    y[1] = 2.0\n    acc = 0.0\n    for i in range(3):\n        acc += x[i]\n    y[0] = acc\n", "only names may be assigned"),
    ("    acc = 0.0\n    for i in range(3):\n        last = x[i]\n        acc += last\n    y[0] = acc + last\n", "reads \\['last'\\], set inside it"),
    ("    acc = 0.0\n    for i in range(3):\n        acc += x[i]\n    y[0] = acc + i\n", "reads \\['i'\\]"),
    ("    reduce_extent = 1\n    acc = 0.0\n    for i in range(3):\n        acc += x[i]\n    y[0] = acc\n", "reduce_ are the split loop's own"),
    # a value carried from one pass to the next (each would start a chunk or thread wrong)
    ("    prev = x[0]\n    acc = 0.0\n    for i in range(3):\n        acc += abs(x[i] - prev)\n        prev = x[i]\n    y[0] = acc\n",
     "reads \\['prev'\\] before the pass sets it"),
    ("    s = 0.0\n    acc = 0.0\n    for i in range(3):\n        s = s + x[i]\n        acc += s\n    y[0] = acc\n", "reads \\['s'\\] before"),
    ("    acc = 0.0\n    for i in range(3):\n        if x[i] > 0:\n            last = x[i]\n        acc += last\n    y[0] = acc\n", "reads \\['last'\\] before"),
    ("    scale = 2.0\n    acc = 0.0\n    for i in range(3):\n        acc += x[i] * scale\n        scale = 1.0\n    y[0] = acc\n", "reads \\['scale'\\] before"),
    ("    acc = 0.0\n    for i in range(3):\n        for k in range(2):\n            t = x[k]\n        acc += t\n    y[0] = acc\n", "reads \\['t'\\] before"),
])
def test_a_loop_that_cannot_be_split_is_refused(tmp_path, loop, message):
    with pytest.raises(ScheduleError, match=message):
        declared_in(tmp_path, "def body(x, y):\n" + loop)


def test_the_refusal_names_the_body_and_the_module(tmp_path):
    with pytest.raises(ScheduleError, match=r"^@reduction on body: .*\(see loopnet.reduction\)$"):
        declared_in(tmp_path, "def body(x, y):\n    y[0] = 1.0\n")


def test_what_the_loop_reads_from_its_module_is_imported_by_the_driver(tmp_path):
    declared = declared_in(tmp_path, "import math\n\ndef body(x, y):\n    scale = math.pi\n    acc = scalar.zero64()\n"
                                     "    for i in range(len(x)):\n        acc -= abs(x[i]) * scale\n    y[0] = acc\n")
    assert declared.globals == ("math", "scalar")  # builtins (len, abs, range) are not imported
    assert declared.before == ("scale = math.pi",) and declared.term == ("acc -= abs(x[i]) * scale",)


def test_values_set_earlier_in_the_same_pass_are_accepted(tmp_path):
    declared = declared_in(tmp_path, "def body(x, y):\n    acc = 0.0\n    for i in range(x.shape[0]):\n"
                                     "        if x[i] > 0:\n            v = x[i]\n        else:\n            v = -x[i]\n"
                                     "        t = 0.0\n        for k in range(2):\n            t = t + v\n"
                                     "        if t > 1:\n            continue\n        acc += t\n    y[0] = acc\n")
    assert declared.term[-1] == "acc += t"


def test_a_lambda_or_a_body_without_a_file_is_refused_in_one_line():
    with pytest.raises(ScheduleError, match="not a lambda"):
        reduction(lambda x, y: None)
    namespace = {}
    exec("def made(x, y):\n    acc = 0.0\n    for i in range(2):\n        acc += x[i]\n    y[0] = acc\n", namespace)
    with pytest.raises(ScheduleError, match="its source cannot be read"):
        reduction(namespace["made"])


def importable_body(tmp_path, name, source):
    """A declared body in a module of its own, importable as the backends need."""
    path = tmp_path / f"{name}.py"
    path.write_text("import math\nfrom loopnet import scalar\nfrom loopnet.reduction import reduction\n\n" + source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.body


def test_names_set_before_the_loop_are_there_for_its_extent(tmp_path):
    body = importable_body(tmp_path, f"extent_{os.getpid()}", "@reduction\ndef body(x, y):\n    n = x.shape[0]\n"
                           "    acc = scalar.zero64()\n    for i in range(n):\n        acc += x[i]\n    y[0] = acc / n\n")
    x = np.random.default_rng(0).standard_normal(3 * CHUNK)
    want, got = np.zeros(1), np.zeros(1)
    python_backend.loop(body, (), (x, want))
    numba_backend.check_available()
    numba_backend.loop(body, (), (x, got))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_misspelled_name_in_a_declared_loop_is_a_backend_error(tmp_path):
    body = importable_body(tmp_path, f"misspelled_{os.getpid()}", "@reduction\ndef body(x, y):\n    acc = 0.0\n"
                           "    for i in range(x.shape[0]):\n        acc += scal.exp(x[i])\n    y[0] = acc\n")
    numba_backend.check_available()
    with pytest.raises(BackendError, match="numba could not compile"):
        numba_backend.loop(body, (), (np.zeros(3 * CHUNK), np.zeros(1)))
