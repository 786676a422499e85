"""SPF (RFC 7208): record syntax, and a recursive evaluation that measures *limits*.

Two jobs, for the checks `mail.spf.record`, `mail.spf.lookups` and `mail.spf.policy`:

`parse(text)` reads one `v=spf1` record into typed terms and rejects what a receiver would answer
with `permerror` (RFC 7208 4.6: a syntax error anywhere voids the whole record). Domain-specs keep
their macros as written (`%{i}._spf.example.com`): they are validated against the macro grammar
of section 7.1 but not expanded, since expansion needs the sending IP.

`evaluate(domain, lookup)` walks the record tree the way a receiver would for a sender that
matches nothing (the worst case: every term before `all` gets evaluated, and `redirect` is
followed when there is no `all`). It counts what section 4.6.4 limits: DNS-querying terms
(`include`, `a`, `mx`, `ptr`, `exists`, `redirect`: at most 10), void lookups (NXDOMAIN or an
empty answer: at most 2), and names per `mx` (at most 10). It finds include/redirect loops and
includes that do not resolve to exactly one valid record, and it computes the effective `all`
(the policy a non-matching sender gets). It is not a `check_host()` for one IP: macros that need
the sender (`%{i}`, `%{s}`, ...) are counted but not followed, and `ptr` is counted but cannot be
resolved without an address.

DNS is reached only through the `lookup` callable the caller passes, which keeps this module pure
and lets tests drive it with a dictionary. A `LookupFailure` from it (timeout, SERVFAIL) stops the
evaluation and is reported in `SpfEvaluation.error`: an unreachable resolver is a probe `error`,
never a compliance `fail`. A hard cap on queries and depth bounds the work whatever the records
say, so a hostile include tree cannot keep a probe busy.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

from watchtower.parsers import ParseError
from watchtower.parsers._common import hostname_problem, normalize_name
from watchtower.parsers.txt import select_records

__all__ = [
    "DNS_LOOKUP_LIMIT",
    "DNS_MECHANISMS",
    "MECHANISMS",
    "MX_NAME_LIMIT",
    "VOID_LOOKUP_LIMIT",
    "LookupAnswer",
    "LookupFailure",
    "Mechanism",
    "Modifier",
    "SpfEvaluation",
    "SpfLookup",
    "SpfNode",
    "SpfProblem",
    "SpfRecord",
    "evaluate",
    "parse",
    "select_spf",
]

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
_MACRO_BODY = re.compile(r"([A-Za-z])(\d*)([rR]?)([.+,/_=-]*)\Z")
# toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
_TOPLABEL = re.compile(
    r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])\Z"
)
_MACRO_LETTERS = "slodiphcrtv"
_EXP_ONLY_LETTERS = "crt"


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


# -- one function per production of RFC 7208 4.6.1 / 5 / 6 -----------------------------------


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
    _check_macro_string(value, pos + len(name) + 1, raw, domain_spec=known)
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
    _check_macro_string(spec, d.spec_pos, d.raw, domain_spec=True)
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
        _check_macro_string(domain, d.spec_pos, d.raw, domain_spec=True)
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


def _check_macro_string(spec: str, pos: int, raw: str, *, domain_spec: bool) -> None:
    """Validate a macro-string / domain-spec against RFC 7208 7.1 (and 4.8 for domain names)."""
    last_macro_end = -1
    i = spec.find("%")
    while i >= 0:
        last_macro_end = _macro_end(spec, i, pos, raw, domain_spec=domain_spec)
        i = spec.find("%", last_macro_end)
    if domain_spec and last_macro_end != len(spec):  # else domain-end = macro-expand
        _check_domain_end(spec, last_macro_end, pos, raw)


def _macro_end(spec: str, i: int, pos: int, raw: str, *, domain_spec: bool) -> int:
    """Check the macro-expand starting at `spec[i]` ('%'); the index just after it."""
    if i + 1 >= len(spec):
        raise ParseError("'%' at the end (write '%%' for a literal percent sign)",
                         position=pos + i, term=raw)
    nxt = spec[i + 1]
    if nxt in "%_-":
        return i + 2
    if nxt != "{":
        raise ParseError(f"invalid macro '%{nxt}' (expected '%{{', '%%', '%_' or '%-')",
                         position=pos + i, term=raw)
    close = spec.find("}", i + 2)
    if close < 0:
        raise ParseError("unterminated macro '%{'", position=pos + i, term=raw)
    problem = _macro_body_problem(spec[i + 2:close], domain_spec=domain_spec)
    if problem is not None:
        raise ParseError(problem, position=pos + i, term=raw)
    return close + 1


def _macro_body_problem(body: str, *, domain_spec: bool) -> str | None:
    """What is wrong with the inside of `%{...}`: letter, digits, 'r', delimiters (7.1, 7.3)."""
    match = _MACRO_BODY.match(body)
    if match is None:
        return f"invalid macro '%{{{body}}}'"
    letter = match.group(1).lower()
    if letter not in _MACRO_LETTERS:
        return f"unknown macro letter {match.group(1)!r}"
    if domain_spec and letter in _EXP_ONLY_LETTERS:
        return (f"macro letter {match.group(1)!r} is only allowed in explanation text "
                "(RFC 7208 7.2)")
    digits = match.group(2)
    if digits and not digits.strip("0"):
        return "macro digit transformer must be nonzero (RFC 7208 7.3)"
    return None


def _check_domain_end(spec: str, last_macro_end: int, pos: int, raw: str) -> None:
    """domain-end = ( "." toplabel [ "." ] ) / macro-expand, and a valid name without macros."""
    tail = spec[max(last_macro_end, 0):]
    if tail.endswith("."):
        tail = tail[:-1]
    dot = tail.rfind(".")
    if dot < 0:
        raise ParseError(f"domain {spec!r} is not fully qualified (needs '.' and a top label)",
                         position=pos, term=raw)
    toplabel = tail[dot + 1:]
    if not _TOPLABEL.match(toplabel):
        raise ParseError(f"invalid top label {toplabel!r} in domain {spec!r}", position=pos,
                         term=raw)
    if last_macro_end < 0:  # no macro at all
        problem = hostname_problem(spec, allow_underscore=True)
        if problem is not None:
            raise ParseError(f"invalid domain {spec!r}: {problem}", position=pos, term=raw)


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True, slots=True)
class LookupAnswer:
    """What the caller's resolver said about (name, rdtype).

    `records` holds, per type: TXT texts with their strings already joined (see
    `txt.join_txt`), A/AAAA addresses, MX exchange names (a leading preference, as in
    presentation format "10 mx.example.", is tolerated). `nxdomain` is True for RCODE 3.
    An answer with no records and `nxdomain=False` is NODATA. Both are "void" (RFC 7208 4.6.4).
    """

    records: tuple[str, ...] | list[str] = ()
    nxdomain: bool = False

    @property
    def void(self) -> bool:
        return self.nxdomain or not self.records


class LookupFailure(Exception):
    """The lookup could not get an answer (timeout, SERVFAIL, refused): a probe error.

    Raise it from the `lookup` callable; `evaluate` turns it into `SpfEvaluation.error`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SpfLookup(Protocol):
    """The one way `evaluate` reaches DNS: `lookup(name, rdtype)` with rdtype TXT, A, AAAA, MX."""

    def __call__(self, name: str, rdtype: str) -> LookupAnswer: ...


ProblemKind = Literal[
    "no-record", "multiple-records", "syntax", "too-many-lookups", "too-many-void-lookups",
    "loop", "unresolvable-include", "unresolvable-redirect", "mx-too-many-names", "truncated",
]


@dataclass(frozen=True, slots=True)
class SpfProblem:
    """A reason the record set is broken for receivers (each one is a `permerror` source).

    `kind` is stable (checks and tests switch on it); `message` is for humans; `domain` is the
    record where it was found.
    """

    kind: ProblemKind
    domain: str
    message: str


@dataclass(frozen=True, slots=True)
class SpfNode:
    """One record in the include/redirect tree, kept as evidence.

    `via` is how it was reached ("top", "include" or "redirect") and `term` the term that led
    here. `record` is the SPF text found (None when none was). `notes` say what each DNS term
    cost ("mx -> 3 names", "a:x.example.com: void (NXDOMAIN)").
    """

    domain: str
    via: Literal["top", "include", "redirect"]
    term: str | None = None
    record: str | None = None
    error: str | None = None
    notes: tuple[str, ...] = ()
    children: tuple[SpfNode, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for report evidence."""
        out: dict[str, Any] = {"domain": self.domain, "via": self.via, "record": self.record}
        if self.term is not None:
            out["term"] = self.term
        if self.error is not None:
            out["error"] = self.error
        if self.notes:
            out["notes"] = list(self.notes)
        if self.children:
            out["children"] = [child.to_dict() for child in self.children]
        return out


@dataclass(frozen=True, slots=True)
class SpfEvaluation:
    """The outcome of `evaluate`.

    `dns_lookups` counts DNS-querying terms over the whole evaluated tree (limit 10), and
    `void_lookups` the lookups that came back NXDOMAIN or empty (limit 2); `queries` is the
    number of calls made to `lookup`. `effective_all` is the qualifier a sender that matches
    nothing gets ("-", "~", "?", "+"), following `redirect` when the top record has no `all`;
    None when there is neither. `error` is set when a lookup failed (the evaluation stopped
    there; counts are partial); `truncated` when the hard work cap stopped it.
    """

    domain: str
    record: SpfRecord | None
    tree: SpfNode | None
    dns_lookups: int
    void_lookups: int
    queries: int
    effective_all: Qualifier | None
    all_domain: str | None
    uses_ptr: bool
    problems: tuple[SpfProblem, ...]
    error: str | None = None
    truncated: bool = False

    @property
    def lookup_limit_exceeded(self) -> bool:
        return self.dns_lookups > DNS_LOOKUP_LIMIT

    @property
    def void_limit_exceeded(self) -> bool:
        return self.void_lookups > VOID_LOOKUP_LIMIT

    @property
    def problem_kinds(self) -> frozenset[str]:
        return frozenset(p.kind for p in self.problems)

    @property
    def ok(self) -> bool:
        """No problem found and the evaluation completed."""
        return not self.problems and self.error is None and not self.truncated

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "record": self.record.text if self.record else None,
            "dns_lookups": self.dns_lookups,
            "void_lookups": self.void_lookups,
            "queries": self.queries,
            "effective_all": self.effective_all,
            "all_domain": self.all_domain,
            "uses_ptr": self.uses_ptr,
            "problems": [{"kind": p.kind, "domain": p.domain, "message": p.message}
                         for p in self.problems],
            "error": self.error,
            "truncated": self.truncated,
            "tree": self.tree.to_dict() if self.tree else None,
        }


@dataclass(slots=True)
class _State:
    lookup: SpfLookup
    max_queries: int
    max_depth: int
    queries: int = 0
    dns_terms: int = 0
    void: int = 0
    uses_ptr: bool = False
    error: str | None = None
    truncated: bool = False
    problems: list[SpfProblem] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        return self.error is not None or self.truncated

    def problem(self, kind: ProblemKind, domain: str, message: str) -> None:
        self.problems.append(SpfProblem(kind, domain, message))

    def query(self, name: str, rdtype: str) -> LookupAnswer | None:
        """Ask `lookup`; None when the evaluation must stop (failure or work cap)."""
        if self.stopped:
            return None
        if self.queries >= self.max_queries:
            self.truncated = True
            self.problem("truncated", name,
                         f"evaluation stopped after {self.queries} DNS queries (work cap)")
            return None
        self.queries += 1
        try:
            answer = self.lookup(name, rdtype)
        except LookupFailure as exc:
            self.error = f"{rdtype} lookup for {name} failed: {exc.reason}"
            return None
        return answer


def evaluate(domain: str, lookup: SpfLookup, *, max_queries: int = 50,
             max_depth: int = 20) -> SpfEvaluation:
    """Evaluate the SPF record tree of `domain` for limits, loops and the effective `all`.

    Never raises for anything DNS says; raises ParseError only when `domain` itself is not a
    valid name (a caller bug, not a finding).
    """
    if not isinstance(domain, str):
        raise ParseError("domain must be text")
    problem = hostname_problem(domain, allow_underscore=True)
    if problem is not None:
        raise ParseError(f"invalid domain {domain!r}: {problem}", term=domain)
    name = normalize_name(domain)
    state = _State(lookup=lookup, max_queries=max_queries, max_depth=max_depth)
    tree, record, effective, all_domain = _visit(state, name, "top", None, stack=(), depth=0)
    if state.dns_terms > DNS_LOOKUP_LIMIT:
        state.problem("too-many-lookups", name,
                      f"{state.dns_terms} DNS-querying terms (limit {DNS_LOOKUP_LIMIT}, "
                      "RFC 7208 4.6.4)")
    if state.void > VOID_LOOKUP_LIMIT:
        state.problem("too-many-void-lookups", name,
                      f"{state.void} void lookups (limit {VOID_LOOKUP_LIMIT}, RFC 7208 4.6.4)")
    return SpfEvaluation(
        domain=name,
        record=record,
        tree=tree,
        dns_lookups=state.dns_terms,
        void_lookups=state.void,
        queries=state.queries,
        effective_all=effective,
        all_domain=all_domain,
        uses_ptr=state.uses_ptr,
        problems=tuple(state.problems),
        error=state.error,
        truncated=state.truncated,
    )


_Via = Literal["top", "include", "redirect"]
_UNRESOLVABLE: dict[_Via, ProblemKind] = {
    "top": "no-record", "include": "unresolvable-include", "redirect": "unresolvable-redirect",
}
_Visited = tuple[SpfNode, SpfRecord | None, Qualifier | None, str | None]


@dataclass(slots=True)
class _Walk:
    """One record being walked: where it is in the tree and the evidence it collects."""

    state: _State
    domain: str
    via: _Via
    term: str | None
    path: tuple[str, ...]
    depth: int
    notes: list[str] = field(default_factory=list)
    children: list[SpfNode] = field(default_factory=list)

    def broken(self, message: str, kind: ProblemKind | None = None,
               record: str | None = None) -> SpfNode:
        """Record a problem of this record and the node that shows it."""
        self.state.problem(kind or _UNRESOLVABLE[self.via], self.domain,
                           message if self.via == "top" else f"{self.via} {self.domain}: {message}")
        return SpfNode(self.domain, self.via, self.term, record=record, error=message)

    def follow(self, target: str, via: _Via, term: str) -> _Visited | None:
        """Visit `target` below this record; None (and a `loop` problem) when it is an ancestor."""
        if target in self.path:
            self.state.problem("loop", self.domain,
                               f"{via} loop: {' -> '.join((*self.path, target))}")
            self.children.append(SpfNode(target, via, term, error="loop"))
            return None
        visited = _visit(self.state, target, via, term, stack=self.path, depth=self.depth + 1)
        self.children.append(visited[0])
        return visited


def _visit(state: _State, domain: str, via: _Via, term: str | None, *,
           stack: tuple[str, ...], depth: int) -> _Visited:
    """Fetch, parse and walk one record; returns (node, record, effective all, its domain)."""
    walk = _Walk(state, domain, via, term, (*stack, domain), depth)
    fetched = _fetch_record(walk)
    if isinstance(fetched, SpfNode):
        return fetched, None, None, None
    text, record = fetched
    if record.uses_ptr:
        state.uses_ptr = True
    for mech in record.evaluated_mechanisms:
        if state.stopped:
            break
        _walk_mechanism(walk, mech)
    effective, all_domain = _effective_all(walk, record)
    node = SpfNode(domain, via, term, record=text, notes=tuple(walk.notes),
                   children=tuple(walk.children))
    return node, record, effective, all_domain


def _fetch_record(walk: _Walk) -> SpfNode | tuple[str, SpfRecord]:
    """The one SPF record at the walked domain (text and parsed), or the node saying why not."""
    state, domain, via = walk.state, walk.domain, walk.via
    if walk.depth > state.max_depth:
        state.truncated = True
        state.problem("truncated", domain, f"include/redirect depth above {state.max_depth}")
        return SpfNode(domain, via, walk.term, error="too deep")
    answer = state.query(domain, "TXT")
    if answer is None:
        return SpfNode(domain, via, walk.term, error=state.error or "not evaluated")
    if via != "top" and answer.void:
        state.void += 1
    found = select_spf(answer.records)
    if not found:
        why = "NXDOMAIN" if answer.nxdomain else "no SPF record"
        return walk.broken(f"{why} at {domain}")
    if len(found) > 1:
        kind: ProblemKind = "multiple-records" if via == "top" else _UNRESOLVABLE[via]
        return walk.broken(f"{len(found)} SPF records at {domain} (must be exactly one)", kind)
    try:
        return found[0], parse(found[0])
    except ParseError as exc:
        kind = "syntax" if via == "top" else _UNRESOLVABLE[via]
        return walk.broken(f"syntax error: {exc}", kind, record=found[0])


def _walk_mechanism(walk: _Walk, mech: Mechanism) -> None:
    """Count one evaluated mechanism and do the lookups a receiver would."""
    if mech.name == "all" or not mech.queries_dns:
        return
    walk.state.dns_terms += 1
    if mech.name == "ptr":
        walk.notes.append(f"{mech.text}: needs the sender address, not resolved")
        return
    target = _expand(mech.domain, walk.domain) if mech.domain is not None else walk.domain
    if target is None:
        walk.notes.append(f"{mech.text}: {_unexpandable(mech.domain or '')}, not followed")
        return
    _MECHANISM_WALKERS[mech.name](walk, mech, target)


def _include_lookup(walk: _Walk, mech: Mechanism, target: str) -> None:
    walk.follow(target, "include", mech.text)


def _exists_lookup(walk: _Walk, mech: Mechanism, target: str) -> None:
    answer = walk.state.query(target, "A")
    if answer is not None and answer.void:
        walk.state.void += 1
        walk.notes.append(f"{mech.text}: void ({_void_reason(answer)})")


def _effective_all(walk: _Walk, record: SpfRecord) -> tuple[Qualifier | None, str | None]:
    """The `all` a sender matching nothing gets: this record's, else its redirect's."""
    all_mech = record.all
    if all_mech is not None:
        return all_mech.qualifier, walk.domain
    if record.redirect is None or walk.state.stopped:
        return None, None
    walk.state.dns_terms += 1
    target = _expand(record.redirect, walk.domain)
    if target is None:
        walk.notes.append(f"redirect={record.redirect}: {_unexpandable(record.redirect)}, "
                          "not followed")
        return None, None
    visited = walk.follow(target, "redirect", f"redirect={record.redirect}")
    if visited is None:
        return None, None
    return visited[2], visited[3]


def _void_reason(answer: LookupAnswer) -> str:
    return "NXDOMAIN" if answer.nxdomain else "no records"


def _address_lookup(walk: _Walk, mech: Mechanism, target: str) -> None:
    """`a`: the name must have an address. Both families are asked because the sender's family
    is unknown; the term is void only when neither has one (one void lookup, not two)."""
    state = walk.state
    answer_a = state.query(target, "A")
    answer_aaaa = state.query(target, "AAAA")
    if answer_a is None or answer_aaaa is None:
        return
    if answer_a.void and answer_aaaa.void:
        state.void += 1
        reason = "NXDOMAIN" if answer_a.nxdomain or answer_aaaa.nxdomain else "no address"
        walk.notes.append(f"{mech.text}: void ({reason})")


def _mx_lookup(walk: _Walk, mech: Mechanism, target: str) -> None:
    state, domain = walk.state, walk.domain
    answer = state.query(target, "MX")
    if answer is None:
        return
    if answer.void:
        state.void += 1
        walk.notes.append(f"{mech.text}: void ({_void_reason(answer)})")
        return
    count = len(answer.records)
    walk.notes.append(f"{mech.text}: {count} MX name{'s' if count != 1 else ''}")
    if count > MX_NAME_LIMIT:
        state.problem("mx-too-many-names", domain,
                      f"{mech.text} at {domain}: {target} has {count} MX names "
                      f"(limit {MX_NAME_LIMIT}, RFC 7208 4.6.4)")


_MECHANISM_WALKERS: dict[str, Callable[[_Walk, Mechanism, str], None]] = {
    "include": _include_lookup, "a": _address_lookup, "mx": _mx_lookup, "exists": _exists_lookup,
}


def _unexpandable(spec: str) -> str:
    """Why `_expand` gave up on a domain-spec, for the evidence notes."""
    if re.search(r"%\{[^dD]", spec):
        return "macro needs sender data"
    return "expands to an invalid name"


_ESCAPES = {"%": "%", "_": " ", "-": "%20"}


def _expand(spec: str, current: str) -> str | None:
    """Expand a domain-spec whose only macros need no sender data (`%{d}`, `%%`, `%_`, `%-`).

    Returns the lower-case name without trailing dot, or None when the spec needs the sender
    (`%{i}`, `%{s}`, ...) or expands to something that is not a DNS name.
    """
    out: list[str] = []
    start = 0
    i = spec.find("%")
    while i >= 0:
        out.append(spec[start:i])
        escape = _ESCAPES.get(spec[i + 1])
        if escape is not None:
            out.append(escape)
            start = i + 2
        else:
            close = spec.index("}", i)
            value = _expand_macro(spec[i + 2:close], current)
            if value is None:
                return None
            out.append(value)
            start = close + 1
        i = spec.find("%", start)
    out.append(spec[start:])
    return _expanded_name("".join(out))


def _expand_macro(body: str, current: str) -> str | None:
    """`%{d...}` with its transformers applied to `current`; None for any other letter."""
    match = _MACRO_BODY.match(body)
    assert match is not None  # validated by parse()
    letter, digits, reverse, delims = match.groups()
    if letter.lower() != "d":
        return None
    parts = re.split("[" + re.escape(delims or ".") + "]", current)
    if reverse:
        parts.reverse()
    if digits:
        keep = int(digits[-4:]) if len(digits) <= 4 else 9999
        parts = parts[-keep:]
    value = ".".join(parts)
    return urllib.parse.quote(value, safe="") if letter.isupper() else value


def _expanded_name(name: str) -> str | None:
    """The expansion as a name: no trailing dot, at most 253 characters (7.3), valid."""
    if name.endswith("."):
        name = name[:-1]
    while len(name) > 253 and "." in name:  # RFC 7208 7.3: drop labels from the left
        name = name.split(".", 1)[1]
    if hostname_problem(name, allow_underscore=True) is not None:
        return None
    return name.lower()
