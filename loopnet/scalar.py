"""Scalar math for loop bodies that behaves like IEEE-754 floats on every backend.

Python's `math.exp(1000.0)` raises OverflowError and `math.log(0.0)` raises ValueError,
while the same call compiled by Numba or numba.cuda returns inf or -inf. Loop bodies
call these helpers instead, so the three backends agree and a NaN or Inf stays visible
(and `forward(..., check_finite=True)` can name where it appeared).

They are plain Python; the Numba and CUDA backends register them as jit-able functions.
"""

import math

# exp(x) overflows float64 for x above log(max float64) = 709.78...
_EXP_OVERFLOW = 709.782712893384


def exp(x):
    if x > _EXP_OVERFLOW:
        return math.inf
    return math.exp(x)


def log(x):
    if x > 0:
        return math.log(x)
    if x == 0:
        return -math.inf
    return math.nan  # negative, or NaN


def log1p(x):
    if x > -1:
        return math.log1p(x)
    if x == -1:
        return -math.inf
    return math.nan


def sigmoid(z):
    """1 / (1 + e^-z) without overflow: for z < 0 use e^z / (1 + e^z), whose e^z <= 1."""
    if z >= 0:
        return 1 / (1 + exp(-z))
    e = exp(z)
    return e / (1 + e)


def softplus(z):
    """ln(1 + e^z) without overflow, as max(z, 0) + ln(1 + e^-|z|), where e^-|z| <= 1."""
    if z > 0:
        return z + log1p(exp(-z))
    return log1p(exp(z))


HELPERS = (exp, log, log1p, sigmoid, softplus)
