"""Graphs to trace: built-in examples after the decks' constructions (their numbers are
loopnet's own, except xor's and xor-backprop's, which are deck 001's), or a function in a
user's file.

A target is a function that takes no arguments and returns the loss node. Built-ins
are listed in TARGETS; `load_target("path/to/file.py:build")` loads a user's. A name in a
user's file may also be a node the file builds as it runs (`tutorial.py:loss`).
"""

import ast
import contextlib
import importlib.util
import os
import re
import sys

import numpy as np

import loopnet as ln
from loopnet.errors import LoopnetError, did_you_mean


class TargetError(LoopnetError, ValueError):
    """A trace target that cannot be found, imported or built."""


def least_squares():
    """1-D least squares: loss = (w x + b - y)^2 with x=2, y=3, w=1, b=0.5.

    By hand: r = w x + b - y = -0.5, loss = 0.25, dloss/dr = 2r = -1,
    so dloss/db = -1 and dloss/dw = -1 * x = -2.
    """
    x, y = ln.Input(2.0, name="x"), ln.Input(3.0, name="y")
    w, b = ln.Parameter(1.0, name="w"), ln.Parameter(0.5, name="b")
    u = ln.mul(w, x, name="u")
    prediction = ln.add(u, b, name="prediction")
    residual = ln.sub(prediction, y, name="residual")
    return ln.square(residual, name="loss")


def fan_out():
    """Fan-out: x feeds two ops, so its gradient is the sum of two paths.

    f = w x + x^2 at x=2, w=3: df/dx = w + 2x = 3 + 4 = 7 (one term from each consumer).
    """
    x, w = ln.Parameter(2.0, name="x"), ln.Parameter(3.0, name="w")
    u = ln.mul(w, x, name="u")
    v = ln.square(x, name="v")
    return ln.add(u, v, name="f")


def xor():
    """XOR by deck 001's hand-set weights ('Logic gates: A motivating example'): h = relu(X W + c), out = h v + b.

    W = [[1,1],[1,1]], c = [0,-1], v = [1,-2], b = 0 gives exactly 0, 1, 1, 0, so the
    squared-error loss and every gradient are 0.
    """
    X = ln.Input([[0, 0], [0, 1], [1, 0], [1, 1]], name="X")
    targets = ln.Input([[0], [1], [1], [0]], name="targets")
    W = ln.Parameter([[1, 1], [1, 1]], name="W")
    c = ln.Parameter([0, -1], name="c")
    v = ln.Parameter([[1], [-2]], name="v")
    b = ln.Parameter([0], name="b")
    hidden = ln.relu(ln.affine(X, W, c, name="hidden_in"), name="hidden")
    out = ln.affine(hidden, v, b, name="out")
    return ln.mse_loss(out, targets, name="loss")


def xor_backprop():
    """Deck 001's bias-free XOR network off a solution: gradients to check by hand.

    Deck 001, 'Computing gradients', drops the biases of its XOR network and derives the
    gradients of h(x) = v^T ReLU(W^T x) under L = sum_i 1/2 (y_i - h(x_i))^2. With rows as
    examples, a = X W, h = ReLU(a) v. From W = [[2, 1], [-1, 1]], v = [1, -1]:

        a = [[0,0], [-1,1], [2,1], [1,2]]     h = [0, -1, 1, -1]     y = [0, 1, 1, 0]
        y - h = [0, 2, 0, 1]                  L = (4 + 1) / 2 = 2.5
        dL/dh = -(y - h) = [0, -2, 0, -1]
        dL/dv = ReLU(a)^T dL/dh = [-1, -4]
        dL/da = (dL/dh v^T) * ReLU'(a) = [[0,0], [0,2], [0,0], [-1,1]]
        dL/dW = X^T dL/da = [[-1, 1], [-1, 3]]

    (The slide writes dl/dv = (y - v^T ReLU(W^T x)) ReLU(W^T x) without the minus that
    differentiating -(y - h) brings; the numbers here carry it.)
    """
    X = ln.Input([[0, 0], [0, 1], [1, 0], [1, 1]], name="X")
    y = ln.Input([[0], [1], [1], [0]], name="y")
    W = ln.Parameter([[2, 1], [-1, 1]], name="W")
    v = ln.Parameter([[1], [-1]], name="v")
    a = ln.matmul(X, W, name="a")
    h = ln.matmul(ln.relu(a, name="relu_a"), v, name="h")
    residual = ln.sub(y, h, name="y_minus_h")
    total = ln.sum(ln.square(residual, name="squared"), name="total")
    return ln.mul(ln.Input(0.5, name="half"), total, name="loss")


def logistic():
    """Logistic regression on 8 points in 2-D (two seeded blobs), labels -1 and +1."""
    rng = np.random.default_rng(0)
    points = np.vstack([rng.normal(-1.0, 0.7, (4, 2)), rng.normal(1.0, 0.7, (4, 2))])
    labels = np.array([[-1.0]] * 4 + [[1.0]] * 4)
    X, y = ln.Input(points, name="X"), ln.Input(labels, name="y")
    w = ln.Parameter([[0.5], [-0.25]], name="w")
    b = ln.Parameter([0.1], name="b")
    scores = ln.affine(X, w, b, name="scores")
    return ln.logistic_loss(scores, y, name="loss")


def mlp():
    """A small MLP classifier: 4 examples, 3 features -> 5 ReLU units -> 3 classes."""
    rng = np.random.default_rng(0)
    X = ln.Input(rng.normal(size=(4, 3)), name="X")
    labels = ln.Input(np.array([0, 2, 1, 2]), name="labels")
    W1 = ln.Parameter(rng.uniform(-1, 1, (3, 5)) / np.sqrt(3), name="W1")
    b1 = ln.Parameter(np.zeros(5), name="b1")
    W2 = ln.Parameter(rng.uniform(-1, 1, (5, 3)) / np.sqrt(5), name="W2")
    b2 = ln.Parameter(np.zeros(3), name="b2")
    hidden = ln.relu(ln.affine(X, W1, b1, name="hidden_in"), name="hidden")
    logits = ln.affine(hidden, W2, b2, name="logits")
    return ln.softmax_cross_entropy(logits, labels, name="loss")


def rnn():
    """An RNN unrolled over 4 steps: h_t = tanh(x_t U + h_{t-1} V + b), shared U, V, b
    (deck 001 writes h_t = sigma(U x_t + V h_{t-1}): column vectors, no bias).

    Every step uses the same U and V, so their gradients add up over the time steps.
    """
    rng = np.random.default_rng(0)
    U = ln.Parameter(rng.uniform(-1, 1, (2, 3)) / np.sqrt(2), name="U")
    V = ln.Parameter(rng.uniform(-1, 1, (3, 3)) / np.sqrt(3), name="V")
    b = ln.Parameter(np.zeros(3), name="b")
    h = ln.Input(np.zeros((1, 3)), name="h0")
    for t in range(1, 5):
        x_t = ln.Input(rng.normal(size=(1, 2)), name=f"x{t}")
        h = ln.tanh(ln.add(ln.affine(x_t, U, b, name=f"in{t}"), ln.matmul(h, V, name=f"rec{t}"), name=f"pre{t}"),
                    name=f"h{t}")
    return ln.mse_loss(h, ln.Input([[0.5, -0.5, 0.0]], name="target"), name="loss")


def attention():
    """Attention over token + position vectors, then a classifier (one sequence of 4 tokens).

    Deck 001 averages word vectors plus position vectors, (1/T) sum_i alpha_i (v_i + p_i),
    with alpha_i a "dynamic score" it does not specify. Here alpha = softmax(X q) for a
    learned q, and there is no 1/T, since the softmax weights already sum to 1."""
    rng = np.random.default_rng(0)
    ids = ln.Input(np.array([[2, 0, 3, 1]]), name="tokens")
    positions = ln.Input(np.array([[0, 1, 2, 3]]), name="positions")
    E = ln.Parameter(rng.normal(0, 0.5, (5, 3)), name="E")
    P = ln.Parameter(rng.normal(0, 0.5, (4, 3)), name="P")
    q = ln.Parameter(rng.normal(0, 0.5, (3, 1)), name="q")
    W, b = ln.Parameter(rng.normal(0, 0.5, (3, 2)), name="W"), ln.Parameter(np.zeros(2), name="b")
    X = ln.add(ln.embedding(ids, E, name="tok_emb"), ln.embedding(positions, P, name="pos_emb"), name="X")
    scores = ln.reshape(ln.matmul(ln.reshape(X, (-1, 3)), q), (1, 4), name="scores")
    weights = ln.softmax(scores, name="weights")
    context = ln.reshape(ln.bmm(ln.reshape(weights, (1, 1, 4)), X), (1, 3), name="context")
    logits = ln.affine(context, W, b, name="logits")
    return ln.softmax_cross_entropy(logits, ln.Input(np.array([1]), name="label"), name="loss")


TARGETS = {
    "least-squares": least_squares,
    "fan-out": fan_out,
    "xor": xor,
    "xor-backprop": xor_backprop,
    "logistic": logistic,
    "mlp": mlp,
    "rnn": rnn,
    "attention": attention,
}


@contextlib.contextmanager
def _user_code():
    """While a user's file runs, its prints go to stderr: stdout carries trace's output,
    which `--format json` promises is one JSON object."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _split(spec):
    """'dir/file.py:func' -> ('dir/file.py', 'func'); the function defaults to build."""
    path, sep, func = spec.rpartition(":")
    if sep and path.endswith(".py") and func.isidentifier():
        return path, func
    return spec, "build"


def _defines(path, name):
    """False only when nothing in the file could bind `name`: no def, class, import,
    assigned, looped or matched name is spelled so, no string holds it as a word (exec and
    globals() bind names from strings), and no `from m import *` or module __getattr__
    could supply it. True when the file cannot be read or parsed: importing it says why.
    Read before importing: a tutorial script with no `build` would otherwise run, all of
    it, before trace said so."""
    try:
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read())
    except Exception:  # noqa: BLE001 - unreadable, or too deep to parse: the import reports it
        return True
    word = re.compile(rf"\b{re.escape(name)}\b")
    for node in ast.walk(tree):  # (anywhere, not only at the top: a def under `if` counts too)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and word.search(node.value):
            return True
        if isinstance(node, ast.alias) and (node.name == "*" or (node.asname or node.name.split(".")[0]) == name):
            return True
        spelled = [getattr(node, field, None) for field in ("id", "arg", "rest", "name")]  # (arg: keywords too)
        if name in spelled or spelled[-1] == "__getattr__":
            return True
    return False


def load_target(spec):
    """The builder function for a built-in name or `path.py[:func]`."""
    if spec in TARGETS:
        return TARGETS[spec]
    path, func_name = _split(spec)
    if not path.endswith(".py"):
        raise TargetError(f"unknown target {spec!r}{did_you_mean(spec, TARGETS)}; built-in targets: "
                          f"{', '.join(TARGETS)}; or give path/to/file.py[:NAME]")
    if not os.path.isfile(path):
        raise TargetError(f"no such file: {path}")
    if not _defines(path, func_name):
        raise TargetError(f"{path} has no function {func_name!r} (read without running it: nothing in it "
                          f"defines {func_name}); name a function, or a node the file builds, with path.py:NAME")
    module_name = f"loopnet_user_{abs(hash(os.path.abspath(path)))}"
    spec_obj = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec_obj)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # so the file's own imports work
    try:
        with _user_code():
            spec_obj.loader.exec_module(module)
    except SyntaxError as err:
        raise TargetError(f"{path} does not import: SyntaxError at line {err.lineno}: {err.msg}") from None
    except SystemExit as err:
        raise TargetError(f"{path} exited while it was imported (sys.exit({err.code!r})): nothing to trace") from None
    except Exception as err:  # noqa: BLE001 - any failure of user code is reported, not raised
        raise TargetError(f"{path} does not import: {type(err).__name__}: {err}") from None
    finally:
        sys.path.pop(0)
    builder = getattr(module, func_name, None)
    if builder is None:
        raise TargetError(f"{path} has no function {func_name!r}")
    if isinstance(builder, ln.Node):  # a node the file built as it ran (a tutorial's loss): trace that graph
        node = builder
        builder = lambda: node  # noqa: E731
        builder.__name__ = func_name
    if not callable(builder):
        raise TargetError(f"{func_name!r} in {path} is a {type(builder).__name__}, not a function or a node")
    return builder


def build_target(spec):
    """Build the target's graph in a fresh naming scope; return its output node. A user's
    file is imported in the same scope, so what it builds as it runs is named from 1 and
    what build() makes after it gets the next numbers: no two nodes share a name."""
    with ln.fresh_names():
        builder = load_target(spec)
        try:
            with _user_code():
                node = builder()
        except LoopnetError:
            raise
        except SystemExit as err:
            raise TargetError(f"{builder.__name__}() of {spec} exited (sys.exit({err.code!r})) instead of "
                              f"returning the loss node") from None
        except Exception as err:  # noqa: BLE001
            raise TargetError(f"{builder.__name__}() of {spec} raised {type(err).__name__}: {err}") from None
    if not isinstance(node, ln.Node):
        raise TargetError(f"{builder.__name__}() of {spec} returned {type(node).__name__}, not a loopnet node")
    return node
