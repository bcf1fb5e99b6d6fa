"""One Hypothesis strategy per registered op: valid inputs, kept away from its kinks.

`SAMPLES[name](dtype)` draws a node made by op `name` from fresh Parameters (and label
Inputs where the op takes labels). The test suite walks `loopnet.OPS` and looks each op
up here, so an op added without a sample fails the suite instead of going unchecked;
the same samples drive `cli.py gradcheck` and the backend-equality tests.
"""

import numpy as np
from hypothesis import assume, strategies as st
from hypothesis.extra import numpy as hnp

import loopnet as ln
from loopnet.testing.strategies import arrays, labels, positive_arrays, shapes, signs, sizes


def _param(draw, shape, dtype, name, **options):
    return ln.Parameter(draw(arrays(shape, dtype, **options)), name=name)


def _unary(op, **array_options):
    @st.composite
    def sample(draw, dtype=np.float64):
        return op(_param(draw, shapes(), dtype, "x", **array_options))
    return sample


def _binary(op, **b_options):
    """Two operands of one shape; or b broadcast against a (a trailing part of a's shape,
    some sizes 1); or b a Python number (a constant). b_options keep b off a kink (a
    divisor off 0), so b stays the second operand wherever they are given."""
    @st.composite
    def sample(draw, dtype=np.float64):
        shape = draw(shapes())
        a = _param(draw, shape, dtype, "a")
        form = draw(st.sampled_from(["same", "broadcast", "number"]))
        if form == "number":
            return op(a, float(draw(arrays((), dtype, **b_options))))
        if form == "broadcast":
            tail = shape[draw(st.integers(0, len(shape) - 1)):]
            b = _param(draw, tuple(1 if draw(st.booleans()) else n for n in tail), dtype, "b", **b_options)
            return op(b, a) if not b_options and draw(st.booleans()) else op(a, b)
        return op(a, _param(draw, shape, dtype, "b", **b_options))
    return sample


@st.composite
def _matmul(draw, dtype=np.float64):
    n, k, m = draw(sizes()), draw(sizes()), draw(sizes())
    return ln.matmul(_param(draw, (n, k), dtype, "A"), _param(draw, (k, m), dtype, "B"))


@st.composite
def _affine(draw, dtype=np.float64):
    n, d, m = draw(sizes()), draw(sizes()), draw(sizes())
    return ln.affine(_param(draw, (n, d), dtype, "x"), _param(draw, (d, m), dtype, "W"), _param(draw, (m,), dtype, "b"))


@st.composite
def _log(draw, dtype=np.float64):
    return ln.log(ln.Parameter(draw(positive_arrays(draw(shapes()), dtype)), name="x"))


@st.composite
def _leaky_relu(draw, dtype=np.float64):
    alpha = draw(st.floats(0.0, 0.5))
    return ln.leaky_relu(_param(draw, shapes(), dtype, "x", avoid=(0.0,)), alpha=alpha)


@st.composite
def _reshape(draw, dtype=np.float64):
    shape = draw(shapes())
    x = _param(draw, shape, dtype, "x")
    target = draw(st.sampled_from([shape[::-1], (-1,), (1, -1)]))
    return ln.reshape(x, target)


@st.composite
def _mse_loss(draw, dtype=np.float64):
    shape = draw(shapes())
    return ln.mse_loss(_param(draw, shape, dtype, "a"), _param(draw, shape, dtype, "b"))


def _signed_loss(op, **s_options):
    @st.composite
    def sample(draw, dtype=np.float64):
        shape = draw(shapes())
        return op(_param(draw, shape, dtype, "s", **s_options), ln.Input(draw(signs(shape)).astype(dtype), name="y"))
    return sample


@st.composite
def _binary_cross_entropy(draw, dtype=np.float64):
    shape = draw(shapes())
    p = _param(draw, shape, dtype, "p", min_value=0.05, max_value=0.95)
    y = ln.Input(draw(arrays(shape, dtype, 0.0, 1.0)), name="y")
    return ln.binary_cross_entropy(p, y)


@st.composite
def _softmax_cross_entropy(draw, dtype=np.float64):
    n, k = draw(sizes()), draw(sizes())
    return ln.softmax_cross_entropy(_param(draw, (n, k), dtype, "logits"), ln.Input(draw(labels(n, k)), name="labels"))


@st.composite
def _conv2d(draw, dtype=np.float64):
    n, c, co = draw(sizes(1, 2)), draw(sizes(1, 2)), draw(sizes(1, 2))
    h, w = draw(sizes(1, 5)), draw(sizes(1, 5))
    kh, kw = draw(sizes(1, h)), draw(sizes(1, w))
    padding = draw(st.sampled_from([0, 0, 1, (1, 0), (0, 2)]))
    stride = draw(st.sampled_from([1, 1, 2, (1, 2), (3, 1)]))  # stride 1 has loops of its own
    return ln.conv2d(_param(draw, (n, c, h, w), dtype, "x"), _param(draw, (co, c, kh, kw), dtype, "W"),
                     _param(draw, (co,), dtype, "b"), stride=stride, padding=padding)


@st.composite
def _conv1d(draw, dtype=np.float64):
    n, c, co, length = draw(sizes(1, 2)), draw(sizes(1, 2)), draw(sizes(1, 2)), draw(sizes(1, 6))
    k = draw(sizes(1, length))
    return ln.conv1d(_param(draw, (n, c, length), dtype, "x"), _param(draw, (co, c, k), dtype, "W"),
                     _param(draw, (co,), dtype, "b"))


@st.composite
def _pad2d(draw, dtype=np.float64):
    shape = (draw(sizes(1, 2)), draw(sizes(1, 2)), draw(sizes(1, 4)), draw(sizes(1, 4)))
    return ln.pad2d(_param(draw, shape, dtype, "x"), (draw(st.integers(0, 2)), draw(st.integers(0, 2))))


@st.composite
def distinct_images(draw, dtype=np.float64, max_side=5):
    """(N, C, H, W) arrays whose elements all differ by >= 0.1: max pooling has no ties,
    so a finite-difference step never changes which element is the max."""
    shape = (draw(sizes(1, 2)), draw(sizes(1, 2)), draw(sizes(1, max_side)), draw(sizes(1, max_side)))
    size = int(np.prod(shape))
    order = draw(st.permutations(range(size)))
    return (np.array(order, dtype=np.float64).reshape(shape) * 0.1 - 0.05 * size).astype(dtype)


def _pool(op):
    """Deck 000's k x k windows side by side, or a window of any shape with its own
    stride (overlapping windows too) and padding up to half the window."""
    @st.composite
    def sample(draw, dtype=np.float64):
        x = ln.Parameter(draw(distinct_images(dtype)), name="x")
        if draw(st.booleans()):
            return op(x, draw(sizes(1, min(x.shape[2], x.shape[3], 3))))
        kh, kw = draw(sizes(1, 3)), draw(sizes(1, 3))
        ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
        assume(kh <= x.shape[2] + 2 * ph and kw <= x.shape[3] + 2 * pw)
        return op(x, (kh, kw), stride=(draw(sizes(1, 3)), draw(sizes(1, 3))), padding=(ph, pw))
    return sample


@st.composite
def _im2col(draw, dtype=np.float64):
    x = _param(draw, (draw(sizes(1, 2)), draw(sizes(1, 2)), draw(sizes(1, 4)), draw(sizes(1, 4))), dtype, "x")
    return ln.im2col(x, draw(sizes(1, x.shape[2])), draw(sizes(1, x.shape[3])))


@st.composite
def _dropout(draw, dtype=np.float64):
    p = draw(st.sampled_from([0.0, 0.25, 0.5]))
    return ln.dropout(_param(draw, shapes(), dtype, "x"), p=p, seed=draw(st.integers(0, 99)), fixed_mask=True)


@st.composite
def _bmm(draw, dtype=np.float64):
    h, i, k, j = (draw(sizes(1, 3)) for _ in range(4))
    transpose_b = draw(st.booleans())
    B_shape = (h, j, k) if transpose_b else (h, k, j)
    return ln.bmm(_param(draw, (h, i, k), dtype, "A"), _param(draw, B_shape, dtype, "B"), transpose_b=transpose_b)


@st.composite
def _maxout(draw, dtype=np.float64):
    n, d, m, k = draw(sizes(1, 3)), draw(sizes(1, 3)), draw(sizes(1, 3)), draw(sizes(1, 3))
    x, W, b = _param(draw, (n, d), dtype, "x"), _param(draw, (k, d, m), dtype, "W"), _param(draw, (k, m), dtype, "b")
    # the winning piece must win by a margin, so a finite-difference step never changes it
    scores = np.sort(np.einsum("nd,pdm->npm", x.value, W.value) + b.value[None], axis=1)
    assume(k == 1 or np.all(scores[:, -1] - scores[:, -2] > 0.05))
    return ln.maxout(x, W, b)


@st.composite
def _embedding(draw, dtype=np.float64):
    V, D = draw(sizes(1, 4)), draw(sizes(1, 3))
    ids_shape = draw(shapes(1, 2, 1, 4))
    ids = ln.Input(draw(hnp.arrays(np.int64, ids_shape, elements=st.integers(0, V - 1))), name="ids")
    return ln.embedding(ids, _param(draw, (V, D), dtype, "E"))


@st.composite
def _layer_norm(draw, dtype=np.float64):
    shape = draw(shapes(1, 3, 2, 4))  # rows of at least 2: a single element has zero variance
    K = shape[-1]
    return ln.layer_norm(_param(draw, shape, dtype, "x"), _param(draw, (K,), dtype, "gamma"), _param(draw, (K,), dtype, "beta"))


@st.composite
def _matvec(draw, dtype=np.float64):
    m, n = draw(sizes()), draw(sizes())
    return ln.matvec(_param(draw, (m, n), dtype, "A"), _param(draw, (n,), dtype, "x"))


@st.composite
def _batch_norm(draw, dtype=np.float64):
    """(N, C), (N, C, L) or (N, C, H, W); in training mode (batch statistics, N * positions
    >= 2), or in evaluation mode with drawn running statistics (variances away from 0)."""
    shape = draw(shapes(2, 4, 1, 3).filter(lambda s: int(np.prod(s)) // s[1] >= 2))
    C = shape[1]
    out = ln.batch_norm(_param(draw, shape, dtype, "x"), _param(draw, (C,), dtype, "gamma"),
                        _param(draw, (C,), dtype, "beta"))
    if draw(st.booleans()):
        out.op.training = False
        out.op.running_mean = draw(arrays((C,), dtype))
        out.op.running_var = draw(positive_arrays((C,), dtype))
    return out


@st.composite
def _transpose(draw, dtype=np.float64):
    return ln.transpose(_param(draw, (draw(sizes()), draw(sizes())), dtype, "x"))


@st.composite
def _permute(draw, dtype=np.float64):
    shape = draw(shapes(1, 4))
    axes = draw(st.permutations(range(len(shape))))
    return ln.permute(_param(draw, shape, dtype, "x"), axes)


@st.composite
def _broadcast_to(draw, dtype=np.float64):
    shape = draw(shapes(1, 3))
    target = tuple(draw(sizes(1, 3)) if n == 1 else n for n in shape)  # grow the axes of length 1
    lead = tuple(draw(st.lists(sizes(1, 3), max_size=2)))  # and add new leading axes
    return ln.broadcast_to(_param(draw, shape, dtype, "x"), lead + target)


@st.composite
def _sqrt(draw, dtype=np.float64):
    return ln.sqrt(ln.Parameter(draw(positive_arrays(draw(shapes()), dtype)), name="x"))


@st.composite
def _maximum(draw, dtype=np.float64):
    shape = draw(shapes())
    a = draw(arrays(shape, dtype))
    gap = draw(arrays(shape, dtype, min_value=-1.0, max_value=1.0, avoid=(0.0,), margin=0.1))  # no ties: a kink
    return ln.maximum(ln.Parameter(a, name="a"), ln.Parameter((a + gap).astype(dtype), name="b"))


@st.composite
def _pow(draw, dtype=np.float64):
    shape = draw(shapes())
    base = ln.Parameter(draw(positive_arrays(shape, dtype)), name="x")
    if draw(st.booleans()):
        return ln.pow(base, draw(st.sampled_from([2.0, 3.0, 0.5, -1.0, 1.5, 0.0])))
    return ln.pow(base, _param(draw, shape, dtype, "p", min_value=-2.0, max_value=2.0))


def _axis_form(op, distinct=False):
    """op over every element, or along one axis or two, with keepdims either way."""
    @st.composite
    def sample(draw, dtype=np.float64):
        shape = draw(shapes())
        if distinct:  # no ties, so a finite-difference step never moves the max
            order = draw(st.permutations(range(int(np.prod(shape)))))
            x = ln.Parameter((np.array(order, np.float64).reshape(shape) * 0.1).astype(dtype), name="x")
        else:
            x = _param(draw, shape, dtype, "x")
        rank = len(shape)
        axis = draw(st.one_of(st.none(), st.integers(-rank, rank - 1),
                              st.lists(st.integers(0, rank - 1), min_size=1, max_size=2, unique=True).map(tuple)))
        return op(x, axis=axis, keepdims=draw(st.booleans()))
    return sample


def _along_axis(op):
    @st.composite
    def sample(draw, dtype=np.float64):
        shape = draw(shapes())
        return op(_param(draw, shape, dtype, "x"), axis=draw(st.integers(-len(shape), len(shape) - 1)))
    return sample


SAMPLES = {
    "add": _binary(ln.add),
    "sub": _binary(ln.sub),
    "mul": _binary(ln.mul),
    "div": _binary(ln.div, avoid=(0.0,), margin=0.5),  # divisors away from 0
    "maximum": _maximum,
    "negate": _unary(ln.negate),
    "pow": _pow,
    "sqrt": _sqrt,
    "reciprocal": _unary(ln.reciprocal, avoid=(0.0,), margin=0.5),
    "matmul": _matmul,
    "affine": _affine,
    "matvec": _matvec,
    "sum": _axis_form(ln.sum),
    "mean": _axis_form(ln.mean),
    "max": _axis_form(ln.max, distinct=True),
    "logsumexp": _axis_form(ln.logsumexp),
    "square": _unary(ln.square),
    "exp": _unary(ln.exp),
    "log": _log,
    "abs": _unary(ln.abs, avoid=(0.0,)),
    "sigmoid": _unary(ln.sigmoid),
    "tanh": _unary(ln.tanh),
    "relu": _unary(ln.relu, avoid=(0.0,)),
    "leaky_relu": _leaky_relu,
    "softmax": _along_axis(ln.softmax),
    "log_softmax": _along_axis(ln.log_softmax),
    "reshape": _reshape,
    "flatten": _unary(ln.flatten),
    "transpose": _transpose,
    "permute": _permute,
    "broadcast_to": _broadcast_to,
    "mse_loss": _mse_loss,
    "softmax_cross_entropy": _softmax_cross_entropy,
    "binary_cross_entropy": _binary_cross_entropy,
    "logistic_loss": _signed_loss(ln.logistic_loss),
    "hinge_loss": _signed_loss(ln.hinge_loss, avoid=(-1.0, 1.0)),  # y s = 1 is the kink
    "conv2d": _conv2d,
    "conv1d": _conv1d,
    "pad2d": _pad2d,
    "max_pool2d": _pool(ln.max_pool2d),
    "avg_pool2d": _pool(ln.avg_pool2d),
    "im2col": _im2col,
    "dropout": _dropout,
    "bmm": _bmm,
    "maxout": _maxout,
    "embedding": _embedding,
    "layer_norm": _layer_norm,
    "batch_norm": _batch_norm,
}
