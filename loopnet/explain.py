"""Seeing the chain rule: explain one gradient element, and build Jacobians from backprop.

explain(node, index) answers "where does W1.grad[0,1] come from?" with the terms of deck 003
('Scalar vs. Matrix Operations': a back-propagated gradient times a local gradient),

    W1.grad[0,1] = sum over each op that reads W1, over each output element u it made
                   whose gradient its backward loops added into W1.grad[0,1]:
                   u.grad (upstream)  x  du / dW1[0,1] (local factor)

A term is one element u of a consumer's upstream gradient that the consumer's backward
loops really added into the element, found by following the values: the loops run once on
the Python backend with recording arrays, every value read from the upstream gradient
carries the set of elements it came from, arithmetic joins the sets, and what is written
into W1.grad[0,1] says which elements went in. So a term whose local factor happens to be
0 (matmul's dA[i,k] += dC[i,j] * B[k,j] with B[k,j] = 0) is listed, with local 0: the
number of terms is the loop's trip count. A loop that adds nothing (relu's where its input
was not > 0) gives no term.

The local factor of a term comes from the op's own backward loops, run again with a one-hot
upstream gradient (1 at output u, 0 elsewhere): exactly the numbers the backward pass
multiplied, with no change to the op files.

jacobian(out, wrt) stacks the same idea over a whole graph: backward with a one-hot
upstream gradient at each element of `out` gives one row of d out / d wrt.
"""

import contextlib
import itertools
import operator
from dataclasses import dataclass

import numpy as np

from loopnet.backends import python_backend, use
from loopnet.errors import GraphError, LoopnetError
from loopnet.graph import backward, forward, topological_order


class ExplainError(LoopnetError, ValueError):
    """A node or index to explain that does not exist, or an index written wrongly."""


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
    readers: tuple = ()  # the names of the ops that read the node, in backward's order

    def __str__(self):
        element = f"{self.node}{list(self.index) if self.index else ''}"
        if self.seed:
            return f"{element} is the output backward started from: its grad is the seed, {self.grad:g}"
        lines = [f"grad of {element}: every term the backward loops added into it, in order", ""]
        header = f"  {'#':>3}  {'op':<22} {'output element':<22} {'upstream':>12}   {'local':>12}   {'term':>12}   {'running sum':>12}"
        lines.append(header)
        for k, t in enumerate(self.terms, 1):
            out = f"{t.consumer}{list(t.output_index) if t.output_index else ''}"
            # + 0.0 turns -0.0 (a negative upstream times a local 0) into 0 for the reader
            lines.append(f"  {k:>3}  {t.op + ' ' + repr(t.consumer):<22} {out:<22} {t.upstream:>12.6g} x "
                         f"{t.local + 0.0:>12.6g} = {t.value + 0.0:>12.6g}   {t.running:>12.6g}")
        if not self.terms and self.readers:
            lines.append(f"  (the backward loops of {', '.join(self.readers)} added nothing into this element: "
                         "its gradient is 0)")
        elif not self.terms:
            lines.append("  (no op reads this element: its gradient is 0)")
        lines += ["", f"  total {self.total:.10g}  =  {element} grad {self.grad:.10g}"]
        return "\n".join(lines)


# -- which node and element ----------------------------------------------------------------

def _check_gets_gradient(node):
    """Refuse a node that backward never gives a gradient (data, labels, or ops of them)."""
    if node.requires_grad:
        return
    if node.op is None:
        raise GraphError(f"{node.name!r} gets no gradient (data or labels): nothing to explain; "
                         "use Input(..., grad=True) to differentiate by it")
    raise GraphError(f"{node.name!r} gets no gradient: it is computed only from data or labels, "
                     "so nothing to explain")


def _last_graph(node):
    root = getattr(node, "_backward_root", None)
    if root is None:
        raise GraphError(f"{node.name!r} has no gradient to explain yet: run backward on a loss that uses it first")
    return root


def _how_to_write(node):
    """'W[i,j]' for a 2-D node, 'loss, with no index' for a scalar."""
    if not node.shape:
        return f"{node.name}, with no index"
    letters = "ijklmn" if len(node.shape) <= 6 else [f"i{k}" for k in range(len(node.shape))]
    return f"{node.name}[{','.join(letters[:len(node.shape)])}]"


def _wrong_count(node, index):
    given = f"{node.name}[{','.join(map(str, index))}]" if index else node.name
    if not node.shape:
        return f"{node.name!r} is a scalar (shape ()): write {node.name}, with no index, not {given}"
    axes = "1 axis" if len(node.shape) == 1 else f"{len(node.shape)} axes"
    return f"{node.name!r} has {axes} (shape {node.shape}): write {_how_to_write(node)}, not {given}"


def _element(node, index):
    """`index` as a tuple of ints, one per axis of node, each in 0 <= i < n; otherwise an
    ExplainError that says how to write one."""
    items = tuple(np.ravel(index)) if np.ndim(index) else (index,)
    try:
        items = tuple(operator.index(i) for i in items)
    except TypeError:
        raise ExplainError(f"cannot use {index!r} as an index into {node.name!r}: "
                           f"write {_how_to_write(node)} with whole numbers") from None
    if len(items) != len(node.shape):
        raise ExplainError(_wrong_count(node, items))
    if any(not 0 <= i < n for i, n in zip(items, node.shape)):
        hint = " (count from 0: negative indices are not taken)" if any(i < 0 for i in items) else ""
        raise ExplainError(f"index {list(items)} is outside {node.name!r}, whose shape is {node.shape}{hint}")
    return items


# -- explain ---------------------------------------------------------------------------------

def explain(node, index=()):
    """Every term backprop added into `node.grad[index]`, from the last backward that
    reached `node`, in the order backward added them: the ops that read `node` in reverse
    topological order, and within one op its output elements in row-major order.

    `index` has one whole number per axis of `node` (none for a scalar), each in
    0 <= i < n: a negative index is refused, not counted from the end as NumPy does, so
    every element has one name. Runs the consumers' backward loops on the Python backend
    (a graph whose arrays are on a GPU is recomputed there first); every node's .value and
    .grad are left as they were.
    """
    _check_gets_gradient(node)
    root = _last_graph(node)
    index = _element(node, index)
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
            for out_index, upstream, local in _terms(consumer, node, index):
                running += upstream * local
                terms.append(Term(consumer.op.name, consumer.name, out_index, upstream, local, running))
    return Explanation(node.name, index, terms, running, grad, False, tuple(c.name for c in consumers))


def _terms(consumer, node, index):
    """(output index, upstream grad, local factor) for every term the consumer's backward
    loops added into node.grad[index], in the order its writes added them."""
    upstream = np.array(consumer._grad, dtype=consumer.dtype)  # a host copy: loops never see the real one
    adds = _run_backward(consumer, node, index, upstream, tracing=True).adds
    outputs = sorted(set().union(*(added for added, _ in adds)))
    local = {u: _local_factors(consumer, node, index, u, len(adds)) for u in outputs}
    for k, (added, _) in enumerate(adds):
        for u in sorted(added):  # row-major order
            yield tuple(int(i) for i in u), float(upstream[u]), local[u][k]


def _local_factors(consumer, node, index, u, writes):
    """For each write into node.grad[index], what it added with an upstream gradient of 1
    at output u and 0 elsewhere: d consumer[u] / d node[index], as that write multiplied it."""
    one_hot = np.zeros(consumer.shape, consumer.dtype)
    one_hot[u] = 1
    amounts = [amount for _, amount in _run_backward(consumer, node, index, one_hot, tracing=False).adds]
    if len(amounts) != writes:  # only a loop that branches on the upstream values could do this
        raise ExplainError(f"the backward loops of {consumer.name!r} ({consumer.op.name}) write "
                           f"{node.name}{list(index)} {writes} times with the real upstream gradient but "
                           f"{len(amounts)} times with a one-hot one: explain cannot pair the terms")
    return amounts


def _run_backward(consumer, node, index, upstream, tracing):
    """Run consumer's backward loops with `upstream` as its grad and zeroed grads for its
    inputs, watched by a recorder, which is returned. The real grads are put back."""
    saved = [(n, n._grad) for n in (consumer, *consumer.inputs)]
    try:
        consumer._grad = upstream
        for p in consumer.inputs:
            p._grad = np.zeros(p.shape, p.dtype) if p.requires_grad else None
        # each upstream element starts out carrying its own index
        sources = {_address(upstream, u): frozenset([u]) for u in np.ndindex(*upstream.shape)} if tracing else None
        recorder = _Recorder(_address(node._grad, index), sources)
        with _watching(recorder):
            consumer.op.backward(consumer, *consumer.inputs)
        return recorder
    finally:
        for n, grad in reversed(saved):
            n._grad = grad


@contextlib.contextmanager
def _watching(recorder):
    """Hand every loop the Python backend runs to `recorder` inside this block."""
    saved, python_backend.watcher = python_backend.watcher, recorder
    try:
        yield
    finally:
        python_backend.watcher = saved


# -- following the upstream gradient through the loops --------------------------------------

_NOTHING = frozenset()
_SUM_SO_FAR = "the sum so far"  # what the explained element holds once a loop has added into it


def _sources(x):
    """The upstream elements a value was computed from (none for a plain number)."""
    return getattr(x, "sources", _NOTHING)


def _arithmetic(compute):
    """One operator of _Traced: the value as NumPy computes it (inf, not ZeroDivisionError,
    for x / 0, as the loops get without explain), and the operands' sources joined."""
    def method(self, other):
        value = compute(np.float64(float(self)), np.float64(other))
        return _Traced(value, _sources(self) | _sources(other))
    return method


class _Traced(float):
    """A float that carries the set of upstream-gradient elements it was computed from.

    After `acc += dC[i,j] * B[k,j]` over j, acc carries every (i, j), whatever B holds: a
    term is a term even when its local factor is 0. (A value passed through math.exp would
    lose its set; backward loops only add and multiply the upstream gradient.)
    """

    __array_ufunc__ = None  # a NumPy scalar on the left then defers to our reflected operators

    def __new__(cls, value, sources=_NOTHING):
        self = super().__new__(cls, value)
        self.sources = sources
        return self

    __add__ = _arithmetic(lambda a, b: a + b)
    __radd__ = _arithmetic(lambda a, b: b + a)
    __sub__ = _arithmetic(lambda a, b: a - b)
    __rsub__ = _arithmetic(lambda a, b: b - a)
    __mul__ = _arithmetic(lambda a, b: a * b)
    __rmul__ = _arithmetic(lambda a, b: b * a)
    __truediv__ = _arithmetic(lambda a, b: a / b)
    __rtruediv__ = _arithmetic(lambda a, b: b / a)
    __pow__ = _arithmetic(lambda a, b: a ** b)
    __rpow__ = _arithmetic(lambda a, b: b ** a)

    def __neg__(self):
        return _Traced(-float(self), self.sources)

    def __pos__(self):
        return self

    def __abs__(self):
        return _Traced(abs(float(self)), self.sources)


def _address(array, index):
    """Where element `index` of a NumPy array lies in memory. Views of one buffer (flat,
    rows, .reshape) give one element one address, so its sources follow it."""
    index = index if isinstance(index, tuple) else (index,)
    start = array.__array_interface__["data"][0]
    return start + sum((int(i) % n) * step for i, n, step in zip(index, array.shape, array.strides))


class _Recorded:
    """An array as a loop body sees it while explain watches: a float read carries the
    sources stored at its address, and every write goes through the recorder."""

    def __init__(self, array, recorder):
        self.array, self.recorder = array, recorder
        self.shape, self.dtype = array.shape, array.dtype

    def __getitem__(self, index):
        value = self.array[index]
        if self.dtype.kind != "f":
            return int(value)  # ids, labels, maxout's winning piece: indices, never traced
        return self.recorder.read(_address(self.array, index), value)

    def __setitem__(self, index, value):
        self.recorder.write(self.array, index, value)


class _Recorder:
    """The Python backend's watcher while one consumer's backward loops run for explain.

    With `sources` (address -> the upstream elements the value there came from), reads
    carry their sources and writes store them, so they survive a trip through a scratch
    array (transposed(out.grad) is a copy made by a loop). Either way, `adds` lists each
    write into the explained element: (the upstream elements it added, the amount).
    """

    def __init__(self, target, sources=None):
        self.target = target  # the address of node.grad[index]
        self.tracing = sources is not None
        self.sources = sources if self.tracing else {}
        self.adds = []
        self.seen = []  # every array a loop was given, kept alive so no address is reused

    def run(self, body, grid, args):
        self.seen += [a for a in args if isinstance(a, np.ndarray)]
        recorded = [_Recorded(a, self) if isinstance(a, np.ndarray) else a for a in args]
        for point in itertools.product(*(range(n) for n in grid)):
            body(*point, *recorded)

    def read(self, address, value):
        return _Traced(value, self.sources.get(address, _NOTHING)) if self.tracing else value

    def write(self, array, index, value):
        address, before = _address(array, index), float(array[index])
        array[index] = value
        if address == self.target:
            self.adds.append((_sources(value) - {_SUM_SO_FAR}, float(array[index]) - before))
        if self.tracing:
            # the explained element now holds a running sum: the next `+=` reads it back,
            # and what it read is no new term
            self.sources[address] = frozenset([_SUM_SO_FAR]) if address == self.target else _sources(value)


def jacobian(out, wrt):
    """The full Jacobian d out / d wrt, of shape out.shape + wrt.shape, from the backward
    loops: one backward per element of `out`, with a one-hot upstream gradient.

    Reshaped to a matrix it orders elements row-major, as deck 000's J_W(Wx) (x^T blocks on
    the diagonal); deck 002's vec stacks columns (tutorial 03 shows both)."""
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
