"""A Sieve subset (RFC 5228) for the lab mail host: each user's scripts, the active one, and
running it at delivery.

Honest scope: the lab is not a Sieve implementation. It understands what a probe or a person
trying the demo writes first: `require [...]`, `if exists "H"`, `if header :contains "H" "v"`
and `if header :is "H" "v"` with a block of `fileinto "F";`, `keep;`, `discard;`, `stop;`,
and those commands at top level. A script needing an extension the lab does not list is
refused (RFC 5228 3.2), as is anything it cannot read; the tests of `mail.sieve` itself run
against Pigeonhole, this exists so the demo shows a filing at delivery without Debian.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

#: What the lab's SIEVE capability lists (RFC 5804 1.7).
EXTENSIONS = ("fileinto", "envelope", "vacation", "imap4flags", "copy", "mailbox")
MAX_SCRIPT = 32 * 1024
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TOKEN = re.compile(r'\s*(?:#[^\n]*\n|"((?:[^"\\]|\\.)*)"|(\[)|(\])|(\{)|(\})|(;)|(,)'
                    r"|(:[a-z]+)|([A-Za-z_][A-Za-z0-9_]*))", re.S)


class SieveSyntaxError(ValueError):
    """A script the lab cannot run: the message is what CHECKSCRIPT answers."""


@dataclass
class Rule:
    """`if <test> { actions }` (test None: the actions run unconditionally)."""

    test: tuple[str, str, str] | None  # (kind, header, value): exists/contains/is
    actions: list[tuple[str, str]] = field(default_factory=list)  # (command, argument)


def _tokens(script: str) -> list[str]:
    out: list[str] = []
    pos = 0
    script = script.replace("\r\n", "\n") + "\n"
    while pos < len(script):
        if script[pos:].strip() == "":
            break
        m = _TOKEN.match(script, pos)
        if not m or m.end() == pos:
            raise SieveSyntaxError(f"line {script.count(chr(10), 0, pos) + 1}: cannot parse")
        pos = m.end()
        if m.group(1) is not None:
            out.append('"' + re.sub(r"\\(.)", r"\1", m.group(1)))
        else:
            word = next((g for g in m.groups()[1:] if g is not None), None)
            if word is not None:
                out.append(word)
    return out


def parse(script: str) -> list[Rule]:
    """The rules of a script in the lab's subset; SieveSyntaxError otherwise."""
    if len(script.encode()) > MAX_SCRIPT:
        raise SieveSyntaxError("script too large")
    toks = _tokens(script)
    rules: list[Rule] = []
    required: set[str] = set()
    i = 0
    while i < len(toks):
        word = toks[i]
        if word == "require":
            names, i = _string_list(toks, i + 1)
            unknown = [n for n in names if n not in EXTENSIONS]
            if unknown:
                raise SieveSyntaxError(f"require: unknown Sieve capability {unknown[0]!r}")
            required.update(names)
            i = _expect(toks, i, ";")
        elif word == "if":
            test, i = _test(toks, i + 1)
            i = _expect(toks, i, "{")
            rule = Rule(test)
            while i < len(toks) and toks[i] != "}":
                i = _action(toks, i, rule, required)
            i = _expect(toks, i, "}")
            rules.append(rule)
        else:
            rule = Rule(None)
            i = _action(toks, i, rule, required)
            rules.append(rule)
    return rules


def _expect(toks: list[str], i: int, what: str) -> int:
    if i >= len(toks) or toks[i] != what:
        raise SieveSyntaxError(f"expected {what!r}")
    return i + 1


def _string(toks: list[str], i: int) -> tuple[str, int]:
    if i >= len(toks) or not toks[i].startswith('"'):
        raise SieveSyntaxError("expected a string")
    return toks[i][1:], i + 1


def _string_list(toks: list[str], i: int) -> tuple[list[str], int]:
    if i < len(toks) and toks[i] == "[":
        out: list[str] = []
        i += 1
        while True:
            value, i = _string(toks, i)
            out.append(value)
            if i < len(toks) and toks[i] == ",":
                i += 1
                continue
            return out, _expect(toks, i, "]")
    value, i = _string(toks, i)
    return [value], i


def _test(toks: list[str], i: int) -> tuple[tuple[str, str, str], int]:
    kind = toks[i] if i < len(toks) else ""
    if kind == "exists":
        name, i = _string(toks, i + 1)
        return ("exists", name, ""), i
    if kind == "header" and i + 1 < len(toks) and toks[i + 1] in (":contains", ":is"):
        name, j = _string(toks, i + 2)
        value, j = _string(toks, j)
        return (toks[i + 1][1:], name, value), j
    raise SieveSyntaxError(f"test {kind!r} is not in the lab's Sieve subset")


def _action(toks: list[str], i: int, rule: Rule, required: set[str]) -> int:
    word = toks[i]
    if word == "fileinto":
        if "fileinto" not in required:
            raise SieveSyntaxError("fileinto used without require \"fileinto\"")
        folder, i = _string(toks, i + 1)
        rule.actions.append(("fileinto", folder))
    elif word in ("keep", "discard", "stop"):
        rule.actions.append((word, ""))
        i += 1
    else:
        raise SieveSyntaxError(f"command {word!r} is not in the lab's Sieve subset")
    return _expect(toks, i, ";")


def folder_for(rules: list[Rule], headers: Message) -> str | None:
    """Where a message goes: a folder, "INBOX" (keep), or None (discard)."""
    target: str | None = "INBOX"
    for rule in rules:
        if rule.test is not None and not _matches(rule.test, headers):
            continue
        for command, arg in rule.actions:
            if command == "fileinto":
                target = arg
            elif command == "discard":
                target = None
            elif command == "stop":
                return target
    return target


def _matches(test: tuple[str, str, str], headers: Message) -> bool:
    kind, name, value = test
    values = [str(v) for v in headers.get_all(name) or []]
    if kind == "exists":
        return bool(values)
    if kind == "contains":
        return any(value.lower() in v.lower() for v in values)
    return any(value.lower() == v.strip().lower() for v in values)


class ScriptStore:
    """Each user's scripts as files `<dir>/<user>/<name>.sieve`, the active one's name in
    `<dir>/<user>/.active`; one lock for the lot (the lab has a handful of users)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._lock = threading.Lock()

    def _user_dir(self, user: str) -> Path:
        path = self.dir / user.lower()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def valid_name(name: str) -> bool:
        return bool(_NAME.match(name))

    def scripts(self, user: str) -> list[tuple[str, bool]]:
        with self._lock:
            active = self._active(user)
            return [(p.stem, p.stem == active)
                    for p in sorted(self._user_dir(user).glob("*.sieve"))]

    def put(self, user: str, name: str, script: str) -> None:
        parse(script)
        with self._lock:
            (self._user_dir(user) / f"{name}.sieve").write_text(script)

    def set_active(self, user: str, name: str) -> bool:
        """Activate `name` ("" deactivates); False when there is no such script."""
        with self._lock:
            marker = self._user_dir(user) / ".active"
            if not name:
                marker.unlink(missing_ok=True)
                return True
            if not (self._user_dir(user) / f"{name}.sieve").exists():
                return False
            marker.write_text(name)
            return True

    def delete(self, user: str, name: str) -> str | None:
        """Delete a script; the reason when it cannot be (active, or absent)."""
        with self._lock:
            path = self._user_dir(user) / f"{name}.sieve"
            if not path.exists():
                return "no such script"
            if self._active(user) == name:
                return "script is active"
            path.unlink()
            return None

    def active_rules(self, user: str) -> list[Rule] | None:
        """The active script's rules, None when no script is active (or it cannot run)."""
        with self._lock:
            name = self._active(user)
            if not name:
                return None
            try:
                return parse((self._user_dir(user) / f"{name}.sieve").read_text())
            except (OSError, SieveSyntaxError):
                return None

    def _active(self, user: str) -> str | None:
        try:
            return (self._user_dir(user) / ".active").read_text().strip() or None
        except OSError:
            return None
