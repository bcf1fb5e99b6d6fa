"""`cli.py train` and `cli.py evaluate`: runs, checkpoints, Ctrl-C, and every bad input."""

import hashlib
import os

import pytest
from click.testing import CliRunner

from loopnet import training
from loopnet.cli import training as train_commands
from loopnet.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args))


def fails_cleanly(result, fragment, code=1):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_train_xor_prints_a_line_per_epoch_and_the_test_accuracy():
    result = run("train", "xor", "--epochs", "300")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 300
    assert "train loss" in lines[0] and "val acc" in lines[0]
    assert lines[-1].startswith("test accuracy 100.00%")


def test_train_then_evaluate_from_the_checkpoint(tmp_path):
    ck = str(tmp_path / "mlp.npz")
    assert run("train", "mlp", "--epochs", "2", "--width", "16", "--checkpoint", ck).exit_code == 0
    result = run("evaluate", "mlp", "--checkpoint", ck)
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.stdout and "confusion matrix" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()[-10:]]
    assert [row[0] for row in rows] == [str(k) for k in range(10)] and all(len(row) == 11 for row in rows)


def test_resume_continues_from_the_saved_epoch(tmp_path):
    ck = str(tmp_path / "ck.npz")
    run("train", "mlp", "--epochs", "1", "--width", "8", "--checkpoint", ck)
    result = run("train", "mlp", "--epochs", "3", "--width", "8", "--resume", ck, "--checkpoint", ck)
    assert result.exit_code == 0, result.output
    assert "resumed from" in result.stdout and "epoch   2/3" in result.stdout and "epoch   1/3" not in result.stdout
    assert training.load_checkpoint(ck)[0]["state"]["epoch"] == 3


def test_ctrl_c_keeps_the_last_finished_epoch(tmp_path, monkeypatch):
    ck = str(tmp_path / "ck.npz")
    original = train_commands._Progress.on_epoch

    def interrupt_after_two(self, record):
        original(self, record)
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_commands._Progress, "on_epoch", interrupt_after_two)
    result = run("train", "mlp", "--epochs", "5", "--width", "8", "--checkpoint", ck)
    assert result.exit_code == 130
    assert "interrupted: the checkpoint in" in result.stderr
    assert training.load_checkpoint(ck)[0]["state"]["epoch"] == 2


def test_training_on_mnist_idx_files(tmp_path):
    from tests.test_training import write_mnist

    write_mnist(tmp_path, n_train=36, n_test=8)
    result = run("train", "mlp", "--data-dir", str(tmp_path), "--epochs", "1", "--width", "8")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args,fragment", [
    (["train", "resnet"], "unknown model 'resnet'"),
    (["train", "mlp", "--data-dir", "/no/such/dir"], "is not a directory"),
    (["train", "mlp", "--data", "cifar"], "unknown data set 'cifar'"),
    (["train", "mlp", "--data", "blobs", "--data-dir", "/tmp"], "--data-dir is for mnist"),
    (["train", "xor", "--data", "digits"], "two-class model"),
    (["train", "mlp", "--checkpoint", "/no/such/dir/ck.npz"], "does not exist"),
    (["train", "mlp", "--resume", "/no/such/ck.npz"], "no checkpoint at"),
    (["evaluate", "mlp", "--checkpoint", "/no/such/ck.npz"], "no checkpoint at"),
    (["evaluate", "resnet", "--checkpoint", "x.npz"], "unknown model 'resnet'"),
])
def test_bad_input_is_one_line_and_exit_1(args, fragment):
    fails_cleanly(run(*args), fragment)


@pytest.mark.parametrize("option,value,fragment", [
    ("--lr", "-0.1", "is not a positive finite number"), ("--lr", "inf", "is not a positive finite number"),
    ("--lr", "nan", "is not a positive finite number"), ("--epochs", "0", "is not in the range x>=1"),
    ("--batch-size", "0", "is not in the range x>=1"), ("--width", "-5", "is not in the range x>=1"),
    ("--width", "0", "is not in the range x>=1"), ("--seed", "-1", "is not in the range x>=0"),
    ("--patience", "-1", "is not in the range x>=1"), ("--lr-patience", "-1", "is not in the range x>=0"),
    ("--momentum", "1", "is not a momentum mu in [0, 1)"), ("--clip", "0", "is not a positive finite number"),
    ("--weight-decay", "-1", "is not a finite number >= 0"),
])
def test_a_bad_option_value_is_a_usage_error_before_any_work(option, value, fragment):
    result = run("train", "mlp", option, value)
    assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output


def test_a_checkpoint_of_another_shape_is_refused_and_nothing_is_overwritten(tmp_path):
    ck = str(tmp_path / "ck.npz")
    run("train", "mlp", "--epochs", "1", "--width", "8", "--checkpoint", ck)
    before = digest(ck)
    fails_cleanly(run("train", "mlp", "--width", "9", "--resume", ck, "--checkpoint", ck), "another model: width 8 vs 9")
    fails_cleanly(run("evaluate", "convnet", "--checkpoint", ck), "holds a mlp model, not convnet")
    assert digest(ck) == before


def test_a_corrupt_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    fails_cleanly(run("evaluate", "mlp", "--checkpoint", str(bad)), "is not a loopnet checkpoint")
    fails_cleanly(run("train", "mlp", "--resume", str(bad)), "is not a loopnet checkpoint")


def test_plot_without_matplotlib_fails_before_any_work(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    ck = str(tmp_path / "ck.npz")
    fails_cleanly(run("train", "xor", "--plot", str(tmp_path / "c.png"), "--checkpoint", ck), "--plot needs matplotlib")
    assert not os.path.exists(ck)


def test_plot_writes_a_png_when_matplotlib_is_there(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    assert run("train", "xor", "--epochs", "20", "--plot", str(path)).exit_code == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
