"""A small ManageSieve server (RFC 5804) for the lab mail host, over the lab's Sieve subset.

What it serves: the greeting and CAPABILITY (IMPLEMENTATION, SIEVE, SASL, STARTTLS before TLS,
VERSION), STARTTLS (capabilities re-issued after it, 2.2), AUTHENTICATE "PLAIN" with an initial
response, only after TLS (2.1), LISTSCRIPTS, PUTSCRIPT, CHECKSCRIPT, SETACTIVE, GETSCRIPT,
DELETESCRIPT, HAVESPACE, NOOP and LOGOUT. Scripts live in `watchtower.lab.sieve.ScriptStore`,
which the lab mail host reads at delivery. Lines are capped at 4 KiB and literals at the
script cap; a client that sends anything else gets a NO or is disconnected.

The lab fault `sieve-plaintext-auth` makes it offer SASL PLAIN before STARTTLS and accept a
login there, the way a server that trusts its network does: what `mail.sieve` must catch.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import socketserver
import ssl
from collections.abc import Callable

from watchtower.lab.serving import LabListener, LabTcpServer
from watchtower.lab.sieve import EXTENSIONS, MAX_SCRIPT, ScriptStore, SieveSyntaxError, parse

log = logging.getLogger(__name__)

MAX_LINE = 4096
_WORD = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\{(\d+)\+?\}$|([^\s"]+))')


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Session(socketserver.StreamRequestHandler):
    server: _SieveServer

    def setup(self) -> None:
        self.request.settimeout(30)
        super().setup()
        self.tls = False
        self.user: str | None = None

    def handle(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, UnicodeDecodeError, ValueError):
            self._capabilities()
            self._send('OK "watchtower lab ManageSieve ready"')
            while (args := self._command()) is not None:
                if not args:
                    self._send('NO "empty command"')
                elif not self._dispatch(args[0].upper(), args[1:]):
                    return

    # -- I/O ---------------------------------------------------------------------------------

    def _send(self, text: str) -> None:
        self.wfile.write(text.encode("utf-8") + b"\r\n")
        self.wfile.flush()

    def _command(self) -> list[str] | None:
        """One command: atoms and strings; a trailing literal `{n+}` is read in place."""
        args: list[str] = []
        while True:
            raw = self.rfile.readline(MAX_LINE + 2)
            if not raw or not raw.endswith(b"\n"):
                return None
            line = raw.decode("utf-8").rstrip("\r\n")
            pos, literal = 0, None
            while pos < len(line):
                m = _WORD.match(line, pos)
                if not m or m.end() == pos:
                    raise ValueError("unparseable command")
                pos = m.end()
                quoted, size, atom = m.groups()
                if size is not None:
                    literal = int(size)
                elif quoted is not None:
                    args.append(re.sub(r"\\(.)", r"\1", quoted))
                elif atom is not None:
                    args.append(atom)
            if literal is None:
                return args
            if literal > MAX_SCRIPT:
                raise ValueError("literal too large")
            args.append(self.rfile.read(literal).decode("utf-8", "replace"))

    # -- commands ----------------------------------------------------------------------------

    def _capabilities(self) -> None:
        open_auth = self.tls or self.server.plaintext_auth()
        for line in (f"{_quoted('IMPLEMENTATION')} {_quoted('watchtower lab')}",
                     f"{_quoted('SIEVE')} {_quoted(' '.join(EXTENSIONS))}",
                     f"{_quoted('SASL')} {_quoted('PLAIN' if open_auth else '')}",
                     *([] if self.tls else [_quoted("STARTTLS")]),
                     f"{_quoted('VERSION')} {_quoted('1.0')}"):
            self._send(line)

    def _dispatch(self, verb: str, args: list[str]) -> bool:
        handler = _HANDLERS.get(verb)
        if handler is None:
            self._send('NO "unknown command"')
            return True
        if verb not in ("CAPABILITY", "STARTTLS", "AUTHENTICATE", "LOGOUT", "NOOP") \
                and self.user is None:
            self._send('NO "log in first"')
            return True
        return handler(self, args)

    def _starttls(self, args: list[str]) -> bool:
        if self.tls:
            self._send('NO "TLS already active"')
            return True
        self._send('OK "Begin TLS negotiation now"')
        conn = self.server.tls_context.wrap_socket(self.request, server_side=True)
        self.request, self.tls = conn, True
        self.rfile, self.wfile = conn.makefile("rb"), conn.makefile("wb")
        self._capabilities()
        self._send('OK "TLS negotiation successful"')
        return True

    def _authenticate(self, args: list[str]) -> bool:
        if not (self.tls or self.server.plaintext_auth()):
            self._send('NO "Plaintext authentication disallowed on non-secure connections"')
            return True
        if len(args) != 2 or args[0].upper() != "PLAIN":
            self._send('NO "only PLAIN, with an initial response"')
            return True
        try:
            _authzid, user, password = base64.b64decode(args[1]).decode().split("\0")
        except (ValueError, UnicodeDecodeError):
            self._send('NO "cannot decode the response"')
            return True
        if not self.server.check_password(user, password):
            self._send('NO "Authentication failed"')
            return True
        self.user = user.lower()
        self._send('OK "Logged in"')
        return True

    def _listscripts(self, args: list[str]) -> bool:
        assert self.user is not None
        for name, active in self.server.store.scripts(self.user):
            self._send(_quoted(name) + (" ACTIVE" if active else ""))
        self._send('OK "Listscripts completed"')
        return True

    def _putscript(self, args: list[str]) -> bool:
        assert self.user is not None
        if len(args) != 2 or not ScriptStore.valid_name(args[0]):
            self._send('NO "PUTSCRIPT name {size+} script"')
            return True
        try:
            self.server.store.put(self.user, args[0], args[1])
        except SieveSyntaxError as exc:
            self._send(f"NO {_quoted(str(exc))}")
            return True
        self._send('OK "PUTSCRIPT completed"')
        return True

    def _checkscript(self, args: list[str]) -> bool:
        try:
            parse(args[0] if args else "")
        except SieveSyntaxError as exc:
            self._send(f"NO {_quoted(str(exc))}")
            return True
        self._send('OK "Script checked successfully"')
        return True

    def _setactive(self, args: list[str]) -> bool:
        assert self.user is not None
        if len(args) != 1 or not self.server.store.set_active(self.user, args[0]):
            self._send('NO (NONEXISTENT) "no such script"')
        else:
            self._send('OK "Setactive completed"')
        return True

    def _getscript(self, args: list[str]) -> bool:
        assert self.user is not None
        names = {name for name, _on in self.server.store.scripts(self.user)}
        if len(args) != 1 or args[0] not in names:
            self._send('NO (NONEXISTENT) "no such script"')
            return True
        text = (self.server.store.dir / self.user / f"{args[0]}.sieve").read_text()
        data = text.encode()
        self.wfile.write(b"{%d}\r\n" % len(data) + data + b"\r\n")
        self._send('OK "Getscript completed"')
        return True

    def _deletescript(self, args: list[str]) -> bool:
        assert self.user is not None
        why = self.server.store.delete(self.user, args[0]) if len(args) == 1 else "usage"
        self._send('OK "Deletescript completed"' if why is None else f"NO {_quoted(why)}")
        return True

    def _ok(self, args: list[str]) -> bool:
        self._send('OK "done"')
        return True

    def _capability(self, args: list[str]) -> bool:
        self._capabilities()
        self._send('OK "Capability completed"')
        return True

    def _logout(self, args: list[str]) -> bool:
        self._send('OK "Logout completed"')
        return False


_HANDLERS: dict[str, Callable[[_Session, list[str]], bool]] = {
    "CAPABILITY": _Session._capability,
    "STARTTLS": _Session._starttls,
    "AUTHENTICATE": _Session._authenticate,
    "LISTSCRIPTS": _Session._listscripts,
    "PUTSCRIPT": _Session._putscript,
    "CHECKSCRIPT": _Session._checkscript,
    "SETACTIVE": _Session._setactive,
    "GETSCRIPT": _Session._getscript,
    "DELETESCRIPT": _Session._deletescript,
    "HAVESPACE": _Session._ok,
    "NOOP": _Session._ok,
    "LOGOUT": _Session._logout,
}


class _SieveServer(LabTcpServer):
    label = "lab-managesieved"

    def __init__(self, address: tuple[str, int], store: ScriptStore,
                 check_password: Callable[[str, str], bool], tls_context: ssl.SSLContext,
                 plaintext_auth: Callable[[], bool]) -> None:
        self.store = store
        self.check_password = check_password
        self.tls_context = tls_context
        self.plaintext_auth = plaintext_auth
        super().__init__(address, _Session)


class LabManageSieve(LabListener):
    """The ManageSieve listener; `port` is known after `start()`."""

    def __init__(self, store: ScriptStore, check_password: Callable[[str, str], bool],
                 tls: ssl.SSLContext, plaintext_auth: Callable[[], bool],
                 address: str = "127.0.0.1") -> None:
        self.store = store
        self.check_password = check_password
        self.tls = tls
        self.plaintext_auth = plaintext_auth
        self.address = address

    def _make(self) -> LabTcpServer:
        return _SieveServer((self.address, self.port), self.store, self.check_password,
                            self.tls, self.plaintext_auth)
