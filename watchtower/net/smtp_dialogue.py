"""The SMTP client dialogue every mail probe shares: deadline-bound replies and commands
(`SmtpConversation`), the opening up to STARTTLS (`Opening`), and that opening as the
`starttls` callback of a TLS handshake (`StartTlsDialogue`).

Why not smtplib: its timeout applies to each socket operation, not to the probe, so a server that
drips one byte per second keeps it forever; and it reads lines of up to 8 KiB each without a cap
on the number of lines. Here every read gets what is left of the probe's deadline, a reply is
cut at `MAX_REPLY_BYTES`, and the dialogue is a transcript the checks keep as evidence.

Apart from the probes that use it (`watchtower.net.smtp`, `watchtower.net.submission`, and the
raw TLS version probe of `watchtower.net.tlshello` after STARTTLS), so that each can import it
without importing the others.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass, field

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net.deadline import remaining

MAX_REPLY_BYTES = 8192
MAX_REPLY_LINES = 100
DEFAULT_TIMEOUT = 10.0
_FORBIDDEN_VERBS = frozenset({"DATA", "BDAT"})


class SmtpError(ProbeError):
    """The SMTP dialogue broke. `kind` says where: banner, ehlo, no-starttls, starttls,
    protocol (not an SMTP reply, reply too long, data injected before TLS)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply (RFC 5321 4.2): the code and its text lines, code prefix stripped."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " / ".join(self.lines)

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    def evidence(self) -> str:
        return f"{self.code} {self.text}"[:500]

    def keywords(self) -> list[str]:
        """EHLO keywords (RFC 5321 4.1.1.1): the first word of each line after the greeting."""
        return [line.split()[0].upper() for line in self.lines[1:] if line.split()]


class SmtpConversation:
    """Reads replies and writes commands on one socket under the probe's deadline."""

    def __init__(self, sock: socket.socket, peer: str, deadline: float | None,
                 timeout: float = DEFAULT_TIMEOUT, *, submission: bool = False) -> None:
        self.sock = sock
        self.peer = peer
        self.deadline = deadline
        self.timeout = timeout
        #: Only a conversation opened for message submission (mail.roundtrip, with AUTH on the
        #: provider's own submission port) may send DATA; probes of an MX never can.
        self.submission = submission
        self.transcript: list[str] = []
        self._buffer = b""

    @property
    def pending(self) -> bytes:
        """Bytes received beyond the last reply (must be empty before a TLS upgrade)."""
        return self._buffer

    def read_reply(self, step: str) -> Reply:
        """Read one (possibly multi-line) reply; SmtpError when it is not one or too long."""
        lines: list[str] = []
        code: int | None = None
        total = 0
        while True:
            line = self._read_line(step, MAX_REPLY_BYTES - total)
            total += len(line) + 2
            text = line.decode("utf-8", errors="replace")
            head = text[:3]
            if not head.isdigit() or (len(text) > 3 and text[3] not in " -"):
                self._log("S", text)
                raise SmtpError(f"{self.peer}: {step}: not an SMTP reply: {text[:120]!r}",
                                kind="protocol")
            if code is not None and int(head) != code:
                raise SmtpError(f"{self.peer}: {step}: reply code changed within a reply",
                                kind="protocol")
            code = int(head)
            lines.append(text[4:])
            self._log("S", text)
            if len(text) == 3 or text[3] == " ":
                return Reply(code, tuple(lines))
            if len(lines) >= MAX_REPLY_LINES:
                raise SmtpError(f"{self.peer}: {step}: reply longer than {MAX_REPLY_LINES} "
                                "lines", kind="protocol")

    def command(self, line: str, step: str | None = None, *, shown: str | None = None
                ) -> Reply:
        """Send one command line and read its reply. DATA and BDAT are refused outright unless
        this is a submission conversation. `shown` replaces the line in the transcript (AUTH
        carries credentials, which never reach evidence or logs)."""
        verb = line.split(" ", 1)[0].upper()
        if verb in _FORBIDDEN_VERBS and not (self.submission and verb == "DATA"):
            raise ValueError("watchtower never sends a message body to a probed server")
        if "\r" in line or "\n" in line:
            raise ValueError("an SMTP command is one line")
        self._log("C", line if shown is None else shown)
        try:
            self.sock.settimeout(remaining(self.deadline, self.timeout))
            self.sock.sendall(line.encode("ascii") + b"\r\n")
        except TimeoutError as exc:
            raise ProbeTimeout(f"{self.peer}: {verb}: send timed out") from exc
        except OSError as exc:
            raise SmtpError(f"{self.peer}: {verb}: connection lost ({exc})",
                            kind="unreachable") from exc
        return self.read_reply(step or verb)

    def send_message(self, message: bytes) -> Reply:
        """After a 354 to DATA: the message, dot-stuffed and CRLF-terminated (RFC 5321 4.5.2),
        then the end-of-data reply, which says whether the server took responsibility."""
        if not self.submission:
            raise ValueError("watchtower never sends a message body to a probed server")
        lines = message.replace(b"\r\n", b"\n").split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        body = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines)
        self._log("C", f"<message, {len(body)} bytes>")
        try:
            self.sock.settimeout(remaining(self.deadline, self.timeout))
            self.sock.sendall(body + b".\r\n")
        except TimeoutError as exc:
            raise ProbeTimeout(f"{self.peer}: message: send timed out") from exc
        except OSError as exc:
            raise SmtpError(f"{self.peer}: message: connection lost ({exc})",
                            kind="unreachable") from exc
        return self.read_reply("end of data")

    def _read_line(self, step: str, budget: int) -> bytes:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
                return line.rstrip(b"\r")
            if len(self._buffer) >= budget:
                cut = self._buffer[:200].decode("utf-8", errors="replace")
                raise SmtpError(f"{self.peer}: {step}: reply longer than {MAX_REPLY_BYTES} "
                                f"bytes, cut: {cut!r}", kind="protocol")
            try:
                self.sock.settimeout(remaining(self.deadline, self.timeout))
                chunk = self.sock.recv(4096)
            except TimeoutError as exc:
                raise ProbeTimeout(f"{self.peer}: no {step} reply within the deadline") from exc
            except OSError as exc:
                raise SmtpError(f"{self.peer}: {step}: connection lost ({exc})",
                                kind="unreachable") from exc
            if not chunk:
                raise SmtpError(f"{self.peer}: {step}: connection closed by the server",
                                kind="protocol" if step != "banner" else "banner")
            self._buffer += chunk

    def _log(self, who: str, text: str) -> None:
        if len(self.transcript) < 60:
            self.transcript.append(f"{who}: {text[:300]}")


def connect(address: str, port: int, deadline: float | None,
            timeout: float = DEFAULT_TIMEOUT) -> socket.socket:
    """A TCP connection to address:port within the deadline; ProbeError with a reason."""
    t = remaining(deadline, timeout)
    try:
        return socket.create_connection((address, port), timeout=t)
    except TimeoutError as exc:
        raise ProbeTimeout(f"{address}:{port}: connect timed out") from exc
    except OSError as exc:
        raise ProbeError(f"{address}:{port}: cannot connect ({exc.strerror or exc})",
                         kind="unreachable") from exc


@functools.cache
def default_helo() -> str:
    """Our EHLO name: the machine's FQDN when it has one (RFC 5321 4.1.1.1). Looked up once
    per process: `getfqdn` asks the system resolver (a reverse lookup), and a full STARTTLS
    scan opens a dozen SMTP dialogues, each of which asked again."""
    name = socket.getfqdn()
    return name if "." in name else "watchtower.localdomain"


@dataclass
class Opening:
    """The opening every SMTP client dialogue shares, as far as it got: the 220 banner, EHLO,
    and (for an upgrade) STARTTLS with its 220, nothing sent after it (RFC 3207 4, 5321 3.1).

    What the server said is kept even when a step fails, so a check can tell "no 220 banner"
    from "STARTTLS not offered" from "the TLS handshake failed". The MX probe
    (`StartTlsDialogue`) and message submission (`watchtower.net.submission`) both run it.
    """

    banner: Reply | None = None
    ehlo: Reply | None = None

    def run(self, conv: SmtpConversation, helo: str, *, starttls: bool) -> None:
        peer = conv.peer
        self.banner = conv.read_reply("banner")
        if self.banner.code != 220:
            raise SmtpError(f"{peer}: banner is {self.banner.evidence()}, not 220",
                            kind="banner")
        self.ehlo = conv.command(f"EHLO {helo}")
        if self.ehlo.code != 250:
            raise SmtpError(f"{peer}: EHLO answered {self.ehlo.evidence()}", kind="ehlo")
        if not starttls:
            return
        if "STARTTLS" not in self.ehlo.keywords():
            raise SmtpError(f"{peer}: STARTTLS not offered", kind="no-starttls")
        reply = conv.command("STARTTLS")
        if reply.code != 220:
            raise SmtpError(f"{peer}: STARTTLS answered {reply.evidence()}", kind="starttls")
        if conv.pending:
            # Bytes after the 220 would be read as if they came over TLS (CVE-2011-0411).
            raise SmtpError(f"{peer}: data sent after the STARTTLS reply, before TLS",
                            kind="protocol")


@dataclass
class StartTlsDialogue:
    """The `starttls` callback of `TlsProber.probe`: the `Opening` with STARTTLS, then TLS.

    Called again when the prober repeats the handshake without verification; the facts of the
    last call win.
    """

    helo: str
    deadline: float | None
    timeout: float = DEFAULT_TIMEOUT
    banner: Reply | None = None
    ehlo: Reply | None = None
    transcript: list[str] = field(default_factory=list)

    def __call__(self, sock: socket.socket, timeout: float) -> None:
        conv = SmtpConversation(sock, _peer(sock), self.deadline, min(self.timeout, timeout))
        opening = Opening()
        try:
            opening.run(conv, self.helo, starttls=True)
        finally:
            self.banner, self.ehlo = opening.banner, opening.ehlo
            self.transcript = conv.transcript


def _peer(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"
