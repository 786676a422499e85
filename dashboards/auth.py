"""Dashboard users: who may look, who may act, and how a password is checked.

Why it is built this way:
- Passwords are never stored, only scrypt hashes (RFC 7914) with a random salt per user, so two
  users with the same password get different hashes and a stolen users file costs an attacker a
  memory-hard search per user. The cost parameters are stored with each hash, so they can be
  raised later without invalidating old entries.
- Comparison is constant-time (`hmac.compare_digest`), and an unknown user name is checked
  against a dummy hash, so response time tells nothing about which names exist.
- Two roles only: `viewer` reads everything; `operator` may also approve or reject remediations,
  acknowledge problems and send a report. Rights are a table, not scattered `if`s.
- The users file is TOML, written atomically with mode 0600: it holds hashes, which are secrets
  too, so it must never be world-readable.
- Sessions expire after an idle time; `session_expired` is pure so it is tested without a clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import os
import secrets
import tempfile
import threading
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import tomli_w


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"


class Action(StrEnum):
    """What a signed-in person can do beyond reading."""

    APPROVE = "approve"
    REJECT = "reject"
    ACKNOWLEDGE = "acknowledge"
    SEND_REPORT = "send_report"
    EXPLAIN = "explain"  # record or revoke a comply-or-explain explanation


RIGHTS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset(),
    Role.OPERATOR: frozenset(Action),
}

#: scrypt cost: N=2^15, r=8, p=1 takes about 0.1 s and 32 MiB per check. OWASP suggests more
#: (N=2^17); logins here are rare but run inside the dashboard process on a small appliance, so
#: this is the balance. Each hash records its own cost, so raising it later breaks nobody.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-")


class AuthError(ValueError):
    """A users file or an entry in it is unusable; the message says why (never a secret)."""


def can(role: Role | None, action: Action) -> bool:
    return role is not None and action in RIGHTS[role]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # maxmem: OpenSSL's default cap (32 MiB) is exactly 128*N*r for N=2^15; leave headroom.
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * n * r * p + 1024 * 1024, dklen=KEY_BYTES)


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> str:
    """`scrypt$N$r$p$salt$key` (base64 salt and key) with a fresh random salt."""
    if not password:
        raise AuthError("empty password")
    salt = secrets.token_bytes(SALT_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(_scrypt(password, salt, n, r, p))}"


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches; False for a wrong password or a malformed hash."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        got = _scrypt(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@functools.cache
def _dummy_hash() -> str:
    """A hash checked when the user name is unknown, so both paths cost one scrypt."""
    return hash_password("not-a-user-" + secrets.token_hex(8))


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in person. `source` is `local` or `oidc`; it goes into the audit trail."""

    name: str
    role: Role
    source: str = "local"

    def can(self, action: Action) -> bool:
        return can(self.role, action)


@dataclass(frozen=True, slots=True)
class UserEntry:
    name: str
    role: Role
    hash: str = ""

    def __repr__(self) -> str:  # the hash is a secret too
        return f"UserEntry(name={self.name!r}, role={self.role!r})"


def check_name(name: str) -> str:
    if not name or len(name) > 100 or not set(name) <= NAME_CHARS:
        raise AuthError(f"user name {name!r}: use 1-100 of letters, digits and . _ @ -")
    return name


def load_users(path: str | Path) -> dict[str, UserEntry]:
    """Read a users file; a missing file is an empty set of users (nobody can log in)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AuthError(f"{p}: cannot read users file: {exc}") from None
    users: dict[str, UserEntry] = {}
    table = data.get("users", {})
    if not isinstance(table, dict):
        raise AuthError(f"{p}: [users] must be a table")
    for name, entry in table.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
            raise AuthError(f"{p}: users.{name}: needs role and hash")
        try:
            role = Role(entry.get("role", "viewer"))
        except ValueError:
            raise AuthError(f"{p}: users.{name}.role: viewer or operator") from None
        users[name] = UserEntry(check_name(name), role, entry["hash"])
    return users


def save_users(path: str | Path, users: dict[str, UserEntry]) -> None:
    """Write atomically (temp file + rename) with mode 0600: a crash leaves old or new."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    doc = {"users": {u.name: {"role": str(u.role), "hash": u.hash}
                     for u in sorted(users.values(), key=lambda u: u.name)}}
    header = "# watchtower dashboard users: scrypt hashes, never passwords. Keep private.\n"
    fd, tmp = tempfile.mkstemp(prefix=".users-", dir=p.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(header + tomli_w.dumps(doc))
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_user(path: str | Path, name: str, role: Role | str, password: str, *,
             replace: bool = False) -> UserEntry:
    """Create (or with `replace`, reset) one user; returns the entry written."""
    users = load_users(path)
    check_name(name)
    if name in users and not replace:
        raise AuthError(f"user {name} exists (use --replace to reset the password or role)")
    entry = UserEntry(name, Role(role), hash_password(password))
    users[name] = entry
    save_users(path, users)
    return entry


def remove_user(path: str | Path, name: str) -> UserEntry:
    """Delete one user; returns the entry removed. Their open dashboard sessions end at their
    next page load (the sign-in gate re-reads the file)."""
    users = load_users(path)
    entry = users.pop(name, None)
    if entry is None:
        known = ", ".join(sorted(users)) or "none"
        raise AuthError(f"no user {name!r} in {path} (users: {known})")
    save_users(path, users)
    return entry


def authenticate(users: dict[str, UserEntry], name: str, password: str) -> User | None:
    """The User for a correct name and password, else None (same cost either way)."""
    entry = users.get(name)
    ok = verify_password(password, entry.hash if entry else _dummy_hash())
    if entry is None or not ok:
        return None
    return User(entry.name, entry.role, "local")


def oidc_role(email: str | None, operators: list[str], default_role: str) -> Role | None:
    """The role of a person signed in through OIDC: operators by e-mail, else the default.

    `default_role = "none"` admits only the listed people (as operators) and no one else.
    """
    wanted = {o.lower() for o in operators}
    if email and email.lower() in wanted:
        return Role.OPERATOR
    if default_role == "none":
        return None
    return Role(default_role)


def session_expired(last_activity: dt.datetime | None, now: dt.datetime,
                    idle_minutes: float) -> bool:
    """A session is over once it has been idle longer than the configured minutes."""
    if last_activity is None:
        return True
    return (now - last_activity).total_seconds() > idle_minutes * 60


class LoginThrottle:
    """Wrong passwords per user name across all sessions of the process.

    A per-session counter alone is reset by opening a new tab; this one is not. After
    `max_failures` wrong passwords within `window` seconds, that name is refused for the rest of
    the window (the real person waits minutes, a guesser gets a handful of tries per window).
    """

    def __init__(self, max_failures: int = 5, window: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, name: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(name, []) if now - t < self.window]
        if kept:
            self._failures[name] = kept
        else:
            self._failures.pop(name, None)
        return kept

    def blocked(self, name: str, now: float) -> bool:
        with self._lock:
            return len(self._recent(name, now)) >= self.max_failures

    def failed(self, name: str, now: float) -> None:
        with self._lock:
            self._recent(name, now)
            self._failures.setdefault(name, []).append(now)
            if len(self._failures) > 10_000:  # names are attacker-chosen: bound the memory
                self._failures.clear()

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)
