"""SMTP probes for the mail checks: STARTTLS with its certificate, and the open-relay probe,
over the shared client dialogue of `watchtower.net.smtp_dialogue`.

Two entry points:
- `SmtpProber.starttls(...)` runs the dialogue's `StartTlsDialogue` as the `starttls` callback of
  `TlsProber.probe` (so the certificate facts of an MX come from the same TLS code and CA bundle
  as the web checks), once per (MX, address, port) and sweep, shared by `mail.smtp.starttls`,
  `mail.smtp.certificate` and `mail.dane` (the sweep's one prober is
  `watchtower.net.smtpclient.SmtpClient`'s, on the probe context as `ctx.smtp`);
- `SmtpProber.relay(...)` asks the server to relay between two outside domains and stops at the
  RCPT answer. It never sends DATA: the command writer refuses to, whatever a caller asks.
"""

from __future__ import annotations

import socket
import ssl

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net.deadline import remaining
from watchtower.net.shared import SharedCalls
from watchtower.net.smtp_dialogue import (
    DEFAULT_TIMEOUT,
    SmtpConversation,
    SmtpError,
    StartTlsDialogue,
    connect,
    default_helo,
)
from watchtower.net.smtp_outcomes import RelayOutcome, StartTlsOutcome
from watchtower.net.tls import TlsProber
from watchtower.net.tlsscan import TlsScanner

LEGACY_VERSIONS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")
# RFC 2606 names: outside every fleet, and nobody's mailbox.
RELAY_FROM = "watchtower-relay-probe@example.org"
RELAY_TO = "watchtower-relay-probe@example.net"


class SmtpProber:
    """SMTP probes of one sweep; results are memoised per (MX, address, port)."""

    def __init__(self, tls: TlsProber, *, helo: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, legacy_versions: tuple[str, ...] =
                 LEGACY_VERSIONS, scanner: TlsScanner | None = None) -> None:
        self.tls = tls
        #: The sweep's full TLS scanner, whose version probe tells the legacy versions (none
        #: are looked for without one).
        self.scanner = scanner
        self.helo = helo or default_helo()
        self.timeout = timeout
        self.legacy_versions = legacy_versions
        self._memo = SharedCalls()

    def starttls(self, mx: str, address: str, port: int, *, deadline: float | None
                 ) -> StartTlsOutcome:
        """Banner, EHLO, STARTTLS and the handshake (verified against the CA bundle)."""
        return self._memo.get(("starttls", mx.lower(), address, port),
                              lambda: self._starttls(mx, address, port, deadline))

    def relay(self, mx: str, address: str, port: int, *, deadline: float | None,
              mail_from: str = RELAY_FROM, rcpt_to: str = RELAY_TO) -> RelayOutcome:
        """Ask to relay from one outside address to another; stop at the RCPT reply."""
        return self._memo.get(("relay", mx.lower(), address, port, mail_from, rcpt_to),
                              lambda: self._relay(mx, address, port, deadline, mail_from,
                                                  rcpt_to))

    def _starttls(self, mx: str, address: str, port: int, deadline: float | None
                  ) -> StartTlsOutcome:
        host = mx.rstrip(".")
        out = StartTlsOutcome(host, address, port)
        dialogue = StartTlsDialogue(self.helo, deadline, self.timeout)
        try:
            out.tls = self.tls.probe(host, port, starttls=dialogue, deadline=deadline,
                                     address=address)
        except ProbeError as exc:
            out.error, out.error_kind = exc.reason, exc.kind
        finally:
            out.banner = dialogue.banner.evidence() if dialogue.banner else None
            out.capabilities = dialogue.ehlo.keywords() if dialogue.ehlo else []
            out.starttls_offered = ("STARTTLS" in out.capabilities) if dialogue.ehlo else None
            out.transcript = dialogue.transcript
        if out.tls is None or not self.legacy_versions or self.scanner is None:
            return out
        try:  # the version probe of the full TLS scan (mail.starttls.ncsc), shared per sweep
            accepted = self.scanner.versions(host, port, address=address, starttls="smtp",
                                             deadline=deadline)
        except ProbeError:
            return out  # cannot tell: say nothing rather than guess
        out.legacy_versions = [v for v in self.legacy_versions if accepted.get(v)]
        return out

    def _relay(self, mx: str, address: str, port: int, deadline: float | None,
               mail_from: str, rcpt_to: str) -> RelayOutcome:
        host = mx.rstrip(".")
        out = RelayOutcome(host, address, port, mail_from, rcpt_to)
        sock = None
        conv: SmtpConversation | None = None
        try:
            sock = connect(address, port, deadline, self.timeout)
            conv = SmtpConversation(sock, f"{address}:{port}", deadline, self.timeout)
            banner = conv.read_reply("banner")
            out.banner = banner.evidence()
            if banner.code != 220:
                raise SmtpError(f"{address}:{port}: banner is {banner.evidence()}",
                                kind="banner")
            ehlo = conv.command(f"EHLO {self.helo}")
            if ehlo.code == 250 and "STARTTLS" in ehlo.keywords():
                # A relay that opens only after STARTTLS is still an open relay: upgrade the
                # way a spammer would, without judging the certificate (other checks do).
                reply = conv.command("STARTTLS")
                if reply.code == 220 and not conv.pending:
                    sock = _wrap_unverified(sock, host, deadline, self.timeout)
                    transcript = conv.transcript
                    conv = SmtpConversation(sock, f"{address}:{port}", deadline, self.timeout)
                    conv.transcript = transcript
                    out.tls = True
                    ehlo = conv.command(f"EHLO {self.helo}")
            if ehlo.code != 250:
                ehlo = conv.command(f"HELO {self.helo}")
            mail = conv.command(f"MAIL FROM:<{mail_from}>")
            out.mail_code, out.mail_reply = mail.code, mail.evidence()
            if mail.positive:
                rcpt = conv.command(f"RCPT TO:<{rcpt_to}>")
                out.rcpt_code, out.rcpt_reply = rcpt.code, rcpt.evidence()
            conv.command("RSET")
            conv.command("QUIT")
        except ProbeError as exc:
            # A server that drops us after answering RCPT (or refusing MAIL) has answered.
            decided = out.rcpt_code is not None or (out.mail_code or 0) >= 400
            if not decided:
                out.error, out.error_kind = exc.reason, exc.kind
        finally:
            if conv is not None:
                out.transcript = conv.transcript
            if sock is not None:
                sock.close()
        return out


def _wrap_unverified(sock: socket.socket, host: str, deadline: float | None,
                     timeout: float) -> socket.socket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock.settimeout(remaining(deadline, timeout))
    try:
        return ctx.wrap_socket(sock, server_hostname=host)
    except TimeoutError as exc:
        raise ProbeTimeout(f"{host}: TLS handshake timed out") from exc
    except (ssl.SSLError, OSError) as exc:
        raise SmtpError(f"{host}: TLS handshake failed ({exc})", kind="tls") from exc
