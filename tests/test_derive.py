"""ln.derive and `cli.py derive`: the rule deck 003's loops follow, turned into a tool.

Three kinds of test:
- the derivation's text: the slide's loops and loopnet's gather form, for the forms the
  rule covers, and a one-line refusal for everything else;
- the generated ops: gradcheck on random shapes, and the same numbers on every backend;
- the hand-written ops held to their own declarations: for every op whose forward body
  declares a contraction, the loops derived from that declaration compute the gradients
  the op's hand-written loops compute (Hypothesis, random shapes), and each hand-written
  backward declaration is the derived gather loop.
"""

import inspect
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

import loopnet as ln
from loopnet.cli import main
from loopnet.derivation import Access, DeriveError, expression_text, parse
from loopnet.derive import derive
from loopnet.errors import ShapeError
from loopnet.ops import affine as affine_module
from loopnet.ops.affine import affine_forward, affine_grad_W, affine_grad_x
from loopnet.ops.bmm import bmm_forward, bmm_grad_A, bmm_grad_B, bmm_grad_BT
from loopnet.ops.conv import conv2d_forward, conv2d_grad_W, conv2d_grad_x
from loopnet.ops.conv1d import conv1d_forward, conv1d_grad_W, conv1d_grad_x
from loopnet.ops.conv_strided import conv2d_strided_forward, conv2d_strided_grad_W, conv2d_strided_grad_x
from loopnet.ops.matmul import matmul_forward, matmul_grad_A, matmul_grad_B
from loopnet.schedule import parse as parse_declaration
from loopnet.testing import assert_gradcheck
from loopnet.testing.backends import assert_backends_agree

DECK_003 = "U[h,i,j] += A[h,i,k] * B[h,j,k]"


def gathers(statement, **options):
    return {name: g.text() for name, g in derive(statement, **options).gradients.items()}


# -- the derivation's text -------------------------------------------------------------------


def test_deck_003_higher_order_loops_come_out_as_the_slide_writes_them():
    text = str(derive(DECK_003))
    assert "for h,i,j,k:  A.grad[h,i,k] += U.grad[h,i,j] * B.value[h,j,k]" in text
    assert "for h,i,j,k:  B.grad[h,j,k] += U.grad[h,i,j] * A.value[h,i,k]" in text
    assert gathers(DECK_003) == {"A": "dA[h,i,k] += sum_j dU[h,i,j] * B[h,j,k]",
                                 "B": "dB[h,j,k] += sum_i dU[h,i,j] * A[h,i,k]"}


def test_deck_003_matrix_vector_backward_is_derived_as_the_slide_writes_it():
    text = str(derive("for i,j: u.value[i] += A.value[i,j] * x.value[j]"))
    assert "for i,j:  A.grad[i,j] += u.grad[i] * x.value[j]" in text
    assert "for i,j:  x.grad[j] += u.grad[i] * A.value[i,j]" in text
    assert gathers("u[i] += A[i,j] * x[j]") == {"A": "dA[i,j] += du[i] * x[j]", "x": "dx[j] += sum_i du[i] * A[i,j]"}


def test_the_readme_quotes_what_derive_prints():
    readme = open(__import__("pathlib").Path(__file__).parents[1] / "README.md").read()
    quoted = readme.split("with the rule that made it:\n\n```\n", 1)[1].split("```", 1)[0]
    assert quoted in str(derive(DECK_003)) + "\n"


def test_the_slides_spelling_with_value_and_its_loop_header_reads_the_same():
    spelled = "for h,i,j,k: U.value[h,i,j] += A.value[h,i,k] * B.value[h,j,k]"
    assert gathers(spelled) == gathers(DECK_003)


def test_sigma_around_the_sum_is_deck_003s_first_backward_loop():
    d = derive("Y[h,i,j] = sigma(sum_k A[h,i,k] * B[h,j,k])")
    assert "U.grad[h,i,j] += Y.grad[h,i,j] * sigmoid'(U.value[h,i,j])" in str(d)
    assert gathers("Y[h,i,j] = sigma(sum_k A[h,i,k] * B[h,j,k])")["A"] == "dA[h,i,k] += sum_j dU[h,i,j] * B[h,j,k]"


def test_affine_bias_sums_over_the_minibatch_and_the_transposed_copy_maps_back():
    d = derive("Y[n,m] = b[m] + sum_d X[n,d] * WT[m,d]")
    assert d.inputs == ("b", "X", "W")
    assert {n: g.text() for n, g in d.gradients.items()} == {
        "b": "db[m] += sum_n dY[n,m]",
        "X": "dX[n,d] += sum_m dY[n,m] * W[d,m]",
        "W": "dW[d,m] += sum_n dY[n,m] * X[n,d]",
    }
    assert d.copy_gradients["WT"].text() == "dWT[m,d] += sum_n dY[n,m] * X[n,d]"
    assert "back to W: W.grad[d,m] is WT.grad[m,d]" in str(d)


def test_the_bias_may_come_after_the_sum():
    assert gathers("Y[n,m] = sum_d X[n,d] * W[d,m] + b[m]")["b"] == "db[m] += sum_n dY[n,m]"


def test_as_written_keeps_the_copy_and_a_dict_names_it():
    assert "WT" in gathers("Y[n,m] = sum_d X[n,d] * WT[m,d]", transposed=None)
    assert "V" in gathers("Y[n,m] = sum_d X[n,d] * Q[m,d]", transposed={"Q": "V"})


def test_the_flipped_kernel_appears_by_itself_from_h_minus_i():
    d = derive("O[n,co,h,w] = b[co] + sum_{c,i,j} X[n,c,h+i,w+j] * W[co,c,i,j]")
    assert d.gradients["X"].text() == "dX[n,c,h,w] += sum_{co,i,j} dO[n,co,h-i,w-j] * W[co,c,i,j]"
    assert d.gradients["W"].text() == "dW[co,c,i,j] += sum_{n,h,w} dO[n,co,h,w] * X[n,c,h+i,w+j]"
    assert "solved for: h-i, w-j" in str(d).replace("\n  ", " ")


def test_a_stride_divides_and_a_minus_offset_adds():
    strided = "O[n,co,h,w] = sum_{c,i,j} X[n,c,h*sh+i,w*sw+j] * W[co,c,i,j]"
    assert gathers(strided)["X"] == "dX[n,c,h,w] += sum_{co,i,j} dO[n,co,(h-i)/sh,(w-j)/sw] * W[co,c,i,j]"
    assert gathers("Y[h] = sum_i X[h-i] * W[i]")["X"] == "dX[h] += sum_i dY[h+i] * W[i]"
    assert gathers("Y[h] = sum_i X[i-h] * W[i]")["X"] == "dX[h] += sum_i dY[i-h] * W[i]"
    assert gathers("Y[h] = sum_i X[h+i*dl] * W[i]")["X"] == "dX[h] += sum_i dY[h-i*dl] * W[i]"


def test_an_output_index_inside_the_other_factor_is_substituted():
    assert gathers("Y[h,i] = X[h+i] * W[h]")["X"] == "dX[h] += sum_i dY[h-i,i] * W[h-i]"


def test_a_zero_dimensional_output_loops_once():
    d = derive("s[] = sum_i a[i] * b[i]")
    assert "once:" in str(d) and d.gradients["a"].text() == "da[i] += ds[] * b[i]"


def test_expression_text_writes_what_the_schedule_reads():
    for text in ("h", "h+i", "h-i", "h*sh+i", "(h-i)/sh", "i-h*dl"):
        assert expression_text(parse_declaration(f"Y[h] = sum_i X[{text}] * W[i]").a_index[0]) == text


REFUSED = [
    ("", "derive needs a statement"),
    ("Y[i] A[i,j] * x[j]", "expected OUT[...] = ..."),
    ("Y[i] = foo(sum_j A[i,j] * x[j])", "'foo' is not a function derive knows"),
    ("Y[i] = sum_j A[i,j] * x[j] * z[j]", "must be a product of two arrays"),
    ("Y[i] = sum_j A[i,j] - x[j]", "must be a product of two arrays"),
    ("Y[i] = A[i,j] * x[j]", "j appears only on the right"),
    ("Y[i] += b[i] + A[i,j] * x[j]", "would be added once per j"),
    ("Y[i] += sigmoid(A[i,j] * x[j])", "a function applies to the finished sum"),
    ("Y[i] = sum_j A[i,j] * A[j,i]", "A appears twice"),
    ("Y[i,i] = sum_j A[i,j] * x[j]", "must be distinct names"),
    ("Y[i] = sum_{j,i} A[i,j] * x[j]", "must be distinct names"),
    ("Y[i] = sum_j A[i,k] * x[j]", "k is neither the output's index nor a summed one"),
    ("Y[i,m] = sum_j A[i,j] * x[j]", "m is not used by A or x"),
    ("Y[i] = b[j] + sum_j A[i,j] * x[j]", "must be indexed by some of the output's indices"),
    ("Y[i] = sum_j A[i+1,j] * x[j]", "a constant (1) is not part of the notation"),
    ("Y[h] = sum_i X[h+i] * W[2*i]", "a constant (2) is not part of the notation"),
    ("Y[i] = b[i+j] + sum_j A[i,j] * x[j]", "must be indexed by plain names"),
    ("Y[i+j] = sum_j A[i,j] * x[j]", "must be indexed by plain names"),
    ("Y[acc] = sum_j A[acc,j] * x[j]", "acc is a name the generated loops use"),
    ("Y[i] = sum_j dx[i,j] * x[j]", "dx would name both an array and a gradient"),
    ("Y[i] = sum_j A[i,j] * j[j]", "j names both an index and an array"),
    ("Y[h] = sum_i X[h*i+i] * W[i]", "must be a stride"),
    ("Y[h] = sum_i X[(h-i)/s] * W[i]", "divides an index"),
    ("Y[h] = sum_i X[h+i, i] * W[i]", "uses an index twice"),
    ("for h,i: Y[h] = sum_k A[h,k] * B[k]", "must run over every index"),
    ("Y[h] = sum_i X[-h+i] * W[i]", "cannot read the index"),
    ("Y[h] = sum_i X[h+i] * W[h+i]", "would read h inside h+i"),
    ("Y[dX] = X[dX] * B[dX]", "dX names both an index or stride and an array or gradient"),
    ("Y[i] = sum_k A[i*dY+k] * B[k]", "dY names both an index or stride and an array or gradient"),
    ("Y[i] = sigmoid(sum_dU A[i,dU] * B[dU])", "dU names both an index or stride"),
    ("Y[i] = sum_{} A[i] * B[i]", "must name each summed index"),
    ("Y[i] = sum_{k,} A[i,k] * B[k]", "must name each summed index"),
    ("Y[i] = ﬁ[i] * fi[i]", "fi appears twice"),  # Python reads ﬁ as fi (NFKC), so derive does too
    ("Y[i] = sum_k A[i,k] * 2x[k]", "a constant (2) is not part of the notation"),
    ("Y[n] = 1 + sum_k X[n,k] * W[k]", "a constant (1) is not part of the notation"),
    ("Y[n] = sum_k X[n,k] * W[k] * 0.5", "a constant (0.5) is not part of the notation"),
    ("Y[n] = sum_k X[n,k] * W[k] * .5", "a constant (.5) is not part of the notation"),
    ("Y[n] = 1e-3 + sum_k X[n,k] * W[k]", "a constant (1e-3) is not part of the notation"),
    ("Y[n] = A[n]**B[n]", "a power (**) is not part of the notation"),
    ("Y[n] = sum_k X[n,k] * W[k] * V[k]", "must be a product of two arrays, A[...] * B[...], not of 3"),
    ("u[i] += A[i,j] * x[j", "the '[' at character 19 is never closed"),
    ("u[i] += A[i,j * x[j]", "the '[' at character 10 is never closed"),
    ("Y[i] = sigmoid(sum_j A[i,j] * x[j]", "the '(' at character 15 is never closed"),
    ("Y[i] = sum_j A[i,j]] * x[j]", "the ']' at character 20 closes nothing"),
    ("Y[i] = sum_j A[i,j) * x[j]", "the ')' at character 19 cannot close the '[' at character 15"),
    ("Y[i] = sum_{j A[i,j] * x[j]", "the '{' at character 12 is never closed"),
    ("Y[n] = sum_d X[n,d] * X2[d]", None),  # accepted: a control that the list can pass
]


@pytest.mark.parametrize("statement, reason", REFUSED)
def test_what_the_rule_cannot_do_is_refused_with_its_reason(statement, reason):
    if reason is None:
        assert derive(statement).gradients
        return
    with pytest.raises(DeriveError, match="derive") as caught:
        derive(statement)
    assert reason in str(caught.value) and "\n" not in str(caught.value)


def test_two_copies_of_one_original_are_refused():
    with pytest.raises(DeriveError, match="Q appears twice"):
        derive("Y[i,j] = sum_k AT[k,i] * BT[j,k]", transposed={"AT": "Q", "BT": "Q"})


def test_only_loopnets_own_copy_names_are_read_as_copies():
    assert derive("Y[i,j] = sum_k X[i,k] * MAT[k,j]").inputs == ("X", "MAT")
    assert derive("Y[i,j] = sum_k X[i,k] * accT[k,j]").inputs == ("X", "accT")
    assert derive("Y[i,j] = sum_k X[i,k] * BT[j,k]").inputs == ("X", "B")
    assert derive("Y[i,j] = sum_k dXT[k,i] * B[j,k]").inputs == ("dX", "B")


def test_a_statement_over_several_lines_reads_as_one():
    d = derive("for i,k:\n    Y.value[i] += A.value[i,k] * B.value[k]")
    assert "\n" not in d.declared.text and d.gradients["B"].text() == "dB[k] += sum_i dY[i] * A[i,k]"
    assert_gradcheck(d(ln.Parameter(np.ones((2, 3)), name="A"), ln.Parameter([1.0, 2.0, 3.0], name="B")))


def test_a_zero_dimensional_added_array_runs():
    d = derive("Y[i] = b[] + sum_k A[i,k] * B[k]")
    b = ln.Parameter(np.float64(0.5), name="b")
    A, B = ln.Parameter(np.arange(6.0).reshape(2, 3), name="A"), ln.Parameter([1.0, -1.0, 2.0], name="B")
    np.testing.assert_allclose(ln.forward(d(b, A, B)), 0.5 + np.arange(6.0).reshape(2, 3) @ [1.0, -1.0, 2.0])
    assert_gradcheck(ln.sum(ln.square(d(b, A, B))))  # gradcheck takes a 0-d leaf too


def test_a_statement_that_is_not_a_string_is_refused():
    with pytest.raises(DeriveError, match="needs a statement"):
        derive(None)


@pytest.mark.parametrize("copies, reason", [
    ({"A": "i"}, "i names both an index and an array"),
    ({"A": "for"}, "for is a name the generated loops use"),
    ({"A": "acc"}, "acc is a name the generated loops use"),
    ({"Z": "V"}, "'Z' is not an input with two or more axes"),
    ({"x": "V"}, "'x' is not an input with two or more axes"),
    ({"A": "x"}, "must be a new name"),
    ({"A": "not a name"}, "must be a new name"),
])
def test_a_bad_transposed_copy_is_refused(copies, reason):
    with pytest.raises(DeriveError, match=reason):
        derive("Y[i] = sum_j A[i,j] * x[j]", transposed=copies)


# -- the generated ops -----------------------------------------------------------------------


def shapes_for(derivation, sizes, strides):
    """Input shapes that give every loop index the length `sizes` says: a position
    h*sh+i spans (h-1)*sh + (i-1) + 1 elements."""
    def length(expression):
        total = 1
        for at, (op, name) in enumerate(expression):
            if op in "+-":
                scaled = at + 1 < len(expression) and expression[at + 1][0] == "*"
                total += (strides[expression[at + 1][1]] if scaled else 1) * (sizes[name] - 1)
        return total

    return [tuple(length(e) for e in access.index) for access in derivation.statement.inputs]


GENERATED = [
    "Y[h,i,j] = sigmoid(sum_k A[h,i,k] * B[h,j,k])",  # deck 003's higher-order example
    "U[i,j] += A[i,k] * B[k,j]",  # the slide's loop, sum implied
    "Y[n,m] = tanh(sum_d X[n,d] * W[d,m] + b[m])",
    "O[n,co,h,w] = b[co] + sum_{c,i,j} X[n,c,h*sh+i,w*sw+j] * W[co,c,i,j]",
    "Y[l] = sum_i X[l+i] * W[i]",
    "P[i,j] = exp(a[i] * c[j])",
    "y[i] = square(sum_j A[i,j] * x[j])",
    "s[] = sum_i a[i] * b[i]",
]


def parameters(statement, sizes, strides, seed, dtype=np.float64, transposed="auto"):
    rng = np.random.default_rng(seed)
    d = derive(statement, transposed=transposed)
    return [ln.Parameter(rng.uniform(-1, 1, shape).astype(dtype), name=name)
            for name, shape in zip(d.inputs, shapes_for(d, sizes, strides))]


@settings(max_examples=5)
@pytest.mark.parametrize("statement", GENERATED)
@given(sizes=st.lists(st.integers(1, 3), min_size=7, max_size=7), strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       seed=st.integers(0, 2**16))
def test_a_derived_op_passes_gradcheck(statement, sizes, strides, seed):
    loops = derive(statement).statement.loops
    sizes, strides = dict(zip(loops, sizes)), dict(zip(("sh", "sw"), strides))
    scalars = {k: v for k, v in strides.items() if k in derive(statement).statement.scalars}
    assert_gradcheck(derive(statement)(*parameters(statement, sizes, strides, seed), **scalars))


BACKENDS_CHECKED = [GENERATED[0], GENERATED[2], GENERATED[3], GENERATED[7]]


@pytest.mark.parametrize("backend", ["numba", "cuda"])
@pytest.mark.parametrize("statement", BACKENDS_CHECKED)
def test_a_derived_op_gives_the_python_backends_numbers_on_the_compiled_ones(statement, backend):
    d = derive(statement)
    sizes = dict(zip(d.statement.loops, (2, 3, 2, 3, 2, 2, 2)))
    strides = {"sh": 2, "sw": 1}
    scalars = {k: v for k, v in strides.items() if k in d.statement.scalars}
    for dtype in (np.float64, np.float32):
        assert_backends_agree(d(*parameters(statement, sizes, strides, 0, dtype), **scalars), backend)


def test_the_generated_bodies_are_the_functions_the_python_backend_steps_through():
    d = derive(DECK_003)
    assert inspect.getsource(d.op.grad_bodies["B"]) in d.op.source
    assert "dB[h, j, k] += acc" in inspect.getsource(d.op.grad_bodies["B"])
    called = set()

    def tracer(frame, event, arg):
        if event == "call":
            called.add(frame.f_code.co_filename)

    A, B = ln.Parameter(np.ones((1, 2, 2)), name="A"), ln.Parameter(np.ones((1, 2, 2)), name="B")
    loss = ln.sum(d(A, B))
    sys.settrace(tracer)
    try:
        ln.forward(loss)
        ln.backward(loss)
    finally:
        sys.settrace(None)
    assert inspect.getsourcefile(d.op.forward_body) in called  # a breakpoint there stops
    np.testing.assert_array_equal(B.grad, np.full((1, 2, 2), 2.0))


def test_the_same_statement_compiles_once_and_different_ones_apart():
    assert derive(DECK_003).op.forward_body is derive(DECK_003).op.forward_body
    assert derive(DECK_003).op.forward_body is not derive("U[h,i,j] += A[h,i,k] * B[h,k,j]").op.forward_body


def test_passing_the_copy_instead_of_its_original_says_which_to_pass():
    d = derive("Y[n,m] = sum_d X[n,d] * WT[m,d]")
    X, W = ln.Parameter(np.ones((2, 3)), name="X"), ln.Parameter(np.ones((3, 4)), name="W")
    with pytest.raises(TypeError, match="reads WT as the transposed copy of W .*pass W itself"):
        d(X=X, WT=W)
    assert d(X=X, W=W).shape == (2, 4)


def test_inputs_go_by_position_or_name_and_strides_by_name():
    d = derive("O[n,co,h,w] = b[co] + sum_{c,i,j} X[n,c,h*sh+i,w*sw+j] * W[co,c,i,j]")
    b, X, W = parameters(d.declared.text, dict(n=1, co=2, h=2, w=3, c=1, i=2, j=1), {"sh": 2, "sw": 1}, 0)
    by_name = d(X=X, W=W, b=b, sh=2, sw=1)
    assert by_name.shape == (1, 2, 2, 3) and by_name.inputs == (b, X, W)
    np.testing.assert_allclose(ln.forward(by_name), ln.forward(ln.conv2d(X, W, b, stride=(2, 1))), rtol=1e-13)


def test_wrong_calls_of_a_derived_op_are_refused():
    d = derive("O[n,co,h,w] = b[co] + sum_{c,i,j} X[n,c,h*sh+i,w*sw+j] * W[co,c,i,j]")
    b, X, W = (ln.Parameter(np.ones(s)) for s in [(2,), (1, 1, 5, 5), (2, 1, 3, 3)])
    with pytest.raises(DeriveError, match="needs the stride sh as a whole number"):
        d(b, X, W, sw=1)
    with pytest.raises(DeriveError, match="got 0"):
        d(b, X, W, sh=0, sw=1)
    with pytest.raises(DeriveError, match="got True"):
        d(b, X, W, sh=True, sw=1)
    with pytest.raises(TypeError, match="no input or stride named stride"):
        d(b, X, W, sh=1, sw=1, stride=2)
    with pytest.raises(TypeError, match="takes 3 inputs"):
        d(b, X, sh=1, sw=1)
    with pytest.raises(TypeError, match="input X given twice"):
        d(b, X, W, X=X, sh=1, sw=1)
    assert d(b, X, W, sh=np.int64(2), sw=1).shape == (1, 2, 2, 3)  # NumPy's integers are whole numbers
    with pytest.raises(DeriveError, match="got 1.0"):
        d(b, X, W, sh=1.0, sw=1)
    with pytest.raises(ShapeError, match="has 4 axes, but"):
        d(b, ln.Parameter(np.ones((5, 5))), W, sh=1, sw=1)
    with pytest.raises(ShapeError, match="index c runs over 2 in X.* but over 1 in W"):
        d(b, ln.Parameter(np.ones((1, 2, 5, 5))), W, sh=1, sw=1)
    with pytest.raises(ShapeError, match="too few for one h"):
        d(b, ln.Parameter(np.ones((1, 1, 2, 5))), W, sh=1, sw=1)


@pytest.mark.parametrize("statement, reason", [
    ("Y[h] = sum_i X[h-i] * W[i]", "do not give the range of h"),
    ("Y[h,j] = sum_i X[h+i] * W[j+i]", "do not give the range of h, j, i"),
    ("Y[h] = sum_i X[h+i] * W[h]", "the summed index i is no input's plain axis"),
])
def test_an_op_whose_shapes_the_inputs_cannot_give_is_refused_when_made(statement, reason):
    d = derive(statement)
    assert d.gradients  # the loops derive; only running them needs the ranges
    with pytest.raises(DeriveError, match=reason):
        d.op


# -- the hand-written ops, held to their declarations -----------------------------------------


@dataclass
class Held:
    name: str
    body: object  # the forward body whose @contraction line is derived
    transposed: object  # how the declaration's copies are read
    sizes: dict  # loop index -> largest size drawn
    hand: object  # (parameters by derived name, strides) -> the hand-written op's node
    backward: dict  # derived input name -> the hand-written body that declares its gradient


HELD = [
    Held("matmul", matmul_forward, "auto", dict(i=4, j=4, k=4), lambda p, s: ln.matmul(p["A"], p["B"]),
         {"A": matmul_grad_A, "B": matmul_grad_B}),
    Held("affine", affine_forward, "auto", dict(n=4, m=4, d=4), lambda p, s: ln.affine(p["X"], p["W"], p["b"]),
         {"X": affine_grad_x, "W": affine_grad_W}),
    Held("conv2d", conv2d_forward, "auto", dict(n=2, co=2, h=3, w=3, c=2, i=3, j=2),
         lambda p, s: ln.conv2d(p["X"], p["W"], p["b"]), {"X": conv2d_grad_x, "W": conv2d_grad_W}),
    Held("conv2d stride", conv2d_strided_forward, "auto", dict(n=2, co=2, h=3, w=3, c=2, i=3, j=2),
         lambda p, s: ln.conv2d(p["X"], p["W"], p["b"], stride=(s["sh"], s["sw"])),
         {"X": conv2d_strided_grad_x, "W": conv2d_strided_grad_W}),
    Held("conv1d", conv1d_forward, "auto", dict(n=2, co=2, l=4, c=2, i=3),
         lambda p, s: ln.conv1d(p["X"], p["W"], p["b"]), {"X": conv1d_grad_x, "W": conv1d_grad_W}),
    Held("bmm", bmm_forward, "auto", dict(h=2, i=3, j=3, k=3), lambda p, s: ln.bmm(p["A"], p["B"]),
         {"A": bmm_grad_A, "B": bmm_grad_B}),
    Held("bmm transpose_b", bmm_forward, None, dict(h=2, i=3, j=3, k=3),
         lambda p, s: ln.bmm(p["A"], p["BT"], transpose_b=True), {"A": bmm_grad_A, "BT": bmm_grad_BT}),
]


def hand_and_derived(held, sizes, strides, seed):
    """The hand-written op's and the derived op's value and gradients on the same inputs,
    with the same random upstream gradient."""
    d = derive(held.body.contraction.spec, transposed=held.transposed)
    scalars = {k: v for k, v in strides.items() if k in d.statement.scalars}
    results = []
    for make in (lambda p: held.hand(p, scalars), lambda p: d(**p, **scalars)):
        params = dict(zip(d.inputs, parameters(d.declared.text, sizes, strides, seed, transposed=held.transposed)))
        out = make(params)
        upstream = np.random.default_rng(seed + 1).standard_normal(out.shape)
        ln.forward(out)
        ln.backward(out, grad=upstream)
        results.append([out.value.copy()] + [params[name].grad.copy() for name in d.inputs])
    return results


def agree(results):
    (hand, derived) = results
    return all(np.allclose(h, g, rtol=1e-12, atol=1e-12 * max(1.0, float(np.abs(h).max(initial=0))))
               for h, g in zip(hand, derived))


@settings(max_examples=8)
@pytest.mark.parametrize("held", HELD, ids=lambda h: h.name)
@given(data=st.data())
def test_every_declared_op_computes_the_gradients_its_declaration_derives(held, data):
    sizes = {name: data.draw(st.integers(1, top), label=name) for name, top in held.sizes.items()}
    strides = {"sh": data.draw(st.integers(1, 3), label="sh"), "sw": data.draw(st.integers(1, 3), label="sw")}
    assert agree(hand_and_derived(held, sizes, strides, data.draw(st.integers(0, 2**16), label="seed")))


def test_a_hand_written_backward_that_disagrees_with_its_declaration_is_caught(monkeypatch):
    def forgets_the_last_term(n, d, W, dY, dX):
        acc = 0.0
        for m in range(W.shape[1] - 1):
            acc += dY[n, m] * W[d, m]
        dX[n, d] += acc

    held = HELD[1]
    sizes = dict(n=2, m=3, d=2)
    assert agree(hand_and_derived(held, sizes, {}, 0))
    monkeypatch.setattr(affine_module, "affine_grad_x", forgets_the_last_term)
    assert not agree(hand_and_derived(held, sizes, {}, 0))


def canonical(declared, names, derivation):
    """A backward declaration with its transposed copies read as their originals (XT[d,n]
    is X[n,d]) and its grid indices renamed to `names`: (grad, {factors}, {summed})."""
    known = set(derivation.inputs) | {"d" + n for n in derivation.inputs} | {derivation.upstream}

    def original(name, index):
        if name.endswith("T") and name[:-1] in known:
            return Access(name[:-1], index[:-2] + (index[-1], index[-2]))
        return Access(name, index)

    c = declared.contraction
    grad = original(c.out, tuple((("+", n),) for n in c.out_index))
    rename = {e[0][1]: new for e, new in zip(grad.index, names)}

    def renamed(access):
        return Access(access.name, tuple(tuple((op, rename.get(n, n) if op in "+-" else n) for op, n in e)
                                         for e in access.index))

    factors = {renamed(original(c.a, c.a_index)), renamed(original(c.b, c.b_index))}
    return renamed(grad), factors, set(c.summed)


@pytest.mark.parametrize("held", HELD, ids=lambda h: h.name)
def test_every_hand_written_backward_declaration_is_the_derived_gather_loop(held):
    d = derive(held.body.contraction.spec, transposed=held.transposed)
    for name, body in held.backward.items():
        gradient = d.gradients[name]
        names = [e[0][1] for e in gradient.grad.index]
        assert canonical(body, names, d) == (gradient.grad, {gradient.upstream, gradient.other}, set(gradient.summed)), \
            f"{held.name}: {body.__name__} declares {body.contraction.spec!r}, derived {gradient.text()!r}"


def test_the_declaration_check_can_fail():
    wrong = parse_declaration("dX[n,d] += sum_m dY[n,m] * W[m,d]")
    body = type("Body", (), {"contraction": wrong})
    d = derive("Y[n,m] = sum_d X[n,d] * W[d,m]")
    gradient = d.gradients["X"]
    assert canonical(body, ["n", "d"], d) != (gradient.grad, {gradient.upstream, gradient.other}, set(gradient.summed))


# -- the command ------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(main, ["derive", *args])


def test_cli_derive_prints_the_slide_and_gather_forms():
    result = run(DECK_003)
    assert result.exit_code == 0, result.output
    assert "slide:   for h,i,j,k:  A.grad[h,i,k] += U.grad[h,i,j] * B.value[h,j,k]" in result.output
    assert "gather:  for h,i,k:  dA[h,i,k] += sum_j dU[h,i,j] * B[h,j,k]" in result.output


def test_cli_derive_source_prints_the_generated_bodies_that_run():
    result = run("Y[n,m] = b[m] + sum_d X[n,d] * WT[m,d]", "--source")
    assert result.exit_code == 0, result.output
    source = result.output.split("ln.derive(...).op.source):\n\n", 1)[1]
    namespace = {}
    exec(compile(source, "<printed>", "exec"), namespace)
    assert set(namespace) >= {"forward", "grad_b", "grad_X", "grad_W"}


def test_cli_derive_copies_options():
    assert "dWT[m,d]" in run("Y[n,m] = sum_d X[n,d] * WT[m,d]", "--as-written").output
    assert "back to W:" not in run("Y[n,m] = sum_d X[n,d] * WT[m,d]", "--as-written").output
    assert "back to V:" in run("Y[n,m] = sum_d X[n,d] * Q[m,d]", "--transposed", "Q=V").output


@pytest.mark.parametrize("args, message", [
    (["Y[i] = A[i,j] * x[j]"], "j appears only on the right"),
    (["Y[h] = sum_i X[h-i] * W[i]", "--source"], "do not give the range of h"),
    (["Y[n,m] = sum_d X[n,d] * WT[m,d]", "--as-written", "--transposed", "WT=W"], "give one of them"),
    (["Y[n,m] = sum_d X[n,d] * WT[m,d]", "--transposed", "Z=W"], "'Z' is not an input"),
])
def test_cli_derive_errors_are_one_line(args, message):
    # (a --transposed value that is no COPY=ORIGINAL pair is a usage error: the test below)
    result = run(*args)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output and result.output.startswith("error: ")
    assert result.output.count("\n") == 1


@pytest.mark.parametrize("value", ["WT", "=W", "WT=", " = "])
def test_a_transposed_value_that_is_no_pair_is_a_usage_error(value):
    result = run("Y[n,m] = sum_d X[n,d] * WT[m,d]", "--transposed", "AT=A", "--transposed", value)
    assert result.exit_code == 2 and f"takes COPY=ORIGINAL, such as WT=W; got {value!r}" in result.output
