"""The benchmark record: `bench --json` and `--compare`, and the README's speed table made
from the saved baseline. No test here times anything: the rows are given."""

import json
import os

import pytest
from click.testing import CliRunner

from loopnet.cli import main
from loopnet.tools import bench_record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = [("matmul 256 float32", "numpy (BLAS)", 0.002, 1.0, "10.0 GFLOP/s"),
        ("matmul 256 float32", "loopnet numba", 0.004, 0.5, "5.0 GFLOP/s, 50% of BLAS"),
        ("digits MLP epoch", "numpy", 0.010, 1.0, "44 steps"),
        ("digits MLP epoch", "loopnet numba", 0.020, 0.5, "")]
MACHINE = {"cores": 2, "cpu": "a CPU", "python": "3.11", "numpy": "2", "numba": "0.6", "torch": None,
           "loopnet": "0.1.0", "platform": "Linux", "threads": 2}


def test_a_record_round_trips_with_its_machine(tmp_path):
    saved = bench_record.record(ROWS, MACHINE, quick=True, repeats=5)
    bench_record.save(tmp_path / "run.json", saved)
    loaded = bench_record.load(tmp_path / "run.json")
    assert loaded == json.loads(json.dumps(saved)) and loaded["machine"]["cpu"] == "a CPU"
    assert [r["vs_ref"] for r in loaded["rows"]] == [None, 0.5, None, 0.5]  # a reference has no ratio
    assert set(bench_record.machine(2, None)) == set(MACHINE)


def test_compare_prints_now_over_then_and_flags_a_slowdown():
    saved = bench_record.record(ROWS, MACHINE, quick=True, repeats=5)
    saved["rows"] = saved["rows"][:3] + [{"benchmark": "gone", "contender": "x", "median_s": 1.0}]
    now = [ROWS[0], (ROWS[1][0], ROWS[1][1], 0.006, 0.33, ""), ROWS[2], ROWS[3]]
    lines = []
    bench_record.compare(now, saved, out=lines.append)
    assert "on a CPU (2 cores)" in lines[0]
    assert lines[1].endswith("1.00x") and lines[2].endswith("1.50x  slower")
    assert lines[4].endswith("(not in the saved run)") and lines[5].endswith("(only in the saved run)")


@pytest.mark.parametrize("content, reason", [
    (None, "cannot read"),
    ("{not json", "not JSON"),
    ('{"rows": [{"benchmark": "x"}]}', "needs rows of benchmark, contender and median_s"),
    ("[1, 2]", "is not a benchmark record"),
])
def test_a_file_that_is_no_record_is_one_line_before_any_timing(tmp_path, content, reason):
    path = tmp_path / "saved.json"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(main, ["bench", "--compare", str(path)])
    assert result.exit_code == 1 and reason in result.output and result.output.count("\n") == 1


def test_json_to_a_directory_that_is_missing_fails_before_any_timing(tmp_path):
    result = CliRunner().invoke(main, ["bench", "--json", str(tmp_path / "missing" / "run.json")])
    assert result.exit_code == 1 and "cannot write" in result.output


def test_the_readme_speed_table_is_the_saved_baseline():
    baseline = bench_record.load(os.path.join(ROOT, "benchmarks", "baseline.json"))
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert bench_record.readme_table(baseline) in readme, \
        "regenerate it: python benchmarks/readme_speed.py (after python cli.py bench --json benchmarks/baseline.json)"
    assert {row["contender"] for row in baseline["rows"]} >= {"loopnet numba", "numpy", "numpy (BLAS)"}


def test_bench_json_then_compare_end_to_end(tmp_path, monkeypatch):
    from loopnet.tools import bench

    monkeypatch.setattr(bench, "run", lambda quick, threads, out: (ROWS, MACHINE, 5))  # the rows, not a timing
    saved = tmp_path / "run.json"
    first = CliRunner().invoke(main, ["bench", "--quick", "--json", str(saved)])
    assert first.exit_code == 0 and f"saved the CPU rows to {saved}" in first.stderr
    assert bench_record.load(saved)["rows"][1]["notes"] == "5.0 GFLOP/s, 50% of BLAS"
    again = CliRunner().invoke(main, ["bench", "--quick", "--compare", str(saved)])
    assert again.exit_code == 0 and "against the run saved" in again.stdout
    assert again.stdout.count(" 1.00x") == len(ROWS)
