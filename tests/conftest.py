"""Test set-up: the CUDA simulator, and Hypothesis profiles chosen by LOOPNET_HYPOTHESIS_PROFILE:

    ci        few examples, derandomized: the whole suite stays well under 10 minutes
    dev       the default on a developer's machine
    thorough  thousands of examples, for a long run before a release

CI=true (as CI sets it) picks `ci` unless the variable says otherwise.
"""

import os

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
