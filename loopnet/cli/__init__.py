"""The command line: `python cli.py COMMAND` or, once installed, `loopnet COMMAND`.

A thin layer over the library: each command calls functions you can also call from
Python. One error policy for every command (`common.OneLineErrors`): loopnet's errors
print one line on stderr and exit 1; click's usage errors exit 2.

    reading.py    trace, jacobian, ops, gradcheck, derive: see backprop, check it, derive it
    training.py   train, evaluate: the lectures' networks
    tools.py      warmup, bench
"""

import click

from loopnet.cli import reading, tools, training
from loopnet.cli.common import OneLineErrors


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loopnet", message="loopnet %(version)s")
def main():
    """loopnet: backpropagation as explicit scalar loops.

    Every op is a loop nest over scalars, forward and backward, that you can read in
    loopnet/ops/ and step through in a debugger. Start with `trace xor-backprop`.
    """


for command in (reading.trace, reading.jacobian, reading.ops, reading.gradcheck, reading.derive,
                training.train, training.evaluate, tools.warmup, tools.bench):
    main.add_command(command)
