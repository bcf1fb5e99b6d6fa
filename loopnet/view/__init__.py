"""The graph page: a trace drawn as a self-contained HTML page (`trace --format html`), the
picture alone as SVG (`--format svg`), and the same view in a notebook (`ln.show(node)`)."""

from loopnet.view.page import page, show  # noqa: E402,F401 - the public names
