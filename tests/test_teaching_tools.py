"""explain, jacobian, work counts, the ownership check, and DOT pictures."""

import os
import re

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

import loopnet as ln
from loopnet.watch import OwnershipError, watch
from loopnet.cli import main
from loopnet.explain import ExplainError, find_node, parse_element
from loopnet.loops import loop
from loopnet.op import Op
from loopnet.targets import TARGETS, build_target
from loopnet.testing.samples import SAMPLES
from loopnet.testing.strategies import arrays, shapes, sizes


def run(*args):
    return CliRunner().invoke(main, list(args))


# -- explain ------------------------------------------------------------------------------

@pytest.mark.parametrize("target", sorted(TARGETS))
def test_explain_terms_add_up_to_the_gradient_for_every_element(target):
    loss = build_target(target)
    ln.forward(loss)
    ln.backward(loss)
    for node in ln.topological_order(loss):
        if node.grad is None:
            continue
        for index in np.ndindex(*node.shape):
            e = ln.explain(node, index)
            assert e.total == pytest.approx(float(node.grad[index]), rel=1e-12, abs=1e-15)


def test_explain_shows_the_slides_affine_weight_terms():
    # deck 002, 'Backpropagation, continued': grad W_i = (g_{i+1} o f') z_i^T, one term per example
    loss = build_target("mlp")
    ln.forward(loss)
    ln.backward(loss)
    X, hidden_in = find_node(loss, "X"), find_node(loss, "hidden_in")
    e = ln.explain(find_node(loss, "W1"), (0, 1))
    # dW1[0,1] = sum_n X[n,0] * dY[n,1]: one term per example, in order
    assert [t.output_index for t in e.terms] == [(n, 1) for n in range(4) if X.value[n, 0] != 0]
    for t in e.terms:
        assert t.local == X.value[t.output_index[0], 0]
        assert t.upstream == hidden_in.grad[t.output_index]
    assert e.terms[-1].running == e.total


def test_explain_fan_out_lists_one_term_per_consumer():
    f = build_target("fan-out")
    ln.forward(f)
    ln.backward(f)
    e = ln.explain(find_node(f, "x"))
    assert [(t.consumer, t.local) for t in e.terms] == [("v", 4.0), ("u", 3.0)]  # backward's order
    assert e.total == 7.0 and "total 7" in str(e)
    assert ln.explain(f).seed and "seed" in str(ln.explain(f))


def test_explain_errors():
    loss = build_target("xor")
    with pytest.raises(ln.errors.GraphError, match="run backward"):
        ln.explain(find_node(loss, "W"), (0, 0))
    ln.forward(loss)
    ln.backward(loss)
    with pytest.raises(ExplainError, match=r"index \[2, 0\] is outside 'W', whose shape is \(2, 2\)"):
        ln.explain(find_node(loss, "W"), (2, 0))
    with pytest.raises(ExplainError, match="no node named 'V'; the graph has: X, targets, W"):
        find_node(loss, "V")
    assert parse_element(" W1[0, 1] ") == ("W1", (0, 1)) and parse_element("loss") == ("loss", ())
    with pytest.raises(ExplainError, match="use integers"):
        parse_element("W1[a,b]")
    with pytest.raises(ExplainError, match="write NODE or NODE"):
        parse_element("W1[0")


def test_trace_explain_on_the_cli():
    result = run("trace", "least-squares", "--explain", "w")
    assert result.exit_code == 0 and "total -2" in result.stdout
    for bad, fragment in [("nope[0]", "no node named 'nope'"), ("W[5,5]", "is outside 'W'"), ("W[x]", "use integers")]:
        result = run("trace", "xor", "--explain", bad)
        assert result.exit_code == 1 and fragment in result.stderr and len(result.stderr.splitlines()) == 1


# -- jacobians: deck 000's 'Jacobian — Examples' and deck 002's 'Properties of Jacobian' ------------------------------------------------------------

@pytest.mark.parametrize("op,derivative", [
    (ln.tanh, lambda x: 1 - np.tanh(x) ** 2), (ln.exp, np.exp), (ln.square, lambda x: 2 * x),
    (ln.sigmoid, lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
])
@given(values=arrays(shapes(1, 1, 1, 5)))
def test_an_elementwise_op_has_a_diagonal_jacobian(op, derivative, values):
    x = ln.Parameter(values)
    np.testing.assert_allclose(ln.jacobian(op(x), x), np.diag(derivative(values)), rtol=1e-10, atol=1e-12)


@given(st.data())
def test_Wx_gives_W_and_the_block_form(data):
    n, m = data.draw(sizes()), data.draw(sizes())
    W0, x0 = data.draw(arrays((m, n))), data.draw(arrays((n, 1)))
    W, x = ln.Parameter(W0), ln.Parameter(x0)
    u = ln.matmul(W, x)  # (m, 1)
    np.testing.assert_allclose(ln.jacobian(u, x).reshape(m, n), W0, rtol=1e-12)
    block = ln.jacobian(u, W).reshape(m, m * n)  # du_i / dW_jk = [i == j] x_k
    np.testing.assert_allclose(block, np.kron(np.eye(m), x0.T), rtol=1e-12)


@given(st.data())
def test_chain_rule_jacobian_of_a_composition_is_the_product(data):
    n = data.draw(sizes(1, 4))
    x = ln.Parameter(data.draw(arrays((n,), min_value=-1, max_value=1)))
    g_op, f_op = data.draw(st.sampled_from([ln.tanh, ln.sigmoid, ln.square])), data.draw(st.sampled_from([ln.tanh, ln.exp]))
    A = ln.Parameter(data.draw(arrays((n, n))).reshape(n, n))
    g = g_op(ln.reshape(ln.matmul(A, ln.reshape(x, (n, 1))), (n,)))
    f = f_op(g)
    np.testing.assert_allclose(ln.jacobian(f, x), ln.jacobian(f, g) @ ln.jacobian(g, x), rtol=1e-10, atol=1e-12)


def test_jacobian_errors_and_cli():
    loss = build_target("xor")
    with pytest.raises(ln.errors.GraphError, match="gets no gradient"):
        ln.jacobian(loss, find_node(loss, "X"))
    with pytest.raises(ln.errors.GraphError, match="does not depend on"):
        ln.jacobian(find_node(loss, "hidden"), find_node(loss, "v"))
    result = run("jacobian", "fan-out", "--of", "f", "--wrt", "x")
    assert result.exit_code == 0 and "[[7.]]" in result.stdout
    result = run("jacobian", "fan-out", "--of", "f", "--wrt", "zz")
    assert result.exit_code == 1 and "no node named 'zz'" in result.stderr


# -- work counts and the ownership check -----------------------------------------------------

def test_counts_of_an_affine_layer_match_the_loop_nest():
    x, W, b = ln.Parameter(np.ones((4, 3))), ln.Parameter(np.ones((3, 5))), ln.Parameter(np.zeros(5))
    y = ln.affine(x, W, b, name="y")
    with watch() as w:
        ln.forward(y)
        ln.backward(y)
    fwd, bwd = w.table()["y"]["forward"], w.table()["y"]["backward"]
    assert fwd["mul"] == 4 * 5 * 3 and fwd["writes"] == 4 * 5 + 3 * 5  # Y, and the transposed W
    assert bwd["mul"] == 2 * 4 * 5 * 3  # dX and dW each sum N M D products
    result = run("trace", "mlp", "--counts")
    assert result.exit_code == 0 and "backward / forward arithmetic" in result.stdout
    ratio = re.search(r"backward / forward arithmetic: ([0-9.]+)x", result.stdout).group(1)
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")).read()
    assert f"On `mlp` the backward pass does {ratio}x the forward's arithmetic" in " ".join(readme.split())


@pytest.mark.parametrize("name", sorted(ln.OPS))
def test_every_registered_kernel_owns_its_writes(name):
    @given(SAMPLES[name]())
    def check(node):
        with watch(counts=False, check_ownership=True):
            ln.forward(node)
            ln.backward(node)

    check()


def scatter_grad(i, j, dY, dX):  # scatter form (as deck 003 writes x.grad[j] +=), run over the output grid
    dX[j] += dY[i, j]


class ColumnSums(Op):
    name = "column_sums_racy"
    inputs = ("x",)

    def shape(self, x):
        return (3, x.shape[0])

    def forward(self, out, x):
        pass

    def backward(self, out, x):
        loop(scatter_grad, out.shape, out.grad, x.grad)


def test_a_scatter_loop_is_caught_as_a_race():
    x = ln.Parameter(np.ones(4))
    y = ColumnSums().apply((x,))
    ln.forward(y)
    with watch(), pytest.raises(OwnershipError, match=r"grid points \(0, 0\) and \(1, 0\) both write element \[0\]"):
        ln.backward(y)


def test_watch_needs_the_python_backend():
    with ln.use("numba"), pytest.raises(ln.errors.LoopnetError, match="Python backend"):
        with watch():
            pass


# -- pictures -------------------------------------------------------------------------------

def test_dot_output_has_every_node_and_edge():
    result = run("trace", "xor", "--format", "dot", "--backend", "python")
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("digraph loopnet {") and text.rstrip().endswith("}")
    loss = build_target("xor")
    for node in ln.topological_order(loss):
        assert f'"{node.name}" [label="{node.name}\\n{node.op_name}' in text
        for parent in node.inputs:
            assert f'"{parent.name}" -> "{node.name}";' in text
    assert "value [0.]" in text  # small tensors show their numbers
