"""batch_norm(x, gamma, beta, eps=1e-5, momentum=0.1): normalise each channel over the
batch, as PyTorch's BatchNorm1d (x (N, C) or (N, C, L)) and BatchNorm2d (x (N, C, H, W)).

x is seen as (N, C, S), S the positions per example (1, L or H*W), and each channel c is
normalised over its M = N*S values:

    mu[c] = (1/M) sum_{n,s} x[n,c,s]        var[c] = (1/M) sum_{n,s} (x[n,c,s] - mu[c])^2
    r[c]  = 1 / sqrt(var[c] + eps)          xhat[n,c,s] = (x[n,c,s] - mu[c]) r[c]

    forward    for n,c,s:  y[n,c,s] = gamma[c] xhat[n,c,s] + beta[c]
    backward   for n,c,s:  dx[n,c,s] += r[c] (g[n,c,s] - mean_{n,s} g - xhat[n,c,s] mean_{n,s} (g xhat)),
                                        g = dy gamma[c]
               for c:      dgamma[c] += sum_{n,s} dy[n,c,s] xhat[n,c,s]
               for c:      dbeta[c]  += sum_{n,s} dy[n,c,s]

The dx loop is layer_norm's, over a channel's batch instead of a row: mu and var depend on
every x[n,c,s] of the channel, so each dx collects the two means as well as its own term.

Training mode (the default) uses the batch's mu and var and updates the running statistics,
as PyTorch does (the running variance is the unbiased one, var M / (M - 1)):

    running_mean[c] = (1 - momentum) running_mean[c] + momentum mu[c]
    running_var[c]  = (1 - momentum) running_var[c]  + momentum var[c] M / (M - 1)

Evaluation mode (`op.training = False`, or `model.set_training(False)`) uses the running
statistics in place of mu and var; they are constants there, so dx is dy gamma[c] r[c].
The running statistics start at 0 and 1 and live on the op (`node.op.running_mean`,
`.running_var`: NumPy arrays), where a model's checkpoint saves them.

Training needs M > 1 (PyTorch refuses it too): one value per channel has no variance.
The statistics and every sum over the batch accumulate in float64, whatever the dtype.
"""

import numpy as np

from loopnet import scalar
from loopnet.errors import DTypeError, SettingError, ShapeError
from loopnet.loops import loop, scratch, to_backend
from loopnet.op import Op


def batch_norm_statistics(c, x, mean, var):
    M = x.shape[0] * x.shape[2]
    mu = scalar.zero64()  # float64 whatever x's dtype: a sum over the whole batch
    for n in range(x.shape[0]):
        for s in range(x.shape[2]):
            mu += x[n, c, s]
    mu = mu / M
    acc = scalar.zero64()
    for n in range(x.shape[0]):
        for s in range(x.shape[2]):
            d = x[n, c, s] - mu
            acc += d * d
    mean[c], var[c] = mu, acc / M


def batch_norm_update_running(c, mean, var, running_mean, running_var, momentum, M):
    running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c]
    running_var[c] = (1 - momentum) * running_var[c] + momentum * var[c] * M / (M - 1)


def batch_norm_forward(n, c, x, gamma, beta, mean, var, y, eps):
    r = scalar.div(1, scalar.sqrt(var[c] + eps))
    for s in range(x.shape[2]):
        y[n, c, s] = gamma[c] * (x[n, c, s] - mean[c]) * r + beta[c]


def batch_norm_grad_x(c, x, gamma, mean, var, dy, dx, eps):
    M = x.shape[0] * x.shape[2]
    r = scalar.div(1, scalar.sqrt(var[c] + eps))
    g_sum = scalar.zero64()
    gx_sum = scalar.zero64()
    for n in range(x.shape[0]):
        for s in range(x.shape[2]):
            g = dy[n, c, s] * gamma[c]
            g_sum += g
            gx_sum += g * (x[n, c, s] - mean[c]) * r
    for n in range(x.shape[0]):
        for s in range(x.shape[2]):
            xhat = (x[n, c, s] - mean[c]) * r
            dx[n, c, s] += r * (dy[n, c, s] * gamma[c] - g_sum / M - xhat * gx_sum / M)


def batch_norm_grad_x_frozen(n, c, gamma, var, dy, dx, eps):
    # evaluation mode: mean and var are the running ones, constants, so no batch terms
    r = scalar.div(1, scalar.sqrt(var[c] + eps))
    for s in range(dy.shape[2]):
        dx[n, c, s] += dy[n, c, s] * gamma[c] * r


def batch_norm_grad_gamma(c, x, mean, var, dy, dgamma, eps):
    r = scalar.div(1, scalar.sqrt(var[c] + eps))
    acc = scalar.zero64()
    for n in range(x.shape[0]):
        for s in range(x.shape[2]):
            acc += dy[n, c, s] * (x[n, c, s] - mean[c]) * r
    dgamma[c] += acc


def batch_norm_grad_beta(c, dy, dbeta):
    acc = scalar.zero64()
    for n in range(dy.shape[0]):
        for s in range(dy.shape[2]):
            acc += dy[n, c, s]
    dbeta[c] += acc


def _channels_view(array):
    """(N, C, S): the positions of each example joined, so one loop serves every rank."""
    N, C = array.shape[0], array.shape[1]
    return array.reshape(N, C, array.size // (N * C) if N * C else 0)


class BatchNorm(Op):
    name = "batch_norm"
    inputs = ("x", "gamma", "beta")
    replayable = False  # which statistics it launches with depends on the training mode

    def __init__(self, eps, momentum):
        for label, value in (("eps", eps), ("momentum", momentum)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise SettingError(f"batch_norm: {label} must be a number, got {value!r}"
                                   + (" (PyTorch's cumulative average, momentum=None, is not supported)"
                                      if value is None and label == "momentum" else ""))
        self.eps, self.momentum = float(eps), float(momentum)
        if not self.eps > 0:  # eps = 0 divides by zero on a constant channel; NaN fails this too
            raise SettingError(f"batch_norm: eps must be positive, got {eps}")
        if not 0 <= self.momentum <= 1:
            raise SettingError(f"batch_norm: momentum must be in [0, 1], got {momentum}")
        self.training = True
        self._running_mean = self._running_var = None  # where the loops run; made by shape()

    def shape(self, x, gamma, beta):
        if not 2 <= len(x.shape) <= 4 or x.shape[1] < 1:
            raise self.shape_error((x, gamma, beta), "needs x (N, C), (N, C, L) or (N, C, H, W) with C >= 1")
        C = x.shape[1]
        if gamma.shape != (C,) or beta.shape != (C,):
            raise self.shape_error((x, gamma, beta), f"needs gamma and beta of shape ({C},), one per channel")
        if self._running_mean is None or self._running_mean.shape != (C,):
            self._running_mean, self._running_var = np.zeros(C, x.dtype), np.ones(C, x.dtype)
        elif self._running_mean.dtype != x.dtype:  # ln.set_dtype: keep what was learned
            self._running_mean, self._running_var = (a.astype(x.dtype) for a in self.buffers().values())
        return x.shape

    def buffers(self):
        """The running statistics, as NumPy copies: what a checkpoint (or gradcheck) saves."""
        return {"running_mean": _host(self._running_mean), "running_var": _host(self._running_var)}

    def load_buffers(self, arrays):
        self.running_mean, self.running_var = arrays["running_mean"], arrays["running_var"]

    @property
    def running_mean(self):
        """The running mean, as a NumPy copy (assign to it to change it; the loops update
        their own array in place)."""
        return _host(self._running_mean)

    @running_mean.setter
    def running_mean(self, value):
        self._running_mean = self._checked_buffer(value, "running_mean")

    @property
    def running_var(self):
        """The running (unbiased) variance, as a NumPy copy (assign to change it)."""
        return _host(self._running_var)

    @running_var.setter
    def running_var(self, value):
        self._running_var = self._checked_buffer(value, "running_var")

    def _checked_buffer(self, value, label):
        try:
            value = np.array(value, dtype=self._running_mean.dtype)  # a copy: the loops write it in place
        except (TypeError, ValueError):
            raise DTypeError(f"{self.name}: {label} must be real numbers, got {value!r:.80}") from None
        if value.shape != self._running_mean.shape:
            raise ShapeError(f"{self.name}: {label} must have shape {self._running_mean.shape}, got {value.shape}")
        return value

    def forward(self, out, x, gamma, beta):
        X, Y = _channels_view(x.value), _channels_view(out.value)
        N, C, S = X.shape
        # the running statistics move to where the loops run once, and stay there
        self._running_mean, self._running_var = to_backend(self._running_mean), to_backend(self._running_var)
        if self.training:
            if N * S < 2:
                raise ShapeError(f"{self.name}: training needs more than one value per channel, got x of shape "
                                 f"{x.shape} (evaluation mode uses the running statistics instead)")
            self.mean, self.var = scratch(C, x.dtype), scratch(C, x.dtype)
            loop(batch_norm_statistics, (C,), X, self.mean, self.var)
            loop(batch_norm_update_running, (C,), self.mean, self.var, self._running_mean, self._running_var,
                 self.momentum, N * S)
        else:
            self.mean, self.var = self._running_mean, self._running_var
        self.frozen = not self.training  # which statistics the backward differentiates through
        loop(batch_norm_forward, (N, C), X, gamma.value, beta.value, self.mean, self.var, Y, self.eps)

    def backward(self, out, x, gamma, beta):
        X, dY = _channels_view(x.value), _channels_view(out.grad)
        N, C, S = X.shape
        if x.requires_grad:
            if self.frozen:
                loop(batch_norm_grad_x_frozen, (N, C), gamma.value, self.var, dY, _channels_view(x.grad), self.eps)
            else:
                loop(batch_norm_grad_x, (C,), X, gamma.value, self.mean, self.var, dY, _channels_view(x.grad),
                     self.eps)
        if gamma.requires_grad:
            loop(batch_norm_grad_gamma, (C,), X, self.mean, self.var, dY, gamma.grad, self.eps)
        if beta.requires_grad:
            loop(batch_norm_grad_beta, (C,), dY, beta.grad)


def _host(array):
    return np.array(array) if isinstance(array, np.ndarray) else array.copy_to_host()


def batch_norm(x, gamma, beta, eps=1e-5, momentum=0.1, name=None):
    """Each channel (axis 1) normalised over the batch, times gamma plus beta, as PyTorch.

    Training mode uses the batch's statistics and updates the running ones; evaluation
    mode (`node.op.training = False`) uses the running ones."""
    return BatchNorm(eps, momentum).apply((x, gamma, beta), name)
