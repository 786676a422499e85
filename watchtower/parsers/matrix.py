"""Matrix federation documents: server names, `.well-known/matrix/*`, the version answer and
the signed server-key response (Matrix Server-Server API 2, 2.3.1 and 2.3.2; appendix on
server names).

Feeds the matrix.* checks. Signatures are verified with `signedjson` (and through it
`canonicaljson` and PyNaCl), the libraries Synapse itself uses, so the canonical-JSON rules and
the ed25519 maths are the reference implementation's, not ours. Everything here is pure: the
check gathers the JSON, these functions read it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from watchtower.parsers import ParseError

__all__ = ["KeyReport", "ServerName", "check_server_keys", "parse_server_name",
           "parse_well_known_client", "parse_well_known_server"]

DEFAULT_FEDERATION_PORT = 8448
_DNS_NAME = re.compile(r"[A-Za-z0-9.-]{1,255}\Z")


@dataclass(frozen=True, slots=True)
class ServerName:
    """A server name split as the spec's grammar does: host, optional port, IP literal or not."""

    host: str
    port: int | None
    is_ip: bool

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def parse_server_name(text: str) -> ServerName:
    """`example.org`, `example.org:8448`, `1.2.3.4:8448`, `[::1]:8448` -> ServerName."""
    if not isinstance(text, str) or not text:
        raise ParseError("server name is empty or not a string")
    port: int | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ParseError("unclosed IPv6 literal", term=text)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ParseError("not an IPv6 address", term=text) from None
        is_ip = True
        if rest:
            if not rest.startswith(":"):
                raise ParseError("junk after IPv6 literal", term=text)
            port = _port(rest[1:], text)
    else:
        host, sep, port_text = text.partition(":")
        if sep:
            port = _port(port_text, text)
        if not _DNS_NAME.match(host):
            raise ParseError("host is not a DNS name or IPv4 address", term=text)
        try:
            ipaddress.IPv4Address(host)
            is_ip = True
        except ValueError:
            is_ip = False
    return ServerName(host.lower(), port, is_ip)


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536 or len(text) > 5:
        raise ParseError("bad port", term=whole)
    return int(text)


def parse_well_known_server(doc: Any) -> ServerName:
    """`{"m.server": "host[:port]"}` -> the delegated server name (Server-Server API 2.3.1)."""
    if not isinstance(doc, dict):
        raise ParseError("well-known is not a JSON object")
    value = doc.get("m.server")
    if not isinstance(value, str):
        raise ParseError("well-known has no m.server string")
    return parse_server_name(value)


def parse_well_known_client(doc: Any) -> str:
    """`{"m.homeserver": {"base_url": ...}}` -> base_url (Client-Server API, server discovery)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("m.homeserver"), dict):
        raise ParseError("client well-known has no m.homeserver object")
    base = doc["m.homeserver"].get("base_url")
    if not isinstance(base, str) or not base.startswith(("https://", "http://")):
        raise ParseError("m.homeserver.base_url is missing or not an http(s) URL")
    return base.rstrip("/")


@dataclass(slots=True)
class KeyReport:
    """What a `/_matrix/key/v2/server` answer proves, key by key."""

    server_name: str | None = None
    valid_until_ts: int | None = None
    ed25519_keys: list[str] = field(default_factory=list)
    verified_keys: list[str] = field(default_factory=list)
    bad_signatures: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_server_keys(doc: Any) -> KeyReport:
    """Read a key response and verify the server's own signature with each ed25519 key it
    lists (Server-Server API 2.3.2: the response is signed by every key in verify_keys)."""
    from signedjson.key import decode_verify_key_base64
    from signedjson.sign import SignatureVerifyException, verify_signed_json

    report = KeyReport()
    if not isinstance(doc, dict):
        report.problems.append("key response is not a JSON object")
        return report
    name = doc.get("server_name")
    report.server_name = name if isinstance(name, str) else None
    if report.server_name is None:
        report.problems.append("server_name missing")
    ts = doc.get("valid_until_ts")
    if isinstance(ts, int) and not isinstance(ts, bool):
        report.valid_until_ts = ts
    else:
        report.problems.append("valid_until_ts missing or not an integer")
    keys = doc.get("verify_keys")
    if not isinstance(keys, dict):
        report.problems.append("verify_keys missing or not an object")
        return report
    sigs = doc.get("signatures")
    if not isinstance(sigs, dict) or not isinstance(sigs.get(report.server_name or ""), dict):
        report.problems.append(f"no signatures by {report.server_name}")
    for key_id, entry in sorted(keys.items()):
        if not key_id.startswith("ed25519:"):
            continue
        report.ed25519_keys.append(key_id)
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str):  # signedjson would raise AttributeError on a non-string
            report.bad_signatures[key_id] = "unusable key (no base64 key string)"
            continue
        try:
            verify_key = decode_verify_key_base64("ed25519", key_id[8:], key)
            verify_signed_json(doc, report.server_name or "", verify_key)
        except SignatureVerifyException as exc:
            report.bad_signatures[key_id] = str(exc)
        except (KeyError, TypeError, ValueError) as exc:
            report.bad_signatures[key_id] = f"unusable key ({exc})"
        else:
            report.verified_keys.append(key_id)
    return report
