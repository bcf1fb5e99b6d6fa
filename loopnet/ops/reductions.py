"""sum, mean, max, logsumexp: every element to one number, or one axis to one number each.

Over every element (axis=None, the default of sum and mean; shape ()):

    sum    forward   y = sum_i x[i]          backward  for i: dx[i] += dy
    mean   forward   y = (1/n) sum_i x[i]    backward  for i: dx[i] += dy / n

Over one axis of length n (axis=a): x is seen as (outer, n, inner), the axes before a
joined into `outer` and those after into `inner`, so one loop serves every rank and axis:

    sum        for o,j:  y[o,j] = sum_k x[o,k,j]            for o,k,j:  dx[o,k,j] += dy[o,j]
    mean       for o,j:  y[o,j] = (1/n) sum_k x[o,k,j]      for o,k,j:  dx[o,k,j] += dy[o,j] / n
    max        for o,j:  y[o,j] = max_k x[o,k,j]            for o,j:    dx[o,first k of the max,j] += dy[o,j]
    logsumexp  for o,j:  y[o,j] = m + ln sum_k e^(x[o,k,j] - m),  m = max_k x[o,k,j]
                                                            for o,k,j:  dx[o,k,j] += dy[o,j] e^(x[o,k,j] - y[o,j])

max sends the gradient to the first maximum, as max_pool2d does (a max is a switch; the
forward keeps which k won). logsumexp subtracts the max first, so nothing overflows, and its
gradient is softmax along the axis. keepdims=True keeps the reduced axis with length 1, as
NumPy and PyTorch (`keepdim`) do. A tuple of axes reduces them one after another, each a
node of its own in the trace.

Every sum here accumulates in float64 (`acc = scalar.zero64()`), whatever
the arrays' dtype, and the result is stored in the array's dtype: float32 added one term at
a time drifts (the mean of 600,000 float32 values of 0.1 came out 0.56% off).

The forward runs on a grid with one point (the whole sum is one output); the backward
on a grid over x, since every element's gradient is independent. `@reduction` above the
whole-array forwards declares that their loop only adds terms (`loopnet.reduction`), so
the compiled backends may split it across threads; the Python backend runs it as written.
"""

import math
import operator

import numpy as np

from loopnet import scalar
from loopnet.errors import ShapeError
from loopnet.loops import flat, loop, scratch
from loopnet.op import Op
from loopnet.reduction import reduction


@reduction
def sum_forward(x, y):
    acc = scalar.zero64()  # float64 whatever x's dtype (see the module's docstring)
    for i in range(x.shape[0]):
        acc += x[i]
    y[0] = acc


def sum_grad_x(i, dy, dx):
    dx[i] += dy[0]


@reduction
def mean_forward(x, y):
    acc = scalar.zero64()
    for i in range(x.shape[0]):
        acc += x[i]
    y[0] = acc / x.shape[0]


def mean_grad_x(i, dy, dx):
    dx[i] += dy[0] / dx.shape[0]


class Sum(Op):
    name = "sum"
    inputs = ("x",)
    forward_body, grad_x_body = sum_forward, sum_grad_x

    def shape(self, x):
        return ()

    def forward(self, out, x):
        loop(self.forward_body, (), flat(x.value), flat(out.value))

    def backward(self, out, x):
        if x.requires_grad:
            loop(self.grad_x_body, (x.size,), flat(out.grad), flat(x.grad))


class Mean(Sum):
    name = "mean"
    forward_body, grad_x_body = mean_forward, mean_grad_x

    def shape(self, x):
        if x.size == 0:
            raise self.shape_error((x,), "the mean of no elements is undefined")
        return ()


def sum_axis_forward(o, j, x, y):
    acc = scalar.zero64()
    for k in range(x.shape[1]):
        acc += x[o, k, j]
    y[o, j] = acc


def sum_axis_grad_x(o, k, j, dy, dx):
    dx[o, k, j] += dy[o, j]


def mean_axis_forward(o, j, x, y):
    acc = scalar.zero64()
    for k in range(x.shape[1]):
        acc += x[o, k, j]
    y[o, j] = acc / x.shape[1]


def mean_axis_grad_x(o, k, j, dy, dx):
    dx[o, k, j] += dy[o, j] / dx.shape[1]


def max_forward(o, j, x, y, where):
    best, at = x[o, 0, j], 0
    for k in range(1, x.shape[1]):
        if x[o, k, j] > best:  # strictly greater: ties keep the first
            best, at = x[o, k, j], k
    y[o, j] = best
    where[o, j] = at


def max_grad_x(o, j, dy, dx, where):
    dx[o, where[o, j], j] += dy[o, j]  # one element of each (o, j) line: no two points write one place


def logsumexp_forward(o, j, x, y):
    top = x[o, 0, j]
    for k in range(1, x.shape[1]):
        if x[o, k, j] > top:
            top = x[o, k, j]
    if math.isinf(top):  # all -inf, or some +inf: e^(x - top) would be nan; the answer is top
        y[o, j] = top
        return
    total = scalar.zero64()
    for k in range(x.shape[1]):
        total += scalar.exp(x[o, k, j] - top)
    y[o, j] = top + scalar.log(total)


def logsumexp_grad_x(o, k, j, x, y, dy, dx):
    dx[o, k, j] += dy[o, j] * scalar.exp(x[o, k, j] - y[o, j])


def _one_axis(axis, rank, op):
    try:
        axis = operator.index(axis)
    except TypeError:
        raise ShapeError(f"{op}: axis {axis!r} must be a whole number, a tuple of them, or None") from None
    if not -rank <= axis < rank:
        raise ShapeError(f"{op}: axis {axis} is out of range for an input with {rank} axes")
    return axis % rank


class AxisReduction(Op):
    """One axis of x to one number per line along it: bodies over the (outer, n, inner) view."""

    inputs = ("x",)
    forward_body = grad_x_body = None

    def __init__(self, axis, keepdims):
        self.given, self.keepdims = axis, keepdims

    def shape(self, x):
        self.axis = _one_axis(self.given, len(x.shape), self.name)
        if x.shape[self.axis] == 0 and self.name != "sum":
            raise self.shape_error((x,), f"axis {self.axis} has length 0: its {self.name} is undefined")
        kept = (1,) if self.keepdims else ()
        return x.shape[:self.axis] + kept + x.shape[self.axis + 1:]

    def views(self, x):
        """(outer, n, inner) for x, (outer, inner) for the output: the same memory."""
        outer = int(np.prod(x.shape[:self.axis], dtype=np.int64))
        inner = int(np.prod(x.shape[self.axis + 1:], dtype=np.int64))
        return (outer, x.shape[self.axis], inner), (outer, inner)

    def forward(self, out, x):
        three, two = self.views(x)
        loop(self.forward_body, two, x.value.reshape(three), out.value.reshape(two))

    def backward(self, out, x):
        if x.requires_grad:
            three, two = self.views(x)
            loop(self.grad_x_body, three, out.grad.reshape(two), x.grad.reshape(three))


class SumAxis(AxisReduction):
    name = "sum"
    forward_body, grad_x_body = sum_axis_forward, sum_axis_grad_x


class MeanAxis(AxisReduction):
    name = "mean"
    forward_body, grad_x_body = mean_axis_forward, mean_axis_grad_x


class Max(AxisReduction):
    name = "max"
    forward_body, grad_x_body = max_forward, max_grad_x

    def forward(self, out, x):
        three, two = self.views(x)
        self.where = scratch(two, np.int64)  # which k won, kept for the backward
        loop(max_forward, two, x.value.reshape(three), out.value.reshape(two), self.where)

    def backward(self, out, x):
        if x.requires_grad:
            three, two = self.views(x)
            loop(max_grad_x, two, out.grad.reshape(two), x.grad.reshape(three), self.where)


class LogSumExp(AxisReduction):
    name = "logsumexp"
    forward_body, grad_x_body = logsumexp_forward, logsumexp_grad_x

    def backward(self, out, x):
        if x.requires_grad:
            three, two = self.views(x)
            loop(logsumexp_grad_x, three, x.value.reshape(three), out.value.reshape(two),
                 out.grad.reshape(two), x.grad.reshape(three))


def _reduce(op_class, x, axis, keepdims, name):
    """One node per axis; a tuple of axes is reduced from the last listed position down, so
    the positions still to reduce keep their numbers."""
    if isinstance(axis, (tuple, list)):
        rank = len(x.shape)
        if not axis:
            raise ShapeError(f"{op_class.name}: no axis to reduce (the input has shape {x.shape})")
        axes = sorted({_one_axis(a, rank, op_class.name) for a in axis}, reverse=True)
        if len(axes) != len(axis):
            raise ShapeError(f"{op_class.name}: axis {tuple(axis)} names an axis twice")
        for n, a in enumerate(axes):
            x = op_class(a, keepdims).apply((x,), name if n == len(axes) - 1 else None)
        return x
    return op_class(axis, keepdims).apply((x,), name)


def sum(x, axis=None, keepdims=False, name=None):  # noqa: A001 - the lectures' name
    """The sum of all elements, shape () (axis=None); or along `axis` (an int or a tuple)."""
    if axis is None and not keepdims:
        return Sum().apply((x,), name)
    return _reduce(SumAxis, x, tuple(range(len(x.shape))) if axis is None else axis, keepdims, name)


def mean(x, axis=None, keepdims=False, name=None):
    """The mean of all elements, shape () (axis=None); or along `axis` (an int or a tuple)."""
    if axis is None and not keepdims:
        return Mean().apply((x,), name)
    return _reduce(MeanAxis, x, tuple(range(len(x.shape))) if axis is None else axis, keepdims, name)


def max(x, axis=None, keepdims=False, name=None):  # noqa: A001 - torch.max's name
    """The largest element (axis=None) or the largest along `axis`; the gradient goes to the
    first maximum."""
    return _reduce(Max, x, tuple(range(len(x.shape))) if axis is None else axis, keepdims, name)


def logsumexp(x, axis=None, keepdims=False, name=None):
    """ln sum e^x over every element (axis=None) or along `axis`, computed stably."""
    return _reduce(LogSumExp, x, tuple(range(len(x.shape))) if axis is None else axis, keepdims, name)
