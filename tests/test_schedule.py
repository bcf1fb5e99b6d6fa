"""Declared schedules: the tiled Numba drivers (contractions, and the transpose's tiles)
equal the body, and visit every grid point once."""

import importlib
import inspect

import numpy as np
import pytest
from hypothesis import given, strategies as st

import loopnet as ln
from loopnet.backends import numba_backend, python_backend
from loopnet.loops import transpose_body
from loopnet.ops.layout import transpose_forward, transpose_grad_x
from loopnet.schedule import ScheduleError, Tiles, contraction, grid_of, parse, tiles

OP_MODULES = [importlib.import_module(f"loopnet.ops.{name}") for name in ("affine", "matmul", "conv", "conv_strided", "bmm")]
SCHEDULED = [f for module in OP_MODULES  # each body once, from the module that defines it
             for _, f in inspect.getmembers(module, inspect.isfunction)
             if hasattr(f, "contraction") and f.__module__ == module.__name__]
PLAIN = [f for f in SCHEDULED if f.contraction.plain]

def test_the_contraction_loops_are_declared():
    assert {f.__name__ for f in PLAIN} == {
        "matmul_forward", "matmul_grad_A", "matmul_grad_B", "affine_forward", "affine_grad_x", "affine_grad_W"}
    assert {f.__name__ for f in SCHEDULED} - {f.__name__ for f in PLAIN} == {
        "conv2d_forward", "conv2d_grad_W", "conv2d_grad_x", "conv2d_strided_forward", "conv2d_strided_grad_W",
        "conv2d_strided_grad_x", "bmm_forward", "bmm_grad_A", "bmm_grad_BT", "bmm_grad_B"}


def arrays_for(body, extents, dtype, rng):
    """The body's grid and random arrays for it: an axis indexed by h+i is e(h)+e(i)-1
    long (a convolution's input), one indexed by h-i is e(h)-e(i)+1 (its output); scaled,
    h*s+i is (e(h)-1)*s+e(i), and divided, (h-i)/s is (e(h)-e(i))//s+1. A scalar argument
    (a stride s) takes its value from `extents` too, and a scratch `row` (the strided conv
    loops') is one row per grid point, as long as the longest extent."""
    spec = body.contraction

    def length(expression):
        top, divisor = 0, 1
        for (op, name), (after, scale) in zip(expression, expression[1:] + (("", ""),)):
            if op in "+-":
                top += (extents[name] - 1) * (extents[scale] if after == "*" else 1) * (1 if op == "+" else -1)
            divisor = extents[name] if op == "/" else divisor
        return top // divisor + 1

    shapes = {spec.out: tuple(extents[n] for n in spec.out_index),
              spec.a: tuple(length(e) for e in spec.a_index), spec.b: tuple(length(e) for e in spec.b_index)}
    if spec.init:
        shapes[spec.init] = tuple(extents[n] for n in spec.init_index)
    grid = grid_of(body)
    names = list(inspect.signature(body).parameters)[len(grid):]
    cells = tuple(extents[n] for n in grid)
    scratch = np.zeros(cells + (max(extents.values()),), dtype)
    return cells, [rng.standard_normal(shapes[name]).astype(dtype) if name in shapes
                   else scratch if name == "row" else extents[name] for name in names]


def depth(body, extents):
    return int(np.prod([extents[n] for n in body.contraction.summed]))


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("body", PLAIN, ids=lambda f: f.__name__)
@given(gi=st.integers(1, 11), gj=st.integers(1, 11), K=st.integers(1, 9), seed=st.integers(0, 99))
def test_scheduled_driver_equals_the_body(body, dtype, parallel, gi, gj, K, seed):
    rng = np.random.default_rng(seed)
    spec = body.contraction
    _, args = arrays_for(body, {spec.out_index[0]: gi, spec.out_index[1]: gj, spec.summed[0]: K}, dtype, rng)
    want = [a.copy() for a in args]
    python_backend.loop(body, (gi, gj), want)
    numba_backend.check_available()
    numba_backend._load_driver(body, 2, parallel)(gi, gj, *args)
    out = list(inspect.signature(body).parameters)[2:].index(body.contraction.out)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    scale = max(1.0, float(np.abs(want[out]).max()))
    np.testing.assert_allclose(args[out], want[out], rtol=0, atol=tolerance * scale * K)


def test_large_layers_agree_end_to_end():
    rng = np.random.default_rng(0)
    x = ln.Parameter(rng.normal(size=(13, 9)), name="x")
    W, b = ln.Parameter(rng.normal(size=(9, 10)), name="W"), ln.Parameter(rng.normal(size=10), name="b")
    loss = ln.sum(ln.square(ln.affine(x, W, b)))
    from loopnet.testing.backends import assert_backends_agree

    assert_backends_agree(loss, "numba")


@pytest.mark.parametrize("spec,message", [
    ("C[i,j] = A[i,k] * B[j,k]", "cannot read the contraction"),
    ("C[i,j] = sum_k A[i,k] B[j,k]", "cannot read the contraction"),
    ("C[i+1,j] = sum_k A[i,k] * B[j,k]", "plain names"),
    ("C[i,i] = sum_k A[i,k] * B[i,k]", "distinct names"),
    ("C[i,j] = sum_{k,i} A[i,k] * B[j,k]", "distinct names"),
    ("C[i,j] = sum_k A[i,q] * B[j,k]", "unknown: \\['q'\\]"),
    ("C[i,j] = b[m] + sum_k A[i,k] * B[j,k]", "unknown: \\['m'\\]"),
    ("C[i,j] = sum_k A[i,k] * B[i,k]", "unused: \\['j'\\]"),
    ("C[i,j] = sum_k A[i,-k] * B[j,k]", "cannot read the index '-k'"),
    ("C[i,j] = sum_k A[i,k+i+j] * B[j,k]", "cannot read the index"),
    ("C[i,j] = sum_k A[i,k+i] * B[j,k+j]", "must index an axis of A or B alone"),
    ("C[i,j] = sum_k A[i,k*] * B[j,k]", "cannot read the index 'k\\*'"),
    ("C[i,j] = sum_k A[i,k*s*t] * B[j,k]", "cannot read the index"),
    ("C[i,j] = sum_k A[i,s*k] * B[j,k]", "unknown: \\['s'\\]"),  # the scale comes after the name
    ("C[i,j] = sum_k A[i,(k)/] * B[j,k]", "cannot read the index"),
    ("C[i,j] = sum_k A[i,(k)/s/t] * B[j,k]", "cannot read the index"),
    ("C[i,j] = sum_k A[i,k/s] * B[j,k]", "cannot read the index"),  # a division needs its parentheses
    ("C[i,j] = sum_k A[i,(k+i+j)/s] * B[j,k]", "cannot read the index"),
    ("C[i,j] = sum_k A[i,k*j] * B[j,k]", "a scale or divisor must be a scalar argument .* not an index or an array: \\['j'\\]"),
    ("C[i,j] = sum_k A[i,(k-i)/k] * B[j,k]", "not an index or an array: \\['k'\\]"),
    ("C[i*s,j] = sum_k A[i,k] * B[j,k]", "plain names"),
    ("C[i,j] = sum_k A[i,k*B] * B[j,k]", "not an index or an array: \\['B'\\]"),
])
def test_malformed_declarations_are_refused(spec, message):
    with pytest.raises(ScheduleError, match=message):
        contraction(spec)


def test_a_declaration_reads_as_a_batched_matrix_product():
    conv = parse("dX[n,c,h,w] += sum_{co,i,j} dO[n,co,h-i,w-j] * W[co,c,i,j]")
    assert (conv.batch, conv.rows, conv.cols, conv.summed) == ((), ("n", "h", "w"), ("c",), ("co", "i", "j"))
    assert conv.accumulate and not conv.plain and conv.extent("co") == ("dO", 1) and conv.extent("h") == ("dX", 2)
    assert conv.a_index[2] == (("+", "h"), ("-", "i"))
    bmm = parse("U[h,i,j] = sum_k A[h,i,k] * BT[h,j,k]")
    assert (bmm.batch, bmm.rows, bmm.cols) == (("h",), ("i",), ("j",)) and not bmm.plain
    # a transposed operand or a bias along rows is a valid contraction, just not the plain one
    assert not parse("C[i,j] = sum_k A[k,i] * B[j,k]").plain
    assert not parse("C[i,j] = b[i] + sum_k A[i,k] * B[j,k]").plain
    assert parse("Y[n,m] = b[m] + sum_d X[n,d] * WT[m,d]").plain


def test_an_index_may_be_scaled_or_divided_by_a_scalar_argument():
    forward = parse("O[n,co,h,w] = b[co] + sum_{c,i,j} X[n,c, h*sh + i, w * sw+j] * W[co,c,i,j]")
    assert forward.a_index[2:] == ((("+", "h"), ("*", "sh"), ("+", "i")), (("+", "w"), ("*", "sw"), ("+", "j")))
    assert forward.scalars == ("sh", "sw") and forward.rows == ("n", "h", "w") and forward.extent("i") == ("W", 2)
    grad_x = parse("dX[n,c,h,w] += sum_{co,i,j} dO[n,co,( h-i )/sh,(w - j*dw)/sw] * W[co,c,i,j]")
    assert grad_x.a_index[2:] == ((("+", "h"), ("-", "i"), ("/", "sh")),
                                  (("+", "w"), ("-", "j"), ("*", "dw"), ("/", "sw")))
    assert grad_x.scalars == ("dw", "sh", "sw") and grad_x.rows == ("n", "h", "w") and grad_x.extent("co") == ("dO", 1)
    assert parse("C[i,j] = sum_k A[i,k] * B[j,k]").scalars == ()

    def body(i, j, A, B, C, s):
        pass

    assert contraction("C[i,j] = sum_k A[i,k] * B[(j)/s,k*s]")(body).contraction.scalars == ("s",)
    with pytest.raises(ScheduleError, match="has no argument 't'"):
        contraction("C[i,j] = sum_k A[i,k*t] * B[j,k]")(body)


def test_the_cuda_tiles_test_a_divided_index_for_its_remainder():
    from loopnet.backends import cuda_backend
    from loopnet.ops.conv_strided import conv2d_strided_forward, conv2d_strided_grad_x

    source = cuda_backend.contraction_source(conv2d_strided_grad_x, 2)  # arguments W, dO, dX, row, sh, sw: a0..a5
    assert "(r_h - k_i) % a4 == 0 and 0 <= (r_h - k_i) // a4 < a1.shape[2]" in source
    assert "a1[r_n, k_co, (r_h - k_i) // a4, (r_w - k_j) // a5]" in source
    # forward: X, W, b, O, row, sh, sw
    assert "a0[r_n, k_c, r_h * a5 + k_i, r_w * a6 + k_j]" in cuda_backend.contraction_source(conv2d_strided_forward, 1)


def test_a_declaration_must_fit_its_body():
    def body(i, j, A, B, C):
        pass

    with pytest.raises(ScheduleError, match="has no argument 'BT'"):
        contraction("C[i,j] = sum_k A[i,k] * BT[j,k]")(body)
    with pytest.raises(ScheduleError, match="the grid indices are"):
        contraction("C[p,q] = sum_k A[p,k] * B[q,k]")(body)
    with pytest.raises(ScheduleError, match="the grid indices are"):  # the plain form's grid is OUT's
        contraction("C[j,i] = sum_k B[j,k] * A[i,k]")(body)
    assert not hasattr(body, "contraction")

    def plane(n, A, B, C):  # a coarser grid than OUT, as conv2d's loops own planes
        pass

    declared = contraction("C[n,h] = sum_k A[n,h,k] * B[k]")(plane).contraction  # a matrix-vector product
    assert (declared.rows, declared.cols) == (("n", "h"), ())


def test_numba_tiles_only_the_plain_form():
    from loopnet.ops.conv import conv2d_forward
    from loopnet.ops.matmul import matmul_forward

    assert "Declared schedule" in numba_backend._driver_source(matmul_forward, 2, False)
    assert "Declared schedule" not in numba_backend._driver_source(conv2d_forward, 2, False)


# -- @tiles: a body that reads an array down a column ------------------------------------------

def test_a_tiles_declaration_must_fit_its_body():
    def body(j, i, A, AT):
        AT[j, i] = A[i, j]

    with pytest.raises(ScheduleError, match="no array argument 'B'"):
        tiles(8, "B")(body)
    with pytest.raises(ScheduleError, match="no array argument 'i'"):  # a grid index is not an array
        tiles(8, "i")(body)
    for size in (1, 0, 2.5, True, "8"):
        with pytest.raises(ScheduleError, match="at least 2"):
            tiles(size, "A")
    assert not hasattr(body, "tiles")
    assert tiles(4, "A")(body).tiles == Tiles(4, "A")


TILED = [transpose_body, transpose_forward, transpose_grad_x]  # (j, i, source, copy) each


def visits(body, A, parallel):
    """The grid points the numba driver of `body` visits, in order, copying A's transpose:
    its Python function run with a recording body in place of the compiled one."""
    numba_backend.check_available()
    drive = numba_backend._load_driver(body, 2, parallel)
    seen = []
    original = drive.py_func.__globals__["body"]
    drive.py_func.__globals__["body"] = lambda j, i, A, AT: (seen.append((int(j), int(i))), body(j, i, A, AT))
    try:
        AT = np.zeros(A.shape[::-1], A.dtype)
        drive.py_func(A.shape[1], A.shape[0], A, AT)
    finally:
        drive.py_func.__globals__["body"] = original
    np.testing.assert_array_equal(AT, A.T)
    return seen


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("body", TILED, ids=lambda f: f.__name__)
def test_a_transpose_runs_in_tiles_only_where_rows_lie_a_multiple_of_1_kib_apart(body, parallel):
    rows_1_kib_apart = np.arange(19 * 256, dtype=np.float32).reshape(19, 256)  # 256 x 4 bytes
    seen = visits(body, rows_1_kib_apart, parallel)
    assert sorted(seen) == [(j, i) for j in range(256) for i in range(19)]  # every point, once
    assert seen[:9] == [(0, i) for i in range(8)] + [(1, 0)]  # 8 x 8 tiles: the 9th point starts row 1
    assert seen[64:66] == [(0, 8), (0, 9)]  # then the next tile along
    assert (0, 16) in seen[128:136] and (0, 18) in seen  # the ragged last tile, 3 wide
    other = np.arange(19 * 250, dtype=np.float64).reshape(19, 250)  # 2000 bytes apart
    assert visits(body, other, parallel) == [(j, i) for j in range(250) for i in range(19)]  # grid order
    ragged = np.arange(19 * 1024, dtype=np.float32).reshape(19, 1024)[:, :100]  # a slice: rows 4 KiB apart
    seen = visits(body, ragged, parallel)
    assert sorted(seen) == [(j, i) for j in range(100) for i in range(19)] and seen[:2] == [(0, 0), (0, 1)]
    assert seen[-12:] == [(j, i) for j in range(96, 100) for i in range(16, 19)]  # the corner tile, 4 x 3


SLICES = [np.s_[:, :100], np.s_[:, :8], np.s_[:, 3:50], np.s_[::2, :13], np.s_[::-1, :100], np.s_[:, ::-1], np.s_[:5, :]]


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("view", SLICES, ids=str)
@pytest.mark.parametrize("body", TILED, ids=lambda f: f.__name__)
def test_tiled_transposes_of_slices_equal_the_transpose(body, view, parallel):
    # rows 4 KiB apart (or 8, or -4) whatever the slice's width: the tiled branch, ragged edges
    A = np.random.default_rng(0).standard_normal((21, 1024)).astype(np.float32)[view]
    numba_backend.check_available()
    AT = np.zeros(A.shape[::-1], A.dtype)
    numba_backend._load_driver(body, 2, parallel)(A.shape[1], A.shape[0], A, AT)
    np.testing.assert_array_equal(AT, A.T)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("body", TILED, ids=lambda f: f.__name__)
@given(rows=st.integers(0, 40), kib=st.integers(0, 2), extra=st.sampled_from([0, 0, 1, 7]), seed=st.integers(0, 99))
def test_the_tiled_transpose_equals_the_body(body, dtype, parallel, rows, kib, extra, seed):
    cols = kib * 1024 // np.dtype(dtype).itemsize + extra  # (extra 0: rows a multiple of 1 KiB apart)
    A = np.random.default_rng(seed).standard_normal((rows, cols)).astype(dtype)
    numba_backend.check_available()
    AT = np.zeros(A.shape[::-1], dtype)
    numba_backend._load_driver(body, 2, parallel)(A.shape[1], A.shape[0], A, AT)
    np.testing.assert_array_equal(AT, A.T)


def test_the_transposes_declare_tiles_and_the_other_backends_ignore_them():
    modules = [importlib.import_module(f"loopnet.{name}") for name in ("loops", "ops.layout")] + OP_MODULES
    declared = {f for module in modules for _, f in inspect.getmembers(module, inspect.isfunction) if hasattr(f, "tiles")}
    assert declared == set(TILED)
    assert [f.tiles for f in TILED] == [Tiles(8, "A"), Tiles(8, "x"), Tiles(8, "dy")]
    assert "tiles where A's rows" in numba_backend._driver_source(transpose_body, 2, True)
    with ln.use("python"):
        A = np.arange(12.0).reshape(3, 4)
        np.testing.assert_array_equal(ln.loops.transposed(A), A.T)
        np.testing.assert_array_equal(ln.forward(ln.transpose(ln.Input(A))), A.T)
