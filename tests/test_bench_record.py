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

    monkeypatch.setattr(bench, "run", lambda quick, threads, out, only: (ROWS, MACHINE, 5))  # the rows, not a timing
    saved = tmp_path / "run.json"
    first = CliRunner().invoke(main, ["bench", "--quick", "--json", str(saved)])
    assert first.exit_code == 0 and f"saved the CPU rows to {saved}" in first.stderr
    assert bench_record.load(saved)["rows"][1]["notes"] == "5.0 GFLOP/s, 50% of BLAS"
    again = CliRunner().invoke(main, ["bench", "--quick", "--compare", str(saved)])
    assert again.exit_code == 0 and "against the run saved" in again.stdout
    assert again.stdout.count(" 1.00x") == len(ROWS)


def test_only_runs_the_groups_named_and_compares_just_those(tmp_path, monkeypatch):
    from loopnet.cli import tools
    from loopnet.tools import bench, bench_cuda

    assert tools.BENCH_GROUPS == bench.GROUPS
    asked, cuda = [], []
    monkeypatch.setattr(bench, "run", lambda quick, threads, out, only: (asked.append(only), (ROWS[2:], MACHINE, 5))[1])
    monkeypatch.setattr(bench_cuda, "cuda_rows", lambda out, repeats: cuda.append(repeats))
    saved = tmp_path / "run.json"
    bench_record.save(saved, bench_record.record(ROWS, MACHINE, quick=True, repeats=5))
    result = CliRunner().invoke(main, ["bench", "--quick", "--only", "epoch", "--compare", str(saved)])
    assert result.exit_code == 0 and asked == [["epoch"]] and cuda == []
    assert "(2 rows of the saved run were not run this time)" in result.stdout
    assert "only in the saved run" not in result.stdout and result.stdout.count(" 1.00x") == 2
    result = CliRunner().invoke(main, ["bench", "--only", "cuda"])  # no CPU rows at all
    assert result.exit_code == 0 and asked == [["epoch"]] and cuda == [21]
    result = CliRunner().invoke(main, ["bench", "--only", "steps", "--only", "matmul"])
    assert result.exit_code == 0 and asked[-1] == ["matmul", "steps"] and cuda == [21]  # in the bench's order
    assert CliRunner().invoke(main, ["bench"]).exit_code == 0 and asked[-1] == list(bench.GROUPS) and cuda == [21, 21]


@pytest.mark.parametrize("args, message", [
    (["--only", "mnist"], "'mnist' is not one of 'matmul', 'steps', 'epoch', 'conv2d', 'reductions', 'cuda'"),
    (["--only", "epoch", "--json", "run.json"], "--json saves a whole run"),
])
def test_a_bad_only_is_one_message_before_any_timing(tmp_path, monkeypatch, args, message):
    from loopnet.tools import bench

    monkeypatch.setattr(bench, "run", lambda **kwargs: pytest.fail("timed"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["bench", *args])
    assert result.exit_code in (1, 2) and message in result.output and not (tmp_path / "run.json").exists()


def test_every_group_runs_its_rows_only(monkeypatch):
    from loopnet.tools import bench

    ran = []
    for name in ("bench_matmul", "bench_steps", "bench_epoch", "bench_conv2d", "bench_reductions"):
        monkeypatch.setattr(bench, name, lambda *args, name=name: ran.append(name))
    rows, _, _ = bench.run(quick=True, threads=1, out=lambda line: None, only=("reductions", "matmul"))
    assert ran == ["bench_matmul", "bench_reductions"] and rows == []
