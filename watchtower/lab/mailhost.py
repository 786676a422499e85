"""The lab's mail host: submission (587-style STARTTLS and 465-style implicit TLS) with AUTH,
DKIM signing with the lab's key, delivery into a Maildir, and IMAPS over that Maildir.

Why this exists: `mail.submission`, `mail.imap` and `mail.roundtrip` need a mail host that
really takes a message, signs it and hands it back, and the demo must run without Debian
packages. The tests of those checks use the real Postfix/Dovecot/OpenDKIM stack; the lab needs
only a faithful subset, so this is the stdlib `socketserver` plus dkimpy (already a dependency
of the round-trip check), in the style of the lab MX in `watchtower.lab.smtp`.

What it does (and no more): AUTH PLAIN/LOGIN only after TLS (RFC 4954 4), MAIL/RCPT only after
AUTH (RFC 6409 4.3), recipients only in the lab's domains and known mailboxes, a 1 MiB message
cap, a DKIM-Signature (d = the sender's lab domain, selector s1) and a Received header, then
delivery to `<maildir>/<mailbox>/`. Nothing ever leaves the machine.
"""

from __future__ import annotations

import base64
import hmac
import logging
import mailbox
import secrets
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import dkim

from watchtower.lab.imapd import LabImapd
from watchtower.lab.smtp import MAX_LINE, SmtpSession

log = logging.getLogger(__name__)

MAX_MESSAGE = 1 << 20
SELECTOR = "s1"
PROBE_USER = "watchtower-probe"
PASSWORD_FILE = "mail-probe-password"  # noqa: S105 (a file name, not a password)


@dataclass
class MailHostConfig:
    """What the lab mail host serves; `users` maps a mailbox (user@domain) to its password."""

    hostname: str
    domains: set[str]
    users: dict[str, str]
    maildir: Path
    dkim_key: bytes
    selector: str = SELECTOR
    deliveries: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.maildir.mkdir(parents=True, exist_ok=True)  # Maildir() makes one level only

    def check_password(self, user: str, password: str) -> bool:
        expected = self.users.get(user.lower())
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    def mailbox(self, user: str) -> mailbox.Maildir:
        return mailbox.Maildir(self.maildir / user.lower(), create=True)

    def deliver(self, sender: str, recipients: list[str], data: bytes, peer: str,
                authed: str) -> None:
        """Sign (when the sender's domain is a lab domain) and store for each recipient."""
        received = (f"Received: from {peer} by {self.hostname} with ESMTPSA (authenticated "
                    f"as {authed}); {formatdate(localtime=False)}\r\n").encode()
        domain = sender.rsplit("@", 1)[-1].lower()
        if domain in self.domains:
            signature = dkim.sign(data, self.selector.encode(), domain.encode(), self.dkim_key,
                                  include_headers=[b"from", b"to", b"subject", b"date",
                                                   b"message-id"])
            data = signature + data
        data = received + data
        for rcpt in recipients:
            self.mailbox(rcpt).add(data)
        self.deliveries.append(sender)


class _Session(SmtpSession):
    server: _SubmissionServer

    def setup(self) -> None:
        self.request.settimeout(30)
        if self.server.implicit:  # handshake in this session's thread, not the accept loop
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def _dialogue(self) -> None:
        srv, cfg = self.server, self.server.config
        tls = srv.implicit
        user: str | None = None
        sender: str | None = None
        rcpts: list[str] = []
        self._send(f"220 {cfg.hostname} ESMTP watchtower lab submission")
        while (line := self._line()) is not None:
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                caps = [cfg.hostname, "PIPELINING", f"SIZE {MAX_MESSAGE}", "8BITMIME"]
                caps.append("AUTH PLAIN LOGIN" if tls else "STARTTLS")
                self._ehlo(caps)
            elif verb == "STARTTLS" and not tls:
                self._start_tls(srv.tls)
                tls, user, sender, rcpts = True, None, None, []
            elif verb == "AUTH":
                if not tls:
                    self._send("538 5.7.11 Encryption required for requested authentication "
                               "mechanism")
                    continue
                user = self._auth(arg) or user
            elif verb == "MAIL":
                if not tls:
                    self._send("530 5.7.0 Must issue a STARTTLS command first")
                elif user is None:
                    self._send("530 5.7.0 Authentication required")
                else:
                    sender, rcpts = _address(arg), []
                    self._send("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpt = _address(arg)
                if sender is None:
                    self._send("503 5.5.1 MAIL first")
                elif rcpt.lower() not in cfg.users:
                    self._send("550 5.1.1 No such mailbox here")
                else:
                    rcpts.append(rcpt)
                    self._send("250 2.1.5 Ok")
            elif verb == "DATA":
                if sender is None or not rcpts or user is None:
                    self._send("503 5.5.1 RCPT first")
                    continue
                self._send("354 End data with <CR><LF>.<CR><LF>")
                data = self._data()
                if data is None:
                    self._send("552 5.3.4 Message too big")
                else:
                    cfg.deliver(sender, rcpts, data, self.client_address[0], user)
                    self._send("250 2.0.0 Ok: delivered")
                sender, rcpts = None, []
            elif verb == "RSET":
                sender, rcpts = None, []
                self._send("250 2.0.0 Ok")
            elif verb == "NOOP":
                self._send("250 2.0.0 Ok")
            elif verb == "QUIT":
                self._send("221 2.0.0 Bye")
                return
            else:
                self._send("502 5.5.2 Command not recognized")

    def _auth(self, arg: str) -> str | None:
        mech, _, initial = arg.partition(" ")
        cfg = self.server.config
        try:
            if mech.upper() == "PLAIN":
                if not initial:
                    self._send("334 ")
                    initial = self._line() or ""
                _authzid, user, password = base64.b64decode(initial).decode().split("\0")
            elif mech.upper() == "LOGIN":
                self._send("334 VXNlcm5hbWU6")
                user = base64.b64decode(self._line() or "").decode()
                self._send("334 UGFzc3dvcmQ6")
                password = base64.b64decode(self._line() or "").decode()
            else:
                self._send("504 5.5.4 Unrecognized authentication type")
                return None
        except (ValueError, UnicodeDecodeError):
            self._send("501 5.5.2 Cannot decode response")
            return None
        if cfg.check_password(user, password):
            self._send("235 2.7.0 Authentication successful")
            return user
        self._send("535 5.7.8 Authentication failed")
        return None

    def _data(self) -> bytes | None:
        """The message up to the lone dot, dot-unstuffed (RFC 5321 4.5.2); None when too big."""
        chunks: list[bytes] = []
        size = 0
        while True:
            raw = self.rfile.readline(MAX_LINE + 2)
            if not raw or raw in (b".\r\n", b".\n"):
                break
            if raw.startswith(b"."):
                raw = raw[1:]
            size += len(raw)
            if size <= MAX_MESSAGE:
                chunks.append(raw)
        return b"".join(chunks) if size <= MAX_MESSAGE else None


def _address(arg: str) -> str:
    """The address inside `FROM:<a>` / `TO:<a>` (parameters after it ignored)."""
    inside = arg.split(":", 1)[-1].strip()
    return inside.split(">", 1)[0].lstrip("<").strip()


class _SubmissionServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], config: MailHostConfig, tls: ssl.SSLContext,
                 implicit: bool) -> None:
        self.config = config
        self.tls = tls
        self.implicit = implicit
        super().__init__(address, _Session)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("lab submission: session from %s ended with an error", client_address,
                  exc_info=True)


class LabMailHost:
    """Submission on two ports and IMAPS on a third; ports are known after `start()`."""

    def __init__(self, config: MailHostConfig, cert_path: str, key_path: str,
                 address: str = "127.0.0.1") -> None:
        self.config = config
        self.address = address
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.load_cert_chain(cert_path, key_path)
        self.submission_port = 0
        self.submissions_port = 0
        self.imapd = LabImapd(config.maildir, config.check_password, self.tls, address)
        self._servers: list[_SubmissionServer] = []

    @property
    def imaps_port(self) -> int:
        return self.imapd.port

    def start(self) -> None:
        for implicit in (False, True):
            srv = _SubmissionServer((self.address, 0), self.config, self.tls, implicit)
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                             daemon=True, name="lab-submission").start()
            self._servers.append(srv)
            if implicit:
                self.submissions_port = srv.server_address[1]
            else:
                self.submission_port = srv.server_address[1]
        self.imapd.start()
        log.info("lab mail host %s: submission %d, submissions %d, imaps %d",
                 self.config.hostname, self.submission_port, self.submissions_port,
                 self.imaps_port)

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        self._servers.clear()
        self.imapd.stop()

    def __enter__(self) -> LabMailHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def lab_mail_host(directory: Path, domains: list[str], cert_path: str, key_path: str,
                  address: str = "127.0.0.1") -> LabMailHost:
    """The lab's mail host for `mail.<first domain>`, with one probe mailbox whose password
    lives in a file in the lab directory (the fleet file names it with `$file`), signing with
    the lab's DKIM key (`dkim-s1.key`, the key published at s1._domainkey of every domain)."""
    secret = directory / PASSWORD_FILE
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(18) + "\n")
        secret.chmod(0o600)
    first = domains[0]
    config = MailHostConfig(
        hostname=f"mail.{first}",
        domains={d.lower() for d in domains},
        users={f"{PROBE_USER}@{first}": secret.read_text().strip()},
        maildir=directory / "maildir",
        dkim_key=(directory / f"dkim-{SELECTOR}.key").read_bytes(),
    )
    return LabMailHost(config, cert_path, key_path, address)


def fleet_entry(host: LabMailHost, directory: Path) -> dict[str, Any]:
    """The `[[mail_hosts]]` entry that points watchtower at a started lab mail host."""
    user = next(iter(host.config.users))
    return {
        "name": host.config.hostname,
        "host": host.config.hostname,
        "submission_port": host.submission_port,
        "submissions_port": host.submissions_port,
        "imaps_port": host.imaps_port,
        "probe_user": user,
        "probe_password": {"$file": str(directory / PASSWORD_FILE)},
        "roundtrip_deadline": 20.0,
    }
