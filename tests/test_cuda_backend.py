"""The cuda backend: the same loop bodies as GPU threads, arrays resident on the device.

CI has no GPU: these run on Numba's CUDA simulator (conftest sets NUMBA_ENABLE_CUDASIM=1),
on small shapes, since each simulated thread costs about 0.3 ms. On a GPU machine run the
suite with NUMBA_ENABLE_CUDASIM=0 to test the real thing.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings

import loopnet as ln
from loopnet import data, models, optim, training
from loopnet.backends import cuda_backend, drivers
from loopnet.errors import BackendError
from loopnet.targets import TARGETS, build_target
from loopnet.testing.backends import assert_backends_agree
from loopnet.testing.samples import SAMPLES
from tests.test_schedule import SCHEDULED, arrays_for, depth

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMULATED = drivers.cuda_simulated()


@pytest.mark.parametrize("dtype,examples", [("float64", 3), ("float32", 2)])
@pytest.mark.parametrize("name", sorted(ln.OPS))
def test_cuda_equals_python_for_every_op(name, dtype, examples):
    @settings(max_examples=min(settings.default.max_examples, examples))
    @given(SAMPLES[name](np.dtype(dtype)))
    def check(node):
        assert_backends_agree(node, "cuda")

    check()


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_built_in_target_agrees_on_cuda(target):
    assert_backends_agree(build_target(target), "cuda")


class Transfers:
    """Counts host->device uploads and device->host copies."""

    def __init__(self, monkeypatch):
        self.up = self.down = 0
        real_to_device = cuda_backend.cuda.to_device
        array_class = type(cuda_backend.cuda.device_array(1))
        real_copy = array_class.copy_to_host

        def to_device(*args, **kwargs):
            self.up += 1
            return real_to_device(*args, **kwargs)

        def copy_to_host(array, *args, **kwargs):
            self.down += 1
            return real_copy(array, *args, **kwargs)

        monkeypatch.setattr(cuda_backend.cuda, "to_device", to_device)
        monkeypatch.setattr(array_class, "copy_to_host", copy_to_host)


def test_arrays_stay_on_the_device_for_a_whole_training_step(monkeypatch):
    digits = data.load("digits", seed=0)
    net = models.build("mlp", digits.input_shape, digits.classes, width=4, seed=0)
    with ln.use("cuda"):
        opt = optim.make_optimizer("momentum", net.params, 0.1, clip=5.0)
        net.set_batch(digits.train.x[:3], digits.train.y[:3])
        ln.forward(net.loss)  # the first step uploads the parameters once
        ln.backward(net.loss)
        opt.step()
        counter = Transfers(monkeypatch)
        for start in (3, 6):
            net.set_batch(digits.train.x[start:start + 3], digits.train.y[start:start + 3])
            ln.forward(net.loss)
            ln.backward(net.loss)
            opt.step()
        # per step: the minibatch's images and labels go up; two numbers come back, the loss
        # (forward returns it) and the gradient norm (clipping decides on the host); no
        # value, grad or optimizer buffer makes a round trip
        assert counter.up == 2 * 2
        assert counter.down == 2 * 2
        loss = float(net.loss.value)  # reading a value is a copy the user asks for
        assert counter.down == 2 * 2 + 1 and np.isfinite(loss)


def test_a_training_step_is_13_launches(monkeypatch):
    # Each launch costs microseconds of Python and driver time on a GPU, so their number
    # is held down like the transfers: 11 op loops, one fill zeroing every grad and seeding
    # the loss's, one SGD update of all four parameters. No transposed copy: on cuda,
    # loops.transposed is a view (it was 6 launches more); the seed is no launch of its own
    # (one more); the parameters' updates are one loop_group (three more).
    from loopnet.tools.bench import mlp_graph

    x, labels, params, loss = mlp_graph((5, 4, 3), 2, np.float32, np.random.default_rng(0))
    with ln.use("cuda"):
        opt = optim.make_optimizer("sgd", params, 0.1)
        for _ in range(2):
            launches = []
            real_loop, real_group = cuda_backend.loop, cuda_backend.loop_group
            monkeypatch.setattr(cuda_backend, "loop", lambda body, grid, args: (launches.append(body.__name__),
                                                                                real_loop(body, grid, args)))
            monkeypatch.setattr(cuda_backend, "loop_group", lambda body, group: (
                launches.append(f"{body.__name__} x{len(group)}"), real_group(body, group)))
            ln.forward(loss)
            ln.backward(loss)
            opt.step()
            monkeypatch.setattr(cuda_backend, "loop", real_loop)
            monkeypatch.setattr(cuda_backend, "loop_group", real_group)
            assert launches == ["affine_forward", "relu_forward", "affine_forward", "softmax_cross_entropy_forward",
                                "fill_body", "softmax_cross_entropy_grad_logits", "affine_grad_x",
                                "affine_grad_W", "affine_grad_b", "relu_grad_x", "affine_grad_W", "affine_grad_b",
                                "sgd_step x4"], launches


@pytest.mark.parametrize("sizes", [(5, 0, 37, 1), (16,), (0, 0), tuple(range(1, 27))])  # 26: three launches
def test_a_group_of_loops_in_one_launch_equals_each_loop_alone(sizes):
    # loop_group runs the loops back to back on one grid: the block edges (16 threads on
    # the simulator) fall inside loops, and an empty loop takes no point of the grid
    from loopnet.backends import python_backend

    cuda_backend.check_available()
    rng = np.random.default_rng(len(sizes))
    host = [(rng.standard_normal(n), rng.standard_normal(n), 0.1 * (k + 1), 0.01 * k) for k, n in enumerate(sizes)]
    want = [(w.copy(), g.copy(), lr, decay) for w, g, lr, decay in host]
    for w, g, lr, decay in want:
        python_backend.loop(optim.sgd_step, (w.size,), (w, g, lr, decay))
    device = [(cuda_backend.adopt(w), cuda_backend.adopt(g), lr, decay) for w, g, lr, decay in host]
    cuda_backend.loop_group(optim.sgd_step, [(w.size, (w, g, lr, decay)) for w, g, lr, decay in device])
    for (w, g, *_), (want_w, want_g, *_) in zip(device, want):
        np.testing.assert_array_equal(cuda_backend.to_host(w), want_w)
        np.testing.assert_array_equal(cuda_backend.to_host(g), want_g)  # read, not written


def test_clipping_scales_every_grad_in_one_launch_and_equals_numba(monkeypatch):
    results, groups = {}, []
    real_group = cuda_backend.loop_group
    monkeypatch.setattr(cuda_backend, "loop_group", lambda body, group: (groups.append((body.__name__, len(group))),
                                                                         real_group(body, group)))
    for backend in ("numba", "cuda"):
        net = models.build("mlp", (8, 8), 10, width=4, seed=2)
        x, y = np.random.default_rng(0).random((3, 64)), np.array([1, 2, 3])
        with ln.use(backend):
            opt = optim.make_optimizer("sgd", net.params, 0.5, clip=1e-3)  # far below the norm: clipping scales
            net.set_batch(x, y)
            ln.forward(net.loss)
            ln.backward(net.loss)
            opt.step()
        results[backend] = [p.value for p in net.params]
    assert groups == [("scale_step", 4), ("sgd_step", 4)]
    for a, b in zip(results["numba"], results["cuda"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_a_group_launch_holds_at_most_group_limit_loops(monkeypatch):
    # a kernel's arguments are limited in size (4 KB before CUDA 12.1, 32 KB after): an
    # optimizer over 240 parameters would not compile as one SGD kernel
    counts = []
    real = cuda_backend._load_driver
    monkeypatch.setattr(cuda_backend, "_load_driver", lambda body, rank, group=None: (counts.append(group),
                                                                                      real(body, rank, group))[1])
    monkeypatch.setattr(cuda_backend, "_drivers", {})
    cuda_backend.check_available()
    arrays = [(cuda_backend.adopt(np.ones(2)), cuda_backend.adopt(np.ones(2))) for _ in range(26)]
    cuda_backend.loop_group(optim.sgd_step, [(2, (w, g, 0.5, 0.0)) for w, g in arrays])
    assert counts == [cuda_backend.GROUP_LIMIT, 2] and cuda_backend.GROUP_LIMIT == 12
    assert all(cuda_backend.to_host(w).tolist() == [0.5, 0.5] for w, _ in arrays)


def test_training_on_cuda_matches_numba():
    digits = data.load("digits", seed=0)
    small = data.Dataset("digits", data.Split(digits.train.x[:12], digits.train.y[:12]),
                         data.Split(digits.val.x[:4], digits.val.y[:4]), data.Split(digits.test.x[:4], digits.test.y[:4]),
                         10, (8, 8))
    config = training.TrainConfig(epochs=2, lr=0.05, optimizer="adam", batch_size=6, lr_patience=0)
    results = {}
    for backend in ("numba", "cuda"):
        net = models.build("mlp", small.input_shape, small.classes, width=4, seed=1)
        with ln.use(backend):
            training.train(net, small, config)
        results[backend] = [p.value for p in net.params]
    for a, b in zip(results["numba"], results["cuda"]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_values_read_outside_the_loops_are_numpy():
    with ln.use("cuda"):
        x = ln.Parameter([1.0, -2.0])
        y = ln.relu(x)
        ln.forward(y)
        ln.backward(y)
        assert isinstance(y.value, np.ndarray) and isinstance(x.grad, np.ndarray)
        assert y.value.tolist() == [1.0, 0.0] and x.grad.tolist() == [1.0, 0.0]


def test_cli_trace_on_cuda():
    from click.testing import CliRunner

    from loopnet.cli import main

    result = CliRunner().invoke(main, ["trace", "xor", "--backend", "cuda", "--format", "json"])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # the note goes to stderr: stdout is still one JSON object
    assert "note: cuda is running on Numba's CPU simulator" in result.stderr  # before a wait that shows nothing
    assert "simulator" not in CliRunner().invoke(main, ["trace", "xor", "--backend", "numba"]).stderr


def test_without_a_gpu_or_the_simulator_selecting_cuda_says_how_to_enable_it():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    result = subprocess.run([sys.executable, "cli.py", "trace", "xor", "--backend", "cuda"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    if result.returncode == 0:
        pytest.skip("a real GPU is visible here: nothing to refuse")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("error: no CUDA GPU is visible here; to run the cuda backend on Numba's CPU "
                                     "simulator, set NUMBA_ENABLE_CUDASIM=1 (slow: small shapes only)")


def test_missing_numba_cuda_is_an_explicit_error(monkeypatch):
    import builtins

    import loopnet.backends as backends

    real_import = builtins.__import__

    def no_cuda(name, *args, **kwargs):
        if name == "numba" and args and args[2] and "cuda" in args[2]:
            raise ImportError("No module named 'numba.cuda'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cuda)
    monkeypatch.setattr(backends, "_loaded", {})
    with pytest.raises(BackendError, match=r"pip install 'loopnet\[cuda\]'"):
        ln.use("cuda")


def test_every_kernel_compiles_to_real_ptx(ptx_check):
    code, output = ptx_check  # `python -m loopnet.tools.ptx`, started after collection (conftest.py)
    if code == 2:
        pytest.skip(f"no CUDA compiler toolchain here: {(output.strip().splitlines() or ['(no output)'])[-1]}")
    assert code == 0, output[-6000:]
    assert "every kernel compiles to PTX" in output
    assert output.count("\nok ") + output.startswith("ok ") > 100


def test_explain_works_on_a_graph_that_ran_on_cuda():
    loss = build_target("least-squares")
    with ln.use("cuda"):
        ln.forward(loss)
        ln.backward(loss)
    w = next(n for n in ln.topological_order(loss) if n.name == "w")
    assert ln.explain(w).total == -2.0


def test_bench_cuda_rows_say_why_they_are_skipped_on_the_simulator():
    from loopnet.tools.bench_cuda import cuda_rows

    lines = []
    assert cuda_rows(out=lines.append) == [] and "simulator" in lines[0]


def test_digits_epoch_benchmark_trains_on_cuda_as_its_numpy_reference():
    from loopnet.tools.bench import DigitsEpoch

    epoch = DigitsEpoch(examples=8, batch=4, sizes=(3, 2, 2))
    epoch.loopnet("cuda")
    for p, expected, start in zip(epoch.params, epoch.numpy(), epoch.initial):
        assert not np.allclose(p.value, start)
        np.testing.assert_allclose(p.value, expected, rtol=1e-10, atol=1e-12)


def extents_for(spec, T):
    """A range for every index, so that rows, columns and the sum each cross a T x T tile
    with a ragged edge: by role where each role has one index (matmul, affine, bmm),
    else by name (conv2d; for the strided loops, strides (2, 3) and a 3x2 kernel: windows
    that overlap down dX's rows and skip some of its columns)."""
    roles = {"batch": spec.batch, "rows": spec.rows, "cols": spec.cols, "summed": spec.summed}
    if all(len(names) <= 1 for names in roles.values()):
        single = {"batch": 2, "rows": T + 2, "cols": T + 1, "summed": T + 3}
        return {names[0]: single[role] for role, names in roles.items() if names}
    conv = {"n": 2, "c": 3, "co": T + 1, "h": T // 4 + 2, "w": T // 4 + 2, "i": 3, "j": 2, "sh": 2, "sw": 3}
    if spec.scalars:
        conv.update(h=T // 4 + 4, w=T // 4 + 5)
    return {name: conv[name] for names in (*roles.values(), spec.scalars) for name in names}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("body", SCHEDULED, ids=lambda f: f.__name__)
def test_tiled_contraction_kernels_equal_their_bodies_across_tile_edges(body, dtype):
    from loopnet.backends import python_backend

    extents = extents_for(body.contraction, cuda_backend.tile())
    grid, args = arrays_for(body, extents, dtype, np.random.default_rng(0))
    want = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]  # (a stride is an int)
    python_backend.loop(body, grid, want)
    with ln.use("cuda"):
        assert "Declared schedule" in cuda_backend.driver_source(body, len(grid))
        device = [cuda_backend.adopt(a) if isinstance(a, np.ndarray) else a for a in args]
        cuda_backend.loop(body, grid, device)
    out = body.contraction.positions(body)["out"]
    tolerance = (1e-12 if dtype == np.float64 else 1e-5) * depth(body, extents) * max(1.0, float(np.abs(want[out]).max()))
    np.testing.assert_allclose(device[out].copy_to_host(), want[out], rtol=0, atol=tolerance)


PLAIN = [body for body in SCHEDULED if body.contraction.plain]


@pytest.mark.parametrize("across", ["a", "b", "ab"])
@pytest.mark.parametrize("body", PLAIN, ids=lambda f: f.__name__)
def test_tiled_contractions_read_transposed_views_in_place(body, across):
    # on cuda, loops.transposed is a view with its rows next to each other in memory; the
    # tiles then load it row-fast (a_across, b_across), and must still sum the same terms
    from loopnet.backends import python_backend

    extents = extents_for(body.contraction, cuda_backend.tile())
    grid, args = arrays_for(body, extents, np.float64, np.random.default_rng(1))
    want = [np.copy(a) for a in args]
    python_backend.loop(body, grid, want)
    roles = body.contraction.positions(body)
    with ln.use("cuda"):
        device = [cuda_backend.adopt(a) for a in args]
        for role in across:
            at = roles[role]
            device[at] = cuda_backend.transposed_view(cuda_backend.adopt(np.ascontiguousarray(args[at].T)))
            assert device[at].strides[0] < device[at].strides[1]  # (so the row-fast load runs)
        cuda_backend.loop(body, grid, device)
    out = roles["out"]
    np.testing.assert_allclose(device[out].copy_to_host(), want[out], rtol=0, atol=1e-12 * depth(body, extents))


def test_transposed_is_a_view_on_cuda_and_a_copy_made_by_a_loop_elsewhere():
    from loopnet.loops import transposed

    matrix = np.arange(6.0).reshape(2, 3)
    with ln.use("cuda"):
        device = cuda_backend.adopt(matrix)
        view = transposed(device)
        np.testing.assert_array_equal(view.copy_to_host(), matrix.T)
        cuda_backend.fill(device, 7.0)  # the same memory: no copy was made
        np.testing.assert_array_equal(view.copy_to_host(), np.full((3, 2), 7.0))
    for backend in ("python", "numba"):
        with ln.use(backend):
            copy = transposed(matrix)
        assert copy.flags.c_contiguous and not np.shares_memory(copy, matrix)
        np.testing.assert_array_equal(copy, matrix.T)


def test_a_transposed_view_on_a_gpu_shares_the_device_memory():
    # the GPU branch of transposed_view, run without the simulator; a DeviceNDArray given
    # its memory needs no GPU to be made (only to be read)
    script = """
import numba, numpy as np
from numba.cuda.cudadrv.devicearray import DeviceNDArray
from loopnet.backends import cuda_backend
memory = object()
matrix = DeviceNDArray((3, 5), (40, 8), np.float64, gpu_data=memory)
view = cuda_backend.transposed_view(matrix)
assert view.shape == (5, 3) and view.strides == (8, 40) and view.gpu_data is memory, (view.shape, view.strides)
assert numba.typeof(view) == numba.typeof(np.zeros((3, 5)).T)  # the layout the PTX check compiles
print("ok")
"""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_the_ptx_check_compiles_the_layouts_cuda_launches():
    from loopnet.ops.affine import affine_forward
    from loopnet.tools import kernels

    import numba

    launched = kernels.launched_kernels(("float64",), signature=lambda grid, args: tuple(map(numba.typeof, args)),
                                        transposes_as_views=True)
    layouts = {types[1].layout for rank, types in launched[affine_forward]}  # WT, W's transpose
    assert "F" in layouts, layouts
    assert "F" not in {t.layout for rank, types in kernels.launched_kernels(("float64",))[affine_forward]
                       for t in types if isinstance(t, numba.types.Array)}  # (numba's own copies)


def test_a_backward_zeroes_the_grads_and_seeds_its_root_in_one_launch(monkeypatch):
    x = ln.Parameter(np.arange(3.0), name="x")
    loss = ln.sum(ln.square(x))
    with ln.use("cuda"):
        ln.forward(loss)
        names = []
        real_loop = cuda_backend.loop
        monkeypatch.setattr(cuda_backend, "loop", lambda body, grid, args: (names.append(body.__name__),
                                                                            real_loop(body, grid, args)))
        for _ in range(2):  # the second finds the first's grads: zeroed again, not added to
            ln.backward(loss)
            np.testing.assert_array_equal(x.grad, 2 * np.arange(3.0))
            assert float(loss.grad) == 1.0
        assert names == ["fill_body", "sum_grad_x", "square_grad_x"] * 2, names
        ln.backward(loss, grad=np.array(3.0))  # an upstream gradient given: no seed of ones
        np.testing.assert_array_equal(x.grad, 6 * np.arange(3.0))
