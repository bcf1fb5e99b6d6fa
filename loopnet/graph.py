"""The computation graph: nodes, names, topological order, forward and backward.

Build the graph once, then run it many times (loopnet's own design; deck 003's
'Implementation' slides show an affine node of the EDF framework, values and grads as
attributes of nodes, as here).

    x = Input(data)                 # leaves hold data ...
    W = Parameter(w0)               # ... or trainable values
    loss = mse_loss(matmul(x, W), y)
    forward(loss)                   # every node's .value, in topological order
    backward(loss)                  # every .grad, in reverse topological order
    x.value = other_data            # new data, same graph
    forward(loss)                   # the new answer

Building a node checks shapes at once and computes nothing. The work is done by each op's
loops (`loopnet/ops/`), run by the selected backend (`loopnet/backends/`).
"""

import contextlib
import itertools
import math

import numpy as np

from loopnet.backends import current_backend
from loopnet.errors import DTypeError, GraphError, NonFiniteError

FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))  # the default first

# Every assignment to a leaf's .value takes the next stamp; forward records the stamp it
# saw, so backward can tell when the values it would differentiate are stale.
_stamps = itertools.count(1)


def _stamp():
    return next(_stamps)


# Every node takes the next number when it is built: the graph's topological order.
_build_counter = itertools.count()


# ---------------------------------------------------------------------------------------
# Names: a given name verbatim (a clash gets a suffix), else op name + counter.


class _NameScope:
    def __init__(self):
        self.counters = {}
        self.used = set()

    def claim(self, given, op_name):
        if given is not None:
            name, suffix = str(given), 1
            while name in self.used:
                suffix += 1
                name = f"{given}_{suffix}"
        else:
            while True:
                self.counters[op_name] = self.counters.get(op_name, 0) + 1
                name = f"{op_name}_{self.counters[op_name]}"
                if name not in self.used:
                    break
        self.used.add(name)
        return name


_scope = _NameScope()

# (node, "forward" or "backward") while that node's loops run: lets watch() attribute
# work counts to nodes.
current_step = None

# While an op's loops (or an optimizer's) are being launched, .value and .grad hand out the
# backend's own arrays, device arrays on CUDA, so no loop ever copies to the host.
# Everywhere else they are NumPy arrays.
_kernel_side = False


@contextlib.contextmanager
def kernel_side():
    """Inside this block .value and .grad are the backend's arrays (for loop launches)."""
    global _kernel_side
    saved, _kernel_side = _kernel_side, True
    try:
        yield
    finally:
        _kernel_side = saved


def _host(array):
    """A NumPy array for the user: device arrays are copied back, NumPy ones returned as is."""
    if array is None or isinstance(array, np.ndarray) or _kernel_side:
        return array
    return array.copy_to_host()


def _read_only(array):
    """What `.value` gives a user: a read-only view. A write into it would change data
    behind the graph's back: on cuda only a host copy (lost at the next forward), and on
    every backend backward could not tell that the values it reads are stale. So
    `W.value[0, 0] += 5` is refused everywhere; `W.value = new_array` is the way."""
    if array is None or _kernel_side:
        return array
    view = array.view()
    view.flags.writeable = False
    return view


def mark_changed(leaf):
    """A leaf's values were written in place by loopnet's own loops (an optimizer step):
    its host copy is stale, and so is every value computed from it until the next forward
    (backward refuses to run on them)."""
    leaf._host_copy = None
    leaf._set_at = _stamp()


@contextlib.contextmanager
def fresh_names():
    """Number automatic names from 1 again inside this block (used by `trace`).

    Graphs built inside get names that do not depend on what was built before, so a
    trace reads the same in every run.
    """
    global _scope
    saved, _scope = _scope, _NameScope()
    try:
        yield
    finally:
        _scope = saved


# ---------------------------------------------------------------------------------------
# Nodes


def _as_array(value, *, keep_integers, who):
    """A NumPy array by the contract's rules.

    float32 and float64 arrays keep their dtype; integer NumPy arrays stay integers where
    integers are allowed (labels in an Input); anything else numeric becomes float64.
    """
    if isinstance(value, Node):
        raise DTypeError(f"{who} was given the node {value.name!r}; pass its .value, an array")
    if isinstance(value, np.ndarray):
        # np.array(order="C") copies into row-major order; unlike np.ascontiguousarray it
        # keeps a 0-d array 0-d
        if value.dtype in FLOAT_DTYPES:
            return np.array(value, order="C")
        if value.dtype.kind in "iu" and keep_integers:
            return np.array(value, dtype=np.int64, order="C")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise DTypeError(f"{who}: cannot make an array of {value!r} ({err})") from None
    if array.dtype.kind not in "iuf":
        raise DTypeError(
            f"{who} needs real numbers, got dtype {array.dtype} from {type(value).__name__}"
            + (" (booleans: convert with .astype(float))" if array.dtype.kind == "b" else "")
        )
    return np.array(array, dtype=np.float64)


class Node:
    """One vertex of the graph: `.value` and `.grad` (arrays of one shape), `.name`,
    `.inputs` (the nodes it reads) and `.op` (the op that made it; None for a leaf)."""

    kind = "node"

    def __init__(self, op, inputs, shape, dtype, name, requires_grad):
        self.op = op
        self.inputs = tuple(inputs)
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.requires_grad = requires_grad
        self.name = _scope.claim(name, op.name if op is not None else self.kind)
        self._value = None
        self._grad = None
        self._evaluated_at = 0  # the stamp current when forward last computed this node
        self._order = None  # topological order of the graph ending here, once computed
        self._backward_root = None  # the output of the last backward that reached this node
        self._grad_blocks = None  # a backward root's grads, as views into one block per dtype
        self._built = next(_build_counter)

    @property
    def op_name(self):
        return self.op.name if self.op is not None else self.kind

    @property
    def value(self):
        """The node's value as a read-only NumPy array (on CUDA, a copy from the device).
        To change a leaf's data, assign a new array: `x.value = new`."""
        if self._value is None:
            raise GraphError(f"node {self.name!r} has not been computed yet: call forward({self.name}) first")
        return _read_only(_host(self._value))

    @property
    def grad(self):
        """The gradient of the last backward's output with respect to this node.

        None for a node that gets no gradient (data, labels, or anything computed only
        from them), and before the first backward. A NumPy array (on CUDA, a copy from the
        device; inside an op's loops, the backend's own array).
        """
        return _host(self._grad)

    @property
    def size(self):
        return math.prod(self.shape)  # (not np.prod: optimizers ask per parameter per step)

    def __repr__(self):
        return f"<{self.op_name} {self.name!r} shape={self.shape} dtype={self.dtype}>"


class _Leaf(Node):
    """A node that holds data instead of computing it; `.value` may be assigned."""

    keep_integers = False

    def __init__(self, value, name, requires_grad):
        array = _as_array(value, keep_integers=self.keep_integers, who=self.kind)
        super().__init__(None, (), array.shape, array.dtype, name, requires_grad)
        self._value = array
        self._host_copy = None  # on a device backend: the host array last set, while current
        self._set_at = _stamp()

    @property
    def value(self):
        if not _kernel_side and not isinstance(self._value, np.ndarray) and self._host_copy is not None:
            return _read_only(self._host_copy)  # data the user set, uploaded and unchanged since: no copy back
        return Node.value.fget(self)

    @value.setter
    def value(self, new):
        array = _as_array(new, keep_integers=self.keep_integers, who=f"{self.kind} {self.name!r}")
        if self.requires_grad and array.dtype not in FLOAT_DTYPES:
            raise DTypeError(f"{self.kind} {self.name!r} takes gradients, so it needs floats, got {array.dtype}")
        self._value = array
        self._host_copy = None
        self.shape, self.dtype = array.shape, array.dtype
        self._set_at = _stamp()


class Input(_Leaf):
    """Data fed to the graph: examples, targets, labels.

    `Input(value, name=None, grad=False)`. Gets a gradient only when asked (`grad=True`),
    e.g. to see how the loss changes with the data. An integer NumPy array stays integer
    (class labels); anything else becomes float64 unless it is a float32/float64 array.
    """

    kind = "Input"
    keep_integers = True

    def __init__(self, value, name=None, grad=False):
        super().__init__(value, name, bool(grad))
        if self.requires_grad and self.dtype not in FLOAT_DTYPES:
            raise DTypeError(f"Input {self.name!r} holds {self.dtype}; only float data can take a gradient")


class Parameter(_Leaf):
    """A trainable value: weights and biases. Always gets a gradient.

    `Parameter(value, name=None)`. float32/float64 arrays keep their dtype; anything else
    numeric (lists, Python numbers, integer arrays) becomes float64.
    """

    kind = "Parameter"

    def __init__(self, value, name=None):
        super().__init__(value, name, True)


# ---------------------------------------------------------------------------------------
# Running the graph


def topological_order(node):
    """Every node `node` depends on, each after all of its inputs; `node` comes last.

    The order is the order the nodes were built in (deck 000's 'Computation Graph' numbers
    its nodes in a topological order; building order is loopnet's own rule): a node's
    inputs exist before it does, so building order is always a topological order, and it
    reads the way the graph was written (an unrolled RNN's x1 before its x4).
    """
    if not isinstance(node, Node):
        raise TypeError(f"expected a loopnet node, got {type(node).__name__}")
    # A node's inputs are fixed when it is built, so its order never changes: keep it.
    if node._order is None:
        node._order = sorted(_ancestors(node), key=lambda n: n._built)
    return list(node._order)


def _ancestors(node):
    """`node` and every node it depends on (iteratively: a long RNN is a deep graph)."""
    seen, stack = {id(node): node}, [node]
    while stack:
        for parent in stack.pop().inputs:
            if id(parent) not in seen:
                seen[id(parent)] = parent
                stack.append(parent)
    return seen.values()


def set_dtype(node, dtype):
    """Convert every float leaf that `node` depends on to `dtype` (float32 or float64).

    Computed nodes follow at the next forward. Integer leaves (labels) are left alone.
    Returns `node`, so `forward(set_dtype(build(), "float32"))` reads well.
    """
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise DTypeError(f"set_dtype: dtype must be float32 or float64, got {dtype}")
    for leaf in topological_order(node):
        if leaf.op is None and leaf.dtype in FLOAT_DTYPES and leaf.dtype != dtype:
            leaf.value = leaf.value.astype(dtype)
    for current in topological_order(node):
        if current.op is not None:
            current.dtype = current.op.output_dtype(current.inputs)
    return node


def _check_finite(array, node, what, where):
    if not np.all(np.isfinite(array)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise NonFiniteError(
            f"{what} of node {node.name!r} ({node.op_name}) is {array[index]} at index {index}, {where}"
        )


@contextlib.contextmanager
def _running(node, phase):
    """While `node`'s forward or backward loops run: `current_step` names it (so watch()
    can attribute work counts), and .value/.grad hand out the backend's own arrays."""
    global current_step
    saved, current_step = current_step, (node, phase)
    try:
        with kernel_side():
            yield
    finally:
        current_step = saved


def _place_leaf(leaf, backend):
    """Put a leaf's data where the loops run. On a GPU, NumPy data is uploaded once per
    assignment to .value, and the host array is kept, so reading .value back is free."""
    if backend.owns(leaf._value):
        return
    host = leaf._value if isinstance(leaf._value, np.ndarray) else None
    leaf._value = backend.adopt(leaf._value)
    leaf._host_copy = host if not backend.owns(host) else None


def _output_array(node, backend):
    """Give `node` an array for its forward loops to write: the last pass's, if it fits."""
    value = node._value
    if value is None or not backend.owns(value) or value.shape != node.shape or value.dtype != node.dtype:
        node._value = backend.empty(node.shape, node.dtype)


def forward(node, check_finite=False):
    """Compute `node.value`: every node it depends on, in topological order.

    With `check_finite=True`, stop at the first node whose value holds a NaN or Inf and
    name it (NonFiniteError). Returns `node.value` (on CUDA, a copy to the host).
    """
    backend = current_backend()
    stamp = _stamp()
    for current in topological_order(node):
        if current.op is None:
            _place_leaf(current, backend)
            if check_finite and current.dtype in FLOAT_DTYPES:
                _check_finite(current.value, current, "value", "as given")
            continue
        current.op.prepare(current)  # shapes and dtypes again: an Input may have changed
        _output_array(current, backend)
        with _running(current, "forward"):
            current.op.forward(current, *current.inputs)
        if check_finite:
            inputs = ", ".join(p.name for p in current.inputs)
            _check_finite(backend.to_host(current._value), current, "value",
                          f"the first non-finite node; its inputs: {inputs}")
        current._evaluated_at = stamp
    return node.value


def _zero_grads(root, order, backend, seed):
    """Give every node that gets a gradient a zeroed .grad, and the others None; with
    `seed`, the root's grad then holds ones.

    The grads are views into one block per dtype, kept on the root from one backward to
    the next, so zeroing them is one fill (one launch on a GPU) rather than one per node.
    The root comes last in `order`, so its grad is the end of its block: on cuda the zeros
    and the seed are one launch (`fill_seeded`), elsewhere two fills.
    """
    needing = [n for n in order if n.requires_grad]
    layout = (backend.name, [(n, n.shape, n.dtype) for n in needing])
    cached = root._grad_blocks
    if cached is None or cached[0] != layout or not all(backend.owns(b) for b in cached[1]):
        sizes = {}
        for n in needing:
            sizes[n.dtype] = sizes.get(n.dtype, 0) + n.size
        blocks = {dtype: backend.empty((size,), dtype) for dtype, size in sizes.items()}
        views, used = [], dict.fromkeys(blocks, 0)
        for n in needing:
            start, used[n.dtype] = used[n.dtype], used[n.dtype] + n.size
            views.append(blocks[n.dtype][start:start + n.size].reshape(n.shape))
        root._grad_blocks = cached = (layout, list(blocks.values()), views)
    fill_seeded = getattr(backend, "fill_seeded", None) if seed else None
    for block in cached[1]:
        if fill_seeded is not None and block.dtype == root.dtype:
            fill_seeded(block, 0, block.size - root.size, 1)
        else:
            backend.fill(block, 0)
    for n, view in zip(needing, cached[2]):
        n._grad = view
    if seed and fill_seeded is None:
        backend.fill(root._grad, 1)
    for n in order:
        if not n.requires_grad:
            n._grad = None


def _check_differentiable(node, order):
    """Refuse a backward that has nothing to differentiate, or would read stale values."""
    if not node.requires_grad:
        raise GraphError(
            f"{node.name!r} does not depend on any Parameter or Input(grad=True): nothing to differentiate"
        )
    if node.op is not None:
        newest_input = max((n._set_at for n in order if n.op is None), default=0)
        if node._evaluated_at < newest_input:
            what = "has not been computed" if node._evaluated_at == 0 else "is stale (an input changed since)"
            raise GraphError(f"{node.name!r} {what}: call forward({node.name}) before backward")


def backward(node, grad=None, check_finite=False):
    """Fill `.grad` of every node `node` depends on, by the chain rule.

    Zeroes every grad in the graph, seeds `node.grad` with ones (or with `grad`, an array
    of node's shape: the upstream gradient), then runs each op's backward loops in reverse
    topological order. Grads accumulate with `+=`, so a node feeding several consumers
    gets the sum. `forward(node)` must have run since the inputs last changed.
    Returns None; the gradients are in each node's `.grad`.
    """
    order = topological_order(node)
    _check_differentiable(node, order)
    backend = current_backend()
    for current in order:
        current._backward_root = node  # so explain() can find the graph this grad came from
    _zero_grads(node, order, backend, seed=grad is None)
    if grad is not None:
        seed = np.asarray(grad, dtype=node.dtype)
        if seed.shape != node.shape:
            raise GraphError(f"upstream grad for {node.name!r} has shape {seed.shape}, the node {node.shape}")
        node._grad = backend.adopt(seed.copy())
    for current in reversed(order):
        if current.op is not None:
            with _running(current, "backward"):
                current.op.backward(current, *current.inputs)
            if check_finite:
                for parent in current.inputs:
                    if parent.requires_grad:
                        _check_finite(backend.to_host(parent._grad), parent, "grad",
                                      f"after the backward loops of {current.name!r} ({current.op_name})")
    # Returns nothing: read the grads you want from the nodes (on CUDA each read is a copy).
