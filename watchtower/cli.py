"""The `watchtower` command.

Exit statuses are an interface: 0 nothing failed, 1 some check is `fail` or `error`, 2 bad usage
or bad configuration (one line per problem, no traceback).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from watchtower import __version__, plugins
from watchtower.config import Fleet, database_url, load_fleet
from watchtower.errors import ConfigError
from watchtower.model import Result, Status

log = logging.getLogger("watchtower")

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _load(path: str) -> Fleet:
    return load_fleet(path, plugins.check_ids_and_families())


# -- commands -----------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    text = resources.files("watchtower").joinpath("example_fleet.toml").read_text()
    if args.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"{out} exists; use --force to overwrite", file=sys.stderr)
        return EXIT_USAGE
    out.write_text(text)
    print(f"wrote {out}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    fleet = _load(args.config)
    targets = fleet.targets()
    print(f"{args.config}: ok ({len(targets)} targets, {len(fleet.checks)} check overrides)")
    return EXIT_OK


def cmd_checks(args: argparse.Namespace) -> int:
    checks = plugins.checks()
    if args.format == "json":
        json.dump({"checks": [c.meta.to_json() for c in checks.values()]}, sys.stdout, indent=2)
        print()
        return EXIT_OK
    for c in checks.values():
        kinds = ",".join(str(k) for k in c.meta.applies_to)
        print(f"{c.meta.id:28} {c.meta.family:8} {kinds:18} {c.meta.title}")
    return EXIT_OK


class Progress:
    """A one-line counter on a terminal for sweeps that take more than a moment."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.enabled = stream.isatty() and total > 20
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, _result: Result) -> None:
        self.done += 1
        if self.enabled and time.monotonic() - self.started > 0.5:
            self.shown = True
            self.stream.write(f"\r{self.done}/{self.total} probes")
            self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 30 + "\r")
            self.stream.flush()


def cmd_check(args: argparse.Namespace) -> int:
    from watchtower.engine import run_sweep, select_checks
    from watchtower.runner import plan_jobs
    from watchtower.store import Store

    fleet = _load(args.config)
    checks = select_checks(args.only)
    if args.only and not checks:
        raise ConfigError([f"--only {' '.join(args.only)}: matches no check id or family"])
    targets = fleet.targets()
    if args.target:
        targets = [t for t in targets if any(fnmatch.fnmatchcase(t.name, g) for g in args.target)]
        if not targets:
            raise ConfigError([f"--target {' '.join(args.target)}: matches no target"])
    store = None if args.no_store else Store(database_url(fleet.settings))
    jobs = plan_jobs(fleet, checks, targets)
    progress = Progress(len(jobs), sys.stderr)
    try:
        outcome = run_sweep(fleet, store, checks, jobs=jobs, on_result=progress)
    finally:
        progress.close()
        if store is not None:
            store.close()
    results = sorted(outcome.results, key=lambda r: (r.target.name, r.check))
    if args.format == "json":
        json.dump({"results": [r.to_json() for r in results]}, sys.stdout, indent=2)
        print()
    else:
        _print_table(results, outcome.seconds)
    problems = any(r.status.is_problem for r in results)
    return EXIT_PROBLEMS if problems else EXIT_OK


def _print_table(results: list[Result], seconds: float) -> None:
    width = max((len(r.target.name) for r in results), default=10)
    for r in results:
        print(f"{r.status!s:5}  {r.target.name:{width}}  {r.check:26}  {r.summary}")
    counts: dict[Status, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in Status)
    print(f"\n{len(results)} results in {seconds:.1f}s: {summary}")


def _wait_for_signal(on_reload: Callable[[], None] | None = None) -> None:
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    if on_reload is not None:
        signal.signal(signal.SIGHUP, lambda *_: on_reload())
    while not stop.wait(0.5):
        pass


def start_metrics_server(store: Any, listen: str) -> Any:
    from prometheus_client import CollectorRegistry, start_http_server

    from watchtower.metrics import StateCollector

    host, _, port = listen.rpartition(":")
    registry = CollectorRegistry()
    registry.register(StateCollector(store))
    server, _thread = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1",
                                        registry=registry)
    return server


def serve(fleet: Fleet, *, banner: Callable[[str], None] | None = None) -> int:
    """`watchtower run`: schedule, probe, store, serve /metrics until SIGTERM."""
    from watchtower.engine import select_checks
    from watchtower.scheduler import Scheduler
    from watchtower.store import Store

    store = Store(database_url(fleet.settings))
    interrupted = store.mark_interrupted()
    if interrupted:
        log.warning("%d sweep(s) were interrupted by the last stop; their stored results stay",
                    interrupted)
    server = start_metrics_server(store, fleet.settings.metrics_listen)
    scheduler = Scheduler(fleet, store, select_checks())
    scheduler.start()
    listen = fleet.settings.metrics_listen
    message = f"watchtower {__version__} running; metrics at http://{listen}/metrics"
    (banner or log.info)(message)
    try:
        _wait_for_signal()
    finally:
        scheduler.shutdown()
        server.shutdown()
        store.close()
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    fleet = _load(args.config)
    _setup_logging(fleet.settings.log_level)
    return serve(fleet)


def _parse_faults(items: Sequence[str]) -> dict[str, set[str]] | None:
    if not items:
        return None
    faults: dict[str, set[str]] = {}
    for item in items:
        target, sep, names = item.partition("=")
        if not sep:
            raise ConfigError([f"--fault {item!r}: expected DOMAIN=FAULT[,FAULT]"])
        faults.setdefault(target, set()).update(n for n in names.split(",") if n)
    return faults


def _start_lab(args: argparse.Namespace) -> Any:
    from watchtower.lab import Lab

    try:
        lab = Lab(Path(args.dir), domains=args.domains, faults=_parse_faults(args.fault),
                  dns_port=args.dns_port, https_port=args.https_port, http_port=0,
                  metrics_listen=args.metrics_listen)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    lab.start()
    return lab


def cmd_lab(args: argparse.Namespace) -> int:
    _setup_logging("info")
    lab = _start_lab(args)
    print(f"lab running: {len(lab.domains)} domains; fleet file {lab.fleet_path}\n"
          f"  try: watchtower check -c {lab.fleet_path}\n  stop with Ctrl-C", flush=True)
    try:
        _wait_for_signal()
    finally:
        lab.stop()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    _setup_logging("info")
    lab = _start_lab(args)
    try:
        fleet = _load(str(lab.fleet_path))

        def banner(message: str) -> None:
            print(f"\n{message}\n  lab fleet file: {lab.fleet_path}\n"
                  f"  one sweep now:  watchtower check -c {lab.fleet_path}\n"
                  f"  stop with Ctrl-C\n", flush=True)

        return serve(fleet, banner=banner)
    finally:
        lab.stop()


# -- argument parsing ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="watchtower", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"watchtower {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="write a commented example fleet file")
    s.add_argument("-o", "--output", default="fleet.toml")
    s.add_argument("--force", action="store_true")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("validate", help="check a fleet file and exit")
    s.add_argument("-c", "--config", required=True)
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("checks", help="list registered checks")
    s.add_argument("--format", choices=["table", "json"], default="table")
    s.set_defaults(func=cmd_checks)

    s = sub.add_parser("check", help="run one sweep now and print the results")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--target", action="append", help="target name or glob (repeatable)")
    s.add_argument("--only", action="append", help="check id, glob or family (repeatable)")
    s.add_argument("--format", choices=["table", "json"], default="table")
    s.add_argument("--no-store", action="store_true", help="do not write results to the store")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("run", help="probe on schedule, store, serve /metrics")
    s.add_argument("-c", "--config", required=True)
    s.set_defaults(func=cmd_run)

    for name, func, text in (("lab", cmd_lab, "start the simulated lab fleet on loopback"),
                             ("demo", cmd_demo, "start the lab and watchtower run against it")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--dir", default="lab-state", help="where the lab keeps its files")
        s.add_argument("--domains", type=int, default=3)
        s.add_argument("--fault", action="append", default=[],
                       help="DOMAIN=FAULT[,FAULT] (repeatable); replaces the demo's faults")
        s.add_argument("--dns-port", type=int, default=10053)
        s.add_argument("--https-port", type=int, default=10443)
        s.add_argument("--metrics-listen", default="127.0.0.1:9810")
        s.set_defaults(func=func)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("run", "lab", "demo"):
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
