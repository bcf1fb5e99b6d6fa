"""Tutorial 3: Jacobians, built from the backward loops (deck 000's J(f o g) = J(f) J(g)).

Backward with a one-hot upstream gradient at output element r gives row r of the
Jacobian. The examples are deck 000's 'Jacobian — Examples': an elementwise function's
diagonal Jacobian, and u = W x with J_x = W and J_W block-diagonal in x^T. That block form
flattens W row by row (W11, W12, ..., W21, ...), as `ln.jacobian(u, W).reshape(...)` does.
Deck 002's vec stacks W's columns instead, so its dz/dvec(W) reads (z^T kron I) where the
row-major order here gives (I kron x^T): the same numbers, in another order.
Run: `python tutorials/03_jacobians.py`.
"""

import numpy as np

import loopnet as ln

# An elementwise op has a diagonal Jacobian: d tanh(x)_i / d x_j = [i == j] (1 - tanh^2 x_i).
x = ln.Parameter([0.5, -1.0, 2.0], name="x")
y = ln.tanh(x, name="y")
J = ln.jacobian(y, x)
print("J(tanh) =\n", np.round(J, 4))
assert np.allclose(J, np.diag(1 - np.tanh(x.value) ** 2))

# u = W x: the Jacobian with respect to x is W itself.
W = ln.Parameter([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]], name="W")
xc = ln.Parameter([[0.5], [-1.0], [2.0]], name="xc")
u = ln.matmul(W, xc, name="u")
assert np.allclose(ln.jacobian(u, xc).reshape(2, 3), W.value)

# ... and with respect to W it has the block form du_i / dW_jk = [i == j] x_k.
print("J(Wx, W) =\n", ln.jacobian(u, W).reshape(2, 6))
assert np.allclose(ln.jacobian(u, W).reshape(2, 6), np.kron(np.eye(2), xc.value.T))
# deck 002's column-stacking vec: the same Jacobian with W's elements taken column by column
by_columns = ln.jacobian(u, W)[:, 0].transpose(0, 2, 1).reshape(2, 6)
assert np.allclose(by_columns, np.kron(xc.value.T, np.eye(2)))

# The chain rule: f = exp(g), g = tanh(x): J(f, x) = J(f, g) J(g, x).
f = ln.exp(y, name="f")
assert np.allclose(ln.jacobian(f, x), ln.jacobian(f, y) @ ln.jacobian(y, x))
print("chain rule holds: J(exp o tanh) = J(exp) J(tanh)")
