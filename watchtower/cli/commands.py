"""The `watchtower` command.

Exit statuses are an interface: 0 nothing failed, 1 some check is `fail` or `error`, 2 bad usage
or bad configuration (one line per problem, no traceback).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from watchtower import __version__
from watchtower.config import Fleet, database_url, load_fleet
from watchtower.errors import ConfigError
from watchtower.model import Result, Status
from watchtower.probe import registry, workers

log = logging.getLogger("watchtower")

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler logs every job run at INFO; watchtower logs its own sweep lines instead.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _load(path: str) -> Fleet:
    return load_fleet(path, registry.check_ids_and_families())


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
    checks = registry.checks()
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
    from watchtower.probe.runner import plan_jobs
    from watchtower.probe.sweep import run_sweep, select_checks
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
    store = None if args.no_store else Store(database_url(fleet.store))
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


def start_metrics_server(store: Any, fleet: Fleet, runtime: Any = None) -> Any:
    """`/metrics` on settings.metrics_listen, behind basic auth when settings.metrics_auth;
    on the same listener the heartbeat pings and the probe actor (watchtower/daemon/http.py)."""
    from watchtower.daemon.http import DaemonApp, HeartbeatApp, actor_app
    from watchtower.metrics import MetricsApp, MetricsPage, MetricsServer, credentials_of

    metrics = MetricsApp(MetricsPage(store, runtime), credentials_of(fleet.metrics.auth))
    app = DaemonApp(metrics, HeartbeatApp(store, fleet), actor_app(fleet))
    return MetricsServer(app, fleet.metrics.listen).start()


def serve(fleet: Fleet, *, banner: Callable[[str], None] | None = None,
          config_path: str | None = None) -> int:
    """`watchtower run`: schedule, probe, store, alert, serve /metrics until SIGTERM.

    SIGHUP re-reads `config_path`: a valid file replaces the schedule, thresholds, channels,
    maintenance windows and metrics credentials without a restart (state is in the store); a
    bad one is logged and ignored, and the running config stays.
    """
    from watchtower.alerting.notify import OutboxWorker
    from watchtower.alerting.processor import AlertProcessor
    from watchtower.metrics import RuntimeStats, credentials_of
    from watchtower.probe.scheduler import Scheduler
    from watchtower.probe.sweep import select_checks
    from watchtower.remediation.engine import Remediator, default_context
    from watchtower.store import Store

    store = Store(database_url(fleet.store))
    interrupted = store.mark_interrupted()
    if interrupted:
        log.warning("%d sweep(s) were interrupted by the last stop; their stored results stay",
                    interrupted)
    runtime = RuntimeStats()
    server = start_metrics_server(store, fleet, runtime)
    alerts = AlertProcessor(store, fleet)
    outbox = OutboxWorker(store, fleet)
    outbox.start()
    from watchtower.report import ReportScheduler

    reports = ReportScheduler(store, fleet)
    reports.start()
    remediator = Remediator(fleet, store, default_context(fleet, store))
    recovered = remediator.recover()
    if recovered:
        log.warning("resolved %d remediation(s) interrupted by the last stop", len(recovered))

    def after_sweep(_key: str, _outcome: object) -> None:
        outbox.wake()
        remediator.run_auto()

    scheduler = Scheduler(fleet, store, select_checks(), on_sweep=after_sweep, alerts=alerts,
                          runtime=runtime)
    if fleet.probe.sweep_processes != 1:
        workers.prestart()  # large sweeps fork their workers from it
    scheduler.start()

    def reload() -> None:
        if config_path is None:
            log.warning("SIGHUP ignored: no config file to re-read")
            return
        try:
            new = _load(config_path)
            credentials = credentials_of(new.metrics.auth)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload rejected, the running config stays: %s", problem)
            return
        if new.metrics.listen != scheduler.fleet.metrics.listen:
            log.warning("[metrics] listen changes need a restart; still serving the old")
        scheduler.reload(new)
        remediator.reconfigure(new)  # policies are read at apply time: a narrower one holds
        alerts.reconfigure(new)
        outbox.reconfigure(new)
        reports.reconfigure(new)
        server.app.credentials = credentials
        server.app.heartbeats.reconfigure(new)
        log.info("reloaded %s", config_path)

    listen = f"{server.httpd.server_address[0]}:{server.port}"
    message = f"watchtower {__version__} running; metrics at http://{listen}/metrics"
    (banner or log.info)(message)
    try:
        _wait_for_signal(reload)
    finally:
        scheduler.shutdown()
        outbox.stop()
        reports.shutdown()
        server.shutdown()
        store.close()
    return EXIT_OK


def cmd_store_prune(args: argparse.Namespace) -> int:
    """`watchtower store prune`: apply the history retention now (the scheduler does it daily)."""
    from watchtower.store import Store
    from watchtower.store.retention import Policy, prune

    fleet = _load(args.config)
    store = Store(database_url(fleet.store))
    try:
        print(prune(store, Policy.from_settings(fleet.retention), vacuum=args.vacuum).line())
    finally:
        store.close()
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    fleet = _load(args.config)
    _setup_logging(fleet.daemon.log_level)
    return serve(fleet, config_path=args.config)


def cmd_report(args: argparse.Namespace) -> int:
    """`watchtower report`: build a compliance report from the store; write, store or mail it."""
    import datetime as dt

    from watchtower.report import (
        Period,
        build_report,
        list_reports,
        render_html,
        render_json,
        render_pdf,
        render_text,
        send_report,
        store_report,
    )
    from watchtower.store import Store

    fleet = _load(args.config)
    store = Store(database_url(fleet.store))
    try:
        if args.list:
            for row in list_reports(store):
                print(f"#{row.id:<5} {row.created_at:%Y-%m-%d %H:%M} {row.name:16} "
                      f"{row.customer or '-':16} {row.state:8} attempts={row.attempts} "
                      f"{row.last_error or ''}")
            return EXIT_OK
        spec = next((r for r in fleet.reports if r.name == args.name), None)
        if args.name and spec is None:
            raise ConfigError([f"--name {args.name}: no [[reports]] entry of that name"])
        customer = args.customer or (spec.customer if spec else None)
        days = args.period_days or (spec.period_days if spec else 30)
        now = dt.datetime.now(dt.UTC)
        report = build_report(store, fleet, customer, Period.last_days(days, now),
                              name=args.name or "adhoc", now=now)
        if args.out:
            render = {"html": render_html, "text": render_text, "json": render_json}
            out = Path(args.out)
            if args.format == "pdf":
                out.write_bytes(render_pdf(report))
            else:
                out.write_text(render[args.format](report))
            print(f"wrote {out} (score {report.score}%)")
        if args.send:
            if spec is None:
                raise ConfigError(["--send needs --name of a [[reports]] entry (recipients, "
                                   "channel)"])
            row = store_report(store, report, recipients=spec.recipients, channel=spec.channel,
                               formats=spec.formats)
            assert row.id is not None
            row = send_report(store, fleet, row.id)
            print(f"report #{row.id} {row.state}" + (f": {row.last_error}"
                                                     if row.last_error else ""))
            return EXIT_OK if row.state == "sent" else EXIT_PROBLEMS
        if not args.out:
            if args.format == "pdf":
                raise ConfigError(["--format pdf needs --out FILE"])
            sys.stdout.write(render_json(report) if args.format == "json"
                             else render_text(report) if args.format == "text"
                             else render_html(report))
    finally:
        store.close()
    return EXIT_OK


def cmd_remediate(args: argparse.Namespace) -> int:
    """`watchtower remediate list|plan|approve|reject|apply|history`."""
    import getpass

    from watchtower.remediation.engine import PolicyRefused, Remediator, default_context, plans_text
    from watchtower.store import Store
    from watchtower.store.remediation import OPEN_STATES

    fleet = _load(args.config)
    store = Store(database_url(fleet.store))
    remediator = Remediator(fleet, store, default_context(fleet, store))
    actor = args.user or getpass.getuser()
    try:
        if args.action == "plan":
            rows = remediator.propose()
            print("\n\n".join(plans_text(r) for r in rows) or "nothing to remediate")
        elif args.action == "list":
            rows = remediator.proposals(None if args.all else (*OPEN_STATES, "dry_run"))
            for r in rows:
                print(f"#{r.id:<5} {r.state:18} {r.remediation:16} {r.target:30} {r.summary}")
        elif args.action == "history":
            for a in remediator.history(args.id):
                mark = "ok " if a.ok else "ERR"
                print(f"{a.at:%Y-%m-%d %H:%M:%S} #{a.remediation_id} {mark} {a.actor:10} "
                      f"{a.action:16} {a.detail.splitlines()[0] if a.detail else ''}")
        elif args.id is None:
            raise ConfigError([f"remediate {args.action}: give the remediation ID"])
        elif args.action == "approve":
            remediator.approve(args.id, actor)
            print(f"#{args.id} approved by {actor}")
        elif args.action == "reject":
            remediator.reject(args.id, actor, args.reason or "")
            print(f"#{args.id} rejected by {actor}")
        elif args.action == "apply":
            row = remediator.apply(args.id, actor, force=args.force)
            print(f"#{row.id} {row.state}: {row.outcome}")
            return EXIT_OK if row.state == "applied" else EXIT_PROBLEMS
        elif args.action == "undo":
            row = remediator.revert(args.id, actor)
            print(f"#{row.id} {row.state}: {row.outcome}")
            return EXIT_OK if row.state == "reverted" else EXIT_PROBLEMS
    except PolicyRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    finally:
        store.close()
    return EXIT_OK


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


def _lab_faults(args: argparse.Namespace) -> dict[str, set[str]] | None:
    """The fault plan from --fault, --faults-file and --fault-share/--seed (None: the demo's)."""
    from watchtower.lab.faults import load_file, merge, random_faults
    from watchtower.lab.fleet import build_domains

    if not (args.fault or args.faults_file or args.fault_share):
        return None
    plans = [_parse_faults(args.fault) or {}]
    if args.faults_file:
        plans.append(load_file(Path(args.faults_file)))
    if args.fault_share:
        plans.append(random_faults(build_domains(args.domains, {}), args.fault_share, args.seed))
    return merge(*plans)


def cmd_lab_control(args: argparse.Namespace) -> int:
    """`watchtower lab fault DOMAIN FAULT on|off` and `watchtower lab faults` (a running lab)."""
    from watchtower.lab.control import ControlClient, ControlError

    words = args.control
    try:
        client = ControlClient(Path(args.dir))
        if words == ["faults"]:
            for domain, names in sorted(client.faults().items()):
                print(f"{domain}: {', '.join(names)}")
            return EXIT_OK
        if len(words) == 4 and words[0] == "fault" and words[3] in ("on", "off"):
            now = client.set(words[1], words[2], words[3] == "on")
            print(f"{words[1]}: {', '.join(now) or 'no faults'}")
            return EXIT_OK
    except ControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    raise ConfigError([f"lab {' '.join(words)}: expected `fault DOMAIN FAULT on|off` "
                       "or `faults`"])


def _start_lab(args: argparse.Namespace) -> Any:
    from watchtower.lab import Lab

    try:
        lab = Lab(Path(args.dir), domains=args.domains, faults=_lab_faults(args),
                  dns_port=args.dns_port, https_port=args.https_port, http_port=0,
                  metrics_listen=args.metrics_listen)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    lab.start()
    return lab


def cmd_feeds_update(args: argparse.Namespace) -> int:
    """Refresh [feeds] release from upstream, or install a prepared file (--from)."""
    from watchtower.inventory.feeds import FeedError, install_feed_file, update_release_feed

    fleet = _load(args.config)
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


def cmd_lab(args: argparse.Namespace) -> int:
    if args.control:
        return cmd_lab_control(args)
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
    dashboard: Any = None
    try:
        fleet = _load(str(lab.fleet_path))
        login = _demo_dashboard_user(fleet)
        dashboard = subprocess.Popen(  # stopped in `finally`; argv list, no shell
            [sys.executable, "-m", "watchtower.cli", "dashboard", "-c", str(lab.fleet_path),
             "--address", "127.0.0.1", "--port", str(args.dashboard_port)])

        def banner(message: str) -> None:
            print(f"\n{message}\n  lab fleet file: {lab.fleet_path}\n"
                  f"  dashboard:      http://127.0.0.1:{args.dashboard_port}/  (user "
                  f"{login[0]}, password {login[1]})\n"
                  f"  one sweep now:  watchtower check -c {lab.fleet_path}\n"
                  f"  stop with Ctrl-C\n", flush=True)

        return serve(fleet, banner=banner, config_path=str(lab.fleet_path))
    finally:
        if dashboard is not None:
            dashboard.terminate()
            try:
                dashboard.wait(10)
            except subprocess.TimeoutExpired:
                dashboard.kill()
        lab.stop()


def _demo_dashboard_user(fleet: Fleet) -> tuple[str, str]:
    """A demo operator with a fresh random password in the lab's users file."""
    import secrets

    from watchtower.dashboards.auth import add_user

    password = secrets.token_urlsafe(12)
    assert fleet.dashboard.users_file is not None
    add_user(fleet.dashboard.users_file, "demo", "operator", password, replace=True)
    return "demo", password


def dashboard_argv(config: str, address: str, port: int, fleet: Fleet | None = None
                   ) -> list[str]:
    """The Streamlit command `watchtower dashboard` becomes (an argv list, never a shell)."""
    app = resources.files("watchtower.dashboards").joinpath("app.py")
    argv = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", address,
            "--server.port", str(port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
            # a calm blue accent: Streamlit's default red reads as "failing" on score bars
            "--theme.primaryColor", "#2563eb"]
    if fleet is not None and fleet.dashboard.oidc is not None:
        argv += ["--secrets.files", fleet.dashboard.oidc.secrets_file]
    return [*argv, "--", "-c", str(Path(config).resolve())]


def cmd_dashboard(args: argparse.Namespace) -> int:
    """`watchtower dashboard`: validate the fleet file, then become the Streamlit server."""
    fleet = _load(args.config)
    if fleet.dashboard.users_file is None and fleet.dashboard.oidc is None:
        print("warning: no [dashboard] users_file or oidc in the fleet file: nobody can sign "
              "in (see `watchtower dashboard-user add`)", file=sys.stderr)
    argv = dashboard_argv(args.config, args.address, args.port, fleet)
    sys.stdout.flush()
    os.execv(argv[0], argv)  # noqa: S606 - an argv list; the process becomes Streamlit
    return EXIT_OK  # not reached


def cmd_fleet_import(args: argparse.Namespace) -> int:
    from watchtower.config.from_nix import import_fleet

    out = None if args.out is None else Path(args.out)
    sys.stdout.write(import_fleet(args.flake, out, merge=args.merge, nix=args.nix).rstrip("\n")
                     + "\n")
    return EXIT_OK


def cmd_dashboard_user(args: argparse.Namespace) -> int:
    """`watchtower dashboard-user add NAME --role R --users-file F` (password from stdin)."""
    import getpass

    from watchtower.dashboards.auth import AuthError, add_user, load_users

    if args.action == "list":
        for entry in load_users(args.users_file).values():
            print(f"{entry.name:30} {entry.role}")
        return EXIT_OK
    if not args.name:
        raise ConfigError(["dashboard-user add: give the user NAME"])
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return EXIT_USAGE
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("error: use a password of at least 8 characters", file=sys.stderr)
        return EXIT_USAGE
    try:
        entry = add_user(args.users_file, args.name, args.role, password, replace=args.replace)
    except AuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{entry.name} ({entry.role}) written to {args.users_file}")
    return EXIT_OK


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

    s = sub.add_parser("remediate", help="plan, approve, apply and audit remediations")
    s.add_argument("action",
                   choices=["list", "plan", "approve", "reject", "apply", "undo", "history"])
    s.add_argument("id", nargs="?", type=int)
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--user", help="who approves or applies (default: the login name)")
    s.add_argument("--reason", help="why, with reject")
    s.add_argument("--force", action="store_true", help="apply despite a guard")
    s.add_argument("--all", action="store_true", help="list finished ones too")
    s.set_defaults(func=cmd_remediate)

    s = sub.add_parser("report", help="build a compliance report; write it, or mail it")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--customer", help="only this customer's targets (default: the whole fleet)")
    s.add_argument("--name", help="a [[reports]] entry: its customer, period and recipients")
    s.add_argument("--period-days", type=int, help="days back from now (default 30)")
    s.add_argument("--format", choices=["html", "json", "pdf", "text"], default="text")
    s.add_argument("--out", help="write the report to this file (pdf needs it)")
    s.add_argument("--send", action="store_true", help="store and mail it now (needs --name)")
    s.add_argument("--list", action="store_true", help="list stored reports and their delivery")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("run", help="probe on schedule, store, serve /metrics")
    s.add_argument("-c", "--config", required=True)
    s.set_defaults(func=cmd_run)

    store_p = sub.add_parser("store", help="maintain the store")
    store_sub = store_p.add_subparsers(dest="store_command", required=True)
    s = store_sub.add_parser("prune", help="fold old history into day rollups, collect evidence")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--vacuum", action="store_true",
                   help="SQLite: rebuild the file afterwards (also enables incremental vacuum)")
    s.set_defaults(func=cmd_store_prune)

    s = sub.add_parser("dashboard", help="serve the operators' dashboard (Streamlit)")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--address", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8501)
    s.set_defaults(func=cmd_dashboard)

    s = sub.add_parser("dashboard-user", help="manage the dashboard's local users")
    s.add_argument("action", choices=["add", "list"])
    s.add_argument("name", nargs="?", default="")
    s.add_argument("--role", choices=["viewer", "operator"], default="viewer")
    s.add_argument("--users-file", required=True)
    s.add_argument("--replace", action="store_true", help="reset an existing user")
    s.set_defaults(func=cmd_dashboard_user)

    fleet_p = sub.add_parser("fleet", help="the fleet file from other sources")
    fleet_sub = fleet_p.add_subparsers(dest="fleet_command", required=True)
    s = fleet_sub.add_parser(
        "import", help="derive the fleet from a flake's NixOS configurations (nix eval)")
    s.add_argument("--flake", required=True, metavar="PATH[#ATTR]",
                   help="flake and attribute of its NixOS configurations "
                        "(default attribute: nixosConfigurations)")
    s.add_argument("--out", help="fleet file to write; if it exists, show the merge as a diff")
    s.add_argument("--merge", action="store_true",
                   help="with --out naming an existing file: write the merge (theirs win)")
    s.add_argument("--nix", default="nix", help="the nix command (default: nix from PATH)")
    s.set_defaults(func=cmd_fleet_import)

    s = sub.add_parser("feeds", help="manage the release feed drift.version compares with")
    feeds = s.add_subparsers(dest="feeds_command", required=True)
    s = feeds.add_parser("update", help="refresh [feeds] release from upstream")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--from", dest="source", metavar="FILE",
                   help="install this prepared feed file instead (offline installs, tests)")
    s.add_argument("--timeout", type=float, default=20.0, help="seconds per upstream")
    s.set_defaults(func=cmd_feeds_update)

    from watchtower.cli.dns import add_parser as add_dns_parser

    add_dns_parser(sub)

    for name, func, text in (("lab", cmd_lab, "start the simulated lab fleet on loopback"),
                             ("demo", cmd_demo, "start the lab and watchtower run against it")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--dir", default="lab-state", help="where the lab keeps its files")
        s.add_argument("--domains", type=int, default=3)
        s.add_argument("--fault", action="append", default=[],
                       help="DOMAIN=FAULT[,FAULT] (repeatable); replaces the demo's faults")
        s.add_argument("--faults-file", help="JSON or TOML: {domain = [fault, ...]}")
        s.add_argument("--fault-share", type=float, default=0.0,
                       help="give this share of the domains one random fault each")
        s.add_argument("--seed", type=int, default=42, help="seed of --fault-share")
        if name == "lab":
            s.add_argument("control", nargs="*",
                           help="on a running lab: `fault DOMAIN FAULT on|off` or `faults`")
        s.add_argument("--dns-port", type=int, default=10053)
        s.add_argument("--https-port", type=int, default=10443)
        s.add_argument("--metrics-listen", default="127.0.0.1:9810")
        if name == "demo":
            s.add_argument("--dashboard-port", type=int, default=8501)
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
