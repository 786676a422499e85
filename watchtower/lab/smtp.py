"""The lab's MX: a small SMTP responder with STARTTLS under the lab CA, and its mail faults.

Why not aiosmtpd: the lab needs only the greeting, EHLO, STARTTLS and the envelope commands the
mail checks send, and it must never accept a message. A hundred lines on `socketserver` keep it a
stdlib-only part of the package (the lab runs wherever watchtower runs) and make "never accept
DATA" a property of the code, not of a handler setting.

One listener per address: the healthy MX on 127.0.0.1 and, for domains with the `open-relay`
fault, a second one on `RELAY_ADDRESS` (same port) that relays for anyone. A domain's fault
decides which address its `mail.<domain>` name resolves to.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import ssl
from typing import Any

from watchtower.lab.serving import LabTcpServer

log = logging.getLogger(__name__)

RELAY_ADDRESS = "127.0.1.25"
MAIL_FAULTS: dict[str, str] = {
    "spf-plus-all": "SPF ends in +all: anyone may send as the domain",
    "spf-too-many-lookups": "SPF needs 12 DNS lookups (the limit is 10)",
    "no-dmarc": "the domain publishes no DMARC record",
    "open-relay": "the MX relays mail between two outside domains",
}
MAX_LINE = 2048


def mx_address(faults: set[str]) -> str:
    """Where `mail.<domain>` points: the open relay for domains with that fault."""
    return RELAY_ADDRESS if "open-relay" in faults else "127.0.0.1"


def mail_policy_lines(zone: str, faults: set[str]) -> list[str]:
    """The SPF and DMARC records of a lab zone (master-file lines), faults applied."""
    if "spf-plus-all" in faults:
        lines = ['@ IN TXT "v=spf1 +all"']
    elif "spf-too-many-lookups" in faults:
        includes = " ".join(f"include:_spf{i}.{zone}" for i in range(12))
        lines = [f"@ IN TXT {_quoted(f'v=spf1 {includes} -all')}"]
        lines += [f'_spf{i} IN TXT "v=spf1 ip4:127.0.0.{i + 1} -all"' for i in range(12)]
    else:
        lines = ['@ IN TXT "v=spf1 mx -all"']
    if "no-dmarc" not in faults:
        lines.append(f'_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc-reports@{zone}"')
    return lines


def _quoted(value: str) -> str:
    """A TXT value as quoted strings of at most 255 bytes (RFC 1035 3.3.14)."""
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))


class SmtpSession(socketserver.StreamRequestHandler):
    """What the lab's SMTP servers (this MX and the mail host's submission ports) share: line
    I/O, the EHLO reply and the STARTTLS upgrade. A client that hangs up or speaks garbage
    ends its session; each server writes its own `_dialogue`."""

    def setup(self) -> None:
        self.request.settimeout(30)
        super().setup()

    def handle(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, UnicodeDecodeError):
            self._dialogue()

    def _dialogue(self) -> None:
        raise NotImplementedError

    def _send(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def _line(self) -> str | None:
        raw = self.rfile.readline(MAX_LINE)
        return raw.decode("ascii").rstrip("\r\n") if raw else None

    def _ehlo(self, caps: list[str]) -> None:
        """The multi-line 250 reply: the host name first, then the extensions."""
        for cap in caps[:-1]:
            self._send(f"250-{cap}")
        self._send(f"250 {caps[-1]}")

    def _start_tls(self, context: ssl.SSLContext) -> None:
        self._send("220 2.0.0 Ready to start TLS")
        conn = context.wrap_socket(self.request, server_side=True)
        self.request = conn
        self.rfile = conn.makefile("rb")
        self.wfile = conn.makefile("wb")


class _Handler(SmtpSession):
    server: _Server

    def _dialogue(self) -> None:
        srv = self.server
        self._send(f"220 {srv.hostname} ESMTP watchtower lab")
        tls = False
        sender = False
        while (line := self._line()) is not None:
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb):].strip()
            if verb in ("EHLO", "HELO"):
                sender = False
                if verb == "HELO":
                    self._send(f"250 {srv.hostname}")
                    continue
                caps = [srv.hostname, "PIPELINING", "SIZE 10240000", "8BITMIME"]
                if not tls:
                    caps.append("STARTTLS")
                self._ehlo(caps)
            elif verb == "STARTTLS" and not tls:
                self._start_tls(srv.tls)
                tls, sender = True, False
            elif verb == "MAIL":
                sender = True
                self._send("250 2.1.0 Ok")
            elif verb == "RCPT":
                self._rcpt(arg, sender)
            elif verb in ("DATA", "BDAT"):
                self._send("554 5.7.1 the lab accepts no messages")
            elif verb == "RSET":
                sender = False
                self._send("250 2.0.0 Ok")
            elif verb == "NOOP":
                self._send("250 2.0.0 Ok")
            elif verb == "QUIT":
                self._send("221 2.0.0 Bye")
                return
            else:
                self._send("502 5.5.2 Command not recognized")

    def _rcpt(self, arg: str, sender: bool) -> None:
        if not sender:
            self._send("503 5.5.1 MAIL first")
            return
        domain = arg.rsplit("@", 1)[-1].rstrip(">").lower()
        if self.server.relay or domain in self.server.local_domains:
            self._send("250 2.1.5 Ok")
        else:
            self._send("554 5.7.1 Relay access denied")


class _Server(LabTcpServer):
    label = "lab-smtp"

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext, hostname: str,
                 relay: bool, local_domains: set[str]) -> None:
        self.tls = tls
        self.hostname = hostname
        self.relay = relay
        self.local_domains = local_domains
        super().__init__(address, _Handler)


class _Server6(_Server):
    address_family = socket.AF_INET6


class LabSmtp:
    """The lab's MX listeners (one port, two addresses); `port` is known after `start()`."""

    def __init__(self, domains: list[str], cert_path: str, key_path: str, port: int = 0,
                 addresses: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.domains = {d.lower() for d in domains}
        self.addresses = addresses
        self.port = port
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.load_cert_chain(cert_path, key_path)
        self._servers: list[_Server] = []

    def start(self) -> None:
        """The healthy MX on every address in `addresses`, the open relay on RELAY_ADDRESS,
        all on one port (the fleet has one `smtp_port`)."""
        plan = [(a, False) for a in self.addresses] + [(RELAY_ADDRESS, True)]
        for address, relay in plan:
            cls = _Server6 if ":" in address else _Server
            name = "relay.lab.test" if relay else "mail.lab.test"
            srv = cls((address, self.port), self.tls, name, relay, self.domains)
            self.port = srv.server_address[1]
            srv.serve_in_thread()
            self._servers.append(srv)
        log.info("lab smtp on port %d (%s; relay on %s)", self.port,
                 ", ".join(self.addresses), RELAY_ADDRESS)

    def stop(self) -> None:
        for srv in self._servers:
            srv.stop()
        self._servers.clear()

    def __enter__(self) -> LabSmtp:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
