"""sum, mean: every element to one number (shape ()).

    sum    forward   y = sum_i x[i]          backward  for i: dx[i] += dy
    mean   forward   y = (1/n) sum_i x[i]    backward  for i: dx[i] += dy / n

Every sum here accumulates in float64 (`acc = scalar.zero64()`), whatever
the arrays' dtype, and the result is stored in the array's dtype: float32 added one term at
a time drifts (the mean of 600,000 float32 values of 0.1 came out 0.56% off).

The forward runs on a grid with one point (the whole sum is one output); the backward
on a grid over x, since every element's gradient is independent.
"""

from loopnet import scalar
from loopnet.loops import flat, loop
from loopnet.op import Op


def sum_forward(x, y):
    acc = scalar.zero64()  # float64 whatever x's dtype (see the module's docstring)
    for i in range(x.shape[0]):
        acc += x[i]
    y[0] = acc


def sum_grad_x(i, dy, dx):
    dx[i] += dy[0]


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


def sum(x, name=None):  # noqa: A001 - the lectures' name
    """The sum of all elements, shape ()."""
    return Sum().apply((x,), name)


def mean(x, name=None):
    """The mean of all elements, shape ()."""
    return Mean().apply((x,), name)
