"""`watchtower remediate list|plan|approve|reject|apply|undo|history`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from watchtower.cli.common import EXIT_OK, EXIT_PROBLEMS, Subparsers, load
from watchtower.config import database_url
from watchtower.errors import ConfigError

if TYPE_CHECKING:
    from watchtower.store import AuditRow, RemediationRow


def add_parsers(sub: Subparsers) -> None:
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


#: What an empty `remediate list` says, by --all: an empty screen reads as a broken command.
EMPTY_LIST = {
    False: "no open remediations (`remediate plan` proposes them; --all lists finished ones)",
    True: "no remediations in the store yet (`remediate plan` proposes them)",
}


def cmd_remediate(args: argparse.Namespace) -> int:
    """`watchtower remediate list|plan|approve|reject|apply|history`."""
    import getpass

    from watchtower.remediation.engine import PolicyRefused, Remediator, default_context, plans_text
    from watchtower.store import OPEN_STATES, Store

    fleet = load(args.config)
    store = Store(database_url(fleet.store))
    remediator = Remediator(fleet, store, default_context(fleet, store))
    actor = args.user or getpass.getuser()
    try:
        if args.action == "plan":
            rows = remediator.propose()
            print("\n\n".join(plans_text(r) for r in rows) or "nothing to remediate")
        elif args.action == "list":
            _print_list(remediator.proposals(None if args.all else (*OPEN_STATES, "dry_run")),
                        args.all)
        elif args.action == "history":
            _print_history(remediator.history(args.id), args.id)
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


def _print_list(rows: list[RemediationRow], finished_too: bool) -> None:
    for r in rows:
        print(f"#{r.id:<5} {r.state:18} {r.remediation:16} {r.target:30} {r.summary}")
    if not rows:
        print(EMPTY_LIST[finished_too])


def _print_history(actions: list[AuditRow], rid: int | None) -> None:
    for a in actions:
        mark = "ok " if a.ok else "ERR"
        print(f"{a.at:%Y-%m-%d %H:%M:%S} #{a.remediation_id} {mark} {a.actor:10} "
              f"{a.action:16} {a.detail.splitlines()[0] if a.detail else ''}")
    if not actions:
        print("no remediation actions recorded" + (f" for #{rid}" if rid is not None else ""))
