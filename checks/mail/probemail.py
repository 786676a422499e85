"""What the checks that send a probe message share: the probe mailbox, tokens, submitting one
message, and waiting for it in the probe mailbox's folders (then deleting it).

`mail.roundtrip`, `mail.spam-filter` and `mail.sieve` each send their own message through the
provider's submission port, authenticated as the probe mailbox, and look for it over IMAPS.
Every probe message carries a unique token (`wt-<unix time>-<random>`) in `PROBE_HEADER`, so a
concurrent probe or a late copy of an old one never answers for this one; probe messages older
than `STALE_SECONDS` are removed from each folder a probe looks in.
"""

from __future__ import annotations

import email.utils
import re
import secrets
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from watchtower.config import MailHost
from watchtower.errors import ProbeError
from watchtower.model import Target
from watchtower.net.imap import ImapError, ImapSession
from watchtower.net.submission import SubmissionRefused, TlsMode
from watchtower.probe.api import Check, ProbeContext, reveal

from ..common import failure
from .submission import host_address, mail_host_of

PROBE_HEADER = "X-Watchtower-Probe"
STALE_SECONDS = 900
IMAP_RESERVE = 3.0  # seconds kept back from the deadline to fetch, judge and clean up
#: Submission failures that say nothing about the server (it was not reached or we ran out).
PROBE_SIDE = ("unreachable", "timeout", "dns", "probe", "config")
_TOKEN = re.compile(r"^wt-(\d{9,11})-[0-9a-f]{16}$")


def new_token(now: float | None = None) -> str:
    return f"wt-{int(now if now is not None else time.time())}-{secrets.token_hex(8)}"


def token_age(token: str, now: float) -> float | None:
    """Seconds since a probe token was minted, None for a value that is not one of ours."""
    m = _TOKEN.match(token.strip())
    return now - int(m.group(1)) if m else None


def probe_mailbox(spec: MailHost) -> str:
    """The probe account's own address: the only mailbox test content may ever go to."""
    assert spec.probe_user is not None
    return spec.probe_user if "@" in spec.probe_user else f"{spec.probe_user}@{spec.host}"


class ProbeAccountCheck(Check):
    """A mail-host check that sends as the probe mailbox: it applies only where one is
    configured (a bare test target, not a MailHost, is probed with a default entry)."""

    def applies(self, target: Target) -> bool:
        spec = target.spec
        return super().applies(target) and (not isinstance(spec, MailHost)
                                            or bool(spec.probe_user and spec.probe_password))


def probe_account(target: Target, ctx: ProbeContext) -> tuple[MailHost, str, str]:
    """The mail host's entry, the probe password (read now) and the host's address."""
    spec = mail_host_of(target)
    if not (spec.probe_user and spec.probe_password):
        raise ProbeError("no probe mailbox configured (probe_user, probe_password)",
                         kind="config")
    return spec, reveal(spec.probe_password, "probe_password"), host_address(ctx, spec.host)


def probe_message(sender: str, recipient: str, token: str, *, subject: str, body: str,
                  headers: dict[str, str] | None = None) -> bytes:
    """A small plain message carrying the token (header and subject)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = f"{subject} {token}"
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = f"<{token}@{sender.rsplit('@', 1)[-1]}>"
    msg[PROBE_HEADER] = token
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


def submission_port(spec: MailHost) -> tuple[int, TlsMode]:
    """The port and TLS mode probe messages are submitted through (`roundtrip_via`)."""
    if spec.roundtrip_via == "submission":
        return spec.submission_port, "starttls"
    return spec.submissions_port, "implicit"


def submit(ctx: ProbeContext, spec: MailHost, address: str, password: str,
           recipients: Sequence[str], message: bytes) -> dict[str, Any]:
    """Submit one message as the probe mailbox; the outcome (and transcript) as facts."""
    assert spec.probe_user is not None
    port, mode = submission_port(spec)
    session = ctx.smtp.submission(spec.host, address, port, mode, ctx.deadline, verify=True)
    out: dict[str, Any] = {"accepted": False, "via": f"{port} ({mode})"}
    try:
        session.open()
        session.login(spec.probe_user, password)
        reply = session.send(probe_mailbox(spec), list(recipients), message,
                             probe_mailbox=probe_mailbox(spec))
        out.update(accepted=True, reply=reply.evidence())
    except SubmissionRefused as exc:
        out.update(error=exc.reason, error_kind="refused", step=exc.step,
                   code=exc.reply.code)
    except ProbeError as exc:
        out.update(failure(exc))
    finally:
        session.close()
        out["transcript"] = session.transcript
    return out


def imap_session(ctx: ProbeContext, spec: MailHost, address: str) -> ImapSession:
    return ctx.imap.session(spec.host, address, spec.imaps_port, "implicit", ctx.deadline)


def await_message(ctx: ProbeContext, spec: MailHost, address: str, password: str,
                  token: str, folders: Sequence[str], budget: float, started: float
                  ) -> dict[str, Any]:
    """Poll the probe mailbox's `folders` until the token arrives or the budget (monotonic)
    is spent; fetch it, delete it, and clean stale probe messages from those folders.

    A folder that does not exist is skipped (a junk folder appears with the first spam). The
    fetched message is under "raw" (bytes: the caller turns it into evidence and drops it).
    """
    assert spec.probe_user is not None
    out: dict[str, Any] = {"delivered": False}
    session = imap_session(ctx, spec, address)
    try:
        session.open()
        session.login(spec.probe_user, password)
        _poll(session, token, folders, budget, started, out)
    except ProbeError as exc:
        out.update(failure(exc))
        session.close()
        return out
    try:  # housekeeping: its failure must not turn a delivered probe into an error
        out["stale_deleted"] = sum(_clean_stale(session, folder) for folder in folders)
    except ProbeError as exc:
        out["cleanup_error"] = exc.reason
    finally:
        session.close()
    return out


def _poll(session: ImapSession, token: str, folders: Sequence[str], budget: float,
          started: float, out: dict[str, Any]) -> None:
    pause = 0.1
    while True:
        for folder in folders:
            uids = _search(session, folder, token)
            if uids:
                out.update(delivered=True, folder=folder,
                           latency_seconds=round(time.monotonic() - started, 3),
                           raw=session.fetch(uids[0]))
                session.delete(uids)
                return
        if time.monotonic() + pause > budget:
            out["waited_seconds"] = round(time.monotonic() - started, 1)
            return
        time.sleep(pause)
        pause = min(pause * 1.5, 1.0)


def _search(session: ImapSession, folder: str, token: str) -> list[int]:
    """UIDs of the token's message in `folder` (re-selected: new mail shows up), [] when the
    folder does not exist."""
    try:
        session.select(folder)
    except ImapError as exc:
        if exc.kind == "no-mailbox":
            return []
        raise
    return session.search_header(PROBE_HEADER, token)


def _clean_stale(session: ImapSession, folder: str) -> int:
    """Delete probe messages older than STALE_SECONDS: late copies of earlier runs."""
    try:
        session.select(folder)
    except ImapError as exc:
        if exc.kind == "no-mailbox":
            return 0
        raise
    uids = session.search_header(PROBE_HEADER, "")
    tokens = session.header_values(uids, PROBE_HEADER)
    now = time.time()
    stale = [uid for uid, token in tokens.items()
             if (age := token_age(token, now)) is not None and age > STALE_SECONDS]
    session.delete(stale)
    return len(stale)


def judge_submission(facts: dict[str, Any], what: str) -> str | None:
    """Why a probe message could not be submitted, as an `error` (the round trip judges the
    submission service itself), or None when it was accepted or refused by the server."""
    sub = facts.get("submission") or {}
    if sub.get("accepted") or sub.get("error_kind") == "refused":
        return None
    return f"could not submit the {what}: {sub.get('error')} (see mail.roundtrip)"
