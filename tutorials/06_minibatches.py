"""Tutorial 6: minibatching, and why the gradient is averaged over the batch.

The loss of a minibatch is the mean of the examples' losses, so its gradient is the
mean of their gradients: the step size does not depend on the batch size (deck 003's
'Minibatching' averages the gradients over the batch by convention).
Run: `python tutorials/06_minibatches.py`.
"""

import numpy as np

import loopnet as ln

rng = np.random.default_rng(0)
X, t = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
W0 = rng.normal(size=(3, 1))


def gradient(rows):
    x, target = ln.Input(X[rows], name="x"), ln.Input(t[rows], name="t")
    W, b = ln.Parameter(W0, name="W"), ln.Parameter([0.0], name="b")
    loss = ln.mse_loss(ln.affine(x, W, b), target)
    ln.forward(loss)
    ln.backward(loss)
    return W.grad.copy()


per_example = [gradient([n]) for n in range(8)]
whole_batch = gradient(list(range(8)))
print("mean of the 8 per-example gradients:", np.round(np.mean(per_example, axis=0).ravel(), 6))
print("gradient of the batch's mean loss:  ", np.round(whole_batch.ravel(), 6))
assert np.allclose(whole_batch, np.mean(per_example, axis=0))

# A sum instead of a mean would make the gradient 8 times larger, and the right
# learning rate would change with the batch size.
halves = (gradient(list(range(4))) + gradient(list(range(4, 8)))) / 2
assert np.allclose(halves, whole_batch)
print("two half-batches, averaged, give the same gradient: batch size is a free choice")
