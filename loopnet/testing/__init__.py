"""Public testing tools: gradient checks and Hypothesis strategies, for loopnet's own
suite and for yours.

    from loopnet.testing import assert_gradcheck, strategies
"""

from loopnet.testing.gradcheck import GradcheckReport, Mismatch, assert_gradcheck, gradcheck

__all__ = ["gradcheck", "assert_gradcheck", "GradcheckReport", "Mismatch", "strategies", "samples"]


def __getattr__(name):
    # Strategies need Hypothesis; import them only when asked, so gradcheck alone does not.
    if name in ("strategies", "samples"):
        import importlib

        return importlib.import_module(f"loopnet.testing.{name}")
    raise AttributeError(name)
