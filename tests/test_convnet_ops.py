"""conv2d, pooling and im2col: references, deck 000's conv = im2col + affine, ties, errors."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import loopnet as ln
from loopnet.errors import ShapeError
from loopnet.testing.strategies import arrays, sizes


def conv_reference(x, W, b):
    N, C, H, Wd = x.shape
    Co, _, kh, kw = W.shape
    out = np.zeros((N, Co, H - kh + 1, Wd - kw + 1))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + out.shape[2], j:j + out.shape[3]]
            out += np.einsum("nchw,oc->nohw", patch, W[:, :, i, j])
    return out + b[None, :, None, None]


@st.composite
def conv_case(draw):
    n, c, co = draw(sizes(1, 2)), draw(sizes(1, 3)), draw(sizes(1, 3))
    h, w = draw(sizes(1, 6)), draw(sizes(1, 6))
    kh, kw = draw(sizes(1, h)), draw(sizes(1, w))
    return (draw(arrays((n, c, h, w))), draw(arrays((co, c, kh, kw))), draw(arrays((co,))))


@given(conv_case())
def test_conv2d_matches_the_slide_formula_in_numpy(case):
    # deck 000's convolution layer: O[c',h',w'] = b + sum_{c,h,w} W^(c')[c,h,w] X[c,h+h',w+w']
    x, W, b = case
    out = ln.forward(ln.conv2d(ln.Input(x), ln.Input(W), ln.Input(b)))
    np.testing.assert_allclose(out, conv_reference(x, W, b), rtol=1e-12, atol=1e-12)


@given(conv_case(), st.data())
def test_conv_equals_im2col_then_affine_in_values_and_grads(case, data):
    x0, W0, b0 = case
    Co, C, kh, kw = W0.shape
    # the convolution
    x, W, b = ln.Parameter(x0, name="x"), ln.Parameter(W0, name="W"), ln.Parameter(b0, name="b")
    conv = ln.conv2d(x, W, b)
    # the same layer as patches times a shared weight matrix
    x2, b2 = ln.Parameter(x0, name="x2"), ln.Parameter(b0, name="b2")
    W2 = ln.Parameter(W0.reshape(Co, C * kh * kw).T, name="W2")
    rows = ln.affine(ln.im2col(x2, kh, kw), W2, b2)  # (N H' W', C')

    as_rows = lambda a: a.transpose(0, 2, 3, 1).reshape(-1, Co)  # (N, C', H', W') -> rows
    np.testing.assert_allclose(as_rows(ln.forward(conv)), ln.forward(rows), rtol=1e-12, atol=1e-12)

    upstream = data.draw(arrays(conv.shape))
    ln.backward(conv, grad=upstream)
    ln.backward(rows, grad=as_rows(upstream))
    np.testing.assert_allclose(x.grad, x2.grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(W.grad.reshape(Co, -1).T, W2.grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad, b2.grad, rtol=1e-12, atol=1e-12)


@given(arrays((2, 3, 7, 5)), st.integers(1, 3))
def test_pools_match_numpy_and_drop_the_remainder(values, k):
    N, C, H, W = values.shape
    Ho, Wo = H // k, W // k
    windows = values[:, :, :Ho * k, :Wo * k].reshape(N, C, Ho, k, Wo, k)
    np.testing.assert_allclose(ln.forward(ln.max_pool2d(ln.Input(values), k)), windows.max(axis=(3, 5)))
    np.testing.assert_allclose(ln.forward(ln.avg_pool2d(ln.Input(values), k)), windows.mean(axis=(3, 5)), rtol=1e-12)
    x = ln.Parameter(values)
    pooled = ln.avg_pool2d(x, k)
    ln.forward(pooled)
    ln.backward(pooled)
    assert np.all(x.grad[:, :, Ho * k:, :] == 0) and np.all(x.grad[:, :, :, Wo * k:] == 0)


def test_max_pool_ties_give_the_gradient_to_the_first_maximum():
    x = ln.Parameter(np.array([[[[1.0, 3.0], [3.0, 3.0]]]]))
    pooled = ln.max_pool2d(x, 2)
    ln.forward(pooled)
    ln.backward(pooled)
    assert x.grad[0, 0].tolist() == [[0.0, 1.0], [0.0, 0.0]]


@pytest.mark.parametrize("build,message", [
    (lambda: ln.conv2d(ln.Input(np.zeros((1, 2, 4, 4))), ln.Input(np.zeros((3, 1, 2, 2))), ln.Input(np.zeros(3))),
     "x has 2 channels but W expects 1"),
    (lambda: ln.conv2d(ln.Input(np.zeros((1, 1, 2, 2))), ln.Input(np.zeros((1, 1, 3, 3))), ln.Input(np.zeros(1))),
     "a 3x3 kernel does not fit a 2x2 image"),
    (lambda: ln.conv2d(ln.Input(np.zeros((1, 1, 4, 4))), ln.Input(np.zeros((2, 1, 2, 2))), ln.Input(np.zeros(3))),
     "b has 3 entries but W makes 2 channels"),
    (lambda: ln.conv2d(ln.Input(np.zeros((4, 4))), ln.Input(np.zeros((2, 1, 2, 2))), ln.Input(np.zeros(2))),
     r"needs x \(N, C, H, W\)"),
    (lambda: ln.max_pool2d(ln.Input(np.zeros((1, 1, 2, 2))), 3), "a 3x3 window does not fit a 2x2 image"),
    (lambda: ln.avg_pool2d(ln.Input(np.zeros((2, 2))), 2), r"needs x \(N, C, H, W\)"),
    (lambda: ln.im2col(ln.Input(np.zeros((1, 1, 2, 2))), 3, 1), "a 3x1 patch does not fit"),
])
def test_convnet_shape_errors(build, message):
    with pytest.raises(ShapeError, match=message):
        build()


def _pool_reference(values, window, stride, padding, reduce):
    """Every window read from a padded copy (NaN marks the padding), reduced by `reduce`."""
    (kh, kw), (sh, sw), (ph, pw) = window, stride, padding
    padded = np.pad(values, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=np.nan)
    rows, cols = (padded.shape[2] - kh) // sh + 1, (padded.shape[3] - kw) // sw + 1
    out = np.empty(values.shape[:2] + (rows, cols))
    for p in range(rows):
        for q in range(cols):
            out[:, :, p, q] = reduce(padded[:, :, sh * p:sh * p + kh, sw * q:sw * q + kw])
    return out


@pytest.mark.parametrize("backend", ["python", "numba", "cuda"])
@pytest.mark.parametrize("window, stride, padding", [((3, 3), (2, 2), (1, 1)), ((2, 3), (1, 2), (0, 1)), ((3, 2), (1, 1), (1, 0))])
def test_pools_with_strides_and_padding_match_a_numpy_reference(backend, window, stride, padding):
    values = np.random.default_rng(3).normal(size=(2, 2, 5, 6))
    with ln.use(backend):
        x = ln.Parameter(values, name="x")
        got_max = ln.forward(ln.max_pool2d(x, window, stride=stride, padding=padding))
        got_avg = ln.forward(ln.avg_pool2d(x, window, stride=stride, padding=padding))
        loss = ln.sum(ln.max_pool2d(x, window, stride=stride, padding=padding))
        ln.forward(loss)
        ln.backward(loss)
        counts = np.array(x.grad)
    np.testing.assert_allclose(got_max, _pool_reference(values, window, stride, padding,
                                                        lambda w: np.nanmax(w, axis=(2, 3))), rtol=1e-12)
    kh, kw = window
    np.testing.assert_allclose(got_avg, _pool_reference(values, window, stride, padding,
                                                        lambda w: np.nansum(w, axis=(2, 3)) / (kh * kw)), rtol=1e-12)
    # each element's gradient counts the overlapping windows whose max it is
    assert counts.sum() == got_max.size and set(np.unique(counts)) <= set(range(kh * kw + 1))


@pytest.mark.parametrize("build, message", [
    (lambda: ln.max_pool2d(ln.Input(np.zeros((1, 1, 4, 4))), 0), r"max_pool2d: window 0 must be a whole number >= 1"),
    (lambda: ln.max_pool2d(ln.Input(np.zeros((1, 1, 4, 4))), 2, stride=0), r"stride 0 must be a whole number >= 1"),
    (lambda: ln.avg_pool2d(ln.Input(np.zeros((1, 1, 4, 4))), 2, padding=-1), r"padding -1 must be a whole number >= 0"),
    (lambda: ln.avg_pool2d(ln.Input(np.zeros((1, 1, 4, 4))), 2, padding=2), r"padding 2 must be at most half the window"),
    (lambda: ln.max_pool2d(ln.Input(np.zeros((1, 1, 4, 4))), (2, 2, 2)), r"window \(2, 2, 2\) must be a whole number >= 1 or a pair"),
    (lambda: ln.max_pool2d(ln.Input(np.zeros((1, 1, 4, 4))), 1.5), r"window 1.5 must be a whole number or a pair of them"),
    (lambda: ln.max_pool2d(ln.Input(np.zeros((1, 1, 2, 4))), 2, padding=(1, 0)) and
     ln.max_pool2d(ln.Input(np.zeros((1, 1, 1, 4))), (4, 1), padding=(1, 0)), r"a 4x1 window does not fit a 3x4 image \(padding included\)"),
])
def test_pool_settings_are_checked(build, message):
    with pytest.raises(ln.errors.LoopnetError, match=message):
        build()


@pytest.mark.parametrize("backend", ["python", "numba", "cuda"])
def test_conv1d_is_conv2d_over_one_row(backend):
    rng = np.random.default_rng(4)
    values, weights, bias = rng.normal(size=(2, 3, 7)), rng.normal(size=(4, 3, 3)), rng.normal(size=4)
    upstream = rng.normal(size=(2, 4, 5))
    got, want = {}, {}
    with ln.use(backend):
        for store, build, shape in ((got, ln.conv1d, lambda a: a), (want, ln.conv2d, lambda a: a[:, :, None, :])):
            x, W, b = (ln.Parameter(shape(values), name="x"), ln.Parameter(shape(weights), name="W"),
                       ln.Parameter(bias, name="b"))
            out = build(x, W, b)
            store["value"] = np.array(ln.forward(out)).reshape(2, 4, 5)
            ln.backward(out, grad=shape(upstream))
            store.update(x=x.grad.reshape(values.shape), W=W.grad.reshape(weights.shape), b=np.array(b.grad))
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("build, message", [
    (lambda: ln.conv1d(P((2, 3)), P((1, 3, 1)), P((1,))), r"conv1d: needs x \(N, C, L\), W \(C', C, k\) and b \(C',\)"),
    (lambda: ln.conv1d(P((1, 2, 5)), P((1, 3, 2)), P((1,))), r"x has 2 channels but W expects 3"),
    (lambda: ln.conv1d(P((1, 2, 5)), P((1, 2, 2)), P((2,))), r"b has 2 entries but W makes 1 channels"),
    (lambda: ln.conv1d(P((1, 2, 3)), P((1, 2, 4)), P((1,))), r"a kernel of 4 does not fit a sequence of 3"),
])
def test_conv1d_shape_errors(build, message):
    with pytest.raises(ShapeError, match=message):
        build()


def P(shape):
    return ln.Parameter(np.zeros(shape))


def test_deck_001s_padded_example_gives_114_first():
    # deck 001, 'Convolutional Neural Networks': a 5x5 image padded by one, the 3x3 kernel
    # below; the first output is 5 * 60 - 113 - 73 = 114 (the padding adds nothing)
    image = np.array([[60, 113, 56, 139, 85], [73, 121, 54, 84, 128], [131, 99, 70, 129, 127],
                      [80, 57, 115, 69, 134], [104, 126, 123, 95, 130]], dtype=np.float64)
    kernel = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)
    x = ln.Input(image[None, None], name="image")
    out = ln.conv2d(x, ln.Parameter(kernel[None, None], name="kernel"), ln.Parameter(np.zeros(1), name="b"), padding=1)
    values = ln.forward(out)
    assert values.shape == (1, 1, 5, 5) and values[0, 0, 0, 0] == 114
    assert out.inputs[0].op_name == "pad2d"


@pytest.mark.parametrize("backend", ["python", "numba"])  # cuda: the strided test's padded case
def test_padded_conv2d_matches_a_numpy_reference(backend):
    rng = np.random.default_rng(5)
    values, weights = rng.normal(size=(2, 2, 4, 5)), rng.normal(size=(3, 2, 3, 2))
    padded = np.pad(values, ((0, 0), (0, 0), (1, 1), (2, 2)))
    expected = np.einsum("nchwij,ocij->nohw", np.lib.stride_tricks.sliding_window_view(padded, (3, 2), axis=(2, 3)), weights)
    with ln.use(backend):
        x = ln.Parameter(values, name="x")
        out = ln.conv2d(x, ln.Parameter(weights, name="W"), ln.Parameter(np.zeros(3), name="b"), padding=(1, 2))
        got = ln.forward(out)
        loss = ln.sum(out)
        ln.forward(loss)
        ln.backward(loss)
        grad = np.array(x.grad)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # every input element's gradient: the sum of the weights that touched it (none from the border)
    ones, full = np.ones_like(expected), np.zeros_like(padded)
    for i in range(3):
        for j in range(2):
            full[:, :, i:i + 4, j:j + 8] += np.einsum("nohw,oc->nchw", ones, weights[:, :, i, j])
    np.testing.assert_allclose(grad, full[:, :, 1:-1, 2:-2], rtol=1e-12)


def test_pad2d_settings_are_checked():
    x = ln.Input(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ln.errors.SettingError, match=r"pad2d: padding -1 must be a whole number >= 0"):
        ln.pad2d(x, -1)
    with pytest.raises(ln.errors.SettingError, match=r"pad2d: padding 0.5 must be a whole number or a pair"):
        ln.pad2d(x, 0.5)
    with pytest.raises(ShapeError, match=r"pad2d: needs x \(N, C, H, W\)"):
        ln.pad2d(ln.Input(np.zeros((2, 2))), 1)


def strided_conv_reference(x, W, b, stride, padding, upstream):
    """conv2d's value and its gradients (x, W, b) for the upstream gradient, by NumPy slicing:
    the windows of the padded x every sh-th row and sw-th column, and each kernel tap (i, j)
    adding its share of dO back onto the rows i, i+sh, ... and columns j, j+sw, ..."""
    (sh, sw), (ph, pw), (kh, kw) = stride, padding, W.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    value = np.einsum("nchwij,ocij->nohw", windows, W) + b[None, :, None, None]
    Ho, Wo = value.shape[2:]
    dpadded = np.zeros_like(padded)
    for i in range(kh):
        for j in range(kw):
            dpadded[:, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw] += np.einsum("nohw,oc->nchw", upstream, W[:, :, i, j])
    dx = dpadded[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    return value, dx, np.einsum("nohw,nchwij->ocij", upstream, windows), upstream.sum(axis=(0, 2, 3))


STRIDED_CASES = [
    (2, 0, (3, 3)),  # windows overlap by one row and column
    ((2, 3), (1, 2), (3, 2)),  # non-square stride, padded: a column of x between the windows
    ((3, 1), 1, (2, 3)),  # a stride past the kernel: rows no window reads get no gradient
    (1, 0, (2, 2)),  # stride 1 passed explicitly: the stride-1 loops
]


# The simulator takes the one case that has everything (the tiles are held to the strided
# loops case by case in test_cuda_backend.py): it is slow.
@pytest.mark.parametrize("backend, stride, padding, kernel", [
    (backend, *case) for case in STRIDED_CASES for backend in ("python", "numba")] + [("cuda", *STRIDED_CASES[1])])
def test_strided_conv2d_matches_a_numpy_reference(backend, stride, padding, kernel):
    rng = np.random.default_rng(6)
    # small: the simulator runs a thread per output of each tile
    values, weights, bias = rng.normal(size=(2, 2, 5, 6)), rng.normal(size=(2, 2, *kernel)), rng.normal(size=2)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    with ln.use(backend):
        x, W, b = ln.Parameter(values, name="x"), ln.Parameter(weights, name="W"), ln.Parameter(bias, name="b")
        out = ln.conv2d(x, W, b, stride=stride, padding=padding)
        got = np.array(ln.forward(out))
        upstream = rng.normal(size=out.shape)
        ln.backward(out, grad=upstream)
        grads = np.array(x.grad), np.array(W.grad), np.array(b.grad)
    value, *expected = strided_conv_reference(values, weights, bias, pair(stride), pair(padding), upstream)
    assert out.shape == value.shape
    np.testing.assert_allclose(got, value, rtol=1e-12, atol=1e-12)
    for grad, want in zip(grads, expected):
        np.testing.assert_allclose(grad, want, rtol=1e-12, atol=1e-12)


def test_conv2d_output_size_follows_pytorchs_formula():
    x = ln.Input(np.zeros((1, 1, 7, 8)))
    W, b = ln.Input(np.zeros((1, 1, 3, 2))), ln.Input(np.zeros(1))
    assert ln.conv2d(x, W, b, stride=2).shape == (1, 1, 3, 4)  # (7 - 3) // 2 + 1, (8 - 2) // 2 + 1
    assert ln.conv2d(x, W, b, stride=(3, 4), padding=(1, 0)).shape == (1, 1, 3, 2)  # (9 - 3) // 3 + 1, (8 - 2) // 4 + 1
    assert ln.conv2d(x, W, b, stride=(1, 1)).shape == ln.conv2d(x, W, b).shape == (1, 1, 5, 7)


@pytest.mark.parametrize("stride, message", [
    (0, r"conv2d: stride 0 must be a whole number >= 1 or a pair of them"),
    (-2, r"conv2d: stride -2 must be a whole number >= 1"),
    ((1, 0), r"conv2d: stride \(1, 0\) must be a whole number >= 1"),
    (1.5, r"conv2d: stride 1.5 must be a whole number or a pair of them"),
    ("2", r"conv2d: stride '2' must be a whole number or a pair of them"),
    ((2, 2, 2), r"conv2d: stride \(2, 2, 2\) must be a whole number >= 1 or a pair of them"),
])
def test_a_bad_stride_is_one_clear_line(stride, message):
    x, W, b = ln.Input(np.zeros((1, 1, 4, 4))), ln.Input(np.zeros((1, 1, 2, 2))), ln.Input(np.zeros(1))
    with pytest.raises(ln.errors.SettingError, match=message) as refused:
        ln.conv2d(x, W, b, stride=stride, padding=1)
    assert "\n" not in str(refused.value)


def test_a_kernel_larger_than_the_padded_image_leaves_no_output():
    x, W, b = ln.Input(np.zeros((1, 1, 2, 3))), ln.Input(np.zeros((1, 1, 5, 3))), ln.Input(np.zeros(1))
    with pytest.raises(ShapeError, match=r"conv2d: a 5x3 kernel does not fit a 4x5 image \(padding included\)"):
        ln.conv2d(x, W, b, stride=2, padding=1)
    with pytest.raises(ShapeError, match=r"conv2d: a 5x3 kernel does not fit a 2x3 image \(got"):
        ln.conv2d(x, W, b, stride=(1, 3))


@pytest.mark.parametrize("stride, padding", [(2, 0), ((2, 3), (1, 2)), ((3, 1), 1)])
def test_strided_conv2d_equals_pytorchs(stride, padding):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    values, weights, bias = rng.normal(size=(2, 3, 9, 8)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    x, W, b = ln.Parameter(values, name="x"), ln.Parameter(weights, name="W"), ln.Parameter(bias, name="b")
    out = ln.conv2d(x, W, b, stride=stride, padding=padding)
    upstream = rng.normal(size=out.shape)
    with ln.use("numba"):
        got = np.array(ln.forward(out))
        ln.backward(out, grad=upstream)
    tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (values, weights, bias))
    theirs = torch.nn.functional.conv2d(tx, tW, tb, stride=stride, padding=padding)
    theirs.backward(torch.from_numpy(upstream))
    for mine, want in ((got, theirs), (x.grad, tx.grad), (W.grad, tW.grad), (b.grad, tb.grad)):
        np.testing.assert_allclose(mine, want.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_conv2d_benchmark_rows_give_time_per_output_against_stride_1():
    from loopnet.tools import bench

    rows = []
    bench.bench_conv2d(rows, None, repeats=1, batch=2, channels=(2, 3), side=6)
    assert [name.split()[-2:] for name, *_ in rows] == [["s1", "p0"], ["s1", "p1"], ["s2", "p0"], ["s2", "p1"]]
    assert rows[0][4].endswith("1.00x s1 p0's") and all("ns per output" in row[4] for row in rows)
