"""Declared reductions (loopnet.reduction): the bodies that sum everything into one number
split their own loop on the compiled backends (numba: parallel chunks; cuda: a
shared-memory tree), and give the body's answer; declarations that do not fit are refused."""

import ast
import importlib.util
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopnet import optim
from loopnet.backends import cuda_backend, numba_backend, python_backend
from loopnet.ops import cross_entropy, losses, reductions
from loopnet.reduction import read, reduction
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
    for n, seed in ((1, 0), (cuda_backend.THREADS_PER_BLOCK + 37, 1)):  # one share; shares of two sizes
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
