"""mail.dane: TLSA records of every MX match the certificate it serves, in a DNSSEC-secure zone.

DNSSEC security is the resolver's `AD` bit on the TLSA answer: the appliance's configured
resolver validates (RFC 7672 2.2 makes DANE meaningless without it). Matching and rollover
judgement come from `watchtower.parsers.tlsa`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from watchtower.compliance.criteria import Criterion, combine, not_tested
from watchtower.compliance.frameworks import InStatus
from watchtower.errors import ProbeError
from watchtower.model import Findings, Status, Target, TargetKind, Verdict
from watchtower.parsers import ParseError, tlsa
from watchtower.probe.api import CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from ..graded import GradedCheck
from .common import mx_facts, null_mx, smtp_port, spec_of


@register
class Dane(GradedCheck):
    meta = CheckMeta(
        id="mail.dane",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="TLSA records of each MX match its certificate and are DNSSEC-signed",
        query="TLSA at `_25._tcp.<mx>`",
        verdicts=(
            "fail TLSA present but no record matches the served certificate, or zone not "
            "DNSSEC-secure; warn no TLSA; warn no rollover-safe pair (RFC 7672); criteria: "
            "internet.nl dane_exists, dane_valid, dane_rollover"
        ),
        applies_to=(TargetKind.MAIL_DOMAIN,),
        interval=3600,
        timeout=30,
        standards=("RFC 7672 2.2", "RFC 7672 3.1", "RFC 7671 8.1", "RFC 6698 2.1"),
    )

    def applies(self, target: Target) -> bool:
        return super().applies(target) and spec_of(target).sending

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        mx = mx_facts(ctx, target.name)
        port = smtp_port(ctx)
        hosts: list[dict[str, Any]] = []
        for host in mx["hosts"]:
            # RFC 7672 3.2.2: the TLSA name uses the SMTP port the sender dials, 25 in service.
            name = f"_{port}._tcp.{host['name']}"
            item: dict[str, Any] = {"mx": host["name"], "name": name, "chain_der": []}
            try:
                answer = ctx.resolve(name, "TLSA", dnssec=True)
                item.update(rcode=answer.rcode, records=answer.records,
                            secure=answer.authenticated)
            except ProbeError as exc:
                item["error"] = exc.reason
            if item.get("records"):
                # Only MX with TLSA are dialled; the dialogue is shared with mail.smtp.*.
                for address in host["addresses"][:1]:
                    outcome = ctx.smtp.starttls(host["name"], address, port,
                                                        deadline=ctx.deadline)
                    if outcome.tls is not None:
                        item["chain_der"] = [c.der.hex() for c in outcome.tls.chain]
                    elif outcome.error:
                        item["smtp_error"] = outcome.error
            hosts.append(item)
        return {"domain": target.name, "declared": spec_of(target).dane,
                "null_mx": null_mx(mx), "hosts": hosts}

    def criteria(self, facts: Facts) -> list[Criterion]:
        return dane_criteria(facts)

    def evidence(self, facts: Facts) -> dict[str, Any]:
        ev = super().evidence(facts)
        for host in ev.get("hosts", []):
            host["chain_der"] = f"{len(host.get('chain_der', []))} certificate(s)"
        return ev

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        if not facts["hosts"]:
            return f.verdict("null MX: no MX to authenticate" if facts.get("null_mx")
                             else "no MX host (see mail.mx)")
        with_tlsa = 0
        for host in facts["hosts"]:
            if host.get("error"):
                f.error(f"{host['name']}: {host['error']}")
                continue
            if not host.get("records"):
                continue
            with_tlsa += 1
            _judge_host(host, f)
        if with_tlsa == 0 and not f.items:
            message = "no TLSA records for any MX: DANE not in use"
            if facts.get("declared"):
                f.fail(message + " although the domain declares dane = true")
            else:
                f.warn(message + " (RFC 7672)")
            return f.verdict("")
        if with_tlsa < len(facts["hosts"]):
            bare = [h["mx"] for h in facts["hosts"] if not h.get("records") and not h.get("error")]
            if bare:
                f.warn(f"no TLSA for {', '.join(bare)}: those MX are not authenticated")
        return f.verdict(f"TLSA of {with_tlsa} MX match the served certificates, zone signed")


@dataclass(slots=True)
class HostDane:
    """What the TLSA records of one MX say: the facts both the verdict and the internet.nl
    criteria (dane_exists / dane_valid / dane_rollover) are read from."""

    name: str
    secure: bool
    problems: list[tuple[str, str]]  # (fail | error | warn, message)
    matched: bool | None = None
    rollover_safe: bool | None = None


def host_dane(host: dict[str, Any]) -> HostDane:
    mx = host["mx"]
    state = HostDane(host["name"], bool(host.get("secure")), [])
    records = []
    for text in host["records"]:
        try:
            records.append(tlsa.parse_record(text))
        except ParseError as exc:
            state.problems.append(("fail", f"{host['name']}: unparsable TLSA {text[:40]!r}: "
                                           f"{exc}"))
    if not state.secure:
        state.problems.append(("fail", f"{host['name']}: TLSA answer not DNSSEC-validated (no "
                                       "AD bit): senders ignore it (RFC 7672 2.2)"))
    chain = [bytes.fromhex(d) for d in host.get("chain_der", [])]
    if not chain:
        why = host.get("smtp_error") or "no certificate seen over STARTTLS"
        state.problems.append(("error", f"{mx}: nothing to match the TLSA records against "
                                        f"({why})"))
        return state
    try:
        result = tlsa.match_chain(records, chain)
    except ParseError as exc:
        state.problems.append(("error", f"{mx}: served chain unreadable: {exc}"))
        return state
    state.matched = bool(result.matched) and not result.all_unusable
    if result.all_unusable:
        state.problems.append(("fail", f"{host['name']}: every TLSA record is unusable for SMTP ("
                                       + "; ".join(m.reason for m in result.matches) + ")"))
    elif not result.matched:
        state.problems.append(("fail", f"{host['name']}: no TLSA record matches the certificate "
                                       f"{mx} serves ("
                                       + "; ".join(m.reason for m in result.usable) + ")"))
    else:
        rollover = tlsa.assess_rollover(records, chain)
        state.rollover_safe = rollover.safe
        if not rollover.safe:
            state.problems.append(("warn", f"{host['name']}: not rollover-safe: "
                                           f"{rollover.reason}"))
    return state


def _judge_host(host: dict[str, Any], f: Findings) -> None:
    for status, message in host_dane(host).problems:
        f.add(Status(status), message)


def dane_criteria(facts: Facts) -> list[Criterion]:
    """internet.nl's three DANE tests over every MX: TLSA exists (DNSSEC-secure), matches,
    and allows a rollover (two usable records: 3 x x + 3 x x, or 3 x x + 2 x x)."""
    hosts = facts.get("hosts") or []
    if not hosts:
        why = "null MX" if facts.get("null_mx") else "no MX host"
        return [not_tested(k, why) for k in ("dane_exists", "dane_valid", "dane_rollover")]
    per_mx: dict[str, list[Criterion]] = {}
    for host in hosts:
        if host.get("error"):
            per_mx[host["mx"]] = [Criterion("dane_exists", None, InStatus.ERROR, host["error"])]
            continue
        if not host.get("records"):
            per_mx[host["mx"]] = [Criterion("dane_exists", None, InStatus.FAILED,
                                            f"no TLSA at {host['name']}"),
                                  *_untested("no TLSA records")]
            continue
        state = host_dane(host)
        if not state.secure:
            per_mx[host["mx"]] = [Criterion("dane_exists", None, InStatus.FAILED,
                                            "TLSA records, but not DNSSEC-secure"),
                                  *_untested("TLSA not DNSSEC-secure: senders ignore it")]
            continue
        per_mx[host["mx"]] = [
            Criterion("dane_exists", None, InStatus.PASSED, "DNSSEC-secure TLSA records"),
            _tri("dane_valid", state.matched, "TLSA matches the served certificate",
                 "no usable TLSA record matches"),
            _tri("dane_rollover", state.rollover_safe, "rollover-safe TLSA pair",
                 "one matching record: a key or CA change breaks delivery"),
        ]
    return combine(per_mx)


def _untested(why: str) -> list[Criterion]:
    return [not_tested("dane_valid", why), not_tested("dane_rollover", why)]


def _tri(key: str, value: bool | None, good: str, bad: str) -> Criterion:
    if value is None:
        return not_tested(key, "nothing to match the records against")
    return Criterion(key, None, InStatus.PASSED if value else InStatus.FAILED,
                     good if value else bad)
