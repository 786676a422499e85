"""Storing reports and mailing them exactly once, through the alert channels' SMTP relay.

A report is stored before it is sent (`store_report`), with the exact bytes that will go out, so
nothing is lost if the relay is down. Sending (`send_report`, `deliver_due`) claims the row with
a compare-and-set lease, submits it through watchtower/net/mailer.py (the same relay code as
alert mail: STARTTLS or implicit TLS, verified, AUTH from a Secret), and marks it `sent` only
after the relay accepted it. A transient failure (4xx, refused connection, TLS trouble) leaves
it `pending` with exponential backoff (`[notifications] retry_initial` doubling up to
`retry_max`); a permanent one (5xx to AUTH/MAIL/RCPT, missing secret, unknown channel) marks it
`failed`, visible in the dashboard and `watchtower report --list`, and `send_report` on it
tries again on demand. The Message-ID is fixed when the report is stored, so the one
ambiguous case SMTP has (the relay accepted but its 250 was lost) produces a copy that mail
clients recognise as the same message.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from watchtower.alerting.notify import scrub
from watchtower.config import EmailChannel, Fleet
from watchtower.errors import ConfigError, DeliveryError
from watchtower.model import utcnow
from watchtower.net.mailer import Relay, submit
from watchtower.report.model import Report
from watchtower.report.pdf import render_pdf
from watchtower.report.render import render_html, render_json, render_text, subject
from watchtower.store import ReportRow, Store, aware

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
ALL_FORMATS = ("html", "text", "json", "pdf")


class ReportError(Exception):
    """A report cannot be sent as asked (unknown id, no recipients, no channel)."""


def store_report(store: Store, report: Report, *, recipients: Sequence[str] = (),
                 channel: str | None = None, formats: Sequence[str] = ALL_FORMATS,
                 sender_domain: str | None = None) -> ReportRow:
    """Render and keep the report; with recipients it is `pending` (to be mailed), else `draft`.

    `formats` decides which renderings are kept and mailed; the JSON body is always kept, as
    the next report compares with it.
    """
    body = render_json(report)
    row = ReportRow(
        name=report.name, customer=report.customer, period_start=report.period.start,
        period_end=report.period.end, created_at=report.generated_at, score=report.score,
        body_json=body, html=render_html(report) if "html" in formats else "",
        text=render_text(report) if ("text" in formats or "html" not in formats) else "",
        pdf=render_pdf(report) if "pdf" in formats else None,
        recipients=json.dumps(list(recipients)), formats=json.dumps(list(formats)),
        channel=channel,
        message_id=make_msgid(idstring="report", domain=sender_domain or "watchtower.invalid"),
        state="pending" if recipients else "draft",
        next_attempt_at=report.generated_at if recipients else None,
    )
    return store.reports.add(row)


def recipients_of(row: ReportRow) -> list[str]:
    return [str(x) for x in json.loads(row.recipients or "[]")]


def formats_of(row: ReportRow) -> list[str]:
    return [str(x) for x in json.loads(row.formats or "[]")]


def build_message(row: ReportRow, sender: str) -> EmailMessage:
    """The MIME message: text + HTML alternatives, report.json and report.pdf attachments."""
    msg = EmailMessage()
    body = json.loads(row.body_json)
    who = f" for {row.customer}" if row.customer else ""
    msg["Subject"] = (f"Compliance report{who}: score "
                      f"{'n/a' if row.score is None else f'{row.score}%'} "
                      f"({aware(row.period_start):%Y-%m-%d} to {aware(row.period_end):%Y-%m-%d})")
    msg["From"] = sender
    msg["To"] = ", ".join(recipients_of(row))
    msg["Date"] = format_datetime(aware(row.created_at))
    msg["Message-ID"] = row.message_id or make_msgid(domain="watchtower.invalid")
    msg["X-Watchtower-Report"] = f"{row.id}; schema_version={body.get('schema_version')}"
    msg.set_content(row.text or "See the HTML part of this message.")
    if row.html:
        msg.add_alternative(row.html, subtype="html")
    stem = f"report-{row.customer or 'fleet'}-{aware(row.period_end):%Y-%m-%d}"
    if "json" in formats_of(row):
        msg.add_attachment(row.body_json.encode(), maintype="application", subtype="json",
                           filename=f"{stem}.json")
    if row.pdf:
        msg.add_attachment(row.pdf, maintype="application", subtype="pdf",
                           filename=f"{stem}.pdf")
    return msg


def _channel(fleet: Fleet, name: str | None) -> EmailChannel:
    for channel in fleet.notifications.email:
        if channel.name == name:
            return channel
    raise ConfigError([f"no [[notifications.email]] channel named {name!r}"])


def backoff(fleet: Fleet, attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones (exponential, capped)."""
    n = fleet.notifications
    return float(min(n.retry_max, n.retry_initial * 2 ** max(0, attempts - 1)))


def _claim(store: Store, report_id: int, now: dt.datetime, *, force: bool) -> bool:
    """Compare-and-set lease: only the caller whose UPDATE changed the row sends it."""
    return store.reports.claim(report_id, now, LEASE, ["pending", "failed"] if force
                               else ["pending"])


def send_report(store: Store, fleet: Fleet, report_id: int, *,
                recipients: Sequence[str] | None = None, channel: str | None = None,
                now: dt.datetime | None = None) -> ReportRow:
    """Mail one stored report now ("send now"); returns the row with its delivery state.

    A draft becomes pending when `recipients` and `channel` are given; a failed report is
    retried. A report already sent is left alone (exactly once), and so is one another worker
    holds. Never raises for a delivery problem: it is in the row (state, last_error).
    """
    now = now or utcnow()
    row = get_report(store, report_id)
    if row.state == "sent":
        return row
    if recipients is not None or channel is not None:
        if recipients is not None:
            row.recipients = json.dumps(list(recipients))
        row.channel = channel or row.channel
        if row.state == "draft":
            row.state = "pending"
        store.reports.save(row)
    if row.state == "draft" or not recipients_of(row) or not row.channel:
        raise ReportError(f"report #{report_id} has no recipients or channel to send with")
    if _claim(store, report_id, now, force=True):
        _deliver(store, fleet, report_id, now)
    return get_report(store, report_id)


def deliver_due(store: Store, fleet: Fleet, now: dt.datetime | None = None,
                limit: int = 20) -> int:
    """Try every pending report whose retry time has come; returns how many were sent."""
    now = now or utcnow()
    sent = 0
    for report_id in store.reports.due(now, limit):
        if _claim(store, report_id, now, force=False):
            sent += _deliver(store, fleet, report_id, now)
    return sent


def _deliver(store: Store, fleet: Fleet, report_id: int, now: dt.datetime) -> int:
    row = store.reports.get(report_id)
    if row is None:
        return 0
    password: str | None = None
    error: DeliveryError | None = None
    try:
        spec = _channel(fleet, row.channel)
        password = spec.password.reveal() if spec.password is not None else None
        relay = Relay(spec.host, spec.port, spec.security, spec.username, spec.ca_bundle)
        submit(relay, password, build_message(row, spec.sender), spec.sender,
               recipients_of(row))
    except ConfigError as exc:
        error = DeliveryError(exc.problems[0], permanent=True)
    except DeliveryError as exc:
        error = exc
    except Exception as exc:  # a bug in rendering must not lose the row
        error = DeliveryError(f"{type(exc).__name__}", permanent=False)
    row.attempts += 1
    row.claimed_until = None
    if error is None:
        row.state, row.sent_at, row.last_error = "sent", now, None
        log.info("report #%d (%s) sent to %d recipient(s)", report_id, row.name,
                 len(recipients_of(row)))
    else:
        row.last_error = scrub(str(error), [password or ""])
        if error.permanent:
            row.state = "failed"
        else:
            row.next_attempt_at = now + dt.timedelta(seconds=backoff(fleet, row.attempts))
        log.warning("report #%d (%s) not sent (%s, attempt %d): %s", report_id, row.name,
                    "permanent" if error.permanent else "will retry", row.attempts,
                    row.last_error)
    store.reports.save(row)
    return 1 if error is None else 0


def get_report(store: Store, report_id: int) -> ReportRow:
    row = store.reports.get(report_id)
    if row is None:
        raise ReportError(f"no report #{report_id}")
    return row


def list_reports(store: Store, *, customer: str | None = None, state: str | None = None,
                 limit: int = 200) -> list[ReportRow]:
    """Stored reports, newest first (for the dashboard's Reports page and the CLI)."""
    return store.reports.recent(customer=customer, state=state, limit=limit)


__all__ = ["ReportError", "build_message", "deliver_due", "get_report", "list_reports",
           "send_report", "store_report", "subject"]
