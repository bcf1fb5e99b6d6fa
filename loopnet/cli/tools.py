"""The tool commands: warmup (compile every kernel ahead) and bench (speed against NumPy
and PyTorch)."""

import sys

import click

from loopnet.cli.common import DTYPES


@click.command()
@click.option("--dtype", "dtypes", type=click.Choice(DTYPES), multiple=True,
              help="Compile for these dtypes (repeatable). Default: both.")
def warmup(dtypes):
    """Compile every op's and optimizer's Numba kernels ahead, into the on-disk cache.

    The first run of the numba backend compiles each kernel it meets (seconds each);
    later runs load them from the cache in well under a second. Run this once after
    installing (or after editing an op) so no later command waits. The cache lives in
    $LOOPNET_CACHE_DIR, else ~/.cache/loopnet.
    """
    import time

    import loopnet as ln
    from loopnet.backends import drivers
    from loopnet.tools import warmup as tool

    ln.use("numba")  # an explicit error if Numba is missing
    dtypes = dtypes or DTYPES
    started = time.perf_counter()
    with click.progressbar(length=tool.steps(), label="warming up kernels", file=sys.stderr,
                           item_show_func=lambda name: name) as bar:
        count = tool.warmup(dtypes, on_op=lambda name: bar.update(1, name))
    click.echo(f"{count} drivers ready for {', '.join(dtypes)} in {time.perf_counter() - started:.1f} s; "
               f"cache: {drivers.cache_dir('numba')}")


@click.command()
@click.option("--quick", is_flag=True, help="Fewer sizes and repeats (about a minute).")
@click.option("--threads", type=click.IntRange(1), default=None, help="Threads for every contender (default: all cores).")
def bench(quick, threads):
    """Time loopnet's Numba loops against NumPy and PyTorch CPU, in one run.

    Prints medians and ratios to a reference measured in the same process: matmul
    (GFLOP/s, % of NumPy's BLAS), an affine layer, the lectures' MNIST network step,
    a small MLP on Python vs Numba, and a digits-MLP epoch. PyTorch rows appear when
    torch is installed (pip install torch==2.13.0). With a GPU, CUDA rows follow: launch
    overhead, matmul 1024-4096 against cuBLAS (TF32 off), the MNIST step at batch 64
    and 256 against Numba; without one, a note says why they are skipped.
    """
    import loopnet as ln
    from loopnet.tools.bench import run
    from loopnet.tools.bench_cuda import cuda_rows

    ln.use("numba")
    run(quick=quick, threads=threads, out=click.echo)
    click.echo("")
    cuda_rows(out=click.echo, repeats=5 if quick else 21)
