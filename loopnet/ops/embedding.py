"""embedding(ids, E): row ids[...] of the table E, for ids of any shape.

ids (an Input of integers in [0, V)) and E (V, D) give out of shape ids.shape + (D,):

    forward    for p,d:  out[p,d] = E[ids[p], d]                 (p runs over ids, flattened)
    backward   for v,d:  dE[v,d] += sum_p [ids[p] == v] dout[p,d]

The direct way to write the backward is a scatter, `for p,d: dE[ids[p],d] += dout[p,d]`
(no deck shows an embedding's backward; deck 001 only introduces embeddings), which
races when an id repeats (two positions add into one row at once). Here it is a gather:
each row v of dE sums the positions that used it, so every grid point owns its writes and
the loop is correct on every backend, repeated ids included, with no atomics.

Accuracy: dE's sum over every position accumulates in float64 (`scalar.zero64()`).
"""

import numpy as np

from loopnet import scalar
from loopnet.errors import LabelError
from loopnet.loops import flat, loop
from loopnet.op import Op


def embedding_forward(p, d, ids, E, out):
    out[p, d] = E[ids[p], d]


def embedding_grad_E(v, d, ids, dout, dE):
    acc = scalar.zero64()  # a sum over every position: float64 whatever the dtype
    for p in range(ids.shape[0]):
        if ids[p] == v:
            acc += dout[p, d]
    dE[v, d] += acc


class Embedding(Op):
    name = "embedding"
    inputs = ("ids", "E")
    label_inputs = ("ids",)

    def shape(self, ids, E):
        if len(E.shape) != 2:
            raise self.shape_error((ids, E), "the table E must be (V, D)")
        if ids.dtype.kind not in "iu":
            raise LabelError(f"embedding: ids {ids.name!r} must be integers, got {ids.dtype}")
        return ids.shape + (E.shape[1],)

    def validate(self, ids, E):
        outside = (ids.value < 0) | (ids.value >= E.shape[0])
        if outside.any():
            index = tuple(int(i) for i in np.argwhere(outside)[0])
            raise LabelError(f"embedding: id {int(ids.value[index])} at index {index} of {ids.name!r} "
                             f"is outside the table {E.name!r} of {E.shape[0]} rows")

    def forward(self, out, ids, E):
        loop(embedding_forward, (ids.size, E.shape[1]), flat(ids.value), E.value, out.value.reshape(-1, E.shape[1]))

    def backward(self, out, ids, E):
        if E.requires_grad:
            loop(embedding_grad_E, E.shape, flat(ids.value), out.grad.reshape(-1, E.shape[1]), E.grad)


def embedding(ids, E, name=None):
    """Look up rows of E (V, D) for integer ids of any shape: ids.shape + (D,)."""
    return Embedding().apply((ids, E), name)
