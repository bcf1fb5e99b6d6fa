"""Tutorial 5: stepping through backprop in pdb, one scalar of the chain rule at a time.

Run the README's first command under the debugger (no flag needed: trace runs the Python
reference loops by default) and stop inside the backward loop that computes dL/dv of
deck 001's bias-free XOR network (the `xor-backprop` target):

    python -m pdb cli.py trace xor-backprop
    (Pdb) !import numpy; numpy.set_printoptions(legacy="1.25")
    (Pdb) !import loopnet.ops.matmul
    (Pdb) b loopnet.ops.matmul.matmul_grad_B, k == 1
    (Pdb) c
    (Pdb) n
    (Pdb) n
    (Pdb) p i, AT[k, i], dCT[j, i]      # example 0: ReLU(a)[0,1] = 0.0, dL/dh[0] = 0.0
    (Pdb) n
    (Pdb) n
    (Pdb) p i, AT[k, i], dCT[j, i]      # example 1: 1.0 x -2.0, the first non-zero term
    (Pdb) r
    (Pdb) p dB[k, j]                    # -4.0: dL/dv[1], the sum over the four examples
    (Pdb) cl 1
    (Pdb) c

What each step does:

- The first line is a display tip. NumPy 2 shows an array element as `np.float64(2.0)`;
  the legacy print option shows `2.0`, which reads better while stepping. (`pp float(x)`
  also works, for one value.)
- `!import loopnet.ops.matmul` makes the module's name known to pdb. Then `b
  module.function, condition` stops at the first call whose grid point has k == 1.
- h = ReLU(a) v is a matmul, so dL/dv comes from matmul's gradient loop for its second
  input, `matmul_grad_B(k, j, AT, dCT, dB)`: dB[k,j] += sum_i A[i,k] dC[i,j], reading
  A = ReLU(a) and dC = dL/dh through transposed copies (AT, dCT) so the loop walks memory
  in order. Grid point (k, j) = (1, 0) is v's second element.
- Each `n` runs one line. The loop adds one term per example. Examples 0 and 2 add 0
  (example 2 is already right: h = y there). Examples 1 and 3 add 1 x -2 and 2 x -1.
- `r` runs to the end of this grid point; then dB[k, j] holds -4.0, the number worked
  by hand in the README (v has shape (2, 1), so this is v.grad[1, 0]).
- `cl 1` clears the breakpoint before `c` runs the rest of the trace: the same loop also
  computes dL/dW (a = X W is a matmul too), whose row k == 1 would stop again.

The same works for any op: `trace mlp` with `b loopnet.ops.affine.affine_grad_W` stops
in the affine layer's weight-gradient loop. Only the compiled backends (`--backend numba`,
`cuda`) run machine code that no breakpoint can stop; trace says so if you ask for one
under a debugger. The test suite drives exactly this session.

Run as a script, this tutorial computes the same gradient and lists the four terms with
`ln.explain`.
"""

import numpy as np

import loopnet as ln
from loopnet.explain import find_node
from loopnet.targets import build_target

loss = build_target("xor-backprop")
ln.forward(loss)
ln.backward(loss)
v = find_node(loss, "v")
print(f"dL/dv = {v.grad.ravel().tolist()}")
assert np.array_equal(v.grad.ravel(), [-1.0, -4.0])
print(ln.explain(v, (1, 0)))
