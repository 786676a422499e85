"""`watchtower report`: a compliance report from the store, written, listed or mailed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from watchtower.cli.common import EXIT_OK, EXIT_PROBLEMS, Subparsers, load
from watchtower.config import database_url
from watchtower.config.load import unknown_customer
from watchtower.errors import ConfigError

if TYPE_CHECKING:
    from watchtower.config import Fleet, ReportSchedule
    from watchtower.report import Report
    from watchtower.store import Store


def add_parsers(sub: Subparsers) -> None:
    s = sub.add_parser("report", help="build a compliance report; write it, or mail it")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--customer", help="only this customer's targets (default: the whole fleet)")
    s.add_argument("--name", help="a [[reports]] entry: its customer, period and recipients")
    s.add_argument("--period-days", type=int, help="days back from now (default 30)")
    s.add_argument("--format", choices=["html", "json", "pdf", "text"], default="text")
    s.add_argument("--out", help="write the report to this file (pdf needs it)")
    s.add_argument("--send", action="store_true", help="store and mail it now (needs --name)")
    s.add_argument("--list", action="store_true", help="list stored reports and their delivery")
    s.add_argument("--include-adhoc", action="store_true",
                   help="count the results of ad-hoc runs (`watchtower check`, remediation "
                        "verifications) too; by default only scheduled sweeps count")
    s.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """`watchtower report`: build a compliance report from the store; write, store or mail it."""
    import datetime as dt

    from watchtower.report import Period, build_report, render_html, render_json, render_text
    from watchtower.store import Store

    fleet = load(args.config)
    if args.customer is not None and args.customer not in fleet.customers():
        raise ConfigError([f"--customer {args.customer}: "
                           f"{unknown_customer(args.customer, fleet.customers())}"])
    store = Store(database_url(fleet.store))
    try:
        if args.list:
            _list(store, fleet)
            return EXIT_OK
        spec = next((r for r in fleet.reports if r.name == args.name), None)
        if args.name and spec is None:
            raise ConfigError([f"--name {args.name}: no [[reports]] entry of that name"])
        customer = args.customer or (spec.customer if spec else None)
        days = args.period_days or (spec.period_days if spec else 30)
        now = dt.datetime.now(dt.UTC)
        report = build_report(store, fleet, customer, Period.last_days(days, now),
                              name=args.name or "adhoc", now=now,
                              include_adhoc=args.include_adhoc)
        if args.out:
            _write(report, Path(args.out), args.format)
        if args.send:
            return _send(store, fleet, spec, report)
        if not args.out:
            if args.format == "pdf":
                raise ConfigError(["--format pdf needs --out FILE"])
            sys.stdout.write(render_json(report) if args.format == "json"
                             else render_text(report) if args.format == "text"
                             else render_html(report))
    finally:
        store.close()
    return EXIT_OK


def _list(store: Store, fleet: Fleet) -> None:
    """`--list`: the stored reports and how their delivery went."""
    from watchtower.report import list_reports
    from watchtower.store.db import shown_url

    rows = list_reports(store)
    for row in rows:
        print(f"#{row.id:<5} {row.created_at:%Y-%m-%d %H:%M} {row.name:16} "
              f"{row.customer or '-':16} {row.state:8} attempts={row.attempts} "
              f"{row.last_error or ''}")
    if not rows:
        where = shown_url(database_url(fleet.store))
        print(f"no stored reports in {where} (a [[reports]] entry "
              "stores one when its cron fires, `report --name N --send` now)")


def _write(report: Report, out: Path, fmt: str) -> None:
    """`--out FILE`: the report in `fmt` (pdf as bytes, the others as text)."""
    from watchtower.report import render_html, render_json, render_pdf, render_text

    render = {"html": render_html, "text": render_text, "json": render_json}
    if fmt == "pdf":
        out.write_bytes(render_pdf(report))
    else:
        out.write_text(render[fmt](report))
    print(f"wrote {out} (score {report.score}%)")


def _send(store: Store, fleet: Fleet, spec: ReportSchedule | None, report: Report) -> int:
    """`--send`: store the report and mail it now to the [[reports]] entry's recipients."""
    from watchtower.report import send_report, store_report

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
