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

from watchtower.parsers.spf.evaluate import (
    LookupAnswer,
    LookupFailure,
    SpfEvaluation,
    SpfLookup,
    SpfNode,
    SpfProblem,
    evaluate,
)
from watchtower.parsers.spf.record import (
    DNS_LOOKUP_LIMIT,
    DNS_MECHANISMS,
    MECHANISMS,
    MX_NAME_LIMIT,
    VOID_LOOKUP_LIMIT,
    Mechanism,
    Modifier,
    SpfRecord,
    parse,
    select_spf,
)

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
