"""Tutorial 15: deck 001's padded 5x5 convolution, forward, strided and backward.

Deck 001, 'Convolutional Neural Networks': a 5x5 image with a border of zeros (padding 1)
and the 3x3 kernel [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]; the slide's first output is 114.
`ln.conv2d(x, W, b, padding=1)` puts a `pad2d` node in front of the convolution
(loopnet/ops/pad.py), so the padded image is a node of its own that you can print.
Run: `python tutorials/15_padded_convolution.py`.
"""

import numpy as np

import loopnet as ln

# 1. The slide's image and kernel, as one image (N=1) with one channel (C=1).
image = np.array([[60, 113, 56, 139, 85],
                  [73, 121, 54, 84, 128],
                  [131, 99, 70, 129, 127],
                  [80, 57, 115, 69, 134],
                  [104, 126, 123, 95, 130]], dtype=np.float64)
kernel = np.array([[0, -1, 0],
                   [-1, 5, -1],
                   [0, -1, 0]], dtype=np.float64)
x = ln.Input(image[None, None], name="image", grad=True)   # grad=True: we want x.grad below
W = ln.Parameter(kernel[None, None], name="kernel")        # (C'=1, C=1, 3, 3)
b = ln.Parameter(np.zeros(1), name="b")                     # the slide has no bias
out = ln.conv2d(x, W, b, padding=1)

# 2. Forward. The convolution's input is the pad2d node, not the image.
ln.forward(out)
padded = out.inputs[0]
print(f"conv2d's first input is a {padded.op_name!r} node of shape {padded.shape}:")
print(padded.value[0, 0].astype(int))
assert padded.op_name == "pad2d" and padded.shape == (1, 1, 7, 7)
assert np.array_equal(padded.value[0, 0], np.pad(image, 1))   # the slide's 7x7 grid: zeros around the image
O = out.value[0, 0]
print(f"\nthe 5x5 output (stride 1, padding 1 keeps 5x5):\n{O.astype(int)}")
assert out.shape == (1, 1, 5, 5)
assert O[0, 0] == 114                                          # the number on the slide

# The slide gives only the first output; the other 24 are checked against NumPy's sliding windows.
windows = np.lib.stride_tricks.sliding_window_view(np.pad(image, 1), (3, 3))   # (5, 5, 3, 3)
assert np.array_equal(O, np.einsum("hwij,ij->hw", windows, kernel))
assert O[2, 2] == 5 * 70 - 99 - 129 - 54 - 115                # an interior pixel: no zeros in its window

# 3. The first output by hand: the top-left 3x3 window of the padded image times the kernel.
window = padded.value[0, 0, 0:3, 0:3]
terms = " + ".join(f"{int(p)}*{int(k)}" for p, k in zip(window.ravel(), kernel.ravel()))
print(f"\nwindow at (0, 0):\n{window.astype(int)}\nout[0,0] = {terms} = {int(np.sum(window * kernel))}")
assert np.sum(window * kernel) == 5 * 60 - 113 - 73 == 114   # the padding's zeros add nothing

# 4. Stride 2: the window jumps two pixels, so H' = (5 + 2*1 - 3) // 2 + 1 = 3.
strided = ln.forward(ln.conv2d(x, W, b, stride=2, padding=1))
print(f"\nstride 2, padding 1: a 3x3 output, every other row and column of the stride-1 one:\n"
      f"{strided[0, 0].astype(int)}")
assert strided.shape == (1, 1, 3, 3)
assert np.array_equal(strided[0, 0], O[::2, ::2])

# 5. Backward with an upstream gradient of ones (backward's default seed): dL/dout[h, w] = 1,
#    so the gradient reaching padded pixel (p, q) is the sum of the kernel entries that touch
#    it, one per 3x3 window that covers it: K[i, j] from the window at (p - i, q - j).
ln.backward(out)
expected = np.zeros((7, 7))
for h in range(5):
    for w in range(5):
        expected[h:h + 3, w:w + 3] += kernel       # window (h, w) adds the kernel where it sits
print(f"\ngradient reaching the padded image (pad2d's grad):\n{padded.grad[0, 0].astype(int)}")
print(f"x.grad: the 5x5 middle of it; pad2d's backward crops the border away:\n{x.grad[0, 0].astype(int)}")
assert np.array_equal(padded.grad[0, 0], expected)
assert np.array_equal(x.grad[0, 0], expected[1:6, 1:6])
# Inside, every window covers the pixel: the whole kernel, 5 - 4 = 1. A corner pixel is covered
# by 4 windows only; the 5 kernel entries it misses sum to -2, so it gets 1 - (-2) = 3.
assert x.grad[0, 0, 2, 2] == kernel.sum() == 1 and x.grad[0, 0, 0, 0] == 3 and x.grad[0, 0, 0, 2] == 2
assert kernel[2, :].sum() + kernel[:2, 2].sum() == -2
# The border's gradient goes nowhere: those zeros are constants, not pixels of the image, so
# pad2d's backward copies only the middle 5x5 into x.grad and drops the rest.
border = padded.grad[0, 0].copy()
border[1:6, 1:6] = 0
print(f"the border's gradient, dropped by the crop: -1 on each of its 20 edge cells, 0 at the corners "
      f"(sum {int(border.sum())})")
ring = np.concatenate([border[0, 1:6], border[6, 1:6], border[1:6, 0], border[1:6, 6]])
assert np.all(ring == -1) and ring.size == 20 and border[[0, 0, 6, 6], [0, 6, 0, 6]].tolist() == [0, 0, 0, 0]
assert border.sum() == -20
