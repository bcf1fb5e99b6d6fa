"""affine(x, W, b): the fully connected layer Y = X W + b, rows are examples.

x (N, D), W (D, M), b (M,) gives Y (N, M).

    forward    for n,m:  Y[n,m]  = b[m] + sum_d X[n,d] * W[d,m]
    backward   for n,d:  dX[n,d] += sum_m dY[n,m] * W[d,m]
               for d,m:  dW[d,m] += sum_n X[n,d] * dY[n,m]
               for m:    db[m]   += sum_n dY[n,m]

The bias gradient sums over the minibatch: every example's output used the same b.

Memory order: where a sum runs down a column, the loop reads a transposed copy instead
(WT[m,d] = W[d,m], XT[d,n] = X[n,d], dYT[m,n] = dY[n,m]), so the inner index walks a
row; see `loopnet.loops.transposed` (on cuda it is a view, read in order by the
tiles). Same terms, same math, memory read in order. The
`@contraction` line above each loop restates its sum so the Numba backend may compute it
in register-tiled blocks (`loopnet.schedule`); the loop below it stays the definition.

Accuracy: each sum (over features, or dW's over the whole minibatch) accumulates in float64
(`acc = scalar.zero64()`) and is stored in the array's dtype.
"""

from loopnet import scalar
from loopnet.loops import loop, transposed
from loopnet.op import Op
from loopnet.schedule import contraction


@contraction("Y[n,m] = b[m] + sum_d X[n,d] * WT[m,d]")
def affine_forward(n, m, X, WT, b, Y):
    acc = scalar.zero64()  # a long sum: float64 whatever the dtype (stored as Y's dtype)
    for d in range(X.shape[1]):
        acc += X[n, d] * WT[m, d]  # WT[m,d] = W[d,m]
    Y[n, m] = b[m] + acc


@contraction("dX[n,d] += sum_m dY[n,m] * W[d,m]")
def affine_grad_x(n, d, W, dY, dX):
    acc = scalar.zero64()
    for m in range(W.shape[1]):
        acc += dY[n, m] * W[d, m]
    dX[n, d] += acc


@contraction("dW[d,m] += sum_n XT[d,n] * dYT[m,n]")
def affine_grad_W(d, m, XT, dYT, dW):
    acc = scalar.zero64()  # a sum over the whole minibatch: float64
    for n in range(XT.shape[1]):
        acc += XT[d, n] * dYT[m, n]  # X[n,d] * dY[n,m]
    dW[d, m] += acc


def affine_grad_b(m, dYT, db):
    acc = scalar.zero64()  # float64 whatever the dtype: a sum over the whole minibatch
    for n in range(dYT.shape[1]):
        acc += dYT[m, n]  # dY[n,m]
    db[m] += acc


class Affine(Op):
    name = "affine"
    inputs = ("x", "W", "b")

    def shape(self, x, W, b):
        if len(x.shape) != 2 or len(W.shape) != 2 or len(b.shape) != 1:
            raise self.shape_error((x, W, b), "needs x (N, D), W (D, M) and b (M,)")
        if x.shape[1] != W.shape[0]:
            raise self.shape_error((x, W, b), f"x has {x.shape[1]} features but W expects {W.shape[0]}")
        if b.shape[0] != W.shape[1]:
            raise self.shape_error((x, W, b), f"b has {b.shape[0]} entries but W gives {W.shape[1]} outputs")
        return (x.shape[0], W.shape[1])

    def forward(self, out, x, W, b):
        loop(affine_forward, out.shape, x.value, transposed(W.value), b.value, out.value)

    def backward(self, out, x, W, b):
        if x.requires_grad:
            loop(affine_grad_x, x.shape, W.value, out.grad, x.grad)
        if W.requires_grad or b.requires_grad:
            dYT = transposed(out.grad)
            if W.requires_grad:
                loop(affine_grad_W, W.shape, transposed(x.value), dYT, W.grad)
            if b.requires_grad:
                loop(affine_grad_b, b.shape, dYT, b.grad)


def affine(x, W, b, name=None):
    """X W + b for x (N, D), W (D, M), b (M,): a fully connected layer, (N, M)."""
    return Affine().apply((x, W, b), name)
