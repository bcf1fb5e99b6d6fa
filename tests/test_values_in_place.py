"""Values changed in place (issue 14, items 2 and 3): the same on every backend, and never
silently stale. `.value` is a read-only view; assigning a new array is the way, and every
backend sees it. An optimizer's in-place step makes backward ask for a forward first."""

import numpy as np
import pytest

import loopnet as ln
from loopnet.errors import GraphError
from loopnet.optim import make_optimizer

BACKENDS = ["python", "numba", "cuda"]


def graph():
    W = ln.Parameter(np.array([[0.5, -1.0], [2.0, 0.25]]), name="W")
    x = ln.Input(np.array([[1.0, 2.0]]), name="x")
    return W, x, ln.sum(ln.square(ln.matmul(x, W)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_writing_into_value_is_refused_on_every_backend(backend):
    W, x, loss = graph()
    with ln.use(backend):
        ln.forward(loss)
        for node in (W, x, loss):
            with pytest.raises(ValueError, match="read-only"):
                node.value[...] = 5
        with pytest.raises(ValueError, match="read-only"):
            W.value[0, 0] += 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_assigning_a_new_value_is_seen_by_every_backend(backend):
    W, x, loss = graph()
    with ln.use(backend):
        before = float(ln.forward(loss))
        changed = np.array(W.value)
        changed[0, 0] += 5
        W.value = changed
        after = float(ln.forward(loss))
    assert before == 4.5 ** 2 + 0.5 ** 2 and after == pytest.approx((5.5 + 4.0) ** 2 + 0.5 ** 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_after_an_optimizer_step_asks_for_a_forward(backend):
    W, x, loss = graph()
    with ln.use(backend):
        ln.forward(loss)
        ln.backward(loss)
        make_optimizer("sgd", [W], 0.1).step()
        with pytest.raises(GraphError, match="is stale"):
            ln.backward(loss)
        ln.forward(loss)
        ln.backward(loss)  # fresh again
        fresh = np.array(W.grad)
    expected = 2 * x.value.T @ (x.value @ W.value)
    np.testing.assert_allclose(fresh, expected, rtol=1e-12)


def test_values_stay_writable_inside_the_loops():
    from loopnet import graph as engine

    W, _, loss = graph()
    ln.forward(loss)
    with engine.kernel_side():
        assert W.value.flags.writeable
    assert not W.value.flags.writeable and not loss.value.flags.writeable
