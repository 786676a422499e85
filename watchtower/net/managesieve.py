"""ManageSieve (RFC 5804): how a mail user's filter scripts are managed on the mail host.

`mail.sieve` needs what a mail client's filter editor does: read the capabilities (before and
after STARTTLS), log in with the probe account, ask the server to check a script, and install,
activate and remove the probe's own script. No library on PyPI speaks ManageSieve under a
deadline with bounded reads (managesieve/sievelib read with socket timeouts per call and buffer
literals of any size), so the protocol is here, small: plain values in, no config models.

Bounded everywhere, because the server is outside data:
- every read gets what is left of the probe's deadline, so a server that never answers (or
  drips) gives `ProbeTimeout` on time;
- a line is cut at `MAX_LINE` bytes, a literal at `MAX_LITERAL`, a response at
  `MAX_RESPONSE_BYTES` and `MAX_RESPONSE_LINES`, so a huge literal is refused before it is read;
- anything that is not the RFC 5804 grammar (a capability line that is not one or two strings,
  a bad escape, a response without OK/NO/BYE) is `SieveError(kind="protocol")`.
Passwords go only over verified TLS (AUTHENTICATE before STARTTLS is refused here) and never
into the transcript.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import ssl
from dataclasses import dataclass, field

from watchtower.errors import ProbeError, ProbeTimeout
from watchtower.net.clienttls import tls_context, wrap_client
from watchtower.net.deadline import remaining
from watchtower.net.smtp_dialogue import connect

DEFAULT_PORT = 4190  # RFC 5804 1.8
DEFAULT_TIMEOUT = 10.0
MAX_LINE = 8192
MAX_LITERAL = 64 * 1024  # a probe script is a few hundred bytes; error texts are short
MAX_RESPONSE_BYTES = 256 * 1024
MAX_RESPONSE_LINES = 1000
_ATOM = re.compile(rb"[^\s\"(){}]+")
_LITERAL = re.compile(rb"\{(\d{1,10})\+?\}$")


class SieveError(ProbeError):
    """A ManageSieve step failed; `kind` says which: unreachable, tls, certificate,
    no-starttls, login (credentials refused), refused (a command answered NO), protocol."""


@dataclass(frozen=True, slots=True)
class Response:
    """One response (RFC 5804 1.3): OK/NO/BYE, the optional response code and human text,
    and the data lines before it (each a tuple of strings and atoms)."""

    status: str
    code: str | None
    text: str
    data: tuple[tuple[str, ...], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    def evidence(self) -> str:
        code = f" ({self.code})" if self.code else ""
        return f"{self.status}{code} {self.text}".strip()[:500]


def parse_capabilities(data: tuple[tuple[str, ...], ...], peer: str) -> dict[str, str]:
    """Capability lines (RFC 5804 1.7): `string [SP string]`, names upper-cased."""
    caps: dict[str, str] = {}
    for line in data:
        if not 1 <= len(line) <= 2 or any(not isinstance(item, _Str) for item in line):
            shown = " ".join(line)[:120]
            raise SieveError(f"{peer}: malformed capability line {shown!r}", kind="protocol")
        caps[line[0].upper()] = line[1] if len(line) == 2 else ""
    return caps


def sieve_extensions(caps: dict[str, str] | None) -> list[str]:
    """The Sieve extensions a capability set lists (the SIEVE capability), lower-cased."""
    return (caps or {}).get("SIEVE", "").lower().split()


def sasl_mechanisms(caps: dict[str, str] | None) -> list[str]:
    """The SASL mechanisms a capability set offers (the SASL capability), upper-cased."""
    return (caps or {}).get("SASL", "").upper().split()


class _Str(str):
    """A quoted string or literal (as opposed to an atom such as OK or ACTIVE)."""

    __slots__ = ()


def quote(value: str) -> str:
    """A ManageSieve quoted string (RFC 5804 4: `\\` and `"` escaped; no CR, LF or NUL)."""
    if any(c in value for c in "\r\n\0"):
        raise ValueError("a quoted ManageSieve string holds no CR, LF or NUL")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> bytes:
    """A non-synchronizing client literal `{n+}` CRLF octets (RFC 5804 4, literal-c2s)."""
    data = value.encode("utf-8")
    return b"{%d+}\r\n" % len(data) + data


@dataclass
class ManageSieveSession:
    """One ManageSieve connection under a deadline. `open()` ends with TLS up and the
    capabilities the server re-issued after STARTTLS (RFC 5804 2.2)."""

    host: str
    address: str
    port: int
    deadline: float | None
    ca_bundle: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    capabilities_before_tls: dict[str, str] | None = None
    capabilities: dict[str, str] = field(default_factory=dict)
    tls_version: str | None = None
    transcript: list[str] = field(default_factory=list)
    _sock: socket.socket | None = None
    _buffer: bytes = b""

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def extensions(self) -> list[str]:
        return sieve_extensions(self.capabilities)

    def open(self) -> None:
        """Connect, read the greeting capabilities, STARTTLS (verified), read them again."""
        try:
            self._sock = connect(self.address, self.port, self.deadline, self.timeout)
        except ProbeError as exc:
            raise SieveError(exc.reason, kind=exc.kind) from exc
        greeting = self.read_response("greeting")
        if not greeting.ok:
            raise SieveError(f"{self.peer}: greeting is {greeting.evidence()}", kind="protocol")
        self.capabilities_before_tls = parse_capabilities(greeting.data, self.peer)
        self.capabilities = self.capabilities_before_tls
        if "STARTTLS" not in self.capabilities_before_tls:
            raise SieveError(f"{self.peer}: STARTTLS not offered", kind="no-starttls")
        reply = self.command("STARTTLS")
        if not reply.ok:
            raise SieveError(f"{self.peer}: STARTTLS answered {reply.evidence()}",
                             kind="no-starttls")
        if self._buffer:
            raise SieveError(f"{self.peer}: data sent after the STARTTLS reply, before TLS",
                             kind="protocol")
        self._wrap()
        after = self.read_response("capabilities after STARTTLS")
        if not after.ok:
            raise SieveError(f"{self.peer}: after STARTTLS: {after.evidence()}",
                             kind="protocol")
        self.capabilities = parse_capabilities(after.data, self.peer)

    def login(self, user: str, password: str) -> None:
        """AUTHENTICATE "PLAIN" with an initial response (RFC 5804 2.1), only over TLS."""
        if self.tls_version is None:
            raise SieveError(f"{self.peer}: refusing to send a password without TLS",
                             kind="tls")
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        reply = self.command(f'AUTHENTICATE "PLAIN" {quote(token)}',
                             shown='AUTHENTICATE "PLAIN" <credentials withheld>')
        if reply.status == "NO":
            raise SieveError(f"{self.peer}: login refused ({reply.evidence()[:200]})",
                             kind="login")
        if not reply.ok:
            raise SieveError(f"{self.peer}: AUTHENTICATE answered {reply.evidence()}",
                             kind="protocol")

    def list_scripts(self) -> list[tuple[str, bool]]:
        """(name, active) of every script of the logged-in user (LISTSCRIPTS, RFC 5804 2.7)."""
        reply = self._must("LISTSCRIPTS")
        out: list[tuple[str, bool]] = []
        for line in reply.data:
            if not line or not isinstance(line[0], _Str) or len(line) > 2 or (
                    len(line) == 2 and line[1].upper() != "ACTIVE"):
                raise SieveError(f"{self.peer}: malformed LISTSCRIPTS line "
                                 f"{' '.join(line)[:120]!r}", kind="protocol")
            out.append((str(line[0]), len(line) == 2))
        return out

    def check_script(self, script: str) -> Response:
        """CHECKSCRIPT (RFC 5804 2.12): the server's verdict on a script, OK or NO."""
        return self.command_with_literal("CHECKSCRIPT", script)

    def put_script(self, name: str, script: str) -> None:
        reply = self.command_with_literal(f"PUTSCRIPT {quote(name)}", script)
        if not reply.ok:
            raise SieveError(f"{self.peer}: PUTSCRIPT answered {reply.evidence()}",
                             kind="refused")

    def set_active(self, name: str) -> None:
        """SETACTIVE (RFC 5804 2.8); the empty name deactivates every script."""
        self._must(f"SETACTIVE {quote(name)}")

    def delete_script(self, name: str) -> None:
        self._must(f"DELETESCRIPT {quote(name)}")

    def close(self) -> None:
        """LOGOUT politely when possible; always close the socket."""
        if self._sock is None:
            return
        with contextlib.suppress(ProbeError, OSError, ValueError):
            self._sock.settimeout(min(2.0, self.timeout))
            self._send(b"LOGOUT\r\n", "LOGOUT")
            self.read_response("LOGOUT")
        with contextlib.suppress(OSError):
            self._sock.close()
        self._sock = None

    def __enter__(self) -> ManageSieveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ------------------------------------------------------------------------------

    def command(self, line: str, *, shown: str | None = None) -> Response:
        """Send one command line and read its response (a NO is returned, not raised)."""
        if "\r" in line or "\n" in line:
            raise ValueError("a ManageSieve command is one line")
        self._send(line.encode("utf-8") + b"\r\n", shown or line)
        return self.read_response(line.split(" ", 1)[0])

    def command_with_literal(self, head: str, text: str) -> Response:
        data = literal(text)
        self._send(head.encode("utf-8") + b" " + data + b"\r\n",
                   f"{head} <script, {len(data)} bytes>")
        return self.read_response(head.split(" ", 1)[0])

    def _must(self, line: str) -> Response:
        reply = self.command(line)
        if not reply.ok:
            verb = line.split(" ", 1)[0]
            raise SieveError(f"{self.peer}: {verb} answered {reply.evidence()}",
                             kind="refused" if reply.status == "NO" else "protocol")
        return reply

    # -- reading -------------------------------------------------------------------------------

    def read_response(self, step: str) -> Response:
        """Data lines up to the OK/NO/BYE line that ends the response, within every bound."""
        data: list[tuple[str, ...]] = []
        budget = [MAX_RESPONSE_BYTES]
        while True:
            items = self._logical_line(step, budget)
            head = items[0].upper() if items and not isinstance(items[0], _Str) else None
            self._log("S", " ".join(items))
            if head in ("OK", "NO", "BYE"):
                return _response(head, items[1:], tuple(data), self.peer, step)
            if head is not None:  # data lines start with a string (capabilities, names)
                raise SieveError(f"{self.peer}: {step}: unexpected {' '.join(items)[:80]!r}: "
                                 "not a ManageSieve response", kind="protocol")
            data.append(tuple(items))
            if len(data) >= MAX_RESPONSE_LINES:
                raise SieveError(f"{self.peer}: {step}: response longer than "
                                 f"{MAX_RESPONSE_LINES} lines", kind="protocol")

    def _logical_line(self, step: str, budget: list[int]) -> list[str]:
        """One line of strings, atoms and `(code)`s; literals are read in place."""
        items: list[str] = []
        line = self._line(step, budget)
        while True:
            pos = 0
            while pos < len(line):
                if line[pos:pos + 1] == b" ":
                    pos += 1
                    continue
                m = _LITERAL.match(line, pos)
                if m:  # only at the end of a line: the octets follow the CRLF
                    items.append(_Str(self._literal(int(m.group(1)), step, budget)))
                    break
                item, pos = _token(line, pos, self.peer, step)
                items.append(item)
            else:
                return items
            line = self._line(step, budget)

    def _literal(self, size: int, step: str, budget: list[int]) -> str:
        if size > MAX_LITERAL or size > budget[0]:
            raise SieveError(f"{self.peer}: {step}: literal of {size} bytes refused (limit "
                             f"{min(MAX_LITERAL, budget[0])})", kind="protocol")
        budget[0] -= size
        while len(self._buffer) < size:
            self._fill(step)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data.decode("utf-8", "replace")

    def _line(self, step: str, budget: list[int]) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 2:]
                budget[0] -= len(line) + 2
                if budget[0] < 0:
                    raise SieveError(f"{self.peer}: {step}: response longer than "
                                     f"{MAX_RESPONSE_BYTES} bytes", kind="protocol")
                return line
            if len(self._buffer) > MAX_LINE:
                raise SieveError(f"{self.peer}: {step}: line longer than {MAX_LINE} bytes",
                                 kind="protocol")
            self._fill(step)

    def _fill(self, step: str) -> None:
        sock = self._need()
        try:
            sock.settimeout(remaining(self.deadline, self.timeout))
            chunk = sock.recv(16384)
        except TimeoutError as exc:
            raise ProbeTimeout(f"{self.peer}: no {step} response within the deadline") from exc
        except ssl.SSLError as exc:
            raise SieveError(f"{self.peer}: {step}: TLS failed ({exc.reason or exc})",
                             kind="tls") from exc
        except OSError as exc:
            raise SieveError(f"{self.peer}: {step}: connection lost ({exc})",
                             kind="unreachable") from exc
        if not chunk:
            raise SieveError(f"{self.peer}: {step}: connection closed by the server",
                             kind="protocol")
        self._buffer += chunk

    # -- writing and TLS -----------------------------------------------------------------------

    def _send(self, data: bytes, shown: str) -> None:
        sock = self._need()
        self._log("C", shown)
        try:
            sock.settimeout(remaining(self.deadline, self.timeout))
            sock.sendall(data)
        except TimeoutError as exc:
            raise ProbeTimeout(f"{self.peer}: send timed out") from exc
        except OSError as exc:
            raise SieveError(f"{self.peer}: connection lost ({exc})",
                             kind="unreachable") from exc

    def _wrap(self) -> None:
        tls = wrap_client(self._need(), self.host, tls_context(self.ca_bundle), self.deadline,
                          self.timeout, self.peer, SieveError)
        self._sock = tls
        self.tls_version = tls.version()

    def _need(self) -> socket.socket:
        if self._sock is None:
            raise SieveError(f"{self.peer}: session not open", kind="protocol")
        return self._sock

    def _log(self, who: str, text: str) -> None:
        if len(self.transcript) < 80:
            self.transcript.append(f"{who}: {text[:300]}")


def _token(line: bytes, pos: int, peer: str, step: str) -> tuple[str, int]:
    """The quoted string, `(response code)` or atom at `pos`, and where the next one starts."""
    first = line[pos:pos + 1]
    if first == b'"':
        out = bytearray()
        i = pos + 1
        while i < len(line):
            c = line[i:i + 1]
            if c == b"\\":
                nxt = line[i + 1:i + 2]
                if nxt not in (b"\\", b'"'):
                    raise SieveError(f"{peer}: {step}: bad escape in a quoted string",
                                     kind="protocol")
                out += nxt
                i += 2
            elif c == b'"':
                return _Str(out.decode("utf-8", "replace")), i + 1
            else:
                out += c
                i += 1
        raise SieveError(f"{peer}: {step}: unterminated quoted string", kind="protocol")
    if first == b"(":
        end = _code_end(line, pos, peer, step)
        return "(" + line[pos + 1:end].decode("utf-8", "replace") + ")", end + 1
    m = _ATOM.match(line, pos)
    if not m:
        shown = line[pos:pos + 40].decode("utf-8", "replace")
        raise SieveError(f"{peer}: {step}: unexpected {shown!r}", kind="protocol")
    return m.group(0).decode("ascii", "replace"), m.end()


def _code_end(line: bytes, pos: int, peer: str, step: str) -> int:
    """Where the response code opened at `pos` closes (a `)` inside a quoted string does not
    count: `(SASL "...")`, RFC 5804 1.3)."""
    quoted = False
    i = pos + 1
    while i < len(line):
        c = line[i:i + 1]
        if quoted and c == b"\\":
            i += 2
            continue
        if c == b'"':
            quoted = not quoted
        elif c == b")" and not quoted:
            return i
        i += 1
    raise SieveError(f"{peer}: {step}: unterminated response code", kind="protocol")


def _response(status: str, rest: list[str], data: tuple[tuple[str, ...], ...], peer: str,
              step: str) -> Response:
    code: str | None = None
    if rest and not isinstance(rest[0], _Str) and rest[0].startswith("("):
        code, rest = rest[0][1:-1], rest[1:]
    if len(rest) > 1 or (rest and not isinstance(rest[0], _Str)):
        raise SieveError(f"{peer}: {step}: malformed {status} line", kind="protocol")
    return Response(status, code, str(rest[0]) if rest else "", data)


class ManageSieveClient:
    """The sweep's ManageSieve client (`ctx.sieve`): sessions with one timeout and the fleet's
    CA bundle."""

    def __init__(self, *, ca_bundle: str | None = None, timeout: float = DEFAULT_TIMEOUT
                 ) -> None:
        self.ca_bundle = ca_bundle
        self.timeout = timeout

    def session(self, host: str, address: str, port: int, deadline: float | None
                ) -> ManageSieveSession:
        """A session to `host` at `address` (opened by the caller; TLS verified)."""
        return ManageSieveSession(host, address, port, deadline, ca_bundle=self.ca_bundle,
                                  timeout=self.timeout)
