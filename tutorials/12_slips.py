"""Tutorial 12: the slides' own slips, caught by the tool.

Lecture slides are typed by hand, and a few formulas in the decks loopnet teaches from
have slips: a lost minus, a lost transpose, "=" where backprop needs "+=". docs/slides.md
marks each one "slip:". Here each is taken literally and put to a check that the corrected
formula passes: a gradient check, training that climbs instead of descends, an expected
value, or a number compared with NumPy. Every section names the deck and the slide's title
and quotes only the few symbols at issue. Run: `python tutorials/12_slips.py`.
"""

import math

import numpy as np

import loopnet as ln
from loopnet.errors import ShapeError
from loopnet.loops import loop, scratch
from loopnet.op import Elementwise, Op
from loopnet.optim import Momentum
from loopnet.targets import build_target
from loopnet.testing import gradcheck

# ---------------------------------------------------------------------------------------
# 1. Deck 004, 'Improved Optimization: Momentum':
#        u_{t+1} <- gamma u_t - alpha grad,    W_{t+1} <- W_t - u_{t+1}
#    u already holds -alpha grad, so W - u adds alpha grad: a step uphill (with gamma = 0,
#    which the slide says recovers SGD, it is plain gradient ascent). The descent form is
#    u <- gamma u - alpha grad, W <- W + u, which is loopnet's Momentum.
X = ln.Input([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5], [-1.0, 1.0]], name="X")
Y = ln.Input([[1.0], [2.0], [0.0], [-1.0]], name="Y")
W = ln.Parameter(np.zeros((2, 1)), name="W")
loss = ln.mse_loss(ln.matmul(X, W), Y, name="loss")  # least squares, mean over 4 rows
alpha, gamma, steps = 0.02, 0.5, 20


def train_as_the_slide_writes_it():
    W.value = np.zeros((2, 1))
    u = np.zeros((2, 1))
    losses = [float(ln.forward(loss))]
    for _ in range(steps):
        ln.backward(loss)
        u = gamma * u - alpha * W.grad   # u <- gamma u - alpha grad
        W.value = W.value - u            # W <- W - u   (the slip)
        losses.append(float(ln.forward(loss)))
    return losses


def train_with_loopnets_momentum():
    W.value = np.zeros((2, 1))
    optimizer = Momentum([W], lr=alpha, momentum=gamma)  # v <- mu v - lr g ; w <- w + v
    losses = [float(ln.forward(loss))]
    for _ in range(steps):
        ln.backward(loss)
        optimizer.step()
        losses.append(float(ln.forward(loss)))
    return losses


climbs, descends = train_as_the_slide_writes_it(), train_with_loopnets_momentum()
best = float(np.mean((X.value @ np.linalg.lstsq(X.value, Y.value, rcond=None)[0] - Y.value) ** 2))
print(f"1. momentum, {steps} steps from loss {climbs[0]:.4f}: as written {climbs[-1]:.1f}, "
      f"corrected {descends[-1]:.4f} (least-squares minimum {best:.4f})")
assert climbs[0] == descends[0] == 1.5
assert all(b > a for a, b in zip(climbs, climbs[1:])) and climbs[-1] > 1000   # every step climbs
assert all(b < a for a, b in zip(descends, descends[1:])) and abs(descends[-1] - best) < 1e-3

# ---------------------------------------------------------------------------------------
# 2. Deck 004, 'More Regularization: Dropout': "zero-out features with probability p" in
#    training, "Multiply activations by p" at test. A unit kept with probability 1 - p has
#    expected training output (1 - p) x, so the test factor that matches it is 1 - p (the
#    two agree only at p = 0.5). loopnet's dropout is "inverted": it scales the survivors
#    by 1/(1 - p) in training and leaves the test pass alone.
p = 0.2
x = np.tile([1.0, 2.0, 3.0], (4000, 1))  # 4000 rows: the same 3 activations under 4000 masks
drop = ln.dropout(ln.Input(x, name="a"), p=p, seed=0, name="dropped")
trained = np.array(ln.forward(drop))                 # loopnet's training pass: x * mask / (1 - p)
slide_training_mean = (trained * (1 - p)).mean(0)    # undo the 1/(1-p): the slide's x * mask
drop.op.training = False
test_pass = np.array(ln.forward(drop))[0]            # loopnet's test pass: x itself
print(f"2. dropout p={p}: mean training activation {slide_training_mean.round(3)}; "
      f"test by p gives {p * x[0]}, by 1 - p {(1 - p) * x[0]}")
print(f"   inverted dropout: training mean {trained.mean(0).round(3)}, test pass {test_pass}")
assert np.allclose(slide_training_mean, (1 - p) * x[0], atol=0.05)     # (0.8, 1.6, 2.4)
assert np.all(np.abs(slide_training_mean - p * x[0]) > 0.5)            # (0.2, 0.4, 0.6) is far off
assert np.allclose(trained.mean(0), test_pass, atol=0.05) and np.array_equal(test_pass, x[0])

# ---------------------------------------------------------------------------------------
# 3. Deck 004, 'The basics' (linear regression): the normal equations read
#        X^T X W* - XY = 0,   then   W* = (X^T X)^{-1} X^T Y
#    XY where X^T Y belongs. For X of shape (N, D) with N != D, X Y is not even defined;
#    for a square X it is defined and gives the wrong W. The right W makes the gradient of
#    ||XW - Y||^2, as loopnet's backward computes it, zero.
rng = np.random.default_rng(0)


def gradient_of_squared_error(Xv, Yv, Wv):
    Xn, Yn = ln.Input(Xv, name="X"), ln.Input(Yv, name="Y")
    Wn = ln.Parameter(Wv, name="W")
    total = ln.sum(ln.square(ln.sub(ln.matmul(Xn, Wn), Yn)))   # ||XW - Y||^2, no mean
    ln.forward(total)
    ln.backward(total)
    return np.array(Wn.grad)


Xv, Yv = rng.standard_normal((5, 2)), rng.standard_normal((5, 1))
try:
    ln.matmul(ln.Input(Xv, name="X5"), ln.Input(Yv, name="Y5"))   # the slide's XY: (5, 2) @ (5, 1)
    raise AssertionError("XY should not be defined for X (5, 2) and Y (5, 1)")
except ShapeError as err:
    print(f"3. normal equations, X (5, 2): XY is refused: {err}")
W_star = np.linalg.solve(Xv.T @ Xv, Xv.T @ Yv)
grad = gradient_of_squared_error(Xv, Yv, W_star)
print(f"   with X^T Y: W* = {W_star.ravel().round(4)}, loopnet's dL/dW there = {grad.ravel()}")
assert np.allclose(W_star, np.linalg.lstsq(Xv, Yv, rcond=None)[0]) and np.abs(grad).max() < 1e-12

Xs, Ys = rng.standard_normal((3, 3)), rng.standard_normal((3, 1))     # square: XY is defined
W_literal = np.linalg.solve(Xs.T @ Xs, Xs @ Ys)
W_right = np.linalg.solve(Xs.T @ Xs, Xs.T @ Ys)
grad_literal = gradient_of_squared_error(Xs, Ys, W_literal)
grad_right = gradient_of_squared_error(Xs, Ys, W_right)
print(f"   X (3, 3): with XY, dL/dW = {grad_literal.ravel().round(4)}; with X^T Y, "
      f"max |dL/dW| = {np.abs(grad_right).max():.1e}")
assert np.allclose(grad_literal, 2 * (Xs @ Ys - Xs.T @ Ys))   # 2 X^T(XW - Y) = 2 (XY - X^T Y)
assert np.abs(grad_literal).max() > 1 and np.abs(grad_right).max() < 1e-12

# ---------------------------------------------------------------------------------------
# 4. Deck 000, the untitled slide on handwritten digits recognition: the log loss for the
#    correct label y reads
#        -log(p_y) = log(sum_j exp(h_j(x) - h_i(x)))
#    with h_i where h_y belongs: i is free (the bullet before uses i for argmax_i h_i(x)).
#    Only i = y gives loopnet's softmax_cross_entropy.
h = np.array([[2.0, 0.5, -1.0]])
y = 1                                      # the true label is not the top score
logits, labels = ln.Input(h, name="h"), ln.Input(np.array([y]), name="label")
loopnet_loss = float(ln.forward(ln.softmax_cross_entropy(logits, labels)))
minus_log_p_y = -math.log(float(ln.forward(ln.softmax(logits))[0, y]))
right_side = [math.log(sum(math.exp(h[0, j] - h[0, i]) for j in range(3))) for i in range(3)]
print(f"4. log loss: loopnet {loopnet_loss:.4f}, -log p_y = {minus_log_p_y:.4f}; "
      f"the slide's right side for i = 0, 1, 2: {[round(r, 4) for r in right_side]}")
assert abs(loopnet_loss - minus_log_p_y) < 1e-12 and abs(right_side[y] - loopnet_loss) < 1e-12
assert abs(right_side[0] - loopnet_loss) > 1.4   # i = argmax = 0: 0.2413 vs 1.7413

# ---------------------------------------------------------------------------------------
# 5. Deck 001, 'Neural representation': the cross-entropy reads
#        l(y, h(x)) = -y log h(x) + (1 - y) log(1 - h(x))
#    The second term needs a minus too. For y = 0 the literal loss is log(1 - h): lowest
#    where h -> 1, the wrong answer, and its gradient pushes h up. loopnet's
#    binary_cross_entropy is -y log h - (1 - y) log(1 - h).
s = ln.Parameter([0.0], name="s")           # a score; h = sigmoid(s)
label = ln.Input([0.0], name="y")
hx = ln.sigmoid(s, name="h")
literal = ln.sum(ln.add(ln.mul(ln.negate(label), ln.log(hx)),
                        ln.mul(ln.sub(1.0, label), ln.log(ln.sub(1.0, hx)))), name="literal")
bce = ln.binary_cross_entropy(hx, label, name="bce")


def loss_at(node, h_value):
    s.value = [math.log(h_value / (1 - h_value))]   # the score that gives h(x) = h_value
    return float(ln.forward(node))


def gradient_descent(node, lr=1.0, n=30):
    s.value = [0.0]
    for _ in range(n):
        ln.forward(node)
        ln.backward(node)
        s.value = s.value - lr * s.grad
    return float(ln.forward(hx)[0])


literal_at = {hv: loss_at(literal, hv) for hv in (0.01, 0.99)}
bce_at = {hv: loss_at(bce, hv) for hv in (0.01, 0.99)}
s.value = [0.0]
ln.forward(literal)
ln.backward(literal)
literal_slope = float(s.grad[0])
ln.forward(bce)
ln.backward(bce)
bce_slope = float(s.grad[0])
h_literal, h_bce = gradient_descent(literal), gradient_descent(bce)
print(f"5. cross-entropy, y = 0: literal loss {literal_at[0.01]:.4f} at h = 0.01, {literal_at[0.99]:.4f} "
      f"at h = 0.99; binary_cross_entropy {bce_at[0.01]:.4f}, {bce_at[0.99]:.4f}")
print(f"   dloss/ds at h = 0.5: literal {literal_slope}, bce {bce_slope}; "
      f"30 descent steps end at h = {h_literal:.4f} (literal) vs {h_bce:.4f} (bce)")
assert literal_at[0.99] < literal_at[0.01] and bce_at[0.01] < bce_at[0.99]
assert abs(literal_at[0.99] - math.log(0.01)) < 1e-9 and abs(bce_at[0.01] + math.log(0.99)) < 1e-9
assert literal_slope == -0.5 and abs(bce_slope - 0.5) < 1e-12   # opposite signs
assert h_literal > 0.95 and h_bce < 0.05

# ---------------------------------------------------------------------------------------
# 6. Deck 001, 'Computing gradients', for h(x) = v^T ReLU(W^T x), l = 1/2 (y - h(x))^2:
#        dl/dv = (y - v^T ReLU(W^T x)) ReLU(W^T x)
#    d/dh 1/2 (y - h)^2 = -(y - h): the slide drops that minus. On the `xor-backprop`
#    target (rows are examples: a = X W, h = ReLU(a) v), summed over the four examples:
root = build_target("xor-backprop")
loss6 = float(ln.forward(root))
nodes = {n.name: n for n in ln.topological_order(root)}
ln.backward(root)
relu_a, h6, y6 = (np.array(nodes[k].value) for k in ("relu_a", "h", "y"))
slide_dv = relu_a.T @ (y6 - h6)                     # the slide's formula, summed over examples
v6 = nodes["v"]
print(f"6. dl/dv on xor-backprop (L = {loss6}): slide {slide_dv.ravel()}, "
      f"loopnet {np.array(v6.grad).ravel()}; gradcheck: {bool(gradcheck(root))}")
assert np.array_equal(slide_dv.ravel(), [1.0, 4.0]) and np.array_equal(v6.grad.ravel(), [-1.0, -4.0])
assert gradcheck(root, wrt=[v6])                    # loopnet's -1, -4 agree with finite differences


def loss_after_step(direction, lr=0.1):
    start = np.array(v6.value)
    v6.value = start - lr * direction
    after = float(ln.forward(root))
    v6.value = start
    return after


up, down = loss_after_step(slide_dv), loss_after_step(np.array(v6.grad))
print(f"   one step v <- v - 0.1 dl/dv: loss 2.5 -> {up:.3f} with the slide's, {down:.3f} with loopnet's")
assert loss6 == 2.5 and abs(up - 4.865) < 1e-9 and abs(down - 1.465) < 1e-9

# ---------------------------------------------------------------------------------------
# 7. Deck 003, 'Scalar vs. Matrix Operations', the higher-order tensor example:
#        for h,i,j,k:  U.value[h,i,j] += A.value[h,i,k] * B.value[h,j,k]
#        for h,i,j:    Y.value[h,i,j] = sigma(U.value[h,i,j])
#    and its backward loops "U.grad += ...", "A.grad += ...", "B.grad += ..." with no index
#    on the left. That is shorthand for U.grad[h,i,j], A.grad[h,i,k], B.grad[h,j,k]; taken
#    literally (in NumPy, `dA += number` adds to every element) each term lands on the
#    whole array. The op below runs either reading; only the indexed one passes gradcheck.
#    (These loops scatter, several grid points writing one element, so they are run here
#    on the python backend, one point after another.)


def sigma(u):
    return 1 / (1 + math.exp(-u))


def tensor_u_forward(h, i, j, k, A, B, U):
    U[h, i, j] += A[h, i, k] * B[h, j, k]


def tensor_y_forward(h, i, j, U, Y):
    Y[h, i, j] = sigma(U[h, i, j])


def u_grad_indexed(h, i, j, U, dY, dU):
    dU[h, i, j] += dY[h, i, j] * sigma(U[h, i, j]) * (1 - sigma(U[h, i, j]))


def a_grad_indexed(h, i, j, k, B, dU, dA):
    dA[h, i, k] += dU[h, i, j] * B[h, j, k]


def b_grad_indexed(h, i, j, k, A, dU, dB):
    dB[h, j, k] += dU[h, i, j] * A[h, i, k]


def u_grad_as_written(h, i, j, U, dY, dU):
    dU += dY[h, i, j] * sigma(U[h, i, j]) * (1 - sigma(U[h, i, j]))   # U.grad += ...


def a_grad_as_written(h, i, j, k, B, dU, dA):
    dA += dU[h, i, j] * B[h, j, k]                                     # A.grad += ...


def b_grad_as_written(h, i, j, k, A, dU, dB):
    dB += dU[h, i, j] * A[h, i, k]                                     # B.grad += ...


class TensorLayer(Op):
    """Y[h,i,j] = sigma(sum_k A[h,i,k] B[h,j,k]), deck 003's loops; `bodies` are its backward."""

    name = "tensor_layer"
    inputs = ("A", "B")

    def __init__(self, bodies):
        self.bodies = bodies

    def shape(self, A, B):
        return (A.shape[0], A.shape[1], B.shape[1])

    def forward(self, out, A, B):
        self.U = scratch(out.shape, out.dtype)   # kept for backward: sigma'(U.value[h,i,j])
        loop(tensor_u_forward, out.shape + (A.shape[2],), A.value, B.value, self.U)
        loop(tensor_y_forward, out.shape, self.U, out.value)

    def backward(self, out, A, B):
        u_grad, a_grad, b_grad = self.bodies
        dU = scratch(out.shape, out.dtype)
        loop(u_grad, out.shape, self.U, out.grad, dU)
        loop(a_grad, out.shape + (A.shape[2],), B.value, dU, A.grad)
        loop(b_grad, out.shape + (A.shape[2],), A.value, dU, B.grad)


with ln.use("python"):
    tensor_rng = np.random.default_rng(1)
    A_init, B_init = tensor_rng.standard_normal((2, 2, 3)), tensor_rng.standard_normal((2, 2, 3))
    reports = {}
    for reading, bodies in (("as written", (u_grad_as_written, a_grad_as_written, b_grad_as_written)),
                            ("indexed", (u_grad_indexed, a_grad_indexed, b_grad_indexed))):
        A, B = ln.Parameter(A_init, name="A"), ln.Parameter(B_init, name="B")
        reports[reading] = gradcheck(TensorLayer(bodies).apply((A, B)))
as_written, indexed = reports["as written"], reports["indexed"]
first = as_written.failures[0]
print(f"7. deck 003's tensor loops, gradcheck of {as_written.checked} elements: as written "
      f"{len(as_written.failures)} failures (e.g. {first.input}{first.index}: finite difference "
      f"{first.numeric:.4f}, backward {first.analytic:.4f}); indexed: {bool(indexed)}, "
      f"max error {indexed.max_abs_error:.1e}")
assert indexed and indexed.checked == 24
assert not as_written and {m.check for m in as_written.failures} == {"finite difference"}
assert len(as_written.failures) == 24   # every element of A and B is wrong

# ---------------------------------------------------------------------------------------
# 8. Deck 000, the untitled slide "Recall the backpropagation rule":
#        For i in Layer[t]->inputs:  i->delta = Layer[t]->delta * Layer[t]->derivative(...)
#    An assignment: right for the deck's chains, where each input feeds one layer (the rule
#    it recalls sits on a figure whose graph the text does not keep), so this one is less a
#    slip than a rule with a limit. Where a node feeds two layers, each layer's backward must add its term
#    (grad +=, tutorial 2); an assignment keeps only the term of whichever layer's backward
#    runs last. Two unary layers on one x, each with its backward written either way.
#    Backward runs in reverse order of building, so the sigmoid layer (built first) runs
#    last, and with "=" it wipes out the square layer's term.


def unary_layer(name, f, df, assign):
    class Layer(Elementwise):
        def forward_body(i, x, y):
            y[i] = f(x[i])

        if assign:
            def grad_x_body(i, x, y, dy, dx):
                dx[i] = dy[i] * df(x[i])       # i->delta = delta * derivative
        else:
            def grad_x_body(i, x, y, dy, dx):
                dx[i] += dy[i] * df(x[i])      # i.grad += delta * derivative

    Layer.name = name
    return lambda node: Layer().apply((node,))


def fan_out(assign):
    sigmoid_layer = unary_layer("sigmoid_layer", sigma, lambda t: sigma(t) * (1 - sigma(t)), assign)
    square_layer = unary_layer("square_layer", lambda t: t * t, lambda t: 2 * t, assign)
    x = ln.Parameter([0.5, -1.0], name="x")
    f = ln.add(ln.sum(sigmoid_layer(x)), ln.sum(square_layer(x)), name="f")   # x feeds both
    ln.forward(f)
    ln.backward(f)
    return x, f


xv = np.array([0.5, -1.0])
sigmoid_term = np.array([sigma(t) * (1 - sigma(t)) for t in xv])   # 0.2350, 0.1966
square_term = 2 * xv                                                # 1, -2
with ln.use("python"):   # the layers' bodies call f and df, Python functions: python backend
    x_set, f_set = fan_out(assign=True)
    x_add, f_add = fan_out(assign=False)
    set_report, add_report = gradcheck(f_set), gradcheck(f_add)
print(f"8. fan-out, df/dx should be {(sigmoid_term + square_term).round(4)}: with '=' "
      f"{np.array(x_set.grad).round(4)} (gradcheck {bool(set_report)}, "
      f"{len(set_report.failures)} failures); with '+=' {np.array(x_add.grad).round(4)} "
      f"(gradcheck {bool(add_report)})")
assert np.allclose(x_add.grad, sigmoid_term + square_term) and add_report
assert not set_report and len(set_report.failures) == 2
assert np.allclose(x_set.grad, sigmoid_term)   # the sigmoid layer's term alone: 2x is lost
