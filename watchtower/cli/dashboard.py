"""`watchtower dashboard` and `watchtower dashboard-user`: the operators' Streamlit app and its
local users."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from pathlib import Path

from watchtower.cli.common import EXIT_OK, EXIT_USAGE, Subparsers, load
from watchtower.config import Fleet
from watchtower.daemon import DaemonError
from watchtower.errors import ConfigError


def add_parsers(sub: Subparsers) -> None:
    s = sub.add_parser("dashboard", help="serve the operators' dashboard (Streamlit)")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--address", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8501)
    s.set_defaults(func=cmd_dashboard)

    s = sub.add_parser("dashboard-user", help="manage the dashboard's local users")
    s.add_argument("action", choices=["add", "list", "remove"])
    s.add_argument("name", nargs="?", default="")
    s.add_argument("--role", choices=["viewer", "operator"], default="viewer")
    s.add_argument("--users-file", required=True)
    s.add_argument("--replace", action="store_true", help="reset an existing user")
    s.set_defaults(func=cmd_dashboard_user)


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


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], timeout: float = 180.0,
                       interval: float = 0.3) -> bool:
    """Whether the dashboard at `url` answered Streamlit's health check within `timeout`
    seconds; raises DaemonError when its process `proc` exits first (a busy port, a broken
    install), since then nothing will ever answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise DaemonError(f"the dashboard exited with status {code} before it answered "
                              f"at {url} (its output is above)")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(interval)
    return False


def cmd_dashboard(args: argparse.Namespace) -> int:
    """`watchtower dashboard`: validate the fleet file, then become the Streamlit server."""
    fleet = load(args.config)
    if fleet.dashboard.users_file is None and fleet.dashboard.oidc is None:
        print("warning: no [dashboard] users_file or oidc in the fleet file: nobody can sign "
              "in (see `watchtower dashboard-user add`)", file=sys.stderr)
    argv = dashboard_argv(args.config, args.address, args.port, fleet)
    sys.stdout.flush()
    os.execv(argv[0], argv)  # noqa: S606 - an argv list; the process becomes Streamlit
    return EXIT_OK  # not reached


def cmd_dashboard_user(args: argparse.Namespace) -> int:
    """`watchtower dashboard-user add NAME --role R --users-file F` (password from stdin),
    `list`, `remove NAME`."""
    import getpass
    from typing import TYPE_CHECKING

    if TYPE_CHECKING:  # mypy knows dashboards/ by its folder name (pyproject.toml [tool.mypy])
        from dashboards.auth import AuthError, add_user, load_users, remove_user
    else:
        from watchtower.dashboards.auth import AuthError, add_user, load_users, remove_user

    if args.action == "list":
        users = load_users(args.users_file)
        for entry in users.values():
            print(f"{entry.name:30} {entry.role}")
        if not users:
            print(f"no users in {args.users_file}")
        return EXIT_OK
    if not args.name:
        raise ConfigError([f"dashboard-user {args.action}: give the user NAME"])
    if args.action == "remove":
        try:
            entry = remove_user(args.users_file, args.name)
        except AuthError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{entry.name} ({entry.role}) removed from {args.users_file}; their open "
              "dashboard sessions end at their next page load")
        return EXIT_OK
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
