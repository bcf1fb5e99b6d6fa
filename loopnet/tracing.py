"""trace: every node of a graph with its value and gradient, in topological order.

The grown-up form of EDF's `verify()`: a learner derives gradients by hand and checks
them line by line against what backprop computed.
"""

import json
from dataclasses import dataclass

import numpy as np

from loopnet.graph import backward, forward, topological_order


@dataclass
class NodeRecord:
    name: str
    op: str
    inputs: list
    shape: tuple
    value: np.ndarray
    grad: object  # np.ndarray, or None for a node without a gradient

    def as_json(self):
        return {
            "name": self.name,
            "op": self.op,
            "inputs": list(self.inputs),
            "shape": list(self.shape),
            "value": self.value.tolist(),  # Python floats: json writes them with full precision
            "grad": None if self.grad is None else self.grad.tolist(),
        }


def trace(node, check_finite=False):
    """Run forward and backward once; return a NodeRecord per node, `node` last."""
    forward(node, check_finite=check_finite)
    if node.requires_grad:
        backward(node, check_finite=check_finite)
    return [
        NodeRecord(
            n.name, n.op_name, [p.name for p in n.inputs], n.shape,
            np.array(n.value), None if n.grad is None else np.array(n.grad),
        )
        for n in topological_order(node)
    ]


def to_json(records):
    return json.dumps({"nodes": [r.as_json() for r in records]})


SMALL = 16  # arrays up to this many elements are printed whole


def show_array(array):
    """A one-line rendering: small arrays whole, large ones as a summary."""
    if array is None:
        return "-"
    if array.size <= SMALL:
        options = {} if array.dtype.kind in "iu" else {"precision": 6, "suppress_small": True}
        text = np.array2string(array, separator=", ", max_line_width=10**6, **options)
        return " ".join(text.split())  # rows of a matrix on one line: [[1., 2.], [3., 4.]]
    if array.dtype.kind in "iu":
        return f"{array.size} ints in [{array.min()}, {array.max()}]"
    return (
        f"{array.size} values: min {array.min():.4g}, mean {array.mean():.4g}, max {array.max():.4g}, "
        f"|x| mean {np.abs(array).mean():.4g}"
    )


def to_text(records):
    """An aligned table, one node per line, then its value and grad."""
    header = ("#", "name", "op", "inputs", "shape")
    rows = [
        (str(i), r.name, r.op, ", ".join(r.inputs) or "-", str(r.shape))
        for i, r in enumerate(records, 1)
    ]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    indent = " " * (widths[0] + 2)
    for row, record in zip(rows, records):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        lines.append(f"{indent}value {show_array(record.value)}")
        lines.append(f"{indent}grad  {show_array(record.grad)}")
    return "\n".join(lines)
