"""conv2d(x, W, b, stride=1, padding=0): deck 000's convolution over a minibatch, as PyTorch's.

Deck 000's convolution layer is O[c',h',w'] = b^(c') + sum_{c,h,w} W^(c')[c,h,w] X[c,h+h',w+w']:
its h, w are the kernel offsets and h', w' the output position. Here i, j are the kernel
offsets, h', w' (h, w in the code) the output position, and n the example, so the
slide's W^(c')[c,h,w] is W[c',c,i,j].

With padding > 0 the wrapper inserts pad2d(x, padding) (loopnet/ops/pad.py) and these loops
run on the padded x: deck 001's CNN example pads its 5x5 image by one before a 3x3 kernel.
stride and padding are an int or a pair (rows, columns).

x (N, C, H, Wd), W (C', C, kh, kw), b (C',), stride (sh, sw) gives O (N, C', H', W'),
H' = (H - kh) // sh + 1, W' = (Wd - kw) // sw + 1 (a last row or column that no window
reaches is dropped, as PyTorch does, and gets zero gradient):

    forward    for n,c',h',w':  O[n,c',h',w'] = b[c'] + sum_{c,i,j} W[c',c,i,j] * X[n,c,h'*sh+i,w'*sw+j]
    backward   for c',c,i,j:    dW[c',c,i,j] += sum_{n,h',w'} dO[n,c',h',w'] * X[n,c,h'*sh+i,w'*sw+j]
               for c':          db[c']       += sum_{n,h',w'} dO[n,c',h',w']
               for n,c,h,w:     dX[n,c,h,w]  += sum_{c',i,j} dO[n,c',(h-i)/sh,(w-j)/sw] * W[c',c,i,j]
                                                (over the (i, j) where h-i is a multiple of sh and
                                                w-j of sw, and (h-i)/sh, (w-j)/sw fall inside O)

Loop order: each grid point owns a whole output plane (n, c') in the forward and a whole
input-gradient plane (n, c) in dX, and walks it with the output column innermost, so
the innermost loop is a contiguous multiply-add with one weight held in a register. In dX the plane's owner adds each term where it
lands: writes stay inside the owned plane, so planes still run in parallel without races.

Two sets of loops, the same sums: stride 1 (deck 000's formula, and the digits convnet's) reads
X[..., w + j], here; the strided loops (loopnet/ops/conv_strided.py) read X[..., w*sw + j].
One set with the stride as an argument would do, but Numba does not vectorise a read
whose step is known only at run time: the stride-1 forward and dX ran 1.9-4.9x slower
that way (measured), so stride 1 keeps its own loops, and the strided ones do each
skipping access once for all output channels (conv_strided.py says how).

The `@contraction` line above each loop but db's restates it as one sum of products
(`loopnet.schedule`): the CUDA backend runs it as shared-memory tiles over every output
element, since a thread per plane leaves most of a GPU idle. The loop stays the definition.

Accuracy: the gradients' sums over the minibatch and every position accumulate in float64
(`acc = scalar.zero64()`); the forward's short sum over one window stays in the dtype.
"""

from loopnet import scalar
from loopnet.loops import loop, scratch
from loopnet.op import Op
from loopnet.ops.conv_strided import conv2d_strided_forward, conv2d_strided_grad_W, conv2d_strided_grad_x
from loopnet.ops.pad import pad2d
from loopnet.ops.pool import int_pair
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

    def __init__(self, stride=1):
        self.stride = int_pair(stride, "stride", self.name, 1)

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
            padded = " (padding included)" if x.op_name == "pad2d" else ""
            raise self.shape_error((x, W, b), f"a {kh}x{kw} kernel does not fit a {H}x{Wd} image{padded}")
        sh, sw = self.stride
        return (N, Co, (H - kh) // sh + 1, (Wd - kw) // sw + 1)

    def forward(self, out, x, W, b):
        if self.stride == (1, 1):
            loop(conv2d_forward, out.shape[:2], x.value, W.value, b.value, out.value)
        else:
            row = scratch((out.shape[0], out.shape[3]), x.dtype)  # (see conv_strided.py)
            loop(conv2d_strided_forward, out.shape[:1], x.value, W.value, b.value, out.value, row, *self.stride)

    def backward(self, out, x, W, b):
        strided = self.stride != (1, 1)
        if W.requires_grad:
            if strided:
                loop(conv2d_strided_grad_W, W.shape, x.value, out.grad, W.grad, *self.stride)
            else:
                loop(conv2d_grad_W, W.shape, x.value, out.grad, W.grad)
        if b.requires_grad:
            loop(conv2d_grad_b, b.shape, out.grad, b.grad)
        if x.requires_grad:
            if strided:
                row = scratch(x.shape[:2] + out.shape[3:], x.dtype)
                loop(conv2d_strided_grad_x, x.shape[:2], W.value, out.grad, x.grad, row, *self.stride)
            else:
                loop(conv2d_grad_x, x.shape[:2], W.value, out.grad, x.grad)


def conv2d(x, W, b, stride=1, padding=0, name=None):
    """2-D convolution (cross-correlation, as deck 000 and PyTorch), with stride and zero padding.

    `stride` and `padding` are an int or a pair (rows, columns); padding puts a pad2d node
    of zeros around x first."""
    op = Conv2d(stride)  # a bad stride is refused before any node is made
    if int_pair(padding, "padding", op.name, 0) != (0, 0):  # (0, 0) would add a node that copies
        x = pad2d(x, padding)
    return op.apply((x, W, b), name)
