"""`watchtower lab` and `watchtower demo`: the simulated fleet on loopback, alone or with
`watchtower run` and the dashboard against it."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from watchtower.cli.common import EXIT_OK, EXIT_PROBLEMS, Subparsers, load, setup_logging
from watchtower.cli.dashboard import wait_until_serving
from watchtower.cli.ports import Wanted, require_free
from watchtower.config import Fleet
from watchtower.daemon import Daemon, wait_for_signal
from watchtower.errors import ConfigError


def add_parsers(sub: Subparsers) -> None:
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
        s.add_argument("--interval", type=float, metavar="SECONDS",
                       help="seconds between sweeps of each check family in the lab's fleet "
                            "(default: watchtower.lab.fleet.LAB_INTERVAL, a minute)")
        if name == "demo":
            s.add_argument("--dashboard-port", type=int, default=8501)
        s.set_defaults(func=func)


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
            now, kept = client.switch(words[1], words[2], words[3] == "on")
            print(f"{words[1]}: {', '.join(now) or 'no faults'}")
            if kept:
                print(f"  kept as the DNS API set them: {', '.join(kept)}")
            return EXIT_OK
    except ControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for line in _choice_lines(exc.choices):
            print(line, file=sys.stderr)
        return EXIT_PROBLEMS
    raise ConfigError([f"lab {' '.join(words)}: expected `fault DOMAIN FAULT on|off` "
                       "or `faults`"])


def _choice_lines(choices: Sequence[str], width: int = 100) -> list[str]:
    """What the lab would have accepted, wrapped, one group of lines per role (`site:...`,
    `fedi:...`; the DNS and mail faults have none)."""
    groups: dict[str, list[str]] = {}
    for choice in choices:
        role, sep, _ = choice.partition(":")
        groups.setdefault(role if sep else "", []).append(choice)
    return [line for names in groups.values()
            for line in textwrap.wrap(", ".join(names), width, initial_indent="  ",
                                      subsequent_indent="    ", break_on_hyphens=False)]


def _interval(seconds: float | None) -> float | None:
    if seconds is not None and not 5 <= seconds <= 86400:
        raise ConfigError([f"--interval {seconds:g}: seconds between sweeps, 5 to 86400"])
    return seconds


def _start_lab(args: argparse.Namespace) -> Any:
    from watchtower.lab import Lab

    require_free(_wanted_ports(args))  # one line per busy port, before anything starts
    try:
        lab = Lab(Path(args.dir), domains=args.domains, faults=_lab_faults(args),
                  dns_port=args.dns_port, https_port=args.https_port, http_port=0,
                  metrics_listen=args.metrics_listen,
                  interval=_interval(args.interval))
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    lab.start()
    return lab


def cmd_lab(args: argparse.Namespace) -> int:
    if args.control:
        return cmd_lab_control(args)
    setup_logging("info")
    lab = _start_lab(args)
    print(f"lab running: {len(lab.domains)} domains; fleet file {lab.fleet_path}\n"
          f"  try: watchtower check -c {lab.fleet_path}\n  stop with Ctrl-C", flush=True)
    try:
        wait_for_signal()
    finally:
        lab.stop()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    setup_logging("info")
    lab = _start_lab(args)
    dashboard: Any = None
    url = f"http://127.0.0.1:{args.dashboard_port}/"
    try:
        fleet = load(str(lab.fleet_path))
        login = _demo_dashboard_user(fleet)
        dashboard = subprocess.Popen(  # stopped in `finally`; argv list, no shell
            [sys.executable, "-m", "watchtower.cli", "dashboard", "-c", str(lab.fleet_path),
             "--address", "127.0.0.1", "--port", str(args.dashboard_port)])

        def banner(message: str) -> None:
            # The URL is printed once it answers: a reader opening it at once gets the page.
            if not wait_until_serving(url, dashboard):
                print(f"warning: the dashboard has not answered at {url} yet", file=sys.stderr)
            print(f"\n{message}\n  lab fleet file: {lab.fleet_path}\n"
                  f"  dashboard:      {url}  (user {login[0]}, password {login[1]})\n"
                  f"  one sweep now:  watchtower check -c {lab.fleet_path}\n"
                  f"  stop with Ctrl-C\n", flush=True)

        Daemon(fleet, config_path=str(lab.fleet_path), load=load).run(banner)
        return EXIT_OK
    finally:
        if dashboard is not None:
            dashboard.terminate()
            try:
                dashboard.wait(10)
            except subprocess.TimeoutExpired:
                dashboard.kill()
        lab.stop()


def _wanted_ports(args: argparse.Namespace) -> list[Wanted]:
    """What `lab` (and `demo`, which adds `watchtower run` and the dashboard) listen on."""
    wanted = [Wanted("--dns-port", "127.0.0.1", args.dns_port, "the lab's DNS server", udp=True),
              Wanted("--https-port", "127.0.0.1", args.https_port, "the lab's web sites")]
    if args.command == "demo":
        wanted += [Wanted.listen("--metrics-listen", args.metrics_listen,
                                 "`watchtower run` (/metrics and heartbeat pings)"),
                   Wanted("--dashboard-port", "127.0.0.1", args.dashboard_port,
                          "the demo's dashboard")]
    return wanted


def _demo_dashboard_user(fleet: Fleet) -> tuple[str, str]:
    """A demo operator with a fresh random password in the lab's users file."""
    import secrets
    from typing import TYPE_CHECKING

    if TYPE_CHECKING:  # mypy knows dashboards/ by its folder name (pyproject.toml [tool.mypy])
        from dashboards.auth import add_user
    else:
        from watchtower.dashboards.auth import add_user

    password = secrets.token_urlsafe(12)
    assert fleet.dashboard.users_file is not None
    add_user(fleet.dashboard.users_file, "demo", "operator", password, replace=True)
    return "demo", password
