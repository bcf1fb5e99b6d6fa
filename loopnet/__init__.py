"""loopnet: backpropagation as deck 003 writes it, one scalar loop at a time.

    import loopnet as ln
    x = ln.Input([[1.0, 2.0]]); W = ln.Parameter([[0.5], [-1.0]]); b = ln.Parameter([0.0])
    loss = ln.mean(ln.square(ln.affine(x, W, b)))
    ln.forward(loss); ln.backward(loss); print(W.grad)
"""

from loopnet.backends import default_backend, use
from loopnet.derive import derive
from loopnet.view import show
from loopnet.explain import explain, jacobian
from loopnet.graph import (
    Input, Node, Parameter, backward, forward, fresh_names, set_dtype, topological_order,
)
from loopnet.ops import OPS
from loopnet.ops.activations import leaky_relu, relu, sigmoid, tanh
from loopnet.ops.affine import affine
from loopnet.ops.arithmetic import add, div, maximum, mul, sub
from loopnet.ops.bmm import bmm
from loopnet.ops.conv import conv2d
from loopnet.ops.conv1d import conv1d
from loopnet.ops.cross_entropy import softmax_cross_entropy
from loopnet.ops.dropout import dropout
from loopnet.ops.embedding import embedding
from loopnet.ops.im2col import im2col
from loopnet.ops.layer_norm import layer_norm
from loopnet.ops.matvec import matvec
from loopnet.ops.batch_norm import batch_norm
from loopnet.ops.layout import broadcast_to, permute, transpose
from loopnet.ops.losses import binary_cross_entropy, hinge_loss, logistic_loss, mse_loss
from loopnet.ops.matmul import matmul
from loopnet.ops.maxout import maxout
from loopnet.ops.pointwise import abs, exp, log, negate, square
from loopnet.ops.powers import pow, reciprocal, sqrt
from loopnet.ops.pad import pad2d
from loopnet.ops.pool import avg_pool2d, max_pool2d
from loopnet.ops.reductions import logsumexp, max, mean, sum
from loopnet.ops.reshape import flatten, reshape
from loopnet.ops.softmax import log_softmax, softmax

__version__ = "0.1.0"

__all__ = [
    "Input", "Parameter", "Node", "forward", "backward", "use", "topological_order", "fresh_names",
    "set_dtype", "default_backend", "explain", "jacobian", "derive", "show",
    "OPS", *sorted(OPS),
]
