"""The command line: trace (text, json, user files), ops, gradcheck, and its errors."""

import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import loopnet as ln
from loopnet.cli import main
from loopnet.ops.affine import affine_forward, affine_grad_W
from loopnet.targets import TARGETS, build_target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args):
    result = CliRunner().invoke(main, list(args))
    return result


def one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_trace_text_lists_every_node_in_order_with_value_and_grad(target):
    result = run("trace", target)
    assert result.exit_code == 0, result.output
    with ln.fresh_names():
        order = ln.topological_order(build_target(target))
    rows = [line.split()[1] for line in result.stdout.splitlines()[1:] if line[:1].isdigit()]
    assert rows == [n.name for n in order]
    assert result.stdout.count("value ") == len(order) and result.stdout.count("grad  ") == len(order)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_trace_json_round_trips_the_library_numbers(target):
    result = run("trace", target, "--format", "json")
    assert result.exit_code == 0, result.output
    nodes = json.loads(result.stdout)["nodes"]
    loss = build_target(target)
    ln.forward(loss)
    ln.backward(loss)
    order = ln.topological_order(loss)
    assert [n["name"] for n in nodes] == [n.name for n in order]
    assert nodes[-1]["name"] == loss.name
    for record, node in zip(nodes, order):
        assert set(record) == {"name", "op", "inputs", "shape", "dtype", "value", "grad",  # the contract's keys
                               "roles", "doc", "loops", "explain"}  # and what the graph page shows
        assert record["op"] == node.op_name and record["inputs"] == [p.name for p in node.inputs]
        assert tuple(record["shape"]) == node.shape
        np.testing.assert_array_equal(np.array(record["value"]), node.value)  # exact: full precision
        if node.grad is None:
            assert record["grad"] is None
        else:
            np.testing.assert_array_equal(np.array(record["grad"]), node.grad)


def test_trace_least_squares_shows_the_hand_computed_gradients():
    nodes = {n["name"]: n for n in json.loads(run("trace", "least-squares", "--format", "json").stdout)["nodes"]}
    assert nodes["loss"]["value"] == 0.25 and nodes["w"]["grad"] == -2.0 and nodes["b"]["grad"] == -1.0
    assert nodes["x"]["grad"] is None and nodes["x"]["op"] == "Input"


def test_trace_summarises_large_arrays(tmp_path):
    path = tmp_path / "big.py"
    path.write_text("import loopnet as ln, numpy as np\n"
                    "def build():\n    return ln.sum(ln.square(ln.Parameter(np.arange(100.0), name='w')))\n")
    result = run("trace", str(path))
    assert result.exit_code == 0
    assert "100 values: min 0, mean 49.5, max 99" in result.stdout


def test_trace_of_a_user_file_with_default_and_named_function(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent("""
        import loopnet as ln
        def build():
            w = ln.Parameter([2.0], name="w")
            return ln.sum(ln.square(w), name="loss")
        def other():
            w = ln.Parameter([3.0], name="w")
            return ln.sum(ln.exp(w), name="loss2")
    """))
    nodes = json.loads(run("trace", str(path), "--format", "json").stdout)["nodes"]
    assert nodes[0]["grad"] == [4.0]
    nodes = json.loads(run("trace", f"{path}:other", "--format", "json").stdout)["nodes"]
    assert nodes[-1]["name"] == "loss2"


@pytest.mark.parametrize("source,fragments", [
    (None, ("no such file",)),
    ("def build(:\n", ("does not import", "SyntaxError at line 1")),
    ("import no_such_module_xyz\ndef build():\n    pass\n", ("does not import", "ModuleNotFoundError")),
    ("x = 1\n", ("has no function 'build'",)),
    ("x = " + "1+" * 5000 + "1\n", ("does not import", "RecursionError")),  # too deep to read: imported, and says so
    ("build = 3\n", ("'build'", "is a int, not a function or a node")),
    ("def build():\n    raise ValueError('boom')\n", ("build() of", "raised ValueError: boom")),
    ("def build():\n    return 42\n", ("returned int, not a loopnet node",)),
    ("import loopnet as ln\ndef build():\n    return ln.add(ln.Parameter([1.0, 2.0, 3.0]), ln.Parameter([1.0, 2.0]))\n",
     ("add: shapes (3,) and (2,) do not broadcast",)),
])
def test_user_file_errors_are_one_line_exit_1(tmp_path, source, fragments):
    path = tmp_path / "user_model.py"
    if source is not None:
        path.write_text(source)
    one_line_error(run("trace", str(path)), *fragments)


def test_a_script_without_the_function_is_refused_before_it_runs(tmp_path):
    path, ran = tmp_path / "script.py", tmp_path / "ran"
    path.write_text(f"open({str(ran)!r}, 'w').write('yes')\ndef other():\n    pass\n")
    one_line_error(run("trace", str(path)), "has no function 'build'", "without running it")
    assert not ran.exists()
    path.write_text(f"open({str(ran)!r}, 'w').write('yes')\nif True:\n    from random import random as build\n")
    one_line_error(run("trace", str(path)), "random() of", "returned float")  # bound under an if: imported and run
    assert ran.exists()


BUILDER = "import loopnet as ln\ndef _b():\n    return ln.sum(ln.square(ln.Parameter([2.0], name='w')), name='loss')\n"


@pytest.mark.parametrize("binding", [
    "globals()['build'] = _b", "globals().update(build=_b)", "exec('build = _b')",
    "match _b:\n    case build:\n        pass", "def __getattr__(name):\n    return _b",
])
def test_a_build_bound_by_name_as_the_file_runs_is_still_found(tmp_path, binding):
    # read before importing, a file is refused only where nothing could bind the name
    path = tmp_path / "model.py"
    path.write_text(BUILDER + binding + "\n")
    result = run("trace", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["nodes"][-1]["value"] == 4.0


def test_a_node_the_file_builds_as_it_runs_is_traced(tmp_path):
    path = tmp_path / "script.py"
    path.write_text("import loopnet as ln\nprint('running')\nw = ln.Parameter([3.0], name='w')\n"
                    "loss = ln.sum(ln.square(w))\nln.forward(loss)\n")
    ln.sum(ln.square(ln.Parameter([1.0])))  # built before: the traced graph is still named from 1
    result = run("trace", f"{path}:loss", "--format", "json")
    assert result.exit_code == 0, result.output
    nodes = json.loads(result.stdout)["nodes"]  # (the script's print went to stderr)
    assert [n["name"] for n in nodes] == ["w", "square_1", "sum_1"]
    assert nodes[-1]["value"] == 9.0 and nodes[0]["grad"] == [6.0]
    one_line_error(run("trace", str(path)), "has no function 'build'", "with path.py:NAME")


def test_what_a_file_builds_as_it_runs_and_what_build_makes_share_no_name(tmp_path):
    path = tmp_path / "model.py"
    path.write_text("import loopnet as ln\nW = ln.Parameter([1.0])\n"
                    "def build():\n    return ln.sum(ln.mul(W, ln.Parameter([2.0])))\n")
    nodes = json.loads(run("trace", str(path), "--format", "json").stdout)["nodes"]
    assert [n["name"] for n in nodes] == ["Parameter_1", "Parameter_2", "mul_1", "sum_1"]


def test_unknown_target_lists_the_built_ins():
    one_line_error(run("trace", "resnet"), "unknown target 'resnet'", "xor", "least-squares")


def test_trace_check_finite_flag_names_the_bad_node(tmp_path):
    path = tmp_path / "inf.py"
    path.write_text("import loopnet as ln\ndef build():\n"
                    "    return ln.sum(ln.exp(ln.Parameter([1000.0], name='w'), name='big'))\n")
    assert run("trace", str(path)).exit_code == 0  # inf is shown, not hidden
    one_line_error(run("trace", str(path), "--check-finite"), "'big' (exp) is inf")


def test_bad_option_values_are_click_usage_errors_with_code_2():
    assert run("trace", "xor", "--format", "yaml").exit_code == 2
    assert run("trace", "xor", "--backend", "fortran").exit_code == 2
    assert run("gradcheck", "--examples", "0").exit_code == 2


def test_help_lists_the_built_in_targets():
    result = run("trace", "--help")
    assert result.exit_code == 0
    for name in TARGETS:
        assert name in result.stdout


def test_ops_lists_every_op_with_its_math_and_shows_one_in_full():
    listing = run("ops").stdout
    for name in ln.OPS:
        assert name in listing
    lines = listing.splitlines()
    assert len(lines) == len(ln.OPS)
    assert all(line.rstrip().endswith((".", ")")) for line in lines), "each op's summary sentence whole"
    full = run("ops", "affine").stdout
    assert "dW[d,m] += sum_n X[n,d] * dY[n,m]" in full  # the math (the op file's docstring)
    assert "# backward loop: affine_grad_W\n" in full  # and its loops, as the file has them
    assert inspect.getsource(affine_grad_W) in full and inspect.getsource(affine_forward) in full
    layout = run("ops", "transpose").stdout  # layout.py also holds permute's and broadcast_to's loops
    assert "def transpose_forward(" in layout and "def transpose_grad_x(" in layout and "def permute" not in layout
    shared = run("ops", "sum").stdout  # one op, two classes (the whole array, or along an axis)
    assert shared.count("def sum_forward(") == 1 and "def sum_axis_grad_x(" in shared
    result = run("ops", "convolve")
    assert result.exit_code == 1 and "unknown op 'convolve'" in result.stderr


def test_gradcheck_command_reports_a_table_and_exit_0():
    result = run("gradcheck", "relu", "affine", "--examples", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["op", "examples"]
    assert lines[1].split()[0] == "relu" and lines[1].split()[-1] == "ok"
    assert lines[2].split()[0] == "affine"


def test_gradcheck_command_fails_with_exit_1_and_the_report(monkeypatch):
    import loopnet.ops.activations as activations

    def wrong(i, x, y, dy, dx):
        if x[i] > 0:
            dx[i] += 2 * dy[i]

    monkeypatch.setattr(activations.Relu, "grad_x_body", staticmethod(wrong))
    result = run("gradcheck", "relu", "--examples", "5")
    assert result.exit_code == 1
    assert "FAILED" in result.stdout and "finite difference" in result.stderr
    assert run("gradcheck", "nonsense").exit_code == 1


def test_cli_py_runs_as_a_script_without_traceback():
    ok = subprocess.run([sys.executable, "cli.py", "trace", "xor"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "mse_loss" in ok.stdout
    bad = subprocess.run([sys.executable, "cli.py", "trace", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
