"""pad2d(x, padding): a border of zeros around each image of x (N, C, H, W).

padding is an int or a pair (ph, pw): y is (N, C, H + 2ph, W + 2pw), x sits in its middle.

    forward    for n,c,h,w:  y[n,c,h,w] = x[n,c,h-ph,w-pw]  inside,  0 on the border
    backward   for n,c,h,w:  dx[n,c,h,w] += dy[n,c,h+ph,w+pw]       (the border's gradient goes nowhere)

Each grid point owns one row (n, c, h) and walks it with w innermost, a contiguous copy:
one point per element spent most of its time splitting its flat index into four.

conv2d(x, W, b, padding=p) is conv2d(pad2d(x, p), W, b): the padding is a node of its own
in the trace, and the convolution's loops (and their declared contractions, which the
CUDA tiles run) stay the unpadded ones. Deck 001's CNN example pads a 5x5 image this way
before its 3x3 kernel.
"""

from loopnet.loops import loop
from loopnet.op import Op
from loopnet.ops.pool import int_pair


def pad2d_forward(n, c, h, x, y, ph, pw):
    for w in range(y.shape[3]):
        y[n, c, h, w] = 0
    if ph <= h < ph + x.shape[2]:
        for w in range(x.shape[3]):
            y[n, c, h, pw + w] = x[n, c, h - ph, w]


def pad2d_grad_x(n, c, h, dy, dx, ph, pw):
    for w in range(dx.shape[3]):
        dx[n, c, h, w] += dy[n, c, h + ph, w + pw]


class Pad2d(Op):
    name = "pad2d"
    inputs = ("x",)

    def __init__(self, padding):
        self.ph, self.pw = int_pair(padding, "padding", self.name, 0)

    def shape(self, x):
        if len(x.shape) != 4:
            raise self.shape_error((x,), "needs x (N, C, H, W)")
        N, C, H, W = x.shape
        return (N, C, H + 2 * self.ph, W + 2 * self.pw)

    def forward(self, out, x):
        loop(pad2d_forward, out.shape[:3], x.value, out.value, self.ph, self.pw)

    def backward(self, out, x):
        if x.requires_grad:
            loop(pad2d_grad_x, x.shape[:3], out.grad, x.grad, self.ph, self.pw)


def pad2d(x, padding, name=None):
    """A border of zeros around each image of x (N, C, H, W).

    `padding` rows and columns on every side (an int, or a pair (rows, columns)) give
    (N, C, H + 2ph, W + 2pw)."""
    return Pad2d(padding).apply((x,), name)
