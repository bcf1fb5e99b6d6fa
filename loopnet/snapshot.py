"""A graph's state, kept and put back: what a tool that runs the graph for its own ends
(gradcheck, the graph page) must leave as it found it.

The state is every node's grad (None where there was none) and where it came from, and
what an op keeps between runs (batch_norm's running statistics), which a forward in
training mode would otherwise move.
"""

import numpy as np

from loopnet.backends import current_backend
from loopnet.graph import forward


class GraphState:
    def __init__(self, order):
        self.order = order
        self.grads = [None if n._grad is None else np.array(n.grad) for n in order]
        self.roots = [n._backward_root for n in order]
        self.buffers = [n.op.buffers() if hasattr(n.op, "buffers") else None for n in order]

    def restore(self, output, run_forward=True):
        """Put the state back; with `run_forward`, first run forward so that every value is
        as before (the caller restored the leaves it changed)."""
        if run_forward:
            forward(output)
        backend = current_backend()
        for node, grad, root, buffers in zip(self.order, self.grads, self.roots, self.buffers):
            node._grad = None if grad is None else backend.adopt(grad)
            node._backward_root = root
            if buffers is not None:
                node.op.load_buffers(buffers)
