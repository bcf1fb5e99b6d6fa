"""Run every loop kernel loopnet has, once: the tools that compile ahead (warmup) or check
that every kernel compiles (ptx) find the kernels this way, by running them."""

import itertools
from collections import defaultdict

import numpy as np

import loopnet as ln
from loopnet import optim


EXAMPLES = 4  # samples per op and dtype: the simplest one, then larger ones


def run_every_kernel(dtypes=("float64", "float32"), on_op=None):
    """On the current backend, for each dtype: every registered op's samples forward and
    backward (loopnet.testing.samples; see `examples`), and every optimizer's update with
    clipping. `on_op(name)` is called before each op (for progress)."""
    from loopnet.testing.samples import SAMPLES

    for name in ln.OPS:
        if on_op is not None:
            on_op(name)
        for dtype in dtypes:
            for node in examples(SAMPLES[name](np.dtype(dtype))):
                ln.forward(node)
                ln.backward(node)
    for dtype in dtypes:
        for name in optim.OPTIMIZERS:
            p = ln.Parameter(np.ones((2, 2), dtype))
            loss = ln.sum(ln.square(p))
            ln.forward(loss)
            ln.backward(loss)
            optim.make_optimizer(name, [p], 0.1, clip=1.0).step()


def examples(strategy, count=None):
    """The first `count` (default EXAMPLES) examples Hypothesis draws from `strategy`,
    the same ones on every run (derandomized): a tool that finds kernels by running
    samples must find the same ones each time, or a second warmup would compile what a
    random draw missed. The first example is the simplest (sizes of 1, the first choice
    everywhere); the next ones take the other branches where a sample picks one (bmm's
    transpose_b, dropout's p), which tests/test_warmup.py checks against more draws."""
    from hypothesis import HealthCheck, Phase, given, seed, settings

    count, found = count or EXAMPLES, []

    @given(strategy)
    @seed(0)  # derandomize alone drew different examples depending on the tests run before
    @settings(derandomize=True, max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    def collect(example):
        found.append(example)

    collect()
    return found[:count]


class _Recorder:
    """Stands in for the python backend's loop (its `watcher` hook): notes each loop's
    body, grid rank and argument types, then runs it as usual. It must run it: what a
    later loop launches can hang on the values (clipping scales the grads only when
    their norm is over the limit)."""

    def __init__(self, signature):
        self.signature = signature
        self.kernels = defaultdict(set)  # body -> {(grid rank, argument types)}

    def run(self, body, grid, args):
        self.kernels[body].add((len(grid), self.signature(grid, args)))
        for index in itertools.product(*(range(n) for n in grid)):
            body(*index, *args)


def launched_kernels(dtypes=("float64", "float32"), signature=None, transposes_as_views=False):
    """{body: {(grid rank, argument types)}} for every loop `run_every_kernel` launches,
    found by running it on the python backend (fast: the samples are small).
    `signature(grid, args)` gives the argument types; by default Numba's, as its
    drivers see them (grid sizes first, then the arrays and scalars). With
    `transposes_as_views`, loops.transposed gives views as on cuda (their layout is
    part of a kernel's types), not the python backend's copies."""
    from loopnet.backends import get_backend, python_backend

    recorder = _Recorder(signature or get_backend("numba").signature)
    saved, python_backend.watcher = python_backend.watcher, recorder
    if transposes_as_views:  # what loops.transposed does on cuda (see its docstring)
        python_backend.transposed_view = _transpose_view
    try:
        with ln.use("python"):
            run_every_kernel(dtypes)
    finally:
        python_backend.watcher = saved
        python_backend.__dict__.pop("transposed_view", None)
    return dict(recorder.kernels)


def _transpose_view(matrix):
    return matrix.T
