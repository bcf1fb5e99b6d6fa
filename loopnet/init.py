"""Weight initialisation, as deck 000 recommends (b = 0, W ~ U[-1/sqrt(n), 1/sqrt(n)]), plus Xavier and He on request.

    default ("uniform")  b = 0,  W ~ U[-1/sqrt(n), 1/sqrt(n)]          (n = fan-in)
    "xavier"             b = 0,  W ~ U[-sqrt(6/(n + m)), sqrt(6/(n + m))]  (m = fan-out)
    "he"                 b = 0,  W ~ N(0, 2/n)                        (for ReLU layers)

The fan-in of an affine weight (D, M) is D; of a conv weight (C', C, kh, kw) it is
C kh kw, the number of inputs each output sums over.
"""

import numpy as np

from loopnet.errors import LoopnetError

SCHEMES = ("uniform", "xavier", "he")


def fans(shape):
    if len(shape) == 2:  # affine: (D, M)
        return shape[0], shape[1]
    if len(shape) == 4:  # conv: (C', C, kh, kw)
        receptive = shape[2] * shape[3]
        return shape[1] * receptive, shape[0] * receptive
    raise LoopnetError(f"no fan-in rule for a weight of shape {shape}")


def weight(shape, rng, scheme="uniform", dtype=np.float64):
    fan_in, fan_out = fans(shape)
    if scheme == "uniform":
        bound = 1 / np.sqrt(fan_in)
        values = rng.uniform(-bound, bound, shape)
    elif scheme == "xavier":
        bound = np.sqrt(6 / (fan_in + fan_out))
        values = rng.uniform(-bound, bound, shape)
    elif scheme == "he":
        values = rng.normal(0, np.sqrt(2 / fan_in), shape)
    else:
        raise LoopnetError(f"unknown initialisation {scheme!r}; choose one of: {', '.join(SCHEMES)}")
    return values.astype(dtype)
