"""Replay a training step: its forward and backward launches, recorded once, run again.

On a small network a step is mostly Python deciding what to launch. The digits MLP
(64-64-10, batch 32, numba) spent about 200 us per step, of which calling its 17 forward
and backward drivers directly takes about 55: the rest is walking the graph, checking
shapes and dtypes, and choosing drivers, the same decisions every step.

So, as CUDA graphs do for GPU launches: the first step for given leaf shapes runs as
usual while every launch (body, grid, arrays) and every fill is written down. Later steps
with the same shapes copy their new data into the recorded arrays and make the recorded
launches again, in the same order: the same loops on the same arrays, so the same
numbers (the tests hold replayed training to step-by-step training, bit for bit). Each
op's value checks (a label out of range) still run before every replayed step.

    step = Replay(model.loss)
    for x, y in batches:
        model.set_batch(x, y)
        loss = step()                # forward and backward; the loss as a float
        optimizer.step()

Replay is for the numba backend. On the python backend a step runs as written, so a
breakpoint in an op's loop stops every step. On cuda it also runs as written: replaying
would need device-to-device copies of new data, and there has been no GPU to measure on.
A graph holding an op whose forward does host-side work that a recording cannot repeat
(dropout draws a new mask each step; batch_norm switches statistics with the mode) is
never replayed: such ops say `replayable = False`.
"""

import functools

import numpy as np

from loopnet.backends import current_backend
from loopnet.graph import _stamp, backward, forward, topological_order
from loopnet.op import Op


class Replay:
    """forward and backward of `loss`, recorded once per set of leaf shapes and replayed."""

    def __init__(self, loss):
        self.loss = loss
        self.order = topological_order(loss)
        self.leaves = [n for n in self.order if n.op is None]
        self.checked = [n for n in self.order if n.op is not None and type(n.op).validate is not Op.validate]
        blocking = [n for n in self.order if n.op is not None and not n.op.replayable]
        self.refusal = (f"{blocking[0].name!r} ({blocking[0].op_name}) does host-side work each step"
                        if blocking else None)
        self.recordings = {}  # leaf shapes and dtypes -> _Recording

    def __call__(self):
        """Run forward and backward of the loss (replayed where possible); return the loss."""
        backend = current_backend()
        if backend.name != "numba" or self.refusal:
            value = float(forward(self.loss))
            backward(self.loss)
            return value
        key = tuple((leaf.shape, leaf.dtype) for leaf in self.leaves)
        recording = self.recordings.get(key)
        if recording is None:
            self.recordings[key] = _Recording(self, backend)
        else:
            recording.run(self, backend)
        return float(self.loss._value)


class _Recording:
    """One step's launches, fills and value checks, in order, and the arrays each node had."""

    def __init__(self, replay, backend):
        given = {leaf: leaf._value for leaf in replay.leaves if not leaf.requires_grad}
        for leaf in given:  # data and labels: private arrays, which each replay overwrites
            leaf._value = np.array(backend.adopt(leaf._value))
        self.private = {leaf: leaf._value for leaf in given}
        self.steps, self.calls = [], None
        real_loop, real_fill, real_zeros = backend.loop, backend.fill, backend.zeros

        def loop(body, grid, args):
            self.steps.append(("loop", body, tuple(grid), tuple(args)))
            real_loop(body, grid, args)

        def fill(array, value):
            self.steps.append(("fill", array.fill, (value,)))
            real_fill(array, value)

        def zeros(shape, dtype):  # a zeroed scratch array is zeroed again each replay
            array = real_zeros(shape, dtype)
            self.steps.append(("fill", array.fill, (0,)))
            return array

        ops = {id(node.op): node.op for node in replay.checked}.values()
        for op in ops:  # each check is made where a plain forward makes it: before the op's loops
            op.validate = self._check(op.validate)
        backend.loop, backend.fill, backend.zeros = loop, fill, zeros
        try:
            forward(replay.loss)
            backward(replay.loss)
        finally:
            backend.loop, backend.fill, backend.zeros = real_loop, real_fill, real_zeros
            for op in ops:
                del op.validate
            for leaf, array in given.items():  # the caller's arrays stay theirs
                leaf._value = array
        self.arrays = [(n, n._value, n._grad, n.shape, n.dtype) for n in replay.order if n not in given]
        self.computed = [n for n in replay.order if n.op is not None]

    def _check(self, validate):
        def recorded(*nodes):
            self.steps.append(("check", validate, nodes))
            validate(*nodes)
        return recorded

    def _direct_calls(self, backend):
        """The recorded steps as calls with their arguments bound, each loop its compiled driver; None
        while some grid's serial or parallel choice is not settled yet."""
        calls = []
        for kind, what, *rest in self.steps:
            if kind == "loop":
                drive = backend.settled_launcher(what, rest[0])
                if drive is None:
                    return None
                calls.append(functools.partial(drive, *rest[0], *rest[1]))
            else:
                calls.append(functools.partial(what, *rest[0]))
        return calls

    def run(self, replay, backend):
        for leaf, array in self.private.items():  # new data into the recorded arrays
            np.copyto(array, backend.adopt(leaf._value))
        for node, value, grad, shape, dtype in self.arrays:
            if node._value is value and node._grad is grad:
                continue  # (as after the last replay: most steps)
            if node.op is None and node._value is not value:  # a parameter given a new array
                np.copyto(value, backend.adopt(node._value))
            node._value, node._grad, node.shape, node.dtype = value, grad, shape, dtype
        if self.calls is None:  # launches go through the backend until it has settled each
            direct = self._direct_calls(backend)  # grid's serial or parallel choice, and once more
            for kind, what, *rest in self.steps:  # after: that launch loads or compiles the settled
                if kind == "loop":  # kernel with the backend's error handling. Then directly
                    backend.loop(what, *rest)
                else:
                    what(*rest[0])
            self.calls = direct  # (a check that failed leaves it unset)
        else:
            for call in self.calls:
                call()
        stamp = _stamp()
        for node in self.computed:
            node._evaluated_at = stamp
