"""SPF evaluation: the record tree walked the way a receiver walks it for a sender that matches
nothing, counting what RFC 7208 4.6.4 limits (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from watchtower.parsers import ParseError
from watchtower.parsers._common import hostname_problem, normalize_name
from watchtower.parsers.spf.macros import expand, unexpandable
from watchtower.parsers.spf.record import (
    DNS_LOOKUP_LIMIT,
    MX_NAME_LIMIT,
    VOID_LOOKUP_LIMIT,
    Mechanism,
    Qualifier,
    SpfRecord,
    parse,
    select_spf,
)


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
    target = expand(mech.domain, walk.domain) if mech.domain is not None else walk.domain
    if target is None:
        walk.notes.append(f"{mech.text}: {unexpandable(mech.domain or '')}, not followed")
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
    target = expand(record.redirect, walk.domain)
    if target is None:
        walk.notes.append(f"redirect={record.redirect}: {unexpandable(record.redirect)}, "
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
