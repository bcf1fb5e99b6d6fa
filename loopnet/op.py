"""What an op is: a shape rule, a forward loop nest, and one backward loop nest per input.

An op file in `loopnet/ops/` holds the math (its docstring), the loop bodies, and a short
class saying which loop runs over which grid with which arrays:

    class Affine(Op):
        name = "affine"
        inputs = ("x", "W", "b")

        def shape(self, x, W, b):             # checks shapes; computes nothing
            ...
            return (N, M)

        def forward(self, out, x, W, b):
            loop(affine_forward, out.shape, x.value, W.value, b.value, out.value)

        def backward(self, out, x, W, b):
            if x.requires_grad:
                loop(affine_grad_x, x.shape, W.value, out.grad, x.grad)
            ...

`loop(body, grid, *arrays)` calls `body(*index, *arrays)` at every index of `grid`. Each
grid point owns the elements it writes (gather form), so the points can run in any order
or all at once: Python runs them as nested loops, Numba with `prange`, CUDA as threads.

Inside `forward` and `backward`, `.value` and `.grad` are the backend's own arrays:
NumPy arrays on the python and numba backends, device arrays on cuda. So an op never
copies to the host; users reading `.value` elsewhere always get NumPy.
"""

import numpy as np

from loopnet.backends import current_backend
from loopnet.errors import DTypeError, ShapeError
from loopnet.graph import FLOAT_DTYPES, Node


def loop(body, grid, *args):
    """Run `body(*index, *args)` for every index in `grid` on the selected backend."""
    current_backend().loop(body, tuple(grid), args)


def flat(array):
    """A 1-D view of a contiguous array, so one elementwise loop serves every rank."""
    return array.reshape(-1)


def rows(array):
    """A 2-D view (rows, last axis) of a contiguous array, so one row loop serves every rank."""
    # shape[ndim - 1], not shape[-1]: CUDA device arrays (and the simulator's) refuse
    # negative indices into their shape
    return array.reshape(-1, array.shape[array.ndim - 1])


def scratch(shape, dtype):
    """A zeroed array for a loop to write (e.g. which maxout piece won), on the backend's
    device, so it never travels to the host between forward and backward."""
    return current_backend().zeros(shape, dtype)


def to_backend(host_array):
    """A NumPy array made outside the loops (a dropout mask) moved where the loops run."""
    return current_backend().asarray(host_array)


def transpose_body(j, i, A, AT):
    AT[j, i] = A[i, j]


def transposed(array):
    """A row-major copy of a matrix's transpose, made by a loop like any other.

    Contractions use it so their inner loop walks memory in order: a sum over k of
    A[i,k] * B[k,j] reads B down a column (one cache line per term), while the same sum
    over BT[j,k] reads a row (unit stride: Numba vectorises it). The copy costs one pass
    over B; the sum reads B once per row of A.
    """
    out = current_backend().empty((array.shape[1], array.shape[0]), array.dtype)
    loop(transpose_body, out.shape, array, out)
    return out


class Op:
    """Base class of every op. Subclasses set `name` and `inputs`, and write `shape`,
    `forward` and `backward`. `label_inputs` names inputs that hold targets or labels:
    they may be integers, never receive a gradient and do not decide the output dtype."""

    name = "op"
    inputs = ()
    label_inputs = ()

    def shape(self, *nodes):
        raise NotImplementedError

    def forward(self, out, *nodes):
        raise NotImplementedError

    def backward(self, out, *nodes):
        raise NotImplementedError

    def validate(self, *nodes):
        """Checks on the values (not just shapes) before each forward, e.g. label range."""

    # -- machinery shared by every op: type checks, shape inference, making the node --

    def describe(self, nodes):
        return ", ".join(f"{role}={node.name!r} {node.shape}" for role, node in zip(self.inputs, nodes))

    def shape_error(self, nodes, problem):
        return ShapeError(f"{self.name}: {problem} (got {self.describe(nodes)})")

    def output_dtype(self, nodes):
        dtypes = {}
        for role, node in zip(self.inputs, nodes):
            if role in self.label_inputs:
                continue
            if node.dtype not in FLOAT_DTYPES:
                raise DTypeError(
                    f"{self.name}: input {role}={node.name!r} holds {node.dtype}; "
                    f"this op needs float32 or float64 (integers are for labels)"
                )
            dtypes.setdefault(node.dtype, []).append(node.name)
        if len(dtypes) > 1:
            parts = "; ".join(f"{dtype}: {', '.join(names)}" for dtype, names in dtypes.items())
            raise DTypeError(f"{self.name}: inputs mix float32 and float64 ({parts}); convert one side")
        return next(iter(dtypes)) if dtypes else np.dtype(np.float64)

    def prepare(self, out):
        """Re-check shapes and dtypes before a forward pass (an Input may have changed)."""
        out.dtype = self.output_dtype(out.inputs)
        out.shape = tuple(self.shape(*out.inputs))
        self.validate(*out.inputs)

    def apply(self, nodes, name=None):
        """Make the node `self(nodes)`: check types and shapes now, compute nothing."""
        if len(nodes) != len(self.inputs):
            raise TypeError(f"{self.name} takes {len(self.inputs)} inputs ({', '.join(self.inputs)}), got {len(nodes)}")
        for role, node in zip(self.inputs, nodes):
            if not isinstance(node, Node):
                raise TypeError(
                    f"{self.name}: input {role} must be a loopnet node (Input, Parameter or an op's result), "
                    f"got {type(node).__name__}; wrap arrays in Input(...) or Parameter(...)"
                )
        dtype = self.output_dtype(nodes)
        shape = tuple(self.shape(*nodes))
        requires_grad = any(
            node.requires_grad for role, node in zip(self.inputs, nodes) if role not in self.label_inputs
        )
        return Node(self, nodes, shape, dtype, name, requires_grad)


# ---------------------------------------------------------------------------------------
# Families of ops that share one shape rule and one launch pattern. An op of a family
# needs only its math and its loop bodies.


class _Family(Op):
    """Stores the loop bodies a subclass names as plain functions (not methods)."""

    bodies = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for attr in cls.bodies:
            body = cls.__dict__.get(attr)
            if body is not None and not isinstance(body, staticmethod):
                setattr(cls, attr, staticmethod(body))


class Elementwise(_Family):
    """y[i] = f(x[i]) over every element; backward dx[i] += dy[i] * f'(x[i]).

    Bodies: `forward(i, x, y, *params)` and `backward(i, x, y, dy, dx, *params)`, both
    over flat views, so one loop serves every rank. `params` are the op's scalars
    (e.g. leaky_relu's alpha).
    """

    inputs = ("x",)
    bodies = ("forward_body", "backward_body")

    def __init__(self, *params):
        self.params = params

    def shape(self, x):
        return x.shape

    def forward(self, out, x):
        loop(self.forward_body, (x.size,), flat(x.value), flat(out.value), *self.params)

    def backward(self, out, x):
        if x.requires_grad:
            loop(
                self.backward_body, (x.size,),
                flat(x.value), flat(out.value), flat(out.grad), flat(x.grad), *self.params,
            )


class Binary(_Family):
    """y[i] = f(a[i], b[i]) for two arrays of one shape.

    Bodies: `forward(i, a, b, y)`, `backward_a(i, a, b, dy, da)`, `backward_b(i, a, b, dy, db)`.
    """

    inputs = ("a", "b")
    bodies = ("forward_body", "backward_a", "backward_b")

    def shape(self, a, b):
        if a.shape != b.shape:
            raise self.shape_error(
                (a, b), "both inputs must have the same shape (for a bias over rows use affine, or reshape)"
            )
        return a.shape

    def forward(self, out, a, b):
        loop(self.forward_body, (a.size,), flat(a.value), flat(b.value), flat(out.value))

    def backward(self, out, a, b):
        if a.requires_grad:
            loop(self.backward_a, (a.size,), flat(a.value), flat(b.value), flat(out.grad), flat(a.grad))
        if b.requires_grad:
            loop(self.backward_b, (b.size,), flat(a.value), flat(b.value), flat(out.grad), flat(b.grad))
