"""Benchmarks on the CPU: loopnet's Numba loops against NumPy and PyTorch, measured in
the same run. (The GPU rows are in loopnet.tools.bench_cuda; `cli.py bench` prints both.)

Every figure is a median over repeated runs, printed with the ratio to a reference
timed in the same process with the same thread count. Run `python cli.py bench` or
`python benchmarks/cpu_vs_numpy_torch.py`; PyTorch rows appear when torch is installed
(`pip install torch==2.13.0`). Also the pieces the GPU rows reuse: `median_time`, the
MLP graph and its NumPy and PyTorch twins, the digits epoch.
"""

import os
import statistics
import time

import numpy as np

import loopnet as ln
from loopnet.replay import Replay


IDLE_SECONDS = 0.2  # before each timing: the previous contender's worker threads go idle


def median_time(run, repeats, warmup=2):
    # OpenBLAS (NumPy's matmul) and OpenMP (torch) keep their threads spinning for a while
    # after a call, and on 2 cores they took them from the next contender: loopnet's matmul
    # 512 measured 17-43 GFLOP/s right after NumPy's, 113-116 alone or after a pause.
    time.sleep(IDLE_SECONDS)
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_torch(threads):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def add_row(rows, name, contender, seconds, reference_seconds, extra=""):
    rows.append((name, contender, seconds, reference_seconds / seconds if reference_seconds else None, extra))


def bench_matmul(rows, torch, sizes, repeats):
    for dtype in (np.float32, np.float64):
        for n in sizes:
            rng = np.random.default_rng(0)
            a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
            A, B = ln.Input(a), ln.Input(b)
            C = ln.matmul(A, B)
            name = f"matmul {n} {np.dtype(dtype).name}"
            flops = 2 * n**3
            reps = max(3, repeats // max(1, n // 256) ** 2)  # fewer repeats for the slow large sizes
            t_np = median_time(lambda: a @ b, reps)
            t_ln = median_time(lambda: ln.forward(C), reps)
            add_row(rows, name, "numpy (BLAS)", t_np, t_np, f"{flops / t_np / 1e9:.1f} GFLOP/s")
            add_row(rows, name, "loopnet numba", t_ln, t_np, f"{flops / t_ln / 1e9:.1f} GFLOP/s, {100 * t_np / t_ln:.0f}% of BLAS")
            if torch is not None:
                ta, tb = torch.from_numpy(a), torch.from_numpy(b)
                t_t = median_time(lambda: ta @ tb, reps)
                add_row(rows, name, "torch", t_t, t_np, f"{flops / t_t / 1e9:.1f} GFLOP/s")


def numpy_cross_entropy(z, labels):
    top = z.max(axis=1, keepdims=True)
    logsumexp = top[:, 0] + np.log(np.exp(z - top).sum(axis=1, dtype=np.float64))
    return (logsumexp - z[np.arange(len(z)), labels]).mean()


def bench_reductions(rows, torch, repeats):
    """Sums to one number (declared reductions, loopnet.reduction): a plain sum and a mean
    loss over many rows, forward only, against NumPy's (and torch's) own."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(10**7)
    z, labels = rng.standard_normal((10**5, 10)).astype(np.float32), rng.integers(0, 10, 10**5)
    with ln.use("numba"):
        total = ln.sum(ln.Input(x))
        loss = ln.softmax_cross_entropy(ln.Input(z), ln.Input(labels))
        cases = [("sum of 10^7 f64", total, lambda: x.sum(), lambda t: t.sum(), (x,)),
                 ("softmax CE fwd 10^5x10 f32", loss, lambda: numpy_cross_entropy(z, labels),
                  lambda tz, tl: torch.nn.functional.cross_entropy(tz, tl), (z, labels))]
        for name, node, numpy_run, torch_run, arrays in cases:
            t_np = median_time(numpy_run, repeats)
            add_row(rows, name, "numpy", t_np, t_np)
            add_row(rows, name, "loopnet numba", median_time(lambda: ln.forward(node), repeats), t_np)
            if torch is not None:
                tensors = [torch.from_numpy(a) for a in arrays]
                add_row(rows, name, "torch", median_time(lambda: torch_run(*tensors), repeats), t_np)


def mlp_graph(sizes, batch, dtype, rng):
    """(x, labels, params, loss) of an MLP with layer sizes `sizes`: affine layers with
    ReLU between them, softmax cross-entropy on top, random data of `batch` rows."""
    x = ln.Input(rng.standard_normal((batch, sizes[0])).astype(dtype), name="x")
    labels = ln.Input(rng.integers(0, sizes[-1], batch), name="labels")
    params, h = [], x
    for i, (d, m) in enumerate(zip(sizes, sizes[1:])):
        W = ln.Parameter((rng.uniform(-1, 1, (d, m)) / np.sqrt(d)).astype(dtype), name=f"W{i}")
        b = ln.Parameter(np.zeros(m, dtype), name=f"b{i}")
        params += [W, b]
        h = ln.affine(h, W, b)
        if i < len(sizes) - 2:
            h = ln.relu(h)
    return x, labels, params, ln.softmax_cross_entropy(h, labels)


def numpy_mlp_step(x, y, params):
    """Forward + backward of the same MLP in NumPy (the reference)."""
    hs, h = [x], x
    layers = list(zip(params[::2], params[1::2]))
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
        hs.append(h)
    z = h - h.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    g = p
    g[np.arange(len(y)), y] -= 1
    g /= len(y)
    grads = []
    for i in reversed(range(len(layers))):
        W, _ = layers[i]
        grads += [hs[i].T @ g, g.sum(axis=0)]
        if i > 0:
            g = (g @ W.T) * (hs[i] > 0)
    return grads


def torch_mlp(torch, params, device="cpu"):
    tparams = [torch.tensor(p.value, requires_grad=True, device=device) for p in params]

    def step(x, y):
        h = x
        layers = list(zip(tparams[::2], tparams[1::2]))
        for i, (W, b) in enumerate(layers):
            h = torch.addmm(b, h, W)
            if i < len(layers) - 1:
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, y)
        for p in tparams:
            p.grad = None
        loss.backward()

    return tparams, step


def bench_step(rows, torch, name, sizes, batch, dtype, repeats, backends=("numba",)):
    rng = np.random.default_rng(0)
    x, labels, params, loss = mlp_graph(sizes, batch, dtype, rng)
    values = [p.value for p in params]
    t_np = median_time(lambda: numpy_mlp_step(x.value, labels.value, values), repeats)
    add_row(rows, name, "numpy", t_np, t_np)
    for backend in backends:
        with ln.use(backend):
            def step():
                ln.forward(loss)
                ln.backward(loss)
            t = median_time(step, repeats if backend != "python" else 3, warmup=1)
            add_row(rows, name, f"loopnet {backend}", t, t_np)
            if backend == "numba":  # the same launches, recorded once: how training runs a step
                t = median_time(Replay(loss), repeats, warmup=2)
                add_row(rows, name, "numba, replayed", t, t_np,
                        "the step's launches recorded once, as training runs them")
    if torch is not None:
        _, step = torch_mlp(torch, params)
        tx, ty = torch.from_numpy(np.array(x.value)), torch.from_numpy(np.array(labels.value))  # (writable copies)
        t_t = median_time(lambda: step(tx, ty), repeats)
        add_row(rows, name, "torch", t_t, t_np)


class DigitsEpoch:
    """One SGD epoch of the digits MLP (64 -> 64 ReLU -> 10), batch 32, on data of the
    digits set's shape (random here: the timing does not depend on the pixels).

    `loopnet(backend)` runs it as training does: each minibatch goes to the backend once,
    then forward, backward and the optimizer's loop kernels; `numpy()` is the same
    arithmetic in NumPy, the reference.
    """

    def __init__(self, examples=1437, batch=32, lr=0.1, sizes=(64, 64, 10), dtype=np.float64):
        from loopnet.optim import make_optimizer

        rng = np.random.default_rng(0)
        data = rng.uniform(0, 1, (examples, sizes[0])).astype(dtype)
        targets = rng.integers(0, sizes[-1], examples)
        self.x, self.labels, self.params, self.loss = mlp_graph(sizes, batch, dtype, rng)
        self.initial = [p.value.copy() for p in self.params]  # (on CPU backends .value is updated in place)
        self.batches = [(data[i:i + batch], targets[i:i + batch]) for i in range(0, examples - batch + 1, batch)]
        self.optimizer = make_optimizer("sgd", self.params, lr)
        self.lr = lr
        self.step = Replay(self.loss)

    def loopnet(self, backend, replay=True):
        with ln.use(backend):
            for xb, yb in self.batches:
                self.x.value, self.labels.value = xb, yb
                if replay:  # as loopnet.training does
                    self.step()
                else:
                    ln.forward(self.loss)
                    ln.backward(self.loss)
                self.optimizer.step()

    def numpy(self):
        values = [v.copy() for v in self.initial]
        for xb, yb in self.batches:
            for v, g in zip(values, reversed_pairs(numpy_mlp_step(xb, yb, values))):
                v -= self.lr * g
        return values


def bench_epoch(rows, torch, repeats):
    epoch = DigitsEpoch()
    t_np = median_time(epoch.numpy, repeats, warmup=1)
    add_row(rows, "digits MLP epoch", "numpy", t_np, t_np, f"{len(epoch.batches)} steps")
    t_ln = median_time(lambda: epoch.loopnet("numba"), repeats, warmup=1)
    add_row(rows, "digits MLP epoch", "loopnet numba", t_ln, t_np, "steps replayed, as training runs them")
    t_plain = median_time(lambda: epoch.loopnet("numba", replay=False), repeats, warmup=1)
    add_row(rows, "digits MLP epoch", "numba, no replay", t_plain, t_np, "every step through the graph")
    if torch is not None:
        tparams, step = torch_mlp(torch, epoch.params)
        tb = [(torch.from_numpy(xb), torch.from_numpy(yb)) for xb, yb in epoch.batches]

        def torch_epoch():
            for xb, yb in tb:
                step(xb, yb)
                with torch.no_grad():
                    for p in tparams:
                        p -= epoch.lr * p.grad

        t_t = median_time(torch_epoch, repeats, warmup=1)
        add_row(rows, "digits MLP epoch", "torch", t_t, t_np)


def interleaved_medians(runs, repeats, warmup=2):
    """The median time of each of `runs`, timed in turn within every repeat, so that a
    machine that speeds up or slows down during the run moves them all alike."""
    for run in runs:
        for _ in range(warmup):
            run()
    times = [[] for _ in runs]
    for _ in range(repeats):
        for run, spent in zip(runs, times):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def conv2d_steps(torch, stride, padding, x0, W0, b0):
    """(loopnet's step, PyTorch's step or None, outputs): conv2d forward and backward
    (all three gradients) on the same arrays."""
    x, W, b = ln.Parameter(x0, name="x"), ln.Parameter(W0, name="W"), ln.Parameter(b0, name="b")
    out = ln.conv2d(x, W, b, stride=stride, padding=padding)
    upstream = np.ones(out.shape, x0.dtype)

    def step():
        ln.forward(out)
        ln.backward(out, grad=upstream)

    if torch is None:
        return step, None, int(np.prod(out.shape))
    tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x0, W0, b0))
    tg = torch.from_numpy(upstream)

    def torch_step():
        for p in (tx, tW, tb):
            p.grad = None
        torch.nn.functional.conv2d(tx, tW, tb, stride=stride, padding=padding).backward(tg)

    return step, torch_step, int(np.prod(out.shape))


def bench_conv2d(rows, torch, repeats, batch=64, channels=(8, 16), side=28, k=3):
    """conv2d forward + backward, float32, at stride 1, padding 1, stride 2 and both, with
    PyTorch's CPU conv2d on the same arrays as each row's reference. The notes give
    loopnet's time per output element and its ratio to the stride-1 unpadded row's: what
    the padding node and the strided loops cost beyond the number of outputs (the
    issue's target for stride with padding: within 1.5x). The four settings are timed in
    turn within each repeat, so their ratios share the machine's state."""
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((batch, channels[0], side, side)).astype(np.float32)
    W0 = (rng.standard_normal((channels[1], channels[0], k, k)) / k).astype(np.float32)
    b0 = np.zeros(channels[1], np.float32)
    settings = ((1, 0), (1, 1), (2, 0), (2, 1))
    steps = [conv2d_steps(torch, stride, padding, x0, W0, b0) for stride, padding in settings]
    with ln.use("numba"):
        t_ln = interleaved_medians([step for step, _, _ in steps], repeats)
    t_t = interleaved_medians([step for _, step, _ in steps], repeats) if torch else [None] * len(steps)
    stride_1 = t_ln[0] / steps[0][2]
    for (stride, padding), (_, _, outputs), mine, theirs in zip(settings, steps, t_ln, t_t):
        name = f"conv2d fwd+bwd b{batch} {channels[0]}->{channels[1]} {side}x{side} s{stride} p{padding}"
        if theirs:
            add_row(rows, name, "torch", theirs, theirs, f"{theirs / outputs * 1e9:.1f} ns per output")
        add_row(rows, name, "loopnet numba", mine, theirs or mine,
                f"{mine / outputs * 1e9:.1f} ns per output, {mine / outputs / stride_1:.2f}x s1 p0's")


def reversed_pairs(grads):
    """numpy_mlp_step yields grads last layer first, (dW, db) each: back to param order."""
    pairs = [grads[i:i + 2] for i in range(0, len(grads), 2)]
    return [g for pair in reversed(pairs) for g in pair]


def print_rows(rows, out=print):
    for name, contender, seconds, ratio, extra in rows:
        ratio_text = f"{ratio:.2f}x" if ratio else "-"
        out(f"{name:<36} {contender:<15} {seconds * 1e3:>8.3f}ms {ratio_text:>8}  {extra}")


GROUPS = ("matmul", "steps", "epoch", "conv2d", "reductions")  # the CPU rows, in the order they run


def bench_steps(rows, torch, repeats):
    bench_step(rows, torch, "affine+CE fwd+bwd 64x784->500 f64", (784, 500), 64, np.float64, repeats)
    bench_step(rows, torch, "MNIST net step 784-500-10 b64 f32", (784, 500, 10), 64, np.float32, repeats)
    bench_step(rows, torch, "small MLP step 64-64-10 b32 f64", (64, 64, 10), 32, np.float64, repeats,
               backends=("numba", "python"))


def run(quick=False, threads=None, out=print, only=GROUPS):
    """The CPU rows of the groups in `only` (all by default), printed with a header;
    returns the rows, the machine and the repeats."""
    threads = threads or os.cpu_count()
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch = load_torch(threads)
    repeats = 5 if quick else 21
    rows = []
    groups = {
        "matmul": lambda: bench_matmul(rows, torch, (256, 512) if quick else (256, 512, 1024), repeats),
        "steps": lambda: bench_steps(rows, torch, repeats),
        "epoch": lambda: bench_epoch(rows, torch, 3 if quick else 11),
        "conv2d": lambda: bench_conv2d(rows, torch, repeats),
        "reductions": lambda: bench_reductions(rows, torch, repeats),
    }
    for name in GROUPS:
        if name in only:
            with ln.use("numba"):  # (each group names any other backend it times itself)
                groups[name]()
    out(f"loopnet {ln.__version__} CPU benchmarks: medians of {repeats} runs; threads: numba "
        f"{numba.get_num_threads()}, torch {torch.get_num_threads() if torch else '-'}, "
        f"BLAS default ({os.cpu_count()} cores); torch {'%s' % torch.__version__ if torch else 'not installed'}")
    out(f"{'benchmark':<36} {'contender':<15} {'median':>10} {'vs ref':>8}  notes")
    print_rows(rows, out)
    out("vs ref: reference time / contender time (>1 is faster than the reference, the first row of each group)")
    from loopnet.tools.bench_record import machine

    return rows, machine(numba.get_num_threads(), torch), repeats
