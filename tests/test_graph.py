"""The graph engine's contract: leaves, dtypes, names, order, forward/backward rules."""

import numpy as np
import pytest

import loopnet as ln
from loopnet.errors import BackendError, DTypeError, GraphError, NonFiniteError


def test_leaves_convert_by_the_contract():
    assert ln.Input([1, 2]).dtype == np.float64  # a list becomes float64
    assert ln.Input(np.array([1, 2])).dtype == np.int64  # integer arrays stay labels
    assert ln.Input(np.ones(2, np.float32)).dtype == np.float32
    assert ln.Parameter(np.array([1, 2])).dtype == np.float64  # parameters are always float
    assert ln.Parameter(np.ones(2, np.float32)).dtype == np.float32
    assert ln.Parameter(3).value.shape == ()
    assert ln.Parameter(np.zeros(())).shape == ()
    assert ln.Input(np.zeros((2, 3)).T).value.flags.c_contiguous  # loops index row-major storage


def test_leaves_copy_their_data():
    data = np.ones(3)
    x = ln.Parameter(data)
    data[0] = 5
    assert x.value[0] == 1


@pytest.mark.parametrize("bad", ["abc", [1 + 2j], np.array([True, False]), {"a": 1}, None])
def test_non_numeric_data_for_a_parameter_is_a_clear_error(bad):
    with pytest.raises(DTypeError, match="Parameter"):
        ln.Parameter(bad)


def test_integer_input_cannot_take_a_gradient():
    with pytest.raises(DTypeError, match="only float data can take a gradient"):
        ln.Input(np.array([1, 2]), grad=True)


def test_integer_data_into_a_float_op_is_an_error_naming_the_node():
    with pytest.raises(DTypeError, match=r"relu: input x='counts' holds int64"):
        ln.relu(ln.Input(np.array([1, 2]), name="counts"))


def test_mixing_float32_and_float64_is_an_error_naming_both_nodes():
    a = ln.Parameter(np.ones(2, np.float32), name="a32")
    b = ln.Parameter(np.ones(2), name="b64")
    with pytest.raises(DTypeError, match=r"add: inputs mix float32 and float64 \(float32: a32; float64: b64\)"):
        ln.add(a, b)


def test_float32_stays_float32():
    x = ln.Parameter(np.array([[1.0, -2.0]], np.float32))
    W = ln.Parameter(np.ones((2, 3), np.float32))
    b = ln.Parameter(np.zeros(3, np.float32))
    loss = ln.mean(ln.relu(ln.affine(x, W, b)))
    assert ln.forward(loss).dtype == np.float32
    ln.backward(loss)
    assert W.grad.dtype == np.float32


def test_automatic_names_are_op_and_counter_and_given_names_are_verbatim():
    with ln.fresh_names():
        x = ln.Parameter([1.0], name="x")
        a, b = ln.relu(x), ln.relu(x)
        c = ln.add(a, b, name="total")
        assert (a.name, b.name, c.name) == ("relu_1", "relu_2", "total")
        assert ln.Parameter([1.0]).name == "Parameter_1"


def test_clashing_given_names_get_a_suffix():
    with ln.fresh_names():
        assert [ln.Parameter(1.0, name="w").name for _ in range(3)] == ["w", "w_2", "w_3"]
        taken = ln.Parameter(1.0, name="relu_1")
        assert ln.relu(taken).name == "relu_2"


def test_topological_order_puts_inputs_first_and_the_output_last():
    x = ln.Parameter([1.0])
    a = ln.exp(x)
    b = ln.mul(a, x)
    c = ln.add(b, a)
    order = ln.topological_order(c)
    assert order[-1] is c and len(order) == 4
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        assert all(position[id(p)] < position[id(node)] for p in node.inputs)


def test_deep_graphs_do_not_hit_the_recursion_limit():
    x = ln.Parameter([0.5])
    node = x
    for _ in range(3000):
        node = ln.tanh(node)
    assert len(ln.topological_order(node)) == 3001


def test_backward_zeroes_grads_instead_of_accumulating_across_calls():
    x = ln.Parameter([2.0])
    y = ln.sum(ln.square(x))
    ln.forward(y)
    ln.backward(y)
    ln.backward(y)
    assert x.grad.tolist() == [4.0]


@pytest.mark.parametrize("backend", ["python", "numba", "cuda"])
def test_backward_zeroes_every_grad_with_one_fill(backend, monkeypatch):
    # One fill of one block (one launch on a GPU) instead of one per node, plus the seed;
    # on cuda the zeros and the seed are the same launch (fill_seeded).
    from loopnet.backends import get_backend

    rng = np.random.default_rng(0)
    W, b = ln.Parameter(rng.normal(size=(3, 2)), name="W"), ln.Parameter(np.zeros(2), name="b")
    x = ln.Input(rng.normal(size=(4, 3)), name="x")
    loss = ln.sum(ln.square(ln.relu(ln.affine(x, W, b))))
    with ln.use(backend):
        ln.forward(loss)
        ln.backward(loss)
        first = {n.name: n.grad.copy() for n in ln.topological_order(loss) if n.requires_grad}
        fills = []
        module = get_backend(backend)
        real_fill = module.fill
        monkeypatch.setattr(module, "fill", lambda array, value: (fills.append(value), real_fill(array, value)))
        if backend == "cuda":
            real_seeded = module.fill_seeded
            monkeypatch.setattr(module, "fill_seeded", lambda block, value, start, seed: (
                fills.append((value, block.size - start, seed)), real_seeded(block, value, start, seed)))
        ln.backward(loss)
    assert fills == ([(0, 1, 1)] if backend == "cuda" else [0, 1])  # (cuda: zeros, then 1 element of ones)
    grads = [n.grad for n in ln.topological_order(loss) if n.requires_grad]
    assert len(grads) == 6 and x.grad is None
    for n, g in zip([n for n in ln.topological_order(loss) if n.requires_grad], grads):
        np.testing.assert_array_equal(g, first[n.name])  # zeroed, not accumulated across calls
        assert g.shape == n.shape
    for i, g in enumerate(grads):  # views of one block, never overlapping
        assert not any(np.shares_memory(g, other) for other in grads[i + 1:])


def test_grad_blocks_follow_a_new_batch_size():
    W = ln.Parameter(np.ones((2, 1)), name="W")
    x = ln.Input(np.ones((3, 2)), name="x")
    loss = ln.mean(ln.matmul(x, W))
    ln.forward(loss)
    ln.backward(loss)
    x.value = np.ones((5, 2))
    ln.forward(loss)
    ln.backward(loss)
    assert W.grad.tolist() == [[1.0], [1.0]] and loss.inputs[0].grad.shape == (5, 1)


def test_backward_with_an_upstream_gradient():
    x = ln.Parameter([1.0, 2.0])
    y = ln.square(x)
    ln.forward(y)
    ln.backward(y, grad=[10.0, 100.0])
    assert x.grad.tolist() == [20.0, 400.0]
    with pytest.raises(GraphError, match="upstream grad .* has shape"):
        ln.backward(y, grad=[1.0])


def test_backward_before_forward_and_after_an_input_changed_are_errors():
    x = ln.Input([1.0], name="x")
    w = ln.Parameter([2.0], name="w")
    y = ln.sum(ln.mul(w, x), name="y")
    with pytest.raises(GraphError, match="'y' has not been computed: call forward"):
        ln.backward(y)
    ln.forward(y)
    x.value = [3.0]
    with pytest.raises(GraphError, match="stale"):
        ln.backward(y)


def test_value_of_an_uncomputed_node_is_a_clear_error():
    y = ln.relu(ln.Parameter([1.0]), name="r")
    with pytest.raises(GraphError, match="'r' has not been computed yet"):
        y.value


def test_backward_of_something_without_parameters_is_an_error():
    y = ln.sum(ln.Input([1.0]), name="const")
    ln.forward(y)
    with pytest.raises(GraphError, match="nothing to differentiate"):
        ln.backward(y)


def test_check_finite_names_the_first_non_finite_node():
    x = ln.Input([1.0, 1000.0], name="x")
    e = ln.exp(x, name="blows_up")
    loss = ln.sum(ln.log(e), name="loss")
    assert ln.forward(loss) == np.inf  # without the check the Inf flows on silently
    with pytest.raises(NonFiniteError, match=r"value of node 'blows_up' \(exp\) is inf at index \(1,\), the first non-finite node; its inputs: x"):
        ln.forward(loss, check_finite=True)


def test_check_finite_in_backward_names_where_the_grad_went_bad():
    x = ln.Parameter([0.0], name="x")
    loss = ln.sum(ln.log(x), name="loss")
    ln.forward(loss)
    with pytest.raises(NonFiniteError, match=r"grad of node 'x' \(Parameter\) is inf at index \(0,\), after the backward loops of 'log_1' \(log\)"):
        ln.backward(loss, check_finite=True)


def test_ops_reject_arrays_and_wrong_arity():
    with pytest.raises(TypeError, match="wrap arrays in Input"):
        ln.relu(np.ones(3))
    with pytest.raises(TypeError, match="add: an operand must be a loopnet node or a number, got ndarray; wrap arrays in Input"):
        ln.add(ln.Parameter(1.0), np.ones(1))  # a number would be a constant; an array must be wrapped
    with pytest.raises(DTypeError, match="pass its .value"):
        ln.Parameter(ln.Parameter(1.0))


def test_use_switches_backend_as_call_and_as_context_manager():
    from loopnet.backends import current_backend

    with ln.use("python"):
        assert current_backend().name == "python"
    assert current_backend().name == "python"
    with pytest.raises(BackendError, match="unknown backend 'fortran'; choose one of: python, numba, cuda"):
        ln.use("fortran")
