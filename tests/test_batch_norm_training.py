"""Models with batch_norm: running statistics learned in training, used in evaluation, kept
by checkpoints and by resume; the CLI's --batch-norm."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import loopnet as ln
from loopnet import models, training
from loopnet.cli import main
from tests.test_training import tiny_digits


def _build(model="mlp", data=None, seed=3, **options):
    data = data or tiny_digits()
    return models.build(model, data.input_shape, data.classes, width=12, channels=4, seed=seed, batch_norm=True,
                        **options)


@pytest.mark.parametrize("model", ["mlp", "convnet"])
def test_training_moves_the_running_statistics_and_evaluation_uses_them(model):
    data = tiny_digits()
    net = _build(model, data)
    (norm,) = net.norms
    assert norm.op_name == "batch_norm" and {"gamma_" in p.name for p in net.params} == {True, False}
    with ln.use("numba"):
        state = training.train(net, data, training.TrainConfig(epochs=3, lr=0.05, batch_size=16, lr_patience=0))
    assert state.history[-1]["train_loss"] < state.history[0]["train_loss"]
    assert not np.allclose(norm.op.running_mean, 0) and not np.allclose(norm.op.running_var, 1)
    # evaluation mode: the same example gives the same prediction alone or in any batch
    alone = np.concatenate([net.predict(data.test.x[i:i + 1]) for i in range(8)])
    np.testing.assert_array_equal(alone, net.predict(data.test.x[:8]))


def test_a_last_batch_of_one_example_joins_the_one_before():
    assert [len(b) for b in training.batches(33, 16, 0, 1)] == [16, 16, 1]
    assert [len(b) for b in training.batches(33, 16, 0, 1, smallest=2)] == [16, 17]
    data = tiny_digits(33)
    with ln.use("numba"):  # would stop with "training needs more than one value per channel"
        training.train(_build(data=data), data, training.TrainConfig(epochs=1, batch_size=16))


def test_checkpoint_keeps_the_running_statistics_and_resume_continues_exactly(tmp_path):
    data, path = tiny_digits(), str(tmp_path / "ck.npz")
    config = training.TrainConfig(epochs=3, lr=0.05, optimizer="momentum", batch_size=16, seed=2, lr_patience=0)
    with ln.use("numba"):
        straight = _build(data=data)
        training.train(straight, data, config)
        first = _build(data=data)
        training.train(first, data, training.TrainConfig(**{**config.__dict__, "epochs": 2}), checkpoint=path)
        second = _build(data=data)
        state, optimizer = training.resume(path, second, config)
        np.testing.assert_array_equal(second.norms[0].op.running_var, first.norms[0].op.running_var)
        training.train(second, data, config, state, optimizer)
    for name, value in straight.state_arrays().items():
        np.testing.assert_array_equal(second.state_arrays()[name], value, err_msg=name)
    meta, arrays = training.load_checkpoint(path)
    assert meta["model"]["batch_norm"] is True
    assert {"buffer/hidden_in_normalised.running_mean", "buffer/hidden_in_normalised.running_var"} <= set(arrays)
    rebuilt = training.model_from_checkpoint(meta, arrays)
    np.testing.assert_array_equal(rebuilt.predict(data.test.x), first.predict(data.test.x))


def _rewrite(path, out, drop=None, meta_change=None):
    """A copy of the checkpoint at `path` with one array left out or its meta changed."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files if key != drop}
    if meta_change:
        meta = json.loads(str(arrays["meta"]))
        meta_change(meta)
        arrays["meta"] = np.array(json.dumps(meta))
    np.savez(out, **arrays)


def test_a_checkpoint_without_its_running_statistics_is_refused(tmp_path):
    data, path = tiny_digits(40), str(tmp_path / "ck.npz")
    training.train(_build(data=data), data, training.TrainConfig(epochs=1, batch_size=20), checkpoint=path)
    broken = str(tmp_path / "broken.npz")
    _rewrite(path, broken, drop="buffer/hidden_in_normalised.running_var")
    meta, arrays = training.load_checkpoint(broken)
    with pytest.raises(training.CheckpointError, match="buffer 'hidden_in_normalised.running_var' is missing"):
        training.model_from_checkpoint(meta, arrays)
    odd = str(tmp_path / "odd.npz")
    _rewrite(path, odd, meta_change=lambda meta: meta["model"].update(batch_norm="yes"))
    with pytest.raises(training.CheckpointError, match="model.batch_norm is 'yes'"):
        training.load_checkpoint(odd)


def test_a_checkpoint_from_before_batch_norm_still_loads(tmp_path):
    data, path = tiny_digits(40), str(tmp_path / "ck.npz")
    plain = models.build("mlp", data.input_shape, data.classes, width=12, channels=4)
    training.train(plain, data, training.TrainConfig(epochs=1, batch_size=40), checkpoint=path)
    old = str(tmp_path / "old.npz")
    _rewrite(path, old, meta_change=lambda meta: meta["model"].pop("batch_norm"))
    meta, arrays = training.load_checkpoint(old)
    assert not training.model_from_checkpoint(meta, arrays).norms
    with pytest.raises(training.CheckpointError, match="another model: batch_norm False vs True \\(checkpoint vs asked\\)"):
        training.resume(old, _build(data=data, seed=0), training.TrainConfig())


def test_models_without_a_place_for_batch_norm_refuse_it():
    with pytest.raises(models.ModelError, match="logistic has no layer for batch_norm"):
        models.build("logistic", (2,), 2, batch_norm=True)


def test_cli_trains_and_evaluates_with_batch_norm(tmp_path):
    runner, path = CliRunner(), str(tmp_path / "bn.npz")
    result = runner.invoke(main, ["train", "mlp", "--batch-norm", "--epochs", "1", "--width", "16", "--checkpoint", path])
    assert result.exit_code == 0, result.output
    evaluated = runner.invoke(main, ["evaluate", "mlp", "--checkpoint", path])
    assert evaluated.exit_code == 0 and "test accuracy" in evaluated.output
    refused = runner.invoke(main, ["train", "logistic", "--batch-norm"])
    assert refused.exit_code != 0 and "--batch-norm does not apply to logistic (it shapes: mlp, convnet)" in refused.output
    resumed = runner.invoke(main, ["train", "mlp", "--width", "16", "--epochs", "2", "--resume", path])
    assert resumed.exit_code == 0 and "resumed from" in resumed.output  # batch_norm comes from the checkpoint


def test_predict_restores_the_mode_it_found():
    net = _build()
    net.set_training(False)
    net.predict(tiny_digits(20).test.x[:4])
    assert net.norms[0].op.training is False  # a user's evaluation mode is not switched back on
    net.set_training(True)
    net.predict(tiny_digits(20).test.x[:4])
    assert net.norms[0].op.training is True


def test_resume_checks_the_best_epoch_arrays_before_training(tmp_path):
    data, path = tiny_digits(40), str(tmp_path / "ck.npz")
    config = training.TrainConfig(epochs=1, batch_size=20, patience=3)
    training.train(_build(data=data), data, config, checkpoint=path)
    broken = str(tmp_path / "broken.npz")
    _rewrite(path, broken, drop="best/hidden_in_normalised.running_mean")
    with pytest.raises(training.CheckpointError, match="best-epoch arrays are .*hidden_in_normalised.running_mean"):
        training.resume(broken, _build(data=data), training.TrainConfig(epochs=3, batch_size=20, patience=3))


def test_cli_refuses_batch_norm_on_one_example_batches_up_front():
    result = CliRunner().invoke(main, ["train", "mlp", "--batch-norm", "--batch-size", "1", "--epochs", "1"])
    assert result.exit_code == 1 and "needs --batch-size 2 or more" in result.output
