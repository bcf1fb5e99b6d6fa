"""Python's operators on nodes, as PyTorch users expect: `a + b`, `x * 0.5`, `1 - p`, `-a`,
`a / b`, `a @ B`, `x ** 2`, `2 ** x`.

Each operator is one op call, so `a + b` is `add(a, b)`: the same node, the same loops,
the same name in `trace` (broadcasting and numbers as the binary ops allow them). They are
set on `Node` here, where the ops are, because the engine (loopnet/graph.py) sits below
the ops and does not import them.

Comparisons (`==`, `<`) are left alone: a node is a key in dictionaries (graph walks,
optimizer state), so `==` keeps meaning "the same node".
"""

from loopnet.graph import Node
from loopnet.ops.arithmetic import add, div, mul, sub
from loopnet.ops.matmul import matmul
from loopnet.ops.pointwise import negate
from loopnet.ops.powers import pow


def _add(self, other):
    return add(self, other)


def _radd(self, other):
    return add(other, self)


def _sub(self, other):
    return sub(self, other)


def _rsub(self, other):
    return sub(other, self)


def _mul(self, other):
    return mul(self, other)


def _rmul(self, other):
    return mul(other, self)


def _truediv(self, other):
    return div(self, other)


def _rtruediv(self, other):
    return div(other, self)


def _matmul(self, other):
    return matmul(self, other)


def _rmatmul(self, other):
    return matmul(other, self)


def _pow(self, exponent):
    return pow(self, exponent)


def _rpow(self, base):
    return pow(base, self)


def _neg(self):
    return negate(self)


OPERATORS = {
    "__add__": _add, "__radd__": _radd, "__sub__": _sub, "__rsub__": _rsub,
    "__mul__": _mul, "__rmul__": _rmul, "__truediv__": _truediv, "__rtruediv__": _rtruediv,
    "__matmul__": _matmul, "__rmatmul__": _rmatmul, "__pow__": _pow, "__rpow__": _rpow, "__neg__": _neg,
}

for _name, _function in OPERATORS.items():
    setattr(Node, _name, _function)
# NumPy would otherwise take `np.float64(2) * node` itself, elementwise over an object array
Node.__array_ufunc__ = None
