"""reshape, flatten: the same elements in row-major order, seen with another shape.

    forward    for i:  y[i] = x[i]        (i runs over the flat, row-major index)
    backward   for i:  dx[i] += dy[i]

flatten(x) keeps the first axis (the minibatch) and joins the rest: (N, rest).
"""

import operator

from loopnet.errors import ShapeError
from loopnet.loops import flat, loop
from loopnet.op import Op


def reshape_forward(i, x, y):
    y[i] = x[i]


def reshape_grad_x(i, dy, dx):
    dx[i] += dy[i]


def _whole_numbers(shape):
    """A shape as a tuple of ints: one int, or a sequence of them (NumPy's ints too).
    operator.index refuses 2.5, which int() would silently cut to 2."""
    try:
        return (operator.index(shape),)
    except TypeError:
        pass
    try:
        return tuple(operator.index(n) for n in shape)
    except TypeError:
        raise ShapeError(f"reshape: the new shape {shape} must be whole numbers (one may be -1)") from None


class Reshape(Op):
    name = "reshape"
    inputs = ("x",)

    def __init__(self, shape):
        self.target = _whole_numbers(shape)

    def shape(self, x):
        target = list(self.target)
        if target.count(-1) > 1:
            raise self.shape_error((x,), f"at most one -1 in the new shape {self.target}")
        if -1 in target:
            known = 1
            for n in target:
                known *= n if n != -1 else 1
            if known == 0 or x.size % known:
                raise self.shape_error((x,), f"cannot infer -1 in {self.target} for {x.size} elements")
            target[target.index(-1)] = x.size // known
        size = 1
        for n in target:
            size *= n
        if size != x.size or min(target, default=0) < 0:
            raise self.shape_error((x,), f"cannot view {x.size} elements as {self.target}")
        return tuple(target)

    def forward(self, out, x):
        loop(reshape_forward, (x.size,), flat(x.value), flat(out.value))

    def backward(self, out, x):
        if x.requires_grad:
            loop(reshape_grad_x, (x.size,), flat(out.grad), flat(x.grad))


class Flatten(Reshape):
    name = "flatten"

    def __init__(self):
        self.target = None

    def shape(self, x):
        if len(x.shape) < 1:
            raise self.shape_error((x,), "needs a first (minibatch) axis")
        rest = 1
        for n in x.shape[1:]:
            rest *= n
        return (x.shape[0], rest)


def reshape(x, shape, name=None):
    """The same elements with a new shape (row-major; one entry may be -1)."""
    return Reshape(shape).apply((x,), name)


def flatten(x, name=None):
    """(N, d1, d2, ...) to (N, d1*d2*...), keeping the minibatch axis."""
    return Flatten().apply((x,), name)
