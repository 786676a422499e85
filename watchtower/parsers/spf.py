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
from collections.abc import Iterable
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
    if not isinstance(text, str):
        raise ParseError("SPF record must be text")
    if text[:6].lower() != "v=spf1" or (len(text) > 6 and text[6] != " "):
        raise ParseError("record does not start with 'v=spf1' followed by a space", position=0,
                         term=text[:12])
    for pos, ch in enumerate(text):
        if not 0x20 <= ord(ch) <= 0x7E:
            what = "non-ASCII character" if ord(ch) > 0x7E else "control character"
            hint = " (only single spaces may separate terms)" if ch in "\t\r\n" else ""
            raise ParseError(f"{what} {ch!r} in record{hint}", position=pos)

    terms: list[Term] = []
    warnings: list[str] = []
    seen_modifiers: set[str] = set()
    for match in re.finditer(r"[^ ]+", text[6:]):
        raw = match.group(0)
        pos = match.start() + 6
        term = _parse_term(raw, pos)
        if isinstance(term, Modifier):
            if term.name in ("redirect", "exp") and term.name in seen_modifiers:
                raise ParseError(f"duplicate '{term.name}=' modifier (RFC 7208 6)",
                                 position=pos, term=raw)
            seen_modifiers.add(term.name)
            if term.name not in ("redirect", "exp"):
                warnings.append(f"unknown modifier '{term.name}=' is ignored by receivers")
        terms.append(term)

    record = SpfRecord(text=text, terms=tuple(terms))
    all_mech = record.all
    if all_mech is not None:
        later = [m.text for m in record.mechanisms if m.position > all_mech.position]
        if later:
            warnings.append(f"terms after '{all_mech.text}' are never evaluated: "
                            + " ".join(later))
        if record.redirect is not None:
            warnings.append("'redirect=' is ignored because the record has 'all' (RFC 7208 6.1)")
    if record.uses_ptr:
        warnings.append("'ptr' is slow and unreliable and SHOULD NOT be used (RFC 7208 5.5)")
    return SpfRecord(text=text, terms=tuple(terms), warnings=tuple(warnings))


def _parse_term(raw: str, pos: int) -> Term:
    modifier = _MODIFIER.match(raw)
    if modifier is not None:
        name = modifier.group(1).lower()
        value = modifier.group(2)
        if name in ("redirect", "exp"):
            if not value:
                raise ParseError(f"'{name}=' without a domain", position=pos, term=raw)
            _check_macro_string(value, pos + len(name) + 1, raw, domain_spec=True)
        else:
            _check_macro_string(value, pos + len(name) + 1, raw, domain_spec=False)
        return Modifier(name=name, value=value, text=raw, position=pos)

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
    rest = body[len(name):]
    if name not in MECHANISMS:
        if "=" in name and _MODIFIER.match(body):
            raise ParseError("modifiers take no qualifier", position=pos, term=raw)
        shown = name or body
        hint = f" (modifiers are written '{name}=')" if name in ("redirect", "exp") else ""
        raise ParseError(f"unknown mechanism {shown!r}{hint}", position=pos, term=raw)
    spec_pos = pos + len(raw) - len(rest) + 1

    if name == "all":
        if rest:
            raise ParseError("'all' takes no argument", position=pos, term=raw)
        return Mechanism(qualifier, name, raw, pos)

    if name in ("include", "exists"):
        if not rest.startswith(":"):
            if rest.startswith("/"):
                raise ParseError(f"'{name}' takes no CIDR length", position=pos, term=raw)
            raise ParseError(f"'{name}' needs ':' and a domain", position=pos, term=raw)
        spec = rest[1:]
        if not spec:
            raise ParseError(f"missing domain after '{name}:'", position=pos, term=raw)
        if re.search(r"/\d*\Z", spec):
            raise ParseError(f"'{name}' takes no CIDR length", position=pos, term=raw)
        _check_macro_string(spec, spec_pos, raw, domain_spec=True)
        return Mechanism(qualifier, name, raw, pos, domain=spec)

    if name == "ptr":
        if not rest:
            return Mechanism(qualifier, name, raw, pos)
        if not rest.startswith(":"):
            raise ParseError("'ptr' takes no CIDR length", position=pos, term=raw)
        spec = rest[1:]
        if not spec:
            raise ParseError("missing domain after 'ptr:'", position=pos, term=raw)
        if re.search(r"/\d*\Z", spec):
            raise ParseError("'ptr' takes no CIDR length", position=pos, term=raw)
        _check_macro_string(spec, spec_pos, raw, domain_spec=True)
        return Mechanism(qualifier, name, raw, pos, domain=spec)

    if name in ("a", "mx"):
        cidr = _CIDR_SUFFIX.match(rest)
        assert cidr is not None  # every part is optional
        spec_text = cidr.group("spec")
        cidr4 = _cidr_length(cidr.group("v4"), 32, pos, raw)
        cidr6 = _cidr_length(cidr.group("v6"), 128, pos, raw)
        domain: str | None = None
        if spec_text:
            if not spec_text.startswith(":"):
                # rest starts with ':' or '/', so this is a '/...' the CIDR regex refused
                raise ParseError(f"bad CIDR length {spec_text!r}", position=pos, term=raw)
            domain = spec_text[1:]
            if not domain:
                raise ParseError(f"missing domain after '{name}:'", position=pos, term=raw)
            slash = domain.find("/")
            if slash >= 0:
                raise ParseError(f"bad CIDR length {domain[slash:]!r}", position=pos, term=raw)
            _check_macro_string(domain, spec_pos, raw, domain_spec=True)
        return Mechanism(qualifier, name, raw, pos, domain=domain, cidr4=cidr4, cidr6=cidr6)

    # ip4 / ip6
    if not rest.startswith(":") or len(rest) == 1:
        raise ParseError(f"'{name}' needs ':' and an address", position=pos, term=raw)
    addr_text, slash, length_text = rest[1:].partition("/")
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    if name == "ip4":
        if not re.fullmatch(r"[0-9.]+", addr_text):
            raise ParseError(f"invalid IPv4 address {addr_text!r}", position=pos, term=raw)
        try:
            addr4 = ipaddress.IPv4Address(addr_text)
        except ValueError:
            raise ParseError(f"invalid IPv4 address {addr_text!r}", position=pos,
                             term=raw) from None
        length = _cidr_length(length_text if slash else None, 32, pos, raw, empty_ok=False)
        network = ipaddress.IPv4Network((addr4, 32 if length is None else length), strict=False)
    else:
        if not re.fullmatch(r"[0-9A-Fa-f:.]+", addr_text):
            raise ParseError(f"invalid IPv6 address {addr_text!r}", position=pos, term=raw)
        try:
            addr6 = ipaddress.IPv6Address(addr_text)
        except ValueError:
            raise ParseError(f"invalid IPv6 address {addr_text!r}", position=pos,
                             term=raw) from None
        length = _cidr_length(length_text if slash else None, 128, pos, raw, empty_ok=False)
        network = ipaddress.IPv6Network((addr6, 128 if length is None else length), strict=False)
    return Mechanism(qualifier, name, raw, pos, network=network,
                     cidr4=length if name == "ip4" else None,
                     cidr6=length if name == "ip6" else None)


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
    i = 0
    last_macro_end = -1
    has_macro = False
    n = len(spec)
    while i < n:
        ch = spec[i]
        if ch != "%":
            i += 1
            continue
        if i + 1 >= n:
            raise ParseError("'%' at the end (write '%%' for a literal percent sign)",
                             position=pos + i, term=raw)
        nxt = spec[i + 1]
        if nxt in "%_-":
            i += 2
            last_macro_end = i
            has_macro = True
            continue
        if nxt != "{":
            raise ParseError(f"invalid macro '%{nxt}' (expected '%{{', '%%', '%_' or '%-')",
                             position=pos + i, term=raw)
        close = spec.find("}", i + 2)
        if close < 0:
            raise ParseError("unterminated macro '%{'", position=pos + i, term=raw)
        body = spec[i + 2:close]
        match = _MACRO_BODY.match(body)
        if match is None:
            raise ParseError(f"invalid macro '%{{{body}}}'", position=pos + i, term=raw)
        letter = match.group(1).lower()
        if letter not in _MACRO_LETTERS:
            raise ParseError(f"unknown macro letter {match.group(1)!r}", position=pos + i,
                             term=raw)
        if domain_spec and letter in _EXP_ONLY_LETTERS:
            raise ParseError(f"macro letter {match.group(1)!r} is only allowed in explanation "
                             "text (RFC 7208 7.2)", position=pos + i, term=raw)
        digits = match.group(2)
        if digits and not digits.strip("0"):
            raise ParseError("macro digit transformer must be nonzero (RFC 7208 7.3)",
                             position=pos + i, term=raw)
        i = close + 1
        last_macro_end = i
        has_macro = True
    if not domain_spec:
        return
    if last_macro_end == n:
        return  # domain-end = macro-expand
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
    if not has_macro:
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


def _visit(state: _State, domain: str, via: _Via, term: str | None, *,
           stack: tuple[str, ...], depth: int,
           ) -> tuple[SpfNode, SpfRecord | None, Qualifier | None, str | None]:
    """Fetch, parse and walk one record; returns (node, record, effective all, its domain)."""
    unresolvable = _UNRESOLVABLE[via]

    def broken(message: str, kind: ProblemKind | None = None,
               record: str | None = None) -> tuple[SpfNode, None, None, None]:
        state.problem(kind or unresolvable, domain,
                      message if via == "top" else f"{via} {domain}: {message}")
        return SpfNode(domain, via, term, record=record, error=message), None, None, None

    if depth > state.max_depth:
        state.truncated = True
        state.problem("truncated", domain, f"include/redirect depth above {state.max_depth}")
        return SpfNode(domain, via, term, error="too deep"), None, None, None
    answer = state.query(domain, "TXT")
    if answer is None:
        return SpfNode(domain, via, term, error=state.error or "not evaluated"), None, None, None
    if via != "top" and answer.void:
        state.void += 1
    found = select_spf(answer.records)
    if not found:
        why = "NXDOMAIN" if answer.nxdomain else "no SPF record"
        return broken(f"{why} at {domain}")
    if len(found) > 1:
        kind: ProblemKind = "multiple-records" if via == "top" else unresolvable
        return broken(f"{len(found)} SPF records at {domain} (must be exactly one)", kind)
    text = found[0]
    try:
        record = parse(text)
    except ParseError as exc:
        kind = "syntax" if via == "top" else unresolvable
        return broken(f"syntax error: {exc}", kind, record=text)

    notes: list[str] = []
    children: list[SpfNode] = []
    path = (*stack, domain)
    if record.uses_ptr:
        state.uses_ptr = True

    for mech in record.evaluated_mechanisms:
        if state.stopped:
            break
        if mech.name == "all" or not mech.queries_dns:
            continue
        state.dns_terms += 1
        if mech.name == "ptr":
            notes.append(f"{mech.text}: needs the sender address, not resolved")
            continue
        target = _expand(mech.domain, domain) if mech.domain is not None else domain
        if target is None:
            notes.append(f"{mech.text}: {_unexpandable(mech.domain or '')}, not followed")
            continue
        if mech.name == "include":
            if target in path:
                state.problem("loop", domain, f"include loop: {' -> '.join((*path, target))}")
                children.append(SpfNode(target, "include", mech.text, error="loop"))
                continue
            child, _, _, _ = _visit(state, target, "include", mech.text, stack=path,
                                    depth=depth + 1)
            children.append(child)
        elif mech.name == "a":
            _address_lookup(state, target, mech, notes)
        elif mech.name == "mx":
            _mx_lookup(state, domain, target, mech, notes)
        else:  # exists
            answer = state.query(target, "A")
            if answer is not None and answer.void:
                state.void += 1
                notes.append(f"{mech.text}: void ({_void_reason(answer)})")

    effective: Qualifier | None = None
    all_domain: str | None = None
    all_mech = record.all
    if all_mech is not None:
        effective, all_domain = all_mech.qualifier, domain
    elif record.redirect is not None and not state.stopped:
        state.dns_terms += 1
        target = _expand(record.redirect, domain)
        if target is None:
            notes.append(f"redirect={record.redirect}: {_unexpandable(record.redirect)}, "
                         "not followed")
        elif target in path:
            state.problem("loop", domain, f"redirect loop: {' -> '.join((*path, target))}")
            children.append(SpfNode(target, "redirect", f"redirect={record.redirect}",
                                    error="loop"))
        else:
            child, _, effective, all_domain = _visit(state, target, "redirect",
                                                     f"redirect={record.redirect}",
                                                     stack=path, depth=depth + 1)
            children.append(child)
    node = SpfNode(domain, via, term, record=text, notes=tuple(notes), children=tuple(children))
    return node, record, effective, all_domain


def _void_reason(answer: LookupAnswer) -> str:
    return "NXDOMAIN" if answer.nxdomain else "no records"


def _address_lookup(state: _State, target: str, mech: Mechanism, notes: list[str]) -> None:
    """`a`: the name must have an address. Both families are asked because the sender's family
    is unknown; the term is void only when neither has one (one void lookup, not two)."""
    answer_a = state.query(target, "A")
    answer_aaaa = state.query(target, "AAAA")
    if answer_a is None or answer_aaaa is None:
        return
    if answer_a.void and answer_aaaa.void:
        state.void += 1
        reason = "NXDOMAIN" if answer_a.nxdomain or answer_aaaa.nxdomain else "no address"
        notes.append(f"{mech.text}: void ({reason})")


def _mx_lookup(state: _State, domain: str, target: str, mech: Mechanism,
               notes: list[str]) -> None:
    answer = state.query(target, "MX")
    if answer is None:
        return
    if answer.void:
        state.void += 1
        notes.append(f"{mech.text}: void ({_void_reason(answer)})")
        return
    count = len(answer.records)
    notes.append(f"{mech.text}: {count} MX name{'s' if count != 1 else ''}")
    if count > MX_NAME_LIMIT:
        state.problem("mx-too-many-names", domain,
                      f"{mech.text} at {domain}: {target} has {count} MX names "
                      f"(limit {MX_NAME_LIMIT}, RFC 7208 4.6.4)")


def _unexpandable(spec: str) -> str:
    """Why `_expand` gave up on a domain-spec, for the evidence notes."""
    if re.search(r"%\{[^dD]", spec):
        return "macro needs sender data"
    return "expands to an invalid name"


def _expand(spec: str, current: str) -> str | None:
    """Expand a domain-spec whose only macros need no sender data (`%{d}`, `%%`, `%_`, `%-`).

    Returns the lower-case name without trailing dot, or None when the spec needs the sender
    (`%{i}`, `%{s}`, ...) or expands to something that is not a DNS name.
    """
    out: list[str] = []
    i = 0
    n = len(spec)
    while i < n:
        ch = spec[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        nxt = spec[i + 1]
        if nxt == "%":
            out.append("%")
            i += 2
            continue
        if nxt == "_":
            out.append(" ")
            i += 2
            continue
        if nxt == "-":
            out.append("%20")
            i += 2
            continue
        close = spec.index("}", i)
        match = _MACRO_BODY.match(spec[i + 2:close])
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
        if letter.isupper():
            value = urllib.parse.quote(value, safe="")
        out.append(value)
        i = close + 1
    name = "".join(out)
    if name.endswith("."):
        name = name[:-1]
    while len(name) > 253 and "." in name:  # RFC 7208 7.3: drop labels from the left
        name = name.split(".", 1)[1]
    if hostname_problem(name, allow_underscore=True) is not None:
        return None
    return name.lower()
