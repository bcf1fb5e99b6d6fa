"""softmax_cross_entropy(logits, labels): the classifier's loss, for logits (N, K) and
labels an Input of N integers in [0, K).

With m_n = max_k z[n,k] and lse_n = m_n + ln sum_k e^(z[n,k] - m_n) (log-sum-exp):

    forward    L = (1/N) sum_n (lse_n - z[n, labels[n]])
    backward   for n,k:  dz[n,k] += dL * (softmax(z)[n,k] - [k == labels[n]]) / N

The backward loop recomputes each row's softmax rather than storing it: one more pass
over the row, and no hidden state between forward and backward.
"""

import numpy as np

from loopnet import scalar
from loopnet.errors import LabelError
from loopnet.loops import flat, loop
from loopnet.op import Op
from loopnet.reduction import reduction


@reduction
def softmax_cross_entropy_forward(z, labels, L):
    acc = scalar.zero64()  # float64 whatever z's dtype: a mean over tens of thousands of rows
    for n in range(z.shape[0]):
        top = scalar.row_max(z, n)
        acc += top + scalar.log(scalar.row_sum_exp(z, n, top)) - z[n, labels[n]]
    L[0] = acc / z.shape[0]


def softmax_cross_entropy_grad_logits(n, z, labels, dL, dz):
    top = scalar.row_max(z, n)
    total = scalar.row_sum_exp(z, n, top)
    scale = dL[0] / z.shape[0]
    for k in range(z.shape[1]):
        p = scalar.exp(z[n, k] - top) / total
        if k == labels[n]:
            p -= 1
        dz[n, k] += scale * p


class SoftmaxCrossEntropy(Op):
    name = "softmax_cross_entropy"
    inputs = ("logits", "labels")
    label_inputs = ("labels",)

    def shape(self, logits, labels):
        if len(logits.shape) != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
            raise self.shape_error((logits, labels), "logits must be (N, K) with N, K >= 1")
        if labels.shape != (logits.shape[0],):
            raise self.shape_error((logits, labels), f"labels must be ({logits.shape[0]},), one per row of logits")
        if labels.dtype.kind not in "iu":
            raise LabelError(
                f"{self.name}: labels {labels.name!r} must be integers, got {labels.dtype}; "
                f"use Input(np.array([...], dtype=np.int64))"
            )
        return ()

    def validate(self, logits, labels):
        classes = logits.shape[1]
        # one comparison checks both ends: labels are int64, and read as unsigned a
        # negative one is huge (a check made every step: this halves its time)
        if labels.size and labels.value.view(np.uint64).max() >= classes:
            n = int(np.argmax((labels.value < 0) | (labels.value >= classes)))
            raise LabelError(
                f"{self.name}: label {int(labels.value[n])} at index {n} of {labels.name!r} "
                f"is outside [0, {classes}) for logits {logits.name!r} with {classes} classes"
            )

    def forward(self, out, logits, labels):
        loop(softmax_cross_entropy_forward, (), logits.value, labels.value, flat(out.value))

    def backward(self, out, logits, labels):
        if logits.requires_grad:
            loop(softmax_cross_entropy_grad_logits, (logits.shape[0],), logits.value, labels.value,
                 flat(out.grad), logits.grad)


def softmax_cross_entropy(logits, labels, name=None):
    """Mean over rows of -ln softmax(logits)[n, labels[n]], computed by log-sum-exp."""
    return SoftmaxCrossEntropy().apply((logits, labels), name)
