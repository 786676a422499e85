"""`python -m watchtower.cli`: the same as the `watchtower` command."""

import sys

from watchtower.cli.commands import main

sys.exit(main())
