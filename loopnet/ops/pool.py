"""max_pool2d(x, k), avg_pool2d(x, k): k x k windows, stride k, over (N, C, H, W).

The output is (N, C, H // k, W // k); a remainder row or column is dropped, as PyTorch
does, and gets zero gradient.

    max   forward   for n,c,p,q:  O[n,c,p,q] = max_{i,j < k} X[n,c,kp+i,kq+j]
          backward  for n,c,p,q:  dX[n,c,kp+i*,kq+j*] += dO[n,c,p,q]   at the max (i*, j*)
    avg   forward   for n,c,p,q:  O[n,c,p,q] = (1/k^2) sum_{i,j < k} X[n,c,kp+i,kq+j]
          backward  for n,c,p,q:  dX[n,c,kp+i,kq+j] += dO[n,c,p,q] / k^2   for every i, j

Ties in max pooling: the first maximum in row-major order within the window (strict `>`)
takes the whole gradient. PyTorch's CPU kernel picks the same element for ties.

Windows do not overlap (stride = k), so the grid point (n, c, p, q) owns its window of dX
as well as its output: both loops are race-free in gather form.
"""

from loopnet.loops import loop
from loopnet.op import Op


def max_pool2d_forward(n, c, p, q, X, O, k):
    best = X[n, c, k * p, k * q]
    for i in range(k):
        for j in range(k):
            if X[n, c, k * p + i, k * q + j] > best:
                best = X[n, c, k * p + i, k * q + j]
    O[n, c, p, q] = best


def max_pool2d_grad_x(n, c, p, q, X, dO, dX, k):
    best_i, best_j = 0, 0
    for i in range(k):
        for j in range(k):
            if X[n, c, k * p + i, k * q + j] > X[n, c, k * p + best_i, k * q + best_j]:
                best_i, best_j = i, j
    dX[n, c, k * p + best_i, k * q + best_j] += dO[n, c, p, q]


def avg_pool2d_forward(n, c, p, q, X, O, k):
    acc = O.dtype.type(0)
    for i in range(k):
        for j in range(k):
            acc += X[n, c, k * p + i, k * q + j]
    O[n, c, p, q] = acc / (k * k)


def avg_pool2d_grad_x(n, c, p, q, X, dO, dX, k):
    share = dO[n, c, p, q] / (k * k)
    for i in range(k):
        for j in range(k):
            dX[n, c, k * p + i, k * q + j] += share


class _Pool2d(Op):
    inputs = ("x",)
    forward_body = grad_x_body = None

    def __init__(self, k):
        self.k = int(k)

    def shape(self, x):
        if len(x.shape) != 4:
            raise self.shape_error((x,), "needs x (N, C, H, W)")
        if self.k < 1 or self.k > x.shape[2] or self.k > x.shape[3]:
            raise self.shape_error((x,), f"a {self.k}x{self.k} window does not fit a {x.shape[2]}x{x.shape[3]} image")
        return (x.shape[0], x.shape[1], x.shape[2] // self.k, x.shape[3] // self.k)

    def forward(self, out, x):
        loop(self.forward_body, out.shape, x.value, out.value, self.k)

    def backward(self, out, x):
        if x.requires_grad:
            loop(self.grad_x_body, out.shape, x.value, out.grad, x.grad, self.k)


class MaxPool2d(_Pool2d):
    name = "max_pool2d"
    forward_body, grad_x_body = max_pool2d_forward, max_pool2d_grad_x


class AvgPool2d(_Pool2d):
    name = "avg_pool2d"
    forward_body, grad_x_body = avg_pool2d_forward, avg_pool2d_grad_x


def max_pool2d(x, k, name=None):
    """Max over k x k windows, stride k; ties go to the first maximum (row-major)."""
    return MaxPool2d(k).apply((x,), name)


def avg_pool2d(x, k, name=None):
    """Mean over k x k windows, stride k."""
    return AvgPool2d(k).apply((x,), name)
