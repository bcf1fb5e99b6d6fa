"""Gradient checking by central differences, with a report a person can read.

    report = gradcheck(loss)          # every Parameter / Input(grad=True) it depends on
    assert report, report             # falsy on failure; str(report) lists every bad element

For an output that is not a scalar, gradcheck draws a random upstream gradient G and
checks the gradient of f = sum(G * output): one run tests the op's backward loops with a
general upstream gradient, not only with ones.
"""

from dataclasses import dataclass, field

import numpy as np

from loopnet.backends import current_backend
from loopnet.graph import Node, backward, forward, topological_order
from loopnet.snapshot import GraphState


@dataclass
class Mismatch:
    """One element whose backprop gradient disagrees with the finite difference."""

    check: str  # "finite difference", "backward twice", "zero upstream"
    input: str
    index: tuple
    numeric: float
    analytic: float

    @property
    def error(self):
        return abs(self.numeric - self.analytic)


@dataclass
class GradcheckReport:
    output: str
    inputs: list
    eps: float
    rtol: float
    atol: float
    checked: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    failures: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.failures

    def __bool__(self):
        return self.ok

    def __str__(self):
        head = (
            f"gradcheck of {self.output!r} w.r.t. {', '.join(self.inputs) or 'nothing'}: "
            f"{self.checked} elements, max abs error {self.max_abs_error:.3g}, "
            f"max rel error {self.max_rel_error:.3g} (eps={self.eps:g}, rtol={self.rtol:g}, atol={self.atol:g})"
        )
        if self.ok:
            return head + ": OK"
        lines = [head + f": {len(self.failures)} FAILED", ""]
        lines.append(f"  {'check':<18} {'input':<14} {'index':<12} {'numeric':>14} {'analytic':>14} {'error':>10}")
        for m in self.failures:
            lines.append(
                f"  {m.check:<18} {m.input:<14} {str(m.index):<12} {m.numeric:>14.7g} {m.analytic:>14.7g} {m.error:>10.3g}"
            )
        return "\n".join(lines)


def _default_tolerances(dtype):
    if dtype == np.float32:
        return 1e-2, 1e-2, 1e-2  # eps, rtol, atol: float32 differences are noisy by nature
    return 1e-6, 1e-5, 1e-6


def gradcheck(output, wrt=None, *, upstream=None, eps=None, rtol=None, atol=None, seed=0):
    """Compare every backprop gradient element with a central difference.

    output:   the node to differentiate (any shape).
    wrt:      the leaves to check; default every Parameter and Input(grad=True) it uses.
    upstream: the gradient fed into `output` (default: ones for a scalar, else random).
    eps, rtol, atol: step and tolerances; defaults suit float64 (looser for float32).
      An element fails when |numeric - analytic| > atol + rtol * max(|numeric|, |analytic|).

    Also checks that running backward twice gives identical grads (grads are zeroed, not
    accumulated across calls) and that a zero upstream gradient gives zero grads.
    Returns a GradcheckReport: truthy when everything agrees; str() lists every failure.

    Leaves the graph as it found it: every leaf's value, every node's grad (None where
    there was none), the output's value and what ops keep between runs (batch_norm's
    running statistics) are restored, so `.grad` or `ln.explain` read
    afterwards see the last backward you ran, not gradcheck's. Values are perturbed by
    assigning `.value`, which works the same on every backend.
    """
    if not isinstance(output, Node):
        raise TypeError(f"gradcheck needs a loopnet node, got {type(output).__name__}")
    order = topological_order(output)
    if wrt is None:
        wrt = [n for n in order if n.op is None and n.requires_grad]
    d_eps, d_rtol, d_atol = _default_tolerances(output.dtype)
    eps, rtol, atol = eps or d_eps, rtol if rtol is not None else d_rtol, atol if atol is not None else d_atol

    saved = GraphState(order)
    try:
        return _check(output, wrt, upstream, seed, eps, rtol, atol)
    finally:
        saved.restore(output)


def _check(output, wrt, upstream, seed, eps, rtol, atol):
    forward(output)
    if upstream is None:
        rng = np.random.default_rng(seed)
        upstream = np.ones(output.shape) if output.shape == () else rng.standard_normal(output.shape)
    upstream = np.asarray(upstream, dtype=np.float64)

    def objective():
        return float(np.sum(upstream * np.asarray(forward(output), dtype=np.float64)))

    backward(output, grad=upstream)
    analytic = {id(n): np.array(n.grad, dtype=np.float64) for n in wrt}
    report = GradcheckReport(output.name, [n.name for n in wrt], eps, rtol, atol)
    for node in wrt:
        _finite_differences(node, objective, analytic[id(node)], report)
    _check_backward_again(output, wrt, upstream, analytic, report)
    return report


def _finite_differences(node, objective, analytic, report):
    """Compare each element of `analytic` (node's grad) with a central difference of
    `objective`, giving node perturbed values and then its own back, exactly."""
    eps, rtol, atol = report.eps, report.rtol, report.atol
    original = np.array(node.value)
    for index in np.ndindex(*node.shape):
        values = original.copy()
        values[index] = original[index] + eps
        node.value = values
        plus = objective()
        values = original.copy()
        values[index] = original[index] - eps
        node.value = values
        minus = objective()
        node.value = original.copy()
        numeric = (plus - minus) / (2 * eps)
        ana = float(analytic[index])
        error = abs(numeric - ana)
        scale = max(abs(numeric), abs(ana))
        report.checked += 1
        report.max_abs_error = max(report.max_abs_error, error)
        if scale > atol:  # relative error means nothing where both are zero up to rounding
            report.max_rel_error = max(report.max_rel_error, error / scale)
        if not error <= atol + rtol * scale:  # `not <=` so that a NaN fails
            report.failures.append(Mismatch("finite difference", node.name, index, numeric, ana))


def _check_backward_again(output, wrt, upstream, analytic, report):
    """A second backward gives identical grads (zeroed, not accumulated across calls), and
    a zero upstream gradient gives zero grads."""
    forward(output)
    backward(output, grad=upstream)
    for node in wrt:
        again = np.asarray(node.grad, dtype=np.float64)
        for index in map(tuple, np.argwhere(~(again == analytic[id(node)]))):  # argwhere: 0-d too
            report.failures.append(
                Mismatch("backward twice", node.name, tuple(int(i) for i in index),
                         float(analytic[id(node)][index]), float(again[index]))
            )
    backward(output, grad=np.zeros(output.shape))
    for node in wrt:
        zero = np.asarray(node.grad, dtype=np.float64)
        for index in map(tuple, np.argwhere(zero != 0)):
            report.failures.append(
                Mismatch("zero upstream", node.name, tuple(int(i) for i in index), 0.0, float(zero[index]))
            )


def assert_gradcheck(output, wrt=None, **options):
    """gradcheck, raising AssertionError with the full report when anything disagrees."""
    report = gradcheck(output, wrt, **options)
    if not report.ok:
        raise AssertionError(str(report))
    return report
