"""Tutorial 11: an RNN unrolled in time, and why its gradients vanish or explode.

h_t = tanh(x_t U + h_{t-1} V) with the same U and V at every step (deck 001 writes
h_t = sigma(U x_t + V h_{t-1}) with column vectors; rows here, as everywhere in loopnet).
Backprop through T steps multiplies by V^T (and tanh' <= 1) once per step. Deck 001
argues with a weight used t times, W = V diag(lambda) V^-1 (its V is the eigenvectors,
not the RNN's V), whose gradients are scaled by diag(lambda)^t. Below, V is `radius` times
an orthogonal matrix Q: its eigenvalues are complex, all of modulus radius, and since
Q^T Q = I every step scales the gradient's norm by exactly radius (times tanh' <= 1), so
the gradient reaching step t is radius^(T-t) times the last step's. The inputs are small,
so tanh stays near its linear part. Run: `python tutorials/11_rnn_gradients.py`.
"""

import numpy as np

import loopnet as ln

T, H = 12, 8


def gradient_norms(radius, seed=0):
    """||d loss / d h_t|| for t = 1..T, with loss = sum(h_T)."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(H, H)))
    U = ln.Parameter(rng.normal(0, 0.01, (H, H)), name="U")
    V = ln.Parameter(radius * Q, name="V")
    h = ln.Input(np.zeros((1, H)), name="h0")
    states = []
    for t in range(T):
        x = ln.Input(rng.normal(0, 0.01, (1, H)), name=f"x{t + 1}")
        h = ln.tanh(ln.add(ln.matmul(x, U), ln.matmul(h, V)), name=f"h{t + 1}")
        states.append(h)
    loss = ln.sum(h)
    ln.forward(loss)
    ln.backward(loss)
    shared = V.grad.copy()
    return [float(np.linalg.norm(s.grad)) for s in states], shared


radii = (0.5, 0.9, 1.0, 1.1, 1.5)
table = {r: gradient_norms(r)[0] for r in radii}
print("||d loss / d h_t||, loss = sum(h_T), by spectral radius of V:")
print(f"{'t':>3} " + " ".join(f"{'r=' + str(r):>10}" for r in radii))
for t in range(T):
    print(f"{t + 1:>3} " + " ".join(f"{table[r][t]:>10.3e}" for r in radii))

# Deck 001's diag(lambda)^t ('Optimization: depth'), here: norm(t) ~ radius^(T - t) times the last step's.
for r in radii:
    ratio = table[r][0] / table[r][-1]
    print(f"r = {r}: first-step / last-step gradient {ratio:.3e}, radius^(T-1) = {r ** (T - 1):.3e}")
    assert 0.5 * r ** (T - 1) < ratio < 2.0 * r ** (T - 1)
assert table[0.5][0] < 1e-3 * table[0.5][-1]  # vanishing
assert table[1.5][0] > 50 * table[1.5][-1]  # exploding: 1.5^11 = 86

# Shared weights: V is used at every step, so its gradient is the sum over the steps.
_, dV = gradient_norms(0.9)
print(f"||dV|| = {np.linalg.norm(dV):.3e}, summed over {T} uses of the same V")
