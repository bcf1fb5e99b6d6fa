"""Hypothesis strategies for testing ops and graphs, usable with `@given` anywhere.

    from hypothesis import given
    from loopnet.testing import strategies as lst

    @given(lst.arrays(lst.shapes(), avoid=(0.0,)))
    def test_relu(values):
        x = ln.Parameter(values)
        assert_gradcheck(ln.sum(ln.relu(x)))
"""

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import loopnet as ln


def shapes(min_dims=1, max_dims=3, min_side=1, max_side=4):
    """Array shapes, e.g. (3,), (1, 4), (2, 1, 3). Small sides keep gradchecks fast."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def sizes(min_value=1, max_value=4):
    """One axis length."""
    return st.integers(min_value, max_value)


def _push_away(values, avoid, margin):
    # Move any element closer than `margin` to a kink out to exactly `margin` away, so
    # the finite difference never straddles it (its derivative is one-sided there).
    for point in avoid:
        near = np.abs(values - point) < margin
        values[near] = point + np.where(values[near] >= point, margin, -margin)
    return values


def arrays(shape, dtype=np.float64, min_value=-3.0, max_value=3.0, avoid=(), margin=1e-2):
    """Finite float arrays of `shape` (a tuple or a strategy), elements in [min, max].

    avoid: points where the function has a kink (0 for relu and abs); every element is
    kept at least `margin` away from each, so central differences stay valid.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float32:  # Hypothesis wants bounds that float32 can represent exactly
        min_value, max_value = float(np.float32(min_value)), float(np.float32(max_value))
    elements = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False,
                         width=32 if dtype == np.float32 else 64)
    strategy = hnp.arrays(dtype, shape, elements=elements)
    if avoid:
        strategy = strategy.map(lambda a: _push_away(np.array(a), tuple(avoid), margin).astype(dtype))
    return strategy


def positive_arrays(shape, dtype=np.float64, min_value=0.1, max_value=3.0):
    """Arrays away from zero and above it: inputs for log, or divisors."""
    return arrays(shape, dtype, min_value, max_value)


def labels(n, classes):
    """n integer class labels in [0, classes), as an int64 array."""
    return hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1))


def signs(shape):
    """Arrays of -1.0 and +1.0: labels for logistic_loss and hinge_loss."""
    return hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0]))


class RandomGraph(NamedTuple):
    output: object  # the scalar node at the end
    parameters: list  # the leaves it depends on
    nodes: list  # every node built, in build order


_UNARY = (ln.tanh, ln.sigmoid)
_BINARY = (ln.add, ln.sub, ln.mul)


@st.composite
def graphs(draw, max_ops=6, shape=None, dtype=np.float64):
    """Small random graphs of smooth ops over one shape, ending in a scalar `sum`.

    Nodes are reused as inputs of later ops (fan-out), and the first parameter always
    feeds the last two ops, so gradient accumulation (`+=` from several consumers) is
    exercised in every graph.
    """
    shape = draw(shapes(1, 2, 1, 3)) if shape is None else shape
    parameters = [
        ln.Parameter(draw(arrays(shape, dtype, -2.0, 2.0)), name=f"p{i}")
        for i in range(draw(st.integers(1, 3)))
    ]
    nodes = list(parameters)
    for _ in range(draw(st.integers(1, max_ops))):
        if draw(st.booleans()):
            op = draw(st.sampled_from(_UNARY))
            nodes.append(op(draw(st.sampled_from(nodes))))
        else:
            op = draw(st.sampled_from(_BINARY))
            nodes.append(op(draw(st.sampled_from(nodes)), draw(st.sampled_from(nodes))))
    product = ln.mul(nodes[-1], parameters[0])
    last = ln.add(product, parameters[0])  # fan-out: parameters[0] feeds at least these two ops
    nodes += [product, last]
    output = ln.sum(last)
    nodes.append(output)
    return RandomGraph(output, parameters, nodes)
