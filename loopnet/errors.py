"""The errors loopnet raises, each written for the person who made the mistake.

Every error derives from `LoopnetError`, so a program (or the CLI) can catch all of
them at once, and also from the matching built-in class (`ValueError`, `TypeError`,
...), so code that already catches those keeps working.
"""

import difflib


def did_you_mean(name, choices):
    """" (did you mean 'affine'?)" when `name` is a near miss of one of `choices`, else ""."""
    spelled = {str(choice).lower(): str(choice) for choice in choices}  # (MLP is mlp)
    close = difflib.get_close_matches(str(name).lower(), list(spelled), n=1)
    return f" (did you mean {spelled[close[0]]!r}?)" if close else ""


class LoopnetError(Exception):
    """Base class of every error loopnet raises on purpose."""


class ShapeError(LoopnetError, ValueError):
    """An op was given inputs whose shapes do not fit its shape rule."""


class DTypeError(LoopnetError, TypeError):
    """Wrong element type: integers where floats are needed, or float32 mixed with float64."""


class LabelError(LoopnetError, ValueError):
    """Labels that are not integers, or fall outside the range of classes."""


class NonFiniteError(LoopnetError, FloatingPointError):
    """A NaN or Inf appeared; the message names the first node where it did."""


class BackendError(LoopnetError, RuntimeError):
    """A backend was asked for that is unknown or cannot run on this machine."""


class SettingError(LoopnetError, ValueError):
    """An op's setting outside its range, e.g. dropout's p or layer_norm's eps."""


class GraphError(LoopnetError, RuntimeError):
    """The graph was used out of order, e.g. backward before forward."""
