"""MTA-STS (RFC 8461): the `_mta-sts` TXT record, the HTTPS policy file, and MX matching.

Feeds `mail.mta-sts`. Senders that find a record or policy "syntactically invalid" must act as if
the domain had no MTA-STS at all (RFC 8461 3.1, 3.2), so these parsers are strict where the ABNF
is strict: a bad record silently downgrades the domain's protection, and that is exactly what
the check must surface. Where RFC 8461 asks parsers to be lenient (unknown fields, a repeated
non-`mx` field: the first one wins) they are, and the leniency is recorded in `warnings`.

`mx_matches(pattern, host)` is the matching rule of RFC 8461 4.1: a leading `*.` stands for
exactly one label; everything else compares case-insensitively, ignoring a trailing dot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, cast

from watchtower.parsers import ParseError
from watchtower.parsers._common import (
    EXT_NAME,
    EXT_VALUE,
    WSP,
    hostname_problem,
    normalize_name,
    text_of,
    versioned_fields,
)

__all__ = [
    "MAX_AGE_LIMIT",
    "MtaStsPolicy",
    "MtaStsRecord",
    "mx_matches",
    "parse_policy",
    "parse_record",
]

MAX_AGE_LIMIT = 31557600  # one year, RFC 8461 3.2
Mode = Literal["enforce", "testing", "none"]

_ID = re.compile(r"[A-Za-z0-9]{1,32}\Z")
_NOT_POLICY_TEXT = re.compile(r"[^\x20-\x7e\t]")
_MAX_AGE = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True, slots=True)
class MtaStsRecord:
    """The `_mta-sts.<domain>` TXT record: its policy `id` plus any extension fields."""

    text: str
    id: str
    extensions: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()


def parse_record(text: str) -> MtaStsRecord:
    """Parse `v=STSv1; id=...;` (RFC 8461 3.1). Case-sensitive, as the ABNF's %s strings are."""
    warnings: list[str] = []
    record_id: str | None = None
    extensions: list[tuple[str, str]] = []
    seen: set[str] = set()
    for start, term, name, value in versioned_fields(text, "v=STSv1", "MTA-STS"):
        if not EXT_VALUE.match(value):
            raise ParseError(f"invalid value for {name!r}", position=start, term=term)
        if name in seen:
            warnings.append(f"field {name!r} repeated; the first value is used")
            continue
        seen.add(name)
        if name == "id":
            if not _ID.match(value):
                raise ParseError("id must be 1 to 32 letters or digits", position=start,
                                 term=term)
            record_id = value
        else:
            extensions.append((name, value))
            warnings.append(f"unknown field {name!r} is ignored")
    if record_id is None:
        raise ParseError("missing required 'id' field")
    return MtaStsRecord(text=text, id=record_id, extensions=tuple(extensions),
                        warnings=tuple(warnings))


@dataclass(frozen=True, slots=True)
class MtaStsPolicy:
    """The policy file at `https://mta-sts.<domain>/.well-known/mta-sts.txt`."""

    mode: Mode
    max_age: int
    mx: tuple[str, ...]
    version: str = "STSv1"
    extensions: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    def matches(self, host: str) -> bool:
        """Whether an MX host name is allowed by one of the policy's `mx` patterns."""
        return any(mx_matches(pattern, host) for pattern in self.mx)

    def unmatched(self, hosts: Iterable[str]) -> list[str]:
        """The MX hosts that no pattern allows (with `enforce`, mail to them would bounce)."""
        return [host for host in hosts if not self.matches(host)]


def parse_policy(body: str | bytes) -> MtaStsPolicy:
    """Parse a policy body (RFC 8461 3.2): `key: value` lines separated by LF or CRLF.

    Required: `version: STSv1`, `mode`, `max_age` (0..31557600) and, unless `mode: none`, at
    least one `mx`. Keys are case-sensitive.
    """
    lines = _PolicyLines()
    lines.read(text_of(body, "policy"))
    version = _policy_version(lines.fields)
    mode = _policy_mode(lines.fields)
    max_age = _policy_max_age(lines.fields)
    if not lines.mx and mode != "none":
        raise ParseError(f"mode {mode} needs at least one 'mx' line")
    return MtaStsPolicy(mode=mode, max_age=max_age, mx=tuple(lines.mx), version=version,
                        extensions=tuple(lines.extensions), warnings=tuple(lines.warnings))


_POLICY_KEYS = ("version", "mode", "max_age")


@dataclass(slots=True)
class _PolicyLines:
    """The lines of a policy file: the first value of each key (with where it starts), every
    `mx` pattern, the unknown keys, and what was lenient."""

    fields: dict[str, tuple[str, int]] = field(default_factory=dict)
    mx: list[str] = field(default_factory=list)
    extensions: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def read(self, body: str) -> None:
        offset = 0
        lines = body.split("\n")
        for number, raw in enumerate(lines, start=1):
            start = offset
            offset += len(raw) + 1
            line = raw[:-1] if raw.endswith("\r") else raw
            if not line.strip(WSP):
                if number != len(lines):
                    self.warnings.append(f"line {number} is empty")
                continue
            key, value = _policy_line(line, number, start)
            self.add(key, value, number, start, line)

    def add(self, key: str, value: str, number: int, start: int, line: str) -> None:
        if key == "mx":
            pattern = value.lower()
            problem = _mx_pattern_problem(pattern)
            if problem is not None:
                raise ParseError(f"invalid mx pattern {value!r}: {problem}", position=start,
                                 term=line)
            self.mx.append(pattern)
        elif key in self.fields:
            self.warnings.append(f"{key!r} repeated on line {number}; the first value is used")
        else:
            self.fields[key] = (value, start)
            if key not in _POLICY_KEYS:
                self.extensions.append((key, value))
                self.warnings.append(f"unknown field {key!r} is ignored")


def _policy_line(line: str, number: int, start: int) -> tuple[str, str]:
    """(key, value) of one non-blank line: printable ASCII, `key: value`, a value."""
    bad = _NOT_POLICY_TEXT.search(line)
    if bad is not None:
        raise ParseError(f"invalid character {bad.group(0)!r} on line {number}",
                         position=start + bad.start(), term=line)
    key, colon, value = line.partition(":")
    if not colon or not EXT_NAME.match(key):
        raise ParseError(f"line {number} is not 'key: value'", position=start, term=line)
    value = value.strip(WSP)
    if not value:
        raise ParseError(f"empty value for {key!r} on line {number}", position=start,
                         term=line)
    return key, value


def _policy_version(fields: dict[str, tuple[str, int]]) -> str:
    if "version" not in fields:
        raise ParseError("missing 'version: STSv1'")
    version, pos = fields["version"]
    if version != "STSv1":
        raise ParseError(f"version must be 'STSv1', not {version!r}", position=pos,
                         term=f"version: {version}")
    return version


def _policy_mode(fields: dict[str, tuple[str, int]]) -> Mode:
    if "mode" not in fields:
        raise ParseError("missing 'mode'")
    mode, pos = fields["mode"]
    if mode not in ("enforce", "testing", "none"):
        raise ParseError(f"mode must be enforce, testing or none, not {mode!r}", position=pos,
                         term=f"mode: {mode}")
    return cast(Mode, mode)


def _policy_max_age(fields: dict[str, tuple[str, int]]) -> int:
    if "max_age" not in fields:
        raise ParseError("missing 'max_age'")
    max_age_text, pos = fields["max_age"]
    if not _MAX_AGE.fullmatch(max_age_text):
        raise ParseError(f"max_age must be a number of seconds, not {max_age_text!r}",
                         position=pos, term=f"max_age: {max_age_text}")
    max_age = int(max_age_text)
    if max_age > MAX_AGE_LIMIT:
        raise ParseError(f"max_age {max_age} above the maximum {MAX_AGE_LIMIT} (one year)",
                         position=pos, term=f"max_age: {max_age_text}")
    return max_age


def _mx_pattern_problem(pattern: str) -> str | None:
    name = pattern[2:] if pattern.startswith("*.") else pattern
    if "*" in name:
        return "'*' is only allowed as the whole leftmost label ('*.example.com')"
    return hostname_problem(name)


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 4.1: does MX `host` match policy `pattern`?

    `*.example.com` matches `mx1.example.com` but neither `example.com` nor
    `a.b.example.com`: the wildcard is exactly one label. Case and a trailing dot are ignored.
    """
    pattern = normalize_name(pattern)
    host = normalize_name(host)
    if not pattern or not host:
        return False
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and rest == pattern[2:]
    return pattern == host
