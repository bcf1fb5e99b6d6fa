"""Declared schedules: how a compiled backend may run a loop faster, without a second copy.

A contraction body says in one line what it computes:

    @contraction("Y[n,m] = b[m] + sum_d X[n,d] * WT[m,d]")
    def affine_forward(n, m, X, WT, b, Y):
        acc = b[m]
        for d in range(X.shape[1]):
            acc += X[n, d] * WT[m, d]
        Y[n, m] = acc

The body stays the definition: the Python backend runs it as it is, and every backend runs
it wherever a schedule does not apply. The declaration lets the compiled backends
reorganise the same sum:

- Numba computes a 4 x 4 block of outputs per step with sixteen accumulators in
  registers: one load of each operand per four multiply-adds instead of two loads per
  one, measured at 1.2-1.7x on the lectures' layer sizes. Blocks that would run past an
  edge call the body.
- CUDA runs 16 x 16 output tiles whose operands are staged through shared memory, so
  each element is read from device memory once per tile rather than once per output.
  This is not yet measured on a GPU.

The equality tests hold every scheduled kernel to the body on shapes with interior blocks
and ragged edges.

The form is a row-by-row dot product, both operands' summed index last (unit stride):

    OUT[i,j] (= | +=) [INIT[j] +] sum_k A[i,k] * B[j,k]
"""

import inspect
import re
from dataclasses import dataclass

from loopnet.errors import LoopnetError


class ScheduleError(LoopnetError, ValueError):
    """A declared schedule that does not parse, or does not fit its body."""


@dataclass(frozen=True)
class Contraction:
    out: str
    a: str
    b: str
    init: str  # a 1-D array indexed by j, or None
    accumulate: bool  # `+=` (a gradient) or `=` (a value)
    spec: str

    def positions(self, body):
        """Where OUT, A, B and INIT sit among the body's array arguments (after i, j)."""
        names = list(inspect.signature(body).parameters)[2:]
        return {role: names.index(name) for role, name in
                (("out", self.out), ("a", self.a), ("b", self.b), ("init", self.init)) if name is not None}


_FORM = re.compile(
    r"^\s*(?P<out>\w+)\[(?P<i>\w+),\s*(?P<j>\w+)\]\s*(?P<op>\+?=)\s*"
    r"(?:(?P<init>\w+)\[(?P<init_j>\w+)\]\s*\+\s*)?"
    r"sum_(?P<k>\w+)\s+(?P<a>\w+)\[(?P<a_i>\w+),\s*(?P<a_k>\w+)\]\s*\*\s*(?P<b>\w+)\[(?P<b_j>\w+),\s*(?P<b_k>\w+)\]\s*$"
)


def contraction(spec):
    """Declare that a body computes OUT[i,j] (=|+=) [INIT[j] +] sum_k A[i,k] * B[j,k]."""
    match = _FORM.match(spec)
    if not match:
        raise ScheduleError(f"cannot read the contraction {spec!r}; the form is OUT[i,j] = [INIT[j] +] sum_k A[i,k] * B[j,k]")
    g = match.groupdict()
    if not (g["a_i"] == g["i"] and g["b_j"] == g["j"] and g["a_k"] == g["k"] == g["b_k"]
            and (g["init"] is None or g["init_j"] == g["j"])):
        raise ScheduleError(f"in {spec!r} the indices must be OUT[i,j], A[i,k], B[j,k] and INIT[j]")

    def declare(body):
        params = list(inspect.signature(body).parameters)
        if params[:2] != [g["i"], g["j"]]:
            raise ScheduleError(f"{body.__name__}: the grid indices are {params[:2]}, the contraction says {[g['i'], g['j']]}")
        for name in (g["out"], g["a"], g["b"], g["init"]):
            if name is not None and name not in params[2:]:
                raise ScheduleError(f"{body.__name__} has no argument {name!r} named in {spec!r}")
        body.contraction = Contraction(g["out"], g["a"], g["b"], g["init"], g["op"] == "+=", spec)
        return body

    return declare
