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
    monkeypatch.setattr(numba_backend, "_settled", {})  # (no grid settled serial by an earlier test)
    monkeypatch.setattr(numba_backend, "settle", lambda parallel, seconds, has_grid: parallel)
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


@pytest.mark.parametrize("parallel,seconds,has_grid,settled", [
    (True, 5e-6, True, False),  # a quick parallel launch was mostly starting threads
    (True, 1e-3, True, True),
    (False, 1e-3, True, True),  # a slow serial launch (a convolution's planes) gets threads
    (False, 5e-6, True, False),
    (False, 1e-3, False, False),  # a grid of one point has nothing to share out
    (True, numba_backend.SERIAL_BELOW_SECONDS, True, True),  # between the bounds: the guess stands
    (False, numba_backend.PARALLEL_ABOVE_SECONDS, True, False),
])
def test_a_timed_launch_settles_serial_or_parallel(parallel, seconds, has_grid, settled):
    assert numba_backend.settle(parallel, seconds, has_grid) is settled


def double_body(i, x, y):  # a body no other test compiles, so its first launches here compile
    y[i] = 2 * x[i]


def launches_with_a_clock(monkeypatch, durations):
    """Launches see a fake clock on which the n-th timed launch takes durations[n] seconds
    (then 1 ms each); returns the list that records each launch's choice (True: parallel)."""
    numba_backend.check_available()
    monkeypatch.setattr(numba_backend, "_settled", {})
    monkeypatch.setattr(numba_backend, "_timed", {})
    readings = np.cumsum([x for d in list(durations) + [1e-3] * 100 for x in (1.0, d)])
    clock = iter(readings)
    monkeypatch.setattr(numba_backend.time, "perf_counter", lambda: next(clock))
    ran = []
    real_run = numba_backend._run
    monkeypatch.setattr(numba_backend, "_run", lambda body, parallel, grid, args: (ran.append(parallel), real_run(body, parallel, grid, args)))
    return ran


def test_a_slow_serial_grid_runs_in_parallel_after_its_timed_launches(monkeypatch):
    from loopnet.ops.activations import relu_forward

    x, y = np.linspace(-1, 1, 8), np.zeros(8)
    numba_backend.loop(relu_forward, (8,), (x, y))  # (compiled or loaded now: the launches below are warm)
    ran = launches_with_a_clock(monkeypatch, [])
    for _ in range(numba_backend.TIMED_LAUNCHES + 2):
        numba_backend.loop(relu_forward, (8,), (x, y))
    assert ran == [False] * numba_backend.TIMED_LAUNCHES + [True, True]
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert numba_backend._settled == {(relu_forward, (8,)): True}


@pytest.mark.parametrize("durations,settled", [
    ([7.8e-3, 4e-6, 5e-6], False),  # threads that slept, then quick: serial
    ([30e-6, 40e-6, 30e-6], True),  # never quick enough to be mostly starting threads
])
def test_the_fastest_timed_launch_decides_not_the_first(monkeypatch, durations, settled):
    from loopnet.ops.activations import relu_forward

    monkeypatch.setattr(numba_backend, "PARALLEL_MIN_POINTS", 0)  # guessed parallel
    x, y = np.linspace(-1, 1, 8), np.zeros(8)
    numba_backend.loop(relu_forward, (8,), (x, y))
    ran = launches_with_a_clock(monkeypatch, durations)
    for _ in range(numba_backend.TIMED_LAUNCHES):
        numba_backend.loop(relu_forward, (8,), (x, y))
        assert (numba_backend.settled_launcher(relu_forward, (8,)) is None) == (len(ran) < len(durations))
    assert ran == [True] * 3 and numba_backend._settled == {(relu_forward, (8,)): settled}


def test_a_launch_that_compiles_its_kernel_is_not_timed(monkeypatch):
    ran = launches_with_a_clock(monkeypatch, [])
    for dtype in (np.float64, np.float32) + (np.float64,) * numba_backend.TIMED_LAUNCHES:  # each dtype's
        x = np.ones(8, dtype)                                        # first launch compiles (or loads)
        numba_backend.loop(double_body, (8,), (x, np.zeros(8, dtype)))
        if dtype == np.float32:
            assert numba_backend._settled == {} and numba_backend._timed == {}
    assert ran == [False] * 5 and numba_backend._settled == {(double_body, (8,)): True}
