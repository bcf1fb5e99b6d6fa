"""The README's commands and examples, and the tutorials, actually work."""

import os
import re
import runpy

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md")).read()


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_set_up_commands_and_ci_runs_the_second():
    first, second = code_blocks("bash")[:2]
    assert first.strip().endswith("cli.py trace xor-backprop") and "python3 -m venv" in first
    assert "pytest" in second and "python3 -m venv" in second
    ci_script = open(os.path.join(ROOT, ".ci", "run")).read()
    assert second.strip() in ci_script.splitlines()


@pytest.mark.parametrize("index", range(len(code_blocks("python"))))
def test_readme_python_examples_run(index):
    namespace = {}
    exec(compile(code_blocks("python")[index], f"README block {index}", "exec"), namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()  # the "test your own op" example really passes


TUTORIALS = sorted(f for f in os.listdir(os.path.join(ROOT, "tutorials")) if f.endswith(".py"))


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_runs(name, capsys):
    runpy.run_path(os.path.join(ROOT, "tutorials", name), run_name="__main__")
    assert capsys.readouterr().out


def test_tutorials_are_linked_from_their_index():
    index = open(os.path.join(ROOT, "tutorials", "README.md")).read()
    for name in TUTORIALS:
        assert name in index


def pdb_session(args, commands):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "pdb", *args], input="\n".join(commands) + "\n",
                          capture_output=True, text=True, cwd=ROOT, timeout=120).stdout


def test_the_pdb_session_of_tutorial_5_stops_inside_the_backward_loop_with_no_flag():
    # exactly the commands tutorial 5 shows, on the README's first command: no --backend
    out = pdb_session(["cli.py", "trace", "xor-backprop"], [
        '!import numpy; numpy.set_printoptions(legacy="1.25")',
        "!import loopnet.ops.matmul",
        "b loopnet.ops.matmul.matmul_grad_B, k == 1",
        "c", "n", "n", "p i, AT[k, i], dCT[j, i]", "n", "n", "p i, AT[k, i], dCT[j, i]", "r", "p dB[k, j]", "cl 1", "c",
    ])
    assert "matmul.py" in out and "matmul_grad_B()" in out and "acc += AT[k, i] * dCT[j, i]" in out
    assert "(0, 0.0, 0.0)" in out and "(1, 1.0, -2.0)" in out  # examples 0 and 1: ReLU(a)[i,1], dL/dh[i]
    assert "\n(Pdb) -4.0\n" in out  # dL/dv[1], as the README works it by hand
    assert "Deleted breakpoint 1" in out and "12  loss" in out  # then the trace runs to its end
    tutorial = open(os.path.join(ROOT, "tutorials", "05_stepping_through_backprop.py")).read()
    assert "python -m pdb cli.py trace xor-backprop\n" in tutorial and "--backend" not in tutorial.split("(Pdb) c\n")[0]


def test_a_breakpoint_in_the_affine_backward_loop_stops_under_trace_mlp():
    out = pdb_session(["cli.py", "trace", "mlp"], [
        "!import loopnet.ops.affine", "b loopnet.ops.affine.affine_grad_W", "c", "p d, m", "q"])
    assert "affine.py" in out and "affine_grad_W()" in out and "\n(Pdb) (0, 0)\n" in out


def test_the_pdb_session_of_tutorial_20_stops_inside_a_generated_backward_loop():
    tutorial = open(os.path.join(ROOT, "tutorials", "20_deriving_backward_loops.py")).read()
    commands = [line.split("(Pdb) ", 1)[1] for line in tutorial.split('"""')[1].splitlines() if "(Pdb) " in line]
    line = int(commands[0].split()[1])
    assert "ln.backward(loss)" in tutorial.splitlines()[line - 1]  # the line the session breaks on
    out = pdb_session(["tutorials/20_deriving_backward_loops.py"], commands + ["q"])
    assert "grad_X()" in out and "if l - i * dl >= 0 and l - i * dl < dY.shape[2]:" in out
    assert "\n(Pdb) (4, 2, 0)\n" in out
    printed = re.search(r"\(Pdb\) np\.float64\((-?[0-9.e-]+)\)", out)
    last = re.search(r"dx\[0, 0, :5\] = \[([^\]]*)\]", runpy_output("20_deriving_backward_loops.py"))
    assert printed and last and round(float(printed.group(1)), 4) == float(last.group(1).split()[4])


def runpy_output(name):
    import subprocess
    import sys

    return subprocess.run([sys.executable, os.path.join("tutorials", name)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120).stdout


SLIDES_INDEX = open(os.path.join(ROOT, "docs", "slides.md")).read()
STATUSES = ("reproduced", "partly", "not yet", "out of scope")


def slide_rows():
    """(deck, cells) for each row of docs/slides.md's per-deck tables."""
    rows, deck = [], None
    for line in SLIDES_INDEX.splitlines():
        heading = re.match(r"## Deck (\d{3})", line)
        if heading:
            deck = heading.group(1)
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if deck and line.startswith("|") and len(cells) == 4 and not cells[0].startswith(("slide", "---")):
            rows.append((deck, cells))
    return rows


def test_the_slides_index_names_only_files_tests_and_commands_that_exist():
    from loopnet import models, targets

    rows = slide_rows()
    assert len(rows) > 100 and {deck for deck, _ in rows} == {"000", "001", "002", "003", "004"}
    for deck, (slide, shows, where, status) in rows:
        assert status.startswith(STATUSES), (deck, slide, status)
        quoted = re.findall(r"`([^`]+)`", where)
        for item in quoted:
            path, _, test = item.partition("::")
            if path.startswith(("loopnet/", "tests/", "tutorials/", "docs/", "benchmarks/")):
                assert os.path.exists(os.path.join(ROOT, path)), (deck, slide, path)
                if test:
                    assert re.search(rf"^def {re.escape(test)}\(", open(os.path.join(ROOT, path)).read(), re.M), item
            elif item.startswith("python cli.py derive "):
                from loopnet.derive import derive

                assert derive(item.split(" ", 3)[3].strip('"')).gradients, item
            elif item.startswith("python cli.py "):
                command, name = item.split()[2:4]
                assert name in (targets.TARGETS if command == "trace" else models.MODELS if command == "train"
                                else targets.TARGETS), item
        if status.startswith("reproduced"):  # a test or a tutorial asserts it
            assert any(q.startswith(("tests/", "tutorials/")) for q in quoted), (deck, slide)


def test_the_slides_index_counts_are_its_rows():
    rows = slide_rows()
    for deck in ("000", "001", "002", "003", "004", "total"):
        mine = [cells for d, cells in rows if deck in (d, "total")]
        counted = [len(mine)] + [sum(cells[3].startswith(s) for cells in mine) for s in STATUSES]
        line = re.search(rf"^\| {deck} \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", SLIDES_INDEX, re.M)
        assert line and [int(n) for n in line.groups()] == counted, (deck, counted)
