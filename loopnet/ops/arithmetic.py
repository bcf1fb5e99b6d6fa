"""add, sub, mul, div, maximum: elementwise on two arrays of one shape.

Operands whose shapes differ are broadcast first by a broadcast_to node (NumPy's rule; see
loopnet/ops/layout.py), and a Python number becomes a constant: `add(y, b)` with y (N, M)
and b (M,) adds b to every row, and b's gradient is the sum over the rows.

    forward    for i:  y[i] = a[i] + b[i]        (or -, *, /)
    backward   for i:  da[i] += dy[i] * dy/da    db[i] += dy[i] * dy/db

    add:  dy/da = 1          dy/db = 1
    sub:  dy/da = 1          dy/db = -1
    mul:  dy/da = b[i]       dy/db = a[i]
    div:  dy/da = 1 / b[i]   dy/db = -a[i] / b[i]^2

    maximum:  y[i] = max(a[i], b[i]); the gradient goes to the larger input, and is split
              in halves where a[i] = b[i] (as torch.maximum: the average of the two
              one-sided choices)
"""

from loopnet.op import Binary
from loopnet.ops.layout import operands


def add_forward(i, a, b, y):
    y[i] = a[i] + b[i]


def add_grad_a(i, a, b, dy, da):
    da[i] += dy[i]


def add_grad_b(i, a, b, dy, db):
    db[i] += dy[i]


def sub_forward(i, a, b, y):
    y[i] = a[i] - b[i]


def sub_grad_a(i, a, b, dy, da):
    da[i] += dy[i]


def sub_grad_b(i, a, b, dy, db):
    db[i] -= dy[i]


def mul_forward(i, a, b, y):
    y[i] = a[i] * b[i]


def mul_grad_a(i, a, b, dy, da):
    da[i] += dy[i] * b[i]


def mul_grad_b(i, a, b, dy, db):
    db[i] += dy[i] * a[i]


def div_forward(i, a, b, y):
    y[i] = a[i] / b[i]


def div_grad_a(i, a, b, dy, da):
    da[i] += dy[i] / b[i]


def div_grad_b(i, a, b, dy, db):
    db[i] -= dy[i] * a[i] / (b[i] * b[i])


def maximum_forward(i, a, b, y):
    y[i] = a[i] if a[i] >= b[i] else b[i]


def maximum_grad_a(i, a, b, dy, da):
    if a[i] > b[i]:
        da[i] += dy[i]
    elif a[i] == b[i]:
        da[i] += dy[i] / 2  # a tie: half to each input


def maximum_grad_b(i, a, b, dy, db):
    if b[i] > a[i]:
        db[i] += dy[i]
    elif a[i] == b[i]:
        db[i] += dy[i] / 2


class Add(Binary):
    name = "add"
    forward_body, grad_a_body, grad_b_body = add_forward, add_grad_a, add_grad_b


class Sub(Binary):
    name = "sub"
    forward_body, grad_a_body, grad_b_body = sub_forward, sub_grad_a, sub_grad_b


class Mul(Binary):
    name = "mul"
    forward_body, grad_a_body, grad_b_body = mul_forward, mul_grad_a, mul_grad_b


class Div(Binary):
    name = "div"
    forward_body, grad_a_body, grad_b_body = div_forward, div_grad_a, div_grad_b


def add(a, b, name=None):
    """a + b, elementwise (shapes broadcast; a number is a constant)."""
    return Add().apply(operands(a, b, "add"), name)


def sub(a, b, name=None):
    """a - b, elementwise (shapes broadcast; a number is a constant)."""
    return Sub().apply(operands(a, b, "sub"), name)


def mul(a, b, name=None):
    """a * b, elementwise (shapes broadcast; a number is a constant)."""
    return Mul().apply(operands(a, b, "mul"), name)


def div(a, b, name=None):
    """a / b, elementwise (shapes broadcast); b = 0 gives inf or nan, as IEEE floats do."""
    return Div().apply(operands(a, b, "div"), name)


class Maximum(Binary):
    name = "maximum"
    forward_body, grad_a_body, grad_b_body = maximum_forward, maximum_grad_a, maximum_grad_b


def maximum(a, b, name=None):
    """max(a, b), elementwise (shapes broadcast); at a tie each input gets half the gradient."""
    return Maximum().apply(operands(a, b, "maximum"), name)
