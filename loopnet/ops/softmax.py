"""softmax, log_softmax: along the last axis; every other axis is a batch of rows.

For one row x of length K, with m = max_k x[k] and s = sum_k e^(x[k] - m):

    softmax       y[k] = e^(x[k] - m) / s
                  dx[k] += y[k] * (dy[k] - sum_j dy[j] y[j])
    log_softmax   y[k] = x[k] - m - ln s
                  dx[k] += dy[k] - e^(y[k]) * sum_j dy[j]

Subtracting the row's max first is the log-sum-exp trick: every exponent is <= 0, so
nothing overflows, and the result is the same as without it (the e^-m cancels).
"""

from loopnet import scalar
from loopnet.op import Op, loop, rows


def softmax_forward(r, x, y):
    top = x[r, 0]
    for k in range(1, x.shape[1]):
        if x[r, k] > top:
            top = x[r, k]
    total = y.dtype.type(0)
    for k in range(x.shape[1]):
        y[r, k] = scalar.exp(x[r, k] - top)
        total += y[r, k]
    for k in range(x.shape[1]):
        y[r, k] = y[r, k] / total


def softmax_backward(r, y, dy, dx):
    dot = dx.dtype.type(0)
    for j in range(y.shape[1]):
        dot += dy[r, j] * y[r, j]
    for k in range(y.shape[1]):
        dx[r, k] += y[r, k] * (dy[r, k] - dot)


def log_softmax_forward(r, x, y):
    top = x[r, 0]
    for k in range(1, x.shape[1]):
        if x[r, k] > top:
            top = x[r, k]
    total = y.dtype.type(0)
    for k in range(x.shape[1]):
        total += scalar.exp(x[r, k] - top)
    log_total = scalar.log(total)
    for k in range(x.shape[1]):
        y[r, k] = x[r, k] - top - log_total


def log_softmax_backward(r, y, dy, dx):
    total = dx.dtype.type(0)
    for j in range(y.shape[1]):
        total += dy[r, j]
    for k in range(y.shape[1]):
        dx[r, k] += dy[r, k] - scalar.exp(y[r, k]) * total


class Softmax(Op):
    name = "softmax"
    inputs = ("x",)
    forward_body, backward_body = staticmethod(softmax_forward), staticmethod(softmax_backward)

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
            loop(self.backward_body, grid, rows(out.value), rows(out.grad), rows(x.grad))


class LogSoftmax(Softmax):
    name = "log_softmax"
    forward_body, backward_body = staticmethod(log_softmax_forward), staticmethod(log_softmax_backward)


def softmax(x, name=None):
    """e^x / sum e^x along the last axis (each row sums to 1), computed stably."""
    return Softmax().apply((x,), name)


def log_softmax(x, name=None):
    """x - log sum e^x along the last axis, by the log-sum-exp trick."""
    return LogSoftmax().apply((x,), name)
