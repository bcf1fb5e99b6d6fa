"""dropout(x, p): in training, zero each element with probability p and scale the rest by
1/(1-p) ("inverted" dropout), so the expected value is unchanged and evaluation needs no
rescaling; in evaluation mode it is the identity.

The decks differ: deck 004 ('More Regularization: Dropout') zeroes features with
probability p in training and multiplies activations by p at test (as written; with p the
drop probability the factor that keeps the expected value is 1 - p); deck 001 discards a
random subset of weights (edges). Here units (elements of x) are dropped, and the
survivors are scaled in training instead of the activations at test.

    training    for i:  y[i] = x[i] * mask[i] / (1 - p)      mask[i] = 1 with probability 1 - p
                for i:  dx[i] += dy[i] * mask[i] / (1 - p)
    evaluation  for i:  y[i] = x[i]                           dx[i] += dy[i]

The mask is drawn (by NumPy, outside the loop: it is data, not math) at each forward in
training mode from the op's own seeded generator, and kept for the backward. With
`fixed_mask=True` it is drawn once and reused, which makes the op deterministic for
gradient checks. `model.set_training(False)` (or `op.training = False`) switches to
evaluation.
"""

import numpy as np

from loopnet.errors import SettingError
from loopnet.loops import flat, loop, to_backend
from loopnet.op import Op


def dropout_forward(i, x, mask, y, scale):
    y[i] = x[i] * mask[i] * scale


def dropout_grad_x(i, mask, dy, dx, scale):
    dx[i] += dy[i] * mask[i] * scale


class Dropout(Op):
    name = "dropout"
    inputs = ("x",)
    replayable = False  # a new mask, drawn on the host, every training step

    def __init__(self, p, seed, fixed_mask):
        if not 0 <= p < 1:
            raise SettingError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.fixed_mask, self.training = float(p), fixed_mask, True
        self.reseed(seed)
        self.mask = None

    def reseed(self, seed):
        """Restart the mask sequence (the trainer reseeds per epoch, so a resumed run
        draws the same masks as an uninterrupted one)."""
        self.rng = np.random.default_rng(seed)

    def shape(self, x):
        return x.shape

    def _mask(self, x):
        if not self.training:
            return np.ones(x.size, x.dtype), 1.0
        if self.mask is None or not self.fixed_mask or self.mask.size != x.size:
            self.mask = (self.rng.random(x.size) >= self.p).astype(x.dtype)
        return self.mask, 1.0 / (1.0 - self.p)

    def forward(self, out, x):
        mask, self.scale = self._mask(x)
        self.current = to_backend(mask)
        loop(dropout_forward, (x.size,), flat(x.value), self.current, flat(out.value), self.scale)

    def backward(self, out, x):
        if x.requires_grad:
            loop(dropout_grad_x, (x.size,), self.current, flat(out.grad), flat(x.grad), self.scale)


def dropout(x, p=0.5, seed=None, fixed_mask=False, name=None):
    """Inverted dropout: zero with probability p, scale survivors by 1/(1-p); identity in evaluation."""
    return Dropout(p, seed, fixed_mask).apply((x,), name)
