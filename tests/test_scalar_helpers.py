"""loopnet.scalar's sqrt and div give IEEE's answers on every backend, and layer_norm
refuses an eps that would divide by zero (issue 14, item 5)."""

import math

import numpy as np
import pytest

import loopnet as ln
from loopnet import scalar
from loopnet.errors import SettingError
from loopnet.loops import loop


def test_sqrt_and_div_in_plain_python_are_ieee():
    assert scalar.sqrt(4.0) == 2.0 and scalar.sqrt(0.0) == 0.0
    assert math.isnan(scalar.sqrt(-1.0)) and math.isnan(scalar.sqrt(math.nan))
    assert scalar.div(1.0, 4.0) == 0.25 and scalar.div(3.0, 0.0) == math.inf and scalar.div(-3.0, 0.0) == -math.inf
    assert scalar.div(3.0, -0.0) == -math.inf and math.isnan(scalar.div(0.0, 0.0)) and math.isnan(scalar.div(math.nan, 0.0))


def helpers_body(i, a, b, out_sqrt, out_div):
    out_sqrt[i] = scalar.sqrt(a[i])
    out_div[i] = scalar.div(a[i], b[i])


@pytest.mark.parametrize("backend", ["python", "numba", "cuda"])
def test_every_backend_agrees_on_the_edge_cases(backend):
    a = np.array([4.0, 0.0, -1.0, 3.0, -3.0, 0.0, 1.0])
    b = np.array([2.0, 1.0, 1.0, 0.0, 0.0, 0.0, -0.0])
    with ln.use(backend) as chosen:
        from loopnet.backends import current_backend

        device = current_backend()
        out_sqrt, out_div = device.zeros(a.shape, a.dtype), device.zeros(a.shape, a.dtype)
        loop(helpers_body, a.shape, device.adopt(a), device.adopt(b), out_sqrt, out_div)
        got_sqrt, got_div = device.to_host(out_sqrt), device.to_host(out_div)
    assert chosen.name == backend
    np.testing.assert_array_equal(got_sqrt, [2.0, 0.0, np.nan, np.sqrt(3.0), np.nan, 0.0, 1.0])
    np.testing.assert_array_equal(got_div, [2.0, 0.0, -1.0, np.inf, -np.inf, np.nan, -np.inf])


@pytest.mark.parametrize("eps", [0.0, -1e-5, float("nan")])
def test_layer_norm_refuses_an_eps_that_is_not_positive(eps):
    x = ln.Parameter(np.ones((2, 3)), name="x")
    gamma, beta = ln.Parameter(np.ones(3), name="gamma"), ln.Parameter(np.zeros(3), name="beta")
    with pytest.raises(SettingError, match="layer_norm: eps must be positive"):
        ln.layer_norm(x, gamma, beta, eps=eps)


@pytest.mark.parametrize("backend", ["python", "numba", "cuda"])
def test_layer_norm_of_a_constant_row_is_beta_on_every_backend(backend):
    x = ln.Parameter(np.full((2, 3), 7.0), name="x")
    gamma, beta = ln.Parameter(np.ones(3), name="gamma"), ln.Parameter(np.array([0.5, -1.0, 2.0]), name="beta")
    with ln.use(backend):
        y = ln.forward(ln.layer_norm(x, gamma, beta, eps=1e-12))
    np.testing.assert_array_equal(y, [[0.5, -1.0, 2.0]] * 2)


def test_dropout_refuses_a_probability_out_of_range():
    with pytest.raises(SettingError, match="dropout probability must be in"):
        ln.dropout(ln.Parameter([1.0]), p=1.0)


def pow_body(i, x, p, out):
    out[i] = scalar.pow(x[i], p[i])


POW_CASES = [  # x, p, x^p as C's pow (and NumPy) gives it; Python's math.pow raises on the middle ones
    (2.0, 10.0, 1024.0), (-2.0, 3.0, -8.0), (9.0, 0.5, 3.0), (math.nan, 0.0, 1.0), (1.0, math.nan, 1.0),
    (0.0, -1.0, math.inf), (-8.0, 0.5, math.nan), (10.0, 400.0, math.inf), (-10.0, 401.0, -math.inf),
    (-10.0, 400.0, math.inf), (0.5, -2000.0, math.inf), (-2.0, math.inf, math.inf), (0.5, math.inf, 0.0),
]


@pytest.mark.parametrize("backend", ["python", "numba", "cuda"])
def test_pow_gives_ieee_answers_on_every_backend(backend):
    x, p, expected = (np.array(column) for column in zip(*POW_CASES))
    with ln.use(backend):
        from loopnet.backends import current_backend

        device = current_backend()
        out = device.zeros(x.shape, x.dtype)
        loop(pow_body, x.shape, device.adopt(x), device.adopt(p), out)
        got = device.to_host(out)
    np.testing.assert_array_equal(got, expected)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(got, np.power(x, p))


@pytest.mark.parametrize("exponent", [math.inf, math.nan, "2", True, None])
def test_pow_refuses_an_exponent_that_is_not_a_finite_number_or_a_node(exponent):
    with pytest.raises(TypeError, match="pow: the exponent must be a finite number or a loopnet node"):
        ln.pow(ln.Parameter(np.ones(2)), exponent)


def test_maximum_splits_a_tie_and_pow_zero_has_no_slope():
    a, b = ln.Parameter(np.array([1.0, 2.0, 3.0]), name="a"), ln.Parameter(np.array([1.0, 5.0, 0.0]), name="b")
    loss = ln.sum(ln.maximum(a, b))
    np.testing.assert_array_equal(ln.forward(loss), 1.0 + 5.0 + 3.0)
    ln.backward(loss)
    np.testing.assert_array_equal(a.grad, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(b.grad, [0.5, 1.0, 0.0])
    x = ln.Parameter(np.array([0.0, 2.0]), name="x")
    flat = ln.sum(ln.pow(x, 0))
    ln.forward(flat)
    ln.backward(flat)
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])  # not 0 * inf = nan at x = 0
