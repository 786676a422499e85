"""NodeInfo (nodeinfo.diaspora.software): the discovery document and schema 2.0-2.2 documents.

Feeds `fedi.nodeinfo` and `fedi.health`. The rules of the published JSON schemas are written here
as code (required members, types, enumerations, patterns, per version) so that the project ships
no copy of the schema files and every violation comes back as one readable sentence with its JSON
path. tests/unit/web cross-checks this validator against the published schema files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from watchtower.parsers import ParseError

__all__ = ["NodeInfo", "choose_schema", "parse_discovery", "validate"]

REL_PREFIX = "http://nodeinfo.diaspora.software/ns/schema/"
SUPPORTED = ("2.0", "2.1", "2.2")

_PROTOCOLS = {"activitypub", "buddycloud", "dfrn", "diaspora", "libertree", "ostatus", "pumpio",
              "tent", "xmpp", "zot"}
_INBOUND = {"atom1.0", "gnusocial", "imap", "pnut", "pop3", "pumpio", "rss2.0", "twitter"}
_OUTBOUND = {"atom1.0", "blogger", "buddycloud", "diaspora", "dreamwidth", "drupal", "facebook",
             "friendica", "gnusocial", "google", "insanejournal", "libertree", "linkedin",
             "livejournal", "mediagoblin", "myspace", "pinterest", "pnut", "posterous", "pumpio",
             "redmatrix", "rss2.0", "smtp", "tent", "tumblr", "twitter", "wordpress", "xmpp"}
_NAME = re.compile(r"[a-z0-9-]+\Z")
_TOP = ("version", "software", "protocols", "services", "openRegistrations", "usage", "metadata")


def _rel_version(rel: str) -> tuple[int, ...] | None:
    if not rel.startswith(REL_PREFIX):
        return None
    text = rel[len(REL_PREFIX):].rstrip("#")
    if not re.fullmatch(r"\d+\.\d+", text):
        return None
    return tuple(int(p) for p in text.split("."))


def parse_discovery(doc: Any) -> list[tuple[str, str]]:
    """`/.well-known/nodeinfo` -> [(schema version, href)] for every well-formed schema link."""
    if not isinstance(doc, dict) or not isinstance(doc.get("links"), list):
        raise ParseError("discovery document has no links array")
    out = []
    for link in doc["links"]:
        if not isinstance(link, dict):
            continue
        rel, href = link.get("rel"), link.get("href")
        if not isinstance(rel, str) or not isinstance(href, str):
            continue
        version = _rel_version(rel)
        if version is not None:
            out.append((".".join(map(str, version)), href))
    return out


def choose_schema(links: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """The highest 2.x link we can validate (an unknown 2.9 is not preferred over a known 2.1)."""
    usable = [(v, h) for v, h in links if v in SUPPORTED]
    if not usable:
        return None
    return max(usable, key=lambda vh: tuple(int(p) for p in vh[0].split(".")))


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a check records from a NodeInfo document, valid or not."""

    schema: str
    software_name: str | None
    software_version: str | None
    open_registrations: bool | None
    usage: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {"schema": self.schema, "software": self.software_name,
                "version": self.software_version, "openRegistrations": self.open_registrations,
                "usage": self.usage}


class _V:
    """Collects violations with their JSON paths."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, why: str) -> None:
        self.problems.append(f"{path}: {why}")

    def obj(self, value: Any, path: str, required: Iterable[str], allowed: set[str] | None
            ) -> bool:
        if not isinstance(value, dict):
            self.add(path, f"must be an object, not {_kind(value)}")
            return False
        for key in required:
            if key not in value:
                self.add(path, f"required member {key!r} is missing")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.add(path, f"member {key!r} is not allowed")
        return True

    def string(self, value: Any, path: str, pattern: re.Pattern[str] | None = None,
               max_len: int | None = None) -> None:
        if not isinstance(value, str):
            self.add(path, f"must be a string, not {_kind(value)}")
        elif pattern is not None and not pattern.match(value):
            self.add(path, f"{value!r} does not match {pattern.pattern}")
        elif max_len is not None and ("\n" in value or len(value) > max_len):
            self.add(path, f"longer than {max_len} characters or multi-line")

    def count(self, value: Any, path: str) -> None:
        if not _is_int(value) or value < 0:
            self.add(path, f"must be a non-negative integer, not {value!r}")

    def enum_array(self, value: Any, path: str, allowed: set[str], min_items: int) -> None:
        if not isinstance(value, list):
            self.add(path, f"must be an array, not {_kind(value)}")
            return
        if len(value) < min_items:
            self.add(path, f"needs at least {min_items} item(s)")
        for i, item in enumerate(value):
            if not isinstance(item, str) or item not in allowed:  # a list item is unhashable
                self.add(f"{path}[{i}]", f"{item!r} is not a known value")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number"
            }.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    """JSON Schema draft 4 integers: 3 is one, 3.0 and true are not."""
    return isinstance(value, int) and not isinstance(value, bool)


def validate(doc: Any, schema: str) -> NodeInfo:
    """Check `doc` against the rules of NodeInfo `schema` (2.0, 2.1 or 2.2); never raises."""
    v = _V()
    if schema not in SUPPORTED:
        v.add("$", f"schema {schema} is not one this validator knows")
    required = _TOP + (("instance",) if schema == "2.2" else ())
    if not v.obj(doc, "$", required, set(required)):
        return NodeInfo(schema, None, None, None, {}, tuple(v.problems))
    for member, check in _MEMBER_CHECKS:
        if member in doc:
            check(v, doc[member], schema)
    software = doc.get("software")
    soft = software if isinstance(software, dict) else {}
    name, version = soft.get("name"), soft.get("version")
    reg = doc.get("openRegistrations")
    usage = doc.get("usage")
    return NodeInfo(
        schema,
        name if isinstance(name, str) else None,
        version if isinstance(version, str) else (None if version is None else str(version)),
        reg if isinstance(reg, bool) else None,
        usage if isinstance(usage, dict) else {},
        tuple(v.problems),
    )


# One check per top-level member, each given the member's value and the schema version.


def _check_version(v: _V, version: Any, schema: str) -> None:
    if version != schema:
        v.add("$.version", f"must be {schema!r}, not {version!r}")


def _check_software(v: _V, software: Any, schema: str) -> None:
    allowed = {"name", "version"} | ({"repository", "homepage"} if schema != "2.0" else set())
    if not v.obj(software, "$.software", ("name", "version"), allowed):
        return
    if "name" in software:
        v.string(software["name"], "$.software.name", _NAME)
    for key in ("version", "repository", "homepage"):
        if key in software and key in allowed:
            v.string(software[key], f"$.software.{key}")


def _check_instance(v: _V, instance: Any, schema: str) -> None:
    if schema != "2.2" or not v.obj(instance, "$.instance", (), {"name", "description"}):
        return
    for key, limit in (("name", 500), ("description", 5000)):
        if key in instance:
            v.string(instance[key], f"$.instance.{key}", max_len=limit)


def _check_protocols(v: _V, protocols: Any, schema: str) -> None:
    known = _PROTOCOLS | ({"nostr"} if schema == "2.2" else set())
    v.enum_array(protocols, "$.protocols", known, 1)


def _check_services(v: _V, services: Any, _schema: str) -> None:
    if not v.obj(services, "$.services", ("inbound", "outbound"), {"inbound", "outbound"}):
        return
    if "inbound" in services:
        v.enum_array(services["inbound"], "$.services.inbound", _INBOUND, 0)
    if "outbound" in services:
        v.enum_array(services["outbound"], "$.services.outbound", _OUTBOUND, 0)


def _check_open_registrations(v: _V, value: Any, _schema: str) -> None:
    if not isinstance(value, bool):
        v.add("$.openRegistrations", f"must be a boolean, not {_kind(value)}")


def _check_usage(v: _V, usage: Any, schema: str) -> None:
    if not v.obj(usage, "$.usage", ("users",), {"users", "localPosts", "localComments"}):
        return
    user_keys = {"total", "activeHalfyear", "activeMonth"} | (
        {"activeWeek"} if schema == "2.2" else set())
    if "users" in usage and v.obj(usage["users"], "$.usage.users", (), user_keys):
        for key in user_keys & set(usage["users"]):
            v.count(usage["users"][key], f"$.usage.users.{key}")
    for key in ("localPosts", "localComments"):
        if key in usage:
            v.count(usage[key], f"$.usage.{key}")


def _check_metadata(v: _V, metadata: Any, _schema: str) -> None:
    if not isinstance(metadata, dict):
        v.add("$.metadata", f"must be an object, not {_kind(metadata)}")


# In the order the problems are reported.
_MEMBER_CHECKS: tuple[tuple[str, Callable[[_V, Any, str], None]], ...] = (
    ("version", _check_version),
    ("software", _check_software),
    ("instance", _check_instance),
    ("protocols", _check_protocols),
    ("services", _check_services),
    ("openRegistrations", _check_open_registrations),
    ("usage", _check_usage),
    ("metadata", _check_metadata),
)
