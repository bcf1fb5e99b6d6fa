"""sigmoid, tanh, relu, leaky_relu: the lectures' nonlinearities, elementwise.

    forward    for i:  y[i] = f(x[i])
    backward   for i:  dx[i] += dy[i] * f'(x[i])

    sigmoid:     f = 1 / (1 + e^-x)        f' = y (1 - y)
    tanh:        f = tanh x                f' = 1 - y^2
    relu:        f = max(x, 0)             f' = 1 if x > 0 else 0   (0 at x = 0, as PyTorch)
    leaky_relu:  f = x if x > 0 else a x   f' = 1 if x > 0 else a   (a at x = 0, as PyTorch)

sigmoid never overflows: `scalar.sigmoid` uses e^x / (1 + e^x) for x < 0, whose e^x
cannot overflow, instead of 1 / (1 + e^-x), whose e^-x would for x = -1000.
"""

import math

from loopnet import scalar
from loopnet.op import Elementwise


def sigmoid_forward(i, x, y):
    y[i] = scalar.sigmoid(x[i])


def sigmoid_grad_x(i, x, y, dy, dx):
    dx[i] += dy[i] * y[i] * (1 - y[i])


def tanh_forward(i, x, y):
    y[i] = math.tanh(x[i])


def tanh_grad_x(i, x, y, dy, dx):
    dx[i] += dy[i] * (1 - y[i] * y[i])


def relu_forward(i, x, y):
    # `x < 0` rather than `x > 0` so that relu(nan) stays nan instead of hiding it
    y[i] = 0 if x[i] < 0 else x[i]


def relu_grad_x(i, x, y, dy, dx):
    if x[i] > 0:
        dx[i] += dy[i]


def leaky_relu_forward(i, x, y, alpha):
    y[i] = x[i] if x[i] > 0 else alpha * x[i]


def leaky_relu_grad_x(i, x, y, dy, dx, alpha):
    dx[i] += dy[i] if x[i] > 0 else alpha * dy[i]


class Sigmoid(Elementwise):
    name = "sigmoid"
    forward_body, grad_x_body = sigmoid_forward, sigmoid_grad_x


class Tanh(Elementwise):
    name = "tanh"
    forward_body, grad_x_body = tanh_forward, tanh_grad_x


class Relu(Elementwise):
    name = "relu"
    forward_body, grad_x_body = relu_forward, relu_grad_x


class LeakyRelu(Elementwise):
    name = "leaky_relu"
    forward_body, grad_x_body = leaky_relu_forward, leaky_relu_grad_x


def sigmoid(x, name=None):
    """1 / (1 + e^-x), elementwise, stable for any |x|."""
    return Sigmoid().apply((x,), name)


def tanh(x, name=None):
    """tanh x, elementwise."""
    return Tanh().apply((x,), name)


def relu(x, name=None):
    """max(x, 0), elementwise; gradient 0 at x = 0."""
    return Relu().apply((x,), name)


def leaky_relu(x, alpha=0.01, name=None):
    """x if x > 0 else alpha * x, elementwise; gradient alpha at x = 0.

    alpha defaults to PyTorch's 0.01; deck 003's 'Activation Functions' gives leaky ReLU as max(0.1x, x): alpha=0.1."""
    return LeakyRelu(float(alpha)).apply((x,), name)
