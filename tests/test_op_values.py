"""Forward values against NumPy references, properties, stability, and kink choices."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import loopnet as ln
from loopnet.testing.strategies import arrays, labels, shapes, sizes


def run(node):
    return np.asarray(ln.forward(node))


def np_log_softmax(z):
    top = z.max(axis=-1, keepdims=True)
    return z - top - np.log(np.exp(z - top).sum(axis=-1, keepdims=True))


# Each op's forward against the same math written with NumPy (a reference, not a kernel).
UNARY_REFERENCES = {
    ln.square: np.square, ln.exp: np.exp, ln.abs: np.abs, ln.tanh: np.tanh,
    ln.sigmoid: lambda x: 1 / (1 + np.exp(-x)), ln.relu: lambda x: np.maximum(x, 0),
    ln.leaky_relu: lambda x: np.where(x > 0, x, 0.01 * x),
    ln.softmax: lambda x: np.exp(np_log_softmax(x)), ln.log_softmax: np_log_softmax,
}


@pytest.mark.parametrize("op", UNARY_REFERENCES, ids=lambda op: op.__name__)
@given(values=arrays(shapes()))
def test_unary_forward_matches_numpy(op, values):
    np.testing.assert_allclose(run(op(ln.Input(values))), UNARY_REFERENCES[op](values), rtol=1e-12, atol=1e-15)


@given(arrays(shapes(), min_value=0.1))
def test_log_matches_numpy(values):
    np.testing.assert_allclose(run(ln.log(ln.Input(values))), np.log(values), rtol=1e-12)


@pytest.mark.parametrize("op,reference", [(ln.add, np.add), (ln.sub, np.subtract), (ln.mul, np.multiply),
                                          (ln.div, np.divide)], ids=["add", "sub", "mul", "div"])
@given(data=st.data())
def test_binary_forward_matches_numpy(op, reference, data):
    shape = data.draw(shapes())
    a, b = data.draw(arrays(shape)), data.draw(arrays(shape, avoid=(0.0,), margin=0.5))
    np.testing.assert_allclose(run(op(ln.Input(a), ln.Input(b))), reference(a, b), rtol=1e-12)


@given(data=st.data())
def test_matmul_and_affine_match_numpy(data):
    n, k, m = data.draw(sizes()), data.draw(sizes()), data.draw(sizes())
    A, B, c = data.draw(arrays((n, k))), data.draw(arrays((k, m))), data.draw(arrays((m,)))
    np.testing.assert_allclose(run(ln.matmul(ln.Input(A), ln.Input(B))), A @ B, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(run(ln.affine(ln.Input(A), ln.Input(B), ln.Input(c))), A @ B + c, rtol=1e-12, atol=1e-12)


@given(arrays(shapes()))
def test_sum_mean_reshape_flatten_match_numpy(values):
    x = ln.Input(values)
    assert run(ln.sum(x)) == pytest.approx(values.sum(), rel=1e-12, abs=1e-12)
    assert run(ln.mean(x)) == pytest.approx(values.mean(), rel=1e-12, abs=1e-12)
    np.testing.assert_array_equal(run(ln.reshape(x, (-1,))), values.reshape(-1))
    np.testing.assert_array_equal(run(ln.flatten(x)), values.reshape(values.shape[0], -1))


@given(data=st.data())
def test_losses_match_numpy(data):
    shape = data.draw(shapes())
    s, t = data.draw(arrays(shape)), data.draw(arrays(shape))
    y = np.where(data.draw(arrays(shape)) >= 0, 1.0, -1.0)
    p = data.draw(arrays(shape, min_value=0.01, max_value=0.99))
    q = data.draw(arrays(shape, min_value=0.0, max_value=1.0))
    S, Y = ln.Input(s), ln.Input(y)
    assert run(ln.mse_loss(S, ln.Input(t))) == pytest.approx(np.mean((s - t) ** 2), rel=1e-12)
    assert run(ln.logistic_loss(S, Y)) == pytest.approx(np.mean(np.log1p(np.exp(-y * s))), rel=1e-12)
    assert run(ln.hinge_loss(S, Y)) == pytest.approx(np.mean(np.maximum(0, 1 - y * s)), rel=1e-12, abs=1e-15)
    bce = np.mean(-q * np.log(p) - (1 - q) * np.log(1 - p))
    assert run(ln.binary_cross_entropy(ln.Input(p), ln.Input(q))) == pytest.approx(bce, rel=1e-12)


@given(data=st.data())
def test_softmax_cross_entropy_matches_numpy_and_is_nonnegative(data):
    n, k = data.draw(sizes()), data.draw(sizes())
    z, y = data.draw(arrays((n, k), min_value=-20, max_value=20)), data.draw(labels(n, k))
    loss = run(ln.softmax_cross_entropy(ln.Input(z), ln.Input(y)))
    assert loss == pytest.approx(-np.mean(np_log_softmax(z)[np.arange(n), y]), rel=1e-12, abs=1e-12)
    assert loss >= 0


@given(arrays(shapes(), min_value=-50, max_value=50))
def test_softmax_rows_sum_to_one(values):
    out = run(ln.softmax(ln.Input(values)))
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(out >= 0)


@given(arrays(shapes(), min_value=-50, max_value=50))
def test_log_softmax_exponentiates_to_probabilities(values):
    np.testing.assert_allclose(np.exp(run(ln.log_softmax(ln.Input(values)))).sum(axis=-1), 1.0, rtol=1e-12)


# -- stable forms: no overflow at |x| = 1000 ----------------------------------------------

def test_sigmoid_is_stable_at_plus_minus_1000():
    x = ln.Parameter([-1000.0, 1000.0])
    y = ln.sigmoid(x)
    assert run(y).tolist() == [0.0, 1.0]
    total = ln.sum(y)
    ln.forward(total)
    ln.backward(total)
    assert x.grad.tolist() == [0.0, 0.0]  # y (1 - y) underflows to exactly 0, not nan


def test_logistic_loss_is_stable_at_plus_minus_1000():
    s = ln.Parameter([1000.0, -1000.0, 1000.0])
    loss = ln.logistic_loss(s, ln.Input([1.0, -1.0, -1.0]))
    assert run(loss) == pytest.approx(1000.0 / 3)  # two terms e^-1000 ~ 0 and softplus(1000) = 1000
    ln.backward(loss)
    assert s.grad.tolist() == pytest.approx([0.0, 0.0, 1.0 / 3])


def test_softmax_and_cross_entropy_are_stable_for_huge_logits():
    z = ln.Parameter([[1000.0, 0.0, -1000.0]])
    assert run(ln.softmax(z)).tolist() == [[1.0, 0.0, 0.0]]
    assert run(ln.log_softmax(z)).tolist() == [[0.0, -1000.0, -2000.0]]
    loss = ln.softmax_cross_entropy(z, ln.Input(np.array([1])))
    assert run(loss) == pytest.approx(1000.0)
    ln.backward(loss)
    assert z.grad.tolist() == [[1.0, -1.0, 0.0]]


def test_binary_cross_entropy_clamps_logs_like_pytorch():
    p = ln.Parameter([0.0, 1.0])
    loss = ln.binary_cross_entropy(p, ln.Input([1.0, 0.0]))
    assert run(loss) == 100.0  # each log clamped at -100
    ln.backward(loss)
    assert np.all(np.isfinite(p.grad))


# -- subgradients at kinks, as PyTorch chooses them ---------------------------------------

def grad_at(op, value, **kw):
    x = ln.Parameter([value])
    y = ln.sum(op(x, **kw))
    ln.forward(y)
    ln.backward(y)
    return x.grad[0]


def test_subgradients_at_kinks_match_pytorch():
    assert grad_at(ln.relu, 0.0) == 0.0
    assert grad_at(ln.abs, 0.0) == 0.0
    assert grad_at(ln.leaky_relu, 0.0, alpha=0.2) == 0.2
    s = ln.Parameter([1.0, -1.0])
    loss = ln.hinge_loss(s, ln.Input([1.0, -1.0]))  # both exactly at the margin
    ln.forward(loss)
    ln.backward(loss)
    assert s.grad.tolist() == [0.0, 0.0]


def test_nan_stays_visible_through_relu_and_exp():
    x = ln.Input([math.nan, 1.0])
    assert np.isnan(run(ln.relu(x))[0])
    assert np.isnan(run(ln.exp(x))[0])
    assert run(ln.exp(ln.Input([1000.0])))[0] == math.inf
    assert run(ln.log(ln.Input([0.0, -1.0]))).tolist()[0] == -math.inf


def test_layout_ops_match_numpy_and_negative_axes_count_from_the_end():
    values = np.arange(24.0).reshape(2, 3, 4)
    x = ln.Parameter(values, name="x")
    np.testing.assert_array_equal(ln.forward(ln.permute(x, (-1, 0, 1))), values.transpose(2, 0, 1))
    np.testing.assert_array_equal(ln.forward(ln.transpose(ln.Parameter(values[0]))), values[0].T)
    column = ln.Parameter(np.arange(3.0).reshape(3, 1), name="column")
    np.testing.assert_array_equal(ln.forward(ln.broadcast_to(column, (2, 3, 4))),
                                  np.broadcast_to(np.arange(3.0).reshape(3, 1), (2, 3, 4)))


def test_the_backward_of_a_broadcast_sums_over_the_copies():
    b = ln.Parameter(np.array([1.0, 2.0, 3.0]), name="b")
    weights = np.arange(12.0).reshape(4, 3)
    loss = ln.sum(ln.mul(ln.broadcast_to(b, (4, 3)), ln.Input(weights)))
    ln.forward(loss)
    ln.backward(loss)
    np.testing.assert_array_equal(b.grad, weights.sum(axis=0))  # each b[m] was read by 4 rows


@pytest.mark.parametrize("backend", ["python", "numba", "cuda"])
def test_axis_reductions_match_numpy_on_every_backend(backend):
    values = np.random.default_rng(1).normal(size=(2, 3, 4))
    with ln.use(backend):
        x = ln.Parameter(values, name="x")
        for op, reference in ((ln.sum, np.sum), (ln.mean, np.mean), (ln.max, np.max)):
            for axis in (0, -1, (0, 2), None):
                got = ln.forward(op(x, axis=axis, keepdims=True))
                np.testing.assert_allclose(got, reference(values, axis=axis, keepdims=True), rtol=1e-12)
        np.testing.assert_allclose(ln.forward(ln.logsumexp(x, axis=1)), np.log(np.exp(values).sum(axis=1)), rtol=1e-12)
        np.testing.assert_allclose(ln.forward(ln.softmax(x, axis=0)),
                                   np.exp(values) / np.exp(values).sum(axis=0, keepdims=True), rtol=1e-12)
        edges = ln.Input(np.array([[-np.inf, -np.inf], [np.inf, 1.0], [1000.0, 1000.0]]))
        np.testing.assert_allclose(ln.forward(ln.logsumexp(edges, axis=1)), [-np.inf, np.inf, 1000 + np.log(2)])


def test_max_sends_the_gradient_to_the_first_maximum():
    x = ln.Parameter(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]]), name="x")
    loss = ln.sum(ln.max(x, axis=1))
    ln.forward(loss)
    ln.backward(loss)
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0]])


def test_operators_are_the_ops_and_numbers_are_constants():
    x = ln.Parameter(np.array([[1.0, 2.0], [3.0, 4.0]]), name="x")
    b = ln.Parameter(np.array([10.0, 20.0]), name="b")
    y = x + b
    assert y.op.name == "add" and [n.op_name for n in y.inputs] == ["Parameter", "broadcast_to"]
    values = x.value
    cases = [(x * 0.5, values * 0.5), (1 - x, 1 - values), (-x, -values), (x / 2, values / 2), (2 / x, 2 / values),
             (x ** 2, values ** 2), (2 ** x, 2 ** values), (x @ x, values @ values), (np.float64(3) * x, 3 * values),
             (y, values + [10.0, 20.0])]
    for node, expected in cases:
        np.testing.assert_allclose(ln.forward(node), expected, rtol=1e-12)
    constant = (x * 0.5).inputs[1]
    assert constant.name.startswith("0.5") and not constant.requires_grad
    loss = ln.sum(y * y)
    ln.forward(loss)
    ln.backward(loss)
    np.testing.assert_allclose(b.grad, (2 * (values + [10.0, 20.0])).sum(axis=0))  # the sum over the rows


def test_a_number_takes_the_other_operands_dtype_and_two_numbers_are_refused():
    x32 = ln.Parameter(np.ones(3, np.float32), name="x32")
    assert (x32 * 0.1).dtype == np.float32 and (0.1 + x32).inputs[0].dtype == np.float32
    with pytest.raises(TypeError, match="add: at least one operand must be a loopnet node"):
        ln.add(1.0, 2.0)
    with pytest.raises(TypeError, match="mul: an operand must be a loopnet node or a number, got list"):
        x32 * [1.0, 2.0, 3.0]
    with pytest.raises(TypeError, match="sub: an operand must be a loopnet node or a number, got ndarray"):
        x32 - np.ones(3)


def test_layout_ops_on_the_parallel_numba_driver():
    """60,000 elements: the numba backend runs these flat loops with prange, whose unsigned
    index once turned the digit arithmetic into floats (a compile error at this size only)."""
    values = np.random.default_rng(2).normal(size=(30, 40, 50))
    with ln.use("numba"):
        x = ln.Parameter(values, name="x")
        loss = ln.sum(ln.permute(x, (2, 0, 1)) * ln.Input(values.transpose(2, 0, 1)))
        ln.forward(loss)
        ln.backward(loss)
        np.testing.assert_allclose(x.grad, values, rtol=1e-12)
        row = ln.Parameter(values[0, 0], name="row")
        spread = ln.broadcast_to(row, (30, 40, 50))
        np.testing.assert_array_equal(ln.forward(spread), np.broadcast_to(values[0, 0], (30, 40, 50)))
        total = ln.sum(spread)
        ln.forward(total)
        ln.backward(total)
        np.testing.assert_allclose(row.grad, np.full(50, 1200.0))
