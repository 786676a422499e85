"""What the lab fleet is: its domains, their records, their web sites, and the faults they carry.

Data, not servers: `build_domains` says what exists, `zone_for` renders a domain's zone, and
`fleet_document` writes the fleet file that points watchtower at the running lab. Faults are
names attached to a domain (see `FAULTS`); each changes the records or sites it touches, so the
demo shows real failures found by real probes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdataset
import dns.rdatatype
import dns.reversename
import dns.zone

from watchtower.lab.apps import (
    BackupBucketApp,
    GarageAdminApp,
    HttpRedirectApp,
    MastodonApp,
    MatrixDelegationApp,
    MatrixFederationStandIn,
    MtaStsPolicyApp,
    PeerTubeApp,
    PixelfedApp,
    StaticSiteApp,
)
from watchtower.lab.cron import GRACE, HEARTBEAT_NAME, PERIOD, TOKEN_FILE, HeartbeatPinger
from watchtower.lab.dnsserver import LabSigner, View, rdata_text
from watchtower.lab.mailhost import LAB_HOST, MAILHOST_FAULTS
from watchtower.lab.smtp import MAIL_FAULTS, mail_policy_lines, mx_address
from watchtower.model import TargetKind
from watchtower.probe import registry

NATO = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
        "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"]

FAULTS: dict[str, str] = {
    "single-ns": "the zone lists only one name server",
    "cert-expired": "the service's certificate expired last month",
    "cert-wrong-name": "the service's certificate names another host",
    "cert-untrusted": "the service's certificate is self-signed",
    "lame-ns": "the second name server answers REFUSED for the zone",
    "serial-mismatch": "the second name server serves an older serial",
    "open-recursion": "a third name server of the zone is an open resolver",
    "open-axfr": "every name server hands out the zone by AXFR",
    "rrsig-expiring": "the zone's RRSIGs expire in 36 hours (nobody re-signs it)",
    "bad-soa-timers": "SOA refresh 3600, retry 7200, expire 1 day, minimum 2 days",
    "no-caa": "the zone has no CAA record",
    "no-ipv6": "no AAAA records at all (name servers, mail, web)",
    "unsigned": "the zone is not signed and the parent has no DS",
    **MAIL_FAULTS,
    **MAILHOST_FAULTS,
}

#: Stand-in app roles on a lab domain (see watchtower.lab.sites). A lab fault `<role>:<fault>`
#: switches that app fault on, e.g. "fedi:webfinger-no-cors", "matrix:keys-expired".
APP_ROLES: dict[str, tuple[type[Any], ...]] = {
    "fedi": (MastodonApp, PeerTubeApp, PixelfedApp),
    "matrix": (MatrixFederationStandIn,),
    "matrix-wk": (MatrixDelegationApp,),
    "garage": (GarageAdminApp,),
    "backup": (BackupBucketApp,),
    "cron": (HeartbeatPinger,),
    "site": (StaticSiteApp,),
    "http": (HttpRedirectApp,),
    "mta-sts": (MtaStsPolicyApp,),
}
for _role, _classes in APP_ROLES.items():
    for _cls in _classes:
        for _fault in _cls.supported_faults():
            FAULTS.setdefault(f"{_role}:{_fault.name}", _fault.description)

#: The default demo: one healthy domain, two with faults a provider must see.
DEMO_FAULTS: dict[str, set[str]] = {
    "bravo.test": {"single-ns", "cert-expired", "open-axfr"},
    "charlie.test": {"cert-wrong-name", "serial-mismatch", "rrsig-expiring",
                     "fedi:webfinger-no-cors", "site:no-hsts"},
}

SERVICE_ROTATION = [("mastodon", "social"), ("peertube", "video"), ("pixelfed", "photos")]
NS2_ADDRESS = "127.0.1.2"
#: A third lab name server address: an open resolver (the `open-recursion` fault's ns3).
NS3_ADDRESS = "127.0.1.3"
#: The lab's only IPv6 address: a loopback has one, so ns1 and ns2 share it (both AAAA ::1,
#: served with ns1's view) and the web and mail hosts point there too.
LAB_V6_ADDRESS = "::1"
#: The lab's parent zone: it delegates every lab domain and holds their DS records; its own
#: DNSKEY is the trust anchor the lab writes into the fleet file.
LAB_PARENT = "test."
LAB_SERIAL = 2026112501
#: The lab's customers: domain i belongs to LAB_CUSTOMERS[i % 2] (alpha, charlie: acme).
LAB_CUSTOMERS = ("acme", "globex")


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
    def has_matrix(self) -> bool:
        """Matrix on every third domain (alpha, delta, ...): its server name is the apex."""
        return self.index % 3 == 0

    @property
    def has_garage(self) -> bool:
        """A Garage cluster's admin API on every third domain (bravo, echo, ...)."""
        return self.index % 3 == 1

    @property
    def probe_account(self) -> str:
        """Mastodon runs split (account domain = apex); the others on their own host."""
        domain = self.name if self.service_kind == "mastodon" else self.service_host
        return f"watchtower@{domain}"

    @property
    def extra_labels(self) -> list[str]:
        """Host labels beside the fedi service that need an address record."""
        return [label for label, on in (("matrix", self.has_matrix),
                                        ("garage", self.has_garage)) if on]

    @property
    def web_hosts(self) -> list[str]:
        return [self.service_host, f"mta-sts.{self.name}", self.name,
                *(f"{label}.{self.name}" for label in self.extra_labels)]


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
    faults = domain.faults
    timers = "3600 7200 86400 172800" if "bad-soa-timers" in faults else \
        "14400 3600 1209600 3600"
    lines = [
        f"$ORIGIN {z}.",
        "$TTL 3600",
        f"@ IN SOA ns1.{z}. hostmaster.{z}. {serial} {timers}",
        f"@ IN NS ns1.{z}.",
    ]
    if "single-ns" not in faults:
        lines.append(f"@ IN NS ns2.{z}.")
    if "open-recursion" in faults:
        lines += [f"@ IN NS ns3.{z}.", f"ns3 IN A {NS3_ADDRESS}"]
    if "no-ipv6" not in faults:
        lines += [f"{label} IN AAAA {LAB_V6_ADDRESS}"
                  for label in ("ns1", "ns2", "@", "mail", "mta-sts", "www",
                                domain.service_host.split(".")[0], *domain.extra_labels)]
    if "no-caa" not in faults:
        lines.append('@ IN CAA 0 issue "lab.watchtower.test"')
    lines += [
        "ns1 IN A 127.0.0.1",
        f"ns2 IN A {NS2_ADDRESS}",
        "@ IN A 127.0.0.1",
        f"@ IN MX 10 mail.{z}.",
        f"mail IN A {mx_address(faults)}",
        *mail_policy_lines(z, faults),
        f"s1._domainkey IN TXT {dkim_txt}",
        f'_mta-sts IN TXT "v=STSv1; id={serial}"',
        f'_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@{z}"',
        "mta-sts IN A 127.0.0.1",
        "www IN A 127.0.0.1",
        f"{domain.service_host.split('.')[0]} IN A 127.0.0.1",
        *(f"{label} IN A 127.0.0.1" for label in domain.extra_labels),
    ]
    return "\n".join(lines) + "\n"


#: An RRset's place in a zone: its owner name and type.
Slot = tuple[dns.name.Name, dns.rdatatype.RdataType]


def zone_for(domain: LabDomain, dkim_txt: str, serial: int = LAB_SERIAL,
             signer: LabSigner | None = None, now: dt.datetime | None = None,
             edits: Mapping[Slot, dns.rdataset.Rdataset | None] | None = None) -> dns.zone.Zone:
    """The domain's zone, with `edits` (RRsets set or deleted through the lab's DNS API) laid
    over what its faults render, signed by `signer` unless the domain carries the `unsigned`
    fault."""
    zone = dns.zone.from_text(zone_text(domain, dkim_txt, serial), origin=domain.name + ".",
                              relativize=False, check_origin=True)
    if edits:
        with zone.writer() as txn:
            for (owner, rdtype), rds in edits.items():
                txn.delete(owner, rdtype)
                if rds is not None:
                    txn.add(owner, rds)
    if signer is not None and "unsigned" not in domain.faults:
        lifetime = RRSIG_EXPIRING if "rrsig-expiring" in domain.faults else RRSIG_LIFETIME
        signer.sign(zone, lifetime=lifetime, now=now)
    return zone


RRSIG_LIFETIME = dt.timedelta(days=30)
RRSIG_EXPIRING = dt.timedelta(hours=36)


def parent_zone(domains: list[LabDomain], signer: LabSigner | None,
                serial: int = LAB_SERIAL) -> dns.zone.Zone:
    """`test.`: delegates every lab domain (NS) and carries the DS of each signed one."""
    lines = [f"$ORIGIN {LAB_PARENT}", "$TTL 3600",
             f"@ IN SOA ns1.{LAB_PARENT} hostmaster.{LAB_PARENT} {serial} 14400 3600 1209600 3600",
             f"@ IN NS ns1.{LAB_PARENT}", f"@ IN NS ns2.{LAB_PARENT}",
             "ns1 IN A 127.0.0.1", f"ns2 IN A {NS2_ADDRESS}",
             f"ns1 IN AAAA {LAB_V6_ADDRESS}", f"ns2 IN AAAA {LAB_V6_ADDRESS}"]
    for d in domains:
        if not d.name.endswith("." + LAB_PARENT.rstrip(".")):
            continue
        owner = d.name + "."
        lines.append(f"{owner} IN NS ns1.{owner}")
        if "single-ns" not in d.faults:
            lines.append(f"{owner} IN NS ns2.{owner}")
        if "open-recursion" in d.faults:
            lines.append(f"{owner} IN NS ns3.{owner}")
        if signer is not None and "unsigned" not in d.faults:
            lines.append(f"{owner} IN DS {signer.ds(owner)}")
    zone = dns.zone.from_text("\n".join(lines) + "\n", origin=LAB_PARENT, relativize=False,
                              check_origin=True)
    if signer is not None:
        signer.sign(zone, lifetime=RRSIG_LIFETIME)
    return zone


@dataclass
class LabDns:
    """What each lab DNS address serves, and the trust anchor (zone-file text) of `test.`."""

    views: dict[str, View]
    anchor: str


def build_lab_dns(domains: list[LabDomain], dkim_txt: str, signer: LabSigner | None
                  ) -> LabDns:
    """Zones and per-address views: ns1 (127.0.0.1 and ::1), ns2 (with the lame and
    serial-mismatch faults) and ns3, the open resolver some faulty zones delegate to."""
    primary = [zone_for(d, dkim_txt, signer=signer) for d in domains]
    parent = parent_zone(domains, signer)
    second = [zone_for(d, dkim_txt, LAB_SERIAL - 1, signer) if "serial-mismatch" in d.faults
              else z for d, z in zip(domains, primary, strict=True)]
    open_axfr = {dns.name.from_text(d.name + ".") for d in domains if "open-axfr" in d.faults}
    lame = {dns.name.from_text(d.name + ".") for d in domains if "lame-ns" in d.faults}

    def view(zones: list[dns.zone.Zone], **kw: Any) -> View:
        return View(zones={z.origin: z for z in [parent, *zones] if z.origin is not None},
                    allow_axfr=set(open_axfr), **kw)

    primary = [*primary, *reverse_zones(domains)]
    views = {"127.0.0.1": view(primary), LAB_V6_ADDRESS: view(primary),
             NS2_ADDRESS: view(second, lame=lame), NS3_ADDRESS: view(primary, recursion=True)}
    anchor = ""
    if signer is not None:
        anchor = f"{LAB_PARENT} 3600 IN DNSKEY {rdata_text(signer.dnskey)}\n"
    return LabDns(views, anchor)


def reverse_zones(domains: list[LabDomain]) -> list[dns.zone.Zone]:
    """PTR records for the lab's mail addresses, so forward-confirmed reverse DNS (FCrDNS)
    holds: each address names one lab mail host, which resolves back to it."""
    from watchtower.lab.smtp import RELAY_ADDRESS, mx_address

    by_address: dict[str, str] = {}
    for d in domains:
        by_address.setdefault(mx_address(d.faults), f"mail.{d.name}.")
    if "127.0.0.1" in by_address:
        by_address.setdefault(LAB_V6_ADDRESS, by_address["127.0.0.1"])
    zones = []
    for origin, addresses in (("127.in-addr.arpa.", ("127.0.0.1", RELAY_ADDRESS)),
                              ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
                               "ip6.arpa.", (LAB_V6_ADDRESS,))):
        lines = [f"$ORIGIN {origin}", "$TTL 3600",
                 f"@ IN SOA ns1.lab.test. hostmaster.lab.test. {LAB_SERIAL} 14400 3600 "
                 "1209600 3600", "@ IN NS ns1.lab.test."]
        for address in addresses:
            if address in by_address:
                ptr = dns.reversename.from_address(address).to_text()
                lines.append(f"{ptr} IN PTR {by_address[address]}")
        zones.append(dns.zone.from_text("\n".join(lines) + "\n", origin=origin,
                                        relativize=False))
    return zones


def split_txt(value: str) -> str:
    """A long TXT value as quoted 255-byte strings, the way zone files must carry it."""
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
    return " ".join(f'"{c}"' for c in chunks)


LAB_DASHBOARD_USERS = "dashboard-users.toml"
#: The `[[dns_apis]]` entry of the lab's DNS API.
LAB_DNS_API = "lab-dns"
#: Checks of [[hosts]] entries (systemd, disks, NixOS): not for the lab's mail host entry.
def host_checks() -> list[str]:
    """Every registered check that judges a NixOS host (from the registry, so a new host check
    is switched off for the lab's non-NixOS host as well: a hand-kept list missed
    host.store-integrity, which then showed the demo an error)."""
    return sorted(cid for cid, check in registry.checks().items()
                  if TargetKind.HOST in check.meta.applies_to)


def queue_access(domain: LabDomain, base: str, secrets_dir: str) -> dict[str, Any]:
    """How fedi.queues reads each stand-in's queue: Mastodon's exporter page, PeerTube's jobs
    API with the admin token, Pixelfed's Horizon with the admin session cookie."""
    kind = domain.service_kind
    if kind == "mastodon":
        return {"metrics_url": f"{base}/metrics"}
    if kind == "peertube":
        return {"admin_token": {"$file": f"{secrets_dir}/garage-admin-token"}}
    return {"admin_url": f"{base}/horizon",
            "admin_cookie": {"$file": f"{secrets_dir}/horizon-cookie"}}


#: Seconds between the lab fleet's sweeps of each family (`watchtower lab --interval`): often,
#: so the demo shows results and flips within a minute.
LAB_INTERVAL = 60.0


def fleet_document(
    domains: list[LabDomain], *, dns_port: int, https_port: int, ca_bundle: str,
    database: str, metrics_listen: str, http_port: int = 80, secrets_dir: str | None = None,
    trust_anchors: str | None = None, smtp_port: int = 25,
    mail_host: dict[str, Any] | None = None, dns_api: tuple[str, str] | None = None,
    interval: float = LAB_INTERVAL,
) -> dict[str, Any]:
    """The fleet file (as a TOML-ready dict) that points watchtower at the running lab;
    `dns_api` is the lab DNS API's (URL, key file)."""
    port = "" if https_port == 443 else f":{https_port}"
    doc: dict[str, Any] = {
        "probe": {
            "nameservers": [f"127.0.0.1:{dns_port}"],
            "authoritative_port": dns_port,
            **({"trust_anchors": trust_anchors} if trust_anchors else {}),
            "dns_timeout": 2.0,
            "http_timeout": 5.0,
            "ca_bundle": ca_bundle,
            "jitter": 2,
            "https_port": https_port,
            "http_port": http_port,
            "smtp_port": smtp_port,
        },
        "store": {"database": database},
        "metrics": {"listen": metrics_listen},
        "zones": [_zone_entry(d, signed=trust_anchors is not None) for d in domains],
        "mail_domains": [_mail_domain_entry(d, secrets_dir) for d in domains],
        "services": _service_entries(domains, port, secrets_dir),
        "backups": _backup_entries(domains, port, secrets_dir),
        # The lab's nightly job pings `watchtower run` (watchtower/lab/cron.py).
        "heartbeats": [{"name": HEARTBEAT_NAME, "token": {"$file": f"{secrets_dir}/{TOKEN_FILE}"},
                        "period": PERIOD, "grace": GRACE}] if secrets_dir else [],
        # The lab runs every check often so the demo shows results (and flips) quickly.
        "checks": {family: {"interval": interval}
                   for family in ("dns", "web", "fedi", "matrix", "storage", "mail", "backup")},
        # Dashboard users (`watchtower demo` creates one; relative to the fleet file).
        "dashboard": {"users_file": LAB_DASHBOARD_USERS},
    }
    if mail_host is not None:
        _add_mail_host(doc, mail_host)
    if dns_api is not None:
        _add_dns_api(doc, domains, *dns_api)
    _assign_customers(doc, domains)
    return doc


def _add_dns_api(doc: dict[str, Any], domains: list[LabDomain], url: str, key_file: str
                 ) -> None:
    """The lab's zones are served through its DNS API (watchtower/lab/dnsapi.py), and DNS
    fixes wait for an operator's approval: a failing record check becomes a plan on the
    dashboard's Remediations page, applied through the API once approved."""
    doc["dns_apis"] = [{"name": LAB_DNS_API, "url": url, "api_key": {"$file": key_file},
                        "zones": [d.name for d in domains]}]
    doc["remediation"] = {"policies": {"dns.records": "approve"}}


def _zone_entry(d: LabDomain, *, signed: bool) -> dict[str, Any]:
    """Signed lab zones are declared so (the `unsigned` fault is a zone that should be);
    dns.declared: where the lab's hosts live, its CA, its name servers."""
    return {"name": d.name, "dnssec": signed,
            "default_addresses": ["127.0.0.1", LAB_V6_ADDRESS],
            "caa": ["lab.watchtower.test"],
            "nameservers": [f"ns1.{d.name}", f"ns2.{d.name}"],
            "records": [{"name": "ns1", "type": "A", "content": "127.0.0.1"},
                        {"name": "ns2", "type": "A", "content": NS2_ADDRESS},
                        *({"name": ns, "type": "AAAA", "content": LAB_V6_ADDRESS}
                          for ns in ("ns1", "ns2"))]}


def _mail_domain_entry(d: LabDomain, secrets_dir: str | None) -> dict[str, Any]:
    """The MX and the DKIM selector (with its public key, when the lab wrote one)."""
    return {"name": d.name, "dkim_selectors": ["s1"], "mx": [f"mail.{d.name}"],
            **({"dkim_keys": {"s1": {"$file": f"{secrets_dir}/dkim-s1.pub"}}}
               if secrets_dir else {})}


def _service_entries(domains: list[LabDomain], port: str, secrets_dir: str | None
                     ) -> list[dict[str, Any]]:
    """Each domain's fediverse stand-in, then the Matrix and Garage ones where it has them."""
    fedi = [{"name": d.service_host, "kind": d.service_kind,
             "base_url": f"https://{d.service_host}{port}/",
             "probe_account": d.probe_account,
             **(queue_access(d, f"https://{d.service_host}{port}", secrets_dir)
                if secrets_dir else {})}
            for d in domains]
    matrix = [{"name": f"matrix.{d.name}", "kind": "synapse", "server_name": d.name,
               "base_url": f"https://matrix.{d.name}{port}/",
               **({"metrics_url": f"https://matrix.{d.name}{port}/_synapse/metrics",
                   "admin_token": {"$file": f"{secrets_dir}/garage-admin-token"}}
                  if secrets_dir else {})}
              for d in domains if d.has_matrix]
    garage = [{"name": f"garage.{d.name}", "kind": "garage",
               "base_url": f"https://garage.{d.name}{port}/",
               "admin_url": f"https://garage.{d.name}{port}/",
               "admin_token": {"$file": f"{secrets_dir}/garage-admin-token"}}
              for d in domains if d.has_garage and secrets_dir]
    return fedi + matrix + garage


def _backup_entries(domains: list[LabDomain], port: str, secrets_dir: str | None
                    ) -> list[dict[str, Any]]:
    """The Garage domains' backup bucket (the lab's ListObjectsV2 stand-in on the Garage host)."""
    return [{"name": f"backups.garage.{d.name}", "s3_endpoint": f"https://garage.{d.name}{port}",
             "bucket": "backups", "prefix": "nightly/",
             "s3_access_key": {"$file": f"{secrets_dir}/garage-admin-token"},
             "s3_secret_key": {"$file": f"{secrets_dir}/garage-admin-token"}}
            for d in domains if d.has_garage and secrets_dir]


def _add_mail_host(doc: dict[str, Any], mail_host: dict[str, Any]) -> None:
    """The lab mail host (watchtower/lab/mailhost.py), linked from the domain it serves."""
    doc["mail_hosts"] = [mail_host]
    for entry in doc["mail_domains"]:
        if mail_host["host"] == f"mail.{entry['name']}":
            entry["mail_host"] = mail_host["name"]
    if mail_host.get("runs_on") == LAB_HOST:
        # The host its DKIM keys are read on (this machine, local transport). It is no
        # NixOS host: the host.* and drift.* checks of hosts stay off for it.
        doc["hosts"] = [{"name": LAB_HOST}]
        doc["checks"].update({c: {"disabled": True} for c in host_checks()})


def _assign_customers(doc: dict[str, Any], domains: list[LabDomain]) -> None:
    """Customers (per-customer reports, dashboard grouping): lab domains alternate between two."""
    owners = {d.name: LAB_CUSTOMERS[d.index % len(LAB_CUSTOMERS)] for d in domains}
    for section in ("zones", "mail_domains", "services"):
        for entry in doc[section]:
            host = entry["name"]
            owner = next((c for dom, c in owners.items()
                          if host == dom or host.endswith("." + dom)), None)
            if owner is not None:
                entry["customer"] = owner
