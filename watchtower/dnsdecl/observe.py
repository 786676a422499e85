"""The network half of derivation: the certificates a zone's TLSA and CAA records depend on.

A TLSA record pins the key an MX serves, and "CAA for the CA in use" names the CA that issued
the certificates the zone's web hosts serve; neither is in the fleet file, both are seen by
probing. Probes go through the sweep's clients (`ctx.tls`, and the sweep's SMTP prober shared
with the mail.* checks, so an MX is dialled once per sweep). A probe that fails is a problem
recorded for the evidence, not an exception: the rest of the zone can still be compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.oid import NameOID

from watchtower.config import Fleet, Zone
from watchtower.dnsdecl.derive import Observed, wants
from watchtower.errors import ProbeError

if TYPE_CHECKING:
    from watchtower.probe.api import ProbeContext

MAX_WEB_HOSTS = 8  # certificates looked at per zone for its CA: the CA is usually one


def observe(fleet: Fleet, zone: Zone, ctx: ProbeContext) -> Observed:
    out = Observed()
    need = wants(fleet, zone)
    for host in need.mx_hosts:
        _tlsa(host, ctx, out)
    for host in need.web_hosts[:MAX_WEB_HOSTS]:
        _issuer(host, ctx, out)
    out.caa = sorted(set(out.caa))
    return out


def _tlsa(host: str, ctx: ProbeContext, out: Observed) -> None:
    """`3 1 1` (DANE-EE, SPKI, SHA-256; RFC 7671 5.1) of the key each MX address serves."""
    port = ctx.fleet.probe.smtp_port
    try:
        addresses = ctx.dns.addresses(host, deadline=ctx.deadline)
    except ProbeError as exc:
        out.problems.append(f"MX {host}: no address ({exc.reason})")
        return
    for address in addresses:
        outcome = ctx.smtp.starttls(host, address, port, deadline=ctx.deadline)
        leaf = outcome.tls.leaf if outcome.tls is not None else None
        if leaf is None:
            out.problems.append(f"MX {host} ({address}): no certificate seen")
            continue
        content = f"3 1 1 {leaf.spki_sha256}"
        if content not in out.tlsa.setdefault(host, []):
            out.tlsa[host].append(content)


def _issuer(host: str, ctx: ProbeContext, out: Observed) -> None:
    issuers = {k.casefold(): v for k, v in ctx.fleet.probe.caa_issuers.items()}
    try:
        facts = ctx.tls_probe(host.rstrip("."), ctx.fleet.probe.https_port)
    except ProbeError as exc:
        out.problems.append(f"{host}: TLS probe failed ({exc.reason})")
        return
    leaf = facts.leaf
    if leaf is None:
        return
    issuer = x509.load_der_x509_certificate(leaf.der).issuer
    names = [str(a.value) for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME)
             for a in issuer.get_attributes_for_oid(oid)]
    domain = next((issuers[n.casefold()] for n in names if n.casefold() in issuers), None)
    if domain is None:
        out.problems.append(f"{host}: CA {', '.join(names) or '?'} has no CAA domain in "
                            "[probe] caa_issuers")
    else:
        out.caa.append(domain)
