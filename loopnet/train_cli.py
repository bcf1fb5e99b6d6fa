"""`cli.py train` and `cli.py evaluate`: the training commands, kept apart from cli.py.

Each model has defaults that train it well (see DEFAULTS); every option overrides them.
"""

import os
import sys

import click

from loopnet.backends import BACKENDS

# Halving the lr when validation accuracy stalls helps the digit models; it would starve
# XOR, whose accuracy sits at 50% for many epochs while its loss is still falling.
DEFAULTS = {
    #            backend    epochs  lr     optimizer   batch  lr_patience
    "xor":      ("python",  300,    0.5,   "momentum", 4,     0),
    "logistic": ("python",  20,     0.1,   "sgd",      16,    0),
    "mlp":      ("numba",   30,     0.1,   "momentum", 32,    3),
    "convnet":  ("numba",   20,     0.05,  "momentum", 32,    3),
    "attention": ("numba",  30,     0.01,  "adam",     32,    0),
}


def _fail(message):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


class _Progress:
    """A progress bar per epoch on stderr, and one summary line per epoch on stdout."""

    def __init__(self, epochs):
        self.epochs, self.bar = epochs, None

    def on_batch(self, i, total, loss):
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=f"epoch {self.epoch}/{self.epochs}", file=sys.stderr,
                                         show_eta=False)
            self.bar.__enter__()
        self.bar.update(1)

    def on_epoch(self, record):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        click.echo(f"epoch {record['epoch']:>3}/{self.epochs}  train loss {record['train_loss']:.4f}  "
                   f"val acc {100 * record['val_accuracy']:6.2f}%  lr {record['lr']:.4g}  {record['seconds']:.2f} s")
        self.epoch = record["epoch"] + 1


def _plot(path, history):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [r["train_loss"] for r in history])
    left.set(xlabel="epoch", ylabel="train loss", title="loss")
    right.plot(epochs, [100 * r["val_accuracy"] for r in history])
    right.set(xlabel="epoch", ylabel="validation accuracy (%)", title="accuracy")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _data_name(model, data, data_dir):
    from loopnet.models import DEFAULT_DATA

    if data_dir and data not in (None, "mnist"):
        _fail(f"--data-dir is for mnist; it cannot be used with --data {data}")
    return "mnist" if data_dir else (data or DEFAULT_DATA[model])


@click.command()
@click.argument("model")
@click.option("--data", help="xor, and, or, nand, blobs, tokens, digits, mnist (default: the model's own).")
@click.option("--data-dir", type=click.Path(), help="Directory with the MNIST IDX files (raw or .gz); implies --data mnist.")
@click.option("--epochs", type=int, help="Epochs to train (default per model: xor 300, logistic 20, mlp 30, convnet 20).")
@click.option("--lr", type=float, help="Learning rate (default per model).")
@click.option("--batch-size", type=int, help="Minibatch size; gradients are averaged over it.")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "rmsprop", "adam"]), help="Update rule.")
@click.option("--momentum", type=float, default=0.9, show_default=True, help="mu for --optimizer momentum.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True, help="L2 penalty lambda on weights.")
@click.option("--clip", type=float, default=None, help="Clip the gradient norm to this value.")
@click.option("--dropout", type=float, default=0.0, show_default=True, help="Dropout before the last layer (mlp, convnet).")
@click.option("--width", type=int, default=None, help="Hidden units (xor 2, mlp 500; attention: embedding size, 8).")
@click.option("--channels", type=int, default=16, show_default=True, help="Convolution channels (convnet).")
@click.option("--init", "init_scheme", type=click.Choice(["uniform", "xavier", "he"]), default="uniform", show_default=True,
              help="uniform: the slides' U[-1/sqrt(n), 1/sqrt(n)].")
@click.option("--patience", type=int, default=None, help="Stop after this many epochs without a better validation accuracy.")
@click.option("--lr-patience", type=int, default=None,
              help="Halve the lr after this many epochs without a better validation accuracy (0: never; default: 3 for mlp and convnet, 0 otherwise).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds initialisation, splits, shuffling, dropout.")
@click.option("--backend", type=click.Choice(BACKENDS), help="Default: python for xor and logistic, numba for mlp and convnet.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Save here after every epoch (atomically) and keep it on Ctrl-C.")
@click.option("--resume", type=click.Path(dir_okay=False), help="Continue from this checkpoint exactly where it stopped.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save loss and accuracy curves to this PNG (needs matplotlib).")
def train(model, data, data_dir, epochs, lr, batch_size, optimizer, momentum, weight_decay, clip, dropout, width,
          channels, init_scheme, patience, lr_patience, seed, backend, dtype, checkpoint, resume, plot):
    """Train MODEL (xor, logistic, mlp, convnet, attention) and report its test accuracy.

    Shows a progress bar per epoch and one line per epoch (train loss, validation
    accuracy, learning rate, seconds). Example: `python cli.py train mlp --epochs 30`.
    """
    import loopnet as ln
    from loopnet import data as datasets, models, training

    if model not in DEFAULTS:
        _fail(f"unknown model {model!r}; choose one of: {', '.join(DEFAULTS)}")
    d_backend, d_epochs, d_lr, d_optimizer, d_batch, d_lr_patience = DEFAULTS[model]
    config = training.TrainConfig(
        epochs=d_epochs if epochs is None else epochs, lr=d_lr if lr is None else lr,
        batch_size=d_batch if batch_size is None else batch_size, optimizer=optimizer or d_optimizer,
        momentum=momentum, weight_decay=weight_decay, clip=clip, seed=seed,
        lr_patience=d_lr_patience if lr_patience is None else lr_patience,
        patience=patience, data=_data_name(model, data, data_dir),
    )
    # Check everything that can be checked before any work, so a bad option loses nothing.
    if not config.lr > 0:
        _fail(f"--lr must be positive, got {config.lr}")
    if config.epochs < 1 or config.batch_size < 1:
        _fail("--epochs and --batch-size must be at least 1")
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            _fail("--plot needs matplotlib: pip install matplotlib")
    if checkpoint and not os.path.isdir(os.path.dirname(os.path.abspath(checkpoint))):
        _fail(f"the directory for --checkpoint {checkpoint} does not exist")
    ln.use(backend or d_backend)
    dataset = datasets.load(config.data, seed=seed, data_dir=data_dir)
    net = models.build(model, dataset.input_shape, dataset.classes, width=width, channels=channels,
                       dropout=dropout, init_scheme=init_scheme, dtype=dtype, seed=seed)
    state = optimizer_state = None
    if resume:
        state, optimizer_state = training.resume(resume, net, config)
        click.echo(f"resumed from {resume} after epoch {state.epoch}")
    progress = _Progress(config.epochs)
    progress.epoch = (state.epoch if state else 0) + 1
    try:
        state = training.train(net, dataset, config, state, optimizer_state, checkpoint,
                               on_batch=progress.on_batch, on_epoch=progress.on_epoch)
    except KeyboardInterrupt:
        if progress.bar is not None:
            progress.bar.__exit__(None, None, None)
        saved = f"the checkpoint in {checkpoint} holds the last finished epoch" if checkpoint else "no --checkpoint, nothing saved"
        click.echo(f"\ninterrupted: {saved}", err=True)
        sys.exit(130)
    test = training.accuracy(net, dataset.test)
    click.echo(f"test accuracy {100 * test:.2f}% (best validation {100 * state.best_accuracy:.2f}% at epoch {state.best_epoch})")
    if plot:
        _plot(plot, state.history)
        click.echo(f"curves saved to {plot}")


@click.command()
@click.argument("model")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="A checkpoint saved by train.")
@click.option("--data-dir", type=click.Path(), help="MNIST IDX directory, for a model trained on mnist.")
@click.option("--backend", type=click.Choice(BACKENDS), help="Default: the model's training default.")
def evaluate(model, checkpoint, data_dir, backend):
    """Test accuracy and confusion matrix of a trained MODEL from its checkpoint."""
    import loopnet as ln
    from loopnet import data as datasets, training

    if model not in DEFAULTS:
        _fail(f"unknown model {model!r}; choose one of: {', '.join(DEFAULTS)}")
    meta, arrays = training.load_checkpoint(checkpoint)
    if meta["model"]["name"] != model:
        _fail(f"{checkpoint} holds a {meta['model']['name']} model, not {model}")
    ln.use(backend or DEFAULTS[model][0])
    net = training.model_from_checkpoint(meta, arrays)
    train_config = meta["train"]
    dataset = datasets.load(train_config["data"], seed=train_config["seed"], data_dir=data_dir)
    if tuple(dataset.input_shape) != tuple(meta["model"]["input_shape"]):
        _fail(f"the data's examples are {dataset.input_shape}, the model expects {tuple(meta['model']['input_shape'])}")
    predicted = net.predict(dataset.test.x)
    truth = dataset.test.y
    matrix = training.confusion_matrix(truth, predicted, dataset.classes)
    click.echo(f"{model} on {dataset.name} test set ({len(truth)} examples), after epoch {meta['state']['epoch']}")
    click.echo(f"test accuracy {100 * float((predicted == truth).mean()):.2f}%")
    click.echo("confusion matrix (rows: true class, columns: predicted)")
    width = max(4, len(str(matrix.max())) + 1)
    click.echo("     " + "".join(f"{k:>{width}}" for k in range(dataset.classes)))
    for k, row in enumerate(matrix):
        click.echo(f"{k:>4} " + "".join(f"{v:>{width}}" for v in row))
