"""The CPU benchmarks: loopnet's Numba loops against NumPy and PyTorch CPU, in one run.

    python benchmarks/cpu_vs_numpy_torch.py [--quick]     (the CPU half of `python cli.py bench`)
"""

import sys

from loopnet.tools.bench import run

if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
