"""Tutorial 9: vanishing and exploding gradients with depth, and clipping.

A deep stack of sigmoid layers shrinks the gradient at every layer (sigmoid' <= 1/4);
ReLU passes it on unchanged where units are active; large weights make it explode, and
clipping by norm caps the step (deck 001, 'Optimization: depth'; deck 004, 'New
activation function'). Run: `python tutorials/09_vanishing_gradients.py`.
"""

import numpy as np

import loopnet as ln
from loopnet.optim import clip_grad_norm, grad_norm


def first_layer_grad_norm(activation, depth, scale, seed=0):
    rng = np.random.default_rng(seed)
    x = ln.Input(rng.normal(size=(16, 32)), name="x")
    h, weights = x, []
    for layer in range(depth):
        W = ln.Parameter(rng.normal(0, scale / np.sqrt(32), (32, 32)), name=f"W{layer}")
        weights.append(W)
        h = activation(ln.affine(h, W, ln.Parameter(np.zeros(32), name=f"b{layer}")))
    loss = ln.mean(ln.square(h))
    ln.forward(loss)
    ln.backward(loss)
    return float(np.linalg.norm(weights[0].grad)), weights


with ln.use("numba"):
    print(f"{'depth':>5} {'sigmoid':>12} {'relu':>12}   (norm of the first layer's gradient)")
    norms = {}
    for depth in (2, 5, 10, 20):
        s, _ = first_layer_grad_norm(ln.sigmoid, depth, 1.0)
        r, _ = first_layer_grad_norm(ln.relu, depth, np.sqrt(2))
        norms[depth] = (s, r)
        print(f"{depth:>5} {s:>12.3e} {r:>12.3e}")
    assert norms[20][0] < 1e-6 * norms[2][0]  # sigmoid: vanished
    assert norms[20][1] > 1e-2 * norms[2][1]  # relu (He scale): still alive

    big, weights = first_layer_grad_norm(ln.relu, 20, 3.0)  # weights too large: exploding
    print(f"relu, weights x3: first-layer gradient norm {big:.3e}")
    total = grad_norm(weights)
    clip_grad_norm(weights, 1.0)
    print(f"clipping by norm: ||g|| {total:.3e} -> {grad_norm(weights):.3f}")
    assert abs(grad_norm(weights) - 1.0) < 1e-9
