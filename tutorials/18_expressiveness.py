"""Tutorial 18: what one hidden layer can express, and what depth saves, made runnable.

1. Deck 002, 'Problems with linear feature learning': two linear layers are one,
   W~ = W_2 W_1, b~ = W_2 b_1 + b_2. Without a nonlinearity, stacking gains nothing.
2. Deck 002, 'Universal function approximation' (two slides of that title): a
   one-hidden-layer ReLU net f^(x) = sum_i +-max{0, w_i x + b_i} through any points
   (x_i, y_i), compiled from the points, equals np.interp; more points, smaller error.
3. Deck 000, 'Expressiveness': every Boolean function f: {+-1}^n -> {+-1} by one hidden
   layer, from its truth table: one unit per input u with f(u) = +1, so up to 2^n units.
4. Deck 002, 'Why use deep networks': parity needs O(2^n) hidden units with one hidden layer,
   O(n) with O(log n) layers. Here 2^(n-1) against a tree of XOR gadgets.

Every weight is set by hand (computed in NumPy); loopnet only runs the networks.
Run: `python tutorials/18_expressiveness.py` (Python backend, under a second).
"""

import itertools

import numpy as np

import loopnet as ln

rng = np.random.default_rng(0)


def const(array):
    return ln.Input(np.asarray(array, dtype=float))


def collapse(W1, b1, W2, b2):
    """affine(affine(x, W1, b1), W2, b2) as one affine layer, in loopnet's row form y = x W + b."""
    return W1 @ W2, b1 @ W2 + b2


with ln.use("python"):
    # --- 1. Deck 002: two linear layers collapse into one ----------------------------------
    # The slide writes columns, h = W_2 (W_1 x + b_1) + b_2. loopnet's affine writes rows,
    # y = x W + b (its W is the slide's W transposed), so the product turns round:
    # W = W1 W2, b = b1 W2 + b2. Here loopnet computes them too: matmul, and affine on b1.
    X = const(rng.normal(size=(6, 3)))
    W1, b1 = rng.normal(size=(3, 4)), rng.normal(size=4)
    W2, b2 = rng.normal(size=(4, 2)), rng.normal(size=2)
    W = ln.forward(ln.matmul(const(W1), const(W2)))
    b = ln.forward(ln.affine(const(b1[None, :]), const(W2), const(b2)))[0]
    W_np, b_np = collapse(W1, b1, W2, b2)
    assert np.allclose(W, W_np, atol=1e-12) and np.allclose(b, b_np, atol=1e-12)
    assert np.allclose(W.T, W2.T @ W1.T) and np.allclose(b, W2.T @ b1 + b2)  # the slide's columns

    two = ln.forward(ln.affine(ln.affine(X, const(W1), const(b1)), const(W2), const(b2)))
    one = ln.forward(ln.affine(X, const(W), const(b)))
    gap = np.abs(two - one).max()
    print(f"1. two affine layers vs one with W = W1 W2, b = b1 W2 + b2: max difference {gap:.1e}")
    assert gap < 1e-12

    # A ReLU between the two layers breaks the identity: that is all a nonlinearity is for.
    relu_two = ln.forward(ln.affine(ln.relu(ln.affine(X, const(W1), const(b1))), const(W2), const(b2)))
    relu_gap = np.abs(relu_two - one).max()
    print(f"   with a ReLU in between:                               max difference {relu_gap:.2f}")
    assert relu_gap > 1

    # --- 2. Deck 002: a ReLU net through any points (x_i, y_i) -----------------------------
    # The slide gives the form f^(x) = sum_i +-max{0, w_i x + b_i} (no output bias) and a
    # picture; the weights below are loopnet's own reading of it. c_i is the change of slope
    # at x_i (first slope at x_1, minus the last at x_n, so f^ is flat outside the points, as
    # np.interp is), and c (x - x_i)_+ = sign(c) max{0, |c| x - |c| x_i}. One more unit with
    # w = 0 gives the constant y_1 as sign(y_1) max{0, |y_1|}: d = n + 1 units in all.
    def compile_points(xs, ys):
        slopes = np.diff(ys) / np.diff(xs)
        c = np.diff(np.concatenate([[0.0], slopes, [0.0]]))  # n slope changes
        w = np.concatenate([[0.0], np.abs(c)])
        b = np.concatenate([[abs(ys[0])], -np.abs(c) * xs])
        sign = np.where(np.concatenate([[ys[0]], c]) < 0, -1.0, 1.0)
        return w, b, sign

    def relu_net(x, w, b, sign):
        """f^(x) = relu(x w + b) sign: x is (N, 1), one hidden unit per column, +-1 read-out."""
        hidden = ln.relu(ln.affine(const(x.reshape(-1, 1)), const(w[None, :]), const(b)))
        return ln.forward(ln.matmul(hidden, const(sign[:, None]))).ravel()

    xs = np.sort(rng.uniform(-3, 3, 7))
    ys = rng.normal(size=7)
    w, b, sign = compile_points(xs, ys)
    grid = np.linspace(xs[0] - 1, xs[-1] + 1, 301)  # between the points, and a little outside
    fit = relu_net(grid, w, b, sign)
    print(f"2. 7 random points -> {len(w)} hidden units; signs {sign.astype(int).tolist()}")
    interp_gap = np.abs(fit - np.interp(grid, xs, ys)).max()
    point_gap = np.abs(relu_net(xs, w, b, sign) - ys).max()
    print(f"   max |f^ - np.interp| on {len(grid)} grid points: {interp_gap:.1e};",
          f"at the 7 points: {point_gap:.1e}")
    assert interp_gap < 1e-12 and point_gap < 1e-12

    # The theorem's proof: sample a smooth f densely and the piecewise-linear f^ follows it.
    # f = sin on D = [0, pi], k evenly spaced points, spacing h = pi / (k - 1): the error stays
    # under h^2 / 8 (linear interpolation's bound, as |sin''| <= 1), so halving h quarters it.
    dense = np.linspace(0, np.pi, 1001)
    errors = {}
    for k in (3, 5, 9, 17, 33):
        xk = np.linspace(0, np.pi, k)
        errors[k] = np.abs(relu_net(dense, *compile_points(xk, np.sin(xk))) - np.sin(dense)).max()
    ratios = [errors[k] / errors[2 * k - 1] for k in (3, 5, 9, 17)]
    print("   sin on [0, pi], k points -> max error:",
          ", ".join(f"{k}: {e:.1e}" for k, e in errors.items()))
    print("   error ratio as the spacing halves:", ", ".join(f"{r:.2f}" for r in ratios))
    assert all(e <= (np.pi / (k - 1)) ** 2 / 8 for k, e in errors.items())
    assert np.allclose(ratios, [2.99, 3.73, 3.93, 3.99], atol=0.01) and errors[33] < 1.3e-3

    # --- 3. Deck 000: every Boolean function by one hidden layer ---------------------------
    # The deck's proof, step by step (its text drops the minus in sign(x^T u_i - (n-1))):
    # (a) for integer x, sign(x) = 2([x+1]_+ - [x]_+) - 1, with sign(0) = +1 here;
    ints = np.arange(-4, 5)
    two_relus = 2 * (np.maximum(ints + 1, 0) - np.maximum(ints, 0)) - 1
    assert (two_relus == np.where(ints >= 0, 1, -1)).all()
    # (b) f(x) = OR_i (x == u_i) over the inputs u_1..u_k with f = +1;
    # (c) sign(x^T u_i - (n-1)) is the indicator of x == u_i: on {+-1}^n, x^T u = n if x = u
    #     and at most n - 2 otherwise, so x^T u - (n-1) is 1 there and <= -1 everywhere else;
    # (d) the weights can be set so that y p(x) >= 1 on every (x, y).
    # The deck stops there. loopnet's own completion: the indicator is ([a+1]_+ - [a]_+),
    # a = x^T u_i - (n-1) (two ReLUs, from (a)); at most one is 1, so the OR is their sum,
    # and p(x) = 2 sum_i indicator_i - 1 is +-1 exactly: y p(x) = 1.
    def cube(n):
        return np.array(list(itertools.product((-1.0, 1.0), repeat=n)))

    def compile_table(n, f, relus_per_unit=1):
        """Hidden W (n, k) and b (k,): one unit per u with f(u) = +1; output v, c: p = h v + c.
        relus_per_unit=2 is the deck's sign by two ReLUs; 1 is loopnet's shortcut: a is 1 or
        <= -1, so [a]_+ alone is already the indicator, and [a+1]_+ - [a]_+ is never needed."""
        U = cube(n)[f > 0]
        if relus_per_unit == 2:
            W = np.hstack([U.T, U.T])
            b = np.concatenate([np.full(len(U), 2.0 - n), np.full(len(U), 1.0 - n)])
            v = np.concatenate([np.full(len(U), 2.0), np.full(len(U), -2.0)])
        else:
            W, b, v = U.T, np.full(len(U), 1.0 - n), np.full(len(U), 2.0)
        return W, b, v, np.array([-1.0])

    def one_layer(x, W, b, v, c):
        hidden = ln.relu(ln.affine(const(x), const(W), const(b)))
        return ln.forward(ln.affine(hidden, const(v[:, None]), const(c))).ravel()

    n = 4
    table = rng.choice([-1.0, 1.0], size=2**n)
    ones = int((table > 0).sum())
    a = cube(n) @ cube(n)[table > 0].T - (n - 1)  # (16 inputs x, k units u_i)
    print(f"3. random f on {{+-1}}^{n}: {''.join('+' if t > 0 else '-' for t in table)},"
          f" f = +1 on {ones} of 2^n = {2**n} inputs")
    print(f"   x^T u_i - (n-1) takes the values {np.unique(a).astype(int).tolist()}; 1 only at x = u_i")
    assert np.unique(a).tolist() == [-7, -5, -3, -1, 1] and ((a == 1).sum(axis=0) == 1).all()
    for per_unit, who in ((2, "the deck's sign, 2 ReLUs per u_i"), (1, "loopnet, 1 ReLU per u_i")):
        W, b, v, c = compile_table(n, table, per_unit)
        p = one_layer(cube(n), W, b, v, c)
        print(f"   {who:<34} hidden width {W.shape[1]:>2}, y p(x) = {np.unique(table * p)} on all 16")
        assert (p == table).all() and (table * p >= 1).all()
        assert W.shape[1] == per_unit * ones and ones <= 2**n
    # The deck then states (proof "think on the VC dimension", not done here) that the least
    # width s(n) of one hidden layer that implements every Boolean function is exponential in n.

    # --- 4. Parity: one hidden layer against a tree of XOR gadgets -------------------------
    # Section 3's net for parity (f = +1 where an odd number of inputs are +1) has one unit per
    # odd input: 2^(n-1) (that no one-layer net does much better is the deck's claim, not
    # checked here). Deck 002 states O(n) units with O(log n) layers, without a construction;
    # loopnet's is a tree: XOR bits pairwise, halving the number of wires per layer. On bits
    # (x + 1) / 2, xor(a, b) = relu(a + b) - 2 relu(a + b - 1) (2 units), an unpaired wire
    # passes through relu(a) = a (1 unit). Each layer's read-out (the -2) is linear, so by
    # section 1 it folds into the next layer's weights: a plain ReLU net, depth ceil(log2 n).
    def compile_tree(n):
        layers, readout, wires = [], np.eye(n), n  # readout: previous layer's units -> wires
        while wires > 1:
            pairs, odd = wires // 2, wires % 2
            W = np.zeros((wires, 2 * pairs + odd))
            b = np.zeros(2 * pairs + odd)
            V = np.zeros((2 * pairs + odd, pairs + odd))
            for j in range(pairs):
                W[2 * j:2 * j + 2, 2 * j:2 * j + 2] = 1.0
                b[2 * j + 1], V[2 * j, j], V[2 * j + 1, j] = -1.0, 1.0, -2.0
            if odd:
                W[-1, -1] = V[-1, -1] = 1.0
            layers.append(collapse(readout, np.zeros(wires), W, b))  # fold the read-out in
            readout, wires = V, pairs + odd
        return layers, readout

    def tree(bits, layers, readout):
        h = const(bits)
        for W, b in layers:
            h = ln.relu(ln.affine(h, const(W), const(b)))
        return ln.forward(ln.matmul(h, const(readout))).ravel()

    print("4.  n   one layer: width   tree: units  depth")
    widths = []
    for n in range(2, 7):
        x = cube(n)
        parity = np.where((x > 0).sum(axis=1) % 2 == 1, 1.0, -1.0)
        W, b, v, c = compile_table(n, parity)
        assert (one_layer(x, W, b, v, c) == parity).all()
        layers, readout = compile_tree(n)
        assert (tree((x > 0).astype(float), layers, readout) == (parity > 0)).all()  # all 2^n inputs
        units, depth = sum(len(b) for _, b in layers), len(layers)
        widths.append(W.shape[1])
        print(f"   {n:>2}   {W.shape[1]:>16}   {units:>11}  {depth:>5}")
        assert W.shape[1] == 2 ** (n - 1) and depth == int(np.ceil(np.log2(n)))
        assert units <= 2 * (n - 1) + depth  # 2 per XOR, n - 1 XORs, at most one pass per layer
    assert widths == [2, 4, 8, 16, 32]  # doubling with every input
