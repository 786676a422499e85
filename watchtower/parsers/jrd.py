"""WebFinger JRD (RFC 7033 4.4) and host-meta (RFC 6415) documents, read into typed values.

Feeds `fedi.webfinger`, `fedi.actor`, `fedi.authorized-fetch` and `fedi.host-meta`. The JRD
reader is strict about shapes (a `links` that is not a list of objects is a ParseError, because
a remote server acting on it would fail the same way) and lenient about extras (unknown members
are kept out of the way, as RFC 7033 4.4 says clients must ignore them).

host-meta comes as XRD XML (RFC 6415 2) or, on request, as JSON (RFC 6415 3). XML from the
network is read with a document type declaration refused up front: an XRD never needs one, and
refusing it closes the door on entity-expansion tricks before the parser sees them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

from watchtower.parsers import ParseError

__all__ = ["ACTIVITY_TYPES", "Jrd", "Link", "parse_host_meta", "parse_jrd"]

ACTIVITY_TYPES = (
    "application/activity+json",
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
)
"""The media types RFC 7033 `rel=self` links of ActivityPub actors carry (ActivityPub 3.2)."""

_XRD_NS = "{http://docs.oasis-open.org/ns/xri/xrd-1.0}"


@dataclass(frozen=True, slots=True)
class Link:
    rel: str
    type: str | None = None
    href: str | None = None
    template: str | None = None


@dataclass(frozen=True, slots=True)
class Jrd:
    subject: str | None
    aliases: tuple[str, ...]
    links: tuple[Link, ...]

    def link(self, rel: str, types: tuple[str, ...] | None = None) -> Link | None:
        """The first link with `rel` (and one of `types`, compared without spaces or case)."""
        wanted = {_norm_type(t) for t in types} if types else None
        for link in self.links:
            if link.rel != rel:
                continue
            if wanted is None or _norm_type(link.type or "") in wanted:
                return link
        return None

    def actor_href(self) -> str | None:
        """The ActivityPub actor URL: the `self` link typed as ActivityStreams JSON."""
        link = self.link("self", ACTIVITY_TYPES)
        return link.href if link else None


def _norm_type(value: str) -> str:
    return value.replace(" ", "").lower()


def _opt_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ParseError(f"{where}.{key} is {type(value).__name__}, not a string")
    return value


def parse_jrd(doc: Any) -> Jrd:
    """A decoded JSON value -> Jrd; ParseError when it is not a JRD object (RFC 7033 4.4)."""
    if not isinstance(doc, dict):
        raise ParseError(f"JRD is a JSON {type(doc).__name__}, not an object")
    subject = _opt_str(doc, "subject", "JRD")
    aliases = doc.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ParseError("JRD aliases is not an array of strings")
    raw_links = doc.get("links", [])
    if not isinstance(raw_links, list):
        raise ParseError("JRD links is not an array")
    links = []
    for i, item in enumerate(raw_links):
        where = f"links[{i}]"
        if not isinstance(item, dict):
            raise ParseError(f"{where} is not an object")
        rel = item.get("rel")
        if not isinstance(rel, str) or not rel:
            raise ParseError(f"{where} has no rel (RFC 7033 4.4.4.1 requires it)")
        links.append(Link(rel, _opt_str(item, "type", where), _opt_str(item, "href", where),
                          _opt_str(item, "template", where)))
    return Jrd(subject, tuple(aliases), tuple(links))


def parse_jrd_bytes(body: bytes) -> Jrd:
    try:
        return parse_jrd(json.loads(body.decode("utf-8")))
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 ({exc.reason})", position=exc.start) from None
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON ({exc.msg})", position=exc.pos) from None
    except RecursionError:  # json recurses once per level of nesting: `[[[[...` from a server
        raise ParseError("invalid JSON (nested too deeply)") from None


def parse_host_meta(body: bytes, content_type: str = "") -> Jrd:
    """host-meta as XRD XML or JRD JSON -> Jrd (links with rel and template/href)."""
    stripped = body.lstrip()
    if "json" in content_type or stripped.startswith(b"{"):
        return parse_jrd_bytes(body)
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ParseError("XRD carries a document type declaration (refused)")
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - DTDs refused above; expat, no entities
    except ElementTree.ParseError as exc:
        raise ParseError(f"not well-formed XML ({exc})") from None
    if root.tag not in (f"{_XRD_NS}XRD", "XRD"):
        raise ParseError(f"root element is {root.tag!r}, not XRD")
    subject_el = root.find(f"{_XRD_NS}Subject")
    links = []
    for el in root.iter():
        if el.tag not in (f"{_XRD_NS}Link", "Link"):
            continue
        rel = el.get("rel")
        if not rel:
            continue
        links.append(Link(rel, el.get("type"), el.get("href"), el.get("template")))
    subject = subject_el.text if subject_el is not None else None
    return Jrd(subject, (), tuple(links))
