"""Where each node of a traced graph goes, and the graph drawn as SVG.

A layered layout of loopnet's own, small enough to read: data flows left to right.

- An op's layer is one more than its deepest input's, so every edge points right and the
  loss, last in topological order, is in the last layer. A leaf (data, a parameter) sits
  one layer before its first consumer, next to where it is used.
- Within a layer, nodes are ordered by the mean row of what they connect to in the layer
  before (the barycenter heuristic), which keeps most edges short and uncrossed.

The SVG needs nothing but a browser: its styles are inside it, and each node is a group
that Tab reaches (tabindex) with its name, op and shape.
"""

from dataclasses import dataclass
from html import escape

BOX_WIDTH, BOX_HEIGHT = 148, 48
COLUMN, ROW = BOX_WIDTH + 52, BOX_HEIGHT + 26  # box plus the gaps edges and labels need
MARGIN = 16

STYLE = """
.node rect { fill: #ffffff; stroke: #5f6368; stroke-width: 1.2; }
.node.Parameter rect { fill: #e8f0fe; }
.node.Input rect { fill: #f1f3f4; }
.node text { font: 12px sans-serif; fill: #202124; pointer-events: none; }
.node text.name { font-weight: bold; }
.node:focus rect, .node.selected rect { stroke: #1a73e8; stroke-width: 3; }
.node.lit rect { fill: #fce8b2; }
.node.consumer rect { stroke: #d93025; stroke-width: 3; }
.edge path { fill: none; stroke: #80868b; stroke-width: 1.2; }
.edge text { font: 10px sans-serif; fill: #5f6368; }
"""


@dataclass
class Placed:
    index: int  # position in topological order
    layer: int
    row: int

    @property
    def x(self):
        return MARGIN + self.layer * COLUMN

    @property
    def y(self):
        return MARGIN + self.row * ROW


def layers(records):
    """Each node's layer: ops one past their deepest input, leaves just before their first consumer."""
    at = {r.name: i for i, r in enumerate(records)}
    layer = [0] * len(records)
    for i, r in enumerate(records):
        if r.inputs:
            layer[i] = 1 + max(layer[at[p]] for p in r.inputs)
    consumers = {i: [] for i in range(len(records))}
    for i, r in enumerate(records):
        for p in r.inputs:
            consumers[at[p]].append(i)
    for i, r in enumerate(records):
        if not r.inputs and consumers[i]:
            layer[i] = max(0, min(layer[c] for c in consumers[i]) - 1)
    return layer, consumers


def place(records):
    """A Placed per record, in the records' order."""
    layer, consumers = layers(records)
    at = {r.name: i for i, r in enumerate(records)}
    rows = {}
    for depth in range(max(layer, default=0) + 1):
        members = [i for i in range(len(records)) if layer[i] == depth]

        def barycenter(i):
            linked = [at[p] for p in records[i].inputs] or consumers[i]
            known = [rows[j] for j in linked if j in rows]
            return (sum(known) / len(known)) if known else float(i)

        for row, i in enumerate(sorted(members, key=lambda i: (barycenter(i), i))):
            rows[i] = row
    return [Placed(i, layer[i], rows[i]) for i in range(len(records))]


def size(placed):
    width = MARGIN * 2 + max(p.layer for p in placed) * COLUMN + BOX_WIDTH
    height = MARGIN * 2 + max(p.row for p in placed) * ROW + BOX_HEIGHT
    return width, height


def edge(source, target, role, slot, slots):
    """A curve from the right side of `source` to the left side of `target`, entering at
    the target's `slot`-th of `slots` points (so x, W and b arrive apart), labelled by role."""
    x1, y1 = source.x + BOX_WIDTH, source.y + BOX_HEIGHT / 2
    x2, y2 = target.x, target.y + BOX_HEIGHT * (slot + 1) / (slots + 1)
    bend = (x2 - x1) / 2
    label = f'<text x="{x2 - 4}" y="{y2 - 3}" text-anchor="end">{escape(role)}</text>' if role else ""
    return (f'<g class="edge" data-from="{source.index}" data-to="{target.index}">'
            f'<path d="M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"/>{label}</g>')


def short(text, limit=21):
    return text if len(text) <= limit else text[:limit - 1] + "…"


def svg(records, roles=None):
    """The graph as one SVG document; `roles[i]` labels node i's input edges (x, W, b)."""
    placed = place(records)
    at = {r.name: i for i, r in enumerate(records)}
    width, height = size(placed)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="group" aria-label="computation graph, {len(records)} nodes">',
             f"<style>{STYLE}</style>"]
    for i, r in enumerate(records):
        names = (roles[i] if roles else None) or [""] * len(r.inputs)
        parts += [edge(placed[at[p]], placed[i], role, k, len(r.inputs))
                  for k, (p, role) in enumerate(zip(r.inputs, names))]
    for i, (r, p) in enumerate(zip(records, placed)):
        shape = "(" + ", ".join(map(str, r.shape)) + ("," if len(r.shape) == 1 else "") + ")"
        kind = r.op if r.op in ("Input", "Parameter") else "op"
        parts.append(
            f'<g class="node {kind}" id="node-{i}" data-index="{i}" tabindex="0" role="button" '
            f'aria-label="{escape(r.name)}: {escape(r.op)} {shape}" transform="translate({p.x},{p.y})">'
            f"<title>{escape(r.name)}: {escape(r.op)} {shape}</title>"
            f'<rect rx="6" width="{BOX_WIDTH}" height="{BOX_HEIGHT}"/>'
            f'<text class="name" x="10" y="19">{escape(short(r.name))}</text>'
            f'<text x="10" y="37">{escape(short(r.op + " " + shape, 23))}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)
