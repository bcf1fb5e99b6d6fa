"""square, exp, log, abs, negate: one scalar function applied to every element.

    forward    for i:  y[i] = f(x[i])
    backward   for i:  dx[i] += dy[i] * f'(x[i])

    square:  f = x^2       f' = 2x
    exp:     f = e^x       f' = e^x = y          (reuses the forward's output)
    log:     f = ln x      f' = 1/x              (ln 0 = -inf, ln of a negative = nan)
    abs:     f = |x|       f' = sign(x)          (subgradient 0 at x = 0, as PyTorch)
    negate:  f = -x        f' = -1
"""

from loopnet import scalar
from loopnet.op import Elementwise


def square_forward(i, x, y):
    y[i] = x[i] * x[i]


def square_grad_x(i, x, y, dy, dx):
    dx[i] += dy[i] * 2 * x[i]


def exp_forward(i, x, y):
    y[i] = scalar.exp(x[i])


def exp_grad_x(i, x, y, dy, dx):
    dx[i] += dy[i] * y[i]


def log_forward(i, x, y):
    y[i] = scalar.log(x[i])


def log_grad_x(i, x, y, dy, dx):
    dx[i] += dy[i] / x[i]


def abs_forward(i, x, y):
    y[i] = -x[i] if x[i] < 0 else x[i]


def abs_grad_x(i, x, y, dy, dx):
    if x[i] > 0:
        dx[i] += dy[i]
    elif x[i] < 0:
        dx[i] -= dy[i]


def negate_forward(i, x, y):
    y[i] = -x[i]


def negate_grad_x(i, x, y, dy, dx):
    dx[i] -= dy[i]


class Square(Elementwise):
    name = "square"
    forward_body, grad_x_body = square_forward, square_grad_x


class Exp(Elementwise):
    name = "exp"
    forward_body, grad_x_body = exp_forward, exp_grad_x


class Log(Elementwise):
    name = "log"
    forward_body, grad_x_body = log_forward, log_grad_x


class Abs(Elementwise):
    name = "abs"
    forward_body, grad_x_body = abs_forward, abs_grad_x


class Negate(Elementwise):
    name = "negate"
    forward_body, grad_x_body = negate_forward, negate_grad_x


def negate(x, name=None):
    """-x, elementwise."""
    return Negate().apply((x,), name)


def square(x, name=None):
    """x^2, elementwise."""
    return Square().apply((x,), name)


def exp(x, name=None):
    """e^x, elementwise (inf above x = 709.78 in float64)."""
    return Exp().apply((x,), name)


def log(x, name=None):
    """Natural log, elementwise (-inf at 0, nan below)."""
    return Log().apply((x,), name)


def abs(x, name=None):  # noqa: A001 - the lectures' name; loopnet.ops.abs, not the builtin
    """|x|, elementwise; gradient sign(x), 0 at x = 0."""
    return Abs().apply((x,), name)
