"""Checkpoints whose contents were made by hand (or by another program): each is one
CheckpointError naming what is wrong, before anything is built or allocated."""

import io
import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from loopnet import training
from loopnet.cli import main


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ck") / "good.npz")
    assert CliRunner().invoke(main, ["train", "xor", "--epochs", "2", "--checkpoint", path]).exit_code == 0
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def write(path, meta, arrays):
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return str(path)


def edited(meta, part, key, value):
    meta = json.loads(json.dumps(meta))
    if key is None:
        meta[part] = value
    elif value is KeyError:
        del meta[part][key]
    else:
        meta[part][key] = value
    return meta


@pytest.mark.parametrize("part,key,value,fragment", [
    ("model", None, [1, 2], "its 'model' is list"),
    ("state", None, "two", "its 'state' is str"),
    ("model", "width", 10**12, "model.width is 1000000000000"),
    ("model", "name", "resnet", "model.name is 'resnet'"),
    ("model", "input_shape", [2, -1], "model.input_shape is [2, -1]"),
    ("state", "epoch", "two", "state.epoch is 'two'"),
    ("state", "epoch", KeyError, "state.epoch is missing"),
    ("state", "surprise", 1, "state has unknown ['surprise']"),
    ("train", "lr", float("nan"), "train.lr is nan"),
    ("train", "optimizer", "sgdx", "train.optimizer is 'sgdx'"),
    ("optimizer", "steps", -1, "optimizer.steps is -1"),
])
def test_a_meta_loopnet_never_writes_is_refused(tmp_path, good, part, key, value, fragment):
    meta, arrays = good
    path = write(tmp_path / "ck.npz", edited(meta, part, key, value), arrays)
    with pytest.raises(training.CheckpointError, match="is not a usable checkpoint: " + fragment.replace("[", r"\[")):
        training.load_checkpoint(path)
    result = CliRunner().invoke(main, ["evaluate", "xor", "--checkpoint", path])
    assert result.exit_code == 1 and "Traceback" not in result.output and len(result.stderr.splitlines()) == 1


def test_a_meta_that_is_not_an_object_is_refused(tmp_path, good):
    _, arrays = good
    for meta in ([1, 2], "a string"):
        with pytest.raises(training.CheckpointError, match="is not a loopnet checkpoint"):
            training.load_checkpoint(write(tmp_path / "ck.npz", meta, arrays))


def test_an_array_claiming_more_elements_than_it_holds_is_refused_before_allocating(tmp_path, good):
    meta, arrays = good
    path = tmp_path / "ck.npz"
    write(path, meta, arrays)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)})
    members["param/W1.npy"] = header.getvalue() + b"\x00" * 64
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(training.CheckpointError, match=r"param/W1.npy claims shape \(100000000000,\)"):
        training.load_checkpoint(str(path))


def test_a_good_checkpoint_still_loads(tmp_path, good):
    meta, arrays = good
    loaded_meta, loaded = training.load_checkpoint(write(tmp_path / "ck.npz", meta, arrays))
    assert loaded_meta == meta and set(loaded) == set(arrays)


def test_a_text_file_is_not_a_checkpoint_and_says_nothing_of_pickles(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    for args in (["train", "xor", "--resume", str(path)], ["evaluate", "xor", "--checkpoint", str(path)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "is not a loopnet checkpoint (BadZipFile" in result.stderr
        assert "pickle" not in result.stderr
