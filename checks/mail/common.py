"""What several mail checks gather alike: the MX set, TXT texts, the SPF lookup adapter.

Every lookup goes through `ctx.resolve`, i.e. the sweep's Resolver and its cache, so the SPF,
DMARC, MTA-STS, DKIM, SMTP and DANE checks of one domain cost each DNS question once per sweep.
"""

from __future__ import annotations

from typing import Any

from watchtower.config import MailDomain
from watchtower.errors import ProbeError
from watchtower.model import Target
from watchtower.net.dns import is_ip
from watchtower.parsers.spf import LookupAnswer, LookupFailure, SpfLookup
from watchtower.probe.api import Facts, ProbeContext

MAX_ADDRESSES_PER_FAMILY = 2  # per MX host: enough to see a broken one, bounded work


def spec_of(target: Target) -> MailDomain:
    """The mail domain's config entry (a default one when a test passes a bare target)."""
    spec = target.spec
    return spec if isinstance(spec, MailDomain) else MailDomain(name=target.name)


def is_sending(target: Target) -> bool:
    return spec_of(target).sending


def txt_texts(ctx: ProbeContext, name: str) -> dict[str, Any]:
    """TXT texts at `name` (strings joined, RFC 7208 3.3) with the rcode, as evidence."""
    answer = ctx.resolve(name, "TXT")
    return {"name": name, "rcode": answer.rcode, "txt": answer.texts}


def spf_lookup(ctx: ProbeContext) -> SpfLookup:
    """Adapt the sweep's Resolver to the `lookup(name, rdtype)` protocol of the SPF evaluator.

    A resolver failure (timeout, SERVFAIL) becomes `LookupFailure`, which the evaluator reports
    as an evaluation error: the check then says `error`, never a compliance `fail`.
    """

    def lookup(name: str, rdtype: str) -> LookupAnswer:
        try:
            answer = ctx.resolve(name, rdtype)
        except ProbeError as exc:
            raise LookupFailure(exc.reason) from exc
        records = answer.texts if rdtype == "TXT" else answer.records
        return LookupAnswer(tuple(records), answer.nxdomain)

    return lookup


def mx_facts(ctx: ProbeContext, domain: str) -> Facts:
    """The MX RRset and, per exchange, its addresses, CNAME chain and resolution problem."""
    answer = ctx.resolve(domain, "MX")
    records = sorted(((rd.preference, rd.exchange.to_text()) for rd in answer.rdatas),
                     key=lambda r: (r[0], r[1]))
    hosts: list[dict[str, Any]] = []
    for _pref, exchange in records:
        if exchange == ".":
            continue
        name = exchange.rstrip(".").lower()
        if any(h["name"] == name for h in hosts):
            continue
        hosts.append(_host_facts(ctx, name))
    return {
        "domain": domain,
        "rcode": answer.rcode,
        "records": [{"preference": p, "exchange": e} for p, e in records],
        "hosts": hosts,
    }


def _host_facts(ctx: ProbeContext, name: str) -> dict[str, Any]:
    facts: dict[str, Any] = {"name": name, "addresses": [], "cname": [], "ip_literal": False,
                             "problem": None}
    if is_ip(name):
        facts["ip_literal"] = True
        return facts
    for rdtype in ("A", "AAAA"):
        try:
            answer = ctx.resolve(name, rdtype)
        except ProbeError as exc:
            facts["problem"] = exc.reason
            continue
        if answer.cname_chain and not facts["cname"]:
            facts["cname"] = list(answer.cname_chain)
        facts["addresses"] += answer.records[:MAX_ADDRESSES_PER_FAMILY]
    return facts


def smtp_endpoints(mx: Facts) -> list[tuple[str, str]]:
    """(MX host, address) pairs to dial, in preference order."""
    return [(h["name"], a) for h in mx["hosts"] for a in h["addresses"]]


def smtp_port(ctx: ProbeContext) -> int:
    return ctx.fleet.probe.smtp_port


def null_mx(mx: Facts) -> bool:
    """RFC 7505: the domain accepts no mail (an MX whose exchange is the root)."""
    return any(r["exchange"] == "." for r in mx["records"])
