"""What a student meets first: the main job, the backend policy, options that do not apply,
and tools that leave the graph as they found it."""

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import loopnet as ln
from loopnet.backends import current_backend
from loopnet.cli import main
from loopnet.testing import gradcheck


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env)


def one_line_error(result, fragment, code=1):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


# -- the main job ------------------------------------------------------------------------


def test_the_main_job_shows_the_gradients_worked_by_hand_in_the_readme():
    nodes = {n["name"]: n for n in json.loads(run("trace", "xor-backprop", "--format", "json").stdout)["nodes"]}
    assert nodes["loss"]["value"] == 2.5
    assert nodes["W"]["grad"] == [[-1.0, 1.0], [-1.0, 3.0]]
    assert nodes["v"]["grad"] == [[-1.0], [-4.0]]
    assert nodes["h"]["grad"] == [[0.0], [-2.0], [0.0], [-1.0]]
    assert nodes["X"]["dtype"] == "float64" and nodes["X"]["grad"] is None


def test_the_main_job_fits_100_columns_and_shows_real_gradients():
    result = run("trace", "xor-backprop")
    assert result.exit_code == 0 and max(map(len, result.stdout.splitlines())) <= 100
    grads = [line for line in result.stdout.splitlines() if line.strip().startswith("grad ")]
    assert any(any(c in line for c in "123456789") for line in grads)
    assert result.stdout.splitlines()[0].split() == ["#", "name", "op", "inputs", "shape", "dtype"]


def test_the_xor_target_keeps_the_slides_weights_and_its_zero_gradients():
    # deck 001, 'Logic gates: A motivating example'
    nodes = json.loads(run("trace", "xor", "--format", "json").stdout)["nodes"]
    by_name = {n["name"]: n for n in nodes}
    assert by_name["W"]["value"] == [[1.0, 1.0], [1.0, 1.0]] and by_name["v"]["value"] == [[1.0], [-2.0]]
    assert by_name["out"]["value"] == [[0.0], [1.0], [1.0], [0.0]] and by_name["W"]["grad"] == [[0.0, 0.0], [0.0, 0.0]]


def test_trace_lists_an_unrolled_rnn_in_time_order():
    names = [n["name"] for n in json.loads(run("trace", "rnn", "--format", "json").stdout)["nodes"]]
    assert names.index("x1") < names.index("h1") < names.index("x2") < names.index("x4") < names.index("loss")


# -- the backend policy ------------------------------------------------------------------


def test_reading_tools_run_the_python_loops_by_default(monkeypatch):
    monkeypatch.delenv("LOOPNET_BACKEND", raising=False)
    for args in (["trace", "mlp"], ["jacobian", "xor", "--of", "hidden", "--wrt", "c"], ["gradcheck", "relu", "--examples", "2"]):
        with ln.use("numba"):  # whatever ran before
            assert run(*args).exit_code == 0
            assert current_backend().name == "python", args


def test_flag_beats_variable_beats_the_command_default(monkeypatch):
    monkeypatch.setenv("LOOPNET_BACKEND", "numba")
    assert run("trace", "xor").exit_code == 0 and current_backend().name == "numba"
    assert run("trace", "xor", "--backend", "python").exit_code == 0 and current_backend().name == "python"
    assert run("train", "xor", "--epochs", "1").exit_code == 0 and current_backend().name == "numba"
    monkeypatch.delenv("LOOPNET_BACKEND")
    assert run("train", "xor", "--epochs", "1").exit_code == 0 and current_backend().name == "python"


@pytest.mark.parametrize("args", [["train", "xor"], ["trace", "xor"], ["jacobian", "xor", "--of", "hidden", "--wrt", "c"],
                                  ["gradcheck", "relu"]])
def test_a_bad_backend_variable_is_one_line_on_every_command_that_would_use_it(args):
    one_line_error(run(*args, env={"LOOPNET_BACKEND": "bogus"}), "LOOPNET_BACKEND='bogus' is not a backend")


@pytest.mark.parametrize("args, env, fragment", [
    (["trace", "xor_backprop"], None, "unknown target 'xor_backprop' (did you mean 'xor-backprop'?)"),
    (["ops", "afine"], None, "unknown op 'afine' (did you mean 'affine'?)"),
    (["train", "xr"], None, "unknown model 'xr' (did you mean 'xor'?)"),
    (["evaluate", "mpl", "--checkpoint", "x.npz"], None, "unknown model 'mpl' (did you mean 'mlp'?)"),
    (["train", "mlp", "--data", "digts"], None, "unknown data set 'digts' (did you mean 'digits'?)"),
    (["trace", "xor"], {"LOOPNET_BACKEND": "numbaa"}, "LOOPNET_BACKEND='numbaa' is not a backend (did you mean 'numba'?)"),
    (["train", "MLP"], None, "unknown model 'MLP' (did you mean 'mlp'?)"),
    (["trace", "resnet"], None, "unknown target 'resnet'; built-in"),  # nothing close: no guess
])
def test_a_near_miss_of_a_name_is_answered_with_the_name(args, env, fragment):
    one_line_error(run(*args, env=env), fragment)


def test_a_bad_backend_variable_is_one_line_on_evaluate_too(tmp_path):
    checkpoint = tmp_path / "xor.npz"
    assert run("train", "xor", "--epochs", "1", "--checkpoint", str(checkpoint)).exit_code == 0
    one_line_error(run("evaluate", "xor", "--checkpoint", str(checkpoint), env={"LOOPNET_BACKEND": "bogus"}),
                   "LOOPNET_BACKEND='bogus' is not a backend")


@pytest.mark.parametrize("args", [["trace", "xor", "--backend", "python"], ["train", "xor", "--epochs", "1", "--backend", "python"],
                                  ["trace", "--help"], ["--help"], ["ops", "relu"],
                                  ["derive", "Y[i] = sum_j A[i,j] * x[j]"]])
def test_a_bad_backend_variable_does_not_stop_what_does_not_use_it(args):
    result = run(*args, env={"LOOPNET_BACKEND": "bogus"})
    assert result.exit_code == 0 and "bogus" not in result.output, result.output


def test_a_compiled_backend_under_a_debugger_says_breakpoints_will_not_stop():
    previous = sys.gettrace()
    sys.settrace(lambda *args: None)  # what pdb does while breakpoints are set
    try:
        noted = run("trace", "xor", "--backend", "numba")
        quiet = run("trace", "xor")
    finally:
        sys.settrace(previous)
    assert noted.exit_code == 0 and "breakpoints in loopnet/ops/ stop only with --backend python" in noted.stderr
    assert "debugger" not in quiet.stderr
    assert "debugger" not in run("trace", "xor", "--backend", "numba").stderr  # no debugger, no note


# -- mistakes are one line ---------------------------------------------------------------


@pytest.mark.parametrize("args,fragment", [
    (["train", "xor", "--dropout", "0.5"], "--dropout does not apply to xor"),
    (["train", "logistic", "--channels", "8"], "--channels does not apply to logistic"),
    (["train", "logistic", "--width", "7"], "--width does not apply to logistic"),
    (["train", "convnet", "--width", "7"], "--width does not apply to convnet"),
    (["train", "xor", "--optimizer", "adam", "--momentum", "0.5"], "--momentum is mu of --optimizer momentum"),
    (["trace", "mlp", "--counts", "--format", "json"], "--format json and --counts"),
    (["trace", "mlp", "--format", "dot", "--explain", "W1[0,0]"], "--format dot and --explain"),
    (["trace", "mlp", "--counts", "--explain", "W1[0,0]"], "--explain and --counts"),
])
def test_options_that_do_not_apply_are_errors(args, fragment):
    one_line_error(run(*args), fragment)


@pytest.mark.parametrize("p", ["1.0", "1.5", "-0.2", "nan"])
def test_dropout_outside_zero_one_is_a_usage_error(p):
    result = run("train", "mlp", "--dropout", p)
    assert result.exit_code == 2 and "is not a probability in [0, 1)" in result.output
    assert "Traceback" not in result.output


def test_resuming_with_nothing_left_to_train_says_so(tmp_path):
    ck = str(tmp_path / "x.npz")
    assert run("train", "xor", "--epochs", "3", "--checkpoint", ck).exit_code == 0
    one_line_error(run("train", "xor", "--epochs", "3", "--resume", ck), "has finished epoch 3 of 3: nothing left to train")


def test_resume_keeps_saving_to_the_resumed_checkpoint(tmp_path):
    from loopnet import training

    ck = str(tmp_path / "x.npz")
    assert run("train", "xor", "--epochs", "2", "--checkpoint", ck).exit_code == 0
    result = run("train", "xor", "--epochs", "5", "--resume", ck)
    assert result.exit_code == 0 and f"saving to {ck}" in result.stdout
    assert training.load_checkpoint(ck)[0]["state"]["epoch"] == 5


# -- no side effects ---------------------------------------------------------------------


def snapshot(loss):
    return [(n.name, np.array(n.value), None if n.grad is None else np.array(n.grad))
            for n in ln.topological_order(loss)]


# mlp's 100-odd parameters take half a minute of perturbed forwards on the simulator; on
# cuda the small XOR network checks the same device-array restoring
@pytest.mark.parametrize("backend, target", [("python", "mlp"), ("numba", "mlp"), ("cuda", "xor-backprop")])
def test_gradcheck_leaves_values_and_grads_as_it_found_them(backend, target):
    from loopnet.targets import build_target

    with ln.use(backend):
        loss = build_target(target)
        ln.forward(loss)
        ln.backward(loss, grad=np.array(3.0))  # a grad gradcheck would never produce itself
        before = snapshot(loss)
        report = gradcheck(loss)
        assert report, report
        after = snapshot(loss)
    for (name, value, grad), (_, value_after, grad_after) in zip(before, after):
        assert np.array_equal(value, value_after), name
        assert (grad is None) == (grad_after is None) and (grad is None or np.array_equal(grad, grad_after)), name


def test_gradcheck_sees_its_perturbations_on_cuda():
    W = ln.Parameter(np.array([[0.5, -1.0], [2.0, 0.25]]), name="W")
    loss = ln.sum(ln.square(ln.matmul(ln.Input(np.ones((1, 2))), W)))
    with ln.use("cuda"):
        report = gradcheck(loss)
    assert report and report.max_abs_error < 1e-6 and report.checked == 4


def test_loading_a_data_set_is_announced_on_a_terminal_and_cleared(monkeypatch):
    import io

    from loopnet.cli import training as commands

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert commands._load_data("xor", 0, None).name == "xor"
    assert terminal.getvalue() == "loading the xor data set...\r\x1b[K"


@pytest.mark.parametrize("model,options", [
    ("xor", ["--width", "3"]), ("logistic", ["--init", "he"]), ("mlp", ["--width", "6", "--dropout", "0.2"]),
    ("convnet", ["--channels", "2", "--dropout", "0.1"]), ("attention", ["--width", "4", "--dtype", "float32"]),
])
def test_a_resumed_run_keeps_its_model_and_writes_what_evaluate_loads(tmp_path, model, options):
    from loopnet import training

    ck = str(tmp_path / "ck.npz")
    assert run("train", model, "--epochs", "1", "--checkpoint", ck, "--seed", "3", *options).exit_code == 0
    first = training.load_checkpoint(ck)[0]["model"]
    result = run("train", model, "--epochs", "2", "--resume", ck)  # no options: all from the checkpoint
    assert result.exit_code == 0, result.output
    meta = training.load_checkpoint(ck)[0]
    assert meta["state"]["epoch"] == 2 and meta["model"] == first and meta["train"]["seed"] == 3
    assert first["width"] == models_width(model, options)
    evaluated = run("evaluate", model, "--checkpoint", ck)
    assert evaluated.exit_code == 0 and "after epoch 2" in evaluated.stdout, evaluated.output


def models_width(model, options):
    from loopnet.models import MODELS

    return int(options[options.index("--width") + 1]) if "--width" in options else MODELS[model].width


def test_a_resumed_run_refuses_options_that_ask_for_another_model(tmp_path):
    ck = str(tmp_path / "ck.npz")
    assert run("train", "xor", "--epochs", "1", "--checkpoint", ck, "--width", "3").exit_code == 0
    one_line_error(run("train", "xor", "--epochs", "2", "--resume", ck, "--width", "2"), "width 3 vs 2")
    one_line_error(run("train", "xor", "--epochs", "2", "--resume", ck, "--dtype", "float32"), "dtype 'float64' vs 'float32'")
    one_line_error(run("train", "xor", "--epochs", "2", "--resume", ck, "--seed", "7"), "trained with --seed 0")
    one_line_error(run("train", "mlp", "--epochs", "2", "--resume", ck), "holds a xor model, not mlp")


def test_lr_on_a_resumed_run_is_an_announced_override(tmp_path):
    from loopnet import training

    ck = str(tmp_path / "ck.npz")
    assert run("train", "xor", "--epochs", "2", "--checkpoint", ck).exit_code == 0
    result = run("train", "xor", "--epochs", "3", "--resume", ck, "--lr", "0.125")
    assert result.exit_code == 0 and "learning rate 0.125 from --lr (the checkpoint's was 0.5)" in result.stderr
    assert training.load_checkpoint(ck)[0]["state"]["lr"] == 0.125


def test_a_user_files_prints_go_to_stderr_so_json_stays_json(tmp_path):
    path = tmp_path / "model.py"
    path.write_text("import loopnet as ln\nprint('importing')\n\ndef build():\n    print('building')\n"
                    "    return ln.sum(ln.square(ln.Parameter([1.0, 2.0], name='w')))\n")
    result = run("trace", str(path), "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["nodes"][-1]["value"] == 5.0
    assert "importing" in result.stderr and "building" in result.stderr


@pytest.mark.parametrize("source,fragment", [
    ("import sys\nsys.exit(0)\ndef build():\n    pass\n", "exited while it was imported (sys.exit(0))"),
    ("import sys\ndef build():\n    sys.exit(0)\n", "build() of"),
])
def test_a_user_file_that_exits_says_so(tmp_path, source, fragment):
    path = tmp_path / "model.py"
    path.write_text(source)
    one_line_error(run("trace", str(path)), fragment)


def test_ctrl_c_in_the_first_epoch_does_not_claim_a_checkpoint(tmp_path, monkeypatch):
    from loopnet import training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    ck = str(tmp_path / "never.npz")
    result = run("train", "xor", "--checkpoint", ck)
    assert result.exit_code == 130 and f"no epoch had been saved to {ck}" in result.stderr


def test_a_log_gets_one_line_per_epoch_and_no_progress_bars():
    result = run("train", "xor", "--epochs", "4")
    assert result.exit_code == 0 and "epoch 1/4" not in result.stderr and result.stderr.strip() == ""
    assert sum(line.startswith("epoch ") for line in result.stdout.splitlines()) == 4


def test_ctrl_c_inside_a_compile_exits_130_with_one_line(tmp_path):
    import os
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = (
        "import sys\n"
        "import numba.core.dispatcher as d\n"
        "def interrupted(self, sig):\n"
        "    raise KeyboardInterrupt  # as if Ctrl-C came while Numba compiled\n"
        "d.Dispatcher.compile = interrupted\n"
        "from loopnet.cli import main\n"
        "sys.argv = ['cli.py', 'trace', 'least-squares', '--backend', 'numba']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, LOOPNET_CACHE_DIR=str(tmp_path)))
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "interrupted" and "Traceback" not in result.stderr
    assert "compiled 0 kernels" not in result.stderr
