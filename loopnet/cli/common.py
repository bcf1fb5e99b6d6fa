"""What every command shares: the one error policy, the backend and dtype options."""

import os
import sys

import click

from loopnet.backends import BACKENDS, drivers
from loopnet.errors import LoopnetError, did_you_mean
from loopnet.graph import FLOAT_DTYPES

DTYPES = tuple(dtype.name for dtype in FLOAT_DTYPES)  # float64 first: the default


class CommandError(LoopnetError, ValueError):
    """A command line that cannot be carried out (an unknown model, a bad combination of
    options): printed as one line like every other loopnet error."""


def fail(message):
    """Stop the command: `error: message` on stderr, exit 1 (see OneLineErrors)."""
    raise CommandError(message)


class OneLineErrors(click.Group):
    """The one error policy: any LoopnetError (raised by the library, or by `fail`) is
    `error: ...` on one line of stderr and exit 1, with no traceback. click's usage
    errors (a bad option value) keep their own form and exit 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LoopnetError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:  # Ctrl-C, even inside a compile: the shell's 128 + SIGINT
            click.echo("\ninterrupted", err=True)
            sys.exit(130)


def backend_option(help_text, default=None):
    """--backend, its choices read from the backend registry."""
    return click.option("--backend", type=click.Choice(BACKENDS), default=default, show_default=default is not None,
                        help=help_text)


def check_backend_variable():
    """A bad LOOPNET_BACKEND is one line and exit 1, before any work, on a command that
    would use it: one that runs loops and was given no --backend."""
    chosen = os.environ.get("LOOPNET_BACKEND")
    if chosen and chosen not in BACKENDS:
        fail(f"LOOPNET_BACKEND={chosen!r} is not a backend{did_you_mean(chosen, BACKENDS)}; choose one of: "
             f"{', '.join(BACKENDS)} (or unset it)")


def select_backend(flag, command_default):
    """The one precedence rule of every command: --backend, else $LOOPNET_BACKEND, else
    the command's own default. Says so when a debugger is active but the chosen backend
    runs compiled loops, where no breakpoint in loopnet/ops/ can stop."""
    import loopnet as ln

    if flag is None:
        check_backend_variable()
    name = flag or ln.default_backend(command_default)
    ln.use(name)
    if name == "cuda" and drivers.cuda_simulated():  # (a wait of minutes, with nothing compiling to show)
        click.echo("note: cuda is running on Numba's CPU simulator (NUMBA_ENABLE_CUDASIM): every GPU thread is a "
                   "Python thread, so only small shapes finish soon (train mlp --width 4: about a minute an epoch)",
                   err=True)
    if name != "python" and sys.gettrace() is not None:
        click.echo(f"note: a debugger is active, but the {name} backend runs compiled loops: breakpoints in "
                   f"loopnet/ops/ stop only with --backend python", err=True)
    return name
