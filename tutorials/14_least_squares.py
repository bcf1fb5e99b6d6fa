"""Tutorial 14: least squares in closed form, and SGD, momentum and Adam finding the same W*.

Deck 004, 'The basics': linear regression f_W(X) = X W with the loss ||X W - Y||^2. Its
gradient 2 X^T (X W - Y) is zero where X^T X W* = X^T Y, so W* = (X^T X)^-1 X^T Y; with
ridge, + lambda ||W||_F^2, W*_lambda = (X^T X + lambda I)^-1 X^T Y. (The slide's middle
line, "X^T X W* - XY = 0", has XY where X^T Y belongs; docs/slides.md records the slip.)
Below, loopnet's backward finds that gradient zero at W* and nowhere else; then SGD,
momentum (deck 004, 'Improved Optimization: Momentum') and Adam (named in its 'Deep
Learners are fancy:' list) walk to the same W*, and one badly scaled column of X shows why
plain SGD slows down as the condition number of X^T X grows.
Run: `python tutorials/14_least_squares.py`.
"""

import os
import tempfile

import numpy as np

import loopnet as ln
from loopnet import optim

# 1. A small regression problem: n = 100 examples, d = 4 features, Y = X W_true + noise.
rng = np.random.default_rng(0)
n, d = 100, 4
X = rng.normal(size=(n, d))
W_true = np.array([[1.0], [-2.0], [0.5], [3.0]])
Y = X @ W_true + 0.1 * rng.normal(size=(n, 1))

# The normal equations X^T X W* = X^T Y, solved (never invert a matrix to solve a system).
W_star = np.linalg.solve(X.T @ X, X.T @ Y)
lam = 10.0
W_ridge = np.linalg.solve(X.T @ X + lam * np.eye(d), X.T @ Y)
print("W_true      ", W_true.ravel())
print("W*          ", np.round(W_star.ravel(), 4), f"  ||W* - W_true|| = {np.linalg.norm(W_star - W_true):.4f}")
print("W*_lambda=10", np.round(W_ridge.ravel(), 4), f"  ||W*_lambda|| = {np.linalg.norm(W_ridge):.4f}"
      f" < ||W*|| = {np.linalg.norm(W_star):.4f}")
assert np.linalg.norm(W_star - W_true) < 0.05  # the noise is small: W* is close to W_true
assert np.linalg.norm(W_ridge) < np.linalg.norm(W_star)  # the penalty shrinks W


# 2. The gradient of the slide's loss, by loopnet's backward, built from its ops.
def gradient(X, Y, W0, lam=0.0):
    """d/dW of ||X W - Y||^2 + lam ||W||^2 at W = W0, by loopnet's backward loops."""
    with ln.use("python"):
        x, y, W = ln.Input(X, name="X"), ln.Input(Y, name="Y"), ln.Parameter(W0, name="W")
        loss = ln.sum(ln.square(ln.sub(ln.matmul(x, W), y)))
        if lam:  # the slide's penalty, lam ||W||^2: its gradient is 2 lam W (not optim's lam/2)
            loss = ln.add(loss, ln.mul(lam, ln.sum(ln.square(W))))
        ln.forward(loss)
        ln.backward(loss)
        return W.grad.copy()


at_star = np.linalg.norm(gradient(X, Y, W_star))
grad_true = gradient(X, Y, W_true)
at_zero = np.linalg.norm(gradient(X, Y, np.zeros((d, 1))))
print(f"||grad|| at W*: {at_star:.1e}   at W_true: {np.linalg.norm(grad_true):.3f}   at 0: {at_zero:.1f}")
assert at_star < 1e-10 and np.linalg.norm(grad_true) > 1.0 and at_zero > 1.0  # zero at W*, not elsewhere
assert np.allclose(grad_true, 2 * X.T @ (X @ W_true - Y))  # the loops compute 2 X^T (X W - Y)

ridge_at_ridge = np.linalg.norm(gradient(X, Y, W_ridge, lam))
ridge_at_star = gradient(X, Y, W_star, lam)
print(f"ridge, lambda = {lam:g}: ||grad|| at W*_lambda: {ridge_at_ridge:.1e}"
      f"   at W*: {np.linalg.norm(ridge_at_star):.3f} (= ||2 lambda W*||)")
assert ridge_at_ridge < 1e-10
assert np.allclose(ridge_at_star, 2 * lam * W_star)  # at W* only the penalty's gradient is left


# 3. The optimizers, on loopnet Parameters. The loss is loopnet's mse_loss, the mean
# (1/n) ||X W - Y||^2: the same minimum W*, and a curvature that does not grow with n.
# Its Hessian is H = 2 X^T X / n; plain gradient descent is stable for lr < 2 / lambda_max(H).
# Every step here uses all n examples: 'sgd' is then gradient descent, the slide's update
# W <- W - alpha grad without the sampling, whose noise would blur the comparison. Momentum is
# loopnet's descent form, v <- mu v - lr g, W <- W + v (loopnet/optim.py on the slide's sign).
# The python backend: the shapes are tiny, and it starts at once.
def fit(X, Y, name, lr, steps):
    """Full-batch steps of optimizer `name` from W = 0: the distance to W* and the loss, per step."""
    target = np.linalg.solve(X.T @ X, X.T @ Y)
    with ln.use("python"):
        x, y, W = ln.Input(X, name="X"), ln.Input(Y, name="Y"), ln.Parameter(np.zeros((d, 1)), name="W")
        loss = ln.mse_loss(ln.matmul(x, W), y)
        opt = optim.make_optimizer(name, [W], lr, momentum=0.9)
        distances, losses = [], []
        for _ in range(steps):
            losses.append(float(ln.forward(loss)))
            ln.backward(loss)
            opt.step()
            distances.append(float(np.linalg.norm(W.value - target)))
    return np.array(distances), np.array(losses)


def settings(X):
    """Each optimizer's learning rate for data X: SGD's best constant one, 2 / (lambda_max +
    lambda_min) of H, just under the stability limit 2 / lambda_max; momentum 0.9 with
    lr = 1 / lambda_max; Adam's lr is a step length in W's units, the same for any X."""
    low, high = np.linalg.eigvalsh(2 * X.T @ X / n)[[0, -1]]
    return {"sgd": 2 / (high + low), "momentum": 1 / high, "adam": 0.05}


STEPS = 300


def first_below(distances, tol=1e-3):
    """The first step after which ||W - W*|| < tol, or None."""
    below = np.flatnonzero(distances < tol)
    return int(below[0]) + 1 if below.size else None


runs = {}
print(f"\nwell scaled X, {STEPS} full-batch steps from W = 0:")
for name, lr in settings(X).items():
    runs["good", name] = fit(X, Y, name, lr, STEPS)
    dist = runs["good", name][0]
    print(f"  {name:<8} lr {lr:.4f}: ||W - W*|| = {dist[-1]:.1e}, below 1e-3 after {first_below(dist)} steps")
    assert dist[-1] < 1e-5  # each one reaches the closed form

# loopnet's weight_decay adds wd * W to the gradient (the gradient of wd/2 ||W||^2). For the
# mean loss plus the slide's penalty, (1/n)(||XW - Y||^2 + lambda ||W||^2), that is wd = 2 lambda / n.
with ln.use("python"):
    x, y, W = ln.Input(X, name="X"), ln.Input(Y, name="Y"), ln.Parameter(np.zeros((d, 1)), name="W")
    loss = ln.mse_loss(ln.matmul(x, W), y)
    opt = optim.make_optimizer("sgd", [W], settings(X)["sgd"], weight_decay=2 * lam / n)
    for _ in range(100):
        ln.forward(loss)
        ln.backward(loss)
        opt.step()
    print(f"  sgd with weight_decay = 2 lambda / n = {2 * lam / n:g}: ||W - W*_lambda|| ="
          f" {np.linalg.norm(W.value - W_ridge):.1e}")
    assert np.linalg.norm(W.value - W_ridge) < 1e-8

# 4. Conditioning: the same data with the last feature in other units, 10 times larger.
# The fit is the same (the last weight is 10 times smaller), but X^T X's condition number grows
# by about 100, and gradient descent's rate on its slowest direction is (kappa - 1) / (kappa + 1).
X_bad = X * np.array([1.0, 1.0, 1.0, 10.0])
cond_good, cond_bad = np.linalg.cond(X.T @ X), np.linalg.cond(X_bad.T @ X_bad)
print(f"\ncondition number of X^T X: well scaled {cond_good:.2f}, last column x10 {cond_bad:.1f}")
assert cond_bad > 50 * cond_good

print(f"last column x10, {STEPS} full-batch steps from W = 0 (sgd goes on to 1000, to count its steps):")
for name, lr in settings(X_bad).items():
    runs["bad", name] = fit(X_bad, Y, name, lr, 1000 if name == "sgd" else STEPS)
    dist = runs["bad", name][0]
    print(f"  {name:<8} lr {lr:.5f}: ||W - W*|| = {dist[STEPS - 1]:.1e}, below 1e-3 after {first_below(dist)} steps")

needed = {key: first_below(dist) for key, (dist, _) in runs.items()}
# SGD: about 100 times the steps, as kappa grew about 100 times; still far from W* after 300.
assert needed["bad", "sgd"] > 50 * needed["good", "sgd"]
assert runs["bad", "sgd"][0][STEPS - 1] > 1e-2
# Its last steps contract ||W - W*|| by exactly (kappa - 1) / (kappa + 1), kappa of H (= of X^T X).
rate = (cond_bad - 1) / (cond_bad + 1)
tail = runs["bad", "sgd"][0][-1] / runs["bad", "sgd"][0][-2]
print(f"  sgd's last step: ||W - W*|| x {tail:.6f}; (kappa - 1) / (kappa + 1) = {rate:.6f}")
assert abs(tail - rate) < 1e-5
# Momentum and Adam cope: no more steps than on the well-scaled data. Momentum 0.9 spirals in,
# shrinking the error by about sqrt(0.9) = 0.95 a step, wherever (1 - sqrt(0.9))^2 = 0.0026 <=
# lr * eigenvalue of H <= (1 + sqrt(0.9))^2 = 3.8: here lr * eigenvalue runs from 1/kappa to 1,
# on both data sets, so it needs about as many steps on each (and more than SGD on the easy
# one). Adam divides each coordinate's step by the size of that coordinate's gradient, which
# about undoes the column's x10 (the columns are nearly orthogonal: X^T X is nearly diagonal).
for name in ("momentum", "adam"):
    assert runs["bad", name][0][STEPS - 1] < 1e-5
    assert needed["bad", name] < 1.5 * needed["good", name]
assert needed["good", "sgd"] < min(needed["good", "momentum"], needed["good", "adam"])  # on easy data SGD wins

# 5. A figure, if matplotlib is there: the loss above its minimum, on a log scale.
try:
    import matplotlib
except ImportError:
    print("\nmatplotlib is not installed: no figure (pip install matplotlib to draw the loss curves)")
else:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (data, inputs, title) in zip(axes, [("good", X, "well scaled X"), ("bad", X_bad, "last column x10")]):
        best = np.mean((inputs @ np.linalg.solve(inputs.T @ inputs, inputs.T @ Y) - Y) ** 2)
        for name in ("sgd", "momentum", "adam"):
            losses = runs[data, name][1]
            ax.semilogy(np.arange(1, len(losses) + 1), np.maximum(losses - best, 1e-16), label=name)
        ax.set_title(f"{title}: cond(X^T X) = {np.linalg.cond(inputs.T @ inputs):.1f}")
        ax.set_xlabel("step")
    axes[0].set_ylabel("loss - loss(W*)")
    axes[0].legend()
    path = os.path.join(tempfile.gettempdir(), "least_squares_curves.png")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"\nloss curves: {path}")
