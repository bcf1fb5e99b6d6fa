"""The lectures' networks, built from loopnet ops.

    xor        2-2-1: h = tanh(x W1 + b1), p = sigmoid(h W2 + b2), binary cross-entropy
    logistic   s = x w + b, logistic loss with labels -1/+1 (logistic regression)
    mlp        the slide's Affine(width) -> ReLU -> Affine(classes), softmax cross-entropy
    convnet    conv(k x k, channels) -> ReLU -> max-pool 2 -> flatten -> Affine(classes)
               (k = 3 for 8x8 digits, 5 for 28x28 MNIST: LeNet's first stage)
    attention  the lecture's rough transformer step: X = token embedding + position vector,
               weights = softmax(X q), context = weights X, then Affine(classes)

A Model owns its graph: the data Input `x`, the `labels` Input, the parameters, the
network's `output` and the `loss`. `set_batch` feeds a minibatch (in each model's own
label format), `predict` gives class indices.
"""

from dataclasses import dataclass, field

import numpy as np

import loopnet as ln
from loopnet import init
from loopnet.errors import LoopnetError

MODELS = ("xor", "logistic", "mlp", "convnet", "attention")
DEFAULT_DATA = {"xor": "xor", "logistic": "blobs", "mlp": "digits", "convnet": "digits", "attention": "tokens"}


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
        for op in self.dropouts:
            op.training = training

    def predict(self, x, batch_size=512):
        """Class indices for the examples `x` (evaluation mode)."""
        self.set_training(False)
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
        self.set_training(True)
        return np.concatenate(predictions) if predictions else np.zeros(0, np.int64)

    def parameter_arrays(self):
        return {p.name: np.array(p.value) for p in self.params}


def build(name, input_shape, classes, width=None, channels=16, dropout=0.0, init_scheme="uniform",
          dtype="float64", seed=0, vocab=8):
    """Build model `name` for examples of `input_shape` and `classes` classes."""
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    features = int(np.prod(input_shape))
    config = dict(name=name, input_shape=list(input_shape), classes=classes, width=width, channels=channels,
                  dropout=dropout, init=init_scheme, dtype=dtype.name, vocab=vocab)

    def weight(shape, label):
        return ln.Parameter(init.weight(shape, rng, init_scheme, dtype), name=label)

    def bias(n, label):
        return ln.Parameter(np.zeros(n, dtype), name=label)

    with ln.fresh_names():
        dropouts = []
        if name in ("xor", "logistic"):
            if classes != 2:
                raise ModelError(f"{name} is a two-class model; this data set has {classes} classes")
            x_shape = (features,)
            x = ln.Input(np.zeros((1, features), dtype), name="x")
            if name == "xor":
                hidden = width or 2
                W1, b1, W2, b2 = weight((features, hidden), "W1"), bias(hidden, "b1"), weight((hidden, 1), "W2"), bias(1, "b2")
                h = ln.tanh(ln.affine(x, W1, b1, name="hidden_in"), name="hidden")
                output = ln.sigmoid(ln.affine(h, W2, b2, name="score"), name="p")
                labels = ln.Input(np.zeros((1, 1), dtype), name="y")
                loss = ln.binary_cross_entropy(output, labels, name="loss")
                params, prediction = [W1, b1, W2, b2], "threshold"
            else:
                w, b = weight((features, 1), "w"), bias(1, "b")
                output = ln.affine(x, w, b, name="score")
                labels = ln.Input(np.ones((1, 1), dtype), name="y")
                loss = ln.logistic_loss(output, labels, name="loss")
                params, prediction = [w, b], "sign"
        elif name == "mlp":
            hidden = width or 500
            x_shape = (features,)
            x = ln.Input(np.zeros((1, features), dtype), name="x")
            W1, b1, W2, b2 = weight((features, hidden), "W1"), bias(hidden, "b1"), weight((hidden, classes), "W2"), bias(classes, "b2")
            h = ln.relu(ln.affine(x, W1, b1, name="hidden_in"), name="hidden")
            if dropout:
                h = ln.dropout(h, dropout, seed=seed, name="dropped")
                dropouts.append(h.op)
            output = ln.affine(h, W2, b2, name="logits")
            labels = ln.Input(np.zeros(1, np.int64), name="labels")
            loss = ln.softmax_cross_entropy(output, labels, name="loss")
            params, prediction = [W1, b1, W2, b2], "argmax"
        elif name == "attention":
            if len(input_shape) != 1:
                raise ModelError(f"attention needs token sequences (T,); this data set has examples of shape {tuple(input_shape)}")
            T, D = input_shape[0], width or 8
            x_shape = (T,)
            x = ln.Input(np.zeros((1, T), np.int64), name="tokens")
            positions = ln.Input(np.zeros((1, T), np.int64), name="positions")
            E = ln.Parameter(rng.normal(0, 0.5, (vocab, D)).astype(dtype), name="E")
            P = ln.Parameter(rng.normal(0, 0.5, (T, D)).astype(dtype), name="P")
            q = ln.Parameter(rng.normal(0, 0.5, (D, 1)).astype(dtype), name="q")
            W, b = weight((D, classes), "W"), bias(classes, "b")
            X = ln.add(ln.embedding(x, E, name="tok_emb"), ln.embedding(positions, P, name="pos_emb"), name="X")
            scores = ln.reshape(ln.matmul(ln.reshape(X, (-1, D)), q), (-1, T), name="scores")
            weights = ln.softmax(scores, name="weights")
            context = ln.reshape(ln.bmm(ln.reshape(weights, (-1, 1, T)), X), (-1, D), name="context")
            output = ln.affine(context, W, b, name="logits")
            labels = ln.Input(np.zeros(1, np.int64), name="labels")
            loss = ln.softmax_cross_entropy(output, labels, name="loss")
            params, prediction = [E, P, q, W, b], "argmax"
        else:  # convnet
            if len(input_shape) != 2:
                raise ModelError(f"convnet needs images (H, W); this data set has examples of shape {tuple(input_shape)}")
            H, Wd = input_shape
            k = 3 if min(H, Wd) < 16 else 5
            if min(H, Wd) < k + 1:
                raise ModelError(f"convnet needs images of at least {k + 1}x{k + 1}, got {H}x{Wd}")
            x_shape = (1, H, Wd)
            x = ln.Input(np.zeros((1, 1, H, Wd), dtype), name="x")
            K, bK = weight((channels, 1, k, k), "K"), bias(channels, "bK")
            pooled = ln.max_pool2d(ln.relu(ln.conv2d(x, K, bK, name="conv"), name="feature_maps"), 2, name="pooled")
            flat = ln.flatten(pooled, name="features")
            if dropout:
                flat = ln.dropout(flat, dropout, seed=seed, name="dropped")
                dropouts.append(flat.op)
            W, b = weight((flat.shape[1], classes), "W"), bias(classes, "b")
            output = ln.affine(flat, W, b, name="logits")
            labels = ln.Input(np.zeros(1, np.int64), name="labels")
            loss = ln.softmax_cross_entropy(output, labels, name="loss")
            params, prediction = [K, bK, W, b], "argmax"
    config["x_shape"] = x_shape
    return Model(name, config, x, labels, params, output, loss, prediction, dropouts,
                 positions if name == "attention" else None)
