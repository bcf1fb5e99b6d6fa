"""Bad input gets a clear error at the earliest point, naming the op, nodes and shapes."""

import numpy as np
import pytest

import loopnet as ln
from loopnet.errors import LabelError, ShapeError


def P(shape, name):
    return ln.Parameter(np.zeros(shape), name=name)


@pytest.mark.parametrize("build,message", [
    (lambda: ln.affine(P((4, 3), "x"), P((2, 5), "W"), P((5,), "b")),
     r"affine: x has 3 features but W expects 2 \(got x='x' \(4, 3\), W='W' \(2, 5\), b='b' \(5,\)\)"),
    (lambda: ln.affine(P((4, 3), "x"), P((3, 5), "W"), P((4,), "b")), r"affine: b has 4 entries but W gives 5 outputs"),
    (lambda: ln.affine(P((3,), "x"), P((3, 5), "W"), P((5,), "b")), r"affine: needs x \(N, D\)"),
    (lambda: ln.matmul(P((2, 3), "A"), P((4, 2), "B")), r"matmul: A's columns \(3\) must equal B's rows \(4\)"),
    (lambda: ln.matmul(P((2,), "A"), P((2, 2), "B")), r"matmul: both inputs must be matrices"),
    (lambda: ln.add(P((2, 3), "a"), P((2,), "b")), r"add: shapes \(2, 3\) and \(2,\) do not broadcast.*a='a' \(2, 3\), b='b' \(2,\)"),
    (lambda: ln.mul(P((4, 1), "a"), P((3, 2), "b")), r"mul: shapes \(4, 1\) and \(3, 2\) do not broadcast"),
    (lambda: ln.mse_loss(P((2,), "a"), P((3,), "b")), r"mse_loss: both inputs must have the same shape"),
    (lambda: ln.mean(P((0,), "e")), r"mean: the mean of no elements is undefined"),
    (lambda: ln.softmax(P((), "s")), r"softmax: needs at least one axis"),
    (lambda: ln.sum(P((2, 3), "x"), axis=2), r"sum: axis 2 is out of range for an input with 2 axes"),
    (lambda: ln.max(P((2, 3), "x"), axis=-3), r"max: axis -3 is out of range"),
    (lambda: ln.mean(P((2, 3), "x"), axis=1.5), r"mean: axis 1.5 must be a whole number, a tuple of them, or None"),
    (lambda: ln.sum(P((2, 3), "x"), axis=(1, -1)), r"sum: axis \(1, -1\) names an axis twice"),
    (lambda: ln.max(P((2, 0), "x"), axis=1), r"max: axis 1 has length 0: its max is undefined"),
    (lambda: ln.logsumexp(P((), "x")), r"logsumexp: no axis to reduce"),
    (lambda: ln.softmax(P((2, 3), "x"), axis=2), r"softmax: axis 2 must be a whole number in \[-2, 1\]"),
    (lambda: ln.transpose(P((2, 3, 4), "x")), r"transpose: needs a matrix \(2-D\); for other ranks use permute"),
    (lambda: ln.permute(P((2, 3), "x"), (0, 0)), r"permute: axes \(0, 0\) must list each of the 2 axes once"),
    (lambda: ln.permute(P((2, 3), "x"), (1,)), r"permute: axes \(1,\) must list each of the 2 axes once"),
    (lambda: ln.permute(P((2, 3), "x"), (0, 2)), r"permute: axes \(0, 2\) must list each"),
    (lambda: ln.permute(P((2, 3), "x"), (0.5, 1)), r"permute: axes \(0.5, 1\) must be a sequence of whole numbers"),
    (lambda: ln.broadcast_to(P((2, 3), "x"), (2, 4)), r"broadcast_to: cannot broadcast to \(2, 4\).*x='x' \(2, 3\)"),
    (lambda: ln.broadcast_to(P((2, 3), "x"), (3,)), r"broadcast_to: cannot broadcast to \(3,\)"),
    (lambda: ln.broadcast_to(P((1, 3), "x"), (-1, 3)), r"broadcast_to: cannot broadcast to \(-1, 3\)"),
    (lambda: ln.broadcast_to(P((3,), "x"), (2.5, 3)), r"broadcast_to: the shape \(2.5, 3\) must be a sequence of whole numbers"),
    (lambda: ln.softmax_cross_entropy(P((3,), "z"), ln.Input(np.array([0, 1, 2]))), r"logits must be \(N, K\)"),
    (lambda: ln.softmax_cross_entropy(P((3, 2), "z"), ln.Input(np.array([0, 1]))), r"labels must be \(3,\)"),
    (lambda: ln.reshape(P((2, 3), "r"), (4, 2)), r"reshape: cannot view 6 elements as \(4, 2\)"),
    (lambda: ln.reshape(P((2, 3), "r"), (-1, -1)), r"at most one -1"),
    (lambda: ln.reshape(P((2, 3), "r"), (4, -1)), r"cannot infer -1"),
])
def test_shape_mismatches_fail_at_build_time_naming_op_nodes_and_shapes(build, message):
    with pytest.raises(ShapeError, match=message):
        build()


def test_float_labels_for_cross_entropy_are_an_error():
    with pytest.raises(LabelError, match="labels 'lab' must be integers, got float64"):
        ln.softmax_cross_entropy(P((2, 3), "z"), ln.Input([0, 1], name="lab"))


def test_out_of_range_labels_are_named_at_forward():
    labels = ln.Input(np.array([0, 3]), name="lab")
    loss = ln.softmax_cross_entropy(P((2, 3), "z"), labels)
    with pytest.raises(LabelError, match=r"label 3 at index 1 of 'lab' is outside \[0, 3\)"):
        ln.forward(loss)
    labels.value = np.array([0, -1])
    with pytest.raises(LabelError, match=r"label -1 at index 1"):
        ln.forward(loss)
    labels.value = np.array([0, 2])
    assert np.isfinite(ln.forward(loss))


@pytest.mark.parametrize("op", [ln.logistic_loss, ln.hinge_loss])
def test_plus_minus_one_labels_are_checked(op):
    loss = op(P((3,), "s"), ln.Input([1.0, 0.0, -1.0], name="y"))
    with pytest.raises(LabelError, match=r"labels 'y' must be -1 or \+1, found 0.0 at index \(1,\)"):
        ln.forward(loss)


def test_binary_cross_entropy_targets_must_lie_in_0_1():
    loss = ln.binary_cross_entropy(P((2,), "p"), ln.Input([0.5, 1.5], name="t"))
    with pytest.raises(LabelError, match=r"targets 't' must lie in \[0, 1\], found 1.5"):
        ln.forward(loss)


def test_reshape_refuses_a_shape_that_is_not_whole_numbers():
    x = ln.Parameter(np.arange(4.0).reshape(2, 2), name="x")
    with pytest.raises(ln.errors.ShapeError, match=r"reshape: the new shape \(2.5, 2\) must be whole numbers"):
        ln.reshape(x, (2.5, 2))
    assert ln.reshape(x, np.array([4])[0]).shape == (4,) and ln.reshape(x, (np.int64(-1),)).shape == (4,)
