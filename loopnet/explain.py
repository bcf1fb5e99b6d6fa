"""Seeing the chain rule: explain one gradient element, and build Jacobians from backprop.

explain(node, index) answers "where does W1.grad[0,1] come from?" with the slide's terms,

    W1.grad[0,1] = sum over each op that reads W1, over each output element u it made:
                   u.grad (upstream)  x  du / dW1[0,1] (local factor)

The local factors come from the op's own backward loops, run on the Python backend with a
one-hot upstream gradient (1 at output u, 0 elsewhere): exactly the numbers the backward
pass multiplied, with no change to the op files.

jacobian(out, wrt) stacks the same idea over a whole graph: backward with a one-hot
upstream gradient at each element of `out` gives one row of d out / d wrt.
"""

from dataclasses import dataclass

import numpy as np

from loopnet.backends import use
from loopnet.errors import GraphError, LoopnetError
from loopnet.graph import backward, forward, topological_order


class ExplainError(LoopnetError, ValueError):
    """A node or index to explain that does not exist."""


@dataclass
class Term:
    op: str  # the consumer's op name
    consumer: str  # the consumer node's name
    output_index: tuple  # which element of the consumer's output (the loop index)
    upstream: float  # consumer.grad[output_index]
    local: float  # d consumer[output_index] / d node[index]
    running: float  # the sum so far

    @property
    def value(self):
        return self.upstream * self.local


@dataclass
class Explanation:
    node: str
    index: tuple
    terms: list
    total: float  # the sum of the terms
    grad: float  # node.grad[index] as backward computed it
    seed: bool  # True when node is the output backward started from

    def __str__(self):
        element = f"{self.node}{list(self.index) if self.index else ''}"
        if self.seed:
            return f"{element} is the output backward started from: its grad is the seed, {self.grad:g}"
        lines = [f"grad of {element}: every term the backward loops added into it, in order", ""]
        header = f"  {'#':>3}  {'op':<22} {'output element':<22} {'upstream':>12}   {'local':>12}   {'term':>12}   {'running sum':>12}"
        lines.append(header)
        for k, t in enumerate(self.terms, 1):
            out = f"{t.consumer}{list(t.output_index) if t.output_index else ''}"
            lines.append(f"  {k:>3}  {t.op + ' ' + repr(t.consumer):<22} {out:<22} {t.upstream:>12.6g} x {t.local:>12.6g} = "
                         f"{t.value:>12.6g}   {t.running:>12.6g}")
        if not self.terms:
            lines.append("  (no op reads this element: its gradient is 0)")
        lines += ["", f"  total {self.total:.10g}  =  {element} grad {self.grad:.10g}"]
        return "\n".join(lines)


def _last_graph(node):
    root = getattr(node, "_backward_root", None)
    if root is None:
        raise GraphError(f"{node.name!r} has no gradient to explain yet: run backward on a loss that uses it first")
    return root


def explain(node, index=()):
    """Every term backprop added into `node.grad[index]`, from the last backward that
    reached `node`. Runs the consumers' backward loops on the Python backend (a graph whose
    arrays are on a GPU is recomputed there first)."""
    root = _last_graph(node)
    index = tuple(int(i) for i in np.atleast_1d(index)) if index != () else ()
    if len(index) != len(node.shape) or any(not 0 <= i < n for i, n in zip(index, node.shape)):
        raise ExplainError(f"index {list(index)} is outside {node.name!r}, whose shape is {node.shape}")
    grad = float(node.grad[index])
    if node is root:
        return Explanation(node.name, index, [], grad, grad, True)
    order = topological_order(root)
    consumers = [c for c in reversed(order) if any(p is node for p in c.inputs)]  # backward's order
    terms, running = [], 0.0
    with use("python"):
        if not all(isinstance(n._value, np.ndarray) for n in order):
            forward(root)  # the graph ran on a device: bring it to the host, where loops can be watched
            backward(root)
        for consumer in consumers:
            for out_index, upstream, local in _local_factors(consumer, node, index):
                running += upstream * local
                terms.append(Term(consumer.op.name, consumer.name, out_index, upstream, local, running))
    return Explanation(node.name, index, terms, running, grad, False)


def _local_factors(consumer, node, index):
    """(output index, upstream grad, d consumer[output] / d node[index]) for every output
    that reads node[index], from the consumer's backward loops run with one-hot upstream
    gradients (the real upstream grads are put back afterwards)."""
    saved_out = consumer._grad
    saved = {id(p): p._grad for p in consumer.inputs}
    try:
        for out_index in np.ndindex(*consumer.shape):
            consumer._grad = np.zeros(consumer.shape, consumer.dtype)
            consumer._grad[out_index] = 1
            for p in consumer.inputs:
                p._grad = np.zeros(p.shape, p.dtype) if p.requires_grad else None
            consumer.op.backward(consumer, *consumer.inputs)
            local = float(node._grad[index])
            if local != 0:
                yield tuple(int(i) for i in out_index), float(saved_out[out_index]), local
    finally:
        consumer._grad = saved_out
        for p in consumer.inputs:
            p._grad = saved[id(p)]


def jacobian(out, wrt):
    """The full Jacobian d out / d wrt, of shape out.shape + wrt.shape, from the backward
    loops: one backward per element of `out`, with a one-hot upstream gradient."""
    order = topological_order(out)
    if not any(n is wrt for n in order):
        raise GraphError(f"{out.name!r} does not depend on {wrt.name!r}")
    if not wrt.requires_grad:
        raise GraphError(f"{wrt.name!r} gets no gradient (data or labels); use Input(..., grad=True) to differentiate by it")
    forward(out)
    J = np.zeros(out.shape + wrt.shape)
    for out_index in np.ndindex(*out.shape):
        upstream = np.zeros(out.shape)
        upstream[out_index] = 1
        backward(out, grad=upstream)
        J[out_index] = wrt.grad
    return J


def find_node(root, name):
    """The node called `name` in root's graph; ExplainError listing the names if none."""
    nodes = topological_order(root)
    for n in nodes:
        if n.name == name:
            return n
    raise ExplainError(f"no node named {name!r}; the graph has: {', '.join(n.name for n in nodes)}")


def parse_element(text):
    """'W1[0,1]' -> ('W1', (0, 1)); 'loss' -> ('loss', ())."""
    text = text.strip()
    if "[" not in text:
        return text, ()
    name, _, rest = text.partition("[")
    if not rest.endswith("]"):
        raise ExplainError(f"cannot read {text!r}: write NODE or NODE[i,j]")
    try:
        index = tuple(int(part) for part in rest[:-1].split(",") if part.strip())
    except ValueError:
        raise ExplainError(f"cannot read the index in {text!r}: use integers, e.g. W1[0,1]") from None
    return name.strip(), index
