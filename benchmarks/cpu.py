"""CPU benchmarks: `python benchmarks/cpu.py [--quick]` (the same as `python cli.py bench`)."""

import sys

from loopnet.bench import run

if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
