"""A small IMAP4rev1 subset over implicit TLS, serving the lab mail host's Maildirs.

Honest scope: a full IMAP server in Python is heavy and the lab does not need one. This serves
what a mail client's first steps and `mail.roundtrip` use: CAPABILITY, NOOP, LOGIN, SELECT,
UID SEARCH HEADER, UID FETCH (BODY.PEEK[] and BODY.PEEK[HEADER.FIELDS (...)]), UID STORE
+FLAGS \\Deleted, EXPUNGE / UID EXPUNGE (UIDPLUS), CREATE, LOGOUT (RFC 3501 6, RFC 4315 2.1).
INBOX and the Maildir++ folders the mail host files into (Junk, a Sieve target). Anything
else gets a tagged BAD. The tests of the IMAP check itself run
against the real Dovecot; this exists so the demo shows a real round trip without Debian.
"""

from __future__ import annotations

import contextlib
import logging
import mailbox
import re
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from email.parser import BytesHeaderParser
from pathlib import Path

from watchtower.lab.serving import LabListener, LabTcpServer

log = logging.getLogger(__name__)

MAX_LINE = 4096
CAPABILITIES = "IMAP4rev1 UIDPLUS AUTH=PLAIN"
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\()|(\))|([^\s()"]+)')


def tokens(text: str) -> list[str]:
    """Atoms and quoted strings of a command line (parentheses kept as their own tokens)."""
    out = []
    for m in _TOKEN.finditer(text):
        quoted, opening, closing, atom = m.groups()
        if quoted is not None:
            out.append(re.sub(r"\\(.)", r"\1", quoted))
        else:
            out.append(opening or closing or atom)
    return out


def uid_set(spec: str, known: list[int]) -> list[int]:
    """UIDs named by a sequence set like `3`, `1:4,7`, `5:*` that exist in `known`."""
    wanted: set[int] = set()
    top = max(known, default=0)
    for part in spec.split(","):
        lo, _, hi = part.partition(":")
        a = top if lo == "*" else int(lo)
        b = a if not hi else (top if hi == "*" else int(hi))
        wanted.update(range(min(a, b), max(a, b) + 1))
    return [u for u in known if u in wanted]


class _Uids:
    """Maildir key -> UID, stable for the life of the lab (UIDVALIDITY is its start time)."""

    def __init__(self) -> None:
        self.validity = int(time.time())
        self._next = 1
        self._by_key: dict[str, int] = {}
        self._lock = threading.Lock()

    def of(self, key: str) -> int:
        with self._lock:
            if key not in self._by_key:
                self._by_key[key] = self._next
                self._next += 1
            return self._by_key[key]


class _Session(socketserver.StreamRequestHandler):
    server: _ImapServer

    def setup(self) -> None:
        self.request.settimeout(60)
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()
        self.user: str | None = None
        self.box: mailbox.Maildir | None = None
        self.deleted: set[int] = set()

    def handle(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, UnicodeDecodeError):
            self._send(f"* OK [CAPABILITY {CAPABILITIES}] watchtower lab IMAP ready")
            while True:
                raw = self.rfile.readline(MAX_LINE)
                if not raw:
                    return
                line = raw.decode("utf-8").rstrip("\r\n")
                tag, _, rest = line.partition(" ")
                if not tag or not rest:
                    self._send("* BAD empty command")
                    continue
                if not self._command(tag, rest):
                    return

    def _send(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def _command(self, tag: str, rest: str) -> bool:
        """One tagged command; False when the session ends (LOGOUT)."""
        words = tokens(rest)
        verb = words[0].upper()
        args = words[1:]
        if verb == "UID" and args:
            verb, args = "UID " + args[0].upper(), args[1:]
        if verb == "CAPABILITY":
            self._send(f"* CAPABILITY {CAPABILITIES}")
        elif verb == "NOOP":
            if self.box is not None:
                self._send(f"* {len(self._uids())} EXISTS")
        elif verb == "LOGOUT":
            self._send("* BYE logging out")
            self._send(f"{tag} OK LOGOUT completed")
            return False
        elif verb == "LOGIN":
            if len(args) != 2 or not self.server.check_password(args[0], args[1]):
                self._send(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
                return True
            self.user = args[0].lower()
            self._send(f"* CAPABILITY {CAPABILITIES}")
        elif self.user is None:
            self._send(f"{tag} BAD log in first")
            return True
        elif not self._mailbox_command(tag, verb, args):
            return True
        self._send(f"{tag} OK {verb} completed")
        return True

    def _mailbox_command(self, tag: str, verb: str, args: list[str]) -> bool:
        """A command of a logged-in session; False when it has answered already."""
        assert self.user is not None
        if verb == "CREATE" and args:
            root = mailbox.Maildir(self.server.maildir / self.user, create=True)
            if args[0].upper() == "INBOX" or args[0] in root.list_folders():
                self._send(f"{tag} NO [ALREADYEXISTS] Mailbox already exists")
                return False
            root.add_folder(args[0])
        elif verb in ("SELECT", "EXAMINE"):
            self._select(tag, verb, args)
            return False
        elif self.box is None:
            self._send(f"{tag} BAD select a mailbox first")
            return False
        elif verb == "UID SEARCH":
            self._search(args)
        elif verb == "UID FETCH" and args:
            self._fetch(args[0], " ".join(args[1:]).upper())
        elif verb == "UID STORE" and len(args) >= 2:
            if "\\DELETED" in " ".join(args[2:]).upper():
                self.deleted.update(uid_set(args[0], self._uids()))
        elif verb == "EXPUNGE":
            self._expunge(None)
        elif verb == "UID EXPUNGE" and args:
            self._expunge(set(uid_set(args[0], self._uids())))
        else:
            self._send(f"{tag} BAD not supported by the lab")
            return False
        return True

    def _select(self, tag: str, verb: str, args: list[str]) -> None:
        box = self._folder(args[0]) if args else None
        if box is None:
            self._send(f"{tag} NO [NONEXISTENT] Mailbox doesn't exist")
            return
        self.box = box
        self.deleted.clear()
        self._send(f"* {len(self._uids())} EXISTS")
        self._send("* 0 RECENT")
        self._send("* FLAGS (\\Deleted \\Seen)")
        self._send(f"* OK [UIDVALIDITY {self.server.uids.validity}] UIDs valid")
        self._send(f"{tag} OK [READ-WRITE] {verb} completed")

    def _folder(self, name: str) -> mailbox.Maildir | None:
        """INBOX (the Maildir itself) or an existing Maildir++ folder of the user."""
        assert self.user is not None
        root = mailbox.Maildir(self.server.maildir / self.user, create=True)
        if name.upper() == "INBOX":
            return root
        return root.get_folder(name) if name in root.list_folders() else None

    def _messages(self) -> dict[int, str]:
        assert self.box is not None
        return {self.server.uids.of(k): k for k in self.box.iterkeys()}

    def _uids(self) -> list[int]:
        return sorted(self._messages())

    def _search(self, args: list[str]) -> None:
        """Only `HEADER <name> <value>` (and `ALL`): what the round-trip probe asks."""
        assert self.box is not None
        msgs = self._messages()
        found = sorted(msgs)
        if len(args) >= 3 and args[0].upper() == "HEADER":
            name, value = args[1], args[2].lower()
            parser = BytesHeaderParser()
            found = [uid for uid in found
                     if any(value in str(v).lower() for v in
                            parser.parsebytes(self.box.get_bytes(msgs[uid])).get_all(name) or [])]
        self._send("* SEARCH" + "".join(f" {u}" for u in found))

    def _fetch(self, spec: str, items: str) -> None:
        assert self.box is not None
        msgs = self._messages()
        order = sorted(msgs)
        fields = re.search(r"HEADER\.FIELDS \(([^)]*)\)", items)
        for uid in uid_set(spec, order):
            raw = self.box.get_bytes(msgs[uid])
            if fields:
                names = fields.group(1).split()
                head = BytesHeaderParser().parsebytes(raw)
                body = "".join(f"{n}: {v}\r\n" for n in names for v in head.get_all(n) or [])
                data = (body + "\r\n").encode()
                label = f"BODY[HEADER.FIELDS ({' '.join(names)})]"
            else:
                data, label = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), "BODY[]"
            seq = order.index(uid) + 1
            self.wfile.write(f"* {seq} FETCH (UID {uid} {label} {{{len(data)}}}\r\n".encode()
                             + data + b")\r\n")
        self.wfile.flush()

    def _expunge(self, only: set[int] | None) -> None:
        assert self.box is not None
        msgs = self._messages()
        order = sorted(msgs)
        gone = [u for u in order if u in self.deleted and (only is None or u in only)]
        for uid in reversed(gone):
            self._send(f"* {order.index(uid) + 1} EXPUNGE")
            with contextlib.suppress(KeyError):
                self.box.remove(msgs[uid])
            self.deleted.discard(uid)


class _ImapServer(LabTcpServer):
    label = "lab-imapd"

    def __init__(self, address: tuple[str, int], maildir: Path,
                 check_password: Callable[[str, str], bool], tls: ssl.SSLContext) -> None:
        self.maildir = maildir
        self.check_password = check_password
        self.tls = tls
        self.uids = _Uids()
        super().__init__(address, _Session)


class LabImapd(LabListener):
    """The IMAPS listener; `port` is known after `start()`."""

    def __init__(self, maildir: Path, check_password: Callable[[str, str], bool],
                 tls: ssl.SSLContext, address: str = "127.0.0.1", port: int = 0) -> None:
        self.maildir = maildir
        self.check_password = check_password
        self.tls = tls
        self.address = address
        self.port = port

    def _make(self) -> LabTcpServer:
        self.maildir.mkdir(parents=True, exist_ok=True)
        return _ImapServer((self.address, self.port), self.maildir, self.check_password,
                           self.tls)
