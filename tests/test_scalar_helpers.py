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
