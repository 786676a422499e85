"""`watchtower agent --vantage NAME`: claim probe jobs from one vantage's queue
(watchtower/scaleout; the scheduler is `watchtower run --role scheduler`)."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from watchtower.cli.common import EXIT_OK, Subparsers, load, setup_logging
from watchtower.config import database_url


def add_parsers(sub: Subparsers) -> None:
    s = sub.add_parser("agent", help="run probe jobs of one vantage point (scale-out)")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--vantage", required=True, help="one of [scaleout] vantages")
    s.add_argument("--name", help="this agent's name (default vantage@host:pid)")
    s.set_defaults(func=cmd_agent)


def cmd_agent(args: argparse.Namespace) -> int:
    """Until SIGTERM/SIGINT: jobs claimed, run, recorded; running ones finish first."""
    from watchtower.probe.sweep import select_checks
    from watchtower.scaleout.roles import run_agent
    from watchtower.store import Store

    fleet = load(args.config)
    setup_logging(fleet.daemon.log_level)
    stop = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        # not stop.set() here: a second signal arriving inside set() would wait on the
        # event's lock, held by the interrupted set() beneath it, for ever
        threading.Thread(target=stop.set, name="stop").start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    store = Store(database_url(fleet.store))
    try:
        run_agent(fleet, store, select_checks(), args.vantage, stop, args.name)
    finally:
        store.close()
    return EXIT_OK
