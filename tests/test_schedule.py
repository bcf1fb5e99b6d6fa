"""Declared contraction schedules: the tiled Numba driver equals the op's own body."""

import importlib
import inspect

import numpy as np
import pytest
from hypothesis import given, strategies as st

import loopnet as ln
from loopnet.backends import numba_backend, python_backend
from loopnet.schedule import ScheduleError, contraction

# importlib, because `loopnet.ops.affine` as an attribute is the op function, not its module
OP_MODULES = [importlib.import_module(f"loopnet.ops.{name}") for name in ("affine", "matmul")]
SCHEDULED = [f for module in OP_MODULES
             for _, f in inspect.getmembers(module, inspect.isfunction) if hasattr(f, "contraction")]


def test_the_contraction_loops_are_declared():
    assert {f.__name__ for f in SCHEDULED} == {
        "matmul_forward", "matmul_grad_A", "matmul_grad_B", "affine_forward", "affine_grad_x", "affine_grad_W"}


def arrays_for(body, gi, gj, K, dtype, rng):
    """Random arguments for a contraction body on a (gi, gj) grid with K summed."""
    spec = body.contraction
    shapes = {spec.a: (gi, K), spec.b: (gj, K), spec.out: (gi, gj)}
    if spec.init:
        shapes[spec.init] = (gj,)
    names = list(inspect.signature(body).parameters)[2:]
    return [rng.standard_normal(shapes[name]).astype(dtype) for name in names]


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("body", SCHEDULED, ids=lambda f: f.__name__)
@given(gi=st.integers(1, 11), gj=st.integers(1, 11), K=st.integers(1, 9), seed=st.integers(0, 99))
def test_scheduled_driver_equals_the_body(body, dtype, parallel, gi, gj, K, seed):
    rng = np.random.default_rng(seed)
    args = arrays_for(body, gi, gj, K, dtype, rng)
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
    ("C[i,j] = sum_k A[k,i] * B[j,k]", "the indices must be"),
    ("C[i,j] = b[i] + sum_k A[i,k] * B[j,k]", "the indices must be"),
])
def test_malformed_declarations_are_refused(spec, message):
    with pytest.raises(ScheduleError, match=message):
        contraction(spec)


def test_a_declaration_must_fit_its_body():
    def body(i, j, A, B, C):
        pass

    with pytest.raises(ScheduleError, match="has no argument 'BT'"):
        contraction("C[i,j] = sum_k A[i,k] * BT[j,k]")(body)
    with pytest.raises(ScheduleError, match="the grid indices are"):
        contraction("C[p,q] = sum_k A[p,k] * B[q,k]")(body)
