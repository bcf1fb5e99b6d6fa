"""Files a training run writes: never a file it should not replace, every output path
checked before the work, and a write that fails mid-run is one line saying what was kept.

CI runs as root, where permission bits do not stop a write, so write failures are made
by raising the OSError (EACCES, ENOSPC, EROFS) at the point of writing."""

import errno
import os
import stat
import tempfile

import pytest
from click.testing import CliRunner

from loopnet import training
from loopnet.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args))


def one_line_error(result, fragment, code=1):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 1 and fragment in lines[-1], result.stderr
    assert all(not line.startswith("error:") for line in lines[:-1])


def test_a_checkpoint_never_replaces_a_file_that_is_not_one(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    one_line_error(run("train", "xor", "--epochs", "1", "--checkpoint", str(notes)), "holds something else")
    assert notes.read_text() == "my notes\n"
    assert run("train", "xor", "--epochs", "1", "--checkpoint", str(notes), "--overwrite").exit_code == 0
    assert training.load_checkpoint(str(notes))[0]["state"]["epoch"] == 1


def test_a_checkpoint_never_replaces_another_models_run(tmp_path):
    ck = str(tmp_path / "ck.npz")
    assert run("train", "xor", "--epochs", "1", "--checkpoint", ck, "--width", "3").exit_code == 0
    before = open(ck, "rb").read()
    one_line_error(run("train", "xor", "--epochs", "1", "--checkpoint", ck), "holds another model's run (width 3)")
    one_line_error(run("train", "logistic", "--epochs", "1", "--checkpoint", ck), "holds another model's run (name 'xor'")
    assert open(ck, "rb").read() == before
    assert run("train", "xor", "--epochs", "2", "--checkpoint", ck, "--width", "3").exit_code == 0  # the same model: a rerun


def test_a_checkpoint_keeps_the_mode_of_the_file_it_replaces_and_a_new_one_is_not_private(tmp_path):
    ck = str(tmp_path / "ck.npz")
    assert run("train", "xor", "--epochs", "1", "--checkpoint", ck).exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(ck).st_mode) == 0o666 & ~umask
    os.chmod(ck, 0o640)
    assert run("train", "xor", "--epochs", "2", "--checkpoint", ck).exit_code == 0
    assert stat.S_IMODE(os.stat(ck).st_mode) == 0o640


def test_temporaries_left_by_a_killed_run_are_cleaned_at_the_next_save(tmp_path):
    ck = tmp_path / "ck.npz"
    stale = tmp_path / ".ck.npz.tmp-abc123"
    stale.write_bytes(b"")  # what kill -9 mid-save leaves
    assert run("train", "xor", "--epochs", "1", "--checkpoint", str(ck)).exit_code == 0
    assert not stale.exists() and sorted(os.listdir(tmp_path)) == ["ck.npz"]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_an_unwritable_output_directory_is_refused_before_any_work(tmp_path, monkeypatch, code):
    real = tempfile.mkstemp

    def refusing(*args, dir=None, **kwargs):
        if dir == str(tmp_path):
            raise OSError(code, os.strerror(code))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refusing)
    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("trained before checking the outputs"))
    one_line_error(run("train", "xor", "--checkpoint", str(tmp_path / "ck.npz")), "cannot write --checkpoint")
    pytest.importorskip("matplotlib")
    one_line_error(run("train", "xor", "--plot", str(tmp_path / "c.png")), os.strerror(code))


def test_plot_paths_are_checked_before_any_work(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("trained before checking the outputs"))
    one_line_error(run("train", "xor", "--plot", str(tmp_path / "curves.txt")), "give a name ending in .png")
    one_line_error(run("train", "xor", "--plot", str(tmp_path / "missing" / "c.png")), "does not exist")


def test_a_full_disk_mid_run_is_one_line_saying_what_was_kept(tmp_path, monkeypatch):
    ck = str(tmp_path / "ck.npz")
    real_savez, calls = training.np.savez, []

    def fills_up(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # epochs 1 and 2 are saved, epoch 3 meets a full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_savez(*args, **kwargs)

    monkeypatch.setattr(training.np, "savez", fills_up)
    result = run("train", "xor", "--epochs", "5", "--checkpoint", ck)
    one_line_error(result, "cannot write the checkpoint")
    assert "No space left on device" in result.stderr and f"the checkpoint in {ck} holds the last epoch saved" in result.stderr
    assert training.load_checkpoint(ck)[0]["state"]["epoch"] == 2
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]  # no temporary left behind
