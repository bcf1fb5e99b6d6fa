"""The training commands: train and evaluate. Each model's defaults, and the choices of
every option, come from the registries (models.MODELS, optim.OPTIMIZERS, init.SCHEMES,
data.DATASETS); every option overrides the model's defaults."""

import math
import os
import signal
import sys

import click

from loopnet import data as datasets, init, models, optim, training
from loopnet.errors import did_you_mean
from loopnet.cli.common import DTYPES, backend_option, fail, select_backend


def _per_model(field):
    """'xor 300, logistic 20, ...': one training default of every model, for --help."""
    return ", ".join(f"{name} {getattr(spec, field)}" for name, spec in models.MODELS.items())


def _models_using(option):
    return ", ".join(name for name, spec in models.MODELS.items() if option in spec.uses)


def _model_list():
    return "\n".join(f"  {name:<10} {spec.summary}" for name, spec in models.MODELS.items())


class _Real(click.ParamType):
    """A finite float within bounds: click's FloatRange lets NaN and inf through (every
    comparison with NaN is false), and a NaN learning rate trains to 'loss nan'."""

    name = "float"

    def __init__(self, low=None, high=None, low_open=False, high_open=False, meaning=None):
        self.low, self.high, self.low_open, self.high_open, self.meaning = low, high, low_open, high_open, meaning

    def convert(self, value, param, ctx):
        x = value if isinstance(value, float) else click.FLOAT.convert(value, param, ctx)
        inside = math.isfinite(x) and (self.low is None or (x > self.low if self.low_open else x >= self.low)) \
            and (self.high is None or (x < self.high if self.high_open else x <= self.high))
        if not inside:
            self.fail(f"{value!r} is not {self.meaning}", param, ctx)
        return x


PROBABILITY = _Real(0, 1, high_open=True, meaning="a probability in [0, 1)")
POSITIVE = _Real(0, low_open=True, meaning="a positive finite number")
AT_LEAST_ONE = click.IntRange(min=1)
COUNT = click.IntRange(min=0)


def _check_options_apply(spec, given, optimizer):
    """An option that does nothing for this model is a mistake to point out, not ignore."""
    for option in ("width", "channels", "dropout", "batch_norm"):
        if given[option] is not None and option not in spec.uses:
            users = _models_using(option) or "no model"
            fail(f"--{option.replace('_', '-')} does not apply to {spec.name} (it shapes: {users})")
    if given["momentum"] is not None and optimizer != "momentum":
        fail(f"--momentum is mu of --optimizer momentum; {spec.name} is training with {optimizer}")


def _saved_run(path, model, seed):
    """What a resumed run takes from its checkpoint before anything is built: the data set
    and seed it was trained with (a --seed that differs is refused)."""
    meta = training.load_checkpoint(path)[0]
    if meta["model"]["name"] != model:
        fail(f"{path} holds a {meta['model']['name']} model, not {model}")
    saved = meta["train"]
    if seed is not None and seed != saved["seed"]:
        fail(f"{path} was trained with --seed {saved['seed']}; a resumed run keeps it (drop --seed {seed})")
    return saved


def _resume(path, model, asked, dataset, config, checkpoint, lr):
    """The model, state and optimizer of the run to continue, all from its checkpoint: the
    model as it was built then (an option asking for another is refused), so the run
    goes on saving a checkpoint that its own `evaluate` can load."""
    meta, arrays = training.load_checkpoint(path)
    expected = dict(asked, name=model, input_shape=list(dataset.input_shape), classes=dataset.classes)
    net = training.model_from_checkpoint(meta, arrays, expected=expected)
    state, optimizer = training.resume(path, net, config)
    if lr is not None and lr != state.lr:  # --lr overrides the learning rate the run had reached
        click.echo(f"learning rate {lr} from --lr (the checkpoint's was {state.lr:g})", err=True)
        state.lr = lr
    if state.epoch >= config.epochs:
        fail(f"{path} has finished epoch {state.epoch} of {config.epochs}: nothing left to train "
             f"(ask for more with --epochs, e.g. --epochs {state.epoch + 10})")
    saving = f"; saving to {checkpoint}" if checkpoint else ""
    click.echo(f"resumed from {path} after epoch {state.epoch}{saving}")
    return net, state, optimizer


def _spec(model):
    if model not in models.MODELS:
        fail(f"unknown model {model!r}{did_you_mean(model, models.MODELS)}; choose one of: {', '.join(models.MODELS)}")
    return models.MODELS[model]


class _Progress:
    """A progress bar per epoch on stderr (on a terminal), and one summary line per epoch
    on stdout."""

    def __init__(self, epochs, first_epoch):
        self.epochs, self.epoch, self.bar = epochs, first_epoch, None

    def on_batch(self, i, total, loss):
        if not sys.stderr.isatty():  # a log or a pipe: the epoch's summary line is enough
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=f"epoch {self.epoch}/{self.epochs}", file=sys.stderr,
                                         show_eta=False)
            self.bar.__enter__()
        self.bar.update(1)

    def close_bar(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def on_epoch(self, record):
        self.close_bar()
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


def _load_data(name, seed, data_dir):
    """The data set. Importing scikit-learn alone (for digits) takes seconds, so on a
    terminal a line says what is happening, and is cleared when it is done."""
    shown = sys.stderr.isatty()
    if shown:
        click.echo(f"loading the {name} data set...", err=True, nl=False)
    try:
        return datasets.load(name, seed=seed, data_dir=data_dir)
    finally:
        if shown:
            click.echo("\r\033[K", err=True, nl=False)


def _data_name(spec, data, data_dir, saved=None):
    """--data, else mnist for --data-dir, else the resumed run's, else the model's own."""
    if data_dir and data not in (None, "mnist"):
        fail(f"--data-dir is for mnist; it cannot be used with --data {data}")
    return "mnist" if data_dir else (data or (saved["data"] if saved else spec.data))


def _check_before_work(checkpoint, resume, plot):
    """Everything that can be checked before any work, so a bad option loses nothing
    (the option values themselves are checked by their click types)."""
    if resume and not os.path.isfile(resume):
        fail(f"no checkpoint at {resume}")
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("--plot needs matplotlib: pip install -e '.[plot]' (or pip install matplotlib)")
        if not plot.lower().endswith(".png"):
            fail(f"--plot {plot}: the curves are saved as a PNG; give a name ending in .png")
        training.check_writable(plot, "--plot")
    if checkpoint:
        training.check_writable(checkpoint, "--checkpoint")


def _check_checkpoint_target(checkpoint, resume, net, overwrite):
    """--checkpoint replaces its file: refuse a file that is not a checkpoint of this very
    model (a text file, another model's run) unless --overwrite says so."""
    if not checkpoint or overwrite or not os.path.exists(checkpoint) or checkpoint == resume:
        return
    try:
        saved = training.load_checkpoint(checkpoint)[0]["model"]
    except training.CheckpointError as err:
        fail(f"--checkpoint {checkpoint} holds something else ({err}); choose another path, or add --overwrite")
    differences = [f"{k} {training.saved_setting(saved, k)!r}" for k in training.MODEL_KEYS
                   if training.saved_setting(saved, k) != net.config.get(k)]
    if differences:
        fail(f"--checkpoint {checkpoint} holds another model's run ({', '.join(differences)}); "
             f"choose another path, or add --overwrite to replace it")


def _kept(checkpoint):
    """What a stopped run leaves behind, for its last line."""
    if not checkpoint:
        return "no --checkpoint, nothing saved"
    if os.path.exists(checkpoint):
        return f"the checkpoint in {checkpoint} holds the last epoch saved"
    return f"no epoch had been saved to {checkpoint}"


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops a run the way Ctrl-C does: cleanly


def _train_epochs(net, dataset, config, state, optimizer_state, checkpoint):
    """Run training with a progress display. Ctrl-C or SIGTERM says what was kept and exits
    130; a checkpoint that cannot be written stops the run with one line saying the same."""
    progress = _Progress(config.epochs, (state.epoch if state else 0) + 1)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return training.train(net, dataset, config, state, optimizer_state, checkpoint,
                              on_batch=progress.on_batch, on_epoch=progress.on_epoch)
    except KeyboardInterrupt:
        progress.close_bar()
        click.echo(f"\ninterrupted: {_kept(checkpoint)}", err=True)
        sys.exit(130)
    except training.OutputError as err:
        progress.close_bar()
        fail(f"{err}; training stopped: {_kept(checkpoint)}")
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command(help=f"""Train MODEL and report its test accuracy.

Shows a progress bar per epoch and one line per epoch (train loss, validation
accuracy, learning rate, seconds). Example: `python cli.py train mlp --epochs 30`.

\b
Models:
{_model_list()}""")
@click.argument("model")
@click.option("--data", help=f"{', '.join(datasets.DATASETS)} (default: the model's own).")
@click.option("--data-dir", type=click.Path(), help="Directory with the MNIST IDX files (raw or .gz); implies --data mnist.")
@click.option("--epochs", type=AT_LEAST_ONE, help=f"Epochs to train (default per model: {_per_model('epochs')}).")
@click.option("--lr", type=POSITIVE, help=f"Learning rate (default per model: {_per_model('lr')}).")
@click.option("--batch-size", type=AT_LEAST_ONE, help=f"Minibatch size; gradients are averaged over it (default: {_per_model('batch_size')}).")
@click.option("--optimizer", type=click.Choice(list(optim.OPTIMIZERS)), help=f"Update rule (default: {_per_model('optimizer')}).")
@click.option("--momentum", type=_Real(0, 1, high_open=True, meaning="a momentum mu in [0, 1)"), default=None, help="mu for --optimizer momentum (default 0.9).")
@click.option("--weight-decay", type=_Real(0, meaning="a finite number >= 0"), default=0.0, show_default=True, help="L2 penalty lambda on weights.")
@click.option("--clip", type=POSITIVE, default=None, help="Clip the gradient norm to this value.")
@click.option("--dropout", type=PROBABILITY, default=None,
              help=f"Dropout probability before the last layer, in [0, 1) ({_models_using('dropout')}; default 0).")
@click.option("--width", type=AT_LEAST_ONE, default=None, help="; ".join(f"{name}: {spec.width_help}" for name, spec in models.MODELS.items() if spec.width_help) + ".")
@click.option("--channels", type=AT_LEAST_ONE, default=None, help=f"Convolution channels ({_models_using('channels')}; default 16).")
@click.option("--batch-norm", is_flag=True, default=None,
              help=f"Put batch_norm between the first layer and its ReLU ({_models_using('batch_norm')}); "
                   f"evaluation uses its running statistics, which checkpoints keep.")
@click.option("--init", "init_scheme", type=click.Choice(init.SCHEMES), default=None,
              help=f"Initialisation (default {init.SCHEMES[0]}: deck 000's U[-1/sqrt(n), 1/sqrt(n)]).")
@click.option("--patience", type=AT_LEAST_ONE, default=None, help="Stop after this many epochs without a better validation accuracy.")
@click.option("--lr-patience", type=COUNT, default=None,
              help=f"Halve the lr after this many epochs without a better validation accuracy (0: never; default: {_per_model('lr_patience')}).")
@click.option("--seed", type=COUNT, default=None, help="Seeds initialisation, splits, shuffling, dropout (default 0).")
@backend_option(f"Default per model: {_per_model('backend')}.")
@click.option("--dtype", type=click.Choice(DTYPES), default=None, help=f"Default {DTYPES[0]}.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Save here after every epoch (atomically) and keep it on Ctrl-C.")
@click.option("--resume", type=click.Path(dir_okay=False),
              help="Continue from this checkpoint exactly where it stopped, and keep saving to it (unless --checkpoint names another file).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save loss and accuracy curves to this PNG (needs matplotlib).")
@click.option("--overwrite", is_flag=True,
              help="Let --checkpoint replace a file that is not a checkpoint of this model (it refuses otherwise).")
def train(model, data, data_dir, epochs, lr, batch_size, optimizer, momentum, weight_decay, clip, dropout, width,
          channels, batch_norm, init_scheme, patience, lr_patience, seed, backend, dtype, checkpoint, resume, plot, overwrite):
    spec = _spec(model)
    optimizer = optimizer or spec.optimizer
    _check_options_apply(spec, dict(width=width, channels=channels, dropout=dropout, momentum=momentum,
                                    batch_norm=batch_norm), optimizer)
    saved = _saved_run(resume, model, seed) if resume and os.path.isfile(resume) else None
    seed = saved["seed"] if saved else (seed or 0)
    checkpoint = checkpoint or resume  # a resumed run goes on saving where it came from
    config = training.TrainConfig(
        epochs=spec.epochs if epochs is None else epochs, lr=spec.lr if lr is None else lr,
        batch_size=spec.batch_size if batch_size is None else batch_size, optimizer=optimizer,
        momentum=0.9 if momentum is None else momentum, weight_decay=weight_decay, clip=clip, seed=seed,
        lr_patience=spec.lr_patience if lr_patience is None else lr_patience,
        patience=patience, data=_data_name(spec, data, data_dir, saved),
    )
    _check_before_work(checkpoint, resume, plot)
    select_backend(backend, spec.backend)
    dataset = _load_data(config.data, seed, data_dir)
    asked = dict(width=width, channels=channels, dropout=dropout, init=init_scheme, dtype=dtype, batch_norm=batch_norm)
    if resume:
        net, state, optimizer_state = _resume(resume, model, asked, dataset, config, checkpoint, lr)
    else:
        net = models.build(model, dataset.input_shape, dataset.classes, width=width,
                           channels=16 if channels is None else channels, dropout=dropout or 0.0,
                           init_scheme=init_scheme or init.SCHEMES[0], dtype=dtype or DTYPES[0], seed=seed,
                           batch_norm=bool(batch_norm))
        state = optimizer_state = None
    _check_checkpoint_target(checkpoint, resume, net, overwrite)
    if config.batch_size < 2 and any(len(node.shape) == 2 for node in net.norms):  # one value per channel
        fail(f"{model} with batch norm needs --batch-size 2 or more: the statistics of one example have no variance")
    state = _train_epochs(net, dataset, config, state, optimizer_state, checkpoint)
    test = training.accuracy(net, dataset.test)
    click.echo(f"test accuracy {100 * test:.2f}% (best validation {100 * state.best_accuracy:.2f}% at epoch {state.best_epoch})")
    if plot:
        try:
            _plot(plot, state.history)
        except (OSError, ValueError) as err:
            fail(f"cannot write the plot {plot} ({err}); {_kept(checkpoint)}")
        click.echo(f"curves saved to {plot}")


@click.command()
@click.argument("model")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="A checkpoint saved by train.")
@click.option("--data-dir", type=click.Path(), help="MNIST IDX directory, for a model trained on mnist.")
@backend_option("Default: the model's training default.")
def evaluate(model, checkpoint, data_dir, backend):
    """Test accuracy and confusion matrix of a trained MODEL from its checkpoint."""
    spec = _spec(model)
    meta, arrays = training.load_checkpoint(checkpoint)
    if meta["model"]["name"] != model:
        fail(f"{checkpoint} holds a {meta['model']['name']} model, not {model}")
    select_backend(backend, spec.backend)
    net = training.model_from_checkpoint(meta, arrays)
    train_config = meta["train"]
    dataset = _load_data(train_config["data"], train_config["seed"], data_dir)
    if tuple(dataset.input_shape) != tuple(meta["model"]["input_shape"]):
        fail(f"the data's examples are {dataset.input_shape}, the model expects {tuple(meta['model']['input_shape'])}")
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
