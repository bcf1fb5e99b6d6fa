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

import json
import os
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field

import numpy as np

import loopnet as ln
from loopnet import models
from loopnet.errors import LoopnetError
from loopnet.optim import make_optimizer


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


def batches(n, batch_size, seed, epoch):
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


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
    while state.epoch < config.epochs:
        epoch = state.epoch + 1
        started = time.perf_counter()
        for op in model.dropouts:
            op.reseed([config.seed, epoch])
        optimizer.lr = state.lr
        model.set_training(True)
        losses = []
        order = batches(len(train_x), config.batch_size, config.seed, epoch)
        for i, index in enumerate(order):
            model.set_batch(train_x[index], train_y[index])
            losses.append(float(ln.forward(model.loss)))
            ln.backward(model.loss)
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
            state.best_params = model.parameter_arrays()
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
        restore(model, state.best_params)
    return state


def restore(model, arrays):
    for p in model.params:
        p.value = arrays[p.name]


# ---------------------------------------------------------------------------------------
# Checkpoints: .npz without pickle, written atomically


def save_checkpoint(path, model, config, state, optimizer):
    arrays = {f"param/{name}": value for name, value in model.parameter_arrays().items()}
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
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".checkpoint-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
        os.replace(temporary, path)  # atomic: readers see the old file or the new, never half
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def load_checkpoint(path):
    """(meta, arrays) from a checkpoint; CheckpointError if missing or corrupt."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path} is not a loopnet checkpoint ({type(err).__name__}: {err})") from None
    if meta.get("format") != "loopnet-checkpoint-1":
        raise CheckpointError(f"{path} is not a loopnet checkpoint (format {meta.get('format')!r})")
    return meta, arrays


def _saved_width(config):
    """The width a checkpoint's model has: checkpoints written before widths were resolved
    at build time say None for the model's default."""
    width = config.get("width")
    return models.MODELS[config["name"]].width if width is None and config.get("name") in models.MODELS else width


def model_from_checkpoint(meta, arrays, expected=None):
    """Rebuild the checkpoint's model and load its parameters. With `expected` (a model
    config), refuse a checkpoint of another model or shape, naming the difference."""
    config = meta["model"]
    if expected is not None:  # (a None in `expected` asks for nothing in particular)
        keys = ("name", "input_shape", "classes", "width", "channels", "dropout", "init", "dtype")
        differences = [f"{k} {_saved_width(config) if k == 'width' else config.get(k)!r} vs {expected.get(k)!r}"
                       for k in keys if expected.get(k) is not None
                       and (_saved_width(config) if k == "width" else config.get(k)) != expected.get(k)]
        if differences:
            raise CheckpointError(f"the checkpoint is of another model: {'; '.join(differences)} (checkpoint vs asked)")
    model = models.build(config["name"], tuple(config["input_shape"]), config["classes"], width=config["width"],
                         channels=config["channels"], dropout=config["dropout"], init_scheme=config["init"],
                         dtype=config["dtype"], vocab=config.get("vocab", 8))
    for p in model.params:
        key = f"param/{p.name}"
        if key not in arrays or arrays[key].shape != p.shape:
            raise CheckpointError(f"checkpoint parameter {p.name!r} is missing or has the wrong shape")
        p.value = arrays[key]
    return model


def resume(path, model, config):
    """The State and optimizer saved in `path`, loaded into `model` (already built)."""
    meta, arrays = load_checkpoint(path)
    model_from_checkpoint(meta, arrays, expected=model.config)  # validates shapes
    restore(model, {p.name: arrays[f"param/{p.name}"] for p in model.params})
    saved = meta["state"]
    state = State(**saved, best_params={k[5:]: v for k, v in arrays.items() if k.startswith("best/")})
    optimizer = make_optimizer(config.optimizer, model.params, state.lr, config.momentum, config.weight_decay, config.clip)
    if meta["train"]["optimizer"] != config.optimizer:
        raise CheckpointError(f"the checkpoint was trained with {meta['train']['optimizer']!r}, not {config.optimizer!r}")
    optimizer.load_state({k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}, meta["optimizer"])
    return state, optimizer
