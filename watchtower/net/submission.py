"""Message submission (RFC 6409) on a provider's own mail host: 587 with STARTTLS, 465 with
implicit TLS (RFC 8314), AUTH, and sending one probe message.

The SMTP reading and writing is `watchtower.net.smtp_dialogue.SmtpConversation`
(deadline-bound reads, capped replies, a transcript); this module adds what only submission
needs: a TLS upgrade that *verifies* the certificate before any credential is sent, AUTH
PLAIN/LOGIN (RFC 4954) whose credentials never reach the transcript, and DATA. MX probes cannot
send a body; a conversation opened here can, because the provider asked us to send it a probe
message.
"""

from __future__ import annotations

import base64
import contextlib
import socket
from dataclasses import dataclass, field
from typing import Literal

from watchtower.errors import ProbeError
from watchtower.net.clienttls import tls_context, wrap_client
from watchtower.net.smtp_dialogue import (
    DEFAULT_TIMEOUT,
    Opening,
    Reply,
    SmtpConversation,
    SmtpError,
    connect,
)

TlsMode = Literal["starttls", "implicit"]
#: The part every GTUBE-like test pattern shares (SpamAssassin's GTUBE and Rspamd's variants).
TEST_PATTERN = b"GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL"


class RefusedTestContent(ValueError):
    """Test content (GTUBE) addressed to anything but the provider's own probe mailbox."""


def check_test_content(message: bytes, recipients: list[str], probe_mailbox: str | None
                       ) -> None:
    """Refuse a message carrying a spam test pattern unless its only recipient is the probe
    mailbox: test content goes nowhere else, whatever a caller asks (RFC 6409 submission
    would otherwise deliver it to anyone)."""
    if TEST_PATTERN not in message:
        return
    wanted = (probe_mailbox or "").strip().lower()
    if not wanted or not recipients or any(r.strip().lower() != wanted for r in recipients):
        raise RefusedTestContent("test content (GTUBE) goes only to the provider's own probe "
                                 "mailbox")


def auth_mechanisms(ehlo: Reply | None) -> list[str]:
    """The SASL mechanisms of an EHLO reply's AUTH line (RFC 4954 3), upper-cased."""
    if ehlo is None:
        return []
    for line in ehlo.lines[1:]:
        words = line.replace("=", " ").split()
        if words and words[0].upper() == "AUTH":
            return [w.upper() for w in words[1:]]
    return []


class SubmissionRefused(ProbeError):
    """The server answered but would not take the message: `step` and `reply` say where.

    Not a probe failure: the host is reachable and said no, which a check judges as `fail`.
    """

    def __init__(self, step: str, reply: Reply) -> None:
        super().__init__(f"{step} answered {reply.evidence()}", kind="refused")
        self.step = step
        self.reply = reply


@dataclass
class SubmissionSession:
    """One submission connection: open (banner, EHLO, TLS, EHLO), then login and send."""

    host: str
    address: str
    port: int
    mode: TlsMode
    helo: str
    deadline: float | None
    ca_bundle: str | None = None
    verify: bool = True
    timeout: float = DEFAULT_TIMEOUT
    banner: Reply | None = None
    ehlo_before_tls: Reply | None = None
    ehlo: Reply | None = None
    tls_version: str | None = None
    transcript: list[str] = field(default_factory=list)
    _sock: socket.socket | None = None
    _conv: SmtpConversation | None = None

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}"

    def open(self) -> None:
        """Connect and reach the state where AUTH may be sent: TLS up and EHLO repeated."""
        sock = connect(self.address, self.port, self.deadline, self.timeout)
        self._sock = sock
        if self.mode == "implicit":
            sock = self._wrap(sock)
        conv = self._conversation(sock)
        opening = Opening()
        try:
            opening.run(conv, self.helo, starttls=self.mode == "starttls")
        finally:
            self.banner = opening.banner
        if self.mode == "implicit":
            self.ehlo = opening.ehlo
            return
        self.ehlo_before_tls = opening.ehlo
        conv = self._conversation(self._wrap(sock))
        # RFC 3207 4.2: everything learnt before TLS is forgotten; ask again.
        self.ehlo = conv.command(f"EHLO {self.helo}")
        if self.ehlo.code != 250:
            raise SmtpError(f"{self.peer}: EHLO after TLS answered {self.ehlo.evidence()}",
                            kind="ehlo")

    def login(self, user: str, password: str) -> Reply:
        """AUTH PLAIN (or LOGIN when only that is offered); SubmissionRefused when rejected."""
        conv = self._need_tls()
        mechanisms = auth_mechanisms(self.ehlo)
        if "PLAIN" in mechanisms or not mechanisms:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            reply = conv.command(f"AUTH PLAIN {token}", "AUTH",
                                 shown="AUTH PLAIN <credentials withheld>")
        elif "LOGIN" in mechanisms:
            reply = conv.command("AUTH LOGIN", "AUTH")
            if reply.code == 334:
                reply = conv.command(base64.b64encode(user.encode()).decode(), "AUTH",
                                     shown="<user withheld>")
            if reply.code == 334:
                reply = conv.command(base64.b64encode(password.encode()).decode(), "AUTH",
                                     shown="<password withheld>")
        else:
            raise SmtpError(f"{self.peer}: no AUTH mechanism we speak ({' '.join(mechanisms)})",
                            kind="auth")
        if reply.code != 235:
            raise SubmissionRefused("AUTH", reply)
        return reply

    def send(self, mail_from: str, recipients: list[str], message: bytes, *,
             probe_mailbox: str | None = None) -> Reply:
        """MAIL, RCPT, DATA and the message; the end-of-data reply when it is 250.

        `probe_mailbox` is the provider's own probe address: a message with test content
        (GTUBE) is sent only when it is the one recipient (`RefusedTestContent` otherwise).
        """
        check_test_content(message, recipients, probe_mailbox)
        conv = self._need_tls()
        steps = [(f"MAIL FROM:<{mail_from}>", "MAIL FROM")]
        steps += [(f"RCPT TO:<{r}>", "RCPT TO") for r in recipients]
        for line, step in steps:
            reply = conv.command(line, step)
            if reply.code != 250:
                raise SubmissionRefused(step, reply)
        reply = conv.command("DATA")
        if reply.code != 354:
            raise SubmissionRefused("DATA", reply)
        reply = conv.send_message(message)
        if reply.code != 250:
            raise SubmissionRefused("end of data", reply)
        return reply

    def close(self) -> None:
        """QUIT politely when possible; always close the socket."""
        if self._conv is not None:
            with contextlib.suppress(ProbeError, ValueError):
                self._conv.command("QUIT")
            self.transcript = self._conv.transcript
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SubmissionSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _need_tls(self) -> SmtpConversation:
        if self._conv is None or self.ehlo is None or self.tls_version is None:
            raise SmtpError(f"{self.peer}: session not open", kind="protocol")
        return self._conv

    def _conversation(self, sock: socket.socket) -> SmtpConversation:
        conv = SmtpConversation(sock, self.peer, self.deadline, self.timeout, submission=True)
        if self._conv is not None:
            conv.transcript = self._conv.transcript
        self._conv = conv
        self.transcript = conv.transcript
        return conv

    def _wrap(self, sock: socket.socket) -> socket.socket:
        # verify=False only to read capabilities; no credential is ever sent unverified
        tls = wrap_client(sock, self.host, tls_context(self.ca_bundle, self.verify),
                          self.deadline, self.timeout, self.peer, SmtpError)
        self._sock = tls
        self.tls_version = tls.version()
        return tls
