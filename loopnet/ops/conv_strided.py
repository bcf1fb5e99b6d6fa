"""conv2d's loops for a stride other than 1 (conv2d(x, W, b, stride=s); the math is in
loopnet/ops/conv.py's docstring):

    forward    O[n,c',h',w'] = b[c'] + sum_{c,i,j} W[c',c,i,j] * X[n,c,h'*sh+i,w'*sw+j]
    backward   dW[c',c,i,j] += sum_{n,h',w'} dO[n,c',h',w'] * X[n,c,h'*sh+i,w'*sw+j]
               dX[n,c,h,w]  += sum_{c',i,j} dO[n,c',(h-i)/sh,(w-j)/sw] * W[c',c,i,j]
                               (over the (i, j) where h-i is a multiple of sh, w-j of sw,
                               and the quotients fall inside O)

Why these loops differ from the stride-1 ones: with a stride, the outputs of one row read
every sw-th element of an input row, and Numba does not vectorise a read (or a write) that
skips. So each skipping access is done once into a contiguous row and shared by every
output channel:

- forward: for one input channel c, window position (i, j) and output row h, the inputs
  X[n,c,h*sh+i,w*sw+j] of every w are copied into `row` once, then every output channel
  c' adds weight * row[w] with a contiguous inner loop. A grid point owns a whole example
  n (all its output planes), since the copy serves all of them.
- dX: for (c, h, i, j), `row[w]` first sums dO[n,c',h,w] * W[c',c,i,j] over the output
  channels (contiguous), then adds into dX[n,c,h*sh+i,w*sw+j], one skipping write per w.
- dW is one sum per weight, bound by memory rather than arithmetic: it reads with the
  stride as it is.

(Measured with `python cli.py bench` before this reordering: a stride-2 forward and dX
that skip in their inner loop ran about 5x slower per output element than stride 1.)

`row` is scratch made by the op, one row per grid point, so grid points never share it.
The `@contraction` lines are the same sums for the CUDA tiles, which ignore `row`. The
short sums (one window, or over c' before a write) stay in the dtype; dW's sum over the
minibatch accumulates in float64.
"""

from loopnet import scalar
from loopnet.schedule import contraction


@contraction("O[n,co,h,w] = b[co] + sum_{c,i,j} X[n,c,h*sh+i,w*sw+j] * W[co,c,i,j]")
def conv2d_strided_forward(n, X, W, b, O, row, sh, sw):
    for co in range(O.shape[1]):
        for h in range(O.shape[2]):
            for w in range(O.shape[3]):
                O[n, co, h, w] = b[co]
    for c in range(W.shape[1]):
        for i in range(W.shape[2]):
            for j in range(W.shape[3]):
                for h in range(O.shape[2]):
                    for w in range(O.shape[3]):  # the skipping read, once for every c'
                        row[n, w] = X[n, c, h * sh + i, w * sw + j]
                    for co in range(O.shape[1]):
                        weight = W[co, c, i, j]
                        for w in range(O.shape[3]):
                            O[n, co, h, w] += weight * row[n, w]


@contraction("dW[co,c,i,j] += sum_{n,h,w} dO[n,co,h,w] * X[n,c,h*sh+i,w*sw+j]")
def conv2d_strided_grad_W(co, c, i, j, X, dO, dW, sh, sw):
    acc = scalar.zero64()  # float64 whatever the dtype: a sum over the minibatch and every position
    for n in range(dO.shape[0]):
        for h in range(dO.shape[2]):
            for w in range(dO.shape[3]):
                acc += dO[n, co, h, w] * X[n, c, h * sh + i, w * sw + j]
    dW[co, c, i, j] += acc


@contraction("dX[n,c,h,w] += sum_{co,i,j} dO[n,co,(h-i)/sh,(w-j)/sw] * W[co,c,i,j]")  # (as a gather)
def conv2d_strided_grad_x(n, c, W, dO, dX, row, sh, sw):
    for h in range(dO.shape[2]):
        for i in range(W.shape[2]):
            for j in range(W.shape[3]):
                for w in range(dO.shape[3]):
                    row[n, c, w] = 0
                for co in range(W.shape[0]):
                    weight = W[co, c, i, j]
                    for w in range(dO.shape[3]):
                        row[n, c, w] += dO[n, co, h, w] * weight
                for w in range(dO.shape[3]):  # the skipping write, once for every c'
                    dX[n, c, h * sh + i, w * sw + j] += row[n, c, w]
