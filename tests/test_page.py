"""The graph page without a browser: the SVG layout, the page's embedded data, the trace
JSON's added keys, ln.show and the notebook display, and the --output option.
(tests/test_page_browser.py opens the pages in Chromium.)"""

import json
import os
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

import loopnet as ln
from loopnet.cli import main
from loopnet.targets import TARGETS, build_target
from loopnet.tracing import trace
from loopnet.view.layout import layers, svg
from loopnet.view.page import page

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVG = "{http://www.w3.org/2000/svg}"


def run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_svg_of_every_target_draws_each_node_and_edge_pointing_right(target):
    records = trace(build_target(target), details=True)
    root = ET.fromstring(run("trace", target, "--format", "svg").stdout)
    groups = [g for g in root.iter(f"{SVG}g")]
    drawn = [g for g in groups if "node" in g.get("class", "").split()]
    assert [g.get("aria-label").split(":")[0] for g in drawn] == [r.name for r in records]
    assert all(g.get("tabindex") == "0" for g in drawn)
    assert len([g for g in groups if g.get("class") == "edge"]) == sum(len(r.inputs) for r in records)
    layer, _ = layers(records)
    at = {r.name: i for i, r in enumerate(records)}
    assert all(layer[at[p]] < layer[i] for i, r in enumerate(records) for p in r.inputs)
    assert layer[-1] == max(layer)  # the loss is in the last layer


def test_edges_are_labelled_by_the_input_they_feed():
    root = ET.fromstring(run("trace", "mlp", "--format", "svg").stdout)
    labels = [t.text for g in root.iter(f"{SVG}g") if g.get("class") == "edge" for t in g.iter(f"{SVG}text")]
    assert labels.count("W") == 2 and labels.count("b") == 2 and "labels" in labels


def embedded(html):
    data = re.search(r'<script id="trace-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data  # every < is \\u003c: nothing inside can end or hide the script
    return json.loads(data, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


def test_the_page_holds_the_trace_json_and_fetches_nothing():
    html = run("trace", "mlp", "--format", "html").stdout
    assert embedded(html) == json.loads(run("trace", "mlp", "--format", "json").stdout)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace is a name, never fetched
    assert "<script src" not in html and "<link" not in html and "@import" not in html


@pytest.mark.parametrize("name", ["</script><b>", "<!--<script>"])
def test_a_name_with_a_script_tag_cannot_end_or_hide_the_script(name):
    x = ln.Parameter([1.0, 2.0], name=name)
    html = page(trace(ln.sum(ln.square(x)), details=True))
    assert embedded(html)["nodes"][0]["name"] == name
    assert html.count("</script>") == 2 and html.count("<script") == 2  # the data's and the page script's own


def test_nan_and_inf_reach_the_page_as_strings_json_can_carry():
    x = ln.Parameter([-1.0, 0.0, 4.0], name="x")
    nodes = embedded(page(trace(ln.sum(ln.log(x)), details=True)))["nodes"]
    assert nodes[1]["value"] == ["nan", "-inf", float(np.log(4.0))]


def test_the_json_gains_roles_math_loops_and_explain_terms():
    nodes = {n["name"]: n for n in json.loads(run("trace", "mlp", "--format", "json").stdout)["nodes"]}
    layer = nodes["hidden_in"]
    assert layer["roles"] == ["x", "W", "b"] and layer["doc"].startswith("affine(x, W, b)")
    assert [loop["name"] for loop in layer["loops"]][:1] == ["affine_forward"]
    assert {loop["phase"] for loop in layer["loops"]} == {"forward", "backward"}
    assert "def affine_grad_W(d, m, XT, dYT, dW):" in layer["loops"][2]["source"]
    assert nodes["X"]["roles"] == [] and nodes["X"]["doc"] is None and nodes["X"]["explain"] is None
    terms = nodes["W1"]["explain"]["0,1"]
    assert terms["total"] == pytest.approx(nodes["W1"]["grad"][0][1], rel=1e-12)
    assert sum(t["term"] for t in terms["terms"]) == pytest.approx(terms["total"], rel=1e-12)
    assert nodes["loss"]["explain"][""]["seed"] is True


def test_explain_terms_are_left_out_for_a_large_gradient():
    W = ln.Parameter(np.ones((9, 9)), name="W")
    records = trace(ln.sum(ln.square(W)), details=True)
    assert records[0].details["explain"] is None and records[1].details["explain"] is None
    small = trace(ln.sum(ln.square(ln.Parameter(np.ones((8, 8)), name="V"))), details=True)
    assert len(small[0].details["explain"]) == 64


def test_show_and_the_notebook_display(tmp_path):
    x = ln.Parameter([1.0, -2.0], name="x")
    loss = ln.sum(ln.square(x))
    shown = ln.show(loss)
    assert shown.html.startswith("<!doctype html>") and "loopnet: sum_1" in shown.html
    assert shown._repr_html_().startswith("<iframe srcdoc=") and "&lt;svg" in shown._repr_html_()
    assert loss._repr_html_() == ln.show(loss)._repr_html_()
    assert x.grad is None  # showing ran backward for the page, then put the grads back as they were
    shown.save(tmp_path / "page.html")
    assert (tmp_path / "page.html").read_text() == shown.html
    with pytest.raises(TypeError, match="show takes a loopnet node"):
        ln.show(np.ones(2))


def test_showing_a_node_leaves_the_last_backwards_grads_as_they_were():
    x = ln.Parameter([1.0, -2.0], name="x")
    hidden = ln.square(x)
    loss = ln.sum(ln.mul(hidden, hidden))
    ln.forward(loss)
    ln.backward(loss)
    before = x.grad.copy()
    hidden._repr_html_()  # what a notebook does when a cell ends with `hidden`
    np.testing.assert_array_equal(x.grad, before)
    assert "x: Parameter" in ln.show(x).html and x.grad is not None  # a leaf alone, backward from it
    np.testing.assert_array_equal(x.grad, before)


def test_output_writes_the_report_and_says_where(tmp_path):
    path = tmp_path / "graph.html"
    result = CliRunner().invoke(main, ["trace", "xor", "--format", "html", "--output", str(path)])
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.startswith(f"wrote {path} (") and path.read_text().startswith("<!doctype html>")
    assert f"({round(path.stat().st_size / 1024)} KiB)" in result.stderr  # the size, rounded (not down)
    text = tmp_path / "trace.txt"
    assert run("trace", "xor", "-o", str(text)).exit_code == 0 and text.read_text().split()[:2] == ["#", "name"]


def test_output_to_a_path_that_cannot_be_written_is_one_line(tmp_path):
    result = run("trace", "xor", "--format", "svg", "--output", str(tmp_path / "missing" / "graph.svg"))
    assert result.exit_code == 1 and result.output.startswith("error: cannot write") and result.output.count("\n") == 1


def test_the_readme_picture_is_what_svg_draws_today():
    committed = open(os.path.join(ROOT, "docs", "least-squares.svg")).read()
    assert committed == run("trace", "least-squares", "--format", "svg").stdout, \
        "regenerate it: python cli.py trace least-squares --format svg --output docs/least-squares.svg"


MODEL = """
import numpy as np
import loopnet as ln

def build():
    x = ln.Input(np.arange(6.0).reshape(2, 3), name="x")
    W = ln.Parameter(np.ones((3, 2)), name="W")
    layer = ln.derive("Y[n,m] = sigmoid(sum_d X[n,d] * W[d,m])")
    return ln.sum(layer(x, W, name="layer"))
"""


def test_a_users_model_file_draws_as_svg_and_html(tmp_path):
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    root = ET.fromstring(run("trace", str(model), "--format", "svg").stdout)
    assert [g.get("aria-label").split(":")[0] for g in root.iter(f"{SVG}g") if "node" in g.get("class", "")] == \
        ["x", "W", "layer", "sum_1"]
    nodes = embedded(run("trace", str(model), "--format", "html").stdout)["nodes"]
    assert nodes[2]["roles"] == ["X", "W"] and nodes[2]["loops"][0]["name"] == "forward"
    assert "scalar.sigmoid" in nodes[2]["loops"][0]["source"]  # the generated body, shown like any op's
    assert [loop["name"] for loop in nodes[2]["loops"]] == ["forward", "grad_U", "grad_X", "grad_W"]
    assert nodes[2]["doc"].startswith("forward: Y[n,m] = sigmoid(sum_d X[n,d] * W[d,m])")  # its derivation
