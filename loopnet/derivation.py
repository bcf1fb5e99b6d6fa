"""Derive the backward loops from the forward loop's index notation: the rule deck 003's loops follow.

Deck 003 ("Backpropagation with Tensors", slide 'Scalar vs. Matrix Operations') writes a
forward statement as one loop over every index,

    for h,i,j,k:  U.value[h,i,j] += A.value[h,i,k] * B.value[h,j,k]

and each input's backward loop as the same loop nest with that input's element and the
output's gradient swapped in: the local derivative of a product with respect to one
factor is the other factor, so

    for h,i,j,k:  A.grad[h,i,k] += U.grad[h,i,j] * B.value[h,j,k]
    for h,i,j,k:  B.grad[h,j,k] += U.grad[h,i,j] * A.value[h,i,k]

(the slide leaves out the left-hand indices; they are the input's own). That is the
scatter form: every term adds into some element of A.grad. loopnet's loops are written in
gather form instead, one grid point per element of the gradient, summing over the indices
the input does not have:

    for h,i,k:    dA[h,i,k] += sum_j dU[h,i,j] * B[h,j,k]

Same terms, added in another order, and every grid point owns what it writes. Three more
rules cover what loopnet's declared contractions hold (`loopnet.schedule`):

- an added array (a bias, `Y[n,m] = b[m] + sum_d ...`) has local derivative 1, so its
  gradient is the output's gradient summed over the indices it does not have;
- an input read at a shifted position (`X[n,c,h+i,w+j]`, a convolution) gets its gradient
  at that position: in gather form the position is the grid index, so the output index is
  solved for, h = (position) - i, and the gradient reads dO[n,co,h-i,w-j]: the flipped
  kernel appears by itself. With a stride (`h*sh+i`) the solution is (h-i)/sh, and only
  the positions where the division is exact contribute. Positions outside an array read
  as zero;
- a function around the whole sum, `Y[h,i,j] = sigmoid(sum_k A[h,i,k] * B[h,j,k])`, is
  deck 003's second step: U.grad = Y.grad * sigma'(U) first, then the product rule with U.

`Derivation(statement)` reads a statement and applies these rules: its text
(`str(derivation)`) is what `python cli.py derive` prints. `ln.derive` (loopnet/derive.py)
adds the runnable op, its loop bodies generated from the derivation. Anything else is
refused with one line saying why.
"""

import keyword
import re
import textwrap
import unicodedata
from dataclasses import dataclass

from loopnet.errors import LoopnetError
from loopnet.schedule import ScheduleError, read_index


class DeriveError(LoopnetError, ValueError):
    """A statement the rules here cannot read or cannot differentiate."""


# name: (the function in a loop body, its derivative in a loop body, the derivative in words)
FUNCTIONS = {
    "sigmoid": ("scalar.sigmoid({u})", "scalar.sigmoid({u}) * (1 - scalar.sigmoid({u}))", "s(1-s), s = sigmoid(u)"),
    "tanh": ("math.tanh({u})", "1 - math.tanh({u}) * math.tanh({u})", "1 - tanh(u)^2"),
    "relu": ("0.0 if {u} < 0 else {u}", "1.0 if {u} > 0 else 0.0", "1 where u > 0, else 0"),
    "exp": ("scalar.exp({u})", "scalar.exp({u})", "exp(u)"),
    "log": ("scalar.log({u})", "scalar.div(1.0, {u})", "1/u"),
    "square": ("{u} * {u}", "2 * {u}", "2u"),
}
ALIASES = {"sigma": "sigmoid", "σ": "sigmoid"}  # deck 003 writes sigma
RESERVED = {"acc", "pre", "scalar", "math", "range", "sum"}  # names the generated loop bodies use


@dataclass(frozen=True)
class Access:
    """One array read or written: its name and its index, each position a tuple of
    (operator, name) terms as loopnet.schedule reads them: h -> (("+","h"),),
    h*sh+i -> (("+","h"),("*","sh"),("+","i")), (h-i)/sh -> (("+","h"),("-","i"),("/","sh"))."""

    name: str
    index: tuple

    def names(self):
        return [name for expression in self.index for op, name in expression if op in "+-"]

    def bare(self, name):
        """The axis that `name` indexes alone, or None."""
        return next((axis for axis, e in enumerate(self.index) if e == (("+", name),)), None)

    def text(self, suffix=""):
        return f"{self.name}{suffix}[{','.join(expression_text(e) for e in self.index)}]"


def expression_text(expression):
    """(("+","h"),("*","sh"),("+","i")) -> 'h*sh+i'; a division wraps the sum: '(h-i)/sh'."""
    text = ""
    for op, name in expression:
        if op == "*":
            text += f"*{name}"
        elif op in "+-":
            text += name if not text and op == "+" else f"{op}{name}"
    divisor = [name for op, name in expression if op == "/"]
    return f"({text})/{divisor[0]}" if divisor else text


def terms(expression):
    """(("+","h"),("*","sh"),("+","i")) -> [("+","h","sh"), ("+","i",None)]: each name with its
    sign and its scale (None for none); a division is left out."""
    found = []
    for op, name in expression:
        if op == "*":
            found[-1] = found[-1][:2] + (name,)
        elif op in "+-":
            found.append((op, name, None))
    return found


def sum_text(names):
    """'sum_k ', 'sum_{c,i,j} ', or '' for no summed index."""
    if not names:
        return ""
    return f"sum_{names[0]} " if len(names) == 1 else f"sum_{{{','.join(names)}}} "


def bare(*names):
    return tuple((("+", name),) for name in names)


@dataclass(frozen=True)
class Statement:
    """A forward statement: OUT[out] = [f(] [INIT +] sum_{summed} A * B [)]."""

    text: str
    out: Access
    a: Access
    b: Access
    init: Access  # None without an added array
    summed: tuple
    function: str  # None without one
    init_first: bool = True  # b[m] + sum... (True) or sum... + b[m]

    @property
    def loops(self):
        """Every index of the forward loop nest: the output's, then the summed ones."""
        return tuple(n for e in self.out.index for _, n in e) + self.summed

    @property
    def inputs(self):
        """The input arrays in the order the statement names them."""
        found = [self.init, self.a, self.b] if self.init_first else [self.a, self.b, self.init]
        return tuple(access for access in found if access is not None)

    @property
    def pre(self):
        """The name of the sum before the function (deck 003's U), when there is a function."""
        taken = {self.out.name, *(a.name for a in self.inputs), *self.loops}
        return next(name for name in ("U", "Z", f"{self.out.name}_pre") if name not in taken)

    @property
    def scalars(self):
        """Scales and divisors in the indices (strides): scalar arguments of the op."""
        return tuple(sorted({n for a in self.inputs for e in a.index for op, n in e if op in "*/"}))


_ARRAY = r"([^\W\d]\w*)\s*\[([^\]]*)\]"
_LEFT = re.compile(rf"^\s*(?:for\s+([\w\s,]+):\s*)?{_ARRAY}\s*(\+?=)\s*(.+?)\s*$")
_CALL = re.compile(r"^(\w+|σ)\s*\((.*)\)$")
_SUM = re.compile(r"^sum_(\w+|\{[^}]*\})\s*(.+)$")
_PRODUCT = re.compile(rf"^{_ARRAY}\s*\*\s*{_ARRAY}$")
_ADDED_FIRST = re.compile(rf"^{_ARRAY}\s*\+\s*(.+)$")
_ADDED_LAST = re.compile(rf"^(.+?)\s*\+\s*{_ARRAY}$")
FORM = ("OUT[i,j] = [f(] [INIT[j] +] sum_k A[i,k] * B[k,j] [)], or the slide's loop "
        "U[i,j] += A[i,k] * B[k,j] (indices only on the right are summed)")


def refuse(statement, reason):
    raise DeriveError(f"cannot derive {statement.strip()!r}: {reason}")


def unbalanced(statement):
    """Where the statement's brackets fail to pair, in words, or None. Checked first: an
    unclosed [ or ( would otherwise be refused as some other mistake."""
    closes, opened = {"]": "[", ")": "(", "}": "{"}, []
    for at, char in enumerate(statement, 1):
        if char in "[({":
            opened.append((char, at))
        elif char in closes:
            if not opened:
                return f"the {char!r} at character {at} closes nothing"
            if opened[-1][0] != closes[char]:
                return f"the {char!r} at character {at} cannot close the {opened[-1][0]!r} at character {opened[-1][1]}"
            opened.pop()
    return f"the {opened[-1][0]!r} at character {opened[-1][1]} is never closed" if opened else None


def indices(text, statement):
    try:
        return read_index(text, statement) if text.strip() else ()
    except ScheduleError as err:  # its message names the statement; refuse names it once
        head, _, tail = str(err).partition(f" in {statement!r}")
        refuse(statement, head + tail)


def plain_names(access, statement, what):
    """The index of OUT or INIT: plain names only."""
    if any(len(e) != 1 or e[0][0] != "+" for e in access.index):
        refuse(statement, f"{what} {access.text()} must be indexed by plain names (no offsets or scales)")
    return [e[0][1] for e in access.index]


def split_right(right, statement):
    """'sigmoid(b[m] + sum_d X[n,d] * W[d,m])' -> (function, init (name, index text) or None,
    init first?, summed text or None, product match)."""
    function, call = None, _CALL.match(right)
    if call and not right.startswith("sum_"):
        function = ALIASES.get(call.group(1), call.group(1))
        if function not in FUNCTIONS:
            refuse(statement, f"{call.group(1)!r} is not a function derive knows; it knows "
                              f"{', '.join(sorted(FUNCTIONS))} (and sigma for sigmoid)")
        right = call.group(2).strip()
    init, init_first = None, True
    for pattern, first in ((_ADDED_FIRST, True), (_ADDED_LAST, False)):
        match = pattern.match(right)
        if match and "*" in (match.group(3) if first else match.group(1)):
            init = match.groups()[:2] if first else match.groups()[1:]
            right, init_first = (match.group(3) if first else match.group(1)).strip(), first
            break
    summed = None
    match = _SUM.match(right)
    if match:
        summed, right = match.group(1), match.group(2).strip()
    product = _PRODUCT.match(right)
    if not product:
        outside = re.sub(r"\[[^\]]*\]", "[]", right)  # (what lies between the arrays' brackets)
        number = re.search(r"(?<![\w.])(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", outside)
        if number:
            refuse(statement, f"a constant ({number.group()}) is not part of the notation: the right-hand side is a "
                              f"product of two arrays, A[...] * B[...], plus at most an added array; the form is {FORM}")
        if "**" in outside:
            refuse(statement, f"a power (**) is not part of the notation: the right-hand side is a product of two "
                              f"arrays, A[...] * B[...]; the form is {FORM}")
        factors = f", not of {outside.count('*') + 1}" if outside.count("*") > 1 and "+" not in outside else ""
        refuse(statement, f"the right-hand side must be a product of two arrays, A[...] * B[...]{factors}; "
                          f"the form is {FORM}")
    return function, init, init_first, summed, product


def parse(statement):
    """Read a forward statement into a Statement, or refuse it with one line."""
    if not isinstance(statement, str) or not statement.strip():
        raise DeriveError(f"derive needs a statement such as 'U[h,i,j] += A[h,i,k] * B[h,j,k]'; the form is {FORM}")
    statement = " ".join(unicodedata.normalize("NFKC", statement).split())  # one line; ﬁ is fi, as Python reads it
    brackets = unbalanced(statement)
    if brackets:
        refuse(statement, brackets)
    text = re.sub(r"\.value\b", "", statement)
    left = _LEFT.match(text)
    if not left:
        refuse(statement, f"expected OUT[...] = ... or OUT[...] += ...; the form is {FORM}")
    loops_given, out_name, out_text, assign, right = left.groups()
    function, init, init_first, summed_text, product = split_right(right, statement)
    out = Access(out_name, indices(out_text, statement))
    a = Access(product.group(1), indices(product.group(2), statement))
    b = Access(product.group(3), indices(product.group(4), statement))
    init = Access(init[0], indices(init[1], statement)) if init else None
    odd = [n for access in (out, a, b, init) if access is not None for e in access.index for _, n in e
           if not n.isidentifier()] + [access.name for access in (out, a, b, init)
                                       if access is not None and not access.name.isidentifier()]
    if odd and odd[0][:1].isdigit():
        refuse(statement, f"a constant ({odd[0]}) is not part of the notation: offsets are indices (h+i), "
                          f"scales named strides (h*sh)")
    if odd:
        refuse(statement, f"{odd[0]!r} is not a name Python accepts (letters, digits and _, not first a digit)")
    out_names = plain_names(out, statement, "the output")
    right_names = list(dict.fromkeys(a.names() + b.names()))
    if summed_text is not None:
        summed = tuple(n.strip() for n in summed_text.strip("{}").split(","))
        if not all(summed):
            refuse(statement, f"sum_{summed_text} must name each summed index, as sum_k or sum_{{c,i,j}}")
    else:
        summed = tuple(n for n in right_names if n not in out_names)
        if summed and assign == "=":
            verb = "appears" if len(summed) == 1 else "appear"
            refuse(statement, f"{', '.join(summed)} {verb} only on the right: write {sum_text(summed)}before the "
                              f"product, or += for the slide's loop over every index")
        if summed and init is not None:
            refuse(statement, f"in a += loop over {', '.join(summed)} the added {init.name} would be added once per "
                              f"{summed[0]}; write {out.text()} = {init.text()} + sum_... instead")
    if function and assign == "+=" and summed_text is None and summed:
        refuse(statement, f"a function applies to the finished sum: write {out.text()} = {function}(sum_... ) instead")
    parsed = Statement(statement.strip(), out, a, b, init, summed, function, init_first)
    check(parsed, out_names, loops_given)
    return parsed


def check(s, out_names, loops_given):
    """Refuse what the rules cannot differentiate, each with its reason."""
    statement, arrays = s.text, [s.out, *s.inputs]
    names = [a.name for a in arrays]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        refuse(statement, f"{', '.join(twice)} appears twice; the rules here take one gradient per array "
                          f"(for a square, write square(...) around a sum, or give the copies two names)")
    if len(set(out_names)) != len(out_names) or len(set(s.summed)) != len(s.summed) or set(out_names) & set(s.summed):
        refuse(statement, "the output's indices and the summed ones must be distinct names")
    used = set(s.a.names()) | set(s.b.names())
    unknown = used - set(s.loops)
    if unknown:
        refuse(statement, f"{', '.join(sorted(unknown))} is neither the output's index nor a summed one")
    unused = set(s.loops) - used
    if unused:
        refuse(statement, f"{', '.join(sorted(unused))} is not used by {s.a.name} or {s.b.name}")
    if s.init is not None and not set(plain_names(s.init, statement, "the added array")) <= set(out_names):
        refuse(statement, f"the added {s.init.text()} must be indexed by some of the output's indices")
    grads = {"d" + n for n in names + ([s.pre] if s.function else [])}
    if grads & set(names):
        refuse(statement, f"{', '.join(sorted(grads & set(names)))} would name both an array and a gradient "
                          f"(the gradient of x is dx); rename it")
    if set(s.loops) & set(names):
        refuse(statement, f"{', '.join(sorted(set(s.loops) & set(names)))} names both an index and an array")
    taken = (grads | set(names)) & (set(s.loops) | set(s.scalars))
    if taken:
        refuse(statement, f"{', '.join(sorted(taken))} names both an index or stride and an array or gradient; "
                          f"rename it")
    clash = (set(names) | set(s.loops) | set(s.scalars)) & (RESERVED | set(keyword.kwlist))
    if clash:
        refuse(statement, f"{', '.join(sorted(clash))} is a name the generated loops use; rename it")
    if set(s.scalars) & (set(names) | set(s.loops)):
        refuse(statement, f"a scale or divisor ({', '.join(s.scalars)}) must be a stride, not an index or an array")
    for access in (s.a, s.b):
        if any(op == "/" for e in access.index for op, _ in e):
            refuse(statement, f"{access.text()} divides an index; a division cannot be solved for the output's "
                              f"index here: derive from the forward statement, whose gradient has the division")
        if len(access.names()) != len(set(access.names())):
            refuse(statement, f"{access.text()} uses an index twice (a diagonal): the rules here need each index once")
    if loops_given is not None and set(n.strip() for n in loops_given.split(",")) != set(s.loops):
        refuse(statement, f"the loop 'for {loops_given.strip()}' must run over every index: {','.join(s.loops)}")


# -- the rule ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gather:
    """One gradient loop in gather form: grad[own] += sum_{summed} upstream * other
    (other is None for an added array: its local derivative is 1)."""

    grad: Access
    upstream: Access
    other: Access
    summed: tuple

    def text(self):
        total = sum_text(self.summed)
        product = self.upstream.text() + (f" * {self.other.text()}" if self.other is not None else "")
        return f"{self.grad.text()} += {total}{product}"


def solve(expression, out_names, statement, array):
    """The position p = `expression` (say h*sh+i), solved for one of its names (an
    output index where there is one): (name, the name's value with p written as that name),
    e.g. ('h', (h-i)/sh)."""
    found = terms(expression)
    scales = {name: scale for _, name, scale in found if scale}
    signed = [(sign, name) for sign, name, _ in found]
    names = [n for _, n in signed]
    solved = next((n for n in names if n in out_names), names[0])
    sign = dict((n, op) for op, n in signed)[solved]
    flip = {"+": "-", "-": "+"}
    rest = [(flip[op] if sign == "+" else op, n) for op, n in signed if n != solved]
    ordered = [("+", solved)] + rest if sign == "+" else rest[:1] + [("-", solved)] + rest[1:]
    if ordered[0][0] != "+":
        refuse(statement, f"{array} is read at {expression_text(expression)}: solved for {solved} it starts "
                          f"with a minus, which the notation here cannot write")
    result = []
    for op, n in ordered:
        result.append((op, n))
        if n != solved and n in scales:
            result.append(("*", scales[n]))
    if solved in scales:
        result.append(("/", scales[solved]))
    return solved, tuple(result)


def substitute(access, solved, statement):
    """`access` with each solved name replaced by its value (only where it stands alone)."""
    index = []
    for expression in access.index:
        hits = [n for op, n in expression if op in "+-" and n in solved]
        if hits and len(expression) != 1:
            refuse(statement, f"{access.text()} would read {hits[0]} inside {expression_text(expression)} after "
                              f"solving for it, which the notation here cannot write")
        index.append(solved[hits[0]] if hits else expression)
    return Access(access.name, tuple(index))


def gather(s, target, upstream_name):
    """The gather-form gradient loop of input `target` (an Access of s)."""
    out_names = [e[0][1] for e in s.out.index]
    upstream = Access(upstream_name, s.out.index)
    if target is s.init:
        own = [e[0][1] for e in target.index]
        return Gather(Access("d" + target.name, target.index), upstream, None,
                      tuple(n for n in out_names if n not in own))
    other = s.b if target is s.a else s.a
    own, solved = [], {}
    for expression in target.index:
        if len(expression) == 1:
            own.append(expression[0][1])
            continue
        name, value = solve(expression, out_names, s.text, target.name)
        own.append(name)
        solved[name] = value
    summed = tuple(n for n in s.loops if n not in own)
    return Gather(Access("d" + target.name, bare(*own)), substitute(upstream, solved, s.text),
                  substitute(other, solved, s.text), summed)


def rule(s, target, gradient):
    """One sentence: which rule produced `target`'s gradient loop."""
    up = gradient.upstream.name
    if target is s.init:
        over = f"summed over {', '.join(gradient.summed)}, the indices {target.name} does not have" \
            if gradient.summed else "with nothing to sum: it has every index of the output"
        return (f"{target.name} is added to the sum, so its local derivative is 1: its gradient is {up}, {over}.")
    other = gradient.other.name
    sentence = (f"{target.name} is a factor of the product, so its local derivative is the other factor, {other}: "
                f"each term of the forward loop adds {up[1:]}.grad * {other}.value into {target.name}.grad "
                f"(as deck 003's loops do). Gathered over {target.name}'s own indices, the sum runs over "
                f"{', '.join(gradient.summed) or 'nothing'}.")
    solved = [(expression_text(e), expression_text(v)) for e, v in zip(target.index, solved_values(gradient))
              if len(e) > 1]
    if solved:
        divided = any("/" in value for _, value in solved)
        sentence += (f" {target.name} is read at {', '.join(e for e, _ in solved)}: in gather form each position is "
                     f"the grid index, so the output's index is solved for: "
                     f"{', '.join(v for _, v in solved)}. The gradient reads {up} there"
                     f"{' (only where the division is exact)' if divided else ''}; positions outside an array read "
                     f"as zero.")
    return sentence


def solved_values(gradient):
    """For each axis of the input: the expression its grid index stands for in the reads."""
    values = []
    for own in gradient.grad.index:
        name = own[0][1]
        values.append(next((e for e in gradient.upstream.index + gradient.other.index
                            if len(e) > 1 and name in [n for _, n in e]), own))
    return values


def copies_in(s, transposed):
    """{copy: original} for the inputs that are transposed copies (their last two axes
    swapped). "auto" reads loopnet's naming: WT (one capital letter and T, or dYT) is the copy
    of W (loopnet.loops.transposed) when the statement has no W of its own."""
    if not transposed:
        return {}
    names = {a.name for a in s.inputs} | {s.out.name}
    if transposed == "auto":  # loopnet's names only: WT, BT, XT (and dYT): one capital, then T
        return {a.name: a.name[:-1] for a in s.inputs
                if re.fullmatch(r"d?[A-Z]T", a.name) and len(a.index) >= 2 and a.name[:-1] not in names}
    copies = dict(transposed)
    for copy, original in copies.items():
        access = next((a for a in s.inputs if a.name == copy), None)
        if access is None or len(access.index) < 2:
            refuse(s.text, f"{copy!r} is not an input with two or more axes, so it cannot be a transposed copy")
        if not isinstance(original, str) or not original.isidentifier() or original in names:
            refuse(s.text, f"the original of {copy!r} must be a new name, not {original!r}")
    return copies


def untransposed(s, copies):
    """The statement with each copy read as its original: WT[m,d] -> W[d,m]."""
    def swap(access):
        if access is None or access.name not in copies:
            return access
        return Access(copies[access.name], access.index[:-2] + (access.index[-1], access.index[-2]))
    return Statement(statement_text(s, swap), s.out, swap(s.a), swap(s.b), swap(s.init), s.summed, s.function,
                     s.init_first)


def statement_text(s, read=lambda access: access):
    """The statement in the form derive reads, e.g. 'Y[n,m] = sigmoid(b[m] + sum_d X[n,d] * W[d,m])'."""
    right = f"{sum_text(s.summed)}{read(s.a).text()} * {read(s.b).text()}"
    if s.init is not None:
        right = f"{read(s.init).text()} + {right}" if s.init_first else f"{right} + {read(s.init).text()}"
    return f"{s.out.text()} = " + (f"{s.function}({right})" if s.function else right)


class Derivation:
    """The backward loops of one forward statement (see the module's docstring).

    `gradients`: {input: Gather}, the gather-form loop of each of the op's inputs (copies
    read as their originals); `copy_gradients`: the loops of the copies as declared;
    `str(derivation)`: the whole derivation, as `python cli.py derive` prints it.
    `loopnet.derive.derive` makes one with its runnable op."""

    def __init__(self, statement, transposed="auto"):
        self.declared = parse(statement)
        self.copies = copies_in(self.declared, transposed)
        self.statement = untransposed(self.declared, self.copies)
        s = self.statement
        if self.copies:  # the originals' names must be as good as the copies'
            check(s, [e[0][1] for e in s.out.index], None)
        self.upstream = "d" + (s.pre if s.function else s.out.name)
        self.gradients = {a.name: gather(s, a, self.upstream) for a in s.inputs}
        self.copy_gradients = {a.name: gather(self.declared, a, self.upstream)
                               for a in self.declared.inputs if a.name in self.copies}

    @property
    def inputs(self):
        """The op's inputs, in the order the statement names them."""
        return tuple(a.name for a in self.statement.inputs)

    def __str__(self):
        return "\n".join(explain_lines(self))

    def __repr__(self):
        return f"derive({self.declared.text!r})"


def slide_loops(s, target):
    """`target`'s gradient loop in deck 003's scatter notation: (loop header, statement)."""
    upstream = Access(s.pre if s.function else s.out.name, s.out.index).text(".grad")
    outer = loop_header(n for e in s.out.index for _, n in e)
    if target is s.init:
        return outer, f"{target.text('.grad')} += {upstream}"
    other = s.b if target is s.a else s.a
    return loop_header(s.loops), f"{target.text('.grad')} += {upstream} * {other.text('.value')}"


def loop_header(names):
    """'for h,i,j', or 'once' for a loop over no index (a 0-d output)."""
    names = list(names)
    return "for " + ",".join(names) if names else "once"


def paragraph(text):
    return textwrap.fill(text, width=100, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False)


def aligned(pairs, indent="    "):
    width = max(len(header) for header, _ in pairs) + 1
    return [f"{indent}{(header + ':').ljust(width)}  {body}" for header, body in pairs]


def explain_lines(derivation):
    """What `python cli.py derive` prints: the forward loops, then each input's gradient
    loop in the slide's notation and in loopnet's gather form, with the rule that made it."""
    s, declared = derivation.statement, derivation.declared
    outer = loop_header(n for e in s.out.index for _, n in e)
    target = Access(s.pre, s.out.index) if s.function else s.out
    first = declared.init.text(".value") if declared.init is not None else "0"
    forward = [(outer, f"{target.text('.value')} = {first}"),
               (loop_header(s.loops), f"{target.text('.value')} += {declared.a.text('.value')} * "
                                            f"{declared.b.text('.value')}")]
    if s.function:
        forward.append((outer, f"{s.out.text('.value')} = {s.function}({target.text('.value')})"))
    lines = [f"forward: {statement_text(declared)}", "  as deck 003 writes it, one loop over every index:",
             *aligned(forward), ""]
    if s.function:
        grid = ",".join(n for e in s.out.index for _, n in e)
        lines += [paragraph(f"the chain through {s.function}: {s.out.name} = {s.function}({s.pre}) element by element, "
                            f"so {s.pre}'s gradient is {s.out.name}'s times {s.function}'({s.pre}), where "
                            f"{s.function}'(u) = {FUNCTIONS[s.function][2]}. Every loop below reads d{s.pre}."),
                  *aligned([(outer, f"{target.text('.grad')} += {s.out.text('.grad')} * {s.function}'"
                                    f"({target.text('.value')})")], "    slide:   "),
                  *aligned([(outer, f"d{s.pre}[{grid}] = d{s.out.name}[{grid}] * {s.function}'({target.text()})")],
                           "    gather:  "), ""]
    for access in declared.inputs:
        lines += gradient_lines(derivation, access)
    return lines[:-1]


def gradient_lines(derivation, access):
    """One input's part of the derivation; a transposed copy's loop, then its original's."""
    declared, s = derivation.declared, derivation.statement
    original = derivation.copies.get(access.name)
    name = original or access.name
    gradient = derivation.gradients[name]
    own = loop_header(e[0][1] for e in gradient.grad.index)
    if original is None:
        header, body = slide_loops(s, next(a for a in s.inputs if a.name == name))
        return [paragraph(f"gradient of {name}: {rule(s, next(a for a in s.inputs if a.name == name), gradient)}"),
                *aligned([(header, body)], "    slide:   "), *aligned([(own, gradient.text())], "    gather:  "), ""]
    copy = derivation.copy_gradients[access.name]
    header, body = slide_loops(declared, access)
    back = next(a for a in s.inputs if a.name == name)
    return [paragraph(f"gradient of {name}, read through its transposed copy {access.name} "
                      f"({access.text()} = {back.text()}, as loopnet.loops.transposed makes it): "
                      f"{rule(declared, access, copy)}"),
            *aligned([(header, body)], "    slide:   "),
            *aligned([(loop_header(e[0][1] for e in copy.grad.index), copy.text())], "    gather:  "),
            f"  back to {name}: {back.text('.grad')} is {access.text('.grad')}, so the loop over {name}'s own "
            f"indices is",
            *aligned([(own, gradient.text())], "    gather:  "), ""]

