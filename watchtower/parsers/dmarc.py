"""DMARC policy records (RFC 7489 6.3, and the DMARCbis tags of its successor RFC 9989).

Feeds `mail.dmarc.record`, `mail.dmarc.policy` and `mail.dmarc.external-report`.

`parse(text)` accepts the union of both tag sets, because published records mix them during the
transition: RFC 7489's `pct`, `rf`, `ri` and DMARCbis' `np`, `psd`, `t`. A record is rejected
(ParseError) for what makes receivers discard it or guess: the first tag is not `v=DMARC1`, a
duplicate tag, a missing or invalid `p`, a tag value outside its grammar. Tags neither spec knows
are kept and listed in `warnings` (both specs say to ignore them), so a typo such as `rau=` shows
up in evidence without failing the record.

`organizational_domain(name)` (watchtower/parsers/domains.py, the one Public Suffix List of
watchtower) is the RFC 7489 3.2 algorithm, used both for the policy fallback lookup and for
deciding whether a report destination is "outside".

`external_destinations(policy_domain, record)` lists the rua/ruf hosts outside the policy
domain's organizational domain together with the name that must publish the authorization
(`<policy-domain>._report._dmarc.<dest-host>`, RFC 7489 7.1), and `is_report_authorization`
reads that name's TXT answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from watchtower.parsers import ParseError
from watchtower.parsers._common import (
    Tag,
    check_tag_list_text,
    mailto_address,
    normalize_name,
    parse_tag_list,
    split_uri,
    uri_problem,
    web_host,
)
from watchtower.parsers.domains import organizational_domain

__all__ = [
    "DmarcRecord",
    "DmarcUri",
    "ExternalDestination",
    "external_destinations",
    "is_dmarc_record",
    "is_report_authorization",
    "organizational_domain",
    "parse",
    "select_dmarc",
]

Policy = Literal["none", "quarantine", "reject"]
Alignment = Literal["r", "s"]

KNOWN_TAGS = frozenset({
    "v", "p", "sp", "np", "pct", "rua", "ruf", "adkim", "aspf", "fo", "rf", "ri", "t", "psd",
})
_POLICIES = ("none", "quarantine", "reject")
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_VERSION = re.compile(r"[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|\Z)")
_SIZE = re.compile(r"(\d{1,15})([kmgtKMGT]?)\Z")
_LEADING_V = re.compile(r"[ \t\r\n]*[vV][ \t]*=")
_PCT = re.compile(r"\d{1,3}")
_RI = re.compile(r"\d{1,10}")
_FORMAT_NAME = re.compile(r"[a-z][a-z0-9-]*")


@dataclass(frozen=True, slots=True)
class DmarcUri:
    """One rua/ruf destination: the URI, its `!size` limit in bytes, and the mail host.

    `address`/`host` are set for `mailto:` URIs (host lower-case); `host` also for https.
    """

    uri: str
    scheme: str
    max_size: int | None = None
    address: str | None = None
    host: str | None = None


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """A valid DMARC record, with RFC defaults applied where a tag is absent.

    `sp` and `np` hold what was published (None when absent); `subdomain_policy` and
    `nonexistent_policy` apply the defaults (sp defaults to p, np to sp). `pct` is 100 unless
    published. `testing` is the DMARCbis `t=y` flag. `tags` keeps every tag as written, in order,
    for evidence.
    """

    text: str
    p: Policy
    sp: Policy | None = None
    np: Policy | None = None
    pct: int = 100
    rua: tuple[DmarcUri, ...] = ()
    ruf: tuple[DmarcUri, ...] = ()
    adkim: Alignment = "r"
    aspf: Alignment = "r"
    fo: tuple[str, ...] = ("0",)
    rf: tuple[str, ...] = ("afrf",)
    ri: int = 86400
    testing: bool = False
    psd: Literal["y", "n", "u"] = "u"
    tags: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def subdomain_policy(self) -> Policy:
        return self.sp if self.sp is not None else self.p

    @property
    def nonexistent_policy(self) -> Policy:
        return self.np if self.np is not None else self.subdomain_policy

    @property
    def unknown_tags(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.tags if name not in KNOWN_TAGS)


def is_dmarc_record(text: str) -> bool:
    """Whether a TXT text is a DMARC record at all (RFC 7489 6.6.3: starts with `v=DMARC1`).

    Whitespace around `=` is allowed by the ABNF, so this is not a plain prefix test.
    """
    return _VERSION.match(text.lstrip(" \t")) is not None


def select_dmarc(records: Iterable[str]) -> list[str]:
    """The DMARC records among the TXT texts at `_dmarc.<domain>`; other records are ignored."""
    return [text for text in records if is_dmarc_record(text)]


def parse(text: str) -> DmarcRecord:
    """Parse a DMARC record; ParseError for anything that voids it or leaves it ambiguous."""
    check_tag_list_text(text, "DMARC")
    warnings: list[str] = []
    tags = parse_tag_list(text, what="DMARC", fold_names=True, warnings=warnings)
    if not tags or tags[0].name != "v" or not _LEADING_V.match(text):
        raise ParseError("first tag must be 'v=DMARC1'", position=0, term=text[:20])
    if tags[0].value != "DMARC1":
        raise ParseError(f"version must be exactly 'DMARC1', not {tags[0].value!r}",
                         position=tags[0].position, term=f"v={tags[0].value}")
    values = {tag.name: tag for tag in tags}
    if "p" not in values:
        raise ParseError("missing required 'p' tag")
    # Tags absent from the record keep DmarcRecord's defaults (the RFCs' defaults).
    fields = {field: read(values[name], warnings)
              for name, (field, read) in _TAG_READERS.items() if name in values}
    warnings += [f"unknown tag {tag.name!r} is ignored by receivers" for tag in tags
                 if tag.name not in KNOWN_TAGS]
    return DmarcRecord(text=text, **fields, tags=tuple((tag.name, tag.value) for tag in tags),
                       warnings=tuple(warnings))


_TagReader = Callable[[Tag, list[str]], Any]


def _keyword(allowed: tuple[str, ...]) -> _TagReader:
    """A tag whose value is one of `allowed` (case-insensitive), returned lower-case."""

    def read(tag: Tag, _warnings: list[str]) -> str:
        value = tag.value.lower()
        if value not in allowed:
            raise ParseError(f"invalid {tag.name}={tag.value!r} (allowed: {', '.join(allowed)})",
                             position=tag.position, term=f"{tag.name}={tag.value}")
        return value

    return read


_YES_NO = _keyword(("y", "n"))


def _testing(tag: Tag, warnings: list[str]) -> bool:
    """t=y|n (DMARCbis): y is the testing flag."""
    return bool(_YES_NO(tag, warnings) == "y")


def _pct(tag: Tag, _warnings: list[str]) -> int:
    if not _PCT.fullmatch(tag.value) or int(tag.value) > 100:
        raise ParseError(f"invalid pct={tag.value!r} (an integer 0..100)",
                         position=tag.position, term=f"pct={tag.value}")
    return int(tag.value)


def _ri(tag: Tag, _warnings: list[str]) -> int:
    if not _RI.fullmatch(tag.value) or int(tag.value) > 0xFFFFFFFF:
        raise ParseError(f"invalid ri={tag.value!r} (seconds, a 32-bit unsigned integer)",
                         position=tag.position, term=f"ri={tag.value}")
    return int(tag.value)


def _fo(tag: Tag, _warnings: list[str]) -> tuple[str, ...]:
    items = [item.strip(" \t").lower() for item in tag.value.split(":")]
    if not items or any(item not in ("0", "1", "d", "s") for item in items):
        raise ParseError(f"invalid fo={tag.value!r} (colon-separated 0, 1, d, s)",
                         position=tag.position, term=f"fo={tag.value}")
    return tuple(items)


def _rf(tag: Tag, warnings: list[str]) -> tuple[str, ...]:
    items = [item.strip(" \t").lower() for item in tag.value.split(":")]
    if any(not _FORMAT_NAME.fullmatch(item) for item in items):
        raise ParseError(f"invalid rf={tag.value!r} (colon-separated format names)",
                         position=tag.position, term=f"rf={tag.value}")
    if "afrf" not in items:
        warnings.append("rf= does not include 'afrf', the only defined report format")
    return tuple(items)


def _uri_list(tag: Tag, warnings: list[str]) -> tuple[DmarcUri, ...]:
    """Parse `rua`/`ruf`: comma-separated URIs, each with an optional `!size[kmgt]` suffix."""
    term = f"{tag.name}={tag.value}"
    if not tag.value:
        raise ParseError(f"empty {tag.name}= (needs at least one URI)", position=tag.position,
                         term=term)
    out: list[DmarcUri] = []
    for raw in tag.value.split(","):
        item = raw.strip(" \t")
        uri, bang, size_text = item.partition("!")
        max_size: int | None = None
        if bang:
            size = _SIZE.match(size_text)
            if size is None:
                raise ParseError(f"invalid size limit '!{size_text}' in {tag.name}=",
                                 position=tag.position, term=term)
            max_size = int(size.group(1)) * _SIZE_UNITS[size.group(2).lower()]
        problem = uri_problem(uri)
        if problem is not None:
            raise ParseError(f"invalid URI {uri!r} in {tag.name}=: {problem}",
                             position=tag.position, term=term)
        parts = split_uri(uri)
        assert parts is not None
        scheme = parts[0]
        address: str | None = None
        host: str | None = None
        if scheme == "mailto":
            mailbox = mailto_address(uri)
            assert mailbox is not None
            address = f"{mailbox[0]}@{mailbox[1]}"
            host = mailbox[1]
        else:
            warnings.append(f"{tag.name}= URI {uri!r} is not mailto:, which is the only scheme "
                            "receivers must support")
            if scheme in ("https", "http"):
                host = web_host(uri)
        out.append(DmarcUri(uri=uri, scheme=scheme, max_size=max_size, address=address,
                            host=host))
    return tuple(out)


# tag -> (DmarcRecord field, reader), in the order the tags are checked (the first bad one is
# the error reported).
_TAG_READERS: dict[str, tuple[str, _TagReader]] = {
    "p": ("p", _keyword(_POLICIES)),
    "sp": ("sp", _keyword(_POLICIES)),
    "np": ("np", _keyword(_POLICIES)),
    "adkim": ("adkim", _keyword(("r", "s"))),
    "aspf": ("aspf", _keyword(("r", "s"))),
    "t": ("testing", _testing),
    "psd": ("psd", _keyword(("y", "n", "u"))),
    "pct": ("pct", _pct),
    "ri": ("ri", _ri),
    "fo": ("fo", _fo),
    "rf": ("rf", _rf),
    "rua": ("rua", _uri_list),
    "ruf": ("ruf", _uri_list),
}
assert set(_TAG_READERS) | {"v"} == KNOWN_TAGS


@dataclass(frozen=True, slots=True)
class ExternalDestination:
    """A report destination outside the policy domain's organization, needing authorization.

    `query_name` is where the destination must publish a `v=DMARC1` TXT record (RFC 7489 7.1).
    """

    uri: str
    kind: Literal["rua", "ruf"]
    host: str
    query_name: str


def external_destinations(policy_domain: str, record: DmarcRecord) -> list[ExternalDestination]:
    """rua/ruf destinations whose organizational domain differs from `policy_domain`'s.

    `policy_domain` is the domain the DMARC record was found at (the organizational domain when
    the record came from the fallback lookup). Non-mailto URIs without a host are skipped.
    """
    domain = normalize_name(policy_domain)
    own = organizational_domain(domain)
    out: list[ExternalDestination] = []
    seen: set[tuple[str, str]] = set()
    pairs: tuple[tuple[Literal["rua", "ruf"], tuple[DmarcUri, ...]], ...] = (
        ("rua", record.rua), ("ruf", record.ruf))
    for kind, uris in pairs:
        for uri in uris:
            if uri.host is None or (kind, uri.host) in seen:
                continue
            try:
                dest_org = organizational_domain(uri.host)
            except ParseError:
                continue  # an IP literal host: nothing to query
            if dest_org == own:
                continue
            seen.add((kind, uri.host))
            out.append(ExternalDestination(
                uri=uri.uri, kind=kind,
                host=uri.host, query_name=f"{domain}._report._dmarc.{uri.host}",
            ))
    return out


def is_report_authorization(records: Iterable[str]) -> bool:
    """Whether the TXT answer at `<domain>._report._dmarc.<dest>` authorizes the reports.

    RFC 7489 7.1: at least one record that starts with `v=DMARC1`. (Its optional rua/ruf
    overrides are for the sender of reports, not for us.)
    """
    return any(is_dmarc_record(text) for text in records)
