"""Run loopnet's command line from a checkout: `python cli.py --help`."""

from loopnet.cli import main

if __name__ == "__main__":
    main()
