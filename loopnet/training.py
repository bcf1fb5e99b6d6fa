"""Training: minibatch SGD-style epochs, learning-rate halving, early stopping, checkpoints.

    model = models.build("mlp", data.input_shape, data.classes)
    history = train(model, data, TrainConfig(epochs=10, lr=0.1))

Per epoch: shuffle (seeded by seed and epoch), one optimizer step per minibatch (the loss
is a mean, so gradients are averaged over the batch), then validation accuracy. If it has
not improved for `lr_patience` epochs the learning rate is halved; after `patience`
epochs without improvement training stops early and the best parameters are restored.

Checkpoints are NumPy .npz files without pickle, written to a temporary file and renamed,
so a crash or Ctrl-C never leaves half a file: parameters, optimizer state, the best
parameters so far, the config and history. Every random choice is seeded by (seed,
epoch), so resuming from a checkpoint continues exactly as the uninterrupted run would.
"""

import contextlib
import glob
import json
import math
import os
import stat
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field

import numpy as np

import loopnet as ln
from loopnet import init, models
from loopnet.errors import LoopnetError
from loopnet.optim import OPTIMIZERS, make_optimizer
from loopnet.replay import Replay


class CheckpointError(LoopnetError, ValueError):
    """A checkpoint that is missing, corrupt, or of another model."""


@dataclass
class TrainConfig:
    epochs: int = 10
    lr: float = 0.1
    batch_size: int = 32
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    clip: float = None
    seed: int = 0
    lr_patience: int = 3  # epochs without improvement before the learning rate halves
    patience: int = None  # epochs without improvement before stopping (None: never)
    data: str = None  # the data set's name, kept in checkpoints for `evaluate`


@dataclass
class State:
    epoch: int = 0  # epochs completed
    lr: float = 0.0
    best_accuracy: float = -1.0
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the best
    history: list = field(default_factory=list)
    best_params: dict = field(default_factory=dict)


def accuracy(model, split):
    return float(np.mean(model.predict(split.x) == split.y)) if len(split.y) else float("nan")


def confusion_matrix(truth, predicted, classes):
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def batches(n, batch_size, seed, epoch, smallest=1):
    """The epoch's minibatches: a seeded shuffle cut into batch_size pieces. A last piece
    smaller than `smallest` joins the one before (batch_norm needs two examples)."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    pieces = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if len(pieces) > 1 and len(pieces[-1]) < smallest:
        pieces[-2:] = [np.concatenate(pieces[-2:])]
    return pieces


def train(model, data, config, state=None, optimizer=None, checkpoint=None, on_batch=None, on_epoch=None):
    """Train `model` on `data`; returns the State (with its history).

    on_batch(i, n_batches, loss) and on_epoch(record) report progress. With `checkpoint`
    a path, the state is saved after every epoch. Ctrl-C (KeyboardInterrupt) propagates
    after the last finished epoch has been saved.
    """
    state = state or State(lr=config.lr)
    optimizer = optimizer or make_optimizer(config.optimizer, model.params, state.lr, config.momentum,
                                            config.weight_decay, config.clip)
    train_x, train_y = data.train
    step = Replay(model.loss)
    while state.epoch < config.epochs:
        epoch = state.epoch + 1
        started = time.perf_counter()
        for op in model.dropouts:
            op.reseed([config.seed, epoch])
        optimizer.lr = state.lr
        model.set_training(True)
        losses = []
        order = batches(len(train_x), config.batch_size, config.seed, epoch, smallest=2 if model.norms else 1)
        for i, index in enumerate(order):
            model.set_batch(train_x[index], train_y[index])
            losses.append(step())  # forward and backward, replayed on numba (loopnet.replay)
            optimizer.step()
            if on_batch:
                on_batch(i + 1, len(order), losses[-1])
        val_accuracy = accuracy(model, data.val)
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_accuracy": val_accuracy,
                  "lr": state.lr, "seconds": time.perf_counter() - started}
        state.history.append(record)
        state.epoch = epoch
        if val_accuracy > state.best_accuracy:
            state.best_accuracy, state.best_epoch, state.stale_epochs = val_accuracy, epoch, 0
            state.best_params = model.state_arrays()
        else:
            state.stale_epochs += 1
            if config.lr_patience and state.stale_epochs % config.lr_patience == 0:
                state.lr /= 2
        stop = config.patience is not None and state.stale_epochs >= config.patience
        if checkpoint:
            save_checkpoint(checkpoint, model, config, state, optimizer)
        if on_epoch:
            on_epoch(record)
        if stop:
            break
    if state.best_params and (config.patience is not None):
        model.load_arrays(state.best_params)
    return state


# ---------------------------------------------------------------------------------------
# Checkpoints: .npz without pickle, written atomically


class OutputError(LoopnetError, OSError):
    """A file the run was asked to write cannot be written (a missing or read-only
    directory, a full disk): said before any work where possible, in one line always."""


def check_writable(path, what):
    """Refuse now, before any work, an output path that cannot be written: its directory
    must exist and take a new file (a probe file is made and removed: permission bits
    alone do not say, e.g. for root or on a read-only file system)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"the directory for {what} {path} does not exist")
    if os.path.isdir(path):
        raise OutputError(f"{what} {path} is a directory; give a file name")
    try:
        handle, probe = tempfile.mkstemp(dir=directory, prefix=".loopnet-probe-")
        os.close(handle)
        os.remove(probe)
    except OSError as err:
        raise OutputError(f"cannot write {what} {path}: {err.strerror or err}") from None


def save_checkpoint(path, model, config, state, optimizer):
    """Write the run's state to `path` atomically: a temporary file beside it, renamed
    over it, so readers see the old file or the new, never half. An existing file keeps its
    permission bits; temporaries left by a killed run are removed first."""
    arrays = {f"param/{name}": value for name, value in model.parameter_arrays().items()}
    arrays.update({f"buffer/{name}": value for name, value in model.buffer_arrays().items()})
    arrays.update({f"best/{name}": value for name, value in state.best_params.items()})
    opt_arrays, opt_meta = optimizer.state_dict()
    arrays.update({f"optim/{key}": value for key, value in opt_arrays.items()})
    meta = {
        "format": "loopnet-checkpoint-1",
        "model": model.config,
        "train": asdict(config),
        "state": {k: v for k, v in asdict(state).items() if k != "best_params"},
        "optimizer": opt_meta,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    directory, prefix = os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp-"
    for stale in glob.glob(os.path.join(glob.escape(directory), glob.escape(prefix) + "*")):
        with contextlib.suppress(OSError):
            os.remove(stale)
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=prefix)
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except BaseException as err:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)
        if isinstance(err, OSError):
            raise OutputError(f"cannot write the checkpoint {path}: {err.strerror or err}") from None
        raise


def _mode_for(path):
    """An existing file's permission bits; for a new file, what open() would give (0666
    less the umask), not mkstemp's private 0600: a checkpoint is shared like any file."""
    if os.path.exists(path):
        return stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def load_checkpoint(path):
    """(meta, arrays) from a checkpoint; CheckpointError if missing, corrupt, or holding
    anything a checkpoint never holds. Array headers are checked against their sizes before
    NumPy allocates anything, and the meta against the schema below."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        _check_members(path)
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(str(arrays.pop("meta")))
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, MemoryError) as err:
        raise CheckpointError(f"{path} is not a loopnet checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(meta, dict) or meta.get("format") != "loopnet-checkpoint-1":
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path} is not a loopnet checkpoint (format {got!r})")
    _check_meta(meta, path)
    return meta, arrays


def _check_members(path):
    """Each array's header against the bytes its member really holds: a header claiming
    1e11 elements would otherwise be allocated before anything could say it is wrong."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(member)
                if math.prod(shape) * dtype.itemsize > info.file_size:
                    raise CheckpointError(f"{path} is corrupt: {info.filename} claims shape {shape} "
                                          f"but holds {info.file_size} bytes")


def _whole(low, high=10**6):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _real(low=-math.inf, high=math.inf, low_open=False):
    return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                      and (v > low if low_open else v >= low) and v <= high)


def _optional(check):
    return lambda v: v is None or check(v)


# What each part of a checkpoint's meta may hold: anything else was not written by loopnet.
_SCHEMA = {
    "model": {
        "name": lambda v: v in models.MODELS, "classes": _whole(2, 10**5), "width": _optional(_whole(1, 10**5)),
        "input_shape": lambda v: isinstance(v, list) and 1 <= len(v) <= 2 and all(map(_whole(1, 10**5), v)),
        "channels": _whole(1, 10**4), "dropout": _real(0, 0.999999), "init": lambda v: v in init.SCHEMES,
        "dtype": lambda v: v in ("float32", "float64"),
    },
    "model?": {"batch_norm": lambda v: isinstance(v, bool)},  # optional: older checkpoints lack it
    "train": {
        "epochs": _whole(1), "lr": _real(0, low_open=True), "batch_size": _whole(1),
        "optimizer": lambda v: v in OPTIMIZERS, "momentum": _real(0, 0.999999), "weight_decay": _real(0),
        "clip": _optional(_real(0, low_open=True)), "seed": _whole(0, 2**63), "lr_patience": _whole(0),
        "patience": _optional(_whole(0)), "data": _optional(lambda v: isinstance(v, str)),
    },
    "state": {
        "epoch": _whole(0), "lr": _real(0, low_open=True), "best_accuracy": _real(-1, 1), "best_epoch": _whole(0),
        "stale_epochs": _whole(0), "history": lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v),
    },
    "optimizer": {"steps": _whole(0, 2**63), "lr": _real(0, low_open=True)},
}
_EXACT = ("state", "optimizer")  # rebuilt from these keys alone: an extra key is an error too


def _check_meta(meta, path):
    for part, fields in _SCHEMA.items():
        if part.endswith("?"):
            part = part[:-1]
            for key, check in fields.items():
                if key in meta[part] and not check(meta[part][key]):
                    raise CheckpointError(f"{path} is not a usable checkpoint: {part}.{key} is {meta[part][key]!r}")
            continue
        section = meta.get(part)
        if not isinstance(section, dict):
            raise CheckpointError(f"{path} is not a usable checkpoint: its {part!r} is {type(section).__name__}")
        for key, check in fields.items():
            if key not in section:
                raise CheckpointError(f"{path} is not a usable checkpoint: {part}.{key} is missing")
            if not check(section[key]):
                raise CheckpointError(f"{path} is not a usable checkpoint: {part}.{key} is {section[key]!r}")
        extra = set(section) - set(fields)
        if part in _EXACT and extra:
            raise CheckpointError(f"{path} is not a usable checkpoint: {part} has unknown {sorted(extra)}")


# What makes two models the same model: a checkpoint of one cannot continue as the other.
MODEL_KEYS = ("name", "input_shape", "classes", "width", "channels", "dropout", "init", "dtype", "batch_norm")


def saved_setting(config, key):
    """A model setting of a checkpoint's config. Older checkpoints say None for the model's
    default width (widths were resolved at build time later) and lack batch_norm."""
    if key == "batch_norm":
        return config.get("batch_norm", False)
    width = config.get("width")
    if key == "width" and width is None and config.get("name") in models.MODELS:
        return models.MODELS[config["name"]].width
    return config.get(key)


def model_from_checkpoint(meta, arrays, expected=None):
    """Rebuild the checkpoint's model and load its parameters. With `expected` (a model
    config), refuse a checkpoint of another model or shape, naming the difference."""
    config = meta["model"]
    if expected is not None:  # (a None in `expected` asks for nothing in particular)
        differences = [f"{k} {saved_setting(config, k)!r} vs {expected.get(k)!r}" for k in MODEL_KEYS
                       if expected.get(k) is not None and saved_setting(config, k) != expected.get(k)]
        if differences:
            raise CheckpointError(f"the checkpoint is of another model: {'; '.join(differences)} (checkpoint vs asked)")
    model = models.build(config["name"], tuple(config["input_shape"]), config["classes"], width=config["width"],
                         channels=config["channels"], dropout=config["dropout"], init_scheme=config["init"],
                         dtype=config["dtype"], vocab=config.get("vocab", 8), batch_norm=config.get("batch_norm", False))
    saved = {}
    for kind, wanted in (("param", model.parameter_arrays()), ("buffer", model.buffer_arrays())):
        for name, array in wanted.items():
            key = f"{kind}/{name}"
            if key not in arrays or arrays[key].shape != array.shape or arrays[key].dtype.kind not in "fiu":
                raise CheckpointError(f"checkpoint {'parameter' if kind == 'param' else 'buffer'} {name!r} "
                                      f"is missing or has the wrong shape or type")
            saved[name] = arrays[key]
    model.load_arrays(saved)
    return model


def _check_best(best, current, path):
    """The best epoch's arrays (if any were saved) must be the model's parameters and
    buffers, shape for shape: checked now, not when early stopping restores them."""
    if not best:
        return
    if set(best) != set(current):
        raise CheckpointError(f"{path} is not a usable checkpoint: its best-epoch arrays are "
                              f"{sorted(set(best) ^ set(current))} away from the model's")
    for name, array in best.items():
        if array.shape != current[name].shape or array.dtype.kind not in "fiu":
            raise CheckpointError(f"{path} is not a usable checkpoint: best/{name} has shape {array.shape} "
                                  f"and dtype {array.dtype}, the model's {current[name].shape}")


def resume(path, model, config):
    """The State and optimizer saved in `path`, loaded into `model` (already built)."""
    meta, arrays = load_checkpoint(path)
    model.load_arrays(model_from_checkpoint(meta, arrays, expected=model.config).state_arrays())  # shapes checked
    saved = meta["state"]
    best = {k[5:]: v for k, v in arrays.items() if k.startswith("best/")}
    _check_best(best, model.state_arrays(), path)
    state = State(**saved, best_params=best)
    optimizer = make_optimizer(config.optimizer, model.params, state.lr, config.momentum, config.weight_decay, config.clip)
    if meta["train"]["optimizer"] != config.optimizer:
        raise CheckpointError(f"the checkpoint was trained with {meta['train']['optimizer']!r}, not {config.optimizer!r}")
    optimizer.load_state({k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}, meta["optimizer"])
    return state, optimizer
