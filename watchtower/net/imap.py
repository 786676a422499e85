"""IMAP sessions with a provider's mail host: IMAPS (993) or IMAP + STARTTLS (143), login with
the probe mailbox, and the few commands the round trip needs (SEARCH, FETCH, delete).

imaplib underneath (the protocol parsing is mature), with two things it lacks added here:
- the connection goes to an address from the fleet's resolver while TLS verifies the host
  *name* (SNI and RFC 6125 matching against the configured CA bundle);
- every command gets what is left of the probe's deadline as its socket timeout, so a server
  that answers slowly cannot stretch a probe past its budget.
Passwords are sent only over a verified TLS connection, and never logged.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net.clienttls import tls_context
from watchtower.net.deadline import remaining

ImapMode = Literal["implicit", "starttls"]
DEFAULT_TIMEOUT = 10.0
MAX_MESSAGE_BYTES = 1 << 20  # a probe message is a few KiB; anything bigger is not ours
T = TypeVar("T")


class ImapError(ProbeError):
    """An IMAP step failed; `kind` says which: unreachable, tls, certificate, no-starttls,
    login (credentials refused), protocol."""


class _Imap(imaplib.IMAP4):
    """imaplib connecting to a resolved address (plain; STARTTLS verifies `host`)."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        self._address = address
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self._address, self.port), timeout)


class _ImapTls(imaplib.IMAP4_SSL):
    """imaplib over implicit TLS to a resolved address, verifying the host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float,
                 context: ssl.SSLContext) -> None:
        self._address = address
        self._context = context  # typeshed does not declare IMAP4_SSL.ssl_context
        super().__init__(host, port, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), timeout)
        return self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class ImapStartTls:
    """The `starttls` callback of `TlsProber.probe` for IMAP: greeting, STARTTLS, its OK.

    Lets the certificate facts of port 143 come from the same prober as every other TLS check.
    Reads are bounded in size and by the probe's deadline.
    """

    deadline: float | None
    timeout: float = DEFAULT_TIMEOUT

    def __call__(self, sock: socket.socket, timeout: float) -> None:
        name = sock.getpeername()
        peer = f"{name[0]}:{name[1]}" if isinstance(name, tuple) else "?"
        self._until(sock, b"\r\n", peer, "greeting")
        sock.sendall(b"wt1 STARTTLS\r\n")
        reply = self._until(sock, b"wt1 ", peer, "STARTTLS")
        tagged = reply[reply.rfind(b"wt1 "):].upper()
        if not tagged.startswith(b"WT1 OK"):
            raise ImapError(f"{peer}: STARTTLS refused", kind="no-starttls")

    def _until(self, sock: socket.socket, marker: bytes, peer: str, step: str) -> bytes:
        buf = b""
        while not (marker in buf and buf.endswith(b"\r\n")):
            if len(buf) > 16384:
                raise ImapError(f"{peer}: {step}: reply too long", kind="protocol")
            sock.settimeout(remaining(self.deadline, self.timeout))
            try:
                chunk = sock.recv(4096)
            except TimeoutError as exc:
                raise ProbeTimeout(f"{peer}: no {step} reply within the deadline") from exc
            if not chunk:
                raise ImapError(f"{peer}: closed during {step}", kind="protocol")
            buf += chunk
        return buf


def _quoted(mailbox: str) -> str:
    """A mailbox name as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class ImapSession:
    """One IMAP connection under a deadline. `open()` ends with TLS up (both modes)."""

    host: str
    address: str
    port: int
    mode: ImapMode
    deadline: float | None
    ca_bundle: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    greeting: str | None = None
    capabilities_before_tls: list[str] | None = None
    capabilities: list[str] = field(default_factory=list)
    tls_version: str | None = None
    _imap: imaplib.IMAP4 | None = None

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}"

    def open(self) -> None:
        t = remaining(self.deadline, self.timeout)
        ctx = tls_context(self.ca_bundle)
        if self.mode == "implicit":
            self._imap = self._guard("connect", lambda: _ImapTls(self.host, self.address,
                                                                 self.port, t, ctx))
        else:
            plain = self._guard("connect", lambda: _Imap(self.host, self.address, self.port, t))
            self._imap = plain
            self.capabilities_before_tls = [str(c).upper() for c in plain.capabilities]
            if "STARTTLS" not in self.capabilities_before_tls:
                raise ImapError(f"{self.peer}: STARTTLS not offered", kind="no-starttls")
            self._guard("STARTTLS", lambda: plain.starttls(ctx))
        imap = self._need()
        self.greeting = (imap.welcome or b"").decode("utf-8", "replace")[:300]
        sock: Any = imap.sock
        self.tls_version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
        self.capabilities = [str(c).upper() for c in imap.capabilities]

    def login(self, user: str, password: str) -> None:
        """LOGIN over TLS; ImapError(kind="login") when the server refuses the credentials."""
        imap = self._need()
        if self.tls_version is None:
            raise ImapError(f"{self.peer}: refusing to send a password without TLS",
                            kind="tls")
        self._guard("LOGIN", lambda: imap.login(user, password), login=True)
        self.capabilities = [str(c).upper() for c in imap.capabilities]

    def select(self, mailbox: str = "INBOX") -> int:
        """SELECT a mailbox; ImapError(kind="no-mailbox") when the server says NO (it does
        not exist, or may not be opened)."""
        imap = self._need()
        typ, data = self._guard("SELECT", lambda: imap.select(_quoted(mailbox)))
        if typ == "NO":
            raise ImapError(f"{self.peer}: SELECT {mailbox} answered NO", kind="no-mailbox")
        if typ != "OK":
            raise ImapError(f"{self.peer}: SELECT {mailbox} answered {typ}", kind="protocol")
        return int(data[0] or 0) if data and isinstance(data[0], bytes) else 0

    def ensure_mailbox(self, mailbox: str) -> bool:
        """CREATE `mailbox` unless it can be selected already; True when it was created."""
        imap = self._need()
        try:
            self.select(mailbox)
            return False
        except ImapError as exc:
            if exc.kind != "no-mailbox":
                raise
        typ, data = self._guard("CREATE", lambda: imap.create(_quoted(mailbox)))
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise ImapError(f"{self.peer}: CREATE {mailbox} answered {typ} {text[:200]}",
                            kind="protocol")
        return True

    def refresh(self) -> None:
        """NOOP: lets the server report messages delivered since the last command."""
        imap = self._need()
        self._guard("NOOP", imap.noop)

    def search_header(self, name: str, value: str) -> list[int]:
        """UIDs of messages whose header `name` contains `value` ("" = has the header)."""
        imap = self._need()
        quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        typ, data = self._guard("SEARCH", lambda: imap.uid("SEARCH", "HEADER", name, quoted))
        if typ != "OK":
            raise ImapError(f"{self.peer}: SEARCH answered {typ}", kind="protocol")
        return [int(x) for x in (data[0] or b"").split() if x.isdigit()]

    def fetch(self, uid: int) -> bytes:
        """The whole message, without setting \\Seen."""
        imap = self._need()
        typ, data = self._guard("FETCH", lambda: imap.uid("FETCH", str(uid), "(BODY.PEEK[])"))
        if typ != "OK":
            raise ImapError(f"{self.peer}: FETCH answered {typ}", kind="protocol")
        for part in data:
            if isinstance(part, tuple) and len(part[1]) <= MAX_MESSAGE_BYTES:
                return bytes(part[1])
        raise ImapError(f"{self.peer}: FETCH returned no message body", kind="protocol")

    def header_values(self, uids: list[int], name: str) -> dict[int, str]:
        """UID -> value of header `name`, for many messages in one FETCH."""
        if not uids:
            return {}
        imap = self._need()
        uid_set = ",".join(str(u) for u in uids)
        typ, data = self._guard("FETCH", lambda: imap.uid(
            "FETCH", uid_set, f"(UID BODY.PEEK[HEADER.FIELDS ({name})])"))
        if typ != "OK":
            raise ImapError(f"{self.peer}: FETCH answered {typ}", kind="protocol")
        out: dict[int, str] = {}
        for part in data:
            if not isinstance(part, tuple):
                continue
            m = re.search(rb"UID (\d+)", part[0])
            text = bytes(part[1]).decode("utf-8", "replace")
            value = text.split(":", 1)[1].strip() if ":" in text else ""
            if m:
                out[int(m.group(1))] = value
        return out

    def delete(self, uids: list[int]) -> None:
        """Flag \\Deleted and expunge (UID EXPUNGE when the server has UIDPLUS, so messages
        another client flagged are left alone)."""
        if not uids:
            return
        imap = self._need()
        uid_set = ",".join(str(u) for u in uids)
        self._guard("STORE", lambda: imap.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"))
        if "UIDPLUS" in self.capabilities:
            self._guard("EXPUNGE", lambda: imap.uid("EXPUNGE", uid_set))
        else:
            self._guard("EXPUNGE", imap.expunge)

    def close(self) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        try:
            sock: Any = imap.sock
            sock.settimeout(min(2.0, self.timeout))
            imap.logout()
        except (imaplib.IMAP4.error, OSError, ValueError):
            with contextlib.suppress(OSError):
                imap.shutdown()

    def __enter__(self) -> ImapSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _need(self) -> imaplib.IMAP4:
        if self._imap is None:
            raise ImapError(f"{self.peer}: session not open", kind="protocol")
        return self._imap

    def _guard(self, step: str, call: Callable[[], T], *, login: bool = False) -> T:
        """Run one imaplib call with the deadline as socket timeout; map its exceptions."""
        if self._imap is not None:
            sock: Any = self._imap.sock
            sock.settimeout(remaining(self.deadline, self.timeout))
        try:
            return call()
        except TimeoutError as exc:
            raise ProbeTimeout(f"{self.peer}: {step} timed out") from exc
        except ssl.SSLCertVerificationError as exc:
            raise ImapError(f"{self.peer}: certificate not trusted "
                            f"({exc.verify_message or exc})", kind="certificate") from exc
        except ssl.SSLError as exc:
            raise ImapError(f"{self.peer}: TLS failed ({exc.reason or exc})", kind="tls") from exc
        except imaplib.IMAP4.abort as exc:
            raise ImapError(f"{self.peer}: {step}: connection dropped ({exc})",
                            kind="protocol") from exc
        except imaplib.IMAP4.error as exc:
            text = str(exc)
            if login:
                # imaplib puts the server's NO text in the message; never the password.
                raise ImapError(f"{self.peer}: login refused ({text[:200]})",
                                kind="login") from exc
            raise ImapError(f"{self.peer}: {step} failed ({text[:200]})",
                            kind="protocol") from exc
        except ConnectionRefusedError as exc:
            raise ImapError(f"{self.peer}: connection refused", kind="unreachable") from exc
        except OSError as exc:
            raise ImapError(f"{self.peer}: {step}: {exc.strerror or exc}",
                            kind="unreachable") from exc


class ImapClient:
    """The sweep's IMAP client (`ctx.imap`): sessions and STARTTLS callbacks with one timeout
    and the fleet's CA bundle."""

    def __init__(self, *, ca_bundle: str | None = None, timeout: float = DEFAULT_TIMEOUT
                 ) -> None:
        self.ca_bundle = ca_bundle
        self.timeout = timeout

    def session(self, host: str, address: str, port: int, mode: ImapMode,
                deadline: float | None) -> ImapSession:
        """A session to `host` at `address` (opened by the caller; TLS verified either way)."""
        return ImapSession(host, address, port, mode, deadline, ca_bundle=self.ca_bundle,
                           timeout=self.timeout)

    def starttls(self, deadline: float | None) -> ImapStartTls:
        """The STARTTLS callback for `TlsProber.probe` of a plain IMAP port."""
        return ImapStartTls(deadline, self.timeout)
