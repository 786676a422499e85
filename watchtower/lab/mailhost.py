"""The lab's mail host: submission (587-style STARTTLS and 465-style implicit TLS) with AUTH,
DKIM signing with the lab's key, delivery into a Maildir (with folders), IMAPS over that
Maildir, ManageSieve, a spam filter that knows GTUBE and a forwarding hop that seals with ARC.

Why this exists: the mail-host checks (`mail.submission`, `mail.imap`, `mail.roundtrip`,
`mail.spam-filter`, `mail.sieve`, `mail.dkim.key-match`) need a mail host that really takes a
message, signs, filters, files and seals it and hands it back, and the demo must run without
Debian packages. The tests of those checks use the real Postfix/Dovecot/Pigeonhole/Rspamd/
OpenDKIM stacks; the lab needs only a faithful subset, so this is the stdlib `socketserver`
plus dkimpy (already a dependency of the round-trip check), in the style of the lab MX in
`watchtower.lab.smtp`.

What it does (and no more): AUTH PLAIN/LOGIN only after TLS (RFC 4954 4), MAIL/RCPT only after
AUTH (RFC 6409 4.3), recipients only in the lab's domains and known mailboxes (plus the
forwarding address), a 1 MiB message cap, then:
- GTUBE (the spam test pattern) is rejected at the end of DATA with 554 5.7.1, as Rspamd does;
- a DKIM-Signature (d = the sender's lab domain, selector s1, the key in `dkim-signing.key`)
  and a Received header;
- mail to `forward@<domain>` passes a forwarding hop: an Authentication-Results header and an
  ARC set (RFC 8617, dkimpy's `arc_sign`) are added, and it is delivered to the probe mailbox;
- the recipient's active Sieve script (`watchtower.lab.sieve`, managed over ManageSieve by
  `watchtower.lab.managesieved`) decides the folder; then delivery to `<maildir>/<mailbox>/`.
Nothing ever leaves the machine. The faults in `MAILHOST_FAULTS` (switched with `watchtower lab
fault`) break one of these each.
"""

from __future__ import annotations

import base64
import hmac
import logging
import mailbox
import secrets
import shutil
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import formatdate
from pathlib import Path
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from watchtower.lab.imapd import LabImapd
from watchtower.lab.managesieved import LabManageSieve
from watchtower.lab.serving import LabTcpServer
from watchtower.lab.sieve import ScriptStore, folder_for
from watchtower.lab.smtp import MAX_LINE, SmtpSession

log = logging.getLogger(__name__)

MAX_MESSAGE = 1 << 20
SELECTOR = "s1"
PROBE_USER = "watchtower-probe"
PASSWORD_FILE = "mail-probe-password"  # noqa: S105 (a file name, not a password)
SIGNING_KEY = "dkim-signing.key"  # what the mail host signs with; dkim-s1.key is published
JUNK = "Junk"
GTUBE_PATTERN = b"GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL"
#: The [[hosts]] entry the lab mail host "runs on" (the local transport: this machine).
LAB_HOST = "lab-mail"
MAILHOST_FAULTS: dict[str, str] = {
    "spam-filter-off": "the mail host's spam filter lets GTUBE through as ordinary mail",
    "spam-junk": "the spam filter files GTUBE into Junk instead of rejecting it",
    "sieve-plaintext-auth": "ManageSieve offers SASL PLAIN before STARTTLS",
    "sieve-not-run": "Sieve scripts are kept but not run at delivery",
    "dkim-key-rotated": "the mail host signs with a new DKIM key that DNS does not publish",
    "arc-broken-seal": "the forwarding hop alters the message after sealing it",
}


@dataclass
class MailHostConfig:
    """What the lab mail host serves; `users` maps a mailbox (user@domain) to its password,
    `aliases` a forwarding address to the mailbox it forwards to (through the sealing hop).
    `faults` is the live fault set of the mail host's domain (switched while the lab runs)."""

    hostname: str
    domains: set[str]
    users: dict[str, str]
    maildir: Path
    dkim_key: bytes
    selector: str = SELECTOR
    aliases: dict[str, str] = field(default_factory=dict)
    faults: set[str] = field(default_factory=set)
    signing_key_path: Path | None = None
    sieve: ScriptStore | None = None
    deliveries: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.maildir.mkdir(parents=True, exist_ok=True)  # Maildir() makes one level only

    def check_password(self, user: str, password: str) -> bool:
        expected = self.users.get(user.lower())
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    def accepts(self, rcpt: str) -> bool:
        return rcpt.lower() in self.users or rcpt.lower() in self.aliases

    def mailbox(self, user: str, folder: str = "INBOX") -> mailbox.Maildir:
        box = mailbox.Maildir(self.maildir / user.lower(), create=True)
        if folder.upper() == "INBOX":
            return box
        return (box.get_folder(folder) if folder in box.list_folders()
                else box.add_folder(folder))

    def signing_key(self) -> bytes:
        """The key in `dkim-signing.key` (read at each delivery: a rotation shows at once)."""
        if self.signing_key_path is not None and self.signing_key_path.exists():
            return self.signing_key_path.read_bytes()
        return self.dkim_key

    def deliver(self, sender: str, recipients: list[str], data: bytes, peer: str,
                authed: str) -> str | None:
        """Filter, sign and store for each recipient; the SMTP reply when refused."""
        spam = GTUBE_PATTERN in data and "spam-filter-off" not in self.faults
        if spam and "spam-junk" not in self.faults:
            return "554 5.7.1 Gtube pattern"
        received = (f"Received: from {peer} by {self.hostname} with ESMTPSA (authenticated "
                    f"as {authed}); {formatdate(localtime=False)}\r\n").encode()
        domain = sender.rsplit("@", 1)[-1].lower()
        if domain in self.domains:
            signature = dkim.sign(data, self.selector.encode(), domain.encode(),
                                  self.signing_key(),
                                  include_headers=[b"from", b"to", b"subject", b"date",
                                                   b"message-id"])
            data = signature + data
        data = received + data
        if spam:
            data = b"X-Spam: Yes\r\n" + data
        for rcpt in recipients:
            mailbox_name, message = rcpt.lower(), data
            if mailbox_name in self.aliases:
                mailbox_name, message = self.aliases[mailbox_name], self._forward(data, rcpt)
            folder = JUNK if spam else self._sieve_folder(mailbox_name, message)
            if folder is not None:
                self.mailbox(mailbox_name, folder).add(message)
        self.deliveries.append(sender)
        return None

    def _sieve_folder(self, user: str, message: bytes) -> str | None:
        """The folder the user's active Sieve script chooses (INBOX without one)."""
        if self.sieve is None or "sieve-not-run" in self.faults:
            return "INBOX"
        rules = self.sieve.active_rules(user)
        if rules is None:
            return "INBOX"
        return folder_for(rules, BytesHeaderParser().parsebytes(message))

    def _forward(self, message: bytes, rcpt: str) -> bytes:
        """The forwarding hop: record it (Authentication-Results: no chain before it) and
        seal it (ARC i=1, with the signing key under the lab's selector)."""
        domain = rcpt.rsplit("@", 1)[-1].lower()
        srv_id = f"forwarder.{self.hostname}"
        message = f"Authentication-Results: {srv_id}; arc=none\r\n".encode() + message
        seal = b"".join(dkim.arc_sign(message, self.selector.encode(), domain.encode(),
                                      self.signing_key(), srv_id.encode()))
        if "arc-broken-seal" in self.faults:  # a careless hop rewrites what it sealed
            seal = seal.replace(b"arc=none", b"arc=none (rewritten)", 1)
        return seal + message


class _Session(SmtpSession):
    server: _SubmissionServer
    tls: bool
    user: str | None  # who authenticated
    sender: str | None
    rcpts: list[str]

    def setup(self) -> None:
        self.request.settimeout(30)
        if self.server.implicit:  # handshake in this session's thread, not the accept loop
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def _dialogue(self) -> None:
        """Submission (RFC 6409): STARTTLS (or implicit TLS), AUTH, then the envelope."""
        self.tls = self.server.implicit
        self._reset(user=True)
        self._send(f"220 {self.server.config.hostname} ESMTP watchtower lab submission")
        verbs: dict[str, Callable[[str], bool]] = {
            "EHLO": self._verb_ehlo, "STARTTLS": self._verb_starttls, "AUTH": self._verb_auth,
            "MAIL": self._verb_mail, "RCPT": self._verb_rcpt, "DATA": self._verb_data,
            "RSET": self._verb_rset, "NOOP": self._verb_noop, "QUIT": self._verb_quit,
        }
        while (line := self._line()) is not None:
            verb, _, arg = line.partition(" ")
            if not verbs.get(verb.upper(), self._verb_unknown)(arg):
                return

    # Each verb answers and says whether the session goes on.

    def _reset(self, *, user: bool = False) -> None:
        """Forget the envelope (and, after STARTTLS, who authenticated)."""
        if user:
            self.user = None
        self.sender: str | None = None
        self.rcpts: list[str] = []

    def _verb_ehlo(self, arg: str) -> bool:
        caps = [self.server.config.hostname, "PIPELINING", f"SIZE {MAX_MESSAGE}", "8BITMIME"]
        caps.append("AUTH PLAIN LOGIN" if self.tls else "STARTTLS")
        self._ehlo(caps)
        return True

    def _verb_starttls(self, arg: str) -> bool:
        if self.tls:
            return self._verb_unknown(arg)
        self._start_tls(self.server.tls)
        self.tls = True
        self._reset(user=True)
        return True

    def _verb_auth(self, arg: str) -> bool:
        if not self.tls:
            self._send("538 5.7.11 Encryption required for requested authentication mechanism")
        else:
            self.user = self._auth(arg) or self.user
        return True

    def _verb_mail(self, arg: str) -> bool:
        if not self.tls:
            self._send("530 5.7.0 Must issue a STARTTLS command first")
        elif self.user is None:
            self._send("530 5.7.0 Authentication required")
        else:
            self.sender, self.rcpts = _address(arg), []
            self._send("250 2.1.0 Ok")
        return True

    def _verb_rcpt(self, arg: str) -> bool:
        rcpt = _address(arg)
        if self.sender is None:
            self._send("503 5.5.1 MAIL first")
        elif not self.server.config.accepts(rcpt):
            self._send("550 5.1.1 No such mailbox here")
        else:
            self.rcpts.append(rcpt)
            self._send("250 2.1.5 Ok")
        return True

    def _verb_data(self, arg: str) -> bool:
        if self.sender is None or not self.rcpts or self.user is None:
            self._send("503 5.5.1 RCPT first")
            return True
        self._send("354 End data with <CR><LF>.<CR><LF>")
        data = self._data()
        if data is None:
            self._send("552 5.3.4 Message too big")
        else:
            refused = self.server.config.deliver(self.sender, self.rcpts, data,
                                                 self.client_address[0], self.user)
            self._send(refused or "250 2.0.0 Ok: delivered")
        self._reset()
        return True

    def _verb_rset(self, arg: str) -> bool:
        self._reset()
        self._send("250 2.0.0 Ok")
        return True

    def _verb_noop(self, arg: str) -> bool:
        self._send("250 2.0.0 Ok")
        return True

    def _verb_quit(self, arg: str) -> bool:
        self._send("221 2.0.0 Bye")
        return False

    def _verb_unknown(self, arg: str) -> bool:
        self._send("502 5.5.2 Command not recognized")
        return True

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


class _SubmissionServer(LabTcpServer):
    label = "lab-submission"

    def __init__(self, address: tuple[str, int], config: MailHostConfig, tls: ssl.SSLContext,
                 implicit: bool) -> None:
        self.config = config
        self.tls = tls
        self.implicit = implicit
        super().__init__(address, _Session)


class LabMailHost:
    """Submission on two ports, IMAPS on a third, ManageSieve (when the config has a script
    store) on a fourth; ports are known after `start()`."""

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
        self.managesieve = None if config.sieve is None else LabManageSieve(
            config.sieve, config.check_password, self.tls,
            lambda: "sieve-plaintext-auth" in config.faults, address)
        self._servers: list[_SubmissionServer] = []

    @property
    def imaps_port(self) -> int:
        return self.imapd.port

    @property
    def sieve_port(self) -> int:
        return self.managesieve.port if self.managesieve is not None else 0

    def refresh_faults(self, published_key: Path) -> None:
        """Make the signing key file agree with the faults: a new key under `dkim-key-rotated`
        (DNS keeps publishing the old one), the published key otherwise."""
        path = self.config.signing_key_path
        if path is None:
            return
        rotated = path.exists() and path.read_bytes() != published_key.read_bytes()
        if "dkim-key-rotated" in self.config.faults and not rotated:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        elif "dkim-key-rotated" not in self.config.faults and rotated:
            _write_private(path, published_key.read_bytes())

    def start(self) -> None:
        for implicit in (False, True):
            srv = _SubmissionServer((self.address, 0), self.config, self.tls, implicit)
            srv.serve_in_thread()
            self._servers.append(srv)
            if implicit:
                self.submissions_port = srv.server_address[1]
            else:
                self.submission_port = srv.server_address[1]
        self.imapd.start()
        if self.managesieve is not None:
            self.managesieve.start()
        log.info("lab mail host %s: submission %d, submissions %d, imaps %d, sieve %d",
                 self.config.hostname, self.submission_port, self.submissions_port,
                 self.imaps_port, self.sieve_port)

    def stop(self) -> None:
        for srv in self._servers:
            srv.stop()
        self._servers.clear()
        self.imapd.stop()
        if self.managesieve is not None:
            self.managesieve.stop()

    def __enter__(self) -> LabMailHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(path)  # atomic: a delivery reads the old key or the new one


def lab_mail_host(directory: Path, domains: list[str], cert_path: str, key_path: str,
                  address: str = "127.0.0.1", faults: set[str] | None = None) -> LabMailHost:
    """The lab's mail host for `mail.<first domain>`, with one probe mailbox whose password
    lives in a file in the lab directory (the fleet file names it with `$file`), a forwarding
    address `forward@<first domain>` to it, signing with `dkim-signing.key` (a copy of the
    lab's published key `dkim-s1.key`, unless `dkim-key-rotated`). `faults` is the live fault
    set of the first domain."""
    secret = directory / PASSWORD_FILE
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(18) + "\n")
        secret.chmod(0o600)
    first = domains[0]
    published = directory / f"dkim-{SELECTOR}.key"
    signing = directory / SIGNING_KEY
    if not signing.exists():
        shutil.copyfile(published, signing)
        signing.chmod(0o600)
    probe = f"{PROBE_USER}@{first}"
    config = MailHostConfig(
        hostname=f"mail.{first}",
        domains={d.lower() for d in domains},
        users={probe: secret.read_text().strip()},
        maildir=directory / "maildir",
        dkim_key=published.read_bytes(),
        aliases={f"forward@{first}": probe},
        faults=faults if faults is not None else set(),
        signing_key_path=signing,
        sieve=ScriptStore(directory / "sieve"),
    )
    host = LabMailHost(config, cert_path, key_path, address)
    host.refresh_faults(published)
    return host


def fleet_entry(host: LabMailHost, directory: Path) -> dict[str, Any]:
    """The `[[mail_hosts]]` entry that points watchtower at a started lab mail host: the round
    trip goes through the sealing hop (`roundtrip_to` the forwarding address, `expect_arc`),
    the DKIM key is read through the `LAB_HOST` entry (this machine) with a Python one-liner
    in place of `openssl` (the demo needs nothing outside Python)."""
    user = next(iter(host.config.users))
    forward = next(iter(host.config.aliases), None)
    entry: dict[str, Any] = {
        "name": host.config.hostname,
        "host": host.config.hostname,
        "submission_port": host.submission_port,
        "submissions_port": host.submissions_port,
        "imaps_port": host.imaps_port,
        "probe_user": user,
        "probe_password": {"$file": str(directory / PASSWORD_FILE)},
        "roundtrip_deadline": 20.0,
        "sieve_port": host.sieve_port,
        "sieve_extensions": ["fileinto", "vacation", "imap4flags"],
        "runs_on": LAB_HOST,
        # Its own domain only: one key command per probe, whatever the size of the lab.
        "dkim_keys": [{"domain": host.config.hostname.split(".", 1)[1], "selector": SELECTOR,
                       "path": str(directory / SIGNING_KEY)}],
        "dkim_pubkey_command": [sys.executable, "-m", "watchtower.lab.keyhalf"],
    }
    if forward:
        entry.update(roundtrip_to=forward, expect_arc=True)
    return entry
