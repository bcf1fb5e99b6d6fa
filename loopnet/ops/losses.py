"""The lectures' losses. Each returns shape (); over a minibatch it is the mean, so its
gradient is an average (the 1/n below).

mse_loss(a, b), a and b of one shape, n elements:
    forward    L = (1/n) sum_i (a[i] - b[i])^2
    backward   for i:  da[i] += dL * 2 (a[i] - b[i]) / n
               for i:  db[i] -= dL * 2 (a[i] - b[i]) / n

logistic_loss(s, y), scores s and labels y in {-1, +1} of one shape:
    forward    L = (1/n) sum_i ln(1 + e^(-y[i] s[i]))
    backward   for i:  ds[i] += dL * -y[i] sigma(-y[i] s[i]) / n
    ln(1 + e^z) is computed as max(z, 0) + ln(1 + e^-|z|), which never overflows.

hinge_loss(s, y), y in {-1, +1}:
    forward    L = (1/n) sum_i max(0, 1 - y[i] s[i])
    backward   for i:  ds[i] += dL * -y[i] / n   where 1 - y[i] s[i] > 0
    At the margin (y s = 1) the subgradient taken is 0, as PyTorch's clamp gives.

binary_cross_entropy(p, y), probabilities p and targets y in [0, 1]:
    forward    L = (1/n) sum_i -y[i] ln p[i] - (1 - y[i]) ln(1 - p[i])
    backward   for i:  dp[i] += dL * (p[i] - y[i]) / max(p[i] (1 - p[i]), 1e-12) / n
    As in PyTorch, each log is clamped at -100 and the denominator at 1e-12, so p = 0
    or p = 1 gives a large finite loss instead of inf.

Labels (y) never get a gradient: they are data, not something to learn.

Means, as PyTorch's defaults, where the decks often sum: deck 001's squared loss is
sum_i 1/2 (y_i - h(x_i))^2, which is (n/2) mse_loss(h, y).

Every sum here accumulates in float64 (`acc = scalar.zero64()`), whatever
the arrays' dtype, and the result is stored in the array's dtype: float32 added one term at
a time drifts (the mean of 600,000 float32 values of 0.1 came out 0.56% off).
"""

import numpy as np

from loopnet import scalar
from loopnet.errors import LabelError
from loopnet.loops import flat, loop
from loopnet.op import Op
from loopnet.reduction import reduction


@reduction
def mse_loss_forward(a, b, L):
    acc = scalar.zero64()  # float64 whatever the dtype (see the module's docstring)
    for i in range(a.shape[0]):
        d = a[i] - b[i]
        acc += d * d
    L[0] = acc / a.shape[0]


def mse_loss_grad_a(i, a, b, dL, da):
    da[i] += dL[0] * 2 * (a[i] - b[i]) / a.shape[0]


def mse_loss_grad_b(i, a, b, dL, db):
    db[i] -= dL[0] * 2 * (a[i] - b[i]) / a.shape[0]


@reduction
def logistic_loss_forward(s, y, L):
    acc = scalar.zero64()
    for i in range(s.shape[0]):
        acc += scalar.softplus(-y[i] * s[i])
    L[0] = acc / s.shape[0]


def logistic_loss_grad_s(i, s, y, dL, ds):
    ds[i] += dL[0] * -y[i] * scalar.sigmoid(-y[i] * s[i]) / s.shape[0]


@reduction
def hinge_loss_forward(s, y, L):
    acc = scalar.zero64()
    for i in range(s.shape[0]):
        margin = 1 - y[i] * s[i]
        if margin > 0:
            acc += margin
    L[0] = acc / s.shape[0]


def hinge_loss_grad_s(i, s, y, dL, ds):
    if 1 - y[i] * s[i] > 0:
        ds[i] -= dL[0] * y[i] / s.shape[0]


@reduction
def binary_cross_entropy_forward(p, y, L):
    acc = scalar.zero64()
    for i in range(p.shape[0]):
        log_p = max(scalar.log(p[i]), -100.0)
        log_not_p = max(scalar.log(1 - p[i]), -100.0)
        acc -= y[i] * log_p + (1 - y[i]) * log_not_p
    L[0] = acc / p.shape[0]


def binary_cross_entropy_grad_p(i, p, y, dL, dp):
    dp[i] += dL[0] * (p[i] - y[i]) / max(p[i] * (1 - p[i]), 1e-12) / p.shape[0]


class _PairLoss(Op):
    """A loss over two arrays of one shape: a forward with one grid point, flat views, and
    a backward loop `grad_<input>_body(i, first, second, dL, d_input)` for each input that
    is not a label."""

    forward_body = None

    def shape(self, first, second):
        if first.shape != second.shape:
            raise self.shape_error((first, second), "both inputs must have the same shape")
        if first.size == 0:
            raise self.shape_error((first, second), "the mean over no elements is undefined")
        return ()

    def forward(self, out, first, second):
        loop(self.forward_body, (), flat(first.value), flat(second.value), flat(out.value))

    def backward(self, out, first, second):
        for role, node in zip(self.inputs, (first, second)):
            if node.requires_grad and role not in self.label_inputs:
                loop(self.grad_body_of(role), (node.size,), flat(first.value), flat(second.value),
                     flat(out.grad), flat(node.grad))


class MSELoss(_PairLoss):
    name = "mse_loss"
    inputs = ("a", "b")
    forward_body, grad_a_body, grad_b_body = mse_loss_forward, mse_loss_grad_a, mse_loss_grad_b


class _SignedLabelLoss(_PairLoss):
    inputs = ("s", "y")
    label_inputs = ("y",)

    def validate(self, s, y):
        bad = (y.value != 1) & (y.value != -1)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise LabelError(
                f"{self.name}: labels {y.name!r} must be -1 or +1, found {y.value[index]} at index {index}"
            )


class LogisticLoss(_SignedLabelLoss):
    name = "logistic_loss"
    forward_body, grad_s_body = logistic_loss_forward, logistic_loss_grad_s


class HingeLoss(_SignedLabelLoss):
    name = "hinge_loss"
    forward_body, grad_s_body = hinge_loss_forward, hinge_loss_grad_s


class BinaryCrossEntropy(_PairLoss):
    name = "binary_cross_entropy"
    inputs = ("p", "y")
    label_inputs = ("y",)
    forward_body, grad_p_body = binary_cross_entropy_forward, binary_cross_entropy_grad_p

    def validate(self, p, y):
        outside = ~((y.value >= 0) & (y.value <= 1))
        if outside.any():
            index = tuple(int(i) for i in np.argwhere(outside)[0])
            raise LabelError(
                f"{self.name}: targets {y.name!r} must lie in [0, 1], found {y.value[index]} at index {index}"
            )


def mse_loss(a, b, name=None):
    """Mean squared error over all elements, (1/n) sum (a - b)^2, as PyTorch's."""
    return MSELoss().apply((a, b), name)


def logistic_loss(s, y, name=None):
    """Mean of ln(1 + e^(-y s)) for labels y in {-1, +1}; stable for any |s|."""
    return LogisticLoss().apply((s, y), name)


def hinge_loss(s, y, name=None):
    """Mean of max(0, 1 - y s) for labels y in {-1, +1}; subgradient 0 at the margin."""
    return HingeLoss().apply((s, y), name)


def binary_cross_entropy(p, y, name=None):
    """Mean of -y ln p - (1 - y) ln(1 - p), p in [0, 1]; logs clamped at -100 as in PyTorch."""
    return BinaryCrossEntropy().apply((p, y), name)
