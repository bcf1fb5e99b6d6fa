"""Print the README's speed table from a saved benchmark run.

    python cli.py bench --json benchmarks/baseline.json     # a quiet machine, a few minutes
    python benchmarks/readme_speed.py [benchmarks/baseline.json]

Paste the output over the table in the README's "Speed (CPU)" section; a test
(tests/test_bench_record.py) checks that the README holds exactly this table.
"""

import os
import sys

from loopnet.tools.bench_record import load, readme_table

if __name__ == "__main__":
    print(readme_table(load(sys.argv[1] if len(sys.argv) > 1 else
                            os.path.join(os.path.dirname(os.path.abspath(__file__)), "baseline.json"))))
