"""Compliance reports: per-domain scores, failures with the standard they violate, evidence,
remediation hints, changes since the previous report, uptime, drift, advisories, remediations.

Function API (the dashboard's Reports page and the CLI use exactly this):

    from watchtower.report import (Period, build_report, render_html, render_text, render_json,
                                   render_pdf, store_report, send_report, deliver_due,
                                   list_reports, get_report)

    report = build_report(store, fleet, "acme", Period.last_days(30, now))  # reads the store
    html, text = render_html(report), render_text(report)
    body, pdf = render_json(report), render_pdf(report)    # JSON schema: docs/report-schema.md
    row = store_report(store, report, recipients=["ops@acme.example"], channel="ops-mail")
    row = send_report(store, fleet, row.id)                 # "send now"; state in row.state
    rows = list_reports(store)                              # newest first, with delivery state

`customer=None` reports on the whole fleet. `store_report` without recipients keeps a `draft`
(never mailed unless `send_report` is given recipients and a channel). Delivery is exactly once:
a row becomes `sent` only after the SMTP relay accepted it; failures stay `pending` with backoff
(`deliver_due` retries them) or become `failed` when retrying cannot help.
Schedules: `[[reports]]` in the fleet file, run by `ReportScheduler` inside `watchtower run`.
"""

from watchtower.report.build import build_report, customer_targets
from watchtower.report.delivery import (
    ReportError,
    build_message,
    deliver_due,
    get_report,
    list_reports,
    send_report,
    store_report,
)
from watchtower.report.model import SCHEMA_VERSION, Report
from watchtower.report.over_time import Period
from watchtower.report.pdf import render_pdf
from watchtower.report.render import render_html, render_json, render_text, subject
from watchtower.report.schedule import ReportScheduler, make_scheduled_report

__all__ = [
    "SCHEMA_VERSION",
    "Period",
    "Report",
    "ReportError",
    "ReportScheduler",
    "build_message",
    "build_report",
    "customer_targets",
    "deliver_due",
    "get_report",
    "list_reports",
    "make_scheduled_report",
    "render_html",
    "render_json",
    "render_pdf",
    "render_text",
    "send_report",
    "store_report",
    "subject",
]
