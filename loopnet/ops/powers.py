"""pow, sqrt, reciprocal: x to a power, elementwise.

pow(x, p) with p a number (a constant exponent; no gradient for p):

    forward    for i:  y[i] = x[i]^p
    backward   for i:  dx[i] += dy[i] * p * x[i]^(p-1)        (nothing when p = 0, as PyTorch)

pow(a, b) with b a node (the exponent varies too; shapes broadcast as in add):

    forward    for i:  y[i] = a[i]^b[i]
    backward   for i:  da[i] += dy[i] * b[i] * a[i]^(b[i]-1)
                       db[i] += dy[i] * y[i] * ln a[i]        (0 where a = 0 and b >= 0, as PyTorch)

sqrt(x) = x^(1/2):      dx[i] += dy[i] / (2 y[i])      (inf at x = 0, nan below)
reciprocal(x) = x^(-1): dx[i] -= dy[i] * y[i]^2        (y = inf at x = 0)

Each reuses the forward's output where the derivative has it. Powers go through
`scalar.pow`, `scalar.sqrt` and `scalar.div`, which give IEEE's nan and inf on every
backend where Python's math would raise (a negative base to a non-integer power, 0 to a
negative one, overflow).
"""

import math
import numbers

from loopnet import scalar
from loopnet.graph import Node
from loopnet.op import Binary, Elementwise
from loopnet.ops.layout import operands


def pow_const_forward(i, x, y, p):
    y[i] = scalar.pow(x[i], p)


def pow_const_grad_x(i, x, y, dy, dx, p):
    if p != 0:  # x^0 = 1 has slope 0, even at x = 0 where p x^(p-1) would be 0 * inf
        dx[i] += dy[i] * p * scalar.pow(x[i], p - 1)


def pow_forward(i, a, b, y):
    y[i] = scalar.pow(a[i], b[i])


def pow_grad_a(i, a, b, dy, da):
    da[i] += dy[i] * b[i] * scalar.pow(a[i], b[i] - 1)


def pow_grad_b(i, a, b, dy, db):
    if a[i] != 0 or b[i] < 0:  # at a = 0, b >= 0: y = 0 (or 1) for every nearby b >= 0
        db[i] += dy[i] * scalar.pow(a[i], b[i]) * scalar.log(a[i])


def sqrt_forward(i, x, y):
    y[i] = scalar.sqrt(x[i])


def sqrt_grad_x(i, x, y, dy, dx):
    dx[i] += scalar.div(dy[i], 2 * y[i])


def reciprocal_forward(i, x, y):
    y[i] = scalar.div(1.0, x[i])


def reciprocal_grad_x(i, x, y, dy, dx):
    dx[i] -= dy[i] * y[i] * y[i]


class PowConst(Elementwise):
    name = "pow"
    forward_body, grad_x_body = pow_const_forward, pow_const_grad_x


class Pow(Binary):
    name = "pow"
    forward_body, grad_a_body, grad_b_body = pow_forward, pow_grad_a, pow_grad_b


class Sqrt(Elementwise):
    name = "sqrt"
    forward_body, grad_x_body = sqrt_forward, sqrt_grad_x


class Reciprocal(Elementwise):
    name = "reciprocal"
    forward_body, grad_x_body = reciprocal_forward, reciprocal_grad_x


def pow(x, p, name=None):  # noqa: A001 - torch.pow's name; loopnet.ops.powers.pow, not the builtin
    """x^p elementwise: p a number (a constant exponent) or a node (shapes broadcast)."""
    if isinstance(p, Node) or not isinstance(x, Node):  # an exponent that varies, or 2 ** x
        return Pow().apply(operands(x, p, "pow"), name)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not math.isfinite(p):
        raise TypeError(f"pow: the exponent must be a finite number or a loopnet node, got {p!r}")
    return PowConst(float(p)).apply((x,), name)


def sqrt(x, name=None):
    """The square root, elementwise (nan below 0; its gradient is inf at 0)."""
    return Sqrt().apply((x,), name)


def reciprocal(x, name=None):
    """1 / x, elementwise (inf at 0)."""
    return Reciprocal().apply((x,), name)
