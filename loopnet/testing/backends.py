"""Compare a backend with the Python reference on the same graph."""

import numpy as np

from loopnet.backends import use
from loopnet.graph import backward, forward, topological_order

TOLERANCE = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


def run_graph(output, backend, upstream):
    """Forward and backward on `backend`; every node's value and grad, copied."""
    with use(backend):
        forward(output)
        if output.requires_grad:
            backward(output, grad=upstream)
        return [(n.name, np.array(n.value), None if n.grad is None else np.array(n.grad))
                for n in topological_order(output)]


def close(got, want, rtol, floor=0.0):
    """Equal to `rtol` relative to the array's largest magnitude, or to `floor` if that is
    larger (sums reassociated by a compiled backend differ by rounding in proportion to
    their terms, not their result: pass the graph's largest magnitude as `floor`).

    In float32 the scale is at least 1: a cancellation such as tanh' = 1 - y^2 near
    y = 1 turns one ulp of y (Python's math.tanh rounds a double, Numba's tanhf a float)
    into a large relative error of a small result, whichever backend is right."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return False
    if got.dtype.kind in "iu":
        return bool(np.array_equal(got, want))
    same_nonfinite = np.array_equal(np.isfinite(got), np.isfinite(want)) and np.array_equal(
        got[~np.isfinite(want)], want[~np.isfinite(want)], equal_nan=True)
    finite = np.isfinite(want)
    scale = float(np.max(np.abs(want[finite]))) if finite.any() else 0.0
    if want.dtype == np.float32:
        scale = max(scale, 1.0)
    scale = max(scale, floor)
    return same_nonfinite and bool(np.all(np.abs(got[finite] - want[finite]) <= rtol * max(scale, 1e-30)))


def assert_backends_agree(output, backend, reference="python", rtol=None, seed=0):
    """Run `output`'s graph on both backends; every value and grad must agree."""
    rtol = rtol or TOLERANCE[np.dtype(output.dtype)]
    rng = np.random.default_rng(seed)
    upstream = None if output.shape == () else rng.standard_normal(output.shape).astype(output.dtype)
    want = run_graph(output, reference, upstream)
    got = run_graph(output, backend, upstream)
    # The graph's scale: a result that is a small difference of large terms (layer_norm's
    # dx, a softmax gradient) carries rounding of the terms' size, whichever backend.
    floor = max((float(np.max(np.abs(a[np.isfinite(a)]))) for _, v, g in want for a in (v, g)
                 if a is not None and a.dtype.kind == "f" and np.isfinite(a).any()), default=0.0)
    for (name, value, grad), (_, value_ref, grad_ref) in zip(got, want):
        assert close(value, value_ref, rtol, floor), f"{backend} value of {name!r} differs:\n{value}\nvs {reference}:\n{value_ref}"
        assert (grad is None) == (grad_ref is None)
        if grad is not None:
            assert close(grad, grad_ref, rtol, floor), f"{backend} grad of {name!r} differs:\n{grad}\nvs {reference}:\n{grad_ref}"
