"""The numba backend: the same loop bodies, compiled, equal to the Python reference."""

import numpy as np
import pytest
from hypothesis import given, settings

import loopnet as ln
import loopnet.targets  # noqa: F401  (ln.targets in a test)
from loopnet.backends import drivers, numba_backend
from loopnet.errors import BackendError
from loopnet.testing.backends import assert_backends_agree
from loopnet.testing.samples import SAMPLES


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(ln.OPS))
def test_numba_equals_python_for_every_op(name, dtype):
    # Few examples: each new dtype compiles once, and equality needs no large search.
    @settings(max_examples=min(settings.default.max_examples, 8))
    @given(SAMPLES[name](np.dtype(dtype)))
    def check(node):
        assert node.dtype == np.dtype(dtype)
        assert_backends_agree(node, "numba")

    check()


def test_parallel_drivers_agree_too(monkeypatch):
    monkeypatch.setattr(numba_backend, "PARALLEL_MIN_POINTS", 0)  # every loop via prange
    rng = np.random.default_rng(1)
    x = ln.Parameter(rng.normal(size=(5, 4)), name="x")
    W, b = ln.Parameter(rng.normal(size=(4, 3)), name="W"), ln.Parameter(rng.normal(size=3), name="b")
    loss = ln.softmax_cross_entropy(ln.relu(ln.affine(x, W, b)), ln.Input(np.array([0, 2, 1, 1, 0])))
    assert_backends_agree(loss, "numba")


@pytest.mark.parametrize("op", [ln.relu, ln.exp, ln.sum, ln.square])
def test_empty_arrays_agree(op):
    assert_backends_agree(op(ln.Parameter(np.zeros((0, 3)))), "numba")


def test_nan_and_inf_stay_visible_under_numba():
    with ln.use("numba"):
        assert np.isnan(ln.forward(ln.relu(ln.Input([np.nan])))[0])
        assert ln.forward(ln.exp(ln.Input([1000.0])))[0] == np.inf
        assert ln.forward(ln.div(ln.Input([1.0]), ln.Input([0.0])))[0] == np.inf  # no ZeroDivisionError
        with pytest.raises(ln.errors.NonFiniteError, match="'boom'"):
            ln.forward(ln.log(ln.Input([0.0]), name="boom"), check_finite=True)


def test_float32_end_to_end():
    loss = ln.set_dtype(ln.targets.build_target("mlp"), "float32")
    with ln.use("numba"):
        assert ln.forward(loss).dtype == np.float32
        ln.backward(loss)
    for node in ln.topological_order(loss):
        if node.dtype.kind == "f":
            assert node.value.dtype == np.float32
            assert node.grad is None or node.grad.dtype == np.float32


def test_a_body_numba_cannot_compile_is_one_clear_paragraph():
    def bad_forward(i, x, y):
        y[i] = len(open("/dev/null").read()) + x[i]  # file I/O: Numba cannot type it

    class Bad(ln.op.Elementwise):
        name = "bad"
        forward_body = bad_forward

    with ln.use("numba"), pytest.raises(BackendError) as caught:
        ln.forward(Bad().apply((ln.Input([1.0]),)))
    message = str(caught.value)
    assert "could not compile" in message and "bad_forward" in message and "\n" not in message
    assert "Untyped global name 'open'" in message


def test_editing_a_body_gets_a_new_driver_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPNET_CACHE_DIR", str(tmp_path))
    from loopnet.ops.activations import relu_forward

    first = numba_backend._driver_source(relu_forward, 1, False)
    assert "from loopnet.ops.activations import relu_forward as body_source" in first
    assert "numba.prange" in numba_backend._driver_source(relu_forward, 1, True)
    assert "reassoc" in first and "nnan" not in first and "error_model='numpy'" in first


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LOOPNET_CACHE_DIR", str(tmp_path / "c"))
    assert drivers.cache_dir("numba") == str(tmp_path / "c" / "numba")
    monkeypatch.delenv("LOOPNET_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert drivers.cache_dir("numba") == str(tmp_path / "xdg" / "loopnet" / "numba")


def test_missing_numba_is_an_explicit_error(monkeypatch):
    import builtins
    import loopnet.backends as backends

    real_import = builtins.__import__

    def no_numba(name, *args, **kwargs):
        if name == "numba" or name.startswith("numba."):
            raise ImportError("No module named 'numba'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numba)
    monkeypatch.setattr(backends, "_loaded", {})
    with pytest.raises(BackendError, match="pip install numba"):
        ln.use("numba")
