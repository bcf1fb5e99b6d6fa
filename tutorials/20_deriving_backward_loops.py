"""Tutorial 20: the backward loops, derived from the forward loop's index notation.

Deck 003, 'Scalar vs. Matrix Operations', backpropagates loops over scalars by example, and
its examples follow one rule: the gradient loop of an input is the forward loop nest with
that input's element and the output's gradient swapped in. For
u.value[i] += A.value[i,j] * x.value[j] the slide gives

    for i,j:  A.grad[i,j] += u.grad[i] * x.value[j]
    for i,j:  x.grad[j]   += u.grad[i] * A.value[i,j]

`ln.derive` (and `python cli.py derive "..."`) applies that rule to a statement and prints
each gradient loop twice: in the slide's scatter form, and in loopnet's gather form, one grid
point per gradient element, summing over the indices that element does not have. Here:

1. affine's three backward loops, derived from the one-line declaration above its forward
   loop, next to the loops written by hand in loopnet/ops/affine.py;
2. conv2d's dX loop: the flipped kernel appears by itself from h-i;
3. a new op in one line: a dilated 1-D convolution, which loopnet does not have. Its loops
   are generated, pass gradcheck, and give the same numbers on the numba backend.

Deck 003's own higher-order example, U[h,i,j] += A[h,i,k] * B[h,j,k] with Y = sigma(U),
is tutorial 16, which runs the slide's loops against bmm; `python cli.py derive
"Y[h,i,j] = sigma(sum_k A[h,i,k] * B[h,j,k])"` derives the same backward loops.

Run: `python tutorials/20_deriving_backward_loops.py`. To step through a generated
backward loop in pdb, one multiply-add at a time:

    python -m pdb tutorials/20_deriving_backward_loops.py
    (Pdb) b 120
    (Pdb) c
    (Pdb) b dilated.op.grad_bodies["X"], (n, c, l) == (0, 0, 4)
    (Pdb) c
    (Pdb) ll
    (Pdb) p l - 0 * dl, l - 1 * dl, l - 2 * dl
    (Pdb) r
    (Pdb) p dX[n, c, l]

Line 120 is the last backward call below, after `dilated` is made. The generated source
has no file, so pdb finds it through the function, and `ll` lists it. For l = 4 the three
taps read dY at 4, 2 and 0; for l = 1 the `if` would skip the taps at -1 and -3, outputs
that do not exist. `r` finishes the sum: dX[0, 0, 4], the last number the script prints.
"""

import numpy as np

import loopnet as ln
from loopnet.ops.affine import affine_forward, affine_grad_W, affine_grad_x
from loopnet.ops.conv import conv2d_forward, conv2d_grad_x
from loopnet.testing import assert_gradcheck
from loopnet.testing.backends import assert_backends_agree

rng = np.random.default_rng(0)

# 1. affine: Y[n,m] = b[m] + sum_d X[n,d] * W[d,m], declared over the transposed copy WT
print(f"affine's forward declaration: {affine_forward.contraction.spec}\n")
affine = ln.derive(affine_forward.contraction.spec)
print(affine)
for name, gradient in affine.gradients.items():
    print(f"derived {name}: {gradient.text()}")
print(f"by hand  X: {affine_grad_x.contraction.spec}")
print(f"by hand  W: {affine_grad_W.contraction.spec}   (XT and dYT are transposed copies: the same terms)")
assert affine.gradients["X"].text() == affine_grad_x.contraction.spec

# The derived loops run; they give affine's own gradients.
X, W, b = (ln.Parameter(rng.standard_normal(shape), name=name) for name, shape in
           (("X", (4, 3)), ("W", (3, 2)), ("b", (2,))))
grads = []
for make in (lambda: ln.affine(X, W, b), lambda: affine(X=X, W=W, b=b)):
    loss = ln.sum(ln.square(make()))
    ln.forward(loss)
    ln.backward(loss)
    grads.append([X.grad.copy(), W.grad.copy(), b.grad.copy()])
difference = max(float(np.abs(h - d).max()) for h, d in zip(*grads))
print(f"\naffine's hand-written loops vs the derived ones: largest gradient difference {difference:.1e}\n")
assert difference < 1e-13

# 2. conv2d's dX: X is read at h+i, so its gradient gathers dO at h-i
conv = ln.derive(conv2d_forward.contraction.spec)
print(f"conv2d's forward declaration: {conv2d_forward.contraction.spec}")
print(f"derived dX: {conv.gradients['X'].text()}")
print(f"by hand dX: {conv2d_grad_x.contraction.spec}")
assert conv.gradients["X"].text() == conv2d_grad_x.contraction.spec.split("  #")[0]

# In one dimension, dX[l] = sum_i dY[l-i] * W[i] is dY convolved with W (a true
# convolution, which flips the kernel), where the forward pass was a correlation.
line = ln.derive("Y[l] = sum_i X[l+i] * W[i]")
signal, kernel = ln.Parameter(rng.standard_normal(7), name="signal"), ln.Parameter([1.0, 2.0, 3.0], name="kernel")
out = line(signal, kernel)
upstream = rng.standard_normal(out.shape)
ln.forward(out)
ln.backward(out, grad=upstream)
print(f"1-D: dX = {np.round(signal.grad, 3)}")
print(f"     np.convolve(dY, W) = {np.round(np.convolve(upstream, [1.0, 2.0, 3.0]), 3)}: the kernel flipped\n")
assert np.allclose(signal.grad, np.convolve(upstream, [1.0, 2.0, 3.0]))

# 3. A new op in one line: a 1-D convolution whose window skips dl - 1 positions between taps
dilated = ln.derive("Y[n,o,l] = b[o] + sum_{c,i} X[n,c,l+i*dl] * W[o,c,i]")
print(dilated)
print("\nits generated loop bodies (dilated.op.source):\n")
print(dilated.op.source)

x = ln.Parameter(rng.standard_normal((2, 3, 11)), name="x")
w = ln.Parameter(rng.standard_normal((4, 3, 3)), name="w")
bias = ln.Parameter(rng.standard_normal(4), name="bias")
y = dilated(bias, x, w, dl=2)
print(f"dilated(b, x, w, dl=2): x {x.shape}, w {w.shape} -> {y.shape} (11 - 2*(3-1) = 7 positions)")

# A NumPy reference: gather each window's taps, then one einsum.
taps = np.arange(7)[:, None] + 2 * np.arange(3)[None, :]  # (l, i) -> l + 2i
reference = np.einsum("nclk,ock->nol", x.value[:, :, taps], w.value) + bias.value[None, :, None]
assert np.allclose(ln.forward(y), reference)
print("forward equals a NumPy reference")

loss = ln.mean(ln.square(y))
assert_gradcheck(loss)
print("gradcheck: every element of dx, dw and db agrees with central differences")
assert_backends_agree(loss, "numba")
print("the numba backend compiles the same generated loops and gives the same numbers")
ln.forward(loss)
ln.backward(loss)  # `(Pdb) b 120` stops here, with `dilated` made
print(f"dx[0, 0, :5] = {np.round(x.grad[0, 0, :5], 4)}")
