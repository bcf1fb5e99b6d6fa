"""Tutorial 16: deck 003's higher-order tensor loops, written out and matched against bmm.

Deck 003, 'Scalar vs. Matrix Operations', ends with a higher-order tensor example:

    for h,i,j,k:  U.value[h,i,j] += A.value[h,i,k] * B.value[h,j,k]
    for h,i,j:    Y.value[h,i,j]  = sigma(U.value[h,i,j])

and its backpropagation loops

    h,i,j     U.grad += Y.grad[h,i,j] * sigma'(U.value[h,i,j])
    h,i,j,k   A.grad += U.grad[h,i,j] * B.value[h,j,k]
    h,i,j,k   B.grad += U.grad[h,i,j] * A.value[h,i,k]

The backward lines leave out their left-hand indices (a slip in the slide's text): each
gradient has its value's shape, so they are U.grad[h,i,j], A.grad[h,i,k], B.grad[h,j,k].
In loopnet the example is Y = sigmoid(bmm(A, B, transpose_b=True)): B indexed [h,j,k] is
bmm's transpose_b=True (loopnet/ops/bmm.py), and sigma is the sigmoid op
(loopnet/ops/activations.py). Below, the slide's five loops run as plain Python and give
loopnet's numbers to the last bit.

To watch the B.grad loop in pdb, one multiply-add at a time (the Python backend is the
default, so a breakpoint stops):

    python -m pdb tutorials/16_higher_order_loop.py
    (Pdb) !import numpy; numpy.set_printoptions(legacy="1.25")
    (Pdb) !import loopnet.ops.bmm
    (Pdb) b loopnet.ops.bmm.bmm_grad_BT, (h, j, k) == (1, 2, 3)
    (Pdb) c
    (Pdb) p dU[h, :, j], A[h, :, k]     # the three terms of the sum over i
    (Pdb) r
    (Pdb) p dBT[h, j, k]                # B.grad[1, 2, 3], the number this script prints
    (Pdb) cl 1
    (Pdb) c

`bmm_grad_A` is A.grad's loop, `bmm_forward` U's; `bmm_grad_B` is B.grad's loop for
transpose_b=False only, so a breakpoint there never stops in this script.
Run: `python tutorials/16_higher_order_loop.py`.
"""

import inspect
import math
import sys
from collections import Counter

import numpy as np

import loopnet as ln
from loopnet.ops import bmm as bmm_module

H, I, J, K = 2, 3, 5, 4

# 1. The slide's computation in loopnet, on small random tensors; L = sum of Y.
rng = np.random.default_rng(0)
A = ln.Parameter(rng.normal(size=(H, I, K)), name="A")     # A.value[h,i,k]
B = ln.Parameter(rng.normal(size=(H, J, K)), name="B")     # B.value[h,j,k], as the slide indexes it
U = ln.bmm(A, B, transpose_b=True, name="U")               # (H, I, J)
Y = ln.sigmoid(U, name="Y")
L = ln.sum(Y)

calls = Counter()  # which of bmm.py's loop bodies run, and at how many grid points


def count_bmm_bodies(frame, event, arg):
    if event == "call" and frame.f_globals.get("__name__") == bmm_module.__name__:
        calls[frame.f_code.co_name] += 1


with ln.use("python"):  # the Python backend calls the body once per grid point
    previous = sys.getprofile()
    sys.setprofile(count_bmm_bodies)
    try:
        ln.forward(L)
        ln.backward(L)  # seeds L.grad = 1, so Y.grad is all ones
    finally:
        sys.setprofile(previous)
print(f"U = bmm(A, B, transpose_b=True): {U.shape}, L = sum(sigmoid(U)) = {float(L.value):.6f}")
assert U.shape == (H, I, J) and np.array_equal(Y.grad, np.ones((H, I, J)))


# 2. The slide's five loops (two forward, three backward), verbatim but for the left-hand indices, over plain Python scalars.
def sigma(u):  # the logistic function, stable for u < 0 (as loopnet.scalar.sigmoid)
    return 1 / (1 + math.exp(-u)) if u >= 0 else math.exp(u) / (1 + math.exp(u))


def sigma_prime(u):
    return sigma(u) * (1 - sigma(u))


a, b, y_grad = A.value, B.value, Y.grad
u_value, y_value = np.zeros((H, I, J)), np.zeros((H, I, J))
u_grad, a_grad, b_grad = np.zeros((H, I, J)), np.zeros((H, I, K)), np.zeros((H, J, K))
for h in range(H):
    for i in range(I):
        for j in range(J):
            for k in range(K):
                u_value[h, i, j] += a[h, i, k] * b[h, j, k]
for h in range(H):
    for i in range(I):
        for j in range(J):
            y_value[h, i, j] = sigma(u_value[h, i, j])
for h in range(H):
    for i in range(I):
        for j in range(J):
            u_grad[h, i, j] += y_grad[h, i, j] * sigma_prime(u_value[h, i, j])
for h in range(H):
    for i in range(I):
        for j in range(J):
            for k in range(K):
                a_grad[h, i, k] += u_grad[h, i, j] * b[h, j, k]
for h in range(H):
    for i in range(I):
        for j in range(J):
            for k in range(K):
                b_grad[h, j, k] += u_grad[h, i, j] * a[h, i, k]

for name, mine, loopnets in (("U.value", u_value, U.value), ("Y.value", y_value, Y.value),
                             ("U.grad", u_grad, U.grad), ("A.grad", a_grad, A.grad), ("B.grad", b_grad, B.grad)):
    print(f"{name:8} slide's loops vs loopnet: largest difference {np.max(np.abs(mine - loopnets))}")
    assert np.array_equal(mine, loopnets), name  # the same sums in the same order: bit for bit
print(f"B.grad[1, 2, 3] = {b_grad[1, 2, 3]:.6f} = sum over i of U.grad[1, i, 2] * A.value[1, i, 3]")
assert b_grad[1, 2, 3] == B.grad[1, 2, 3] and math.isclose(b_grad[1, 2, 3], sum(u_grad[1, :, 2] * a[1, :, 3]))

# 3. Where the loops live. The slide's loops run over all of h,i,j,k and add into an element;
#    loopnet's run over the element being written (the left-hand indices) and sum the
#    missing index inside, so no two grid points write the same element.
bodies = {name: n for name, n in sorted(calls.items()) if name.startswith("bmm_")}
print(f"\nloop bodies of loopnet/ops/bmm.py that ran, and at how many grid points: {bodies}")
print("  bmm_forward  U[h,i,j]:  one point per (h,i,j), summing over k")
print("  bmm_grad_A   A.grad[h,i,k]: one point per (h,i,k), summing over j")
print("  bmm_grad_BT  B.grad[h,j,k]: one point per (h,j,k), summing over i (bmm_grad_B is transpose_b=False's)")
assert calls["bmm_forward"] == H * I * J and calls["bmm_grad_A"] == H * I * K and calls["bmm_grad_BT"] == H * J * K
assert "bmm_grad_B" not in calls
# Each does the slide's H*I*J*K = 120 multiply-adds, just grouped by the element they write.
assert H * I * J * K == calls["bmm_grad_BT"] * I == calls["bmm_grad_A"] * J == calls["bmm_forward"] * K == 120
print(f"\n{inspect.getsource(bmm_module.bmm_grad_BT)}")
print("To step into it (see this file's docstring for the whole session):\n"
      "    python -m pdb tutorials/16_higher_order_loop.py\n"
      "    (Pdb) !import loopnet.ops.bmm\n"
      "    (Pdb) b loopnet.ops.bmm.bmm_grad_BT, (h, j, k) == (1, 2, 3)\n"
      "    (Pdb) c")
