"""Tutorial 5: stepping through backprop in pdb, one scalar of the chain rule at a time.

Run this file under the debugger and stop inside a backward loop:

    python -m pdb tutorials/05_stepping_through_backprop.py
    (Pdb) !import loopnet.ops.arithmetic
    (Pdb) b loopnet.ops.arithmetic.mul_grad_a
    (Pdb) c
    (Pdb) p i, dy[i], b[i], da[i]       # w.grad += u.grad * x, before: (0, -1.0, 2.0, 0.0)
    (Pdb) n
    (Pdb) p da[i]                       # -2.0: dloss/dw, by the chain rule, one multiply-add
    (Pdb) c

`mul_grad_a(i, a, b, dy, da)` is the loop body for u = a * b with respect to a; here
a = w, b = x = 2 and dy = dloss/du = -1 (tutorial 1 derives it by hand). The Python
backend calls this very function at every grid point, so the breakpoint is hit.
(The test suite drives exactly this session.)
"""

import loopnet as ln

x, y = ln.Input(2.0, name="x"), ln.Input(3.0, name="y")
w, b = ln.Parameter(1.0, name="w"), ln.Parameter(0.5, name="b")
loss = ln.square(ln.sub(ln.add(ln.mul(w, x, name="u"), b), y), name="loss")

with ln.use("python"):  # compiled backends run machine code: no breakpoints there
    ln.forward(loss)
    ln.backward(loss)
print(f"w.grad = {float(w.grad)}")
