"""`ln.derive(statement)`: the backward loops of a forward statement (loopnet/derivation.py
derives them by the rule deck 003's loops follow), and a runnable op whose loop bodies are written out as
Python from the derivation.

For `ln.derive("Y[n,m] = b[m] + sum_d X[n,d] * W[d,m]")` the generated source is

    def forward(n, m, b, X, W, Y):
        acc = scalar.zero64()
        for d in range(X.shape[1]):
            acc += X[n, d] * W[d, m]
        Y[n, m] = b[m] + acc

    def grad_b(m, b, X, W, dY, db):
        acc = scalar.zero64()
        for n in range(dY.shape[0]):
            acc += dY[n, m]
        db[m] += acc
    ...

one body per loop, in the shape every op file's bodies have (a grid over the elements it
writes, a sum inside), so the python backend steps through them (the source is registered
with linecache, so pdb and inspect show it), and numba and cuda compile them like any op's.
Each gradient body takes every input's value, the upstream gradient and the gradient it
writes, then the strides. A read at a shifted or divided position is guarded by an `if`:
positions outside the array, or between the strides, read as zero.

The output's shape comes from the inputs: an output index that some input has as a plain
axis takes that axis's length; one read only at h*sh+i takes the positions that fit
(h*sh + i < X's length for every i: a "valid" convolution, as conv2d without padding).
"""

import itertools
import linecache
import operator

from loopnet.derivation import FUNCTIONS, DeriveError, Derivation, terms
from loopnet.loops import flat, loop, scratch
from loopnet.op import Op

_counter = itertools.count(1)
_generated = {}  # source -> namespace: one compile per distinct op in a process


def index_code(expression):
    """Python for one index position, and the guard it needs (None for a plain name)."""
    parts = []
    for sign, name, scale in terms(expression):
        term = f"{name} * {scale}" if scale else name
        parts.append(term if not parts and sign == "+" else f"{sign} {term}")
    total = " ".join(parts)
    divisor = next((name for op, name in expression if op == "/"), None)
    if len(expression) == 1:
        return total, []
    negative = any(sign == "-" for sign, _, _ in terms(expression))
    if divisor:
        return f"({total}) // {divisor}", [f"{total} >= 0", f"({total}) % {divisor} == 0"]
    return total, [f"{total} >= 0"] if negative else []


def read(access, guards):
    """'X[n, c, h * sh + i]', adding to `guards` (one condition per position) what keeps
    each position inside X."""
    codes = []
    for axis, expression in enumerate(access.index):
        code, needs = index_code(expression)
        codes.append(code)
        if len(expression) > 1:
            guards.append(" and ".join(needs + [f"{code} < {access.name}.shape[{axis}]"]))
    return f"{access.name}[{', '.join(codes) or '0'}]"  # a 0-d array runs as a 1-element one


def extent(statement, name, upstream=None):
    """'X.shape[1]': an array axis that index `name` runs over alone."""
    arrays = ([upstream] if upstream else [statement.out]) + list(statement.inputs)
    for access in arrays:
        axis = access.bare(name)
        if axis is not None:
            return f"{access.name}.shape[{axis}]"
    raise DeriveError(f"cannot run {statement.text!r}: no array has {name} as a plain index, so its range is unknown")


def summing(lines, statement, summed, product, guards, upstream=None):
    """The loops over `summed` around `acc += product`, guarded where a read may fall off."""
    depth = 1
    for name in summed:
        lines.append("    " * depth + f"for {name} in range({extent(statement, name, upstream)}):")
        depth += 1
    for guard in guards:  # a position outside the array (or between strides) reads as zero
        lines.append("    " * depth + f"if {guard}:")
        depth += 1
    lines.append("    " * depth + f"acc += {product}")


def forward_source(s, names, scalars):
    grid = [e[0][1] for e in s.out.index]
    target = s.pre if s.function else s.out.name
    args = grid + names + [s.out.name] + ([s.pre] if s.function else []) + scalars
    guards = []
    product = f"{read(s.a, guards)} * {read(s.b, guards)}"
    lines = [f"def forward({', '.join(args)}):", "    acc = scalar.zero64()  # a sum accumulates in float64"]
    summing(lines, s, s.summed, product, guards)
    at = f"[{', '.join(grid) or '0'}]"
    added = f"{s.init.name}[{', '.join(e[0][1] for e in s.init.index) or '0'}] + " if s.init is not None else ""
    lines.append(f"    {target}{at} = {added}acc")
    if s.function:
        lines.append(f"    {s.out.name}{at} = {FUNCTIONS[s.function][0].format(u=f'{s.pre}{at}')}")
    return lines


def gradient_source(s, name, gradient, names, scalars):
    grid = [e[0][1] for e in gradient.grad.index]
    up = gradient.upstream
    args = grid + names + [up.name, gradient.grad.name] + scalars
    guards = []
    product = read(up, guards)
    if gradient.other is not None:
        product += f" * {read(gradient.other, guards)}"
    lines = [f"def grad_{name}({', '.join(args)}):", "    acc = scalar.zero64()"]
    upstream_access = type(up)(up.name, s.out.index)
    summing(lines, s, gradient.summed, product, guards, upstream_access)
    lines.append(f"    {gradient.grad.name}[{', '.join(grid) or '0'}] += acc")
    return lines


def source_of(derivation):
    """The Python source of every loop body of the derived op."""
    s, names = derivation.statement, list(derivation.inputs)
    scalars = list(s.scalars)
    uses_math = s.function is not None and "math." in "".join(FUNCTIONS[s.function][:2])
    lines = [f"# Generated by loopnet.derive from: {derivation.declared.text}", *(["import math"] if uses_math else []),
             "from loopnet import scalar", "", ""]
    lines += forward_source(s, names, scalars) + ["", ""]
    if s.function:
        grid = [e[0][1] for e in s.out.index]
        at = f"[{', '.join(grid) or '0'}]"
        lines += [f"def grad_{s.pre}({', '.join(grid + [s.pre, 'd' + s.out.name, 'd' + s.pre])}):",
                  f"    pre = {s.pre}{at}",
                  f"    d{s.pre}{at} = d{s.out.name}{at} * ({FUNCTIONS[s.function][1].format(u='pre')})", "", ""]
    for name, gradient in derivation.gradients.items():
        lines += gradient_source(s, name, gradient, names, scalars) + ["", ""]
    return "\n".join(lines[:-2]) + "\n"


def compiled(source):
    """Run the generated source once per process; pdb and inspect find it through linecache."""
    if source not in _generated:
        filename = f"<loopnet.derive {next(_counter)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {"__name__": f"loopnet_derived_{len(_generated) + 1}"}
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own generated loops
        _generated[source] = namespace
    return _generated[source]


def sized_by(expression, sizes):
    """The name an input's position `expression` (like h*sh+i) gives a length to: the one
    name it has whose length is unknown while the others' are known; None otherwise."""
    found = terms(expression)
    if len(found) < 2 or any(sign != "+" for sign, _, _ in found) or any(op == "/" for op, _ in expression):
        return None
    unknown = [name for _, name, _ in found if name not in sizes]
    return unknown[0] if len(unknown) == 1 else None


def check_runnable(s):
    """Refuse, at derive time, an op whose output shape or loop ranges the inputs cannot give."""
    sized = {name for access in s.inputs for e in access.index if len(e) == 1 for _, name in e}
    grew = True
    while grew:
        grew = False
        for access in s.inputs:
            for expression in access.index:
                name = sized_by(expression, sized)
                if name is not None:
                    sized.add(name)
                    grew = True
    missing = [name for name in s.loops if name not in sized]
    if missing:
        raise DeriveError(f"cannot run {s.text!r}: the inputs do not give the range of {', '.join(missing)} "
                          f"(an index needs a plain axis of an input, or a position like h+i whose other names "
                          f"are known)")
    for name in s.summed:
        if not any(access.bare(name) is not None for access in s.inputs):
            raise DeriveError(f"cannot run {s.text!r}: the summed index {name} is no input's plain axis, so its "
                              f"range is unknown")


def output_shape(op, nodes):
    """The output's shape from the inputs' (see the module's docstring), or a ShapeError."""
    s, scalars, sizes = op.made.derivation.statement, op.scalars, {}
    for access, node in zip(s.inputs, nodes):
        if len(node.shape) != len(access.index):
            raise op.shape_error(nodes, f"{access.text()} has {len(access.index)} axes, but "
                                        f"{access.name}={node.name!r} has {len(node.shape)}")
        for axis, expression in enumerate(access.index):
            if len(expression) == 1:
                name, length = expression[0][1], node.shape[axis]
                if name in sizes and sizes[name][0] != length:
                    raise op.shape_error(nodes, f"index {name} runs over {sizes[name][0]} in {sizes[name][1]} "
                                                f"but over {length} in {access.text()}")
                sizes[name] = (length, access.text())
    grew = True
    while grew:
        grew = False
        for access, node in zip(s.inputs, nodes):
            for axis, expression in enumerate(access.index):
                name = sized_by(expression, sizes)
                if name is None:
                    continue
                reach = sum(scalars.get(scale, 1) * (sizes[other][0] - 1)
                            for _, other, scale in terms(expression) if other != name)
                scale = next(scalars.get(sc, 1) for _, n, sc in terms(expression) if n == name)
                length = (node.shape[axis] - 1 - reach) // scale + 1
                if length < 1:
                    raise op.shape_error(nodes, f"{access.text()}: {access.name}'s axis {axis} has "
                                                f"{node.shape[axis]} positions, too few for one {name}")
                sizes[name], grew = (length, access.text()), True
    return tuple(sizes[e[0][1]][0] for e in s.out.index)


def runs(array):
    """A 0-d array as a 1-element view (its loops index it [0]); any other as it is."""
    return flat(array) if array.ndim == 0 else array


class Applied(Op):
    """The op of one node made by a derived op (each node gets its own, as with every op)."""

    name = "derived"

    def __init__(self, made, scalars):
        self.made, self.scalars = made, scalars
        self.inputs = made.derivation.inputs
        self.pre = None  # the sum before the function (deck 003's U), kept for backward

    def shape(self, *nodes):
        return output_shape(self, nodes)

    def strides(self):
        return [self.scalars[name] for name in self.made.derivation.statement.scalars]

    def forward(self, out, *nodes):
        s = self.made.derivation.statement
        keep = []
        if s.function:
            self.pre = scratch(out.shape, out.dtype)
            keep = [self.pre]
        loop(self.made.forward_body, out.shape, *(runs(n.value) for n in nodes), runs(out.value),
             *map(runs, keep), *self.strides())

    def backward(self, out, *nodes):
        upstream = out.grad
        if self.made.derivation.statement.function:
            upstream = scratch(out.shape, out.dtype)  # dU = dY * f'(U), then the product rule with dU
            loop(self.made.pre_body, out.shape, runs(self.pre), runs(out.grad), runs(upstream))
        for role, node in zip(self.inputs, nodes):
            if node.requires_grad:
                loop(self.made.grad_bodies[role], node.shape, *(runs(n.value) for n in nodes), runs(upstream),
                     runs(node.grad), *self.strides())


class DerivedOp:
    """A derivation's op: `source` (the generated bodies), `forward_body`,
    `grad_bodies` ({input: body}), and `apply` to make a node."""

    def __init__(self, derivation):
        s = derivation.statement
        check_runnable(s)
        self.derivation = derivation
        self.source = source_of(derivation)
        namespace = compiled(self.source)
        self.forward_body = namespace["forward"]
        self.pre_body = namespace[f"grad_{s.pre}"] if s.function else None
        self.grad_bodies = {name: namespace[f"grad_{name}"] for name in derivation.inputs}

    def apply(self, nodes, named=None, name=None):
        """A node of this op: inputs by position or by name, strides by name (sh=2)."""
        s, named, inputs = self.derivation.statement, dict(named or {}), self.derivation.inputs
        twice = [role for role in inputs[:len(nodes)] if role in named]
        if twice:
            raise TypeError(f"derived op {s.text!r}: input {twice[0]} given twice, by position and by name")
        nodes = list(nodes) + [named.pop(role) for role in inputs[len(nodes):] if role in named]
        extra = set(named) - set(s.scalars)
        copies = {c: o for c, o in self.derivation.copies.items() if c in extra}
        if copies:
            copy, original = next(iter(copies.items()))
            raise TypeError(f"derived op {s.text!r} reads {copy} as the transposed copy of {original} (loopnet's "
                            f"naming): pass {original} itself, or derive with transposed=None to take {copy} as it is")
        if extra:
            raise TypeError(f"derived op {s.text!r} has no input or stride named {', '.join(sorted(extra))}; "
                            f"its inputs are {', '.join(inputs)}"
                            + (f" and its strides {', '.join(s.scalars)}" if s.scalars else ""))
        strides = {stride: whole(s, stride, named.get(stride)) for stride in s.scalars}
        return Applied(self, strides).apply(tuple(nodes), name)


def whole(s, stride, value):
    """A stride as a Python int >= 1 (NumPy's integers too), or a one-line refusal."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < 1:
        raise DeriveError(f"derived op {s.text!r} needs the stride {stride} as a whole number >= 1 ({stride}=2), "
                          f"got {value!r}")
    return number


class Derived(Derivation):
    """A derivation with its op: `op` (a DerivedOp, made on first use) and calling it."""

    _op = None

    @property
    def op(self):
        """The runnable op: forward and backward loop bodies generated from this derivation."""
        if self._op is None:
            self._op = DerivedOp(self)
        return self._op

    def __call__(self, *nodes, name=None, **named):
        """Apply the derived op: `derive("C[i,j] = sum_k A[i,k] * B[k,j]")(A, B)` is a node.
        Inputs go by position or by name, strides by name: `d(X, W, b, sh=2, sw=2)`."""
        return self.op.apply(nodes, named, name)


def derive(statement, transposed="auto"):
    """The backward loops of a forward statement, by the rule deck 003's loops follow (loopnet/derivation.py).

        d = ln.derive("Y[n,m] = b[m] + sum_d X[n,d] * W[d,m]")
        print(d)                     # each gradient loop, in the slide's notation and gather form
        print(d.op.source)           # the generated loop bodies, plain Python to read and step through
        y = d(X, W, b)               # a node: the derived op, on every backend

    `transposed`: which inputs are transposed copies (last two axes swapped) of an op's own
    input: "auto" reads loopnet's naming (WT for W), a dict names them ({"WT": "W"}), None
    takes every array as it is."""
    return Derived(statement, transposed)
