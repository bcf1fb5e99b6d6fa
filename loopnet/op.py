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
            loop(affine_forward, out.shape, x.value, transposed(W.value), b.value, out.value)

        def backward(self, out, x, W, b):
            if x.requires_grad:
                loop(affine_grad_x, x.shape, W.value, out.grad, x.grad)
            ...

(`loop`, `transposed` and the other launch helpers are in `loopnet/loops.py`.)

Inside `forward` and `backward`, `.value` and `.grad` are the backend's own arrays:
NumPy arrays on the python and numba backends, device arrays on cuda. So an op never
copies to the host; users reading `.value` elsewhere always get NumPy.

What backward needs from forward: each node gets its own Op instance (`Affine().apply(...)`
makes one per node), so the instance is the node's saved context, as `ctx` is in
PyTorch's autograd functions. An op that needs more than its inputs and output for its
backward loops stores it on `self` in `forward`: maxout keeps which piece won, layer_norm
each row's mean and 1/std, dropout its mask. Everything else is recomputed from the
inputs, so no hidden state passes between the two.

Loop bodies: a family (Elementwise, Binary, and the ops' own small bases) names its bodies
in class attributes, `forward_body` and `grad_<input>_body` (one per input that takes a
gradient), and its `forward`/`backward` launch them. Body functions are named the same
way in the op files: `relu_forward`, `relu_grad_x`, `affine_grad_W`.
"""

import inspect
import re

import numpy as np

from loopnet.errors import DTypeError, ShapeError
from loopnet.graph import FLOAT_DTYPES, Node
from loopnet.loops import flat, loop


def _is_body_slot(attr):
    return attr == "forward_body" or re.fullmatch(r"grad_\w+_body", attr) is not None


class _OpClass(type):
    """Keeps loop bodies put in body slots plain functions, not methods, so that
    `self.forward_body` is the op file's function itself (the one a breakpoint is in),
    whether the slot is filled in the class body or assigned later (`Relu.grad_x_body = f`)."""

    def __init__(cls, name, bases, namespace):
        super().__init__(name, bases, namespace)
        for attr, value in namespace.items():
            cls._check_slot(attr)
            if _is_body_slot(attr) and inspect.isfunction(value):
                super().__setattr__(attr, staticmethod(value))

    def __setattr__(cls, attr, value):
        cls._check_slot(attr)
        if _is_body_slot(attr) and inspect.isfunction(value):
            value = staticmethod(value)
        super().__setattr__(attr, value)

    def _check_slot(cls, attr):
        if attr in ("backward_body", "backward_a", "backward_b"):
            raise TypeError(f"{cls.__name__}.{attr}: backward bodies are named grad_<input>_body now "
                            f"(grad_x_body for an Elementwise op, grad_a_body/grad_b_body for a Binary one)")


class Op(metaclass=_OpClass):
    """Base class of every op. Subclasses set `name` and `inputs`, and write `shape`,
    `forward` and `backward`. `label_inputs` names inputs that hold targets or labels:
    they may be integers, never receive a gradient and do not decide the output dtype."""

    name = "op"
    inputs = ()
    label_inputs = ()
    replayable = True  # False where forward does host-side work a recorded step cannot repeat (loopnet.replay)

    def grad_body_of(self, role):
        """The loop body that writes the gradient of input `role` (slot grad_<role>_body)."""
        return getattr(self, f"grad_{role}_body")

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


class Elementwise(Op):
    """y[i] = f(x[i]) over every element; backward dx[i] += dy[i] * f'(x[i]).

    Bodies: `forward_body(i, x, y, *params)` and `grad_x_body(i, x, y, dy, dx, *params)`,
    both over flat views, so one loop serves every rank. `params` are the op's scalars
    (e.g. leaky_relu's alpha).
    """

    inputs = ("x",)
    forward_body = grad_x_body = None

    def __init__(self, *params):
        self.params = params

    def shape(self, x):
        return x.shape

    def forward(self, out, x):
        loop(self.forward_body, (x.size,), flat(x.value), flat(out.value), *self.params)

    def backward(self, out, x):
        if x.requires_grad:
            loop(
                self.grad_x_body, (x.size,),
                flat(x.value), flat(out.value), flat(out.grad), flat(x.grad), *self.params,
            )


class Binary(Op):
    """y[i] = f(a[i], b[i]) for two arrays of one shape.

    Bodies: `forward_body(i, a, b, y)`, `grad_a_body(i, a, b, dy, da)`,
    `grad_b_body(i, a, b, dy, db)`.
    """

    inputs = ("a", "b")
    forward_body = grad_a_body = grad_b_body = None

    def shape(self, a, b):
        if a.shape != b.shape:
            raise self.shape_error(
                (a, b), "both inputs must have the same shape (for a bias over rows use affine, or reshape)"
            )
        return a.shape

    def forward(self, out, a, b):
        loop(self.forward_body, (a.size,), flat(a.value), flat(b.value), flat(out.value))

    def backward(self, out, a, b):
        for role, node in (("a", a), ("b", b)):
            if node.requires_grad:
                loop(self.grad_body_of(role), (node.size,), flat(a.value), flat(b.value), flat(out.grad), flat(node.grad))
