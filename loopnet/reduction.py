"""Declared reductions: a body whose one loop adds terms into an accumulator.

sum, mean and every loss's mean run on a grid of one point: the whole sum is one output,
so the body loops over every element itself,

    @reduction
    def mse_loss_forward(a, b, L):
        acc = scalar.zero64()
        for i in range(a.shape[0]):
            d = a[i] - b[i]
            acc += d * d
        L[0] = acc / a.shape[0]

Run as written, that loop is serial on every backend: one CPU core, one GPU thread. The
`@reduction` line declares what the loop already shows: each pass only adds a term into
the accumulator (`acc += term` or `acc -= term`), so the terms may be added in any
grouping. The compiled backends then split the same loop, pasted from the body's source:

- Numba: chunks of CHUNK positions summed in parallel (prange), each chunk into its own
  float64 partial, then the partials in order. A sum shorter than two chunks calls the
  body itself, since starting threads costs more than it saves.
- CUDA: every thread of a block sums a strided share of the positions, and the block adds
  the shares in a shared-memory tree; thread 0 then runs the statements after the loop.
  One launch, as before, with every thread at work instead of one.

Neither writes a place two threads share: each chunk or thread owns its partial.

The Python backend runs the body as it is, one term at a time, so a breakpoint in the
loop stops as before. The equality tests hold each split loop to the body.

What the declaration requires of the body, checked when the op's module is imported:

- one top-level `for NAME in range(EXTENT):` loop, whose passes only add into one
  accumulator: `acc += ...` / `acc -= ...`, never reading it, writing no array, with no
  `break` or `return`;
- the accumulator starts at zero just before the loop (`scalar.zero64()`, `0.0`, `0` or
  `X.dtype.type(0)`), and the statements before it assign names only;
- names set inside the loop are not read after it, and the body uses no name that
  starts with `reduce_` (the split loop's own names).
"""

import ast
import builtins
import inspect
import textwrap
from dataclasses import dataclass

from loopnet.schedule import ScheduleError

_ZERO_STARTS = ("scalar.zero64()", "0.0", "0")


@dataclass(frozen=True)
class Reduction:
    """The body's pieces as source text, for the compiled backends to paste."""

    accumulator: str  # acc
    index: str  # i
    extent: str  # a.shape[0]
    start: str  # scalar.zero64()
    before: tuple  # statements before the accumulator starts (assignments to names)
    term: tuple  # the loop's statements, dedented to the body's level
    after: tuple  # the statements after the loop
    parameters: tuple  # the body's arguments, in order
    globals: tuple  # module-level names the pieces use (scalar, math): the driver imports them


def reduction(body):
    """Declare that `body`'s one loop only adds terms into an accumulator (see this
    module's docstring), so compiled backends may add them in parallel."""
    body.reduction = read(body)
    return body


def read(body):
    """The Reduction that `body`'s source holds, or a ScheduleError naming what does not fit."""
    try:
        source = textwrap.dedent(inspect.getsource(body))
    except (OSError, TypeError):
        raise _refuse(body, "its source cannot be read; define the body with def in a .py file") from None
    function = next((node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)), None)
    if function is None:
        raise _refuse(body, "a declared reduction is a function written with def, not a lambda")
    statements = [s for s in function.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    loops = [n for n, s in enumerate(statements) if isinstance(s, ast.For)]
    if len(loops) != 1:
        raise _refuse(body, f"a declared reduction has one top-level for loop; this body has {len(loops)}")
    at = loops[0]
    loop = statements[at]
    extent = _range_extent(body, loop)
    accumulator = _accumulator(body, loop)
    start = statements[at - 1] if at else None
    if not (isinstance(start, ast.Assign) and [_target(t) for t in start.targets] == [accumulator]
            and (ast.unparse(start.value) in _ZERO_STARTS or ast.unparse(start.value).endswith(".dtype.type(0)"))):
        raise _refuse(body, f"the accumulator {accumulator!r} must start at zero just before the loop "
                            f"({accumulator} = scalar.zero64(), 0.0, 0 or X.dtype.type(0))")
    before, after = statements[:at - 1], statements[at + 1:]
    _check_names(body, function, loop, accumulator, before, after)
    parameters = tuple(a.arg for a in function.args.args)
    pieces = [*before, start, loop, *after]
    return Reduction(accumulator, loop.target.id, ast.unparse(extent), ast.unparse(start.value),
                     tuple(ast.unparse(s) for s in before), tuple(ast.unparse(s) for s in loop.body),
                     tuple(ast.unparse(s) for s in after), parameters,
                     _module_names(body, pieces, parameters))


def _refuse(body, reason):
    return ScheduleError(f"@reduction on {body.__name__}: {reason} (see loopnet.reduction)")


def _target(node):
    return node.id if isinstance(node, ast.Name) else None


def _range_extent(body, loop):
    call = loop.iter
    if not (isinstance(loop.target, ast.Name) and isinstance(call, ast.Call) and _target(call.func) == "range"
            and len(call.args) == 1 and not call.keywords and not loop.orelse):
        raise _refuse(body, "the loop must read `for NAME in range(EXTENT):`, from 0, with no else")
    return call.args[0]


def _accumulator(body, loop):
    """The one name the loop adds into; refuses a loop that does anything it could not split."""
    added = {_target(n.target) for s in loop.body for n in ast.walk(s)
             if isinstance(n, ast.AugAssign) and isinstance(n.op, (ast.Add, ast.Sub)) and _target(n.target)}
    if len(added) != 1:
        raise _refuse(body, f"the loop must add into exactly one accumulator (acc += term); it adds into {sorted(added)}")
    accumulator = added.pop()
    for node in (n for s in loop.body for n in ast.walk(s)):
        if isinstance(node, (ast.Break, ast.Return, ast.Yield, ast.Global, ast.Nonlocal)):
            raise _refuse(body, f"the loop may not {type(node).__name__.lower()}: each pass must only add a term")
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            raise _refuse(body, f"the loop writes {ast.unparse(node)}: a reduction's loop only adds into its accumulator")
        if isinstance(node, ast.AugAssign) and _target(node.target) == accumulator and not isinstance(node.op, (ast.Add, ast.Sub)):
            raise _refuse(body, f"the loop must only add into {accumulator!r} (+= or -=)")
        if isinstance(node, ast.Name) and node.id == accumulator and not isinstance(node.ctx, ast.Store):
            raise _refuse(body, f"the loop reads {accumulator!r}: each pass must only add a term to it")
        if isinstance(node, ast.Assign) and accumulator in {_target(t) for t in node.targets}:
            raise _refuse(body, f"the loop assigns {accumulator!r}: each pass must only add a term to it")
    return accumulator


def _check_names(body, function, loop, accumulator, before, after):
    everywhere = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)} | {a.arg for a in function.args.args}
    clashes = sorted(n for n in everywhere if n.startswith("reduce_"))
    if clashes:
        raise _refuse(body, f"names starting with reduce_ are the split loop's own: {clashes}")
    for statement in before:
        if not isinstance(statement, ast.Assign) or not all(_target(t) for t in statement.targets):
            raise _refuse(body, f"before the loop only names may be assigned, not `{ast.unparse(statement)}`")
    inside = {n.id for s in loop.body for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    carried = _read_before_set(loop.body, {loop.target.id}, inside - {accumulator}, accumulator)
    if carried:
        raise _refuse(body, f"the loop reads {sorted(carried)} before the pass sets it: a value carried from "
                            f"one pass to the next cannot be split")
    inside = (inside | {loop.target.id}) - {accumulator}
    read_after = sorted({n.id for s in after for n in ast.walk(s) if isinstance(n, ast.Name)} & inside)
    if read_after:
        raise _refuse(body, f"after the loop the body reads {read_after}, set inside it; only {accumulator!r} carries out")


def _read_before_set(statements, assigned, watched, accumulator):
    """The names in `watched` (set somewhere in the loop) that a pass may read before it
    has set them: read in a statement before any earlier statement of the pass surely set
    them (a name set only in one branch of an `if`, or in an inner loop, is not sure)."""
    found = set()
    for statement in statements:
        if isinstance(statement, ast.If):
            found |= _reads(statement.test, watched) - assigned
            found |= _read_before_set(statement.body, set(assigned), watched, accumulator)
            found |= _read_before_set(statement.orelse, set(assigned), watched, accumulator)
            assigned = assigned | (_surely_set(statement.body, assigned) & _surely_set(statement.orelse, assigned))
        elif isinstance(statement, (ast.For, ast.While)):
            found |= _reads(statement.iter if isinstance(statement, ast.For) else statement.test, watched) - assigned
            inner = assigned | ({n.id for n in ast.walk(statement.target) if isinstance(n, ast.Name)}
                                if isinstance(statement, ast.For) else set())
            found |= _read_before_set(statement.body, inner, watched, accumulator)
        else:
            reads = _reads(statement, watched)
            if isinstance(statement, ast.AugAssign) and _target(statement.target) not in (None, accumulator):
                reads |= {_target(statement.target)} & watched  # t += 1 reads t
            found |= reads - assigned
            assigned = assigned | {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return found


def _reads(node, watched):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} & watched


def _surely_set(statements, assigned):
    """The names surely set after running `statements` (straight-line assignments and ifs)."""
    for statement in statements:
        if isinstance(statement, ast.If):
            assigned = assigned | (_surely_set(statement.body, assigned) & _surely_set(statement.orelse, assigned))
        elif not isinstance(statement, (ast.For, ast.While)):
            assigned = assigned | {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return assigned


def _module_names(body, statements, parameters):
    """Names the statements read that are neither the body's own nor builtins: its
    module's (scalar, math), which a generated driver must import."""
    stored = {n.id for s in statements for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    read = {n.id for s in statements for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    outside = read - stored - set(parameters)
    return tuple(sorted(n for n in outside if n in body.__globals__ or not hasattr(builtins, n)))
