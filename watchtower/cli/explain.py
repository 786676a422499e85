"""`watchtower explain add|list|revoke`: comply-or-explain records from the command line.

Who may run this: whoever can run watchtower against the fleet's store (its operators, on the
appliance). Every record names its author (`--by`, default the login name) and stays in the
store when revoked (watchtower/store/explanations.py), which is the audit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys

from watchtower.cli.common import EXIT_OK, EXIT_USAGE, Subparsers, load
from watchtower.compliance import explanations
from watchtower.compliance.explanations import ExplanationError
from watchtower.config import database_url
from watchtower.model import utcnow
from watchtower.probe import registry
from watchtower.store import Store


def add_parsers(sub: Subparsers) -> None:
    s = sub.add_parser("explain", help="comply or explain: record why a criterion is not met")
    ex = s.add_subparsers(dest="explain_command", required=True)
    p = ex.add_parser("add", help="explain a criterion on a domain until a date")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--criterion", required=True,
                   help="internet.nl test id (e.g. web_https_tls_version) or a check id")
    p.add_argument("--why", required=True)
    p.add_argument("--until", required=True, type=dt.date.fromisoformat,
                   help="last day it applies (YYYY-MM-DD); the day after it counts again")
    p.add_argument("--by", help="who explains (default: the login name)")
    p = ex.add_parser("list", help="explanations in force (with --all: revoked ones too)")
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--domain")
    p.add_argument("--all", action="store_true")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p = ex.add_parser("revoke", help="withdraw an explanation (it stays in the audit)")
    p.add_argument("id", type=int)
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--why", default="", help="why it is withdrawn")
    p.add_argument("--by", help="who withdraws it (default: the login name)")
    s.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    fleet = load(args.config)
    store = Store(database_url(fleet.store))
    try:
        if args.explain_command == "list":
            return _list(store, args)
        who = args.by or getpass.getuser()
        if args.explain_command == "add":
            row = explanations.record(store, args.domain, args.criterion, who,
                                           args.why, args.until, now=utcnow(),
                                           check_ids=registry.checks())
            print(f"#{row.id}: {row.criterion} on {row.domain} explained by {row.who} "
                  f"until {row.until.isoformat()}")
        else:
            row = explanations.revoke(store, args.id, who, args.why, now=utcnow())
            print(f"#{row.id}: revoked by {row.revoked_by}")
    except ExplanationError as exc:
        print(f"watchtower explain {args.explain_command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    return EXIT_OK


def _list(store: Store, args: argparse.Namespace) -> int:
    rows = store.explanations.rows(domain=args.domain, include_revoked=args.all)
    if args.format == "json":
        json.dump({"explanations": [{**explanations.of_row(r).to_json(),
                                     "revoked_at": r.revoked_at.isoformat() if r.revoked_at
                                     else None, "revoked_by": r.revoked_by,
                                     "revoke_reason": r.revoke_reason} for r in rows]},
                  sys.stdout, indent=2)
        print()
        return EXIT_OK
    today = utcnow().date()
    for r in rows:
        state = ("revoked" if r.revoked_at else
                 "valid" if explanations.of_row(r).valid_on(today) else "expired")
        print(f"#{r.id:<4} {state:8} {r.domain:30} {r.criterion:36} until {r.until} "
              f"by {r.who}: {r.why}")
    return EXIT_OK
