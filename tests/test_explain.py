"""explain: every term the backward loops added into one gradient element, zero ones
included, and one clear error for every mistake in naming the element."""

import copy

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

import loopnet as ln
from loopnet.backends import python_backend
from loopnet.cli import main
from loopnet.errors import BackendError, GraphError
from loopnet.explain import Explanation, ExplainError, find_node
from loopnet.targets import TARGETS, build_target
from loopnet.testing.strategies import arrays, sizes


def ran(target):
    """The target's loss after one forward and backward on the current backend."""
    loss = build_target(target)
    ln.forward(loss)
    ln.backward(loss)
    return loss


def roles(consumer, node):
    """The names of the inputs of `consumer` that `node` is (two for mul(x, x))."""
    return [role for role, p in zip(consumer.op.inputs, consumer.inputs) if p is node]


def consumers_of(root, node):
    return [c for c in reversed(ln.topological_order(root)) if any(p is node for p in c.inputs)]


# -- the terms, counted without running any loop ---------------------------------------------

def _rows_of(shape, fixed, free_axis):
    """Output indices equal to `fixed` except along `free_axis`, which runs over its length."""
    return [fixed[:free_axis] + (k,) + fixed[free_axis + 1:] for k in range(shape[free_axis])]


def expected_outputs(consumer, node, role, index):
    """The output elements whose upstream gradient the op's backward loop adds into
    node.grad[index], read off the op's formula (its docstring), in row-major order."""
    op, out, inputs = consumer.op.name, consumer.shape, dict(zip(consumer.op.inputs, consumer.inputs))
    if op in ("add", "sub", "mul", "square", "tanh", "sigmoid", "exp"):
        return [index]  # elementwise: y[i] reads x[i] only
    if op == "relu":  # relu's loop adds only where its input was > 0
        return [index] if node.value[index] > 0 else []
    if op in ("sum", "mean", "mse_loss", "logistic_loss", "softmax_cross_entropy"):
        return [()]  # one output, a scalar, per element
    if op == "reshape":  # the same element, counted in row-major order
        return [tuple(int(i) for i in np.unravel_index(np.ravel_multi_index(index, node.shape), out))]
    if op == "softmax":  # dx[r,k] reads every dy[r,j] of its row
        return _rows_of(out, index, len(out) - 1)
    if op == "affine":  # dX[n,d] sums over m; dW[d,m] and db[m] over the examples n
        return {"x": lambda: _rows_of(out, (index[0], 0), 1), "W": lambda: _rows_of(out, (0, index[1]), 0),
                "b": lambda: _rows_of(out, (0, index[0]), 0)}[role]()
    if op == "matmul":  # dA[i,k] sums over j; dB[k,j] over i
        return _rows_of(out, (index[0], 0), 1) if role == "A" else _rows_of(out, (0, index[1]), 0)
    if op == "bmm" and not consumer.op.transpose_b:  # dA[h,i,k] sums over j; dB[h,k,j] over i
        return _rows_of(out, (index[0], index[1], 0), 2) if role == "A" else _rows_of(out, (index[0], 0, index[2]), 1)
    if op == "embedding":  # dE[v,d] sums the positions p whose id is v
        ids = inputs["ids"].value
        return [p + (index[1],) for p in np.ndindex(*ids.shape) if ids[p] == index[0]]
    pytest.fail(f"no independent count of the terms of {op!r} here: add its formula to expected_outputs")


def local_jacobian(consumer, node):
    """d consumer / d node with the op's other inputs held fixed: the op alone, applied to
    fresh leaves that hold the same values, differentiated by ln.jacobian."""
    leaf = ln.Parameter(node.value)
    leaves = [leaf if p is node else ln.Input(p.value) for p in consumer.inputs]
    return ln.jacobian(copy.copy(consumer.op).apply(leaves), leaf)


def check_element(root, node, index, jacobians):
    """The terms of node.grad[index]: exactly the outputs the formulas name, each with the
    local factor the op alone gives, adding up to the gradient."""
    e = ln.explain(node, index)
    assert e.total == pytest.approx(float(node.grad[index]), rel=1e-12, abs=1e-15)
    assert not e.terms or e.terms[-1].running == e.total
    for consumer in consumers_of(root, node):
        mine = [t for t in e.terms if t.consumer == consumer.name]
        want = [u for role in roles(consumer, node) for u in expected_outputs(consumer, node, role, index)]
        assert sorted(t.output_index for t in mine) == sorted(want), (consumer.name, node.name, index)
        assert all(t.upstream == consumer.grad[t.output_index] for t in mine)
        J = jacobians[consumer.name]
        for u in np.ndindex(*consumer.shape):
            local = sum(t.local for t in mine if t.output_index == u)
            assert local == pytest.approx(J[u + index], rel=1e-12, abs=1e-15), (consumer.name, u)
    return e


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_term_is_listed_with_its_local_factor_and_they_add_up(target):
    root = ran(target)
    checked = 0
    for node in ln.topological_order(root):
        if not node.requires_grad or node is root:
            continue
        jacobians = {c.name: local_jacobian(c, node) for c in consumers_of(root, node)}
        for index in list(np.ndindex(*node.shape))[:6]:
            check_element(root, node, index, jacobians)
            checked += 1
    assert checked > 0


def test_the_expected_outputs_tell_a_missing_zero_term_apart():
    """The independent count is not explain's own: listing only the nonzero local factors
    (what explain did before) would not match it."""
    X = ln.Input([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], name="X")
    W = ln.Parameter([[2.0, 1.0], [-1.0, 1.0]], name="W")
    loss = ln.sum(ln.square(ln.matmul(X, W, name="a")))
    ln.forward(loss)
    ln.backward(loss)
    want = expected_outputs(find_node(loss, "a"), W, "B", (0, 1))
    assert want == [(0, 1), (1, 1), (2, 1), (3, 1)]  # X[0,0] = X[1,0] = 0: two zero terms
    terms = ln.explain(W, (0, 1)).terms
    assert [t.output_index for t in terms] == want
    assert [t.output_index for t in terms if t.local != 0] == [(2, 1), (3, 1)]


# -- zero terms, and fan-out (deck 002) and the RNN (deck 001) ------------------------------------------------

def test_a_zero_in_B_gives_a_matmul_term_with_local_factor_0():
    A = ln.Parameter([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], name="A")
    B = ln.Parameter([[1.0, 2.0], [0.0, 3.0], [4.0, 5.0]], name="B")
    loss = ln.sum(ln.mul(ln.matmul(A, B, name="C"), ln.Input([[1.0, -2.0], [3.0, 4.0]]), name="weighted"))
    ln.forward(loss)
    ln.backward(loss)
    e = ln.explain(A, (0, 1))  # dA[0,1] = sum_j dC[0,j] * B[1,j]: two terms, the first with B[1,0] = 0
    assert [(t.output_index, t.upstream, t.local) for t in e.terms] == [((0, 0), 1.0, 0.0), ((0, 1), -2.0, 3.0)]
    assert e.total == A.grad[0, 1] == -6.0
    row = str(e).splitlines()[3]  # the first term's row: upstream 1, local 0, term 0
    assert "matmul 'C'" in row and "C[0, 0]" in row and " 1 x            0 =            0 " in row


def test_a_negative_upstream_times_0_prints_as_0():
    A = ln.Parameter([[1.0, 0.0]], name="A")
    B = ln.Parameter([[2.0], [0.0]], name="B")
    loss = ln.sum(ln.mul(ln.matmul(A, B, name="C"), ln.Input([[-3.0]])))
    ln.forward(loss)
    ln.backward(loss)
    text = str(ln.explain(A, (0, 1)))
    assert "-3 x            0 =            0" in text and "-0" not in text


def test_affine_weight_gets_one_term_per_example_zero_inputs_included():
    X = ln.Input([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]], name="X")
    W = ln.Parameter([[1.0, -1.0], [2.0, 0.5]], name="W")
    loss = ln.mse_loss(ln.affine(X, W, ln.Parameter([0.0, 0.0]), name="Y"), ln.Input(np.ones((3, 2))))
    ln.forward(loss)
    ln.backward(loss)
    terms = ln.explain(W, (0, 1)).terms  # dW[0,1] = sum_n X[n,0] dY[n,1]: three examples
    assert [t.output_index for t in terms] == [(0, 1), (1, 1), (2, 1)]
    assert [t.local for t in terms] == [0.0, 2.0, 0.0]


def test_fan_out_gives_one_term_per_consumer():
    f = ran("fan-out")
    e = ln.explain(find_node(f, "x"))
    assert [(t.consumer, t.output_index, t.local) for t in e.terms] == [("v", (), 4.0), ("u", (), 3.0)]
    assert e.total == 7.0


def test_rnn_shared_weight_gets_a_term_from_every_step_the_first_with_local_0():
    loss = ran("rnn")
    e = ln.explain(find_node(loss, "V"), (1, 2))  # dV[1,2] = h_{t-1}[0,1] * drec_t[0,2], each t
    assert [(t.consumer, t.output_index) for t in e.terms] == [(f"rec{t}", (0, 2)) for t in (4, 3, 2, 1)]
    assert e.terms[-1].local == 0.0  # h0 = 0: the loop still added the term


def test_the_same_node_twice_in_one_op_gives_a_term_per_write():
    x = ln.Parameter([3.0, -2.0], name="x")
    loss = ln.sum(ln.mul(x, x, name="xx"))
    ln.forward(loss)
    ln.backward(loss)
    e = ln.explain(x, (0,))  # mul's loops add dy * b into da and dy * a into db: both land in x.grad
    assert [(t.output_index, t.local) for t in e.terms] == [((0,), 3.0), ((0,), 3.0)]
    assert e.total == x.grad[0] == 6.0


def test_a_loop_that_adds_nothing_gives_no_term():
    loss = ran("xor")
    hidden_in = find_node(loss, "hidden_in")
    i = next(i for i in np.ndindex(*hidden_in.shape) if hidden_in.value[i] <= 0)  # relu passes nothing
    e = ln.explain(hidden_in, i)
    assert e.terms == [] and e.readers == ("hidden",)
    assert "the backward loops of hidden added nothing into this element" in str(e)
    assert "no op reads this element" in str(Explanation("w", (), [], 0.0, 0.0, False))


# -- properties ----------------------------------------------------------------------------

@given(st.data())
def test_matmul_terms_are_the_trip_count_with_the_operands_as_local_factors(data):
    n, k, m = data.draw(sizes()), data.draw(sizes()), data.draw(sizes())
    zeros = st.floats(0, 1).map(lambda p: p < 0.3)
    A0, B0 = data.draw(arrays((n, k))), data.draw(arrays((k, m)))
    A0[data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, k - 1))] *= data.draw(zeros)
    B0[data.draw(st.integers(0, k - 1)), data.draw(st.integers(0, m - 1))] *= data.draw(zeros)
    A, B = ln.Parameter(A0), ln.Parameter(B0)
    loss = ln.sum(ln.mul(ln.matmul(A, B), ln.Input(data.draw(arrays((n, m))))))
    ln.forward(loss)
    ln.backward(loss)
    i, kk, j = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, k - 1)), data.draw(st.integers(0, m - 1))
    eA, eB = ln.explain(A, (i, kk)), ln.explain(B, (kk, j))
    assert [(t.output_index, t.local) for t in eA.terms] == [((i, jj), B0[kk, jj]) for jj in range(m)]
    assert [(t.output_index, t.local) for t in eB.terms] == [((ii, j), A0[ii, kk]) for ii in range(n)]
    assert eA.total == pytest.approx(A.grad[i, kk], rel=1e-12, abs=1e-15)
    assert eB.total == pytest.approx(B.grad[kk, j], rel=1e-12, abs=1e-15)


@given(target=st.sampled_from(sorted(TARGETS)), pick=st.randoms(use_true_random=False))
def test_explain_leaves_every_value_and_grad_as_it_was(target, pick):
    loss = ran(target)
    nodes = ln.topological_order(loss)
    before = [(n.value.copy(), None if n.grad is None else n.grad.copy()) for n in nodes]
    node = pick.choice([n for n in nodes if n.requires_grad])
    ln.explain(node, tuple(pick.randrange(s) for s in node.shape))
    for n, (value, grad) in zip(nodes, before):
        np.testing.assert_array_equal(n.value, value)
        assert (n.grad is None) == (grad is None)
        if grad is not None:
            np.testing.assert_array_equal(n.grad, grad)
    assert python_backend.watcher is None


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_the_terms_do_not_depend_on_the_backend_that_ran_the_graph(backend):
    reference = ran("attention")
    try:
        with ln.use(backend):
            other = ran("attention")
    except BackendError as err:
        pytest.skip(str(err))
    for name, index in [("E", (2, 1)), ("W", (0, 1)), ("X", (0, 1, 2)), ("q", (1, 0))]:
        want, got = ln.explain(find_node(reference, name), index), ln.explain(find_node(other, name), index)
        assert [(t.consumer, t.output_index) for t in got.terms] == [(t.consumer, t.output_index) for t in want.terms]
        for g, w in zip(got.terms, want.terms):
            assert g.upstream == pytest.approx(w.upstream, rel=1e-9, abs=1e-12)
            assert g.local == pytest.approx(w.local, rel=1e-9, abs=1e-12)


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("target,name,index,error,message", [
    ("xor", "X", (0, 0), GraphError,
     "'X' gets no gradient (data or labels): nothing to explain; use Input(..., grad=True) to differentiate by it"),
    ("least-squares", "x", (), GraphError, "'x' gets no gradient (data or labels)"),
    ("xor", "W", (), ExplainError, "'W' has 2 axes (shape (2, 2)): write W[i,j], not W"),
    ("xor", "W", (0,), ExplainError, "'W' has 2 axes (shape (2, 2)): write W[i,j], not W[0]"),
    ("xor", "c", (0, 1), ExplainError, "'c' has 1 axis (shape (2,)): write c[i], not c[0,1]"),
    ("xor", "loss", (0,), ExplainError, "'loss' is a scalar (shape ()): write loss, with no index, not loss[0]"),
    ("xor", "W", (5, 0), ExplainError, "index [5, 0] is outside 'W', whose shape is (2, 2)"),
    ("xor", "W", (-1, 0), ExplainError, "index [-1, 0] is outside 'W', whose shape is (2, 2) (count from 0"),
    ("xor", "W", (0.5, 1), ExplainError, "cannot use (0.5, 1) as an index into 'W': write W[i,j] with whole numbers"),
])
def test_each_mistake_gets_one_clear_error(target, name, index, error, message):
    loss = ran(target)
    with pytest.raises(error) as caught:
        ln.explain(find_node(loss, name), index)
    assert str(caught.value).startswith(message) and isinstance(caught.value, ln.errors.LoopnetError)


def test_a_node_computed_only_from_data_gets_no_gradient():
    a, b, w = ln.Input([1.0, 2.0]), ln.Input([3.0, 4.0]), ln.Parameter([1.0, 1.0])
    d = ln.mul(a, b, name="d")
    loss = ln.sum(ln.mul(d, w))
    with pytest.raises(GraphError, match="'d' gets no gradient: it is computed only from data or labels"):
        ln.explain(d, (0,))  # said before "run backward": no backward would give it one
    ln.forward(loss)
    ln.backward(loss)
    with pytest.raises(GraphError, match="'d' gets no gradient"):
        ln.explain(d, (0,))


def test_explain_before_backward_says_to_run_it():
    loss = build_target("xor")
    with pytest.raises(GraphError, match="has no gradient to explain yet: run backward"):
        ln.explain(find_node(loss, "W"), (0, 0))


@pytest.mark.parametrize("target,element,message", [
    ("xor", "X[0,0]", "error: 'X' gets no gradient (data or labels): nothing to explain"),
    ("least-squares", "x", "error: 'x' gets no gradient (data or labels)"),
    ("xor", "W", "error: 'W' has 2 axes (shape (2, 2)): write W[i,j], not W"),
    ("xor", "W[0]", "error: 'W' has 2 axes (shape (2, 2)): write W[i,j], not W[0]"),
    ("xor", "loss[0]", "error: 'loss' is a scalar (shape ()): write loss, with no index"),
    ("xor", "W[5,0]", "error: index [5, 0] is outside 'W', whose shape is (2, 2)"),
    ("xor", "W[-1,0]", "error: index [-1, 0] is outside 'W'"),
])
def test_the_cli_prints_each_mistake_as_one_line(target, element, message):
    result = CliRunner().invoke(main, ["trace", target, "--explain", element])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr + result.stdout


def test_the_cli_lists_zero_terms():
    result = CliRunner().invoke(main, ["trace", "rnn", "--explain", "V[1,2]"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "matmul 'rec" in line]
    assert len(rows) == 4 and "rec1[0, 2]" in rows[-1]  # one term per time step
    assert " x            0 =            0 " in rows[-1]  # h0 = 0: local 0, term 0
    assert "total" in result.stdout and len(result.stdout.splitlines()) == 9
