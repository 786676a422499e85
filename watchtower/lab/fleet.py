"""What the lab fleet is: its domains, their records, their web sites, and the faults they carry.

Data, not servers: `build_domains` says what exists, `zone_for` renders a domain's zone, and
`fleet_document` writes the fleet file that points watchtower at the running lab. Faults are
names attached to a domain (see `FAULTS`); each changes the records or sites it touches, so the
demo shows real failures found by real probes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dns.zone

NATO = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
        "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"]

FAULTS: dict[str, str] = {
    "single-ns": "the zone lists only one name server",
    "cert-expired": "the service's certificate expired last month",
    "cert-wrong-name": "the service's certificate names another host",
    "cert-untrusted": "the service's certificate is self-signed",
}

#: The default demo: one healthy domain, two with faults a provider must see.
DEMO_FAULTS: dict[str, set[str]] = {
    "bravo.test": {"single-ns", "cert-expired"},
    "charlie.test": {"cert-wrong-name"},
}

SERVICE_ROTATION = [("mastodon", "social"), ("peertube", "video"), ("pixelfed", "photos")]
NS2_ADDRESS = "127.0.1.2"


@dataclass
class LabDomain:
    name: str
    index: int
    faults: set[str] = field(default_factory=set)

    @property
    def service_kind(self) -> str:
        return SERVICE_ROTATION[self.index % len(SERVICE_ROTATION)][0]

    @property
    def service_host(self) -> str:
        return f"{SERVICE_ROTATION[self.index % len(SERVICE_ROTATION)][1]}.{self.name}"

    @property
    def web_hosts(self) -> list[str]:
        return [self.service_host, f"mta-sts.{self.name}"]


def domain_names(count: int) -> list[str]:
    if count <= len(NATO):
        return [f"{n}.test" for n in NATO[:count]]
    return [f"d{i:04d}.test" for i in range(count)]


def build_domains(count: int, faults: dict[str, set[str]] | None = None) -> list[LabDomain]:
    faults = DEMO_FAULTS if faults is None else faults
    unknown = {f for fs in faults.values() for f in fs} - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown lab fault(s): {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(FAULTS))}")
    return [LabDomain(name, i, set(faults.get(name, set())))
            for i, name in enumerate(domain_names(count))]


def zone_text(domain: LabDomain, dkim_txt: str, serial: int) -> str:
    """The domain's zone in RFC 1035 master-file form (relative names)."""
    z = domain.name
    lines = [
        f"$ORIGIN {z}.",
        "$TTL 3600",
        f"@ IN SOA ns1.{z}. hostmaster.{z}. {serial} 14400 3600 1209600 3600",
        f"@ IN NS ns1.{z}.",
    ]
    if "single-ns" not in domain.faults:
        lines.append(f"@ IN NS ns2.{z}.")
    lines += [
        "ns1 IN A 127.0.0.1",
        f"ns2 IN A {NS2_ADDRESS}",
        "@ IN A 127.0.0.1",
        f"@ IN MX 10 mail.{z}.",
        "mail IN A 127.0.0.1",
        '@ IN TXT "v=spf1 mx -all"',
        f'_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc-reports@{z}"',
        f"s1._domainkey IN TXT {dkim_txt}",
        f'_mta-sts IN TXT "v=STSv1; id={serial}"',
        f'_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@{z}"',
        '@ IN CAA 0 issue "lab.watchtower.test"',
        "mta-sts IN A 127.0.0.1",
        "www IN A 127.0.0.1",
        f"{domain.service_host.split('.')[0]} IN A 127.0.0.1",
    ]
    return "\n".join(lines) + "\n"


def zone_for(domain: LabDomain, dkim_txt: str, serial: int = 2026112501) -> dns.zone.Zone:
    return dns.zone.from_text(zone_text(domain, dkim_txt, serial), origin=domain.name + ".",
                              relativize=False, check_origin=True)


def split_txt(value: str) -> str:
    """A long TXT value as quoted 255-byte strings, the way zone files must carry it."""
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
    return " ".join(f'"{c}"' for c in chunks)


def fleet_document(
    domains: list[LabDomain], *, dns_port: int, https_port: int, ca_bundle: str,
    database: str, metrics_listen: str,
) -> dict[str, Any]:
    """The fleet file (as a TOML-ready dict) that points watchtower at the running lab."""
    port = "" if https_port == 443 else f":{https_port}"
    doc: dict[str, Any] = {
        "settings": {
            "database": database,
            "nameservers": [f"127.0.0.1:{dns_port}"],
            "authoritative_port": dns_port,
            "dns_timeout": 2.0,
            "http_timeout": 5.0,
            "ca_bundle": ca_bundle,
            "metrics_listen": metrics_listen,
            "default_interval": 60,
            "jitter": 2,
        },
        "zones": [{"name": d.name, "dnssec": False} for d in domains],
        "mail_domains": [{"name": d.name, "dkim_selectors": ["s1"]} for d in domains],
        "services": [
            {"name": d.service_host, "kind": d.service_kind,
             "base_url": f"https://{d.service_host}{port}/",
             "probe_account": f"watchtower@{d.name}"}
            for d in domains
        ],
        # The lab runs every check often so the demo shows results (and flips) quickly.
        "checks": {"dns": {"interval": 60}, "web": {"interval": 60}},
    }
    return doc

