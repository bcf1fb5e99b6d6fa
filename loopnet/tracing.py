"""trace: every node of a graph with its value and gradient, in topological order.

A learner derives gradients by hand and checks them line by line against what backprop
computed (a tool of loopnet's own).
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
    dtype: str  # float64, float32, or int64 for labels and ids
    value: np.ndarray
    grad: object  # np.ndarray, or None for a node without a gradient
    details: dict = None  # roles, doc, loops, explain: what the graph page shows (loopnet.view.details)

    def as_json(self):
        return {
            "name": self.name,
            "op": self.op,
            "inputs": list(self.inputs),
            "shape": list(self.shape),
            "dtype": self.dtype,
            "value": self.value.tolist(),  # Python floats: json writes them with full precision
            "grad": None if self.grad is None else self.grad.tolist(),
            **(self.details or {}),
        }


def trace(node, check_finite=False, details=False):
    """Run forward and backward once; return a NodeRecord per node, `node` last. With
    `details`, each record also holds what the graph page shows: the op's input roles, math
    and loop source, and each gradient element's explain terms (loopnet.view.details)."""
    forward(node, check_finite=check_finite)
    if node.requires_grad:
        backward(node, check_finite=check_finite)
    return [
        NodeRecord(
            n.name, n.op_name, [p.name for p in n.inputs], n.shape, n.dtype.name,
            np.array(n.value), None if n.grad is None else np.array(n.grad),
            _details(n) if details else None,
        )
        for n in topological_order(node)
    ]


def _details(node):
    from loopnet.view import details

    return {"roles": details.roles(node), "doc": details.op_doc(node), "loops": details.loops(node),
            "explain": details.explanations(node)}


def to_json(records):
    return json.dumps({"nodes": [r.as_json() for r in records]})


SMALL = 16  # arrays up to this many elements are printed whole


WIDTH = 100  # columns of the text table: a wide terminal's (loopnet's own choice)


def show_array(array, width=None):
    """Small arrays whole, large ones as a summary. On one line, unless that line would
    be wider than `width`: then NumPy's own layout, wrapped to `width` (rows of a matrix
    one per line)."""
    if array is None:
        return "-"
    if array.size <= SMALL:
        options = {} if array.dtype.kind in "iu" else {"precision": 6, "suppress_small": True}
        text = np.array2string(array, separator=", ", max_line_width=10**6, **options)
        line = " ".join(text.split())  # rows of a matrix on one line: [[1., 2.], [3., 4.]]
        if width is None or len(line) <= width:
            return line
        return np.array2string(array, separator=", ", max_line_width=width, **options)
    if array.dtype.kind in "iu":
        return f"{array.size} ints in [{array.min()}, {array.max()}]"
    return (
        f"{array.size} values: min {array.min():.4g}, mean {array.mean():.4g}, max {array.max():.4g}, "
        f"|x| mean {np.abs(array).mean():.4g}"
    )


def to_text(records):
    """An aligned table, one node per line, then its value and grad."""
    header = ("#", "name", "op", "inputs", "shape", "dtype")
    rows = [
        (str(i), r.name, r.op, ", ".join(r.inputs) or "-", str(r.shape), r.dtype)
        for i, r in enumerate(records, 1)
    ]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    indent = " " * (widths[0] + 2)
    for row, record in zip(rows, records):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        for label, array in (("value ", record.value), ("grad  ", record.grad)):
            shown = show_array(array, WIDTH - len(indent) - len(label)).split("\n")
            lines.append(f"{indent}{label}{shown[0]}")
            lines += [f"{indent}{' ' * len(label)}{more}" for more in shown[1:]]
    return "\n".join(lines)


def to_dot(records):
    """Graphviz DOT of the graph: one box per node with its op and shape, and its value and
    grad when they are small (deck 002, 'Computation graphs', draws variables and operators
    as separate nodes; here an op's box is its output)."""

    def quote(text):
        return text.replace("\\", "\\\\").replace('"', '\\"')

    lines = ["digraph loopnet {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica", fontsize=10];']
    for r in records:
        label = [f"{r.name}", f"{r.op} {tuple(r.shape)}"]
        if r.value.size <= 4:
            label.append(f"value {show_array(r.value)}")
            if r.grad is not None:
                label.append(f"grad {show_array(r.grad)}")
        style = ', style=filled, fillcolor="#e8f0fe"' if r.op == "Parameter" else (
            ', style=filled, fillcolor="#f1f3f4"' if r.op == "Input" else "")
        text = "\\n".join(quote(part) for part in label)  # DOT's line break inside a label is \n
        lines.append(f'  "{quote(r.name)}" [label="{text}"{style}];')
    for r in records:
        for parent in r.inputs:
            lines.append(f'  "{quote(parent)}" -> "{quote(r.name)}";')
    lines.append("}")
    return "\n".join(lines)


def counts_table(records, table):
    """Per node: the scalar arithmetic (mul, add) and array reads/writes of its forward
    and backward loops, and the totals with the backward/forward ratio."""
    header = f"{'name':<14} {'op':<22} {'fwd mul':>8} {'fwd add':>8} {'fwd rd':>8} {'fwd wr':>8}   {'bwd mul':>8} {'bwd add':>8} {'bwd rd':>8} {'bwd wr':>8}"
    lines = [header]
    totals = {"forward": [0, 0, 0, 0], "backward": [0, 0, 0, 0]}
    for r in records:
        if r.name not in table:
            continue
        row = []
        for phase in ("forward", "backward"):
            c = table[r.name][phase]
            values = [c["mul"], c["add"], c["reads"], c["writes"]]
            totals[phase] = [t + v for t, v in zip(totals[phase], values)]
            row.append(" ".join(f"{v:>8}" for v in values))
        lines.append(f"{r.name:<14} {r.op:<22} {row[0]}   {row[1]}")
    f, b = totals["forward"], totals["backward"]
    lines.append(f"{'total':<14} {'':<22} {' '.join(f'{v:>8}' for v in f)}   {' '.join(f'{v:>8}' for v in b)}")
    arithmetic_f, arithmetic_b = f[0] + f[1], b[0] + b[1]
    if arithmetic_f:
        lines.append(f"backward / forward arithmetic: {arithmetic_b / arithmetic_f:.2f}x "
                     f"(mul+add; reads {b[2] / max(f[2], 1):.2f}x, writes {b[3] / max(f[3], 1):.2f}x)")
    return "\n".join(lines)
