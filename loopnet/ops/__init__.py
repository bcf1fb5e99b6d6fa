"""The op set: one short file per op or small family, each with its math and its loops.

`OPS` maps each op's name to its public function. Tests walk it: an op added here
without a gradient check in `loopnet.testing.samples` fails the suite.
"""

from loopnet.ops.activations import leaky_relu, relu, sigmoid, tanh
from loopnet.ops.affine import affine
from loopnet.ops.arithmetic import add, div, mul, sub
from loopnet.ops.bmm import bmm
from loopnet.ops.conv import conv2d
from loopnet.ops.cross_entropy import softmax_cross_entropy
from loopnet.ops.dropout import dropout
from loopnet.ops.embedding import embedding
from loopnet.ops.im2col import im2col
from loopnet.ops.layer_norm import layer_norm
from loopnet.ops.losses import binary_cross_entropy, hinge_loss, logistic_loss, mse_loss
from loopnet.ops.matmul import matmul
from loopnet.ops.maxout import maxout
from loopnet.ops.pointwise import abs, exp, log, square
from loopnet.ops.pool import avg_pool2d, max_pool2d
from loopnet.ops.reductions import mean, sum
from loopnet.ops.reshape import flatten, reshape
from loopnet.ops.softmax import log_softmax, softmax

OPS = {
    op.__name__: op
    for op in (
        add, sub, mul, div, matmul, affine, sum, mean, square, exp, log, abs,
        sigmoid, tanh, relu, leaky_relu, softmax, log_softmax, reshape, flatten,
        mse_loss, softmax_cross_entropy, binary_cross_entropy, logistic_loss, hinge_loss,
        conv2d, max_pool2d, avg_pool2d, im2col, dropout, bmm, maxout, embedding, layer_norm,
    )
}
