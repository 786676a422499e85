"""`python -m watchtower.cli`: the same as the `watchtower` command."""

import sys

from watchtower.cli.main import main

sys.exit(main())
