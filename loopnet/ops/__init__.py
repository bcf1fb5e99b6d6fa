"""The op set: one short file per op or small family, each with its math and its loops.

`OPS` maps each op's name to its public function (`loopnet` exports each as `ln.<name>`).
Tests walk it: an op added here without a gradient check in `loopnet.testing.samples`
fails the suite.

This package binds its modules, not the functions: `loopnet.ops.affine` is the module
loopnet/ops/affine.py, so a debugger finds its loops by name
(`b loopnet.ops.affine.affine_grad_W`), while `ln.affine` is the op.
"""

from loopnet.ops import (
    activations, affine, arithmetic, batch_norm, bmm, conv, conv1d, cross_entropy, dropout, embedding, im2col, layer_norm, layout, losses,
    matmul, matvec, maxout, operators, pad, pointwise, pool, powers, reductions, reshape, softmax,
)

OPS = {
    op.__name__: op
    for op in (
        arithmetic.add, arithmetic.sub, arithmetic.mul, arithmetic.div, arithmetic.maximum, matmul.matmul, matvec.matvec, affine.affine,
        reductions.sum, reductions.mean, reductions.max, reductions.logsumexp, pointwise.square, pointwise.exp, pointwise.log, pointwise.abs, pointwise.negate,
        powers.pow, powers.sqrt, powers.reciprocal,
        activations.sigmoid, activations.tanh, activations.relu, activations.leaky_relu,
        softmax.softmax, softmax.log_softmax, reshape.reshape, reshape.flatten,
        layout.transpose, layout.permute, layout.broadcast_to,
        losses.mse_loss, cross_entropy.softmax_cross_entropy, losses.binary_cross_entropy,
        losses.logistic_loss, losses.hinge_loss,
        conv.conv2d, conv1d.conv1d, pad.pad2d, pool.max_pool2d, pool.avg_pool2d, im2col.im2col, dropout.dropout, bmm.bmm, maxout.maxout,
        embedding.embedding, layer_norm.layer_norm, batch_norm.batch_norm,
    )
}
