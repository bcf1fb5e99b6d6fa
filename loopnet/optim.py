"""Optimizers, each update a loop over a parameter's elements: SGD and momentum as deck 004
shows them (momentum corrected, below), RMSProp and Adam, which deck 004 only names.

With g = the gradient of the minibatch's mean loss (already averaged over the batch),
and L2 weight decay lambda adding lambda * w to g (the gradient of lambda/2 ||w||^2; deck
004's ridge penalty is lambda ||W||^2 with no 1/2, so its lambda is weight_decay / 2):

    SGD        w <- w - lr g
    momentum   v <- mu v - lr g ;  w <- w + v
               (the descent form. Deck 004's 'Improved Optimization: Momentum' writes this update with a
               sign slip, which as written would step up the gradient and climb the loss;
               v <- mu v + lr g ; w <- w - v is the same update with v negated.)
    RMSProp    s <- rho s + (1 - rho) g^2 ;  w <- w - lr g / (sqrt(s) + eps)
    Adam       m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
               w <- w - lr m^ / (sqrt(v^) + eps),   m^ = m / (1 - b1^t),  v^ = v / (1 - b2^t)

Gradient clipping by norm (before the update): with ||g|| the norm over all parameters'
grads together, if ||g|| > p then every g <- g p / ||g||.

Weight decay applies to weights (parameters with two or more axes), not to biases.
Every update runs as a loop kernel over flat views, on the selected backend; on a GPU
(cuda's loop_group) the loops of all parameters run as one launch.
"""

import functools
import math

import numpy as np

from loopnet import scalar
from loopnet.backends import current_backend
from loopnet.errors import LoopnetError
from loopnet.graph import kernel_side, mark_changed
from loopnet.loops import flat, launcher, loop, loop_group, scratch
from loopnet.reduction import reduction


class OptimizerError(LoopnetError, ValueError):
    """Bad optimizer settings (e.g. a negative learning rate)."""


def sgd_step(i, w, g, lr, decay):
    w[i] -= lr * (g[i] + decay * w[i])


def momentum_step(i, w, g, v, lr, decay, mu):
    v[i] = mu * v[i] - lr * (g[i] + decay * w[i])
    w[i] += v[i]


def rmsprop_step(i, w, g, s, lr, decay, rho, eps):
    grad = g[i] + decay * w[i]
    s[i] = rho * s[i] + (1 - rho) * grad * grad
    w[i] -= lr * grad / (scalar.sqrt(s[i]) + eps)


def adam_step(i, w, g, m, v, lr, decay, b1, b2, eps, correction1, correction2):
    grad = g[i] + decay * w[i]
    m[i] = b1 * m[i] + (1 - b1) * grad
    v[i] = b2 * v[i] + (1 - b2) * grad * grad
    w[i] -= lr * (m[i] / correction1) / (scalar.sqrt(v[i] / correction2) + eps)


@reduction
def add_sum_of_squares(g, out):
    acc = out.dtype.type(0)
    for i in range(g.shape[0]):
        acc += g[i] * g[i]
    out[0] += acc


def scale_step(i, g, factor):
    g[i] *= factor


def grad_norm(params):
    """||g|| over every parameter's gradient together."""
    with kernel_side():
        total = scratch((1,), np.float64)
        for p in params:
            loop(add_sum_of_squares, (), flat(p.grad), total)
        # one number back to the host per step: the clipping decision is made there
        return math.sqrt(float(current_backend().to_host(total)[0]))


def clip_grad_norm(params, max_norm):
    """If ||g|| > max_norm, scale every grad by max_norm / ||g||. Returns ||g|| before."""
    norm = grad_norm(params)
    if norm > max_norm:
        with kernel_side():
            loop_group(scale_step, [(p.size, (flat(p.grad), max_norm / norm)) for p in params])
    return norm


class Optimizer:
    """Updates `params` from their `.grad`: one loop of `body` over each parameter's
    elements, `body(i, w, g, *buffers, *scalars(p))`. `state` holds per-parameter buffers."""

    name = "optimizer"
    body = None  # the update loop body, one element per grid point
    buffers = ()  # names of per-parameter state arrays, e.g. ("v",) for momentum

    def __init__(self, params, lr, weight_decay=0.0, clip=None):
        if not lr > 0:
            raise OptimizerError(f"learning rate must be positive, got {lr}")
        if weight_decay < 0:
            raise OptimizerError(f"weight decay must be >= 0, got {weight_decay}")
        if clip is not None and not clip > 0:
            raise OptimizerError(f"clip norm must be positive, got {clip}")
        self.params, self.lr, self.weight_decay, self.clip = list(params), float(lr), float(weight_decay), clip
        names = [p.name for p in self.params]
        twice = next((name for name in names if names.count(name) > 1), None)
        if twice is not None:  # (a momentum buffer read by two parameters of other sizes: out of bounds)
            raise OptimizerError(f"two parameters are named {twice!r} (or one is listed twice): the optimizer "
                                 f"keeps each parameter's state by its name, so name them apart")
        self.steps = 0
        self.state = {}  # (parameter name, buffer) -> array where the loops run, made at the first step
        self._launches = {}  # parameter name -> how its update is launched, and on which arrays (see _launch)

    def decay_for(self, p):
        return self.weight_decay if len(p.shape) >= 2 else 0.0

    def scalars(self, p):
        """The numbers `body` takes after its arrays, for parameter `p` at this step."""
        raise NotImplementedError

    def step(self):
        for p in self.params:  # (before anything changes: a refused step leaves every parameter as it was)
            if p._grad is None:
                raise OptimizerError(f"{p.name!r} has no gradient: call backward(loss) before optimizer.step(), "
                                     f"and leave out parameters the loss does not depend on")
        if self.clip is not None:
            clip_grad_norm(self.params, self.clip)
        self.steps += 1
        backend = current_backend()
        if hasattr(backend, "loop_group"):  # a GPU: every parameter's update in one launch
            loop_group(self.body, [(p.size, (*self._update(p, backend).arrays, *self.scalars(p)))
                                   for p in self.params])
        else:
            for p in self.params:
                run, arrays = self._launch(p, backend)
                run(*arrays, *self.scalars(p))
        for p in self.params:
            mark_changed(p)  # a forward is due before the next backward

    def _update(self, p, backend):
        """p's update: flat views of p's value and grad (the backend's own arrays: what
        .value and .grad give inside kernel_side) and of its buffers, and how to launch
        it. Kept while p holds the same arrays on the same backend; the Python around four
        short loops was most of a small model's update (digits MLP)."""
        kept = self._launches.get(p.name)
        if kept is None or kept.value is not p._value or kept.grad is not p._grad or kept.backend is not backend:
            buffers = []
            for b in self.buffers:
                if (p.name, b) not in self.state:
                    self.state[p.name, b] = scratch(p.shape, p.dtype)
                buffers.append(flat(self.state[p.name, b]))
            kept = _Update(p, backend, (flat(p._value), flat(p._grad), *buffers))
            self._launches[p.name] = kept
        return kept

    def _launch(self, p, backend):
        """How to launch p's update alone, and its arrays."""
        kept = self._update(p, backend)
        if not kept.direct:  # (until the backend calls the compiled driver directly: see launcher)
            kept.run, kept.direct = launcher(self.body, (p.size,))
            if kept.direct:  # one more launch through loop first: it loads or compiles the settled
                return functools.partial(loop, self.body, (p.size,)), kept.arrays  # kernel, errors handled
        return kept.run, kept.arrays

    def state_dict(self):
        to_host = current_backend().to_host
        arrays = {f"{name}/{buffer}": to_host(value) for (name, buffer), value in self.state.items()}
        return arrays, {"steps": self.steps, "lr": self.lr}

    def load_state(self, arrays, meta):
        for p in self.params:
            for b in self.buffers:
                key = f"{p.name}/{b}"
                if key not in arrays:
                    continue  # saved before the first step: starts at zero, as new
                if arrays[key].shape != p.shape:
                    raise OptimizerError(f"optimizer state {key} has shape {arrays[key].shape}, expected {p.shape}")
                self.state[p.name, b] = current_backend().adopt(np.array(arrays[key], dtype=p.dtype))
        self._launches = {}  # (they held views of the buffers just replaced)
        self.steps, self.lr = int(meta["steps"]), float(meta["lr"])


class _Update:
    """One parameter's update launch, and the arrays it was made for."""

    __slots__ = ("value", "grad", "backend", "arrays", "run", "direct")

    def __init__(self, p, backend, arrays):
        self.value, self.grad, self.backend, self.arrays = p._value, p._grad, backend, arrays
        self.run, self.direct = None, False


class SGD(Optimizer):
    name = "sgd"
    body = staticmethod(sgd_step)

    def scalars(self, p):
        return self.lr, self.decay_for(p)


class Momentum(Optimizer):
    name = "momentum"
    body = staticmethod(momentum_step)
    buffers = ("v",)

    def __init__(self, params, lr, momentum=0.9, **options):
        super().__init__(params, lr, **options)
        if not 0 <= momentum < 1:
            raise OptimizerError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)

    def scalars(self, p):
        return self.lr, self.decay_for(p), self.momentum


class RMSProp(Optimizer):
    name = "rmsprop"
    body = staticmethod(rmsprop_step)
    buffers = ("s",)

    def __init__(self, params, lr, rho=0.9, eps=1e-8, **options):
        super().__init__(params, lr, **options)
        self.rho, self.eps = float(rho), float(eps)

    def scalars(self, p):
        return self.lr, self.decay_for(p), self.rho, self.eps


class Adam(Optimizer):
    name = "adam"
    body = staticmethod(adam_step)
    buffers = ("m", "v")

    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8, **options):
        super().__init__(params, lr, **options)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def scalars(self, p):
        return (self.lr, self.decay_for(p), self.beta1, self.beta2, self.eps,
                1 - self.beta1 ** self.steps, 1 - self.beta2 ** self.steps)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, RMSProp, Adam)}


def make_optimizer(name, params, lr, momentum=0.9, weight_decay=0.0, clip=None):
    if name not in OPTIMIZERS:
        raise OptimizerError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    options = {"weight_decay": weight_decay, "clip": clip}
    if name == "momentum":
        options["momentum"] = momentum
    return OPTIMIZERS[name](params, lr, **options)
