"""dns.soa.timers: the SOA timers secondaries and caches live by (RFC 1912 2.2, Zonemaster ZONE).

Too short a refresh hammers the primary; a retry not below refresh never retries; a short expire
drops the zone from secondaries after a brief primary outage; a huge negative-caching TTL keeps a
newly added name invisible for days.
"""

from __future__ import annotations

from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import zone_name

MIN_REFRESH = 14400  # ZONE02
MIN_RETRY = 3600  # ZONE04
MIN_EXPIRE = 604800  # ZONE05
MAX_MINIMUM = 86400  # ZONE06
MIN_MINIMUM = 300  # ZONE06


@register
class SoaTimers(Check):
    meta = CheckMeta(
        id="dns.soa.timers",
        needs=("dns.ns.authoritative",),
        family="dns",
        title="SOA refresh, retry, expire and negative-caching TTL within recommended ranges",
        query="SOA",
        verdicts=(
            "warn refresh < 14400, retry >= refresh, retry < 3600, expire < 604800, minimum > "
            "86400 (ZONE02-06)"
        ),
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=15,
        standards=("RFC 1912 2.2", "RFC 2308 4", "Zonemaster ZONE02-ZONE06"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        zone = zone_name(target)
        answer = ctx.resolve(zone, "SOA")
        facts: Facts = {"zone": zone, "rcode": answer.rcode, "records": answer.records,
                        "soa": None}
        if answer.rrset is not None:
            rd = answer.rdatas[0]
            facts["soa"] = {"mname": rd.mname.to_text(), "rname": rd.rname.to_text(),
                            "serial": rd.serial, "refresh": rd.refresh, "retry": rd.retry,
                            "expire": rd.expire, "minimum": rd.minimum}
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        if facts.get("rcode") == "NXDOMAIN":
            f.fail(f"zone {facts['zone']} does not exist (NXDOMAIN)")
            return f.verdict("")
        soa = facts.get("soa")
        if not soa:
            f.fail(f"{facts['zone']} has no SOA record: not a zone apex")
            return f.verdict("")
        refresh, retry = int(soa["refresh"]), int(soa["retry"])
        expire, minimum = int(soa["expire"]), int(soa["minimum"])
        if refresh < MIN_REFRESH:
            f.warn(f"refresh {refresh} s is below {MIN_REFRESH} s (ZONE02)")
        if retry >= refresh:
            f.warn(f"retry {retry} s is not below refresh {refresh} s (ZONE03)")
        if retry < MIN_RETRY:
            f.warn(f"retry {retry} s is below {MIN_RETRY} s (ZONE04)")
        if expire < MIN_EXPIRE:
            f.warn(f"expire {expire} s is below {MIN_EXPIRE} s (one week, ZONE05)")
        if minimum > MAX_MINIMUM:
            f.warn(f"negative-caching TTL (SOA minimum) {minimum} s is above {MAX_MINIMUM} s "
                   "(ZONE06)")
        elif minimum < MIN_MINIMUM:
            f.warn(f"negative-caching TTL (SOA minimum) {minimum} s is below {MIN_MINIMUM} s "
                   "(ZONE06)")
        return f.verdict(f"refresh {refresh}, retry {retry}, expire {expire}, "
                         f"minimum {minimum}")
