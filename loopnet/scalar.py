"""Scalar math for loop bodies that behaves like IEEE-754 floats on every backend.

Python's `math.exp(1000.0)` raises OverflowError and `math.log(0.0)` raises ValueError,
while the same call compiled by Numba or numba.cuda returns inf or -inf. Loop bodies
call these helpers instead, so the three backends agree and a NaN or Inf stays visible
(and `forward(..., check_finite=True)` can name where it appeared).

They are plain Python; the Numba and CUDA backends register them as jit-able functions.

Two helpers read a row of a 2-D array: the first half of the log-sum-exp trick, shared by
softmax, log_softmax and softmax_cross_entropy instead of written in each of their loops.
"""

import math

import numpy as np

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


def sqrt(x):
    """The square root, nan for a negative x (math.sqrt raises there; compiled code gives nan)."""
    if x >= 0:
        return math.sqrt(x)
    return math.nan  # negative, or NaN


def pow(x, p):  # noqa: A001 - the math name; loopnet.scalar.pow, not the builtin
    """x^p with the answers compiled code gives where math.pow raises: inf for 0 to a
    negative power, nan for a negative x to a non-integer power, +-inf on overflow."""
    if x == 0 and p < 0:
        return math.inf
    if x < 0 and math.isfinite(x) and math.isfinite(p) and p != math.floor(p):
        return math.nan
    if x != 0 and math.isfinite(x) and p * math.log(abs(x)) > _EXP_OVERFLOW:
        return -math.inf if x < 0 and math.isfinite(p) and p % 2 == 1 else math.inf  # odd powers keep the sign
    return math.pow(x, p)


def div(a, b):
    """a / b with IEEE's answers at b = 0 (inf with the signs' product, nan for 0/0), where
    Python raises ZeroDivisionError and compiled code returns them."""
    if b != 0:
        return a / b
    if a == 0 or a != a:  # 0/0, or nan/0
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


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


def zero64():
    """A float64 zero to start a sum over many terms: adding float32 terms to it gives
    float64 on every backend (NumPy promotes float64 + float32; Numba and CUDA alike), so a
    long float32 sum does not drift. (A plain 0.0 would not do on the Python backend: under
    NumPy's promotion rules, 0.0 + a float32 stays float32.)"""
    return np.float64(0.0)


def row_max(x, r):
    """The largest element of row r of the 2-D array x: the log-sum-exp trick's shift."""
    top = x[r, 0]
    for k in range(1, x.shape[1]):
        if x[r, k] > top:
            top = x[r, k]
    return top


def row_sum_exp(x, r, shift):
    """sum_k e^(x[r,k] - shift) over row r of x, accumulated in float64. With shift =
    row_max(x, r) every exponent is <= 0, so nothing overflows: ln of the result plus
    the shift is ln sum_k e^(x[r,k]) (log-sum-exp)."""
    total = zero64()  # float64 whatever x's dtype, as every sum in loopnet's reductions
    for k in range(x.shape[1]):
        total += exp(x[r, k] - shift)
    return total


HELPERS = (exp, log, log1p, sqrt, pow, div, sigmoid, softplus, zero64, row_max, row_sum_exp)
