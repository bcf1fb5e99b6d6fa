"""transpose, permute, broadcast_to: the same numbers in another arrangement.

transpose(x), x (n, m), gives y (m, n), deck 001's W^T x and deck 002's W_i^T g:

    forward    for i,j:  y[i,j] = x[j,i]
    backward   for j,i:  dx[j,i] += dy[i,j]

permute(x, axes) reorders the axes of any rank, as `torch.permute` and `np.transpose`:
y's axis a is x's axis axes[a]. Each element moves once, so the backward is the inverse
permutation, gathered in x's own order:

    forward    for every index I of y:  y[I] = x[I read through axes]
    backward   for every index J of x:  dx[J] += dy[J read through the inverse axes]

broadcast_to(x, shape) repeats x along new leading axes and along its axes of length 1,
as `np.broadcast_to` (shapes line up from the right). Every copy of an element read the
same x element, so its gradient is the sum over the copies: the backward of a broadcast
is a reduction over the broadcast axes.

    forward    for every index I of y:  y[I] = x[I with the broadcast axes dropped]
    backward   for every index J of x:  dx[J] += sum over the copies C of J:  dy[C]

The loops of permute and broadcast_to run over flat (row-major) indices, so one body serves
every rank. A flat index i turns into a position in another array by its digits: walking
y's axes from the last, `i % size[a]` is the index along axis a and `i // size[a]` the
rest; each axis's index times that axis's step (`step[a]`, the elements between
neighbours along it in the array read) adds up to the position read. A broadcast axis has
step 0: every index along it reads the same element.
Accuracy: the sum over copies accumulates in float64 (`scalar.zero64()`).

The binary ops (add, sub, mul, div, maximum, pow) broadcast through this op: where their
operands' shapes differ, `operands` puts a broadcast_to node in front of the smaller one,
so their own loops stay `y[i] = a[i] + b[i]` and the sum over the copies is a node of its
own, visible in `trace` and `explain`. A Python number becomes a constant Input (no
gradient) of the other operand's shape and dtype.
"""

import operator

import numbers

import numpy as np

from loopnet import scalar
from loopnet.errors import ShapeError
from loopnet.graph import Input, Node
from loopnet.loops import flat, loop, to_backend
from loopnet.op import Op
from loopnet.schedule import tiles


@tiles(8, "x")  # reads x down a column: where its rows share cache sets, Numba runs 8 x 8 tiles
def transpose_forward(i, j, x, y):
    y[i, j] = x[j, i]


@tiles(8, "dy")  # (as the forward, for dy)
def transpose_grad_x(j, i, dy, dx):
    dx[j, i] += dy[i, j]


def permute_forward(i, x, y, sizes, steps):
    at = 0
    rest = i
    for a in range(sizes.shape[0] - 1, -1, -1):  # y's axes, last first: i's digits
        at += (rest % sizes[a]) * steps[a]  # steps[a]: x's step along the axis y's axis a reads
        rest //= sizes[a]
    y[i] = x[at]


def permute_grad_x(j, dy, dx, sizes, steps):
    at = 0
    rest = j
    for a in range(sizes.shape[0] - 1, -1, -1):  # x's axes, last first: j's digits
        at += (rest % sizes[a]) * steps[a]  # dy's step along the axis that x's axis a became
        rest //= sizes[a]
    dx[j] += dy[at]


def broadcast_to_forward(i, x, y, sizes, steps):
    at = 0
    rest = i
    for a in range(sizes.shape[0] - 1, -1, -1):  # y's axes, last first
        at += (rest % sizes[a]) * steps[a]  # steps[a] = 0 on a broadcast axis
        rest //= sizes[a]
    y[i] = x[at]


def broadcast_to_grad_x(j, dy, dx, sizes, steps, copy_sizes, copy_steps):
    first = 0
    rest = j
    for a in range(sizes.shape[0] - 1, -1, -1):  # where x's element j sits in dy (first copy)
        first += (rest % sizes[a]) * steps[a]
        rest //= sizes[a]
    copies = 1
    for a in range(copy_sizes.shape[0]):
        copies *= copy_sizes[a]
    acc = scalar.zero64()
    for c in range(copies):  # every copy: c's digits along the broadcast axes
        at = first
        rest = c
        for a in range(copy_sizes.shape[0] - 1, -1, -1):
            at += (rest % copy_sizes[a]) * copy_steps[a]
            rest //= copy_sizes[a]
        acc += dy[at]
    dx[j] += acc


def _row_major_steps(shape):
    """Elements between neighbours along each axis of a row-major array of `shape`."""
    steps, step = [], 1
    for n in reversed(shape):
        steps.append(step)
        step *= n
    return steps[::-1]


def _ints(values):
    """Sizes and steps as an int64 array where the loops run (CUDA reads them on the device)."""
    return to_backend(np.array(values, dtype=np.int64).reshape(len(values)))


class Transpose(Op):
    name = "transpose"
    inputs = ("x",)

    def shape(self, x):
        if len(x.shape) != 2:
            raise self.shape_error((x,), "needs a matrix (2-D); for other ranks use permute(x, axes)")
        return (x.shape[1], x.shape[0])

    def forward(self, out, x):
        loop(transpose_forward, out.shape, x.value, out.value)

    def backward(self, out, x):
        if x.requires_grad:
            loop(transpose_grad_x, x.shape, out.grad, x.grad)


def _axes(axes, rank):
    try:
        axes = tuple(operator.index(a) for a in axes)
    except TypeError:
        raise ShapeError(f"permute: axes {axes!r} must be a sequence of whole numbers") from None
    normal = tuple(a + rank if a < 0 else a for a in axes)
    if sorted(normal) != list(range(rank)):
        raise ShapeError(f"permute: axes {axes} must list each of the {rank} axes once (0..{rank - 1}, or negative)")
    return normal


class Permute(Op):
    name = "permute"
    inputs = ("x",)

    def __init__(self, axes):
        self.given = axes

    def shape(self, x):
        self.axes = _axes(self.given, len(x.shape))
        return tuple(x.shape[a] for a in self.axes)

    def forward(self, out, x):
        x_steps = _row_major_steps(x.shape)
        loop(permute_forward, (out.size,), flat(x.value), flat(out.value),
             _ints(out.shape), _ints([x_steps[a] for a in self.axes]))

    def backward(self, out, x):
        if x.requires_grad:
            y_steps = _row_major_steps(out.shape)
            inverse = [self.axes.index(a) for a in range(len(self.axes))]  # x's axis a is y's axis inverse[a]
            loop(permute_grad_x, (x.size,), flat(out.grad), flat(x.grad),
                 _ints(x.shape), _ints([y_steps[b] for b in inverse]))


def broadcast_shape(*shapes):
    """NumPy's rule: line the shapes up from the right; along each axis the sizes must be
    equal or 1. None where they do not broadcast."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for sizes in zip(*padded):
        big = {n for n in sizes if n != 1}
        if len(big) > 1:
            return None
        out.append(big.pop() if big else 1)
    return tuple(out)


class BroadcastTo(Op):
    name = "broadcast_to"
    inputs = ("x",)

    def __init__(self, shape):
        try:
            self.target = tuple(operator.index(n) for n in shape)
        except TypeError:
            raise ShapeError(f"broadcast_to: the shape {shape!r} must be a sequence of whole numbers") from None

    def shape(self, x):
        if (len(self.target) < len(x.shape) or min(self.target, default=0) < 0
                or broadcast_shape(x.shape, self.target) != self.target):
            raise self.shape_error((x,), f"cannot broadcast to {self.target}: from the right, each of x's "
                                         f"sizes must equal the target's or be 1")
        return self.target

    def _plan(self, x):
        """x's shape padded to y's rank; for each y axis, x's step (0 where broadcast)."""
        lead = len(self.target) - len(x.shape)
        padded = (1,) * lead + tuple(x.shape)
        x_steps = [0] * lead + _row_major_steps(x.shape)
        reads = [0 if padded[a] == 1 and self.target[a] != 1 else x_steps[a] for a in range(len(self.target))]
        return padded, reads

    def forward(self, out, x):
        _, reads = self._plan(x)
        loop(broadcast_to_forward, (out.size,), flat(x.value), flat(out.value), _ints(out.shape), _ints(reads))

    def backward(self, out, x):
        if not x.requires_grad:
            return
        padded, reads = self._plan(x)
        y_steps = _row_major_steps(out.shape)
        copied = [a for a in range(len(self.target)) if reads[a] == 0 and self.target[a] != 1]
        loop(broadcast_to_grad_x, (x.size,), flat(out.grad), flat(x.grad), _ints(padded), _ints(y_steps),
             _ints([self.target[a] for a in copied]), _ints([y_steps[a] for a in copied]))


def transpose(x, name=None):
    """x^T for a matrix x (n, m): y[i,j] = x[j,i], (m, n)."""
    return Transpose().apply((x,), name)


def permute(x, axes, name=None):
    """x with its axes reordered: y's axis a is x's axis axes[a] (as torch.permute)."""
    return Permute(axes).apply((x,), name)


def broadcast_to(x, shape, name=None):
    """x repeated to `shape` by NumPy's rules; the backward sums over the copies."""
    return BroadcastTo(shape).apply((x,), name)


def _constant(value, other, op_name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op_name}: an operand must be a loopnet node or a number, got {type(value).__name__}; "
                        f"wrap arrays in Input(...) or Parameter(...)")
    # filled to the other operand's shape: one constant node, no broadcast node in front of it
    return Input(np.full(other.shape, value, dtype=other.dtype), name=f"{value:g}")


def operands(a, b, op_name):
    """(a, b) as two nodes of one shape: numbers become constants, and a smaller shape is
    broadcast (NumPy's rule) by a broadcast_to node."""
    if not isinstance(a, Node) and not isinstance(b, Node):
        raise TypeError(f"{op_name}: at least one operand must be a loopnet node, got "
                        f"{type(a).__name__} and {type(b).__name__}")
    a = a if isinstance(a, Node) else _constant(a, b, op_name)
    b = b if isinstance(b, Node) else _constant(b, a, op_name)
    if a.shape == b.shape:
        return a, b
    shape = broadcast_shape(a.shape, b.shape)
    if shape is None:
        raise ShapeError(f"{op_name}: shapes {a.shape} and {b.shape} do not broadcast: from the right, each pair of "
                         f"sizes must be equal or one of them 1 (got a={a.name!r} {a.shape}, b={b.name!r} {b.shape})")
    return (a if a.shape == shape else broadcast_to(a, shape),
            b if b.shape == shape else broadcast_to(b, shape))
