"""The lectures' worked examples: XOR's numbers are deck 001's own; the others follow deck
000's chain rule on 1-D least squares, deck 002's 'Variables passed to multiple functions'
(fan-out) and deck 003's 'Scalar vs. Matrix Operations', with numbers of loopnet's choosing."""

import numpy as np

import loopnet as ln
from loopnet import targets


def test_least_squares_chain_rule_by_hand():
    loss = targets.build_target("least-squares")
    assert ln.forward(loss) == 0.25
    ln.backward(loss)
    nodes = {n.name: n for n in ln.topological_order(loss)}
    # dloss/dresidual = 2 r = -1, and every node on the path to w and b passes it on
    assert nodes["residual"].grad == -1.0
    assert nodes["prediction"].grad == -1.0
    assert nodes["b"].grad == -1.0
    assert nodes["u"].grad == -1.0
    assert nodes["w"].grad == -2.0  # times x = 2
    assert nodes["x"].grad is None  # data gets no gradient unless asked


def test_fan_out_gradient_is_the_sum_of_both_paths():
    f = targets.build_target("fan-out")
    ln.forward(f)
    ln.backward(f)
    x = next(n for n in ln.topological_order(f) if n.name == "x")
    assert x.grad == 3.0 + 2 * 2.0  # w from u = w x, plus 2x from v = x^2


def test_xor_hand_set_weights_give_exactly_0_1_1_0():
    loss = targets.build_target("xor")
    out = next(n for n in ln.topological_order(loss) if n.name == "out")
    assert ln.forward(out).ravel().tolist() == [0.0, 1.0, 1.0, 0.0]
    assert ln.forward(loss) == 0.0


def test_rerun_with_a_new_input_gives_the_new_answer():
    x = ln.Input([1.0, 2.0], name="x")
    w = ln.Parameter([3.0, 4.0], name="w")
    y = ln.sum(ln.mul(w, x))
    assert ln.forward(y) == 11.0
    x.value = [10.0, 0.0]
    assert ln.forward(y) == 30.0
    ln.backward(y)
    assert w.grad.tolist() == [10.0, 0.0]


def test_new_batch_size_reshapes_the_whole_graph():
    x = ln.Input(np.ones((2, 3)))
    W, b = ln.Parameter(np.ones((3, 2))), ln.Parameter(np.zeros(2))
    loss = ln.mean(ln.affine(x, W, b))
    ln.forward(loss)
    x.value = np.ones((5, 3))
    assert ln.forward(loss) == 3.0
    ln.backward(loss)
    assert W.grad.shape == (3, 2)
    np.testing.assert_allclose(W.grad, np.full((3, 2), 0.5))  # mean over 5 rows and 2 columns


def test_logistic_and_mlp_targets_give_finite_losses_and_grads():
    for name in ("logistic", "mlp"):
        loss = targets.build_target(name)
        assert np.isfinite(ln.forward(loss))
        ln.backward(loss)
        for node in ln.topological_order(loss):
            if node.grad is not None:
                assert np.all(np.isfinite(node.grad))


def test_deck_003_matrix_vector_loops_are_matvec_verbatim():
    """The README quotes deck 003's three statements; ops/matvec.py has each of them, with
    `.` written `_`, and computes u = A x and its gradients."""
    import inspect
    import re

    from loopnet.ops import matvec

    readme = (__import__("pathlib").Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("(deck 003, 'Scalar vs. Matrix Operations'):", 1)[1].strip().splitlines()[:3]
    source = inspect.getsource(matvec)
    for line in block:
        statement = line.split("#")[0].replace("for i,j:", "")
        code = " ".join(re.sub(r"(\w)\.(value|grad)", r"\1_\2", statement).replace(",", ", ").split())
        assert code in source, code
    A = ln.Parameter([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], name="A")
    x = ln.Parameter([1.0, -1.0], name="x")
    loss = ln.sum(ln.mul(ln.matvec(A, x), ln.Input([1.0, 10.0, 100.0])))
    ln.forward(loss)
    ln.backward(loss)
    np.testing.assert_array_equal(A.grad, np.outer([1.0, 10.0, 100.0], [1.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [531.0, 642.0])
