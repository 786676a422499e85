"""dns.* checks (per zone): delegation, authority, consistency, DNSSEC, CAA, IPv6."""

from __future__ import annotations

import ipaddress

from watchtower.checks_api import Check, CheckMeta, Facts, ProbeContext
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.dns import DnsError
from watchtower.plugins import register


def _network_key(address: str) -> str:
    ip = ipaddress.ip_address(address)
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@register
class NsCount(Check):
    meta = CheckMeta(
        id="dns.ns.count",
        family="dns",
        title="At least two name servers, not all in one network",
        applies_to=(TargetKind.ZONE,),
        interval=3600,
        timeout=15,
        standards=("RFC 1034 4.1", "RFC 2182 3.1", "Zonemaster DELEGATION01"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        answer = ctx.resolve(target.name, "NS")
        servers = []
        for rd in answer.rdatas:
            name = rd.target.to_text()
            try:
                addresses = ctx.dns.addresses(name, deadline=ctx.deadline)
                problem = None
            except DnsError as exc:
                addresses, problem = [], exc.reason
            servers.append({"name": name, "addresses": sorted(addresses), "problem": problem})
        return {"zone": target.name, "rcode": answer.rcode,
                "nameservers": sorted(servers, key=lambda s: str(s["name"]))}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        servers = facts["nameservers"]
        if facts.get("rcode") == "NXDOMAIN":
            f.fail(f"zone {facts['zone']} does not exist (NXDOMAIN)")
            return f.verdict("")
        if len(servers) < 2:
            f.fail(f"{len(servers)} name server(s); at least 2 are required")
        for s in servers:
            if not s["addresses"]:
                f.fail(f"name server {s['name']} has no address"
                       + (f" ({s['problem']})" if s.get("problem") else ""))
        for version in (4, 6):
            addrs = [a for s in servers for a in s["addresses"]
                     if ipaddress.ip_address(a).version == version]
            nets = {_network_key(a) for a in addrs}
            if len(servers) >= 2 and len(addrs) >= 2 and len(nets) == 1:
                f.warn(f"all IPv{version} name server addresses are in {nets.pop()}: "
                       "one network outage takes the zone down")
        return f.verdict(f"{len(servers)} name servers in distinct networks")
