"""Benchmarks on a GPU: the cuda backend against torch on the same GPU and against the
numba backend on this machine's CPU. They need a real GPU: the simulator's timings mean
nothing, so without one `cuda_rows` prints why it skips them.

    python -c "from loopnet.tools.bench_cuda import cuda_rows; cuda_rows()"
    bash benchmarks/gpu_tests_and_bench.sh bench     # the same, logged
"""

import os

import numpy as np

import loopnet as ln
from loopnet.backends import drivers, get_backend
from loopnet.errors import BackendError
from loopnet.loops import loop, transposed
from loopnet.ops.matmul import matmul_forward
from loopnet.tools.bench import DigitsEpoch, add_row, load_torch, median_time, mlp_graph, print_rows, torch_mlp


def cuda_rows(out=print, repeats=21):
    """Time the cuda backend against torch on the same GPU; a note instead where no GPU."""
    if drivers.cuda_simulated():
        out("cuda rows skipped: NUMBA_ENABLE_CUDASIM=1 (the simulator's timings mean nothing)")
        return []
    try:
        backend = get_backend("cuda")
    except BackendError as err:
        out(f"cuda rows skipped: {err}")
        return []
    bench = _GpuBench(backend, repeats)
    rows = []
    with ln.use("cuda"):
        bench.launch(rows)
        bench.matmul(rows)
        bench.mnist_step(rows)
        bench.digits_epoch(rows)
    print_rows(rows, out)
    return rows


class _GpuBench:
    def __init__(self, backend, repeats):
        self.backend, self.cuda, self.repeats = backend, backend.cuda, repeats
        torch = load_torch(os.cpu_count())
        if torch is not None and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = False  # compare like with like: true float32
            self.torch = torch
        else:
            self.torch = None

    def timed(self, run):
        """Median time of run() followed by a device synchronisation."""
        def synced():
            run()
            self.cuda.synchronize()
        return median_time(synced, self.repeats)

    def launch(self, rows):
        tiny = self.backend.zeros((1,), np.float32)
        t_launch = self.timed(lambda: self.backend.fill(tiny, 1.0))
        add_row(rows, "launch + sync, 1 thread", "loopnet cuda", t_launch, t_launch)

    def matmul(self, rows):
        """matmul n x n against cuBLAS (through torch, TF32 off) in float32 and float64."""
        for dtype in (np.float32, np.float64):
            for n in (1024, 2048, 4096):
                rng = np.random.default_rng(0)
                a = self.backend.adopt(rng.standard_normal((n, n)).astype(dtype))
                b = self.backend.adopt(rng.standard_normal((n, n)).astype(dtype))
                c = self.backend.empty((n, n), dtype)
                flops, name = 2 * n**3, f"matmul {n} {np.dtype(dtype).name}"
                t_ln = self.timed(lambda: loop(matmul_forward, (n, n), a, transposed(b), c))
                reference = t_ln
                if self.torch is not None:
                    ta = self.torch.as_tensor(a.copy_to_host(), device="cuda")
                    tb = self.torch.as_tensor(b.copy_to_host(), device="cuda")
                    reference = self.timed(lambda: ta @ tb)
                    add_row(rows, name, "torch (cuBLAS)", reference, reference, f"{flops / reference / 1e12:.2f} TFLOP/s")
                add_row(rows, name, "loopnet cuda", t_ln, reference, f"{flops / t_ln / 1e12:.2f} TFLOP/s")

    def mnist_step(self, rows):
        """The MNIST network's forward + backward, against numba and torch on the GPU."""
        for batch in (64, 256):
            x, labels, params, loss = mlp_graph((784, 500, 10), batch, np.float32, np.random.default_rng(0))

            def step():
                ln.forward(loss)  # returns the loss: one number back, which also synchronises
                ln.backward(loss)

            t_gpu = median_time(step, self.repeats)
            with ln.use("numba"):
                t_cpu = median_time(step, self.repeats)
            name = f"MNIST net step b{batch} f32"
            add_row(rows, name, "loopnet numba", t_cpu, t_cpu)
            add_row(rows, name, "loopnet cuda", t_gpu, t_cpu)
            if self.torch is not None:
                _, torch_step = torch_mlp(self.torch, params, device="cuda")
                tx = self.torch.as_tensor(x.value, device="cuda")
                ty = self.torch.as_tensor(labels.value, device="cuda")
                add_row(rows, name, "torch cuda", self.timed(lambda: torch_step(tx, ty)), t_cpu)

    def digits_epoch(self, rows):
        """A digits-MLP training epoch (SGD loop kernels), numba against cuda."""
        epoch = DigitsEpoch()
        repeats = max(3, self.repeats // 4)
        t_cpu = median_time(lambda: epoch.loopnet("numba"), repeats, warmup=1)

        def gpu_epoch():
            epoch.loopnet("cuda")
            self.cuda.synchronize()  # the last update is still running when the loop returns

        t_gpu = median_time(gpu_epoch, repeats, warmup=1)
        name = f"digits MLP epoch ({len(epoch.batches)} steps)"
        add_row(rows, name, "loopnet numba", t_cpu, t_cpu)
        add_row(rows, name, "loopnet cuda", t_gpu, t_cpu)
