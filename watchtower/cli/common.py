"""What every command shares: exit statuses, logging, loading the fleet file."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TypeAlias

from watchtower.config import Fleet
from watchtower.probe import registry

log = logging.getLogger("watchtower")

#: Exit statuses are an interface: 0 nothing failed, 1 some check is `fail` or `error` (or an
#: action failed), 2 bad usage or bad configuration (one line per problem, no traceback),
#: 130 stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: The type of `add_subparsers()`, which each command module adds its parsers to.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler logs every job run at INFO; watchtower logs its own sweep lines instead.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def load(path: str) -> Fleet:
    """The fleet file, validated against what is registered (`registry.load_fleet_file`)."""
    return registry.load_fleet_file(path)
