"""Tutorial 2: forward and backward on a graph with fan-out.

Deck 002, 'Variables passed to multiple functions': add all the incoming Jacobians.

f = w x + x^2: x feeds two ops, so backprop reaches x along two paths and adds them.
Run: `python tutorials/02_fan_out.py`.
"""

import loopnet as ln

x, w = ln.Parameter(2.0, name="x"), ln.Parameter(3.0, name="w")
u = ln.mul(w, x, name="u")        # first consumer of x
v = ln.square(x, name="v")        # second consumer of x
f = ln.add(u, v, name="f")

# Forward, in topological order: u = 6, v = 4, f = 10.
for node in ln.topological_order(f):
    print(f"forward order: {node.name}")
assert ln.forward(f) == 10.0

# Backward, in reverse order. df/du = df/dv = 1; then
#   from u = w x:   x.grad += df/du * w   = 3
#   from v = x^2:   x.grad += df/dv * 2x  = 4
ln.backward(f)
print(f"df/dx = {float(x.grad)}  (3 from u, 4 from v)")
assert x.grad == 7.0 and w.grad == 2.0

# loopnet.explain lists the two terms, in the order backward added them.
print(ln.explain(x))
