"""Sending alert mail through the operator's own SMTP relay (submission with STARTTLS or TLS).

This is the way out for notifications, not a probe: the relay is ours and trusted to behave, so
the standard library's smtplib is enough (net/smtp.py is the hardened dialogue for probing other
people's servers). What this module adds is the one thing the outbox needs: every failure says
whether retrying can help. A 5xx answer to AUTH, MAIL or RCPT is permanent (retrying repeats the
refusal); a 4xx answer, a refused connection, a timeout or a TLS failure are transient.
TLS is verified against the system store or `ca_bundle`; it is never turned off.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from watchtower.errors import DeliveryError
from watchtower.net.clienttls import verifying_context


@dataclass(frozen=True, slots=True)
class Relay:
    host: str
    port: int
    security: str  # starttls | tls | none
    username: str | None = None
    ca_bundle: str | None = None
    timeout: float = 20.0


def _context(ca_bundle: str | None) -> ssl.SSLContext:
    return verifying_context(ca_bundle, ssl.TLSVersion.TLSv1_2)


def send_mail(relay: Relay, password: str | None, sender: str, to: Sequence[str], subject: str,
              body: str) -> None:
    """Submit one plain-text message; raises DeliveryError (never logs the password)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(to), subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(body)
    submit(relay, password, msg, sender, to)


def submit(relay: Relay, password: str | None, msg: EmailMessage, sender: str,
           to: Sequence[str]) -> None:
    """Submit a ready message (any MIME structure: reports carry attachments); raises DeliveryError.

    Returns only after the relay accepted the message for every recipient, so a caller may
    mark it delivered exactly then.
    """
    try:
        if relay.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout,
                                                    context=_context(relay.ca_bundle))
        else:
            client = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout)
        with client:
            client.ehlo()
            if relay.security == "starttls":
                client.starttls(context=_context(relay.ca_bundle))
                client.ehlo()
            if relay.username is not None:
                client.login(relay.username, password or "")
            client.send_message(msg, from_addr=sender, to_addrs=list(to))
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(f"recipients refused: {', '.join(str(c) for c in codes)}",
                        permanent=all(c >= 500 for c in codes)) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(
            exc.smtp_error, bytes) else str(exc.smtp_error)
        raise DeliveryError(f"relay answered {exc.smtp_code} {text[:200]}",
                        permanent=exc.smtp_code >= 500) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryError(f"relay does not support a required extension: {exc}",
                        permanent=True) from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from None
