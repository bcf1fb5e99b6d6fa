"""Storage in host memory: NumPy arrays. The storage half of the backend protocol
(see loopnet/backends/__init__.py), shared by the python and numba backends, whose loops
both read and write NumPy arrays in place."""

import numpy as np


def empty(shape, dtype):
    return np.empty(shape, dtype)


def zeros(shape, dtype):
    return np.zeros(shape, dtype)


def owns(array):
    """True for an array this backend's loops can use as it is."""
    return isinstance(array, np.ndarray)


def adopt(array):
    """This backend's array for data from anywhere: a NumPy array as it is (no copy), a
    device array copied back to the host."""
    return array if isinstance(array, np.ndarray) else array.copy_to_host()


def to_host(array):
    """A NumPy array of the same values, for a person or a file to read."""
    return adopt(array)


def fill(array, value):
    array.fill(value)
