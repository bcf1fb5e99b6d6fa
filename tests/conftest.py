"""Test set-up: the CUDA simulator, and Hypothesis profiles chosen by LOOPNET_HYPOTHESIS_PROFILE:

    ci        few examples, derandomized: the whole suite stays well under 10 minutes
    dev       the default on a developer's machine
    thorough  thousands of examples, for a long run before a release

CI=true (as CI sets it) picks `ci` unless the variable says otherwise.
"""

import os
import subprocess
import sys
import tempfile

# The cuda backend's tests run on Numba's CUDA simulator unless told otherwise: on a machine
# with a GPU, run `NUMBA_ENABLE_CUDASIM=0 python -m pytest` to test the real thing.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=15, derandomize=True, print_blob=True, **_common)
settings.register_profile("dev", max_examples=40, **_common)
settings.register_profile("thorough", max_examples=2000, **_common)

_default = "ci" if os.environ.get("CI", "").lower() == "true" else "dev"
settings.load_profile(os.environ.get("LOOPNET_HYPOTHESIS_PROFILE", _default))

# Compile progress is for people; in the suite's own process it would print its summary at
# exit, after pytest's last line. (tests/test_warmup.py checks it in subprocesses.)
from loopnet.backends.compile_progress import progress  # noqa: E402

progress.shown = False


@pytest.fixture(autouse=True)
def python_backend():
    """Every test starts on the reference backend, with automatic names counted from 1."""
    import loopnet as ln

    with ln.use("python"), ln.fresh_names():
        yield


# The PTX check compiles every kernel for a real GPU in a subprocess, about 45 s of one core.
# The suite itself runs on one core most of the time, so the check starts as soon as
# collection is done (after -k, -m and --lf have chosen) if its test is to run, beside the
# suite on another core, and the test reads what it printed.
PTX_TEST = "test_every_kernel_compiles_to_real_ptx"
_ptx = {}


def pytest_collection_finish(session):
    wanted = any(item.name == PTX_TEST for item in session.items)
    if wanted and not _ptx and not session.config.option.collectonly:
        output = tempfile.TemporaryFile("w+")  # (a file, not a pipe: nothing reads it until the end)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        _ptx.update(output=output, process=subprocess.Popen(
            [sys.executable, "-m", "loopnet.tools.ptx"], cwd=root, stdout=output, stderr=subprocess.STDOUT,
            text=True, env=dict(os.environ, NUMBA_ENABLE_CUDASIM="0")))


@pytest.fixture
def ptx_check():
    """(exit code, output) of `python -m loopnet.tools.ptx`, started after collection."""
    process, output = _ptx["process"], _ptx["output"]
    code = process.wait(timeout=600)
    output.seek(0)
    return code, output.read()


def pytest_unconfigure(config):
    if _ptx:
        if _ptx["process"].poll() is None:  # (the run stopped before the test)
            _ptx["process"].kill()
        _ptx["process"].wait()
        _ptx["output"].close()
