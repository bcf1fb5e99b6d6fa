"""How long a student waits for `python cli.py trace TARGET`, warm and cold.

    python benchmarks/trace_startup.py [--runs 7] [--target xor-backprop]

Each figure is the median wall time of whole processes. The reference, measured in the
same run, is `python -c "import numpy"`: the least any NumPy program costs to start.

- python, warm: the default, the README's main command.
- numba, warm: `--backend numba` with every kernel in the on-disk cache.
- numba, cold: the first run with an empty kernel cache (a fresh LOOPNET_CACHE_DIR each
  run), which compiles every kernel the trace uses.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wall(args, env):
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def median_wall(args, runs, env=None, fresh_cache=False):
    times = []
    for _ in range(runs):
        run_env = dict(env or os.environ)
        if fresh_cache:
            run_env["LOOPNET_CACHE_DIR"] = tempfile.mkdtemp(prefix="loopnet-cold-")
        times.append(wall(args, run_env))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--target", default="xor-backprop")
    options = parser.parse_args()
    trace = ["cli.py", "trace", options.target]
    wall(trace + ["--backend", "numba"], dict(os.environ))  # fill the cache for the warm rows
    rows = [
        ("python -c 'import numpy' (reference)", median_wall(["-c", "import numpy"], options.runs)),
        (f"trace {options.target}, python, warm", median_wall(trace, options.runs)),
        (f"trace {options.target}, numba, warm", median_wall(trace + ["--backend", "numba"], options.runs)),
        (f"trace {options.target}, numba, cold cache", median_wall(trace + ["--backend", "numba"], max(1, options.runs // 3),
                                                               fresh_cache=True)),
    ]
    reference = rows[0][1]
    print(f"medians of whole processes ({options.runs} runs; the cold row {max(1, options.runs // 3)})")
    for name, seconds in rows:
        print(f"{name:<44} {seconds:7.3f} s   {seconds / reference:5.1f}x the reference")


if __name__ == "__main__":
    main()
