"""The reading commands: trace and jacobian run a graph forward and backward and print what
a learner checks line by line; ops prints the ops' math and loops; gradcheck holds every
op's backward loops to finite differences."""

import sys

import click

from loopnet.cli.common import DTYPES, backend_option, fail, select_backend
from loopnet.errors import did_you_mean


def _target_help():
    from loopnet.targets import TARGETS

    lines = "\n".join(f"  {name:<14} {builder.__doc__.splitlines()[0]}" for name, builder in TARGETS.items())
    return (
        "Run forward and backward once on TARGET and print every node in topological "
        "order: name, op, inputs, shape, value and grad.\n\n"
        "TARGET is a built-in example or path/to/file.py[:function], whose function "
        "(default `build`) takes no arguments and returns the loss node.\n\n"
        f"\b\nBuilt-in targets:\n{lines}"
    )


def _check_one_report(fmt, element, counts):
    """--explain, --counts and --format each choose what trace prints: one at a time."""
    chosen = [f"--format {fmt}" if fmt else None, "--explain" if element else None, "--counts" if counts else None]
    chosen = [c for c in chosen if c]
    if len(chosen) > 1:
        fail(f"{' and '.join(chosen)} choose two different reports; give one of them")


def _check_op_names(names):
    import loopnet as ln

    unknown = [n for n in names if n not in ln.OPS]
    if unknown:
        fail(f"unknown op {unknown[0]!r}{did_you_mean(unknown[0], ln.OPS)}; see `ops` for the list")


BACKEND_HELP = ("Which backend runs the loops. Default: $LOOPNET_BACKEND, else python: the reference loops, "
                "where a breakpoint in loopnet/ops/ stops.")


@click.command(help=_target_help())
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html", "svg", "dot"]), default=None,
              help="text (the default): an aligned table; json: {\"nodes\": [...]} with full-precision numbers "
                   "and each op's math, loops and explain terms; html: a self-contained page to open in a browser "
                   "(click a node, play backward); svg: the graph picture alone; dot: Graphviz's DOT language.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to this file instead of printing it (say graph.html).")
@backend_option(BACKEND_HELP)
@click.option("--dtype", type=click.Choice(DTYPES), default=None,
              help="Convert every float leaf to this dtype first (default: as the target built them).")
@click.option("--check-finite", is_flag=True, help="Stop at the first node whose value or grad is NaN or Inf.")
@click.option("--explain", "element", metavar="NODE[i,j]",
              help="List every term backprop added into one gradient element, e.g. 'W1[0,1]' (Python backend).")
@click.option("--counts", is_flag=True,
              help="Count each node's scalar arithmetic and array reads/writes, forward and backward (Python backend).")
def trace(target, fmt, output, backend, dtype, check_finite, element, counts):
    _check_one_report(fmt, element, counts)
    fmt = fmt or "text"
    import loopnet as ln
    from loopnet.explain import explain, find_node, parse_element
    from loopnet.targets import build_target
    from loopnet.tracing import counts_table, to_dot, to_json, to_text, trace as run_trace
    from loopnet.view.layout import svg
    from loopnet.view.page import page

    select_backend(backend, "python")
    node = build_target(target)
    if dtype:
        ln.set_dtype(node, dtype)
    if counts:
        from loopnet.watch import watch

        with watch(check_ownership=False) as watcher:
            records = run_trace(node, check_finite=check_finite)
        _report(counts_table(records, watcher.table()), output)
        return
    records = run_trace(node, check_finite=check_finite, details=fmt in ("json", "html", "svg"))
    if element:
        name, index = parse_element(element)
        _report(str(explain(find_node(node, name), index)), output)
        return
    title = f"loopnet trace {target}"
    _report({"json": to_json, "dot": to_dot, "text": to_text, "svg": lambda r: svg(r, [d.details["roles"] for d in r]),
             "html": lambda r: page(r, title)}[fmt](records), output)


def _report(text, output):
    """Print the report, or write it to --output (and say where on stderr)."""
    if output is None:
        click.echo(text)
        return
    try:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    except OSError as err:
        fail(f"cannot write {output!r}: {err.strerror or err}")
    size = len(text.encode()) + 1  # (and the newline)
    click.echo(f"wrote {output} ({f'{size} bytes' if size < 1024 else f'{round(size / 1024)} KiB'})", err=True)


@click.command()
@click.argument("target")
@click.option("--of", "of_name", required=True, metavar="NODE", help="The node whose elements are the rows.")
@click.option("--wrt", "wrt_name", required=True, metavar="NODE", help="The node to differentiate by (the columns).")
@backend_option(BACKEND_HELP)
def jacobian(target, of_name, wrt_name, backend):
    """Print the Jacobian d OF / d WRT of TARGET's graph, built from the backward loops.

    Row r is d OF[r] / d WRT, computed by one backward pass with a one-hot upstream
    gradient at OF[r]. Elements are numbered in row-major order.
    """
    import numpy as np

    from loopnet.explain import find_node, jacobian as make_jacobian
    from loopnet.targets import build_target

    select_backend(backend, "python")
    root = build_target(target)
    of, wrt = find_node(root, of_name), find_node(root, wrt_name)
    J = make_jacobian(of, wrt)
    matrix = J.reshape(max(of.size, 1), max(wrt.size, 1))
    click.echo(f"d {of.name} {of.shape} / d {wrt.name} {wrt.shape}: {matrix.shape[0]} x {matrix.shape[1]}")
    click.echo(np.array2string(matrix, precision=6, suppress_small=True, max_line_width=160, threshold=10**6))


@click.command()
@click.argument("names", nargs=-1)
def ops(names):
    """List the ops with their math, or show NAMES' math and loops in full."""
    import inspect

    import loopnet as ln

    _check_op_names(names)
    if names:
        for name in names:
            function = ln.OPS[name]
            module = inspect.getmodule(function)
            click.echo(f"{name}{inspect.signature(function)}   [{module.__name__}]\n")
            click.echo(inspect.cleandoc(module.__doc__) + "\n")
            for loop in _loops_of(name):
                click.echo(f"# {loop['phase']} loop: {loop['name']}\n{loop['source']}")
        return
    width = max(map(len, ln.OPS))
    for name, function in ln.OPS.items():
        summary = " ".join(inspect.cleandoc(function.__doc__).split("\n\n")[0].split())  # the first paragraph
        click.echo(f"{name:<{width}}  {summary}")


def _loops_of(name):
    """The loop bodies of op `name`'s classes (sum has one for the whole array and
    one along an axis), each once, forward first."""
    from loopnet.op import Op
    from loopnet.view.details import op_loops

    def subclasses(kind):
        for sub in kind.__subclasses__():
            yield sub
            yield from subclasses(sub)

    found = {}
    for kind in subclasses(Op):
        if kind.name == name:
            found.update((loop["name"], loop) for loop in op_loops(kind))
    return sorted(found.values(), key=lambda loop: loop["phase"] != "forward")


@click.command()
@click.argument("names", nargs=-1)
@click.option("--examples", type=click.IntRange(1), default=25, show_default=True,
              help="Random inputs (drawn by Hypothesis) per op.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the random inputs.")
@backend_option("Backend for the analytic gradients (finite differences use the same one). "
                "Default: $LOOPNET_BACKEND, else python.")
def gradcheck(names, examples, seed, backend):
    """Check every op's backward loops (or NAMES') against central differences.

    Prints a table of the largest errors found; exits 1 if any op fails, after the
    report of its smallest failing example.
    """
    import loopnet as ln
    from loopnet.testing.opcheck import check_op

    _check_op_names(names)
    select_backend(backend, "python")
    names = names or tuple(ln.OPS)
    click.echo(f"{'op':<24} {'examples':>8} {'max abs err':>12} {'max rel err':>12}  result")
    failures = []
    for name in names:
        result = check_op(name, examples=examples, seed=seed)
        click.echo(f"{name:<24} {result.examples:>8} {result.max_abs_error:>12.2e} "
                   f"{result.max_rel_error:>12.2e}  {'ok' if result.ok else 'FAILED'}")
        if not result.ok:
            failures.append(result)
    for result in failures:
        click.echo(f"\n{result.name}: {result.failure}", err=True)
    if failures:
        sys.exit(1)


def _copy_pairs(context, parameter, values):
    """--transposed's values as {COPY: ORIGINAL}; a value that is no pair is a usage error."""
    pairs = {}
    for value in values:
        copy, equals, original = value.partition("=")
        if not (equals and copy.strip() and original.strip()):
            raise click.BadParameter(f"takes COPY=ORIGINAL, such as WT=W; got {value!r}")
        pairs[copy.strip()] = original.strip()
    return pairs


@click.command()
@click.argument("statement")
@click.option("--source", is_flag=True,
              help="Also print the generated loop bodies: plain Python that ln.derive runs as an op.")
@click.option("--transposed", "copies", multiple=True, metavar="COPY=ORIGINAL", callback=_copy_pairs,
              help="COPY is ORIGINAL with its last two axes swapped (repeatable). Default: loopnet's naming, "
                   "where WT is the transposed copy of W.")
@click.option("--as-written", is_flag=True, help="Read every array as it is: no transposed copies.")
def derive(statement, source, copies, as_written):
    """Derive the backward loops of a forward STATEMENT by the rule deck 003's loops follow.

    For each input, prints the gradient loop in the slide's notation (the forward loop
    with that input's element and the output's gradient swapped in) and in loopnet's
    gather form (a loop over the input's own indices, summing over the ones it does not
    have), with the rule that produced it. Quote the statement:

    \b
      derive "U[h,i,j] += A[h,i,k] * B[h,j,k]"
      derive "Y[n,m] = b[m] + sum_d X[n,d] * WT[m,d]"
      derive "O[n,co,h,w] = b[co] + sum_{c,i,j} X[n,c,h+i,w+j] * W[co,c,i,j]"
      derive "Y[h,i,j] = sigmoid(sum_k A[h,i,k] * B[h,j,k])"

    \b
    The forms: a product of two arrays, summed over the indices the output lacks (sum_k,
    or a += loop as the slide writes it); input positions h+i, h-i and h*sh+i (strides
    are named scalars); an added array (a bias); one function around it all: sigmoid
    (or sigma), tanh, relu, exp, log or square. In Python: ln.derive(STATEMENT).
    """
    from loopnet.derive import derive as derive_loops

    if as_written and copies:
        fail("--as-written reads every array as it is, and --transposed names copies; give one of them")
    transposed = copies or (None if as_written else "auto")
    derivation = derive_loops(statement, transposed)
    generated = derivation.op.source if source else None  # a statement that cannot run fails before any output
    click.echo(str(derivation))
    if generated:
        click.echo("\nthe generated loop bodies (ln.derive(...).op.source):\n")
        click.echo(generated, nl=False)
