"""What the graph page shows beyond trace's table: each node's input roles, its op's math
and loop source, and the explain terms of every element of its gradient.

These are the keys `trace --format json` adds to each node (README, "The trace page"):

    roles    the op's name for each input, in the order of `inputs` (affine: x, W, b); [] for a leaf
    doc      the op's math: the docstring of the op's file; null for a leaf
    loops    [{"name", "phase" ("forward" or "backward"), "source"}]: the op's loop bodies
    explain  {"i,j": {"total", "grad", "seed", "terms": [{"op", "consumer", "output_index",
             "upstream", "local", "term", "running"}]}} for every element of a gradient of at
             most EXPLAIN_MAX elements; null for a node without a gradient or a larger one
"""

import inspect
import itertools
import re

from loopnet.explain import explain

EXPLAIN_MAX = 64  # elements: each costs one run of its consumers' backward loops


def roles(node):
    return list(node.op.inputs) if node.op is not None else []


def op_doc(node):
    if node.op is None:
        return None
    made = getattr(node.op, "made", None)  # an op from ln.derive: its math is its derivation
    if made is not None:
        return str(made.derivation)
    module = inspect.getmodule(type(node.op))
    return inspect.cleandoc(module.__doc__) if module is not None and module.__doc__ else None


def _bodies(op):
    """The op's loop bodies (`op` an Op or an Op class): its class's body slots or a derived
    op's generated bodies; else the functions of its file named like bodies (affine_forward,
    affine_grad_W)."""
    kind = op if isinstance(op, type) else type(op)
    found = {}
    for attr in dir(kind):
        if attr == "forward_body" or re.fullmatch(r"grad_\w+_body", attr):
            body = getattr(op, attr)
            if inspect.isfunction(body):
                found[body.__name__] = body
    made = getattr(op, "made", None)  # an op from ln.derive: its bodies are generated
    if made is not None:
        found["forward"] = made.forward_body
        if made.pre_body is not None:  # the chain through the function comes first
            found[made.pre_body.__name__] = made.pre_body
        found.update({f"grad_{n}": b for n, b in made.grad_bodies.items()})
    if found:  # a family's file holds several ops' bodies: the slots say which are this one's
        return found
    module = inspect.getmodule(kind)
    for name, value in vars(module).items():
        if inspect.isfunction(value) and value.__module__ == module.__name__ and \
                re.search(r"(^|_)(forward|grad_\w+)$", name):
            found.setdefault(name, value)
    named = {name: body for name, body in found.items() if name.startswith(f"{kind.name}_")}
    return named or found  # (layout.py holds transpose's, permute's and broadcast_to's loops)


def loops(node):
    return [] if node.op is None else op_loops(node.op)


def op_loops(op):
    """The loops of `op` (an Op or an Op class), as `loops` in a node's details: forward first."""
    found = []
    for name, body in _bodies(op).items():
        try:
            source = inspect.getsource(body)
        except (OSError, TypeError):
            continue
        found.append({"name": name, "phase": "forward" if "forward" in name else "backward", "source": source})
    return sorted(found, key=lambda loop: loop["phase"] != "forward")


def explanations(node):
    """Every element's explain terms, for a node with a gradient of at most EXPLAIN_MAX elements."""
    if node.grad is None or node.size > EXPLAIN_MAX:
        return None
    found = {}
    for index in itertools.product(*(range(n) for n in node.shape)):
        e = explain(node, index)
        found[",".join(map(str, index))] = {
            "total": float(e.total), "grad": float(e.grad), "seed": bool(e.seed),
            "terms": [{"op": t.op, "consumer": t.consumer, "output_index": list(t.output_index),
                       "upstream": float(t.upstream), "local": float(t.local), "term": float(t.value),
                       "running": float(t.running)} for t in e.terms],
        }
    return found
