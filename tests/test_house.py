"""The house rules, measured: which module may import which, the engine's size, short
functions, the backend protocol, and one registry per kind read by the CLI.

The floors, lowest first. A module may import from its own floor or below, never above,
and no set of modules may import each other in a circle. Imports inside functions count
too: a lazy import is still a dependency.
"""

import ast
import io
import os
import tokenize

import pytest
from click.testing import CliRunner

import loopnet as ln
from loopnet import backends, data, init, models, optim
from loopnet.cli import main
from loopnet.targets import TARGETS

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "loopnet")

FLOORS = [
    ("ground", ["loopnet.errors", "loopnet.scalar"]),  # plain Python: no loopnet imports at all
    ("backends", ["loopnet.backends", "loopnet.backends.*"]),  # run loops; know nothing of graphs
    ("engine", ["loopnet.schedule", "loopnet.reduction", "loopnet.graph", "loopnet.loops", "loopnet.op"]),
    ("ops", ["loopnet.ops", "loopnet.ops.*"]),  # the lectures' loops
    ("api", ["loopnet", "loopnet.explain", "loopnet.derivation", "loopnet.derive",  # `import loopnet as ln`
             "loopnet.tracing", "loopnet.snapshot", "loopnet.view", "loopnet.view.*"]),  # (which re-exports explain, derive, show)
    ("library", ["loopnet.targets", "loopnet.watch", "loopnet.replay",  # teaching tools
                 "loopnet.optim", "loopnet.init", "loopnet.data", "loopnet.models", "loopnet.training",
                 "loopnet.testing", "loopnet.testing.*"]),
    ("tools", ["loopnet.tools", "loopnet.tools.*", "loopnet.cli", "loopnet.cli.*"]),
]

# The engine: what runs a graph, its loops and their backends. Code lines only (no
# docstrings, comments or blank lines: the explanations are the point of this project).
# 1021 when this budget was set at 1150; the room left is for the reliability and
# performance work in the open issues. A change that needs more moves code out of the
# engine, or raises the number in the same commit and says why. Raised to 1250 with the
# compile progress display (backends/compile_progress.py, ~100 lines): it lives beside the
# compiles it shows, since every user of the numba backend (the CLI, tutorials, notebooks)
# waits on them, and nothing above backends/ could hook into Numba's compile events without
# an import up a floor. 1159 then. Raised to 1275 at 1252: the compiled tiles' blockwise
# float64 sums (issue 14: a float32 weight gradient must not drift) and scalar.pow (issue
# 15: the same IEEE answers for x^p on every backend) belong to the backends and to
# scalar.py, where every loop body can reach them. Raised to 1450 at 1434 (from 1273)
# with declared reductions (issue 17: sum, mean and the losses' means no longer run on one
# core or one GPU thread): reading a body's loop (reduction.py, 91 lines) sits beside
# schedule.py, below the ops that declare it, and each compiled backend pastes the loop into
# its split driver (about 35 lines each), beside its tiled contractions. Raised to 1475 at
# 1457 with the numba backend's timed choice of serial or parallel (issue 17: conv2d's
# planes ran on one core), which lives where launches happen. Raised to 1525 at 1506: a
# review found loops that carry a value from one pass to the next (prev = x[i]) accepted by
# @reduction and split wrong; reduction.py now refuses them (about 30 lines). Raised to 1560
# at 1557 with @tiles (issue 17: a transposed copy of a matrix whose rows lie a multiple of
# 1 KiB apart ran 2-3x slower in grid order): the declaration in schedule.py and the numba
# driver that walks tiles, about 50 lines, less 14 that the drivers' shared head saved.
# Raised to 1590 at 1582 with transposes as views on cuda (issue 17: six launches of the
# MNIST step's 23 were transposed copies): the view, and the tiles' row-fast loads that
# keep a view's reads coalesced, in cuda_backend.py. Raised to 1640 at 1629 with
# backends/simulator.py and small blocks on the simulator (32 + 15 lines): the suite's CUDA
# tests ran 5-7x slower than needed (a poll spinning through 5 ms switch intervals), and
# running them faster exposed a race in the simulator's shared arrays, fixed there. Raised
# to 1660 at 1642 with what a new user met: did_you_mean in errors.py (every unknown name
# gets a near match), the compile summary's in-memory wording, NUMBA_ENABLE_CUDASIM read
# as Numba reads it. Raised to 1690 at 1667 with cuda's loop_group (issue 17: an MNIST
# step's four SGD updates are one launch, 16 -> 13): the generated kernel that runs several
# flat loops back to back on one grid, in cuda_backend.py.
ENGINE = ["errors.py", "scalar.py", "schedule.py", "reduction.py", "graph.py", "loops.py", "op.py", "backends"]
ENGINE_BUDGET = 1690
FUNCTION_LINES = 60  # longest function anywhere in loopnet/, docstring included


def modules():
    """{module name: path} for every module in the package."""
    found = {}
    for directory, _, files in os.walk(PACKAGE):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(directory, file)
                parts = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].split(os.sep)
                found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path, known):
    """The loopnet modules a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("loopnet")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("loopnet"):
            for alias in node.names:  # `from loopnet import graph` imports the module loopnet.graph
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module)
    return found


def floor_of(module):
    for level, (_, patterns) in enumerate(FLOORS):
        for pattern in patterns:
            if module == pattern or (pattern.endswith(".*") and module.startswith(pattern[:-1])):
                return level
    raise AssertionError(f"{module} is on no floor: add it to FLOORS in tests/test_house.py")


def import_graph():
    known = modules()
    return {module: imports(path, known) - {module} for module, path in known.items()}


def test_no_import_reaches_up_a_floor():
    upward = [f"{m} ({FLOORS[floor_of(m)][0]}) imports {d} ({FLOORS[floor_of(d)][0]})"
              for m, deps in import_graph().items() for d in deps if floor_of(d) > floor_of(m)]
    assert not upward, "\n".join(upward)


def find_circle(graph):
    """A list of modules that import each other in a circle, or None."""
    state = {}

    def visit(module, path):
        state[module] = "open"
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == "open":
                return path + [module, dep]
            if dep not in state:
                circle = visit(dep, path + [module])
                if circle:
                    return circle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            circle = visit(module, [])
            if circle:
                return circle
    return None


def test_no_import_circles():
    circle = find_circle(import_graph())
    assert circle is None, " -> ".join(circle)


def test_the_floor_and_circle_checks_can_fail():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert floor_of("loopnet.backends.numba_backend") < floor_of("loopnet.testing.samples")
    with pytest.raises(AssertionError, match="on no floor"):
        floor_of("loopnet.somewhere_new")


def code_lines(path):
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    source = open(path).read()
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    lines = set()
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docstrings)
    return len(lines)


def test_the_engine_stays_within_its_line_budget():
    paths = []
    for entry in ENGINE:
        path = os.path.join(PACKAGE, entry)
        paths += [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".py")] if os.path.isdir(path) else [path]
    sizes = {os.path.relpath(p, PACKAGE): code_lines(p) for p in paths}
    assert sum(sizes.values()) <= ENGINE_BUDGET, f"engine: {sum(sizes.values())} code lines > {ENGINE_BUDGET}: {sizes}"


def test_code_lines_leave_out_docstrings_and_comments(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('"""doc\nstring"""\n\n# comment\ndef f(x):\n    """doc"""\n    return (x +\n            1)  # why\n')
    assert code_lines(str(path)) == 3


def test_every_function_is_short():
    long = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert not long, "\n".join(long)


@pytest.mark.parametrize("name", backends.BACKENDS)
def test_every_backend_provides_the_protocol_and_only_it(name):
    import importlib

    module = importlib.import_module(f"loopnet.backends.{name}_backend")
    assert tuple(module.__all__) == backends.PROTOCOL
    missing = [attr for attr in backends.PROTOCOL if not hasattr(module, attr)]
    assert not missing and module.name == name


def help_text(*args):
    result = CliRunner().invoke(main, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_the_cli_reads_every_registry():
    train = help_text("train")
    assert f"[{'|'.join(optim.OPTIMIZERS)}]" in train and f"[{'|'.join(init.SCHEMES)}]" in train
    assert f"[{'|'.join(backends.BACKENDS)}]" in train
    assert all(f"{name} {spec.epochs}" in train for name, spec in models.MODELS.items())
    assert all(name in train.split("--data")[1] for name in data.DATASETS)
    trace = help_text("trace")
    assert all(name in trace for name in TARGETS) and f"[{'|'.join(backends.BACKENDS)}]" in trace


def test_one_error_policy_for_every_command():
    for args in (["train", "resnet"], ["evaluate", "resnet", "--checkpoint", "x.npz"], ["ops", "convolve"],
                 ["gradcheck", "convolve"], ["trace", "no-such-target"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and result.stderr.startswith("error: "), (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_body_slot_with_the_old_name_is_refused():
    with pytest.raises(TypeError, match="grad_x_body"):
        class Old(ln.op.Elementwise):  # noqa: F841
            name = "old"
            backward_body = staticmethod(lambda i, x, y, dy, dx: None)
    with pytest.raises(TypeError, match="grad_x_body"):
        ln.op.Elementwise.backward_body = lambda i, x, y, dy, dx: None


def test_a_body_assigned_to_a_slot_later_stays_a_plain_function():
    def double_forward(i, x, y):
        y[i] = 2 * x[i]

    class Double(ln.op.Elementwise):
        name = "double"

    Double.forward_body = double_forward  # no staticmethod needed, as in the class body
    assert Double().forward_body is double_forward
    assert ln.forward(Double().apply((ln.Input([1.5]),))).tolist() == [3.0]
