"""`watchtower check | run | store prune | feeds update`: probing now, on schedule, and the
upkeep around it."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import threading

from watchtower.cli import terminal
from watchtower.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROBLEMS,
    Subparsers,
    load,
    setup_logging,
)
from watchtower.config import database_url
from watchtower.errors import ConfigError
from watchtower.model import Result, Status


def add_parsers(sub: Subparsers) -> None:
    s = sub.add_parser("check", help="run one sweep now and print the results")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--target", action="append", help="target name or glob (repeatable)")
    s.add_argument("--only", action="append", help="check id, glob or family (repeatable)")
    s.add_argument("--format", choices=["table", "json"], default="table")
    s.add_argument("--no-store", action="store_true", help="do not write results to the store")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("run", help="probe on schedule, store, serve /metrics")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--role", choices=["all", "scheduler"], default="all",
                   help="all: probe here (default); scheduler: defer probes to the agents of "
                        "each vantage and judge by quorum (docs/scale-out.md)")
    s.set_defaults(func=cmd_run)

    store_p = sub.add_parser("store", help="maintain the store")
    store_sub = store_p.add_subparsers(dest="store_command", required=True)
    s = store_sub.add_parser("prune", help="fold old history into day rollups, collect evidence")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--vacuum", action="store_true",
                   help="SQLite: rebuild the file afterwards (also enables incremental vacuum)")
    s.set_defaults(func=cmd_store_prune)

    s = sub.add_parser("feeds", help="manage the release feed drift.version compares with")
    feeds = s.add_subparsers(dest="feeds_command", required=True)
    s = feeds.add_parser("update", help="refresh [feeds] release from upstream")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--from", dest="source", metavar="FILE",
                   help="install this prepared feed file instead (offline installs, tests)")
    s.add_argument("--timeout", type=float, default=20.0, help="seconds per upstream")
    s.set_defaults(func=cmd_feeds_update)


def cmd_check(args: argparse.Namespace) -> int:
    from watchtower.probe.runner import plan_jobs
    from watchtower.probe.sweep import run_sweep, select_checks, staged_plan
    from watchtower.store import Store

    fleet = load(args.config)
    checks = select_checks(args.only)
    if args.only and not checks:
        raise ConfigError([f"--only {' '.join(args.only)}: matches no check id or family"])
    targets = fleet.targets()
    if args.target:
        targets = [t for t in targets if any(fnmatch.fnmatchcase(t.name, g) for g in args.target)]
        if not targets:
            raise ConfigError([f"--target {' '.join(args.target)}: matches no target"])
    store = None if args.no_store else Store(database_url(fleet.store))
    jobs = staged_plan(fleet, plan_jobs(fleet, checks, targets)).jobs
    table = args.format == "table"
    progress = terminal.Progress(len(jobs), sys.stderr, enabled=table and sys.stdout.isatty()
                                 and sys.stderr.isatty()).start()
    stop = threading.Event()
    try:
        with terminal.first_interrupt_stops(stop):
            outcome = run_sweep(fleet, store, checks, jobs=jobs, on_arrival=progress, stop=stop,
                                kind="adhoc")
    finally:
        progress.close()
        if store is not None:
            store.close()
    results = sorted(outcome.results, key=lambda r: (r.target.name, r.check))
    if table:
        _print_table(results, outcome.seconds, terminal.colour_wanted(sys.stdout))
    else:
        body: dict[str, object] = {"results": [r.to_json() for r in results]}
        json.dump(body | ({"interrupted": True} if stop.is_set() else {}), sys.stdout, indent=2)
        print()
    if stop.is_set():
        print(f"interrupted: {len(results)} of {len(jobs)} probes finished"
              f"{' (stored)' if store is not None else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    problems = any(r.status.is_problem for r in results)
    return EXIT_PROBLEMS if problems else EXIT_OK


def _print_table(results: list[Result], seconds: float, colour: bool) -> None:
    width = max((len(r.target.name) for r in results), default=10)
    for r in results:
        status = terminal.paint(f"{r.status!s:5}", r.status, colour)
        print(f"{status}  {r.target.name:{width}}  {r.check:26}  {r.summary}")
    counts: dict[Status, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in Status)
    problems = terminal.problem_summary(results, colour)
    if problems:
        print("\n" + "\n".join(problems))
    print(f"\n{len(results)} results in {seconds:.1f}s: {summary}")


def cmd_run(args: argparse.Namespace) -> int:
    """`watchtower run`: the daemon (watchtower/daemon) until SIGTERM; SIGHUP reloads."""
    from watchtower.daemon import Daemon

    fleet = load(args.config)
    setup_logging(fleet.daemon.log_level)
    Daemon(fleet, config_path=args.config, load=load, role=args.role).run()
    return EXIT_OK


def cmd_store_prune(args: argparse.Namespace) -> int:
    """`watchtower store prune`: apply the history retention now (the scheduler does it daily)."""
    from watchtower.store import Store
    from watchtower.store.retention import Policy, prune

    fleet = load(args.config)
    store = Store(database_url(fleet.store))
    try:
        print(prune(store, Policy.from_settings(fleet.retention), vacuum=args.vacuum).line())
    finally:
        store.close()
    return EXIT_OK


def cmd_feeds_update(args: argparse.Namespace) -> int:
    """Refresh [feeds] release from upstream, or install a prepared file (--from)."""
    from watchtower.inventory.feeds import FeedError, install_feed_file, update_release_feed

    fleet = load(args.config)
    dest = fleet.feeds.release
    if not dest:
        raise ConfigError([f"{args.config}: [feeds] release: not set (where to write "
                           "the release feed)"])
    try:
        if args.source:
            names = install_feed_file(args.source, dest)
            print(f"installed {args.source} as {dest}: {', '.join(names)}")
            return EXIT_OK
        from watchtower.probe.clients import SweepClients

        with SweepClients(fleet) as clients:
            names, problems = update_release_feed(dest, clients.http, timeout=args.timeout)
    except FeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    for name, why in sorted(problems.items()):
        print(f"warning: {name}: {why} (its old entry is kept)", file=sys.stderr)
    print(f"updated {dest}: {', '.join(names)}")
    return EXIT_PROBLEMS if problems else EXIT_OK
