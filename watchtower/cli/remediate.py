"""`watchtower remediate list|plan|approve|reject|apply|undo|history`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from watchtower.cli.common import EXIT_OK, EXIT_PROBLEMS, Subparsers, load
from watchtower.config import database_url
from watchtower.errors import ConfigError

if TYPE_CHECKING:
    from watchtower.remediation.api import Proposals
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

    from watchtower.remediation.engine import Remediator
    from watchtower.remediation.live_context import default_context
    from watchtower.remediation.policy import PolicyRefused
    from watchtower.store import OPEN_STATES, Store

    fleet = load(args.config)
    store = Store(database_url(fleet.store))
    remediator = Remediator(fleet, store, default_context(fleet, store))
    actor = args.user or getpass.getuser()
    try:
        if args.action == "plan":
            print(planned_text(remediator.plan_all()))
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


def planned_text(done: Proposals) -> str:
    """`remediate plan`: the plans made, then why each known fix of a failing check was not
    planned, then how many failing checks have no known fix."""
    parts = [_plan_text(r) for r in done.created]
    if done.not_planned:
        parts.append("not planned:\n" + "\n".join(f"  {n.text()}" for n in done.not_planned))
    if done.unfixable:
        checks = sorted({u.check_id for u in done.unfixable})
        parts.append(f"{len(done.unfixable)} failing check(s) have no known fix: "
                     + ", ".join(checks))
    if not done.created:
        parts.insert(0, "nothing planned" if done.not_planned or done.unfixable
                     else "nothing to remediate: no check is failing")
    return "\n\n".join(parts)


def _plan_text(row: RemediationRow) -> str:
    """One stored plan as `remediate plan` prints it: what, where, the diff, the steps, the
    undo steps, the checks that verify it and its guard."""
    from watchtower.remediation.api import Plan

    plan = Plan.from_json(row.plan)
    lines = [f"#{row.id} {row.remediation} on {row.target} [{row.state}, policy {row.policy}]",
             f"  {plan.summary}"]
    lines += [f"  diff: {line}" for line in plan.diff.splitlines()]
    lines += [f"  step: {s.render()}" for s in plan.steps]
    lines += [f"  undo: {s.render()}" for s in plan.undo]
    lines.append(f"  verify: {', '.join(plan.verify)}")
    if plan.guard:
        lines.append(f"  guard: {plan.guard}")
    return "\n".join(lines)


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
