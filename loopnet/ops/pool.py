"""max_pool2d, avg_pool2d: a kh x kw window moved by a stride over (N, C, H, W).

max_pool2d(x, k, stride=None, padding=0) as PyTorch: k, stride and padding are an int or a
pair (rows, columns); the stride defaults to the window (windows side by side, the
deck 000's pooling). The window at output (p, q) covers rows sh*p - ph .. sh*p - ph + kh - 1
and columns likewise; rows and columns off the image (the padding) are not read: max
pooling ignores them, average pooling counts them as zeros (divides by kh*kw, PyTorch's
default count_include_pad=True). The output is
(N, C, (H + 2ph - kh) // sh + 1, (W + 2pw - kw) // sw + 1): a remainder row or column that no
window reaches is dropped, as PyTorch does, and gets zero gradient.

    max   forward   for n,c,p,q:  O[n,c,p,q] = max over the window of X,   where[n,c,p,q] = its position
          backward  for n,c,h,w:  dX[n,c,h,w] += sum over the windows (p, q) covering (h, w)
                                                 whose max was at (h, w):  dO[n,c,p,q]
    avg   forward   for n,c,p,q:  O[n,c,p,q] = (1 / (kh kw)) sum over the window of X
          backward  for n,c,h,w:  dX[n,c,h,w] += sum over the windows (p, q) covering (h, w):  dO[n,c,p,q] / (kh kw)

Ties in max pooling: the first maximum in row-major order within the window (strict `>`)
takes the whole gradient. PyTorch's CPU kernel picks the same element for ties.

Both backward loops are in gather form: the grid runs over dX, and each element sums the
windows that read it. With a stride smaller than the window, windows overlap, and a loop
over the windows that added into dX (scatter form) would have two grid points writing one
element at once. The windows covering row h are those with
sh*p - ph <= h <= sh*p - ph + kh - 1, that is p from (h + ph - kh) // sh + 1 to (h + ph) // sh.
"""

import operator

import numpy as np

from loopnet.errors import SettingError
from loopnet.loops import loop, scratch
from loopnet.op import Op


def max_pool2d_forward(n, c, p, q, X, O, where, kh, kw, sh, sw, ph, pw):
    best_h, best_w = -1, -1
    for i in range(kh):
        h = sh * p - ph + i
        for j in range(kw):
            w = sw * q - pw + j
            if 0 <= h < X.shape[2] and 0 <= w < X.shape[3]:  # padding is never the max
                if best_h < 0 or X[n, c, h, w] > X[n, c, best_h, best_w]:
                    best_h, best_w = h, w
    O[n, c, p, q] = X[n, c, best_h, best_w]
    where[n, c, p, q] = best_h * X.shape[3] + best_w  # kept for the backward


def max_pool2d_grad_x(n, c, h, w, dO, dX, where, kh, kw, sh, sw, ph, pw):
    acc = dX.dtype.type(0)  # a few windows at most: the dtype is enough
    for p in range(max(0, (h + ph - kh) // sh + 1), min(dO.shape[2], (h + ph) // sh + 1)):
        for q in range(max(0, (w + pw - kw) // sw + 1), min(dO.shape[3], (w + pw) // sw + 1)):
            if where[n, c, p, q] == h * dX.shape[3] + w:
                acc += dO[n, c, p, q]
    dX[n, c, h, w] += acc


def avg_pool2d_forward(n, c, p, q, X, O, kh, kw, sh, sw, ph, pw):
    acc = O.dtype.type(0)
    for i in range(kh):
        h = sh * p - ph + i
        for j in range(kw):
            w = sw * q - pw + j
            if 0 <= h < X.shape[2] and 0 <= w < X.shape[3]:  # padding adds zero
                acc += X[n, c, h, w]
    O[n, c, p, q] = acc / (kh * kw)


def avg_pool2d_grad_x(n, c, h, w, dO, dX, kh, kw, sh, sw, ph, pw):
    acc = dX.dtype.type(0)
    for p in range(max(0, (h + ph - kh) // sh + 1), min(dO.shape[2], (h + ph) // sh + 1)):
        for q in range(max(0, (w + pw - kw) // sw + 1), min(dO.shape[3], (w + pw) // sw + 1)):
            acc += dO[n, c, p, q]
    dX[n, c, h, w] += acc / (kh * kw)


def int_pair(value, what, op_name, smallest):
    """An int or a pair of ints, as a pair; each at least `smallest`."""
    pair = value if isinstance(value, (tuple, list)) else (value, value)
    try:
        pair = tuple(operator.index(n) for n in pair)
    except TypeError:
        raise SettingError(f"{op_name}: {what} {value!r} must be a whole number or a pair of them") from None
    if len(pair) != 2 or min(pair) < smallest:
        raise SettingError(f"{op_name}: {what} {value!r} must be a whole number >= {smallest} or a pair of them")
    return pair


class _Pool2d(Op):
    inputs = ("x",)
    forward_body = grad_x_body = None

    def __init__(self, k, stride, padding):
        self.window = int_pair(k, "window", self.name, 1)
        self.stride = self.window if stride is None else int_pair(stride, "stride", self.name, 1)
        self.padding = int_pair(padding, "padding", self.name, 0)
        if any(2 * pad > side for pad, side in zip(self.padding, self.window)):
            raise SettingError(f"{self.name}: padding {padding!r} must be at most half the window "
                               f"{self.window} (as PyTorch): a window of padding alone has no value")
        self.params = (*self.window, *self.stride, *self.padding)

    def shape(self, x):
        if len(x.shape) != 4:
            raise self.shape_error((x,), "needs x (N, C, H, W)")
        (kh, kw), (sh, sw), (ph, pw) = self.window, self.stride, self.padding
        H, W = x.shape[2] + 2 * ph, x.shape[3] + 2 * pw
        if kh > H or kw > W:
            raise self.shape_error((x,), f"a {kh}x{kw} window does not fit a {H}x{W} image (padding included)")
        return (x.shape[0], x.shape[1], (H - kh) // sh + 1, (W - kw) // sw + 1)


class MaxPool2d(_Pool2d):
    name = "max_pool2d"
    forward_body, grad_x_body = max_pool2d_forward, max_pool2d_grad_x

    def forward(self, out, x):
        self.where = scratch(out.shape, np.int64)  # which element won each window
        loop(max_pool2d_forward, out.shape, x.value, out.value, self.where, *self.params)

    def backward(self, out, x):
        if x.requires_grad:
            loop(max_pool2d_grad_x, x.shape, out.grad, x.grad, self.where, *self.params)


class AvgPool2d(_Pool2d):
    name = "avg_pool2d"
    forward_body, grad_x_body = avg_pool2d_forward, avg_pool2d_grad_x

    def forward(self, out, x):
        loop(avg_pool2d_forward, out.shape, x.value, out.value, *self.params)

    def backward(self, out, x):
        if x.requires_grad:
            loop(avg_pool2d_grad_x, x.shape, out.grad, x.grad, *self.params)


def max_pool2d(x, k, stride=None, padding=0, name=None):
    """Max over kh x kw windows; ties go to the first maximum (row-major).

    k is an int or a pair, the stride k unless given; padded positions never win."""
    return MaxPool2d(k, stride, padding).apply((x,), name)


def avg_pool2d(x, k, stride=None, padding=0, name=None):
    """Mean over kh x kw windows.

    k is an int or a pair, the stride k unless given; padding counts as zeros (divides by
    kh*kw, as PyTorch's default)."""
    return AvgPool2d(k, stride, padding).apply((x,), name)
