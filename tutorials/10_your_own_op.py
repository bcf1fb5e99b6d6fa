"""Tutorial 10: writing your own op and testing it with loopnet.testing.

An op is its math, a forward loop, a backward loop, and a line saying which loop runs
over which grid, in deck 003's notation (a loop over scalar assignments per gradient).
Here: softsign(x) = x / (1 + |x|), an op of loopnet's own choosing. Run: `python tutorials/10_your_own_op.py`.
"""

import numpy as np
from hypothesis import given, settings

import loopnet as ln
from loopnet.op import Elementwise
from loopnet.testing import assert_gradcheck, gradcheck, strategies as lst


def softsign_forward(i, x, y):
    y[i] = x[i] / (1 + abs(x[i]))


def softsign_grad_x(i, x, y, dy, dx):
    d = 1 + abs(x[i])
    dx[i] += dy[i] / (d * d)  # d/dx x / (1 + |x|) = 1 / (1 + |x|)^2


class Softsign(Elementwise):
    name = "softsign"
    forward_body, grad_x_body = softsign_forward, softsign_grad_x


def softsign(x, name=None):
    return Softsign().apply((x,), name)


# 1. One gradient check, with its report.
report = gradcheck(softsign(ln.Parameter([-2.0, 0.5, 3.0], name="x")))
print(report)
assert report

# 2. A property test over random shapes and values, kept away from the kink at 0.
@settings(max_examples=25, deadline=None)
@given(lst.arrays(lst.shapes(), avoid=(0.0,)))
def test_softsign_gradient(values):
    assert_gradcheck(softsign(ln.Parameter(values, name="x")))


test_softsign_gradient()
print("Hypothesis: 25 random inputs, every gradient element agrees with finite differences")

# 3. A wrong backward is caught, element by element.
Softsign.grad_x_body = lambda i, x, y, dy, dx: dx.__setitem__(i, dx[i] + dy[i])
broken = gradcheck(softsign(ln.Parameter([1.0, 2.0], name="x")))
print(broken)
assert not broken and len(broken.failures) == 2

# 4. The same op on the Numba backend: the very same function, compiled.
Softsign.grad_x_body = softsign_grad_x
with ln.use("numba"):
    y = softsign(ln.Parameter(np.linspace(-3, 3, 7), name="x"))
    assert np.allclose(ln.forward(y), np.linspace(-3, 3, 7) / (1 + np.abs(np.linspace(-3, 3, 7))))
print("and it runs unchanged on the numba backend")
