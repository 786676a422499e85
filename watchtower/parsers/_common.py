"""Small grammar pieces shared by several parsers: host names, tag=value lists, URIs.

Private to the package: the public modules re-export what their callers need.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from watchtower.parsers import ParseError

_LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
# Service labels such as `_dmarc`, `_report`, `_domainkey` and selector names with underscores
# are legal DNS labels even though they are not host names (RFC 2181 section 11).
_DNS_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")


def hostname_problem(name: str, *, allow_underscore: bool = False) -> str | None:
    """Why `name` is not a usable DNS name, or None when it is.

    Accepts an optional trailing dot (absolute form). Labels must be 1..63 characters of
    letters, digits and inner hyphens (RFC 1123 2.1); with `allow_underscore`, underscores too
    (service labels). The whole name must fit 253 characters, and it needs two labels at least,
    because every name the mail and web checks look at is below a top-level domain.
    """
    if not name:
        return "empty name"
    if not name.isascii():
        return "non-ASCII characters (use the A-label / punycode form)"
    bare = name[:-1] if name.endswith(".") else name
    if len(bare) > 253:
        return "name longer than 253 characters"
    labels = bare.split(".")
    if len(labels) < 2:
        return "not a fully qualified name (needs at least two labels)"
    pattern = _DNS_LABEL if allow_underscore else _LDH_LABEL
    for label in labels:
        if not label:
            return "empty label"
        if len(label) > 63:
            return f"label {label[:20]!r}... longer than 63 characters"
        if not pattern.match(label):
            return f"invalid label {label!r}"
    if labels[-1].isdigit():
        return "top-level label is all digits"
    return None


def normalize_name(name: str) -> str:
    """Lower-case, without the trailing dot: the form names are compared and shown in."""
    name = name.strip()
    return (name[:-1] if name.endswith(".") else name).lower()


def text_of(body: object, what: str) -> str:
    """`body` as text: bytes must be UTF-8; anything else that is not a str is refused."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"{what} is not valid UTF-8 (offset {exc.start})",
                             position=exc.start) from None
    if not isinstance(body, str):
        raise ParseError(f"{what} must be text")
    return body


_NOT_TAG_LIST_TEXT = re.compile(r"[^\x20-\x7e\t\r\n]")


def check_tag_list_text(text: object, kind: str) -> str:
    """A DKIM or DMARC record's text: printable ASCII and folding white space only."""
    if not isinstance(text, str):
        raise ParseError(f"{kind} record must be text")
    bad = _NOT_TAG_LIST_TEXT.search(text)
    if bad is not None:
        raise ParseError(f"invalid character {bad.group(0)!r} in record", position=bad.start())
    return text


@dataclass(frozen=True, slots=True)
class Tag:
    """One `name=value` of a tag list, with where it started in the text."""

    name: str
    value: str
    position: int


_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def parse_tag_list(
    text: str,
    *,
    what: str,
    fold_names: bool,
    warnings: list[str],
    name_pattern: re.Pattern[str] = _TAG_NAME,
) -> list[Tag]:
    """Split a `;`-separated `tag=value` list (DKIM RFC 6376 3.2, DMARC RFC 7489 6.4).

    Whitespace around names, `=` and `;` is allowed (FWS). A repeated tag makes the whole list
    invalid: both RFCs say so, and a receiver could pick either value. Empty elements (`;;`) are
    not in the grammar but every receiver tolerates them, so they only add a warning.
    `fold_names` lower-cases tag names (DMARC: ABNF literals are case-insensitive); DKIM tag names
    are case-sensitive and keep their case.
    """
    tags: list[Tag] = []
    seen: set[str] = set()
    offset = 0
    parts = text.split(";")
    for index, part in enumerate(parts):
        start = offset
        offset += len(part) + 1
        stripped = part.strip(" \t\r\n")
        if not stripped:
            if index != len(parts) - 1 and index != 0:
                warnings.append(f"empty element between ';' separators at offset {start}")
            elif index == 0 and len(parts) > 1:
                warnings.append("record starts with ';'")
            continue
        lead = len(part) - len(part.lstrip(" \t\r\n"))
        if "=" not in stripped:
            raise ParseError(f"{what} element without '='", position=start + lead, term=stripped)
        raw_name, _, raw_value = stripped.partition("=")
        name = raw_name.strip(" \t\r\n")
        if not name_pattern.match(name):
            raise ParseError(f"invalid {what} tag name {name!r}", position=start + lead,
                             term=stripped)
        if fold_names:
            name = name.lower()
        if name in seen:
            raise ParseError(f"duplicate {what} tag {name!r}", position=start + lead,
                             term=stripped)
        seen.add(name)
        tags.append(Tag(name, raw_value.strip(" \t\r\n"), start + lead))
    return tags


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)\Z", re.DOTALL)


def split_uri(uri: str) -> tuple[str, str] | None:
    """(lower-case scheme, rest) of an absolute URI, or None when it has no valid scheme."""
    match = _SCHEME.match(uri)
    if match is None:
        return None
    return match.group(1).lower(), match.group(2)


def uri_problem(uri: str) -> str | None:
    """Why `uri` is not an acceptable absolute URI (RFC 3986), or None.

    Checks what matters for reporting addresses: a scheme, only visible ASCII, well-formed
    percent escapes, and for `mailto:` an address with a valid domain, for `https:`/`http:` a
    valid host.
    """
    if not uri:
        return "empty URI"
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in uri):
        return "URI contains spaces, control or non-ASCII characters"
    if re.search(r"%(?![0-9A-Fa-f]{2})", uri):
        return "bad percent escape"
    parts = split_uri(uri)
    if parts is None:
        return "no URI scheme"
    scheme, rest = parts
    if scheme == "mailto":
        address = mailto_address(uri)
        if address is None:
            return "mailto: URI without a valid address"
        return None
    if scheme in ("https", "http"):
        if not rest.startswith("//"):
            return f"{scheme}: URI without '//' authority"
        host = web_host(uri)
        if host is None:
            return f"{scheme}: URI without a valid host"
    return None


def mailto_address(uri: str) -> tuple[str, str] | None:
    """(local part, lower-case domain) of a `mailto:` URI, or None if it has no usable address.

    Only the first address is taken: `mailto:` may list several separated by `,`, but DMARC and
    TLS-RPT require commas inside URIs to be escaped, so a raw comma never reaches here.
    """
    parts = split_uri(uri)
    if parts is None or parts[0] != "mailto":
        return None
    path = parts[1].split("?", 1)[0]
    try:
        address = urllib.parse.unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    local, at, domain = address.rpartition("@")
    if not at or not local or any(ch.isspace() for ch in local):
        return None
    if hostname_problem(domain) is not None:
        return None
    return local, normalize_name(domain)


def web_host(uri: str) -> str | None:
    """Lower-case host of an `https:`/`http:` URI (a DNS name or IP literal), or None."""
    try:
        parsed = urllib.parse.urlsplit(uri)
        host = parsed.hostname
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    if not host:
        return None
    if ":" in host or re.fullmatch(r"[0-9.]+", host):
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            return None
    if hostname_problem(host) is not None:
        return None
    return normalize_name(host)


# -- `v=VERSION; name=value; ...` records (MTA-STS RFC 8461 3.1, TLS-RPT RFC 8460 3) ----------

EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z")
EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+\Z")
WSP = " \t"


def versioned_fields(text: object, version: str, kind: str) -> Iterator[tuple[int, str, str, str]]:
    """Check the `v=VERSION` head and the record's characters, then yield each field as
    (position, field text, name, value). Both RFCs share this ABNF: printable ASCII, fields
    separated by ';' with optional whitespace, one trailing ';' allowed, name=value fields.
    What a field's value may be, and how repeats count, is each caller's business."""
    if not isinstance(text, str):
        raise ParseError(f"{kind} record must be text")
    if not text.startswith(version):
        raise ParseError(f"record must start with {version!r}", position=0,
                         term=text[:max(12, len(version) + 4)])
    for pos, ch in enumerate(text):
        if not 0x20 <= ord(ch) <= 0x7E and ch != "\t":
            raise ParseError(f"invalid character {ch!r} in record", position=pos)
    parts = text.split(";")
    if parts[0].rstrip(WSP) != version:
        raise ParseError(f"{version!r} must be followed by ';'", position=0, term=parts[0])
    offset = len(parts[0]) + 1
    for index, part in enumerate(parts[1:], start=1):
        start = offset
        offset += len(part) + 1
        field = part.strip(WSP)
        if not field:
            if index == len(parts) - 1 and index > 1:
                continue  # one trailing ';' is allowed
            raise ParseError("empty field", position=start, term=part)
        name, eq, value = field.partition("=")
        if not eq or not EXT_NAME.match(name):
            raise ParseError(f"invalid field {field!r} (expected name=value)", position=start,
                             term=field)
        yield start, field, name, value
