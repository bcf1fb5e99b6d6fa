"""loopnet.testing catches broken backward loops, and says where."""

import numpy as np
import pytest
from hypothesis import given

import loopnet as ln
from loopnet.op import Elementwise
from loopnet.testing import assert_gradcheck, gradcheck
from loopnet.testing import strategies as lst


def cube_forward(i, x, y):
    y[i] = x[i] * x[i] * x[i]


def cube_grad_x_wrong(i, x, y, dy, dx):
    dx[i] += dy[i] * 2 * x[i] * x[i]  # should be 3 x^2


def cube_grad_x_overwrites(i, x, y, dy, dx):
    dx[i] = dy[i] * 3 * x[i] * x[i]  # `=` instead of `+=`: loses the other consumers' share


def cube_grad_x_adds_constant(i, x, y, dy, dx):
    dx[i] += dy[i] * 3 * x[i] * x[i] + 1e-3


_calls = [0]


def cube_grad_x_stateful(i, x, y, dy, dx):
    _calls[0] += 1
    dx[i] += dy[i] * 3 * x[i] * x[i] * (1 + 1e-9 * (_calls[0] > 3))  # differs from the second run on


def make_cube(grad_x_body):
    class Cube(Elementwise):
        name = "cube"
        forward_body = cube_forward

    Cube.grad_x_body = grad_x_body
    return lambda x: Cube().apply((x,))


def test_a_correct_op_passes():
    def cube_grad_x(i, x, y, dy, dx):
        dx[i] += dy[i] * 3 * x[i] * x[i]

    report = gradcheck(make_cube(cube_grad_x)(ln.Parameter([1.0, -2.0], name="x")))
    assert report.ok and report.checked == 2 and "OK" in str(report)


def test_a_wrong_derivative_is_reported_element_by_element():
    x = ln.Parameter([1.0, -2.0], name="x")
    report = gradcheck(ln.sum(make_cube(cube_grad_x_wrong)(x)))
    assert not report
    bad = [m for m in report.failures if m.check == "finite difference"]
    assert [(m.input, m.index) for m in bad] == [("x", (0,)), ("x", (1,))]
    assert bad[1].numeric == pytest.approx(12.0) and bad[1].analytic == pytest.approx(8.0)
    text = str(report)
    assert "2 FAILED" in text and "x" in text and "(1,)" in text and "12" in text
    with pytest.raises(AssertionError, match="finite difference"):
        assert_gradcheck(ln.sum(make_cube(cube_grad_x_wrong)(x)))


def test_overwriting_instead_of_accumulating_is_caught_with_fan_out():
    x = ln.Parameter([1.5], name="x")
    cube = make_cube(cube_grad_x_overwrites)
    y = ln.add(ln.sum(cube(x)), ln.sum(ln.square(x)))  # x feeds two consumers
    assert not gradcheck(y)


def test_a_nonzero_grad_from_zero_upstream_is_caught():
    report = gradcheck(ln.sum(make_cube(cube_grad_x_adds_constant)(ln.Parameter([1.0], name="x"))), atol=1e-2)
    assert [m.check for m in report.failures] == ["zero upstream"]


def test_backward_that_changes_between_runs_is_caught():
    _calls[0] = 0
    report = gradcheck(ln.sum(make_cube(cube_grad_x_stateful)(ln.Parameter([1.0, 2.0, 3.0], name="x"))))
    assert "backward twice" in {m.check for m in report.failures}


@given(lst.arrays(lst.shapes(), avoid=(0.0,)))
def test_arrays_keep_away_from_kinks(values):
    assert np.all(np.abs(values) >= 1e-2 - 1e-12) and np.all(np.isfinite(values))


@given(lst.graphs())
def test_random_graphs_end_in_a_scalar_and_reuse_the_first_parameter(graph):
    assert graph.output.shape == ()
    uses = sum(graph.parameters[0] in n.inputs for n in graph.nodes)
    assert uses >= 2


@given(lst.labels(5, 3))
def test_labels_are_integers_in_range(values):
    assert values.dtype == np.int64 and values.min() >= 0 and values.max() < 3


def test_gradcheck_rejects_non_nodes():
    with pytest.raises(TypeError, match="needs a loopnet node"):
        gradcheck(np.ones(3))
