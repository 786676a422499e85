"""mail.spam-filter: does the provider's spam filter act on spam the way the operator says?

The probe submits the GTUBE test message (the Generic Test for Unsolicited Bulk Email, which
SpamAssassin and Rspamd treat as certain spam) through the provider's submission port,
authenticated as the probe mailbox and addressed to the probe mailbox only, then judges what
the filter did against `spam_filter`: `reject` expects a 5xx at the end of DATA, `junk`
expects the message delivered marked as spam (X-Spam: Yes, X-Spam-Flag: YES, a [SPAM]
subject) or into `junk_folder`. GTUBE arriving as ordinary mail fails: the filter did not act.

GTUBE is test content: it only ever goes to the provider's own probe mailbox. That is enforced
twice, here (`gtube_message` refuses any other recipient) and in the submission session
(`watchtower.net.submission.check_test_content`), so no caller can send it elsewhere.

Where a Rspamd controller is configured, its health comes along: `/ping`, and `/stat` with the
controller password (a Secret, read at use, never in evidence): uptime, messages scanned and
the counts per action.
"""

from __future__ import annotations

import time
from email.parser import BytesHeaderParser
from typing import Any

from watchtower.config import MailHost
from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.rspamd import controller_health
from watchtower.net.submission import RefusedTestContent
from watchtower.probe.api import CheckMeta, Facts, ProbeContext, reveal
from watchtower.probe.registry import register

from ..common import failure
from .probemail import (
    IMAP_RESERVE,
    ProbeAccountCheck,
    await_message,
    new_token,
    probe_account,
    probe_mailbox,
    probe_message,
    submit,
)

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
#: Headers filters mark spam with, and the value prefix that means "spam".
SPAM_HEADERS = (("X-Spam", "yes"), ("X-Spam-Flag", "yes"), ("X-Spam-Status", "yes"))
SPAM_SUBJECTS = ("***SPAM***", "[SPAM]", "*** SPAM ***", "*SPAM*")
_MESSAGE_STEPS = ("MAIL FROM", "RCPT TO", "DATA", "end of data")
_PROBE_SIDE_HTTP = ("timeout", "dns", "probe", "config", "malformed", "too-large", "input")


def gtube_message(sender: str, recipient: str, probe: str, token: str) -> bytes:
    """The GTUBE test message, for the probe mailbox and nobody else."""
    if recipient.strip().lower() != probe.strip().lower():
        raise RefusedTestContent("test content (GTUBE) goes only to the provider's own probe "
                                 f"mailbox {probe}, not to {recipient}")
    return probe_message(sender, recipient, token, subject="watchtower spam-filter probe",
                         body="This message tests the provider's spam filter: it carries the "
                              "GTUBE test pattern\nand should be rejected or filed as spam. "
                              f"It is deleted automatically.\n\n{GTUBE}\n")


def spam_markers(raw: bytes) -> list[str]:
    """The spam marks a filter put on a delivered message (`X-Spam: Yes`, a [SPAM] subject)."""
    headers = BytesHeaderParser().parsebytes(raw)
    found = []
    for name, prefix in SPAM_HEADERS:
        for value in headers.get_all(name) or []:
            if str(value).strip().lower().startswith(prefix):
                found.append(f"{name}: {' '.join(str(value).split())[:80]}")
    subject = str(headers.get("Subject", ""))
    mark = next((m for m in SPAM_SUBJECTS if m.lower() in subject.lower()), None)
    return found + ([f"Subject: {mark}"] if mark else [])


@register
class SpamFilter(ProbeAccountCheck):
    meta = CheckMeta(
        id="mail.spam-filter",
        needs=("mail.submission", "mail.imap"),
        family="mail",
        title="The spam filter rejects or junks the GTUBE test message, as declared",
        query=(
            "the GTUBE test message submitted with AUTH to the probe mailbox (and nowhere else), "
            "then the probe mailbox's INBOX and `junk_folder`; Rspamd controller `/ping` and "
            "`/stat` (password as a secret) when `rspamd_controller` is set"
        ),
        verdicts=(
            "ok when the filter acts as `spam_filter` declares (`reject`: 5xx at the end of DATA; "
            "`junk`: delivered into the junk folder or marked `X-Spam: Yes` / `X-Spam-Flag: YES` /"
            " `[SPAM]`); warn it acted the other way; fail GTUBE delivered as ordinary mail, "
            "deferred (4xx), accepted but never delivered; fail controller unreachable, `/ping` "
            "not `pong`, password refused, `/stat` not 200; warn Rspamd scanned nothing; error "
            "submission or IMAP could not run, controller timeout or unparseable `/stat`"
        ),
        applies_to=(TargetKind.MAIL_HOST,),
        interval=3600,
        timeout=90,
        standards=("GTUBE (SpamAssassin)", "Rspamd GTUBE patterns", "RFC 5321 4.2.5",
                   "RFC 6409 4"),
        hint="Route submitted and received mail through the spam filter (Rspamd: "
             "smtpd_milters = inet:127.0.0.1:11332) and check its actions; see the replies "
             "and headers in the evidence.",
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        spec, password, address = probe_account(target, ctx)
        mailbox = probe_mailbox(spec)
        token = new_token()
        facts: dict[str, Any] = {
            "host": spec.host, "address": address, "to": mailbox, "token": token,
            "expect": spec.spam_filter, "junk_folder": spec.junk_folder,
            "deadline_seconds": spec.roundtrip_deadline,
        }
        started = time.monotonic()
        message = gtube_message(mailbox, mailbox, mailbox, token)
        facts["submission"] = submit(ctx, spec, address, password, [mailbox], message)
        facts["via"] = facts["submission"]["via"]
        if facts["submission"].get("accepted"):
            budget = min(started + spec.roundtrip_deadline, ctx.deadline - IMAP_RESERVE)
            fetch = await_message(ctx, spec, address, password, token,
                                  ["INBOX", spec.junk_folder], budget, started)
            raw = fetch.pop("raw", None)
            if raw is not None:
                fetch["markers"] = spam_markers(raw)
            facts["fetch"] = fetch
        if spec.rspamd_controller:
            facts["controller"] = _controller(ctx, spec)
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        shown = _judge_outcome(facts, f)
        if facts.get("controller") is not None:
            shown += _judge_controller(facts["controller"], f)
        return f.verdict(shown)


def _controller(ctx: ProbeContext, spec: MailHost) -> dict[str, Any]:
    assert spec.rspamd_controller is not None
    try:
        password = (reveal(spec.rspamd_password, "rspamd_password")
                    if spec.rspamd_password else None)
        return controller_health(ctx.http, spec.rspamd_controller, password, ctx.deadline)
    except ProbeError as exc:
        return {"url": spec.rspamd_controller, **failure(exc)}


def _outcome(facts: Facts) -> tuple[str, str]:
    """What happened to the GTUBE message: rejected, deferred, junked, ordinary, lost, or
    error (we could not tell), with the detail to show."""
    sub = facts["submission"]
    if not sub.get("accepted"):
        code, step = int(sub.get("code") or 0), sub.get("step")
        if step == "end of data" and code >= 500:
            return "rejected", f"rejected at the end of DATA ({sub.get('error')})"
        if step in _MESSAGE_STEPS and 400 <= code < 500:
            # A milter that is down makes Postfix defer from MAIL FROM on (tempfail).
            return "deferred", f"deferred ({sub.get('error')})"
        return "error", (f"could not submit the GTUBE test message: {sub.get('error')} "
                         "(see mail.roundtrip)")
    fetch = facts.get("fetch") or {}
    if fetch.get("error"):
        return "error", (f"GTUBE test message accepted but the probe mailbox could not be "
                         f"read: {fetch['error']} (see mail.imap)")
    if not fetch.get("delivered"):
        return "lost", (f"accepted at SMTP but neither rejected nor delivered within "
                        f"{fetch.get('waited_seconds', facts['deadline_seconds'])} s")
    markers = fetch.get("markers") or []
    if fetch.get("folder") == facts["junk_folder"] or markers:
        where = f"delivered into {fetch.get('folder')}"
        return "junked", where + (f", marked {'; '.join(markers)}" if markers else "")
    return "ordinary", f"delivered into {fetch.get('folder')} as ordinary mail"


def _judge_outcome(facts: Facts, f: Findings) -> str:
    kind, detail = _outcome(facts)
    expect = facts["expect"]
    declared = "rejected" if expect == "reject" else "junked"
    text = f"GTUBE test message {detail}"
    if kind == "error":
        f.error(detail)
    elif kind == declared:
        return f"{text}, as declared (spam_filter = {expect})"
    elif kind in ("rejected", "junked"):
        f.warn(f"{text}, not {declared} as declared (spam_filter = {expect})")
    elif kind == "deferred":
        f.fail(f"{text}: the filter did not decide (is it running? a milter that is down "
               "defers all mail)")
    elif kind == "ordinary":
        f.fail(f"{text}: the spam filter did not act on it")
    else:
        f.fail(f"{text}: the filter may discard spam silently (spam_filter = {expect})")
    return text


def _judge_controller(ctl: dict[str, Any], f: Findings) -> str:
    who = f"Rspamd controller {ctl['url']}"
    kind = ctl.get("error_kind")
    if kind == "unreachable":
        f.fail(f"{who} not reachable ({ctl.get('error')})")
        return ""
    if kind is not None:
        (f.error if kind in _PROBE_SIDE_HTTP else f.fail)(f"{who}: {ctl.get('error')}")
        return ""
    ping = ctl.get("ping") or {}
    if ping.get("status") != 200 or ping.get("body") != "pong":
        f.fail(f"{who}: /ping answered {ping.get('status')} {ping.get('body')!r}, not pong")
    status = ctl.get("stat_status")
    if status in (401, 403):
        f.fail(f"{who}: /stat refused the configured password (HTTP {status})")
        return ""
    if status != 200:
        f.fail(f"{who}: /stat answered HTTP {status}")
        return ""
    stat = ctl.get("stat") or {}
    if not stat.get("scanned"):
        f.warn(f"{who}: Rspamd has scanned no message in {stat.get('uptime', 0)} s of uptime: "
               "is mail routed through it?")
    actions = ", ".join(f"{k} {v}" for k, v in (stat.get("actions") or {}).items() if v)
    return (f"; Rspamd {stat.get('version')} up {stat.get('uptime', 0)} s, scanned "
            f"{stat.get('scanned', 0)}" + (f" ({actions})" if actions else ""))
