"""security.txt (RFC 9116), as served at `/.well-known/security.txt`.

Feeds `web.security-txt`: "warn missing, no Contact, expired Expires". The file is meant for
humans and lenient tools, so this parser is lenient too: it never fails a file for one odd
line. What the RFC requires of the *content* (at least one Contact, exactly one Expires in RFC
3339 form, not in the past, https:// for web URIs, ...) is reported in `problems`, a list of
findings the check turns into its verdict; stylistic advice (Expires more than a year ahead,
unknown fields, stray lines) goes to `warnings`.

ParseError is kept for input that is not a security.txt at all: bytes that are not UTF-8, an
OpenPGP cleartext signature wrapper that is cut short, or a body without a single field (an
HTML error page served with status 200 is the common case).

A signed file (RFC 9116 2.3) has its OpenPGP cleartext wrapper stripped (RFC 4880 7: armor
headers dropped, dash-escaped lines unescaped). The signature is *not* verified: `signed` only
says the wrapper was there.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from watchtower.parsers import ParseError
from watchtower.parsers._common import split_uri, text_of, uri_problem

__all__ = ["SecurityTxt", "parse"]

_BEGIN_SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----"
_BEGIN_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
_END_SIGNATURE = "-----END PGP SIGNATURE-----"
_FIELD = re.compile(r"([\x21-\x39\x3b-\x7e]+):[ \t]*(.*?)[ \t]*\Z")
_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})\Z")
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*\Z")
_URI_FIELDS = {
    "contact": "Contact", "encryption": "Encryption", "acknowledgments": "Acknowledgments",
    "canonical": "Canonical", "policy": "Policy", "hiring": "Hiring", "csaf": "CSAF",
}
_KNOWN = {*_URI_FIELDS, "expires", "preferred-languages"}
_ONE_YEAR = dt.timedelta(days=366)


@dataclass(frozen=True, slots=True)
class SecurityTxt:
    """The fields of a security.txt file and the findings about them.

    `expires` is timezone-aware (None when missing or invalid); `expired` compares it with the
    `now` given to `parse`. URI-valued fields keep the URIs as written, in file order.
    """

    contact: tuple[str, ...] = ()
    expires: dt.datetime | None = None
    expired: bool = False
    encryption: tuple[str, ...] = ()
    acknowledgments: tuple[str, ...] = ()
    canonical: tuple[str, ...] = ()
    policy: tuple[str, ...] = ()
    hiring: tuple[str, ...] = ()
    csaf: tuple[str, ...] = ()
    preferred_languages: tuple[str, ...] = ()
    extensions: tuple[tuple[str, str], ...] = ()
    signed: bool = False
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def has_contact(self) -> bool:
        return bool(self.contact)


def parse(body: str | bytes, *, now: dt.datetime) -> SecurityTxt:
    """Parse a security.txt body; `now` decides `expired` (a naive `now` is taken as UTC)."""
    text = text_of(body, "security.txt")
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    found = _Findings()
    lines, signed = _unwrap(text, found)
    values, extensions = _read_fields(lines, found)
    uris = {key: _valid_uris(label, values.get(key, []), found)
            for key, label in _URI_FIELDS.items()}
    if not values.get("contact"):
        found.problems.append("missing Contact field (RFC 9116 2.5.3)")
    elif not uris["contact"]:
        found.problems.append("no valid Contact URI")
    expires, expired = _expires(values.get("expires", []), now, found)
    languages = _languages(values.get("preferred-languages", []), found)
    return SecurityTxt(
        contact=uris["contact"],
        expires=expires,
        expired=expired,
        encryption=uris["encryption"],
        acknowledgments=uris["acknowledgments"],
        canonical=uris["canonical"],
        policy=uris["policy"],
        hiring=uris["hiring"],
        csaf=uris["csaf"],
        preferred_languages=languages,
        extensions=tuple(extensions),
        signed=signed,
        problems=tuple(found.problems),
        warnings=tuple(found.warnings),
    )


@dataclass(slots=True)
class _Findings:
    """What the RFC requires and the file breaks (`problems`), and advice (`warnings`)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _unwrap(body: str, found: _Findings) -> tuple[list[str], bool]:
    """The file's lines without a byte order mark or an OpenPGP cleartext wrapper; signed?"""
    if body.startswith("\ufeff"):
        body = body[1:]
        found.warnings.append("file starts with a byte order mark")
    lines = body.replace("\r\n", "\n").split("\n")
    first = next((line.strip() for line in lines if line.strip()), "")
    if first == _BEGIN_SIGNED:
        return _strip_cleartext_signature(lines), True
    return lines, False


def _read_fields(lines: list[str], found: _Findings
                 ) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Known fields' values by lower-case name, and the unknown fields; comments skipped."""
    values: dict[str, list[str]] = {}
    extensions: list[tuple[str, str]] = []
    fields = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip(" \t\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _FIELD.match(line)
        if match is None:
            found.warnings.append(f"line {number} is neither a field nor a comment: "
                                  f"{line[:60]!r}")
            continue
        fields += 1
        name, value = match.group(1), match.group(2)
        key = name.lower()
        if key in _KNOWN:
            values.setdefault(key, []).append(value)
        else:
            extensions.append((name, value))
            found.warnings.append(f"unknown field {name!r}")
    if fields == 0:
        raise ParseError("not a security.txt: no 'Field: value' line found")
    return values, extensions


def _valid_uris(label: str, values: list[str], found: _Findings) -> tuple[str, ...]:
    """The values of a URI field that are acceptable URIs; a problem for each other one."""
    good: list[str] = []
    for value in values:
        problem = _uri_field_problem(label, value)
        if problem is not None:
            found.problems.append(problem)
        else:
            good.append(value)
    return tuple(good)


def _expires(values: list[str], now: dt.datetime, found: _Findings
             ) -> tuple[dt.datetime | None, bool]:
    """Expires (RFC 9116 2.5.5): exactly once, RFC 3339, in the future; (when, expired)."""
    if not values:
        found.problems.append("missing Expires field (RFC 9116 2.5.5)")
        return None, False
    if len(values) > 1:
        found.problems.append(f"Expires appears {len(values)} times (must be once)")
    expires = _parse_date_time(values[0])
    if expires is None:
        found.problems.append(f"Expires {values[0]!r} is not an RFC 3339 date-time "
                              "(e.g. 2030-12-31T23:59:59Z)")
        return None, False
    if expires <= now:
        found.problems.append(f"Expires {values[0]} is in the past: the file is stale")
        return expires, True
    if expires - now > _ONE_YEAR:
        found.warnings.append("Expires is more than a year ahead (RFC 9116 2.5.5 recommends "
                              "less)")
    return expires, False


def _languages(values: list[str], found: _Findings) -> tuple[str, ...]:
    """Preferred-Languages: once, a comma-separated list of language tags."""
    if len(values) > 1:
        found.problems.append("Preferred-Languages appears more than once")
    if not values:
        return ()
    items = [item.strip() for item in values[0].split(",")]
    if any(not _LANGUAGE_TAG.match(item) for item in items):
        found.problems.append(f"Preferred-Languages {values[0]!r} is not a "
                              "comma-separated list of language tags")
        return ()
    return tuple(items)


def _strip_cleartext_signature(lines: list[str]) -> list[str]:
    """The signed text of an OpenPGP cleartext-signed message (RFC 4880 7)."""
    index = next(i for i, line in enumerate(lines) if line.strip() == _BEGIN_SIGNED)
    index += 1
    while index < len(lines) and lines[index].strip():  # armor headers ("Hash: SHA512")
        if ":" not in lines[index]:
            raise ParseError("malformed armor header in the OpenPGP signed message",
                             term=lines[index][:60])
        index += 1
    if index >= len(lines):
        raise ParseError("OpenPGP signed message has no blank line after its headers")
    body: list[str] = []
    index += 1
    while index < len(lines) and lines[index].strip() != _BEGIN_SIGNATURE:
        line = lines[index]
        body.append(line[2:] if line.startswith("- ") else line)
        index += 1
    if index >= len(lines):
        raise ParseError("OpenPGP signed message without a signature block")
    if not any(line.strip() == _END_SIGNATURE for line in lines[index:]):
        raise ParseError("OpenPGP signature block is not terminated")
    return body


def _parse_date_time(text: str) -> dt.datetime | None:
    """An RFC 3339 date-time (the Internet profile of ISO 8601), or None."""
    match = _DATE_TIME.match(text)
    if match is None:
        return None
    date, time, fraction, zone = match.groups()
    micro = f".{(fraction or '0')[:6]:0<6}"
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return dt.datetime.fromisoformat(f"{date}T{time}{micro}{zone}")
    except ValueError:
        return None


def _uri_field_problem(label: str, value: str) -> str | None:
    problem = uri_problem(value)
    if problem is not None:
        hint = " (write mailto:...)" if label == "Contact" and "@" in value and ":" not in value \
            else ""
        return f"{label} {value!r} is not a URI: {problem}{hint}"
    parts = split_uri(value)
    if parts is not None and parts[0] == "http":
        return f"{label} {value!r} must use https:// (RFC 9116 2.5)"
    return None
