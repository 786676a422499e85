"""What the SMTP probes of an MX address found (`SmtpProber` in watchtower/net/smtp.py): the
STARTTLS dialogue and its TLS facts, or the open-relay attempt's replies, with their evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from watchtower.net.tls import TlsFacts


@dataclass(slots=True)
class StartTlsOutcome:
    """What one MX address showed: the dialogue, the TLS facts, or why it broke."""

    mx: str
    address: str
    port: int
    banner: str | None = None
    capabilities: list[str] = field(default_factory=list)
    starttls_offered: bool | None = None
    tls: TlsFacts | None = None
    legacy_versions: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    transcript: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "mx": self.mx, "address": self.address, "port": self.port, "banner": self.banner,
            "capabilities": self.capabilities, "starttls_offered": self.starttls_offered,
            "legacy_versions": self.legacy_versions, "error": self.error,
            "error_kind": self.error_kind, "transcript": self.transcript,
        }
        if self.tls is not None:
            tls = self.tls.evidence()
            tls.pop("chain", None)
            ev["tls"] = tls
        return ev


@dataclass(slots=True)
class RelayOutcome:
    """The open-relay probe of one MX address: the replies to MAIL FROM and RCPT TO."""

    mx: str
    address: str
    port: int
    mail_from: str
    rcpt_to: str
    banner: str | None = None
    tls: bool = False
    mail_reply: str | None = None
    mail_code: int | None = None
    rcpt_reply: str | None = None
    rcpt_code: int | None = None
    error: str | None = None
    error_kind: str | None = None
    transcript: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        return {
            "mx": self.mx, "address": self.address, "port": self.port,
            "mail_from": self.mail_from, "rcpt_to": self.rcpt_to, "banner": self.banner,
            "tls": self.tls, "mail_code": self.mail_code, "mail_reply": self.mail_reply,
            "rcpt_code": self.rcpt_code, "rcpt_reply": self.rcpt_reply, "error": self.error,
            "error_kind": self.error_kind, "transcript": self.transcript,
        }
