"""softmax, log_softmax: along the last axis; every other axis is a batch of rows.

Along another axis (`axis=`), the wrapper moves that axis last with `permute`, runs these
same row loops, and moves it back: two layout nodes in the trace, no second copy of the math.

For one row x of length K, with m = max_k x[k] and s = sum_k e^(x[k] - m):

    softmax       y[k] = e^(x[k] - m) / s
                  dx[k] += y[k] * (dy[k] - sum_j dy[j] y[j])
    log_softmax   y[k] = x[k] - m - ln s
                  dx[k] += dy[k] - e^(y[k]) * sum_j dy[j]

Subtracting the row's max first is the log-sum-exp trick: every exponent is <= 0, so
nothing overflows, and the result is the same as without it (the e^-m cancels). m and s
come from `scalar.row_max` and `scalar.row_sum_exp`, which softmax_cross_entropy shares.
"""

from loopnet import scalar
from loopnet.errors import ShapeError
from loopnet.loops import loop, rows
from loopnet.op import Op
from loopnet.ops.layout import permute


def softmax_forward(r, x, y):
    top = scalar.row_max(x, r)
    total = scalar.row_sum_exp(x, r, top)
    for k in range(x.shape[1]):
        y[r, k] = scalar.exp(x[r, k] - top) / total


def softmax_grad_x(r, y, dy, dx):
    dot = scalar.zero64()  # float64 whatever the dtype, as every row sum here
    for j in range(y.shape[1]):
        dot += dy[r, j] * y[r, j]
    for k in range(y.shape[1]):
        dx[r, k] += y[r, k] * (dy[r, k] - dot)


def log_softmax_forward(r, x, y):
    top = scalar.row_max(x, r)
    log_total = scalar.log(scalar.row_sum_exp(x, r, top))
    for k in range(x.shape[1]):
        y[r, k] = x[r, k] - top - log_total


def log_softmax_grad_x(r, y, dy, dx):
    total = scalar.zero64()
    for j in range(y.shape[1]):
        total += dy[r, j]
    for k in range(y.shape[1]):
        dx[r, k] += dy[r, k] - scalar.exp(y[r, k]) * total


class Softmax(Op):
    name = "softmax"
    inputs = ("x",)
    forward_body, grad_x_body = softmax_forward, softmax_grad_x

    def shape(self, x):
        if len(x.shape) == 0 or x.shape[-1] == 0:
            raise self.shape_error((x,), "needs at least one axis, and a last axis of length >= 1")
        return x.shape

    def forward(self, out, x):
        grid = (rows(x.value).shape[0],)
        loop(self.forward_body, grid, rows(x.value), rows(out.value))

    def backward(self, out, x):
        if x.requires_grad:
            grid = (rows(x.value).shape[0],)
            loop(self.grad_x_body, grid, rows(out.value), rows(out.grad), rows(x.grad))


class LogSoftmax(Softmax):
    name = "log_softmax"
    forward_body, grad_x_body = log_softmax_forward, log_softmax_grad_x


def _along(op, x, axis, name):
    """op along `axis`: directly for the last axis, else between two permutes."""
    rank = len(x.shape)
    if rank == 0 or axis in (-1, rank - 1):
        return op.apply((x,), name)
    if isinstance(axis, bool) or not isinstance(axis, int) or not -rank <= axis < rank:
        raise ShapeError(f"{op.name}: axis {axis!r} must be a whole number in [-{rank}, {rank - 1}] "
                         f"for an input with {rank} axes")
    axis %= rank
    order = [a for a in range(rank) if a != axis] + [axis]  # the axis moved last
    back = [order.index(a) for a in range(rank)]
    return permute(op.apply((permute(x, order),)), back, name=name)


def softmax(x, axis=-1, name=None):
    """e^x / sum e^x along `axis` (default the last: each row sums to 1), computed stably."""
    return _along(Softmax(), x, axis, name)


def log_softmax(x, axis=-1, name=None):
    """x - ln sum e^x along `axis` (default the last), computed stably."""
    return _along(LogSoftmax(), x, axis, name)
