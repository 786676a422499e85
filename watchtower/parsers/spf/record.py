"""SPF records (RFC 7208 4-6): one `v=spf1` record read into typed terms; a syntax error
anywhere voids the whole record (4.6), as a receiver answers `permerror`."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast

from watchtower.parsers import ParseError
from watchtower.parsers.spf.macros import check_macro_string
from watchtower.parsers.txt import select_records

Qualifier = Literal["+", "-", "~", "?"]

MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})

# Terms that cost the receiver a DNS query and count against the limit of 10 (RFC 7208 4.6.4).
DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})

DNS_LOOKUP_LIMIT = 10

VOID_LOOKUP_LIMIT = 2

MX_NAME_LIMIT = 10

_QUALIFIERS = "+-~?"

_KNOWN_MODIFIERS = frozenset({"redirect", "exp"})

_TERM = re.compile(r"[^ ]+")

_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")

_CIDR_TAIL = re.compile(r"/\d*\Z")

_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)\Z", re.DOTALL)

_MECH_NAME = re.compile(r"[^:/]*")

_CIDR_SUFFIX = re.compile(r"(?P<spec>.*?)(?:/(?P<v4>\d+))?(?://(?P<v6>\d+))?\Z", re.DOTALL)

@dataclass(frozen=True, slots=True)
class Mechanism:
    """A directive: qualifier + mechanism (RFC 7208 4.6.2, 5).

    `domain` is the domain-spec as written (macros unexpanded), None when the mechanism has none.
    `network` is set for ip4/ip6 (host bits allowed, as the RFC compares only the prefix);
    `cidr4`/`cidr6` are the dual-cidr-length of `a`/`mx` (None when absent).
    """

    qualifier: Qualifier
    name: str
    text: str
    position: int
    domain: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    cidr4: int | None = None
    cidr6: int | None = None

    @property
    def queries_dns(self) -> bool:
        return self.name in DNS_MECHANISMS

@dataclass(frozen=True, slots=True)
class Modifier:
    """A `name=value` term (RFC 7208 6). Names are lower-cased; unknown modifiers are kept."""

    name: str
    value: str
    text: str
    position: int

Term = Mechanism | Modifier

@dataclass(frozen=True, slots=True)
class SpfRecord:
    """A syntactically valid SPF record.

    `warnings` lists what is legal but suspicious (terms after `all`, `redirect` made useless by
    `all`, unknown modifiers, `ptr`), for evidence; they never change the verdict of `parse`.
    """

    text: str
    terms: tuple[Term, ...]
    warnings: tuple[str, ...] = ()

    @property
    def mechanisms(self) -> tuple[Mechanism, ...]:
        return tuple(t for t in self.terms if isinstance(t, Mechanism))

    @property
    def modifiers(self) -> tuple[Modifier, ...]:
        return tuple(t for t in self.terms if isinstance(t, Modifier))

    def _modifier(self, name: str) -> str | None:
        for term in self.terms:
            if isinstance(term, Modifier) and term.name == name:
                return term.value
        return None

    @property
    def redirect(self) -> str | None:
        """The `redirect=` domain-spec as written, None when absent."""
        return self._modifier("redirect")

    @property
    def exp(self) -> str | None:
        return self._modifier("exp")

    @property
    def all(self) -> Mechanism | None:
        """The first `all` mechanism: it always matches, so later terms are never reached."""
        for mech in self.mechanisms:
            if mech.name == "all":
                return mech
        return None

    @property
    def evaluated_mechanisms(self) -> tuple[Mechanism, ...]:
        """Mechanisms a receiver evaluates for a sender that matches nothing before `all`."""
        out: list[Mechanism] = []
        for mech in self.mechanisms:
            out.append(mech)
            if mech.name == "all":
                break
        return tuple(out)

    @property
    def effective_redirect(self) -> str | None:
        """`redirect` when it is used: RFC 7208 6.1 ignores it when the record has `all`."""
        return self.redirect if self.all is None else None

    @property
    def uses_ptr(self) -> bool:
        return any(m.name == "ptr" for m in self.mechanisms)

    @property
    def dns_term_count(self) -> int:
        """DNS-querying terms of this record alone (includes not followed)."""
        count = sum(1 for m in self.evaluated_mechanisms if m.queries_dns)
        return count + (1 if self.effective_redirect is not None else 0)

def select_spf(records: Iterable[str]) -> list[str]:
    """The SPF records among TXT texts (RFC 7208 4.5: `v=spf1` then a space or the end)."""
    return select_records(records, "v=spf1")

def parse(text: str) -> SpfRecord:
    """Parse one SPF record; raise ParseError with the offending term on any syntax error."""
    _check_record_text(text)
    terms = tuple(_parse_terms(text))
    record = SpfRecord(text=text, terms=terms)
    warnings = [*_unknown_modifier_warnings(terms), *_reach_warnings(record)]
    return SpfRecord(text=text, terms=terms, warnings=tuple(warnings))

def _check_record_text(text: str) -> None:
    """`v=spf1` then a space or the end, and only printable ASCII (RFC 7208 4.5, 12)."""
    if not isinstance(text, str):
        raise ParseError("SPF record must be text")
    if text[:6].lower() != "v=spf1" or (len(text) > 6 and text[6] != " "):
        raise ParseError("record does not start with 'v=spf1' followed by a space", position=0,
                         term=text[:12])
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        ch = bad.group(0)
        what = "non-ASCII character" if ord(ch) > 0x7E else "control character"
        hint = " (only single spaces may separate terms)" if ch in "\t\r\n" else ""
        raise ParseError(f"{what} {ch!r} in record{hint}", position=bad.start())

def _parse_terms(text: str) -> Iterator[Term]:
    """The terms after `v=spf1`; `redirect=` and `exp=` may each appear once (RFC 7208 6)."""
    seen_modifiers: set[str] = set()
    for match in _TERM.finditer(text, 6):
        raw = match.group(0)
        pos = match.start()
        term = _parse_term(raw, pos)
        if isinstance(term, Modifier):
            if term.name in _KNOWN_MODIFIERS and term.name in seen_modifiers:
                raise ParseError(f"duplicate '{term.name}=' modifier (RFC 7208 6)",
                                 position=pos, term=raw)
            seen_modifiers.add(term.name)
        yield term

def _unknown_modifier_warnings(terms: tuple[Term, ...]) -> Iterator[str]:
    for term in terms:
        if isinstance(term, Modifier) and term.name not in _KNOWN_MODIFIERS:
            yield f"unknown modifier '{term.name}=' is ignored by receivers"

def _reach_warnings(record: SpfRecord) -> Iterator[str]:
    """Terms that are legal but never used, or slow: evidence, never a verdict."""
    all_mech = record.all
    if all_mech is not None:
        later = [m.text for m in record.mechanisms if m.position > all_mech.position]
        if later:
            yield f"terms after '{all_mech.text}' are never evaluated: " + " ".join(later)
        if record.redirect is not None:
            yield "'redirect=' is ignored because the record has 'all' (RFC 7208 6.1)"
    if record.uses_ptr:
        yield "'ptr' is slow and unreliable and SHOULD NOT be used (RFC 7208 5.5)"

def _parse_term(raw: str, pos: int) -> Term:
    """term = directive / modifier; a directive is [qualifier] mechanism."""
    modifier = _MODIFIER.match(raw)
    if modifier is not None:
        return _parse_modifier(modifier.group(1).lower(), modifier.group(2), raw, pos)
    qualifier: Qualifier = "+"
    body = raw
    if raw[0] in _QUALIFIERS:
        qualifier = cast(Qualifier, raw[0])
        body = raw[1:]
        if not body:
            raise ParseError("qualifier without a mechanism", position=pos, term=raw)
    name_match = _MECH_NAME.match(body)
    assert name_match is not None  # [^:/]* always matches
    name = name_match.group(0).lower()
    reader = _MECHANISM_READERS.get(name)
    if reader is None:
        raise _unknown_mechanism(name, body, raw, pos)
    return reader(_Directive(qualifier, name, raw, pos, body[len(name):]))

def _parse_modifier(name: str, value: str, raw: str, pos: int) -> Modifier:
    """redirect=domain-spec, exp=domain-spec, or an unknown modifier's macro-string."""
    known = name in _KNOWN_MODIFIERS
    if known and not value:
        raise ParseError(f"'{name}=' without a domain", position=pos, term=raw)
    check_macro_string(value, pos + len(name) + 1, raw, domain_spec=known)
    return Modifier(name=name, value=value, text=raw, position=pos)

def _unknown_mechanism(name: str, body: str, raw: str, pos: int) -> ParseError:
    if "=" in name and _MODIFIER.match(body):
        return ParseError("modifiers take no qualifier", position=pos, term=raw)
    shown = name or body
    hint = f" (modifiers are written '{name}=')" if name in _KNOWN_MODIFIERS else ""
    return ParseError(f"unknown mechanism {shown!r}{hint}", position=pos, term=raw)

@dataclass(slots=True)
class _Directive:
    """A directive being read: `rest` is what follows the mechanism name (':...', '/...')."""

    qualifier: Qualifier
    name: str
    raw: str
    pos: int
    rest: str

    @property
    def spec_pos(self) -> int:
        """Where the domain-spec after ':' starts in the record."""
        return self.pos + len(self.raw) - len(self.rest) + 1

    def error(self, reason: str) -> ParseError:
        return ParseError(reason, position=self.pos, term=self.raw)

    def mechanism(self, **parts: Any) -> Mechanism:
        return Mechanism(self.qualifier, self.name, self.raw, self.pos, **parts)

def _read_all(d: _Directive) -> Mechanism:
    """all = "all"."""
    if d.rest:
        raise d.error("'all' takes no argument")
    return d.mechanism()

def _read_include_exists(d: _Directive) -> Mechanism:
    """include = "include" ":" domain-spec; exists = "exists" ":" domain-spec."""
    if not d.rest.startswith(":"):
        if d.rest.startswith("/"):
            raise d.error(f"'{d.name}' takes no CIDR length")
        raise d.error(f"'{d.name}' needs ':' and a domain")
    return d.mechanism(domain=_domain_spec(d))

def _read_ptr(d: _Directive) -> Mechanism:
    """ptr = "ptr" [ ":" domain-spec ]."""
    if not d.rest:
        return d.mechanism()
    if not d.rest.startswith(":"):
        raise d.error("'ptr' takes no CIDR length")
    return d.mechanism(domain=_domain_spec(d))

def _domain_spec(d: _Directive) -> str:
    """The domain-spec after ':' of include, exists and ptr (which take no CIDR length)."""
    spec = d.rest[1:]
    if not spec:
        raise d.error(f"missing domain after '{d.name}:'")
    if _CIDR_TAIL.search(spec):
        raise d.error(f"'{d.name}' takes no CIDR length")
    check_macro_string(spec, d.spec_pos, d.raw, domain_spec=True)
    return spec

def _read_a_mx(d: _Directive) -> Mechanism:
    """a = "a" [ ":" domain-spec ] [ dual-cidr-length ]; mx likewise."""
    cidr = _CIDR_SUFFIX.match(d.rest)
    assert cidr is not None  # every part is optional
    spec_text = cidr.group("spec")
    cidr4 = _cidr_length(cidr.group("v4"), 32, d.pos, d.raw)
    cidr6 = _cidr_length(cidr.group("v6"), 128, d.pos, d.raw)
    domain: str | None = None
    if spec_text:
        if not spec_text.startswith(":"):
            # rest starts with ':' or '/', so this is a '/...' the CIDR regex refused
            raise d.error(f"bad CIDR length {spec_text!r}")
        domain = spec_text[1:]
        if not domain:
            raise d.error(f"missing domain after '{d.name}:'")
        slash = domain.find("/")
        if slash >= 0:
            raise d.error(f"bad CIDR length {domain[slash:]!r}")
        check_macro_string(domain, d.spec_pos, d.raw, domain_spec=True)
    return d.mechanism(domain=domain, cidr4=cidr4, cidr6=cidr6)

@dataclass(frozen=True, slots=True)
class _IpFamily:
    """What differs between ip4 and ip6: the name, the address characters, the longest prefix."""

    label: str
    characters: re.Pattern[str]
    maximum: int
    address: Callable[[str], ipaddress.IPv4Address | ipaddress.IPv6Address]
    network: Callable[[tuple[Any, int]], ipaddress.IPv4Network | ipaddress.IPv6Network]

_IP_FAMILIES = {
    "ip4": _IpFamily("IPv4", re.compile(r"[0-9.]+"), 32, ipaddress.IPv4Address,
                     lambda prefix: ipaddress.IPv4Network(prefix, strict=False)),
    "ip6": _IpFamily("IPv6", re.compile(r"[0-9A-Fa-f:.]+"), 128, ipaddress.IPv6Address,
                     lambda prefix: ipaddress.IPv6Network(prefix, strict=False)),
}

def _read_ip(d: _Directive) -> Mechanism:
    """ip4 = "ip4" ":" ip4-network [ ip4-cidr-length ]; ip6 likewise."""
    if not d.rest.startswith(":") or len(d.rest) == 1:
        raise d.error(f"'{d.name}' needs ':' and an address")
    family = _IP_FAMILIES[d.name]
    addr_text, slash, length_text = d.rest[1:].partition("/")
    if not family.characters.fullmatch(addr_text):
        raise d.error(f"invalid {family.label} address {addr_text!r}")
    try:
        address = family.address(addr_text)
    except ValueError:
        raise d.error(f"invalid {family.label} address {addr_text!r}") from None
    length = _cidr_length(length_text if slash else None, family.maximum, d.pos, d.raw,
                          empty_ok=False)
    network = family.network((address, family.maximum if length is None else length))
    if d.name == "ip4":
        return d.mechanism(network=network, cidr4=length)
    return d.mechanism(network=network, cidr6=length)

_MECHANISM_READERS: dict[str, Callable[[_Directive], Mechanism]] = {
    "all": _read_all, "include": _read_include_exists, "exists": _read_include_exists,
    "ptr": _read_ptr, "a": _read_a_mx, "mx": _read_a_mx, "ip4": _read_ip, "ip6": _read_ip,
}

assert frozenset(_MECHANISM_READERS) == MECHANISMS

def _cidr_length(text: str | None, maximum: int, pos: int, raw: str, *,
                 empty_ok: bool = True) -> int | None:
    """A CIDR length: digits without leading zero, 0..maximum (RFC 7208 5.6 ABNF)."""
    if text is None:
        return None
    if not text and empty_ok:
        return None
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        raise ParseError(f"bad CIDR length '/{text}'", position=pos, term=raw)
    if len(text) > 3 or int(text) > maximum:
        family = "IPv4" if maximum == 32 else "IPv6"
        raise ParseError(f"bad CIDR length '/{text}' ({family} allows 0..{maximum})",
                         position=pos, term=raw)
    return int(text)
