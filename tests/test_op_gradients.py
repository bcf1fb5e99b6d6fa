"""Every registered op's backward loops against central differences (Hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import loopnet as ln
from loopnet.testing import assert_gradcheck
from loopnet.testing.samples import SAMPLES
from loopnet.testing.strategies import arrays, graphs, shapes


def test_every_registered_op_has_a_gradcheck_sample():
    missing = sorted(set(ln.OPS) - set(SAMPLES))
    assert not missing, f"ops without a gradcheck sample in loopnet/testing/samples.py: {missing}"


def test_every_public_op_is_registered():
    # An op exported from loopnet but left out of OPS would escape the registry-wide tests.
    engine = {"forward", "backward", "use", "topological_order", "fresh_names", "set_dtype",
              "default_backend", "explain", "jacobian", "derive", "show"}  # derive makes ops, show draws them
    exported = {name for name in ln.__all__ if name.islower() and name not in engine}
    assert exported == set(ln.OPS)
    assert all(callable(getattr(ln, name)) for name in exported)


@pytest.mark.parametrize("name", sorted(ln.OPS))
def test_op_gradient_matches_finite_differences(name):
    @given(SAMPLES[name]())
    def check(node):
        # the sample really exercises this op (softmax along another axis ends in a permute)
        assert name in {n.op.name for n in ln.topological_order(node) if n.op is not None}
        assert_gradcheck(node)

    check()


@given(graphs())
def test_random_graphs_with_fan_out_gradcheck(graph):
    assert_gradcheck(graph.output)


_SMOOTH = (ln.tanh, ln.sigmoid, ln.square, ln.exp)


@given(st.lists(st.sampled_from(_SMOOTH), min_size=1, max_size=3),
       st.lists(st.sampled_from(_SMOOTH), min_size=1, max_size=3),
       arrays(shapes(1, 2), min_value=-1.0, max_value=1.0))
def test_fan_out_grads_are_the_sum_over_consumers(chain_u, chain_v, values):
    p = ln.Parameter(values, name="p")

    def branch(chain):
        node = p
        for op in chain:
            node = op(node)
        return ln.sum(node)

    u, v = branch(chain_u), branch(chain_v)
    both = ln.add(u, v)  # p feeds two consumers
    ln.forward(both)
    ln.backward(both)
    together = p.grad.copy()
    ln.backward(u)
    alone_u = p.grad.copy()
    ln.backward(v)
    alone_v = p.grad.copy()
    np.testing.assert_allclose(together, alone_u + alone_v, rtol=1e-12, atol=1e-12)
