"""conv1d(x, W, b): the convolution over one axis (a sequence), stride 1, no padding.

x (N, C, L), W (C', C, k), b (C',) gives O (N, C', L'), L' = L - k + 1:

    forward    for n,c',l:  O[n,c',l] = b[c'] + sum_{c,i} W[c',c,i] * X[n,c,l+i]
    backward   for c',c,i:  dW[c',c,i] += sum_{n,l} dO[n,c',l] * X[n,c,l+i]
               for c':      db[c']     += sum_{n,l} dO[n,c',l]
               for n,c,t:   dX[n,c,t]  += sum_{c',i} dO[n,c',t-i] * W[c',c,i]
                                          (over the i where t-i falls inside O)

conv2d (loopnet/ops/conv.py) with one spatial axis: the same loops with the w axis gone,
written out so that a sequence model reads as its own loops. Like conv2d it is a
cross-correlation (the kernel is not flipped), as PyTorch's Conv1d. dX is in gather form:
the input position t sums every output l = t - i whose window covered it, so each grid
point owns what it writes; the kernel appears flipped there (t - i) by itself.

Each loop declares its sum (`loopnet.schedule`) for the CUDA backend's tiles; an index off
an array (t - i < 0, or past the end) reads as zero there, which is the bounds test below.
Accuracy: the sums accumulate in float64 (`acc = scalar.zero64()`).
"""

from loopnet import scalar
from loopnet.loops import loop
from loopnet.op import Op
from loopnet.schedule import contraction


@contraction("O[n,co,l] = b[co] + sum_{c,i} X[n,c,l+i] * W[co,c,i]")
def conv1d_forward(n, co, l, X, W, b, O):
    acc = scalar.zero64()
    for c in range(W.shape[1]):
        for i in range(W.shape[2]):
            acc += W[co, c, i] * X[n, c, l + i]
    O[n, co, l] = b[co] + acc


@contraction("dW[co,c,i] += sum_{n,l} dO[n,co,l] * X[n,c,l+i]")
def conv1d_grad_W(co, c, i, X, dO, dW):
    acc = scalar.zero64()  # a sum over the minibatch and every position
    for n in range(dO.shape[0]):
        for l in range(dO.shape[2]):
            acc += dO[n, co, l] * X[n, c, l + i]
    dW[co, c, i] += acc


def conv1d_grad_b(co, dO, db):
    acc = scalar.zero64()
    for n in range(dO.shape[0]):
        for l in range(dO.shape[2]):
            acc += dO[n, co, l]
    db[co] += acc


@contraction("dX[n,c,t] += sum_{co,i} dO[n,co,t-i] * W[co,c,i]")
def conv1d_grad_x(n, c, t, W, dO, dX):
    acc = scalar.zero64()
    for co in range(W.shape[0]):
        for i in range(W.shape[2]):
            if 0 <= t - i < dO.shape[2]:  # the outputs whose window covered position t
                acc += dO[n, co, t - i] * W[co, c, i]
    dX[n, c, t] += acc


class Conv1d(Op):
    name = "conv1d"
    inputs = ("x", "W", "b")

    def shape(self, x, W, b):
        if len(x.shape) != 3 or len(W.shape) != 3 or len(b.shape) != 1:
            raise self.shape_error((x, W, b), "needs x (N, C, L), W (C', C, k) and b (C',)")
        if W.shape[1] != x.shape[1]:
            raise self.shape_error((x, W, b), f"x has {x.shape[1]} channels but W expects {W.shape[1]}")
        if b.shape[0] != W.shape[0]:
            raise self.shape_error((x, W, b), f"b has {b.shape[0]} entries but W makes {W.shape[0]} channels")
        if not 1 <= W.shape[2] <= x.shape[2]:
            raise self.shape_error((x, W, b), f"a kernel of {W.shape[2]} does not fit a sequence of {x.shape[2]}")
        return (x.shape[0], W.shape[0], x.shape[2] - W.shape[2] + 1)

    def forward(self, out, x, W, b):
        loop(conv1d_forward, out.shape, x.value, W.value, b.value, out.value)

    def backward(self, out, x, W, b):
        if W.requires_grad:
            loop(conv1d_grad_W, W.shape, x.value, out.grad, W.grad)
        if b.requires_grad:
            loop(conv1d_grad_b, b.shape, out.grad, b.grad)
        if x.requires_grad:
            loop(conv1d_grad_x, x.shape, W.value, out.grad, x.grad)


def conv1d(x, W, b, name=None):
    """1-D convolution (cross-correlation, as PyTorch's Conv1d), stride 1, no padding.

    x (N, C, L), W (C', C, k) and b (C',) give (N, C', L - k + 1)."""
    return Conv1d().apply((x, W, b), name)
