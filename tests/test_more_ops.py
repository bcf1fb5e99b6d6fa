"""bmm, maxout, embedding, layer_norm: NumPy references, repeated ids, errors."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import loopnet as ln
from loopnet.errors import LabelError, ShapeError
from loopnet.testing.backends import close
from loopnet.testing.strategies import arrays, sizes


@given(st.data(), st.booleans())
def test_bmm_matches_einsum_both_layouts(data, transpose_b):
    h, i, k, j = (data.draw(sizes(1, 3)) for _ in range(4))
    A = data.draw(arrays((h, i, k)))
    B = data.draw(arrays((h, j, k) if transpose_b else (h, k, j)))
    U = ln.forward(ln.bmm(ln.Input(A), ln.Input(B), transpose_b=transpose_b))
    spec = "hik,hjk->hij" if transpose_b else "hik,hkj->hij"
    np.testing.assert_allclose(U, np.einsum(spec, A, B), rtol=1e-12, atol=1e-12)


@given(st.data())
def test_maxout_matches_numpy(data):
    n, d, m, k = (data.draw(sizes(1, 3)) for _ in range(4))
    x, W, b = data.draw(arrays((n, d))), data.draw(arrays((k, d, m))), data.draw(arrays((k, m)))
    y = ln.forward(ln.maxout(ln.Input(x), ln.Input(W), ln.Input(b)))
    np.testing.assert_allclose(y, (np.einsum("nd,pdm->npm", x, W) + b[None]).max(axis=1), rtol=1e-12, atol=1e-12)


def test_embedding_with_repeated_ids_adds_their_gradients():
    E = ln.Parameter(np.arange(12.0).reshape(4, 3), name="E")
    ids = ln.Input(np.array([[1, 3], [1, 1]]), name="ids")
    out = ln.embedding(ids, E)
    np.testing.assert_array_equal(ln.forward(out), E.value[ids.value])
    for backend in ("python", "numba"):
        with ln.use(backend):
            ln.forward(out)
            ln.backward(out)
        assert E.grad[:, 0].tolist() == [0.0, 3.0, 0.0, 1.0]  # id 1 used three times, id 3 once


def test_embedding_ids_are_checked():
    E = ln.Parameter(np.zeros((4, 2)), name="E")
    with pytest.raises(LabelError, match=r"id 4 at index \(1,\) of 'ids' is outside the table 'E' of 4 rows"):
        ln.forward(ln.embedding(ln.Input(np.array([0, 4]), name="ids"), E))
    with pytest.raises(LabelError, match="must be integers"):
        ln.embedding(ln.Input([0.0, 1.0]), E)


@given(arrays(st.tuples(sizes(1, 3), sizes(2, 5))), st.data())
def test_layer_norm_matches_pytorch_formula(x, data):
    K = x.shape[1]
    gamma, beta = data.draw(arrays((K,))), data.draw(arrays((K,)))
    y = ln.forward(ln.layer_norm(ln.Input(x), ln.Input(gamma), ln.Input(beta)))
    mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(var + 1e-5) * gamma + beta, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("build,message", [
    (lambda: ln.bmm(ln.Input(np.zeros((2, 3, 4))), ln.Input(np.zeros((2, 5, 6)))), "A's H and K"),
    (lambda: ln.bmm(ln.Input(np.zeros((3, 4))), ln.Input(np.zeros((2, 4, 6)))), "needs A"),
    (lambda: ln.maxout(ln.Input(np.zeros((2, 3))), ln.Input(np.zeros((2, 4, 5))), ln.Input(np.zeros((2, 5)))), "W must be"),
    (lambda: ln.layer_norm(ln.Input(np.zeros((2, 3))), ln.Input(np.zeros(4)), ln.Input(np.zeros(3))), "gamma"),
    (lambda: ln.embedding(ln.Input(np.array([0])), ln.Input(np.zeros(3))), "table E must be"),
])
def test_shape_errors(build, message):
    with pytest.raises(ShapeError, match=message):
        build()


def test_backend_comparison_still_catches_a_real_difference():
    want = np.array([1.0, 2.0, 3.0])
    assert close(want + 1e-13, want, 1e-12)
    assert not close(want + 1e-6, want, 1e-12)
    assert not close(want + 1e-6, want, 1e-12, floor=100.0)  # the graph floor tolerates rounding, not bugs
    assert not close(want.astype(np.float32), want, 1e-12)  # dtype must match


def test_rnn_shared_weights_collect_one_gradient_term_group_per_time_step():
    from loopnet.explain import find_node
    from loopnet.targets import build_target

    loss = build_target("rnn")
    ln.forward(loss)
    ln.backward(loss)
    V = find_node(loss, "V")
    consumers = {t.consumer for t in ln.explain(V, (0, 0)).terms}
    assert consumers <= {f"rec{t}" for t in range(1, 5)} and len(consumers) >= 3  # rec1 reads h0 = 0
    total = sum(t.value for t in ln.explain(V, (1, 2)).terms)
    assert total == pytest.approx(V.grad[1, 2], rel=1e-12)


def test_attention_weights_are_a_distribution_and_the_model_learns():
    from loopnet import data, models, training
    from loopnet.explain import find_node
    from loopnet.targets import build_target

    loss = build_target("attention")
    ln.forward(loss)
    weights = find_node(loss, "weights").value
    assert weights.shape == (1, 4) and weights.sum() == pytest.approx(1.0) and np.all(weights > 0)
    tokens = data.load("tokens", seed=0)
    net = models.build("attention", tokens.input_shape, tokens.classes, seed=0)
    with ln.use("numba"):
        training.train(net, tokens, training.TrainConfig(epochs=6, lr=0.01, optimizer="adam", lr_patience=0))
        assert training.accuracy(net, tokens.test) > 0.9
