"""Declared schedules: how a compiled backend may run a loop faster, without a second copy.

A contraction body says in one line what it computes:

    @contraction("Y[n,m] = b[m] + sum_d X[n,d] * WT[m,d]")
    def affine_forward(n, m, X, WT, b, Y):
        acc = scalar.zero64()
        for d in range(X.shape[1]):
            acc += X[n, d] * WT[m, d]
        Y[n, m] = b[m] + acc

The body stays the definition: the Python backend runs it as it is, and every backend runs
it wherever a schedule does not apply. The declaration lets the compiled backends
reorganise the same sum:

- Numba computes a 4 x 3 block of outputs per step with twelve accumulators in
  registers: seven loads per twelve multiply-adds instead of two loads per one. Blocks
  that would run past an edge call the body. (4 x 4 blocks landed first, at 1.2-1.7x over
  the body's loop; 4 x 3, which fits AVX2's sixteen vector registers where 4 x 4 spills,
  gained 1.4x more on matmul 1024 and 1.25x on deck 000's 784-500-10 MNIST step.) This needs the plain two-index form below (matmul, affine).
- CUDA runs 16 x 16 output tiles whose operands are staged through shared memory, so
  each element is read from device memory once per tile rather than once per output.
  Any declared form works, convolutions and batched products included.

The equality tests hold every scheduled kernel to the body on shapes with interior blocks
and ragged edges.

A body that reads an array down a column (a transposed copy: `AT[j,i] = A[i,j]`) may say
so instead, with `@tiles(8, "A")`: where A's rows lie a multiple of 1 KiB apart, a
column's elements share a few cache sets and evict one another before the next column
comes back to the same lines, so Numba walks the grid in 8 x 8 tiles there (1024 x 1024
float32, measured: 2.4-3.0 ms in grid order, 0.73-0.77 in tiles; a 512 x 784, whose rows
lie 3136 bytes apart, was faster in grid order: 95 us against 210 in tiles). Each grid
point still owns its writes, so the order cannot change the answer. The other backends
run the grid as they always do.

The form: an output, an optional addend, and one sum of products of two arrays,

    OUT[o1,o2,...] (= | +=) [INIT[...] +] sum_{k1,k2,...} A[e1,e2,...] * B[e1,e2,...]

where OUT's indices are distinct names, INIT's are some of OUT's, and each index of A and
B is a name or `name + name` / `name - name` (a convolution's shifted window). A name may
carry a scale, `h*sh + i`, and a whole index may be divided exactly, `(h-i)/sh`, where sh
is a scalar argument of the body after its arrays (a stride). An index position outside
its array's bounds, or a division with a remainder, reads as zero, which is how a
convolution's gradient with respect to its input skips the window positions that fall off
the edge or between the strides:

    dX[n,c,h,w] += sum_{co,i,j} dO[n,co,h-i,w-j] * W[co,c,i,j]
    dX[n,c,h,w] += sum_{co,i,j} dO[n,co,(h-i)/sh,(w-j)/sw] * W[co,c,i,j]      (stride sh, sw)

Read as a matrix product, OUT's indices that A and B both use are batch indices (one
product per value), those only A uses are its rows, those only B uses its columns. The
plain form, the one Numba tiles, is `OUT[i,j] (=|+=) [INIT[j] +] sum_k A[i,k] * B[j,k]`.

A body's grid may be coarser than OUT (conv2d's forward owns whole output planes): the
declaration states what the kernel computes as a whole, and the compiled backends that
use it launch over OUT's elements themselves.
"""

import inspect
import re
from dataclasses import dataclass

from loopnet.errors import LoopnetError


class ScheduleError(LoopnetError, ValueError):
    """A declared schedule that does not parse, or does not fit its body."""


@dataclass(frozen=True)
class Contraction:
    out: str
    out_index: tuple  # names
    a: str
    a_index: tuple  # expressions: tuples of (operator, name), read left to right:
    #   h+i      (("+", "h"), ("+", "i"))
    #   h*sh+i   (("+", "h"), ("*", "sh"), ("+", "i"))   a "*" scales the name before it
    #   (h-i)/sh (("+", "h"), ("-", "i"), ("/", "sh"))   a "/" (last) divides the whole sum
    b: str
    b_index: tuple
    init: str  # None when there is no addend
    init_index: tuple
    summed: tuple  # names
    accumulate: bool  # `+=` (a gradient) or `=` (a value)
    spec: str

    @property
    def batch(self):
        """OUT's indices that A and B both use: one product per value."""
        return tuple(n for n in self.out_index if n in _names(self.a_index) and n in _names(self.b_index))

    @property
    def rows(self):
        """OUT's indices that only A uses."""
        return tuple(n for n in self.out_index if n in _names(self.a_index) and n not in _names(self.b_index))

    @property
    def cols(self):
        """OUT's indices that only B uses."""
        return tuple(n for n in self.out_index if n in _names(self.b_index) and n not in _names(self.a_index))

    @property
    def plain(self):
        """The two-index form OUT[i,j] (=|+=) [INIT[j] +] sum_k A[i,k] * B[j,k]."""
        if len(self.out_index) != 2 or len(self.summed) != 1:
            return False
        (i, j), k = self.out_index, self.summed[0]
        return (self.a_index == _bare(i, k) and self.b_index == _bare(j, k)
                and (self.init is None or self.init_index == (j,)))

    def extent(self, name):
        """(array, axis) whose length is the range of index `name`: OUT's axis for an
        output index; for a summed index, an axis of A or B that it indexes alone."""
        if name in self.out_index:
            return self.out, self.out_index.index(name)
        for array, index in ((self.a, self.a_index), (self.b, self.b_index)):
            for axis, expression in enumerate(index):
                if expression == (("+", name),):
                    return array, axis
        return None

    @property
    def scalars(self):
        """The body's scalar arguments that scale or divide an index (strides)."""
        return tuple(sorted({name for e in self.a_index + self.b_index for op, name in e if op in "*/"}))

    def arrays(self):
        return tuple(name for name in (self.out, self.a, self.b, self.init) if name is not None)

    def positions(self, body):
        """Where OUT, A, B and INIT sit among the body's arguments after its grid."""
        names = list(inspect.signature(body).parameters)[len(grid_of(body)):]
        return {role: names.index(name) for role, name in
                (("out", self.out), ("a", self.a), ("b", self.b), ("init", self.init)) if name is not None}


def grid_of(body, declared=None):
    """A declared body's grid indices: its arguments before the first array the
    declaration names."""
    params = list(inspect.signature(body).parameters)
    arrays = (declared or body.contraction).arrays()
    return params[:next(n for n, p in enumerate(params) if p in arrays)]


def _names(index):
    return {name for expression in index for op, name in expression if op in "+-"}


def _bare(*names):
    return tuple((("+", name),) for name in names)


_ARRAY = r"(\w+)\[([^\]]*)\]"
_FORM = re.compile(
    rf"^\s*{_ARRAY}\s*(\+?=)\s*(?:{_ARRAY}\s*\+\s*)?sum_(\w+|\{{[^}}]*\}})\s+{_ARRAY}\s*\*\s*{_ARRAY}\s*$"
)
_TERM = re.compile(r"\s*([+-]?)\s*(\w+)\s*(?:\*\s*(\w+)\s*)?")  # [+-] name [* scale]
_DIVIDED = re.compile(r"\s*\((.*)\)\s*/\s*(\w+)\s*$")  # (terms) / divisor


def read_index(text, spec):
    """'n, h*sh+i, (h-i)/sh' -> ((('+','n'),), (('+','h'),('*','sh'),('+','i')), (('+','h'),('-','i'),('/','sh')))."""
    index = []
    for part in text.split(","):
        divided = _DIVIDED.match(part)
        part, terms, at = (divided.group(1) if divided else part).strip(), [], 0
        while at < len(part):
            match = _TERM.match(part, at)
            if not match or (terms and not match.group(1)) or (not terms and match.group(1) == "-"):
                break
            terms.append((match.group(1) or "+", match.group(2)))
            if match.group(3):
                terms.append(("*", match.group(3)))
            at = match.end()
        if at < len(part) or not 1 <= len(_names([terms])) <= 2:
            raise ScheduleError(f"cannot read the index {part!r} in {spec!r}: use a name, name + name or name - name; "
                                f"a name may be scaled (h*sh + i), a whole index divided ((h-i)/sh)")
        index.append(tuple(terms) + ((("/", divided.group(2)),) if divided else ()))
    return tuple(index)


def parse(spec):
    """Read a declaration (the form is in the module's docstring) into a Contraction."""
    match = _FORM.match(spec)
    if not match:
        raise ScheduleError(f"cannot read the contraction {spec!r}; the form is "
                            f"OUT[i,j] = [INIT[j] +] sum_k A[i,k] * B[j,k] (see loopnet.schedule)")
    out, out_text, op, init, init_text, summed_text, a, a_text, b, b_text = match.groups()
    out_index, a_index, b_index = read_index(out_text, spec), read_index(a_text, spec), read_index(b_text, spec)
    init_index = read_index(init_text, spec) if init else ()
    summed = tuple(name.strip() for name in summed_text.strip("{}").split(","))
    if any(len(e) != 1 or e[0][0] != "+" for e in out_index + init_index):
        raise ScheduleError(f"in {spec!r} OUT and INIT are indexed by plain names")
    out_index, init_index = tuple(e[0][1] for e in out_index), tuple(e[0][1] for e in init_index)
    if len(set(out_index)) != len(out_index) or len(set(summed)) != len(summed) or set(out_index) & set(summed):
        raise ScheduleError(f"in {spec!r} OUT's indices and the summed ones must be distinct names")
    used = _names(a_index) | _names(b_index)
    unknown = used - set(out_index) - set(summed)
    if unknown or not set(init_index) <= set(out_index):
        raise ScheduleError(f"in {spec!r} the indices must be OUT's or summed ones; unknown: "
                            f"{sorted(unknown | (set(init_index) - set(out_index)))}")
    unused = (set(out_index) | set(summed)) - used
    if unused:
        raise ScheduleError(f"in {spec!r} the indices must be used by A or B; unused: {sorted(unused)}")
    contraction = Contraction(out, out_index, a, a_index, b, b_index, init, init_index, summed, op == "+=", spec)
    indices = set(contraction.scalars) & (set(out_index) | set(summed) | set(contraction.arrays()))
    if indices:
        raise ScheduleError(f"in {spec!r} a scale or divisor must be a scalar argument of the body (a stride), "
                            f"not an index or an array: {sorted(indices)}")
    for name in summed:
        if contraction.extent(name) is None:
            raise ScheduleError(f"in {spec!r} the summed index {name!r} must index an axis of A or B alone, "
                                f"which gives its range")
    return contraction


def contraction(spec):
    """Declare the sum a body computes (see this module's docstring for the form)."""
    declared = parse(spec)

    def declare(body):
        params = list(inspect.signature(body).parameters)
        for name in declared.arrays() + declared.scalars:
            if name not in params:
                raise ScheduleError(f"{body.__name__} has no argument {name!r} named in {spec!r}")
        grid = grid_of(body, declared)
        if not set(grid) <= set(declared.out_index):
            raise ScheduleError(f"{body.__name__}: the grid indices are {grid}, which must be among "
                                f"OUT's indices {list(declared.out_index)} in {spec!r}")
        if declared.plain and grid != list(declared.out_index):
            raise ScheduleError(f"{body.__name__}: the grid indices are {grid}, the contraction says "
                                f"{list(declared.out_index)}")
        body.contraction = declared
        return body

    return declare


@dataclass(frozen=True)
class Tiles:
    size: int  # the side of a square tile of grid points
    array: str  # the argument the body reads down a column


def tiles(size, array):
    """Declare that a two-index body reads `array` down a column, so a compiled backend may
    run its grid in size x size tiles (see this module's docstring)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 2:
        raise ScheduleError(f"a tile's side must be an integer of at least 2, not {size!r}")

    def declare(body):
        params = list(inspect.signature(body).parameters)
        if array not in params[2:]:
            raise ScheduleError(f"{body.__name__} has no array argument {array!r} after its two grid indices")
        body.tiles = Tiles(size, array)
        return body

    return declare
