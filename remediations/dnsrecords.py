"""dns.records: create or fix SPF, DMARC, TLS-RPT, MTA-STS and CAA records through the DNS
server's API (PowerDNS), from templates in the fleet file. The undo restores the previous RRset
exactly (same records, same TTL), or deletes the RRset the fix created.

A failing `dns.declared` is fixed from the fleet's declared records instead of a template: the
plan is the whole declared-vs-API difference of the zone (`watchtower.dnsdecl.plan`), sent as
one PATCH (PowerDNS applies it as one transaction), and the undo is one PATCH that puts every
touched RRset back exactly as it was.

A zone kept as code by octoDNS (`[[zones]] octodns`) is never PATCHed: the same changes become
a commit to its YAML (`remediations/dnsoctodns.py`), and the next sync serves them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from watchtower.config import DnsTemplate, Fleet, Zone
from watchtower.dnsdecl.octodns import OctoZone, managed
from watchtower.dnsdecl.records import absolute, record_key
from watchtower.net.powerdns import delete_body, replace_body
from watchtower.probe.registry import register_remediation
from watchtower.remediation.api import (
    NoAction,
    Plan,
    Remediation,
    RemediationContext,
    RemediationMeta,
    Step,
)
from watchtower.store import StateRow

from . import dnsoctodns

#: What each check's failure is fixed with, unless the fleet file says otherwise.
DEFAULT_TEMPLATES: dict[str, DnsTemplate] = {
    "mail.dmarc.record": DnsTemplate(
        name="_dmarc.{domain}", type="TXT",
        content='"v=DMARC1; p=reject; rua=mailto:dmarc-reports@{domain}"'),
    "mail.spf.record": DnsTemplate(name="{domain}", type="TXT", content='"v=spf1 mx -all"'),
    "mail.tls-rpt": DnsTemplate(name="_smtp._tls.{domain}", type="TXT",
                                content='"v=TLSRPTv1; rua=mailto:tls-reports@{domain}"'),
    "mail.mta-sts": DnsTemplate(name="_mta-sts.{domain}", type="TXT",
                                content='"v=STSv1; id={serial}"'),
    "dns.caa": DnsTemplate(name="{domain}", type="CAA", content='0 issue "letsencrypt.org"'),
}


def _is_same_kind(content: str, template: DnsTemplate) -> bool:
    """TXT RRsets at a name hold other records too: only ours (same version tag) is replaced."""
    if template.type != "TXT":
        return True
    tag = template.content.strip('"').split(";")[0].split(" ")[0].lower()
    return content.strip('"').lower().startswith(tag)


@register_remediation
class DnsRecords(Remediation):
    meta = RemediationMeta(
        id="dns.records",
        title="Create or fix a DNS record through the DNS API",
        triggers=(*DEFAULT_TEMPLATES, "dns.declared", "dns.octodns"),
        settle_seconds=2,
        max_per_hour=10,
        cooldown_seconds=300,
    )

    @classmethod
    def triggers(cls, fleet: Fleet) -> tuple[str, ...]:
        """Also every check the fleet file gives a DNS template (`[remediation.dns_templates]`)."""
        extra = tuple(c for c in fleet.remediation.dns_templates if c not in cls.meta.triggers)
        return cls.meta.triggers + extra

    def plan(self, state: StateRow, ctx: RemediationContext) -> Plan | NoAction:
        if state.check_id in ("dns.declared", "dns.octodns"):
            return self._declared_plan(state, ctx)
        templates = {**DEFAULT_TEMPLATES, **ctx.fleet.remediation.dns_templates}
        template = templates.get(state.check_id)
        if template is None:
            return NoAction(f"no DNS template for {state.check_id}")
        domain = state.target
        serial = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M")
        name = template.name.format(domain=domain)
        content = template.content.format(domain=domain, serial=serial)
        octo = _octodns_zone(ctx.fleet, name)
        if octo is not None:
            return dnsoctodns.plan(self.meta.id, state.target, state.check_id, octo,
                                   _template_change(name, template, content))
        found = ctx.dns_apis().for_name(name)
        if found is None:
            return NoAction(f"no [[dns_apis]] entry manages a zone containing {name}")
        client, zone = found
        current = client.rrset(zone, name, template.type)
        old = [r["content"] for r in (current or {}).get("records", [])]
        kept = [c for c in old if not _is_same_kind(c, template)]
        new = [*kept, content]
        if sorted(new) == sorted(old):
            return NoAction(f"{name} {template.type} already has the wanted record")
        url = client.zone_url(zone)
        ttl = int((current or {}).get("ttl", template.ttl))
        undo_body = (replace_body(name, template.type, ttl, old) if old
                     else delete_body(name, template.type))
        diff = "\n".join([*(f"- {name} {ttl} {template.type} {c}" for c in old
                            if c not in new),
                          *(f"+ {name} {template.ttl} {template.type} {c}" for c in new
                            if c not in old)])
        return Plan(
            remediation=self.meta.id, target=state.target, host=f"dns:{client.name}:{zone}",
            summary=f"set {name} {template.type} through {client.name}",
            diff=diff,
            steps=[Step(f"replace {name} {template.type}", "http", method="PATCH", url=url,
                        body=replace_body(name, template.type, template.ttl, new),
                        secret=client.name, timeout=30)],
            undo=[Step(f"restore {name} {template.type}", "http", method="PATCH", url=url,
                       body=undo_body, secret=client.name, timeout=30)],
            verify=[state.check_id],
        )

    def _declared_plan(self, state: StateRow, ctx: RemediationContext) -> Plan | NoAction:
        """The zone's declared-vs-served difference as one PATCH, its exact undo as another."""
        from watchtower.dnsdecl import declare, probe_context
        from watchtower.dnsdecl.derive import find_zone
        from watchtower.dnsdecl.plan import plan_zone

        zone = find_zone(ctx.fleet, state.target)
        if zone is None:
            return NoAction(f"{state.target} is not a [[zones]] entry")
        octo = managed(ctx.fleet, zone)
        if octo is not None:
            return self._octodns_declared(state, ctx, zone, octo)
        if state.check_id == "dns.octodns":
            return NoAction(f"{zone.name} is not kept by octoDNS")
        client = ctx.dns_apis().for_zone(zone.name)
        if client is None:
            return NoAction(f"no [[dns_apis]] entry manages the zone {zone.name}")
        with probe_context(ctx.fleet) as probe:
            declaration = declare(ctx.fleet, zone, probe)
        if declaration.problems:
            return NoAction(f"the declared records of {zone.name} are incomplete: "
                            + "; ".join(declaration.problems))
        zone_plan = plan_zone(zone.name, declaration.records, client.rrsets(zone.name))
        if zone_plan.empty:
            return NoAction(f"{zone.name} already holds the declared records in {client.name}")
        url = client.zone_url(zone.name)
        return Plan(
            remediation=self.meta.id, target=state.target, host=f"dns:{client.name}:{zone.name}",
            summary=f"bring {zone.name} to its declared records through {client.name} "
                    f"({len(zone_plan.changes)} RRset change(s))",
            diff="\n".join(zone_plan.diff_lines),
            steps=[Step(f"patch {len(zone_plan.changes)} RRset(s) of {zone.name}", "http",
                        method="PATCH", url=url, body=zone_plan.patch_body(),
                        secret=client.name, timeout=30)],
            undo=[Step(f"restore {len(zone_plan.undo)} RRset(s) of {zone.name}", "http",
                       method="PATCH", url=url, body=zone_plan.undo_body(), secret=client.name,
                       timeout=30)],
            verify=["dns.declared"],
        )

    def _octodns_declared(self, state: StateRow, ctx: RemediationContext, zone: Zone,
                          octo: OctoZone) -> Plan | NoAction:
        """The zone's declared-vs-YAML difference as one commit to its YAML."""
        from watchtower.dnsdecl import declare, probe_context
        from watchtower.dnsdecl.plan import plan_zone

        with probe_context(ctx.fleet) as probe:
            declaration = declare(ctx.fleet, zone, probe)
        if declaration.problems:
            return NoAction(f"the declared records of {zone.name} are incomplete: "
                            + "; ".join(declaration.problems))

        def changes(current: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
            zone_plan = plan_zone(zone.name, declaration.records, current)
            return zone_plan.changes, zone_plan.diff_lines

        return dnsoctodns.plan(self.meta.id, state.target, state.check_id, octo, changes)


def _octodns_zone(fleet: Fleet, name: str) -> OctoZone | None:
    from watchtower.dnsdecl.derive import zone_of

    zone = zone_of(fleet, name)
    return managed(fleet, zone) if zone is not None else None


def _template_change(name: str, template: DnsTemplate, content: str) -> dnsoctodns.Changes:
    """The template's record as a change of one RRset of the YAML (other TXT kinds kept)."""
    owner = absolute(name)

    def changes(current: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        rrset = next((r for r in current if (r["name"], r["type"]) == (owner, template.type)),
                     None)
        old = [r["content"] for r in (rrset or {}).get("records", [])]
        new = [*(c for c in old if not _is_same_kind(c, template)), content]
        if sorted(record_key(template.type, c) for c in new) == sorted(
                record_key(template.type, c) for c in old):
            return [], []
        ttl = int((rrset or {}).get("ttl", template.ttl))
        return ([{"name": owner, "type": template.type, "ttl": ttl, "changetype": "REPLACE",
                  "records": [{"content": c, "disabled": False} for c in new]}],
                [f"+ {owner} {template.type} {content}"])

    return changes
