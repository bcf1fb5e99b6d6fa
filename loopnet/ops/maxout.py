"""maxout(x, W, b): k affine pieces, and the max of them, per output unit.

x (N, D), W (k, D, M), b (k, M) gives y (N, M):

    forward    for n,m:  y[n,m] = max_p ( b[p,m] + sum_d x[n,d] W[p,d,m] ),  piece[n,m] = the argmax
    backward   for n,d:  dx[n,d]   += sum_m dy[n,m] * W[piece[n,m], d, m]
               for p,d,m: dW[p,d,m] += sum_n [piece[n,m] == p] x[n,d] dy[n,m]
               for p,m:  db[p,m]   += sum_n [piece[n,m] == p] dy[n,m]

Only the winning piece gets the gradient (a max is a switch). The forward writes which
piece won into `piece`, kept for the backward; ties go to the first piece.

Accuracy: every sum (each piece's, and the gradients' over the minibatch) accumulates in
float64 (`scalar.zero64()`) and is stored in the array's dtype.
"""

import numpy as np

from loopnet import scalar
from loopnet.loops import loop, scratch
from loopnet.op import Op


def maxout_forward(n, m, x, W, b, y, piece):
    best = scalar.zero64()
    for p in range(W.shape[0]):
        acc = scalar.zero64() + b[p, m]  # float64, as every contraction's sum
        for d in range(x.shape[1]):
            acc += x[n, d] * W[p, d, m]
        if p == 0 or acc > best:  # ties keep the first piece
            best = acc
            piece[n, m] = p
    y[n, m] = best


def maxout_grad_x(n, d, W, piece, dy, dx):
    acc = scalar.zero64()
    for m in range(dy.shape[1]):
        acc += dy[n, m] * W[piece[n, m], d, m]
    dx[n, d] += acc


def maxout_grad_W(p, d, m, x, piece, dy, dW):
    acc = scalar.zero64()  # sums over the minibatch accumulate in float64
    for n in range(x.shape[0]):
        if piece[n, m] == p:
            acc += x[n, d] * dy[n, m]
    dW[p, d, m] += acc


def maxout_grad_b(p, m, piece, dy, db):
    acc = scalar.zero64()
    for n in range(dy.shape[0]):
        if piece[n, m] == p:
            acc += dy[n, m]
    db[p, m] += acc


class Maxout(Op):
    name = "maxout"
    inputs = ("x", "W", "b")

    def shape(self, x, W, b):
        if len(x.shape) != 2 or len(W.shape) != 3 or len(b.shape) != 2:
            raise self.shape_error((x, W, b), "needs x (N, D), W (k, D, M) and b (k, M)")
        if W.shape[1] != x.shape[1] or b.shape != (W.shape[0], W.shape[2]) or W.shape[0] < 1:
            raise self.shape_error((x, W, b), f"W must be (k, {x.shape[1]}, M) and b (k, M) with k >= 1")
        return (x.shape[0], W.shape[2])

    def forward(self, out, x, W, b):
        self.piece = scratch(out.shape, np.int64)
        loop(maxout_forward, out.shape, x.value, W.value, b.value, out.value, self.piece)

    def backward(self, out, x, W, b):
        if x.requires_grad:
            loop(maxout_grad_x, x.shape, W.value, self.piece, out.grad, x.grad)
        if W.requires_grad:
            loop(maxout_grad_W, W.shape, x.value, self.piece, out.grad, W.grad)
        if b.requires_grad:
            loop(maxout_grad_b, b.shape, self.piece, out.grad, b.grad)


def maxout(x, W, b, name=None):
    """max over k pieces of x W[p] + b[p]: x (N, D), W (k, D, M), b (k, M) -> (N, M)."""
    return Maxout().apply((x, W, b), name)
