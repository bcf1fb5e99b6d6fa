"""loopnet: backpropagation as the lectures write it, one scalar loop at a time.

    import loopnet as ln
    x = ln.Input([[1.0, 2.0]]); W = ln.Parameter([[0.5], [-1.0]]); b = ln.Parameter([0.0])
    loss = ln.mean(ln.square(ln.affine(x, W, b)))
    ln.forward(loss); ln.backward(loss); print(W.grad)
"""

from loopnet.backends import default_backend, use
from loopnet.explain import explain, jacobian
from loopnet.graph import (
    Input, Node, Parameter, backward, forward, fresh_names, set_dtype, topological_order,
)
from loopnet.ops import (
    OPS, abs, add, affine, avg_pool2d, binary_cross_entropy, bmm, conv2d, div, dropout, embedding, exp, flatten, hinge_loss,
    im2col, layer_norm, leaky_relu, log, log_softmax, logistic_loss, matmul, max_pool2d, maxout, mean,
    mse_loss, mul,
    relu, reshape, sigmoid, softmax, softmax_cross_entropy, square, sub, sum, tanh,
)

__version__ = "0.1.0"

__all__ = [
    "Input", "Parameter", "Node", "forward", "backward", "use", "topological_order", "fresh_names",
    "set_dtype", "default_backend", "explain", "jacobian",
    "OPS", *sorted(OPS),
]
