"""Replayed steps (loopnet.replay): the same numbers as step-by-step training, new data
copied in, the caller's arrays untouched, value checks still made, and no replay where
it cannot repeat the step (python backend, dropout, batch_norm)."""

import numpy as np
import pytest

import loopnet as ln
from loopnet import replay as replay_module
from loopnet.errors import LabelError
from loopnet.optim import make_optimizer
from loopnet.replay import Replay
from loopnet.tools.bench import mlp_graph


def mlp(seed=0, batch=8):
    return mlp_graph((6, 5, 3), batch, np.float64, np.random.default_rng(seed))


def batches(rows=(8, 8, 5, 8, 5, 8), seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, 6)), rng.integers(0, 3, n)) for n in rows]


def train(optimizer_name, replayed, data, clip=None):
    x, labels, params, loss = mlp()
    optimizer = make_optimizer(optimizer_name, params, 0.1, clip=clip)
    step, losses = Replay(loss), []
    with ln.use("numba"):
        for xb, yb in data:
            x.value, labels.value = xb, yb
            if replayed:
                losses.append(step())
            else:
                losses.append(float(ln.forward(loss)))
                ln.backward(loss)
            optimizer.step()
    return losses, [np.array(p.value) for p in params], step


@pytest.mark.parametrize("optimizer,clip", [("sgd", None), ("momentum", None), ("adam", None), ("sgd", 0.5)])
def test_replayed_training_equals_step_by_step_bit_for_bit(optimizer, clip):
    data = batches()  # two shapes, alternating: one recording each
    plain_losses, plain_params, _ = train(optimizer, False, data, clip)
    losses, params, step = train(optimizer, True, data, clip)
    assert losses == plain_losses
    for got, want in zip(params, plain_params):
        np.testing.assert_array_equal(got, want)
    assert len(step.recordings) == 2


def test_a_replayed_step_leaves_every_node_as_a_plain_step_would():
    data = batches()
    x, labels, params, loss = mlp()
    step = Replay(loss)
    with ln.use("numba"):
        for xb, yb in data:
            x.value, labels.value = xb, yb
            step()
        replayed = {n.name: (np.array(n.value), None if n.grad is None else np.array(n.grad))
                    for n in ln.topological_order(loss)}
        ln.forward(loss)  # no stale-value refusal: the replay stamped the nodes as computed
        ln.backward(loss)
    for node in ln.topological_order(loss):
        value, grad = replayed[node.name]
        np.testing.assert_array_equal(value, node.value)
        if grad is not None:
            np.testing.assert_array_equal(grad, node.grad)


def test_new_data_is_copied_in_and_the_callers_arrays_are_left_alone():
    data = batches(rows=(8, 8, 8))
    kept = [(xb.copy(), yb.copy()) for xb, yb in data]
    x, labels, params, loss = mlp()
    step = Replay(loss)
    with ln.use("numba"):
        for xb, yb in data:
            x.value, labels.value = xb, yb
            got = step()
            assert got == pytest.approx(float(ln.forward(loss)), abs=0)  # (a plain forward on the same data)
    for (xb, yb), (x0, y0) in zip(data, kept):
        np.testing.assert_array_equal(xb, x0)
        np.testing.assert_array_equal(yb, y0)


def test_a_label_out_of_range_is_refused_in_a_replayed_step():
    x, labels, params, loss = mlp()
    step = Replay(loss)
    with ln.use("numba"):
        step()
        step()
        labels.value = np.array([0, 1, 2, 3, 0, 1, 2, 0])
        with pytest.raises(LabelError, match="label 3 at index 3"):
            step()


def test_replayed_steps_skip_the_graph_walk(monkeypatch):
    calls = []
    real = replay_module.forward
    monkeypatch.setattr(replay_module, "forward", lambda node: (calls.append(node), real(node))[1])
    x, labels, params, loss = mlp()
    step = Replay(loss)
    with ln.use("numba"):
        for xb, yb in batches(rows=(8, 8, 8, 8)):
            x.value, labels.value = xb, yb
            step()
    assert len(calls) == 1  # the recording; the other three steps were replayed


@pytest.mark.parametrize("backend", ["python", "cuda"])
def test_other_backends_run_every_step_as_written(backend):
    x, labels, params, loss = mlp(batch=4)
    step = Replay(loss)
    with ln.use(backend):
        first = step()
        second = step()
    assert step.recordings == {} and first == second


@pytest.mark.parametrize("make", [
    lambda h: ln.dropout(h, 0.5, seed=0),
    lambda h: ln.batch_norm(h, ln.Parameter(np.ones(6)), ln.Parameter(np.zeros(6))),
], ids=["dropout", "batch_norm"])
def test_a_graph_with_host_side_work_each_step_is_never_replayed(make):
    x = ln.Input(np.random.default_rng(0).standard_normal((8, 6)), name="x")
    W = ln.Parameter(np.random.default_rng(1).standard_normal((6, 3)), name="W")
    loss = ln.mean(ln.square(ln.matmul(make(x), W)))
    step = Replay(loss)
    assert "does host-side work each step" in step.refusal
    with ln.use("numba"):
        step()
        step()
    assert step.recordings == {}


def test_a_computed_label_is_checked_when_a_plain_forward_would_check_it():
    """The labels here are computed (2t - 1), so they can only be checked after the step's
    earlier loops: a replay checks them at the same point, not before the step."""
    x = ln.Input(np.ones((4, 2)), name="x")
    w = ln.Parameter(np.full((2, 1), 0.5), name="w")
    t = ln.Input(np.array([[0.0], [1.0], [1.0], [0.0]]), name="t")
    loss = ln.logistic_loss(ln.matmul(x, w), 2 * t - 1)
    step = Replay(loss)
    with ln.use("numba"):
        step()
        step()
        t.value = np.full((4, 1), 0.5)  # labels 0.0: not -1 or +1
        with pytest.raises(LabelError):
            step()
        t.value = np.array([[1.0], [0.0], [0.0], [1.0]])
        got = step()
        assert got == float(ln.forward(loss))


def test_a_value_kept_from_an_earlier_step_is_not_overwritten():
    x, labels, params, loss = mlp()
    step = Replay(loss)
    data = batches(rows=(8, 8, 8))
    with ln.use("numba"):
        x.value, labels.value = data[0]
        step()
        kept = x.value
        for xb, yb in data[1:]:
            x.value, labels.value = xb, yb
            step()
    np.testing.assert_array_equal(kept, data[0][0])


def test_a_replay_calls_drivers_directly_only_after_each_settled_kernel_ran_through_the_backend(monkeypatch):
    # the launch that first runs the variant a grid settles on loads or compiles its kernel:
    # it goes through numba_backend._run, which turns a compile error into one line and
    # drops a damaged cache entry; only the steps after it call the drivers directly
    from loopnet.backends import numba_backend

    numba_backend.check_available()
    monkeypatch.setattr(numba_backend, "_settled", {})
    monkeypatch.setattr(numba_backend, "_timed", {})
    monkeypatch.setattr(numba_backend, "SERIAL_BELOW_SECONDS", 1.0)  # every grid settles serial
    monkeypatch.setattr(numba_backend, "PARALLEL_MIN_POINTS", 0)  # after guessing parallel
    ran = []
    real_run = numba_backend._run
    monkeypatch.setattr(numba_backend, "_run", lambda body, parallel, grid, args: (ran.append((body, grid, parallel)), real_run(body, parallel, grid, args)))
    x, labels, params, loss = mlp()
    step = Replay(loss)
    with ln.use("numba"):
        for xb, yb in batches(rows=(8,) * 8):
            x.value, labels.value = xb, yb
            step()
    launched = {(body, grid) for body, grid, _ in ran}
    assert {(body, grid) for body, grid, parallel in ran if not parallel} == launched  # each ran serial via _run
    assert step.recordings[next(iter(step.recordings))].calls is not None
    assert len(ran) < 8 * len(launched)  # and the last steps went straight to the drivers
