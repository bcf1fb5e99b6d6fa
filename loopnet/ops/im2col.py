"""im2col(x, kh, kw): every kh x kw patch of x as a row, so a convolution becomes a matmul.

x (N, C, H, Wd) gives (N H' W', C kh kw): row r = (n, h', w') in row-major order, column
(c, i, j) in row-major order. Then, with W2 = W.reshape(C', C kh kw).T,

    conv2d(x, W, b) [n, c', h', w'] == affine(im2col(x, kh, kw), W2, b) [(n, h', w'), c']

which is deck 000's observation that a convolution is a patch-extraction layer followed
by a fully connected layer with shared weights.

    forward    for r, (c,i,j):   P[r, (c,i,j)] = X[n, c, h'+i, w'+j]
    backward   for n,c,h,w:      dX[n,c,h,w] += sum_{i,j} dP[(n, h-i, w-j), (c,i,j)]
                                                (over the (i, j) where h-i, w-j fall inside)
"""

from loopnet.loops import loop
from loopnet.op import Op


def im2col_forward(r, X, P, kh, kw):
    out_w = X.shape[3] - kw + 1
    out_hw = (X.shape[2] - kh + 1) * out_w
    n, rest = r // out_hw, r % out_hw
    h, w = rest // out_w, rest % out_w
    for c in range(X.shape[1]):
        for i in range(kh):
            for j in range(kw):
                P[r, (c * kh + i) * kw + j] = X[n, c, h + i, w + j]


def im2col_grad_x(n, c, h, w, dP, dX, kh, kw):
    out_h, out_w = dX.shape[2] - kh + 1, dX.shape[3] - kw + 1
    acc = dX.dtype.type(0)
    for i in range(kh):
        for j in range(kw):
            if 0 <= h - i < out_h and 0 <= w - j < out_w:
                acc += dP[(n * out_h + h - i) * out_w + w - j, (c * kh + i) * kw + j]
    dX[n, c, h, w] += acc


class Im2col(Op):
    name = "im2col"
    inputs = ("x",)

    def __init__(self, kh, kw):
        self.kh, self.kw = int(kh), int(kw)

    def shape(self, x):
        if len(x.shape) != 4:
            raise self.shape_error((x,), "needs x (N, C, H, W)")
        N, C, H, W = x.shape
        if not (1 <= self.kh <= H and 1 <= self.kw <= W):
            raise self.shape_error((x,), f"a {self.kh}x{self.kw} patch does not fit a {H}x{W} image")
        return (N * (H - self.kh + 1) * (W - self.kw + 1), C * self.kh * self.kw)

    def forward(self, out, x):
        loop(im2col_forward, (out.shape[0],), x.value, out.value, self.kh, self.kw)

    def backward(self, out, x):
        if x.requires_grad:
            loop(im2col_grad_x, x.shape, out.grad, x.grad, self.kh, self.kw)


def im2col(x, kh, kw, name=None):
    """Every kh x kw patch of x (N, C, H, W) as a row: (N H' W', C kh kw)."""
    return Im2col(kh, kw).apply((x,), name)
