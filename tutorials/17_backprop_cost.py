"""Tutorial 17: what one g_i costs (deck 002, 'Poll: complexity of backpropagation').

Deck 002's 'Backpropagation, continued' defines, for z_{i+1} = f_i(W_i z_i + b_i),

    g_i^T = (dl/dz_k) (dz_k/dz_{k-1}) ... (dz_{i+1}/dz_i),   dz_{t+1}/dz_t = diag(f'_t) W_t,

and the poll asks what computing one g_i costs when every z_t is n-dimensional, offering
O(n^3), O(n^2), O(n^3 (k-i)) and O(n^2 (k-i)). The deck lists the options and does not
give the answer. Here loopnet's own work counter (`loopnet.watch.watch`, what
`python cli.py trace TARGET --counts` prints) counts the scalar multiplications:

- backprop multiplies left to right, a vector times a matrix at each step:
  g_t = W_t^T (g_{t+1} o f'_t), n^2 + 2n multiplications per layer, k (n^2 + 2n) in all;
  doubling n multiplies the W_t^T part by 4 (the whole backward by 3.6 to 3.8, tanh's 2n
  growing only 2x), doubling the number of layers multiplies it all by 2;
- multiplying the Jacobians first, right to left (carrying the whole matrix dz_t/dz_0
  forward, as forward mode does for all n directions at once), costs n^3 per product,
  (k-1) n^3 + n^2 in all: 5x backprop's count at n = 8, 10.9x at 16, 22.8x at 32, a
  ratio that grows like n.

Both give the same g_i. The counts support O(n^2 (k-i)), the fourth option. The chain is
the deck's column form, z_{t+1} = tanh(W_t z_t) with b_t = 0 and W_t (out, in), written
with `ln.matvec`; loopnet's minibatch ops use rows, where the same layer is z W_t^T.
Run: `python tutorials/17_backprop_cost.py`.
"""

import numpy as np

import loopnet as ln
from loopnet.watch import watch

K = 4  # layers: g_0 needs all k - i = 4 factors dz_{t+1}/dz_t


def chain(n, k=K, seed=0):
    """z_0 -> tanh(W_0 z_0) -> ... -> z_k, loss l = sum(z_k), so g_k = dl/dz_k = ones."""
    rng = np.random.default_rng(seed)
    with ln.fresh_names():
        z = ln.Input(rng.normal(size=n), name="z0", grad=True)  # g_0 is z0.grad
        zs, Ws = [z], []
        for t in range(k):
            W = ln.Input(rng.normal(0, 1 / np.sqrt(n), (n, n)), name=f"W{t}")  # data: only g_t is asked for
            z = ln.tanh(ln.matvec(W, z, name=f"Wz{t + 1}"), name=f"z{t + 1}")
            zs.append(z)
            Ws.append(W)
        return ln.sum(z, name="loss"), zs, Ws


def backward_mults(loss):
    """Scalar multiplications of one backward pass: (all nodes, the matvec nodes alone)."""
    ln.forward(loss)
    with watch(check_ownership=False) as w:
        ln.backward(loss)
    table = w.table()
    total = sum(c["backward"]["mul"] for c in table.values())
    matvec = sum(c["backward"]["mul"] for name, c in table.items() if name.startswith("Wz"))
    return total, matvec


def jacobian_product_mults(jacobians, g_k):
    """g_k^T J_k ... J_1 with the matrices multiplied first, right to left, by ln.matmul:
    (the vector, the matrix product, the multiplications counted)."""
    with ln.fresh_names():
        P = ln.Input(jacobians[0], name="J1")
        for t, J in enumerate(jacobians[1:], start=2):
            P = ln.matmul(ln.Input(J, name=f"J{t}"), P)  # n x n times n x n: n^3
        g = ln.matmul(ln.Input(g_k[None, :], name="g_k"), P)  # 1 x n times n x n: n^2
    with watch(check_ownership=False) as w:
        ln.forward(g)
    return g.value[0], P.value, sum(c["forward"]["mul"] for c in w.table().values())


with ln.use("python"):  # watch() records the Python backend's loops
    rows = {}
    print(f"k = {K} layers; multiplications to get g_0:")
    print(f"{'n':>3} | {'reverse (backward)':>18} {'of which W^T g':>14} | {'forward (J products)':>20} | ratio")
    for n in (8, 16, 32):
        loss, zs, Ws = chain(n)
        reverse, matvec = backward_mults(loss)
        g_reverse = zs[0].grad.copy()

        # The Jacobians dz_{t+1}/dz_t from loopnet's backward loops (one backward per row;
        # forming them costs work too, which the poll leaves out and so does this count) ...
        Js = [ln.jacobian(zs[t + 1], zs[t]) for t in range(K)]
        for t, J in enumerate(Js):  # ... are the deck's diag(f'_t(W_t z_t)) W_t, f' = 1 - tanh^2
            assert np.allclose(J, np.diag(1 - zs[t + 1].value ** 2) @ Ws[t].value)
        g_forward, P, forward = jacobian_product_mults(Js, np.ones(n))

        # Both routes compute the same g_0 (column form: g_0 = (g_k^T J_k ... J_1)^T).
        assert np.allclose(P, np.linalg.multi_dot(Js[::-1]))
        assert np.allclose(g_forward, g_reverse)
        assert np.allclose(g_reverse, np.ones(n) @ np.linalg.multi_dot(Js[::-1]))

        # The counts, exactly: per layer n^2 (W^T g) + 2n (tanh's g * (1 - z*z));
        # the products (k-1) n^3 + n^2.
        assert matvec == K * n * n
        assert reverse == K * (n * n + 2 * n)
        assert forward == (K - 1) * n ** 3 + n * n
        rows[n] = (reverse, matvec, forward)
        print(f"{n:>3} | {reverse:>18} {matvec:>14} | {forward:>20} | {forward / reverse:5.1f}")
    assert [round(f / r, 1) for r, _, f in rows.values()] == [5.0, 10.9, 22.8]

    # Doubling n: the vector-matrix part grows 4x (n^2); the whole backward a little less,
    # since tanh's 2n per layer grows only 2x; the matrix products grow 8x (n^3).
    for n in (8, 16):
        grow_matvec = rows[2 * n][1] / rows[n][1]
        grow_reverse = rows[2 * n][0] / rows[n][0]
        grow_forward = rows[2 * n][2] / rows[n][2]
        grow_ratio = (rows[2 * n][2] / rows[2 * n][0]) / (rows[n][2] / rows[n][0])
        print(f"n {n:>2} -> {2 * n:>2}: reverse x{grow_reverse:.2f} (W^T g x{grow_matvec:.2f}), "
              f"forward x{grow_forward:.2f}, ratio x{grow_ratio:.2f}")
        assert grow_matvec == 4.0
        assert 3.5 <= grow_reverse <= 4.5
        assert 7.5 <= grow_forward <= 8.0
        assert 1.8 <= grow_ratio <= 2.3  # the forward/reverse ratio grows like n

    # The (k - i) factor: at n = 16 the backward's count is proportional to the depth.
    print("n = 16, backward multiplications by depth k - i:")
    per_layer = 16 * 16 + 2 * 16
    for k in (1, 2, 4, 8):
        reverse, _ = backward_mults(chain(16, k)[0])
        print(f"  k - i = {k}: {reverse:>5} = {k} x {per_layer}")
        assert reverse == k * per_layer
