"""Declared contraction schedules: the tiled Numba driver equals the op's own body."""

import importlib
import inspect

import numpy as np
import pytest
from hypothesis import given, strategies as st

import loopnet as ln
from loopnet.backends import numba_backend, python_backend
from loopnet.schedule import ScheduleError, contraction, grid_of, parse

OP_MODULES = [importlib.import_module(f"loopnet.ops.{name}") for name in ("affine", "matmul", "conv", "bmm")]
SCHEDULED = [f for module in OP_MODULES
             for _, f in inspect.getmembers(module, inspect.isfunction) if hasattr(f, "contraction")]
PLAIN = [f for f in SCHEDULED if f.contraction.plain]

def test_the_contraction_loops_are_declared():
    assert {f.__name__ for f in PLAIN} == {
        "matmul_forward", "matmul_grad_A", "matmul_grad_B", "affine_forward", "affine_grad_x", "affine_grad_W"}
    assert {f.__name__ for f in SCHEDULED} - {f.__name__ for f in PLAIN} == {
        "conv2d_forward", "conv2d_grad_W", "conv2d_grad_x", "bmm_forward", "bmm_grad_A", "bmm_grad_BT", "bmm_grad_B"}


def arrays_for(body, extents, dtype, rng):
    """The body's grid and random arrays for it: an axis indexed by h+i is e(h)+e(i)-1
    long (a convolution's input), one indexed by h-i is e(h)-e(i)+1 (its output)."""
    spec = body.contraction

    def length(expression):
        (_, first), *rest = expression
        return extents[first] + sum((extents[name] - 1) * (1 if sign == "+" else -1) for sign, name in rest)

    shapes = {spec.out: tuple(extents[n] for n in spec.out_index),
              spec.a: tuple(length(e) for e in spec.a_index), spec.b: tuple(length(e) for e in spec.b_index)}
    if spec.init:
        shapes[spec.init] = tuple(extents[n] for n in spec.init_index)
    grid = grid_of(body)
    names = list(inspect.signature(body).parameters)[len(grid):]
    return tuple(extents[n] for n in grid), [rng.standard_normal(shapes[name]).astype(dtype) for name in names]


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
