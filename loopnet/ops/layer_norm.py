"""layer_norm(x, gamma, beta, eps=1e-5): normalise over the last axis, as PyTorch's.

For a row x of length K: mu = mean(x), var = mean((x - mu)^2) (biased), r = 1/sqrt(var + eps),
xhat = (x - mu) r:

    forward    for row, k:  y[k] = gamma[k] xhat[k] + beta[k]
    backward   for row, k:  dx[k] += r (g[k] - mean_j g[j] - xhat[k] mean_j g[j] xhat[j]),  g = dy gamma
               for k:       dgamma[k] += sum_rows dy[k] xhat[k]
               for k:       dbeta[k]  += sum_rows dy[k]

The forward stores each row's mean and r, for the backward. The statistics and every sum
over rows accumulate in float64 whatever the dtype; results are stored in x's dtype. eps must be positive: with
eps = 0 a constant row (var = 0) would divide by zero. r is computed with `scalar.sqrt`
and `scalar.div`, which give every backend IEEE's answers.
"""

from loopnet import scalar
from loopnet.errors import SettingError
from loopnet.loops import loop, rows, scratch
from loopnet.op import Op


def layer_norm_forward(r, x, gamma, beta, y, mean, rstd, eps):
    K = x.shape[1]
    mu = scalar.zero64()  # the statistics in float64 whatever x's dtype
    for k in range(K):
        mu += x[r, k]
    mu = mu / K
    var = scalar.zero64()
    for k in range(K):
        d = x[r, k] - mu
        var += d * d
    inv = scalar.div(1, scalar.sqrt(var / K + eps))
    mean[r], rstd[r] = mu, inv
    for k in range(K):
        y[r, k] = gamma[k] * (x[r, k] - mu) * inv + beta[k]


def layer_norm_grad_x(r, x, gamma, mean, rstd, dy, dx):
    K = x.shape[1]
    g_sum = scalar.zero64()
    gx_sum = scalar.zero64()
    for j in range(K):
        g = dy[r, j] * gamma[j]
        g_sum += g
        gx_sum += g * (x[r, j] - mean[r]) * rstd[r]
    for k in range(K):
        xhat = (x[r, k] - mean[r]) * rstd[r]
        dx[r, k] += rstd[r] * (dy[r, k] * gamma[k] - g_sum / K - xhat * gx_sum / K)


def layer_norm_grad_gamma(k, x, mean, rstd, dy, dgamma):
    acc = scalar.zero64()
    for r in range(x.shape[0]):
        acc += dy[r, k] * (x[r, k] - mean[r]) * rstd[r]
    dgamma[k] += acc


def layer_norm_grad_beta(k, dy, dbeta):
    acc = scalar.zero64()
    for r in range(dy.shape[0]):
        acc += dy[r, k]
    dbeta[k] += acc


class LayerNorm(Op):
    name = "layer_norm"
    inputs = ("x", "gamma", "beta")

    def __init__(self, eps):
        self.eps = float(eps)
        if not self.eps > 0:  # eps = 0 divides by zero on a constant row; NaN fails this too
            raise SettingError(f"layer_norm: eps must be positive, got {eps}")

    def shape(self, x, gamma, beta):
        if len(x.shape) < 1 or x.shape[-1] < 1 or gamma.shape != (x.shape[-1],) or beta.shape != (x.shape[-1],):
            raise self.shape_error((x, gamma, beta), "needs x (..., K) with K >= 1, gamma (K,) and beta (K,)")
        return x.shape

    def forward(self, out, x, gamma, beta):
        n_rows = rows(x.value).shape[0]
        self.mean, self.rstd = scratch(n_rows, x.dtype), scratch(n_rows, x.dtype)
        loop(layer_norm_forward, (n_rows,), rows(x.value), gamma.value, beta.value, rows(out.value),
             self.mean, self.rstd, self.eps)

    def backward(self, out, x, gamma, beta):
        if x.requires_grad:
            loop(layer_norm_grad_x, (self.mean.shape[0],), rows(x.value), gamma.value, self.mean, self.rstd,
                 rows(out.grad), rows(x.grad))
        if gamma.requires_grad:
            loop(layer_norm_grad_gamma, gamma.shape, rows(x.value), self.mean, self.rstd, rows(out.grad), gamma.grad)
        if beta.requires_grad:
            loop(layer_norm_grad_beta, beta.shape, rows(out.grad), beta.grad)


def layer_norm(x, gamma, beta, eps=1e-5, name=None):
    """(x - mean) / sqrt(var + eps) * gamma + beta over the last axis (biased var, as PyTorch)."""
    return LayerNorm(eps).apply((x, gamma, beta), name)
