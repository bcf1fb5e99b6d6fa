"""`python -m loopnet.cli COMMAND`, the same as `python cli.py COMMAND`."""

from loopnet.cli import main

main()
