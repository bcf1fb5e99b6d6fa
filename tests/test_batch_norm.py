"""batch_norm: PyTorch's formulas (written out in NumPy), running statistics, evaluation
mode, every backend, float32 statistics, errors."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import loopnet as ln
from loopnet.errors import SettingError, ShapeError
from loopnet.testing.strategies import arrays, sizes


def _reference(x, gamma, beta, mean, var, eps=1e-5):
    """PyTorch's batch norm, with the channel on axis 1 and the statistics given."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * gamma.reshape(shape) + beta.reshape(shape)


def _channel_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes), x.size // x.shape[1]


@given(st.data(), st.integers(2, 4))
def test_training_mode_matches_pytorch_formula_and_updates_running_statistics(data, rank):
    shape = (data.draw(sizes(2, 3)), data.draw(sizes(1, 3))) + tuple(data.draw(sizes(1, 3)) for _ in range(rank - 2))
    x, C = data.draw(arrays(shape)), shape[1]
    gamma, beta = data.draw(arrays((C,))), data.draw(arrays((C,)))
    out = ln.batch_norm(ln.Input(x), ln.Input(gamma), ln.Input(beta), momentum=0.25)
    mean, var, M = _channel_stats(x)
    for step in range(1, 3):  # two forwards: the running statistics move twice
        np.testing.assert_allclose(ln.forward(out), _reference(x, gamma, beta, mean, var), rtol=1e-9, atol=1e-9)
        kept = 0.75 ** step
        np.testing.assert_allclose(out.op.running_mean, (1 - kept) * mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out.op.running_var, kept + (1 - kept) * var * M / (M - 1), rtol=1e-12, atol=1e-12)


def test_evaluation_mode_uses_the_running_statistics_as_constants():
    rng = np.random.default_rng(0)
    x = ln.Parameter(rng.normal(size=(4, 3, 2, 2)), name="x")
    gamma, beta = ln.Parameter(rng.normal(size=3), name="gamma"), ln.Parameter(rng.normal(size=3), name="beta")
    out = ln.batch_norm(x, gamma, beta)
    out.op.training = False
    out.op.running_mean, out.op.running_var = [0.5, -1.0, 2.0], [4.0, 0.25, 1.0]
    y = ln.forward(out)
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([4.0, 0.25, 1.0])
    np.testing.assert_allclose(y, _reference(x.value, gamma.value, beta.value, mean, var), rtol=1e-12)
    loss = ln.sum(out)
    ln.forward(loss)
    ln.backward(loss)  # dy = 1: dx is gamma r, the batch terms are gone
    r = 1 / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(x.grad, np.broadcast_to((gamma.value * r)[None, :, None, None], x.shape), rtol=1e-12)
    np.testing.assert_allclose(out.op.running_mean, mean)  # evaluation never moves them


def test_training_gradient_through_the_batch_statistics():
    # sum(y) over a channel is C * beta whatever x is (xhat sums to zero): dx must be 0
    rng = np.random.default_rng(1)
    x = ln.Parameter(rng.normal(size=(5, 2)), name="x")
    out = ln.batch_norm(x, ln.Parameter(np.array([2.0, -3.0]), name="gamma"), ln.Parameter(np.zeros(2), name="beta"))
    loss = ln.sum(out)
    ln.forward(loss)
    ln.backward(loss)
    np.testing.assert_allclose(x.grad, 0, atol=1e-12)
    frozen = ln.batch_norm(x, ln.Parameter(np.array([2.0, -3.0])), ln.Parameter(np.zeros(2)))
    frozen.op.training = False
    loss = ln.sum(frozen)
    ln.forward(loss)
    ln.backward(loss)
    assert np.abs(x.grad).max() > 1  # evaluation mode has no such cancellation


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_every_backend_gives_the_same_values_gradients_and_running_statistics(backend):
    rng = np.random.default_rng(2)
    shape = (3, 2, 2, 3) if backend == "cuda" else (8, 4, 5, 5)
    x = ln.Parameter(rng.normal(1.0, 2.0, size=shape), name="x")
    gamma, beta = ln.Parameter(rng.normal(size=shape[1]), name="gamma"), ln.Parameter(rng.normal(size=shape[1]), name="beta")
    out = ln.batch_norm(x, gamma, beta)
    loss = ln.sum(ln.square(out))
    results = {}
    for name in ("python", backend):
        with ln.use(name):
            out.op.running_mean, out.op.running_var = np.zeros(shape[1]), np.ones(shape[1])
            ln.forward(loss)
            ln.backward(loss)
            results[name] = [np.array(a) for a in (out.value, x.grad, gamma.grad, beta.grad,
                                                     out.op.running_mean, out.op.running_var)]
    for got, want in zip(results[backend], results["python"]):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)


def test_float32_statistics_over_a_large_batch_are_accurate():
    # 200,000 values of 1000.1 and 1000.3 in float32: a float32 running sum would drift
    x = np.tile(np.array([1000.1, 1000.3], np.float32), 100_000).reshape(-1, 1)
    out = ln.batch_norm(ln.Input(x), ln.Input(np.ones(1, np.float32)), ln.Input(np.zeros(1, np.float32)), momentum=1.0)
    for backend in ("python", "numba"):
        with ln.use(backend):
            y = ln.forward(out)
        exact = x.astype(np.float64).mean()
        assert abs(out.op.running_mean[0] - exact) < 1e-4, backend
        np.testing.assert_allclose(np.abs(y), 1.0, rtol=1e-3)  # every xhat is -1 or +1


@pytest.mark.parametrize("build,error,message", [
    (lambda: ln.batch_norm(ln.Input(np.zeros(4)), ln.Input(np.zeros(4)), ln.Input(np.zeros(4))), ShapeError,
     r"needs x \(N, C\), \(N, C, L\) or \(N, C, H, W\)"),
    (lambda: ln.batch_norm(ln.Input(np.zeros((2, 3, 1, 1, 1))), ln.Input(np.zeros(3)), ln.Input(np.zeros(3))),
     ShapeError, "needs x"),
    (lambda: ln.batch_norm(ln.Input(np.zeros((2, 3))), ln.Input(np.zeros(2)), ln.Input(np.zeros(3))), ShapeError,
     r"gamma and beta of shape \(3,\)"),
    (lambda: ln.batch_norm(ln.Input(np.zeros((2, 3))), ln.Input(np.zeros(3)), ln.Input(np.zeros(3)), eps=0),
     SettingError, "eps must be positive"),
    (lambda: ln.batch_norm(ln.Input(np.zeros((2, 3))), ln.Input(np.zeros(3)), ln.Input(np.zeros(3)), momentum=1.5),
     SettingError, r"momentum must be in \[0, 1\]"),
    (lambda: ln.forward(ln.batch_norm(ln.Input(np.zeros((1, 3))), ln.Input(np.zeros(3)), ln.Input(np.zeros(3)))),
     ShapeError, "training needs more than one value per channel"),
])
def test_errors(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_running_statistics_must_have_one_value_per_channel():
    out = ln.batch_norm(ln.Input(np.zeros((2, 3))), ln.Input(np.zeros(3)), ln.Input(np.zeros(3)))
    with pytest.raises(ShapeError, match=r"running_var must have shape \(3,\), got \(2,\)"):
        out.op.running_var = np.ones(2)


def test_one_example_is_fine_in_evaluation_mode():
    out = ln.batch_norm(ln.Input(np.array([[1.0, 2.0]])), ln.Input(np.ones(2)), ln.Input(np.zeros(2)))
    out.op.training = False
    np.testing.assert_allclose(ln.forward(out), [[1.0, 2.0]] / np.sqrt(1 + 1e-5))


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 4, 4)])
def test_batch_norm_equals_pytorchs(shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x0, gamma0, beta0 = rng.normal(2, 3, size=shape), rng.normal(size=shape[1]), rng.normal(size=shape[1])
    upstream = rng.normal(size=shape)
    x, gamma, beta = (ln.Parameter(a, name=n) for a, n in ((x0, "x"), (gamma0, "gamma"), (beta0, "beta")))
    out = ln.batch_norm(x, gamma, beta, momentum=0.3)
    ln.forward(out)
    ln.backward(out, grad=upstream)
    theirs = (torch.nn.BatchNorm1d if len(shape) < 4 else torch.nn.BatchNorm2d)(shape[1], momentum=0.3,
                                                                                dtype=torch.float64)
    theirs.weight.data, theirs.bias.data = torch.tensor(gamma0), torch.tensor(beta0)
    tx = torch.tensor(x0, requires_grad=True)
    y = theirs(tx)
    y.backward(torch.tensor(upstream))
    pairs = [(out.value, y), (x.grad, tx.grad), (gamma.grad, theirs.weight.grad), (beta.grad, theirs.bias.grad),
             (out.op.running_mean, theirs.running_mean), (out.op.running_var, theirs.running_var)]
    for mine, want in pairs:
        np.testing.assert_allclose(mine, want.detach().numpy(), rtol=1e-10, atol=1e-12)
    theirs.eval()
    out.op.training = False
    np.testing.assert_allclose(ln.forward(out), theirs(torch.tensor(x0)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_set_dtype_keeps_what_the_running_statistics_learned():
    rng = np.random.default_rng(7)
    out = ln.batch_norm(ln.Input(rng.normal(5, 3, (8, 2))), ln.Input(np.ones(2)), ln.Input(np.zeros(2)))
    for _ in range(5):
        ln.forward(out)
    learned = out.op.running_mean
    ln.set_dtype(out, "float32")
    out.op.training = False
    ln.forward(out)
    assert out.op.running_mean.dtype == np.float32
    np.testing.assert_allclose(out.op.running_mean, learned, rtol=1e-6)


def test_gradcheck_leaves_the_running_statistics_as_it_found_them():
    from loopnet.testing import gradcheck

    rng = np.random.default_rng(8)
    out = ln.batch_norm(ln.Parameter(rng.normal(size=(5, 3)), name="x"), ln.Parameter(rng.normal(size=3), name="g"),
                        ln.Parameter(rng.normal(size=3), name="b"))
    ln.forward(out)
    before = out.op.buffers()
    assert gradcheck(ln.sum(ln.square(out)))
    for name, value in before.items():
        np.testing.assert_array_equal(out.op.buffers()[name], value, err_msg=name)


@pytest.mark.parametrize("setting, message", [
    (dict(momentum=None), r"momentum must be a number, got None \(PyTorch's cumulative average"),
    (dict(eps="a"), r"eps must be a number, got 'a'"),
])
def test_settings_that_are_not_numbers(setting, message):
    with pytest.raises(SettingError, match=message):
        ln.batch_norm(ln.Input(np.zeros((2, 3))), ln.Input(np.zeros(3)), ln.Input(np.zeros(3)), **setting)


def test_running_statistics_must_be_numbers():
    from loopnet.errors import DTypeError

    out = ln.batch_norm(ln.Input(np.zeros((2, 3))), ln.Input(np.zeros(3)), ln.Input(np.zeros(3)))
    with pytest.raises(DTypeError, match="running_mean must be real numbers"):
        out.op.running_mean = ["a", "b", "c"]
