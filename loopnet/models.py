"""The lectures' networks, built from loopnet ops.

    xor        2-2-1: h = tanh(x W1 + b1), p = sigmoid(h W2 + b2), binary cross-entropy
    logistic   s = x w + b, logistic loss with labels -1/+1 (logistic regression)
    mlp        deck 000's Affine(width) -> ReLU -> Affine(classes), softmax cross-entropy
    convnet    conv(k x k, channels) -> ReLU -> max-pool 2 -> flatten -> Affine(classes)
               (k = 3 for 8x8 digits, 5 for 28x28 MNIST: LeNet's first stage)
    (mlp and convnet with batch_norm=True: a batch_norm node between the first layer and its
    ReLU, where Ioffe and Szegedy's paper puts it; deck 004 only names Batch-Normalization)
    attention  deck 001's weighted average (1/T) sum_i alpha_i (v_i + p_i), its score alpha
               left open there: X = token embedding + position vector, weights =
               softmax(X q) with a learned q, context = weights X (no 1/T: the softmax
               weights already sum to 1), then Affine(classes)

MODELS is the one registry of these models, the one the CLI reads: for each a ModelSpec
with its builder, its default data set and the training defaults that train it well.

A Model owns its graph: the data Input `x`, the `labels` Input, the parameters, the
network's `output` and the `loss`. `set_batch` feeds a minibatch (in each model's own
label format), `predict` gives class indices.
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import loopnet as ln
from loopnet import init
from loopnet.errors import LoopnetError, did_you_mean


class ModelError(LoopnetError, ValueError):
    """A model that cannot be built as asked."""


@dataclass
class Model:
    name: str
    config: dict  # everything needed to build it again (stored in checkpoints)
    x: object
    labels: object
    params: list
    output: object
    loss: object
    prediction: str  # "argmax", "threshold" (p > 0.5) or "sign" (s > 0)
    dropouts: list = field(default_factory=list)
    positions: object = None  # the attention model's position-id Input, one row per example
    norms: list = field(default_factory=list)  # batch_norm nodes, whose ops hold running statistics

    def set_batch(self, x, y=None):
        self.x.value = np.asarray(x, dtype=self.x.dtype).reshape((len(x),) + self.config["x_shape"])
        if self.positions is not None:
            self.positions.value = np.tile(np.arange(self.config["x_shape"][0]), (len(x), 1))
        if y is not None:
            y = np.asarray(y)
            if self.prediction == "argmax":
                self.labels.value = y.astype(np.int64)
            elif self.prediction == "threshold":
                self.labels.value = y.astype(self.x.dtype).reshape(-1, 1)
            else:  # logistic loss wants -1 / +1
                self.labels.value = (2 * y - 1).astype(self.x.dtype).reshape(-1, 1)

    def set_training(self, training):
        """Training mode (dropout drops, batch_norm uses and updates batch statistics) or
        evaluation mode (dropout is the identity, batch_norm uses its running statistics)."""
        for op in self.dropouts + [node.op for node in self.norms]:
            op.training = training

    def predict(self, x, batch_size=512):
        """Class indices for the examples `x` (in evaluation mode; the mode each dropout and
        batch_norm had is restored after)."""
        modal = self.dropouts + [node.op for node in self.norms]
        previous = [op.training for op in modal]
        self.set_training(False)
        try:
            predictions = []
            for start in range(0, len(x), batch_size):
                self.set_batch(x[start:start + batch_size])
                out = np.array(ln.forward(self.output))
                if self.prediction == "argmax":
                    predictions.append(out.argmax(axis=1))
                elif self.prediction == "threshold":
                    predictions.append((out[:, 0] > 0.5).astype(np.int64))
                else:
                    predictions.append((out[:, 0] > 0).astype(np.int64))
        finally:
            for op, mode in zip(modal, previous):
                op.training = mode
        return np.concatenate(predictions) if predictions else np.zeros(0, np.int64)

    def parameter_arrays(self):
        return {p.name: np.array(p.value) for p in self.params}

    def buffer_arrays(self):
        """What the model learns besides its parameters: each batch_norm's running
        statistics, named `<node>.running_mean` and `<node>.running_var`."""
        return {f"{node.name}.{kind}": getattr(node.op, kind) for node in self.norms
                for kind in ("running_mean", "running_var")}

    def state_arrays(self):
        """Parameters and buffers: everything a checkpoint must hold to predict again."""
        return {**self.parameter_arrays(), **self.buffer_arrays()}

    def load_arrays(self, arrays):
        """Set parameters and buffers from `state_arrays()`'s names."""
        for p in self.params:
            p.value = arrays[p.name]
        for node in self.norms:
            for kind in ("running_mean", "running_var"):
                setattr(node.op, kind, arrays[f"{node.name}.{kind}"])


# ---------------------------------------------------------------------------------------
# The builders: each takes a _Context and returns its model's _Parts. They run inside
# ln.fresh_names(), and the order in which they make parameters is the order of the
# random draws, so keep it.

@dataclass
class _Context:
    """What every builder shares: the options of build(), the rng, and the weight makers."""
    name: str
    input_shape: tuple
    classes: int
    width: int  # resolved: the model's default where none was asked for (None: no width)
    channels: int
    dropout: float
    init_scheme: str
    dtype: np.dtype
    seed: int
    vocab: int
    batch_norm: bool
    rng: np.random.Generator

    @property
    def features(self):
        return int(np.prod(self.input_shape))

    def weight(self, shape, label):
        return ln.Parameter(init.weight(shape, self.rng, self.init_scheme, self.dtype), name=label)

    def bias(self, n, label):
        return ln.Parameter(np.zeros(n, self.dtype), name=label)

    def normal(self, shape, label):
        """A parameter drawn from N(0, 0.5^2) whatever the init scheme (the attention model's)."""
        return ln.Parameter(self.rng.normal(0, 0.5, shape).astype(self.dtype), name=label)

    def flat_input(self):
        return ln.Input(np.zeros((1, self.features), self.dtype), name="x")

    def maybe_dropout(self, node, dropouts):
        """`node` through dropout (recorded in `dropouts`) if the model was asked for it."""
        if not self.dropout:
            return node
        dropped = ln.dropout(node, self.dropout, seed=self.seed, name="dropped")
        dropouts.append(dropped.op)
        return dropped

    def maybe_batch_norm(self, node, params, norms, label):
        """`node` through batch_norm over its channels (axis 1) if the model was asked for
        it; gamma (ones) and beta (zeros) join `params`, the node joins `norms`."""
        if not self.batch_norm:
            return node
        C = node.shape[1]
        gamma = ln.Parameter(np.ones(C, self.dtype), name=f"gamma_{label}")
        beta = ln.Parameter(np.zeros(C, self.dtype), name=f"beta_{label}")
        params += [gamma, beta]
        normalised = ln.batch_norm(node, gamma, beta, name=f"{label}_normalised")
        norms.append(normalised)
        return normalised


@dataclass
class _Parts:
    """What a builder returns: the pieces of a Model."""
    x: object
    labels: object
    params: list
    output: object
    loss: object
    prediction: str
    x_shape: tuple
    dropouts: list = field(default_factory=list)
    positions: object = None
    norms: list = field(default_factory=list)


def _require_two_classes(ctx):
    if ctx.classes != 2:
        raise ModelError(f"{ctx.name} is a two-class model; this data set has {ctx.classes} classes")


def _build_xor(ctx):
    _require_two_classes(ctx)
    x = ctx.flat_input()
    hidden = ctx.width
    W1, b1 = ctx.weight((ctx.features, hidden), "W1"), ctx.bias(hidden, "b1")
    W2, b2 = ctx.weight((hidden, 1), "W2"), ctx.bias(1, "b2")
    h = ln.tanh(ln.affine(x, W1, b1, name="hidden_in"), name="hidden")
    output = ln.sigmoid(ln.affine(h, W2, b2, name="score"), name="p")
    labels = ln.Input(np.zeros((1, 1), ctx.dtype), name="y")
    loss = ln.binary_cross_entropy(output, labels, name="loss")
    return _Parts(x, labels, [W1, b1, W2, b2], output, loss, "threshold", (ctx.features,))


def _build_logistic(ctx):
    _require_two_classes(ctx)
    x = ctx.flat_input()
    w, b = ctx.weight((ctx.features, 1), "w"), ctx.bias(1, "b")
    output = ln.affine(x, w, b, name="score")
    labels = ln.Input(np.ones((1, 1), ctx.dtype), name="y")
    loss = ln.logistic_loss(output, labels, name="loss")
    return _Parts(x, labels, [w, b], output, loss, "sign", (ctx.features,))


def _softmax_head(features, W, b):
    """logits = affine(features, W, b), softmax cross-entropy on integer labels."""
    output = ln.affine(features, W, b, name="logits")
    labels = ln.Input(np.zeros(1, np.int64), name="labels")
    return output, labels, ln.softmax_cross_entropy(output, labels, name="loss")


def _build_mlp(ctx):
    hidden, dropouts, norms = ctx.width, [], []
    x = ctx.flat_input()
    W1, b1 = ctx.weight((ctx.features, hidden), "W1"), ctx.bias(hidden, "b1")
    W2, b2 = ctx.weight((hidden, ctx.classes), "W2"), ctx.bias(ctx.classes, "b2")
    params = [W1, b1, W2, b2]
    h = ctx.maybe_batch_norm(ln.affine(x, W1, b1, name="hidden_in"), params, norms, "hidden_in")
    h = ctx.maybe_dropout(ln.relu(h, name="hidden"), dropouts)
    output, labels, loss = _softmax_head(h, W2, b2)
    return _Parts(x, labels, params, output, loss, "argmax", (ctx.features,), dropouts, norms=norms)


def _build_convnet(ctx):
    if len(ctx.input_shape) != 2:
        raise ModelError(f"convnet needs images (H, W); this data set has examples of shape {tuple(ctx.input_shape)}")
    H, Wd = ctx.input_shape
    k = 3 if min(H, Wd) < 16 else 5
    if min(H, Wd) < k + 1:
        raise ModelError(f"convnet needs images of at least {k + 1}x{k + 1}, got {H}x{Wd}")
    dropouts, norms = [], []
    x = ln.Input(np.zeros((1, 1, H, Wd), ctx.dtype), name="x")
    K, bK = ctx.weight((ctx.channels, 1, k, k), "K"), ctx.bias(ctx.channels, "bK")
    params = [K, bK]
    conv = ctx.maybe_batch_norm(ln.conv2d(x, K, bK, name="conv"), params, norms, "conv")
    pooled = ln.max_pool2d(ln.relu(conv, name="feature_maps"), 2, name="pooled")
    flat = ctx.maybe_dropout(ln.flatten(pooled, name="features"), dropouts)
    W, b = ctx.weight((flat.shape[1], ctx.classes), "W"), ctx.bias(ctx.classes, "b")
    output, labels, loss = _softmax_head(flat, W, b)
    return _Parts(x, labels, params + [W, b], output, loss, "argmax", (1, H, Wd), dropouts, norms=norms)


def _build_attention(ctx):
    if len(ctx.input_shape) != 1:
        raise ModelError(f"attention needs token sequences (T,); this data set has examples of shape "
                         f"{tuple(ctx.input_shape)}")
    T, D = ctx.input_shape[0], ctx.width
    x = ln.Input(np.zeros((1, T), np.int64), name="tokens")
    positions = ln.Input(np.zeros((1, T), np.int64), name="positions")
    E, P, q = ctx.normal((ctx.vocab, D), "E"), ctx.normal((T, D), "P"), ctx.normal((D, 1), "q")
    W, b = ctx.weight((D, ctx.classes), "W"), ctx.bias(ctx.classes, "b")
    X = ln.add(ln.embedding(x, E, name="tok_emb"), ln.embedding(positions, P, name="pos_emb"), name="X")
    scores = ln.reshape(ln.matmul(ln.reshape(X, (-1, D)), q), (-1, T), name="scores")
    weights = ln.softmax(scores, name="weights")
    context = ln.reshape(ln.bmm(ln.reshape(weights, (-1, 1, T)), X), (-1, D), name="context")
    output, labels, loss = _softmax_head(context, W, b)
    return _Parts(x, labels, [E, P, q, W, b], output, loss, "argmax", (T,), positions=positions)


# ---------------------------------------------------------------------------------------
# The registry

@dataclass(frozen=True)
class ModelSpec:
    """One built-in model: how to build it, and the training defaults that train it well."""
    name: str
    summary: str  # one line for --help
    builder: Callable  # _build_*(ctx: _Context) -> _Parts
    data: str  # the default data set's name (a key of loopnet.data.DATASETS)
    backend: str
    epochs: int
    lr: float
    optimizer: str
    batch_size: int
    lr_patience: int  # halve the lr after this many epochs without better val accuracy; 0: never
    width_help: str  # what --width means for it; "" where width is not used
    uses: frozenset  # which model-shaping options apply: some of {"width", "channels", "dropout", "batch_norm"}
    width: int = None  # the width when none is asked for (None: the model has no width)


# Halving the lr when validation accuracy stalls helps the digit models; it would starve
# XOR, whose accuracy sits at 50% for many epochs while its loss is still falling.
MODELS = {spec.name: spec for spec in (
    ModelSpec("xor", "2-2-1, tanh, sigmoid + binary cross-entropy", _build_xor, data="xor",
              backend="python", epochs=300, lr=0.5, optimizer="momentum", batch_size=4, lr_patience=0,
              width_help="hidden units (default 2)", uses=frozenset({"width"}), width=2),
    ModelSpec("logistic", "logistic regression: s = x w + b, logistic loss", _build_logistic, data="blobs",
              backend="python", epochs=20, lr=0.1, optimizer="sgd", batch_size=16, lr_patience=0,
              width_help="", uses=frozenset()),
    ModelSpec("mlp", "Affine(width) -> ReLU -> Affine(classes), softmax cross-entropy", _build_mlp,
              data="digits", backend="numba", epochs=30, lr=0.1, optimizer="momentum", batch_size=32,
              lr_patience=3, width_help="hidden units (default 500)", uses=frozenset({"width", "dropout", "batch_norm"}),
              width=500),
    ModelSpec("convnet", "conv -> ReLU -> max-pool 2 -> Affine(classes), softmax cross-entropy", _build_convnet,
              data="digits", backend="numba", epochs=20, lr=0.05, optimizer="momentum", batch_size=32,
              lr_patience=3, width_help="", uses=frozenset({"channels", "dropout", "batch_norm"})),
    ModelSpec("attention", "token + position embeddings, softmax(X q) attention, Affine(classes)",
              _build_attention, data="tokens", backend="numba", epochs=30, lr=0.01, optimizer="adam",
              batch_size=32, lr_patience=0, width_help="embedding size (default 8)", uses=frozenset({"width"}),
              width=8),
)}


def build(name, input_shape, classes, width=None, channels=16, dropout=0.0, init_scheme="uniform",
          dtype="float64", seed=0, vocab=8, batch_norm=False):
    """Build model `name` (a key of MODELS) for examples of `input_shape` and `classes` classes."""
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}{did_you_mean(name, MODELS)}; choose one of: {', '.join(MODELS)}")
    # The width actually built goes into the config, so a checkpoint rebuilds this model
    # whatever the defaults are then.
    width = MODELS[name].width if width is None else int(width)
    if width is not None and width < 1:
        raise ModelError(f"{name}: the width must be at least 1, got {width}")
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if batch_norm and "batch_norm" not in MODELS[name].uses:
        raise ModelError(f"{name} has no layer for batch_norm (it applies to: "
                         f"{', '.join(n for n, s in MODELS.items() if 'batch_norm' in s.uses)})")
    config = dict(name=name, input_shape=list(input_shape), classes=classes, width=width, channels=channels,
                  dropout=dropout, init=init_scheme, dtype=dtype.name, vocab=vocab, batch_norm=bool(batch_norm))
    ctx = _Context(name, input_shape, classes, width, channels, dropout, init_scheme, dtype, seed, vocab,
                   bool(batch_norm), rng)
    with ln.fresh_names():
        parts = MODELS[name].builder(ctx)
    config["x_shape"] = parts.x_shape
    return Model(name, config, parts.x, parts.labels, parts.params, parts.output, parts.loss, parts.prediction,
                 parts.dropouts, parts.positions, parts.norms)
