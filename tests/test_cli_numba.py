"""The CLI with the numba backend: default backend, --dtype, warmup, bench."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import loopnet as ln
from loopnet.tools import bench
from loopnet.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_default_backend_is_the_variable_else_the_commands_own(monkeypatch):
    monkeypatch.delenv("LOOPNET_BACKEND", raising=False)
    assert ln.default_backend() == "python" and ln.default_backend("numba") == "numba"
    monkeypatch.setenv("LOOPNET_BACKEND", "numba")
    assert ln.default_backend() == "numba" and ln.default_backend("python") == "numba"


def test_trace_on_numba_equals_python():
    py = json.loads(run("trace", "mlp", "--format", "json", "--backend", "python").stdout)["nodes"]
    nb = json.loads(run("trace", "mlp", "--format", "json", "--backend", "numba").stdout)["nodes"]
    assert [n["name"] for n in nb] == [n["name"] for n in py]
    for a, b in zip(nb, py):
        np.testing.assert_allclose(np.array(a["value"]), np.array(b["value"]), rtol=1e-12, atol=1e-14)
        if b["grad"] is not None:
            np.testing.assert_allclose(np.array(a["grad"]), np.array(b["grad"]), rtol=1e-12, atol=1e-14)


def test_trace_dtype_float32_runs_everything_in_float32():
    result = run("trace", "logistic", "--format", "json", "--dtype", "float32", "--backend", "numba")
    assert result.exit_code == 0, result.output
    loss = json.loads(result.stdout)["nodes"][-1]
    assert abs(loss["value"] - 0.6787298297135872) < 1e-6
    assert run("trace", "xor", "--dtype", "float16").exit_code == 2


def test_set_dtype_rejects_non_float_dtypes():
    import pytest

    with pytest.raises(ln.errors.DTypeError, match="float32 or float64"):
        ln.set_dtype(ln.sum(ln.Parameter([1.0])), "int32")


def test_bench_rows_name_contenders_and_ratios():
    rows = []
    bench.bench_matmul(rows, None, (16,), repeats=3)
    bench.bench_step(rows, None, "tiny step", (8, 4, 3), 5, np.float64, repeats=3, backends=("numba", "python"))
    contenders = [(name, who) for name, who, *_ in rows]
    assert ("matmul 16 float32", "numpy (BLAS)") in contenders and ("matmul 16 float64", "loopnet numba") in contenders
    assert ("tiny step", "loopnet python") in contenders and ("tiny step", "numba, replayed") in contenders
    for _, _, seconds, ratio, _ in rows:
        assert seconds > 0 and ratio > 0


def test_numpy_reference_step_matches_loopnet_gradients():
    # The benchmark's NumPy reference must compute what loopnet computes, or ratios lie.
    rng = np.random.default_rng(3)
    x, labels, params, loss = bench.mlp_graph((6, 5, 4), 7, np.float64, rng)
    ln.forward(loss)
    ln.backward(loss)
    reference = bench.reversed_pairs(bench.numpy_mlp_step(x.value, labels.value, [p.value for p in params]))
    for p, g in zip(params, reference):
        np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_digits_epoch_benchmark_trains_as_its_numpy_reference(backend):
    # The timed epoch must be a real epoch: the optimizer's updates land in the parameters.
    epoch = bench.DigitsEpoch(examples=12, batch=4, sizes=(6, 5, 4))
    epoch.loopnet(backend)
    assert len(epoch.batches) == 3
    for p, expected, start in zip(epoch.params, epoch.numpy(), epoch.initial):
        assert not np.allclose(p.value, start)
        np.testing.assert_allclose(p.value, expected, rtol=1e-10, atol=1e-12)


def test_bench_command_prints_the_table(monkeypatch):
    calls = {}
    def fake_run(quick, threads, out, only):  # the arguments, not a timing
        calls.update(quick=quick, threads=threads, only=only)
        return [], {}, 5

    monkeypatch.setattr(bench, "run", fake_run)
    assert run("bench", "--quick", "--threads", "1").exit_code == 0
    assert calls == {"quick": True, "threads": 1, "only": list(bench.GROUPS)}
