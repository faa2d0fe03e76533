"""`python -m shelfwise` is the `shelfwise` command."""

import sys

from shelfwise.cli import main

if __name__ == "__main__":  # not when a job's spawned child process imports this module
    sys.exit(main())
