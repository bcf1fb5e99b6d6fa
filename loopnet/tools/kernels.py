"""Run every loop kernel loopnet has, once: the tools that compile ahead (warmup) or check
that every kernel compiles (ptx) find the kernels this way, by running them."""

import warnings

import numpy as np

import loopnet as ln
from loopnet import optim


def run_every_kernel(dtypes=("float64", "float32"), on_op=None):
    """On the current backend, for each dtype: every registered op's sample forward and
    backward (loopnet.testing.samples), and every optimizer's update with clipping.
    `on_op(name)` is called before each op (for progress)."""
    from hypothesis.errors import NonInteractiveExampleWarning

    from loopnet.testing.samples import SAMPLES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)  # .example() outside a test
        for name in ln.OPS:
            if on_op is not None:
                on_op(name)
            for dtype in dtypes:
                node = SAMPLES[name](np.dtype(dtype)).example()
                ln.forward(node)
                ln.backward(node)
    for dtype in dtypes:
        for name in optim.OPTIMIZERS:
            p = ln.Parameter(np.ones((2, 2), dtype))
            loss = ln.sum(ln.square(p))
            ln.forward(loss)
            ln.backward(loss)
            optim.make_optimizer(name, [p], 0.1, clip=1.0).step()
