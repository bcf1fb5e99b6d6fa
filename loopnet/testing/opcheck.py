"""Check registered ops by gradcheck over Hypothesis-drawn inputs (`cli.py gradcheck`)."""

from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, Verbosity, given, seed as hypothesis_seed, settings

from loopnet.testing.gradcheck import gradcheck
from loopnet.testing.samples import SAMPLES


@dataclass
class OpCheck:
    name: str
    examples: int = 0
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    failure: str = None  # the report of the smallest failing example, None if all passed

    @property
    def ok(self):
        return self.failure is None


def check_op(name, examples=25, seed=0, dtype=np.float64):
    """Gradcheck op `name` on `examples` random inputs; on failure keep the shrunk report."""
    if name not in SAMPLES:
        raise KeyError(f"no gradcheck sample for op {name!r}; add one to loopnet/testing/samples.py")
    result = OpCheck(name)

    @hypothesis_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, verbosity=Verbosity.quiet,
              suppress_health_check=list(HealthCheck))
    @given(SAMPLES[name](dtype))
    def run(node):
        report = gradcheck(node)
        result.examples += 1
        result.max_abs_error = max(result.max_abs_error, report.max_abs_error)
        result.max_rel_error = max(result.max_rel_error, report.max_rel_error)
        assert report.ok, str(report)

    try:
        run()
    except AssertionError as err:
        result.failure = str(err)
    return result
