"""`python -m shelfwise` is the `shelfwise` command."""

import sys

from shelfwise.cli import main

sys.exit(main())
