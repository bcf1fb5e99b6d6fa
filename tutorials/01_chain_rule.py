"""Tutorial 1: the chain rule on the 1-D least-squares graph, by hand and by loopnet.

Deck 000's 'Computation Graph' draws one-dimensional least squares as a graph, and its
'Gradient Calculation using the Chain Rule' writes the loss as l(w) = s(r_y(p_x(w))) and
differentiates it, with no bias and no numbers (reading p, r and s as the prediction w x,
the residual p - y and the square is loopnet's; the text gives only the symbols). This tutorial adds a
bias b, prediction = w x + b; the numbers (x = 2, y = 3, w = 1, b = 0.5) are loopnet's own.
Run it: `python tutorials/01_chain_rule.py`.
"""

import loopnet as ln

# The numbers: one example x = 2 with target y = 3, and weights w = 1, b = 0.5.
x, y = ln.Input(2.0, name="x"), ln.Input(3.0, name="y")
w, b = ln.Parameter(1.0, name="w"), ln.Parameter(0.5, name="b")
u = ln.mul(w, x, name="u")
prediction = ln.add(u, b, name="prediction")
residual = ln.sub(prediction, y, name="residual")
loss = ln.square(residual, name="loss")

# Forward, by hand:  u = 2,  prediction = 2.5,  residual = -0.5,  loss = 0.25
ln.forward(loss)
print(f"loss = {float(loss.value)}")
assert loss.value == 0.25

# Backward, by hand, one local derivative at a time (the chain rule):
#   dloss/dresidual   = 2 * residual           = -1
#   dloss/dprediction = dloss/dresidual * 1    = -1
#   dloss/db          = dloss/dprediction * 1  = -1
#   dloss/du          = dloss/dprediction * 1  = -1
#   dloss/dw          = dloss/du * x           = -2
by_hand = {"residual": -1.0, "prediction": -1.0, "b": -1.0, "u": -1.0, "w": -2.0}

ln.backward(loss)
for node in (residual, prediction, b, u, w):
    print(f"d loss / d {node.name:<10} by hand {by_hand[node.name]:>5}   by loopnet {float(node.grad):>5}")
    assert node.grad == by_hand[node.name]

# To watch it happen: put a breakpoint in loopnet/ops/arithmetic.py, in mul_grad_a,
# and run this file under `python -m pdb`. The line `da[i] += dy[i] * b[i]` is
# dloss/dw += dloss/du * x, with the numbers above.
