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
    assert first.strip().endswith("cli.py trace xor") and "python3 -m venv" in first
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


def test_the_pdb_session_of_tutorial_5_stops_inside_the_backward_loop():
    import subprocess
    import sys

    commands = "\n".join([
        "!import loopnet.ops.arithmetic",
        "b loopnet.ops.arithmetic.mul_grad_a",
        "c",
        "p i, dy[i], b[i], da[i]",
        "n",
        "p da[i]",
        "q",
    ]) + "\n"
    session = subprocess.run([sys.executable, "-m", "pdb", os.path.join("tutorials", "05_stepping_through_backprop.py")],
                             input=commands, capture_output=True, text=True, cwd=ROOT, timeout=120)
    out = session.stdout
    assert "arithmetic.py" in out and "mul_grad_a()" in out and "da[i] += dy[i] * b[i]" in out
    assert "(0, np.float64(-1.0), np.float64(2.0), np.float64(0.0))" in out  # i, du, x, w.grad before
    assert "np.float64(-2.0)" in out  # w.grad after the multiply-add
