"""The graph page: one self-contained HTML file (no network: its script, styles and data
are inside it), built from the trace JSON with the keys loopnet.view.details adds.

    python cli.py trace mlp --format html --output graph.html
    ln.show(loss)            # in a notebook: the same page, inline

The layout is computed here in Python (loopnet.view.layout); the page's script
(page.js beside this file) only reads the JSON and fills the side panel.
"""

import json
import math
from html import escape
from importlib import resources

from loopnet.graph import Node, topological_order
from loopnet.snapshot import GraphState
from loopnet.tracing import trace
from loopnet.view.layout import svg


def _asset(name):
    return resources.files("loopnet.view").joinpath(name).read_text()


def _plain(value):
    """JSON that a browser parses: NaN and +-inf, which JSON has no word for, as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def page(records, title="loopnet trace"):
    """The HTML page of a trace made with details (tracing.trace(node, details=True))."""
    data = json.dumps({"nodes": [_plain(r.as_json()) for r in records]})
    data = data.replace("<", "\\u003c")  # no "</script>" or "<!--" in a name or docstring can end the script
    roles = [r.details["roles"] if r.details else None for r in records]
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_asset("page.css")}</style>
</head>
<body>
<header>
<h1>{escape(title)}</h1>
<button id="play" type="button">Play backward</button>
<span id="status" aria-live="polite"></span>
</header>
<main>
<div id="graph">
{svg(records, roles)}
</div>
<aside id="panel" aria-live="polite">
<p>Click a node, or Tab to it and press Enter: its value, its gradient, its op's math and loops.
Inputs are on the left, the loss on the right; edges are labelled by the input they feed.</p>
</aside>
</main>
<script id="trace-data" type="application/json">{data}</script>
<script>{_asset("page.js")}</script>
</body>
</html>
"""


class Shown:
    """A graph page: `_repr_html_` shows it inline in a notebook (in an iframe, so its
    script and styles stay its own); `html` is the page; `save(path)` writes it."""

    def __init__(self, html):
        self.html = html

    def _repr_html_(self):
        return (f'<iframe srcdoc="{escape(self.html, quote=True)}" style="width: 100%; height: 640px; '
                f'border: 1px solid #dadce0" title="loopnet graph"></iframe>')

    def save(self, path):
        with open(path, "w", encoding="utf-8") as out:
            out.write(self.html)


def show(node, title=None):
    """The graph that `node` roots, run forward and backward once and drawn as the trace
    page. Every grad is put back afterwards (and batch_norm's running statistics), so
    showing a node leaves the gradients of your last backward as they were."""
    if not isinstance(node, Node):
        raise TypeError(f"show takes a loopnet node (the loss, say), got {type(node).__name__}")
    saved = GraphState(topological_order(node))
    try:
        return Shown(page(trace(node, details=True), title or f"loopnet: {node.name}"))
    finally:
        saved.restore(node, run_forward=False)  # the values are those trace's forward computed


# A node shows its graph in a notebook. Set here rather than in graph.py, which sits below
# the teaching tools and cannot import them.
Node._repr_html_ = lambda self: show(self)._repr_html_()
