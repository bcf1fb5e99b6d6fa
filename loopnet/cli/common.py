"""What every command shares: the one error policy, the backend and dtype options."""

import sys

import click

from loopnet.backends import BACKENDS
from loopnet.errors import LoopnetError

DTYPES = ("float64", "float32")  # float64 first: the default, which finite differences need


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


def backend_option(help_text, default=None):
    """--backend, its choices read from the backend registry."""
    return click.option("--backend", type=click.Choice(BACKENDS), default=default, show_default=default is not None,
                        help=help_text)


def select_backend(name, default=None):
    """Switch to backend `name`, else `default`, else the CLI's default."""
    import loopnet as ln

    ln.use(name or default or ln.default_backend())
