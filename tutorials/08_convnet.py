"""Tutorial 8: a convnet, and deck 000's observation that conv = im2col + affine.

Run: `python tutorials/08_convnet.py`.
"""

import numpy as np

import loopnet as ln
from loopnet import data, models, training

# 1. A convolution is a fully connected layer applied to every patch, with shared weights.
rng = np.random.default_rng(0)
x0, W0, b0 = rng.normal(size=(2, 3, 5, 5)), rng.normal(size=(4, 3, 2, 2)), rng.normal(size=4)
conv = ln.conv2d(ln.Input(x0), ln.Input(W0), ln.Input(b0))
patches = ln.im2col(ln.Input(x0), 2, 2)                       # (2*4*4, 3*2*2): one row per patch
rows = ln.affine(patches, ln.Input(W0.reshape(4, -1).T), ln.Input(b0))
same = np.allclose(ln.forward(conv).transpose(0, 2, 3, 1).reshape(-1, 4), ln.forward(rows))
print(f"conv2d == im2col + affine: {same}")
assert same

# 2. The convnet on digits: conv 3x3 (16 channels) -> ReLU -> max-pool 2 -> Affine(10).
digits = data.load("digits", seed=0)
net = models.build("convnet", digits.input_shape, digits.classes, channels=16, seed=0)
with ln.use("numba"):
    training.train(net, digits, training.TrainConfig(epochs=4, lr=0.05, optimizer="momentum"))
    accuracy = training.accuracy(net, digits.test)
print(f"convnet test accuracy after 4 epochs: {100 * accuracy:.1f}% (20 epochs: 98%)")
assert accuracy > 0.85
