"""The tool commands: warmup (compile every kernel ahead) and bench (speed against NumPy
and PyTorch)."""

import os
import sys

import click

from loopnet.cli.common import DTYPES, fail

# bench's groups of CPU rows, as loopnet.tools.bench.GROUPS (named here too so that
# `--help` does not import the benchmarks; a test keeps the two equal)
BENCH_GROUPS = ("matmul", "steps", "epoch", "conv2d", "reductions")


@click.command()
@click.option("--dtype", "dtypes", type=click.Choice(DTYPES), multiple=True,
              help="Compile for these dtypes (repeatable). Default: both.")
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Worker processes compiling at once. Default: one per core.")
def warmup(dtypes, jobs):
    """Compile every op's and optimizer's Numba kernels ahead, into the on-disk cache.

    The first run of the numba backend compiles each kernel it meets (a second or more
    each); later runs load them from the cache in well under a second. Run this once
    after installing (or after editing an op) so no later command waits. Worker
    processes compile in parallel, one per core unless --jobs says otherwise. The cache
    lives in $LOOPNET_CACHE_DIR, else ~/.cache/loopnet.
    """
    import time

    import loopnet as ln
    from loopnet.backends import drivers
    from loopnet.tools import warmup as tool

    ln.use("numba")  # an explicit error if Numba is missing
    from loopnet.backends import numba_backend

    if numba_backend.cache_in_use() is None:
        fail(f"warmup fills the kernel cache, and {drivers.cache_dir('numba')!r} cannot be used (said above); "
             f"set LOOPNET_CACHE_DIR to a writable directory")
    dtypes, jobs = dtypes or DTYPES, jobs or tool.default_jobs()
    started = time.perf_counter()
    click.echo("finding the kernels (running every op's samples on the python backend)...", err=True)
    units = tool.plan(dtypes)
    workers = f"{jobs} worker" + ("s" if jobs > 1 else "")

    def elapsed_and_last_done(name):  # the seconds tick on while a long unit compiles
        return f"{time.perf_counter() - started:.0f} s" + (f", {name} done" if name else "")

    with click.progressbar(length=len(units), label=f"compiling ({workers})", file=sys.stderr, show_pos=True,
                           show_eta=False, item_show_func=elapsed_and_last_done) as bar:
        compiled = tool.compile_in_workers(units, jobs, on_unit=lambda name: bar.update(1, name),
                                           on_wait=bar.render_progress)
    count, seconds = tool.count_drivers(units), time.perf_counter() - started
    if compiled == 0:
        done = f"nothing to compile: all {count} drivers for {', '.join(dtypes)} were already in the cache"
    else:
        done = f"compiled {compiled} kernel{'s' if compiled > 1 else ''}: {count} drivers ready for {', '.join(dtypes)}"
    click.echo(f"{done} ({seconds:.1f} s); cache: {drivers.cache_dir('numba')}")


@click.command()
@click.option("--quick", is_flag=True, help="Fewer sizes and repeats (about a minute).")
@click.option("--threads", type=click.IntRange(1), default=None, help="Threads for every contender (default: all cores).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also save the rows, with the machine (cores, CPU, versions), to this file.")
@click.option("--compare", "compare_path", type=click.Path(dir_okay=False), default=None,
              help="Print each row's time against a run saved with --json (benchmarks/baseline.json is main's).")
@click.option("--only", multiple=True, type=click.Choice(BENCH_GROUPS + ("cuda",)),
              help="Run only this group of rows (repeat for several; default: all). For a quick A/B of one "
                   "change; a run saved with --json holds every group.")
def bench(quick, threads, json_path, compare_path, only):
    """Time loopnet's Numba loops against NumPy and PyTorch CPU, in one run.

    Prints medians and ratios to a reference measured in the same process, by group
    (--only picks some): matmul (GFLOP/s, % of NumPy's BLAS); steps: an affine layer, a
    step of deck 000's network for 28x28 handwritten digits (784-500-10, MNIST's shape)
    and a small MLP (Python vs Numba), each through the graph and replayed as training
    runs it; epoch: a digits-MLP epoch; conv2d; reductions: sums to one number. PyTorch
    rows appear when torch is installed (pip install torch==2.13.0). cuda: with a GPU,
    launch overhead, matmul 1024-4096 against cuBLAS (TF32 off), the MNIST step at batch
    64 and 256 against Numba; without one, a note says why they are skipped.
    """
    import loopnet as ln
    from loopnet.tools import bench_record
    from loopnet.tools.bench import run
    from loopnet.tools.bench_cuda import cuda_rows

    saved = None
    if compare_path:
        try:
            saved = bench_record.load(compare_path)  # a bad file fails before minutes of timing
        except bench_record.RecordError as err:
            fail(str(err))
    if json_path and only:
        fail("--json saves a whole run, which later runs compare against: leave out --only")
    if json_path and not os.access(os.path.dirname(os.path.abspath(json_path)), os.W_OK):
        fail(f"cannot write {json_path!r}: its directory is missing or not writable")
    ln.use("numba")
    cpu = [group for group in BENCH_GROUPS if not only or group in only]
    rows, machine, repeats = run(quick=quick, threads=threads, out=click.echo, only=cpu) if cpu else ([], None, 0)
    if saved is not None:
        click.echo("")
        bench_record.compare(rows, saved, out=click.echo, partial=bool(only))
    if json_path:
        try:
            bench_record.save(json_path, bench_record.record(rows, machine, quick, repeats))
        except OSError as err:
            fail(f"cannot write {json_path!r}: {err.strerror or err}")
        click.echo(f"saved the CPU rows to {json_path}", err=True)
    if not only or "cuda" in only:
        click.echo("")
        cuda_rows(out=click.echo, repeats=5 if quick else 21)
