"""conv2d(x, W, b, padding=0): the slide's convolution, stride 1, over a minibatch.

With padding > 0 the wrapper inserts pad2d(x, padding) (loopnet/ops/pad.py) and these loops
run on the padded x: deck 001's CNN example pads its 5x5 image by one before a 3x3 kernel.

x (N, C, H, Wd), W (C', C, kh, kw), b (C',) gives O (N, C', H', W'), H' = H - kh + 1,
W' = Wd - kw + 1:

    forward    for n,c',h',w':  O[n,c',h',w'] = b[c'] + sum_{c,i,j} W[c',c,i,j] * X[n,c,h'+i,w'+j]
    backward   for c',c,i,j:    dW[c',c,i,j] += sum_{n,h',w'} dO[n,c',h',w'] * X[n,c,h'+i,w'+j]
               for c':          db[c']       += sum_{n,h',w'} dO[n,c',h',w']
               for n,c,h,w:     dX[n,c,h,w]  += sum_{c',i,j} dO[n,c',h-i,w-j] * W[c',c,i,j]
                                                (over the (i, j) where h-i, w-j fall inside O)

Loop order: each grid point owns a whole output plane (n, c') in the forward and a whole
input-gradient plane (n, c) in dX, and walks it with the output column innermost, so
the innermost loop is a contiguous multiply-add with one weight held in a register
(measured as fast as PyTorch's CPU conv). In dX the plane's owner adds each term where it
lands: writes stay inside the owned plane, so planes still run in parallel without races.

The `@contraction` line above three of the loops restates each as one sum of products
(`loopnet.schedule`): the CUDA backend runs it as shared-memory tiles over every output
element, since a thread per plane leaves most of a GPU idle. The loop stays the definition.

Accuracy: the gradients' sums over the minibatch and every position accumulate in float64
(`acc = scalar.zero64()`); the forward's short sum over one window stays in the dtype.
"""

from loopnet import scalar
from loopnet.loops import loop
from loopnet.op import Op
from loopnet.ops.pad import pad2d
from loopnet.schedule import contraction


@contraction("O[n,co,h,w] = b[co] + sum_{c,i,j} X[n,c,h+i,w+j] * W[co,c,i,j]")
def conv2d_forward(n, co, X, W, b, O):
    for h in range(O.shape[2]):
        for w in range(O.shape[3]):
            O[n, co, h, w] = b[co]
    for c in range(W.shape[1]):
        for i in range(W.shape[2]):
            for j in range(W.shape[3]):
                weight = W[co, c, i, j]
                for h in range(O.shape[2]):
                    for w in range(O.shape[3]):
                        O[n, co, h, w] += weight * X[n, c, h + i, w + j]


@contraction("dW[co,c,i,j] += sum_{n,h,w} dO[n,co,h,w] * X[n,c,h+i,w+j]")
def conv2d_grad_W(co, c, i, j, X, dO, dW):
    acc = scalar.zero64()  # float64 whatever the dtype: a sum over the minibatch and every position
    for n in range(dO.shape[0]):
        for h in range(dO.shape[2]):
            for w in range(dO.shape[3]):
                acc += dO[n, co, h, w] * X[n, c, h + i, w + j]
    dW[co, c, i, j] += acc


def conv2d_grad_b(co, dO, db):
    acc = scalar.zero64()  # float64 whatever the dtype: a sum over the minibatch and every position
    for n in range(dO.shape[0]):
        for h in range(dO.shape[2]):
            for w in range(dO.shape[3]):
                acc += dO[n, co, h, w]
    db[co] += acc


@contraction("dX[n,c,h,w] += sum_{co,i,j} dO[n,co,h-i,w-j] * W[co,c,i,j]")  # (as a gather)
def conv2d_grad_x(n, c, W, dO, dX):
    for co in range(W.shape[0]):
        for i in range(W.shape[2]):
            for j in range(W.shape[3]):
                weight = W[co, c, i, j]
                for h in range(dO.shape[2]):
                    for w in range(dO.shape[3]):
                        dX[n, c, h + i, w + j] += dO[n, co, h, w] * weight


class Conv2d(Op):
    name = "conv2d"
    inputs = ("x", "W", "b")

    def shape(self, x, W, b):
        if len(x.shape) != 4 or len(W.shape) != 4 or len(b.shape) != 1:
            raise self.shape_error((x, W, b), "needs x (N, C, H, W), W (C', C, kh, kw) and b (C',)")
        N, C, H, Wd = x.shape
        Co, Ci, kh, kw = W.shape
        if Ci != C:
            raise self.shape_error((x, W, b), f"x has {C} channels but W expects {Ci}")
        if b.shape[0] != Co:
            raise self.shape_error((x, W, b), f"b has {b.shape[0]} entries but W makes {Co} channels")
        if kh > H or kw > Wd or kh < 1 or kw < 1:
            raise self.shape_error((x, W, b), f"a {kh}x{kw} kernel does not fit a {H}x{Wd} image")
        return (N, Co, H - kh + 1, Wd - kw + 1)

    def forward(self, out, x, W, b):
        loop(conv2d_forward, out.shape[:2], x.value, W.value, b.value, out.value)

    def backward(self, out, x, W, b):
        if W.requires_grad:
            loop(conv2d_grad_W, W.shape, x.value, out.grad, W.grad)
        if b.requires_grad:
            loop(conv2d_grad_b, b.shape, out.grad, b.grad)
        if x.requires_grad:
            loop(conv2d_grad_x, x.shape[:2], W.value, out.grad, x.grad)


def conv2d(x, W, b, padding=0, name=None):
    """2-D convolution (cross-correlation, as the slide and PyTorch), stride 1; `padding`
    (an int or a pair) puts a pad2d node of zeros around x first."""
    if padding != 0:
        x = pad2d(x, padding)
    return Conv2d().apply((x, W, b), name)
