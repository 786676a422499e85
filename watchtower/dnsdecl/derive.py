"""Which records a zone must serve, derived from the fleet file.

watchtower already knows the fleet: which services run under which host names, which domains
send mail and through which MX, which DKIM selectors sign, which Matrix server names delegate.
So it can say exactly which records must exist, instead of a person keeping a zone file and the
fleet file in step by hand. Per zone (the most specific `[[zones]]` entry holding a name):

- A/AAAA (or a CNAME) for every service host name, the hosts serving its discovery files (a
  Matrix server name's `.well-known`, a fediverse account domain's WebFinger), every MX host and
  every `mta-sts.` host; addresses from the service, its `[[hosts]]` entry, the `[[mail_hosts]]`
  entry, else the zone's `default_addresses`. A name with no known address is listed as
  unlocated, not guessed.
- Per mail domain: MX (null MX for a non-sending domain, RFC 7505), SPF (RFC 7208), DMARC (RFC
  7489), each DKIM selector's public key (RFC 6376 3.6.1), MTA-STS TXT (RFC 8461 3.1, any policy
  id matches), TLS-RPT (RFC 8460 3) and, with DANE, a `3 1 1` TLSA of each MX's served key
  (RFC 7672 3.1.1, RFC 7671 5.1).
- Matrix: SRV `_matrix-fed._tcp.<server name>` when delegation is by SRV (Matrix server-server
  API, Resolving server names, step 4).
- NS at the apex from `[[zones]] nameservers`, when given (RFC 1034 4.2.1).
- CAA (RFC 8659 4.2): the zone's `caa` issuers, else the CA of the certificates it serves.
- Records declared by hand (`[[zones]] records`); they replace derived ones of the same name and
  type (TXT: of the same kind), so a person can always say "not like that".

Derivation is pure: what needs the network (the served certificates, for TLSA and CAA) comes in
as `Observed`, gathered by `watchtower.dnsdecl.observe`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from watchtower.config import Fleet, MailDomain, Secret, Service, Zone
from watchtower.dnsdecl.records import Record, absolute, quote_txt, txt_kind, txt_value
from watchtower.errors import ConfigError


@dataclass
class Observed:
    """What derivation needs from the network: `tlsa` maps an MX host to its TLSA contents,
    `caa` the issuer domains of the CAs whose certificates the zone serves."""

    tlsa: dict[str, list[str]] = field(default_factory=dict)
    caa: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Wants:
    """The probes derivation needs for one zone: MX hosts (DANE) and web hosts (CAA)."""

    mx_hosts: list[str] = field(default_factory=list)
    web_hosts: list[str] = field(default_factory=list)


@dataclass
class Declaration:
    zone: str
    records: list[Record]
    unlocated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


_zone_index: dict[int, tuple[Fleet, dict[str, Zone]]] = {}


def _zones_by_name(fleet: Fleet) -> dict[str, Zone]:
    """Zone name -> entry, built once per fleet object: a 1,000-zone sweep asks per name."""
    cached = _zone_index.get(id(fleet))
    if cached is not None and cached[0] is fleet:
        return cached[1]
    index = {z.name: z for z in fleet.zones}
    if len(_zone_index) > 8:
        _zone_index.clear()
    _zone_index[id(fleet)] = (fleet, index)
    return index


def zone_of(fleet: Fleet, name: str) -> Zone | None:
    """The most specific fleet zone containing `name` (walks up the labels)."""
    index = _zones_by_name(fleet)
    labels = name.lower().rstrip(".").split(".")
    for i in range(len(labels)):
        zone = index.get(".".join(labels[i:]))
        if zone is not None:
            return zone
    return None


def find_zone(fleet: Fleet, name: str) -> Zone | None:
    return _zones_by_name(fleet).get(name.lower().rstrip("."))


_users_index: dict[int, tuple[Fleet, dict[str, tuple[list[Service], list[MailDomain]]]]] = {}


def _users(fleet: Fleet, zone: Zone) -> tuple[list[Service], list[MailDomain]]:
    """The services and mail domains with a name in `zone`, indexed once per fleet object so
    a sweep over many zones does not scan the whole fleet per zone."""
    cached = _users_index.get(id(fleet))
    if cached is None or cached[0] is not fleet:
        index: dict[str, tuple[list[Service], list[MailDomain]]] = {}

        def owners(names: Iterable[str]) -> set[str]:
            return {z.name for z in (zone_of(fleet, n) for n in names) if z is not None}

        for s in fleet.services:
            names = [s.hostname, *s.delegation_hosts(), *([s.server_name] if s.server_name
                                                          else [])]
            for zname in owners(names):
                index.setdefault(zname, ([], []))[0].append(s)
        for m in fleet.mail_domains:
            for zname in owners([m.name, *_mx_hosts(fleet, m)]):
                index.setdefault(zname, ([], []))[1].append(m)
        if len(_users_index) > 8:
            _users_index.clear()
        cached = (fleet, index)
        _users_index[id(fleet)] = cached
    return cached[1].get(zone.name, ([], []))


def _mx_hosts(fleet: Fleet, m: MailDomain) -> list[str]:
    if m.mx:
        return [absolute(h) for h in m.mx]
    host = next((mh for mh in fleet.mail_hosts if mh.name == m.mail_host), None)
    return [absolute(host.host)] if host is not None else []


def wants(fleet: Fleet, zone: Zone) -> Wants:
    """Which certificates must be seen before the zone's records can be derived."""
    out = Wants()
    for m in fleet.mail_domains:
        if m.dane and m.sending:
            out.mx_hosts += [h for h in _mx_hosts(fleet, m) if _in(h, zone, fleet)]
    if not zone.caa:
        for host in _web_hosts(fleet):
            if _in(host, zone, fleet):
                out.web_hosts.append(host)
    return out


def _web_hosts(fleet: Fleet) -> list[str]:
    hosts: list[str] = []
    for s in fleet.services:
        hosts += [absolute(s.hostname), *(absolute(h) for h in s.delegation_hosts())]
    return list(dict.fromkeys(hosts))


def _in(name: str, zone: Zone, fleet: Fleet) -> bool:
    owner = zone_of(fleet, name)
    return owner is not None and owner.name == zone.name


class _Builder:
    """Collects records for one zone, skipping names that belong to another zone."""

    def __init__(self, fleet: Fleet, zone: Zone) -> None:
        self.fleet = fleet
        self.zone = zone
        self.origin = zone.name + "."
        self.records: list[Record] = []
        self.unlocated: list[str] = []
        self.problems: list[str] = []
        self._located: set[str] = set()

    def add(self, name: str, rtype: str, content: str, why: str, *, flexible: str | None = None,
            ttl: int | None = None) -> None:
        owner = absolute(name, self.origin)
        if not _in(owner, self.zone, self.fleet):
            return
        record = Record(owner, rtype, content, ttl or self.zone.record_ttl, why, flexible)
        if not any(r == record for r in self.records):
            self.records.append(record)

    def txt(self, name: str, value: str, why: str, *, flexible: str | None = None) -> None:
        self.add(name, "TXT", quote_txt(value), why, flexible=flexible)

    def locate(self, host: str, addresses: Iterable[str], cname: str | None, why: str) -> None:
        """A/AAAA (or CNAME) for `host`; the first source to place a host wins."""
        owner = absolute(host)
        if owner in self._located or not _in(owner, self.zone, self.fleet):
            return
        addresses = list(addresses) or list(self.zone.default_addresses)
        if cname:
            self._located.add(owner)
            self.add(owner, "CNAME", absolute(cname), why)
            return
        if not addresses:
            self.unlocated.append(f"{owner} ({why}): no address known")
            return
        self._located.add(owner)
        for address in addresses:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                self.problems.append(f"{owner}: {address!r} is not an IP address")
                continue
            self.add(owner, "A" if ip.version == 4 else "AAAA", str(ip), why)


def derive(fleet: Fleet, zone: Zone, observed: Observed | None = None,
           now: dt.datetime | None = None) -> Declaration:
    """Every record the fleet needs in `zone` (see the module docstring)."""
    observed = observed or Observed()
    b = _Builder(fleet, zone)
    b.problems += observed.problems
    hosts = {h.name: h for h in fleet.hosts}
    services, mail_domains = _users(fleet, zone)
    for s in services:
        host = hosts.get(s.host) if s.host else None
        addresses = s.addresses or (host.addresses if host is not None else [])
        b.locate(s.hostname, addresses, s.cname, f"service {s.name}")
    for s in services:
        for other in s.delegation_hosts():
            b.locate(other, [], None, f"discovery files of {s.name}")
        _matrix(b, s.kind, s.server_name, s.base_url, s.hostname, s.matrix_delegation, s.name)
    for m in mail_domains:
        _mail(b, fleet, m, observed, now or dt.datetime.now(dt.UTC))
    for ns in zone.nameservers:
        b.add("@", "NS", absolute(ns), "zone nameservers")
    caa = zone.caa or observed.caa
    for issuer in dict.fromkeys(caa):
        b.add("@", "CAA", f'0 issue "{issuer}"',
              "zone caa" if zone.caa else "CA of the served certificates")
    if not caa:
        b.unlocated.append(f"{b.origin} CAA: no issuer declared and no certificate seen")
    records = _with_hand_records(b, zone)
    return Declaration(zone.name, sorted(records), b.unlocated, b.problems)


def _matrix(b: _Builder, kind: str, server_name: str | None, base_url: str, hostname: str,
            delegation: str, name: str) -> None:
    if kind != "synapse" or not server_name or delegation == "well-known":
        return
    if re.search(r":\d+$", server_name) or server_name.endswith("]"):
        return  # an explicit port: servers connect directly, no SRV is consulted
    port = urlsplit(base_url).port or 443
    b.add(f"_matrix-fed._tcp.{server_name}.", "SRV", f"10 0 {port} {absolute(hostname)}",
          f"Matrix delegation of {name}")


def _mail(b: _Builder, fleet: Fleet, m: MailDomain, observed: Observed, now: dt.datetime
          ) -> None:
    domain = m.name + "."
    why = f"mail domain {m.name}"
    mx = _mx_hosts(fleet, m)
    if not _in(domain, b.zone, fleet) and not any(_in(h, b.zone, fleet) for h in mx):
        return  # nothing of this domain lives in the zone: skip reading its DKIM keys
    if not m.sending:
        b.add(domain, "MX", "0 .", f"{why} (sends no mail: null MX)")
    for i, host in enumerate(mx if m.sending else []):
        b.add(domain, "MX", f"{10 * (i + 1)} {host}", why)
        mail_host = next((mh for mh in fleet.mail_hosts if absolute(mh.host) == host), None)
        b.locate(host, mail_host.addresses if mail_host else [], None, f"MX of {m.name}")
        if m.dane:
            port = fleet.probe.smtp_port
            for content in observed.tlsa.get(host, []):
                b.add(f"_{port}._tcp.{host}", "TLSA", content, f"DANE for MX {host}")
            if _in(host, b.zone, fleet) and not observed.tlsa.get(host):
                b.unlocated.append(f"_{port}._tcp.{host} TLSA: no certificate seen on the MX")
    b.txt(domain, m.spf or ("v=spf1 mx -all" if m.sending else "v=spf1 -all"), why)
    b.txt(f"_dmarc.{domain}",
          m.dmarc or f"v=DMARC1; p=reject; rua=mailto:dmarc-reports@{m.name}", why)
    if not m.sending:
        return
    for selector, key in sorted(m.dkim_keys.items()):
        try:
            value = dkim_record(key)
        except (ValueError, ConfigError) as exc:
            b.problems.append(f"{m.name} DKIM selector {selector}: {_reason(exc)}")
            continue
        b.txt(f"{selector}._domainkey.{domain}", value, f"DKIM selector {selector}")
    if m.mta_sts:
        b.txt(f"_mta-sts.{domain}", f"v=STSv1; id={now:%Y%m%d%H%M}", why, flexible="mta-sts-id")
        b.locate(f"mta-sts.{domain}", [], None, f"MTA-STS policy host of {m.name}")
    b.txt(f"_smtp._tls.{domain}",
          m.tls_rpt or f"v=TLSRPTv1; rua=mailto:tls-reports@{m.name}", why)


def _reason(exc: Exception) -> str:
    return exc.problems[0] if isinstance(exc, ConfigError) else str(exc)


def _with_hand_records(b: _Builder, zone: Zone) -> list[Record]:
    """Hand-declared records replace derived ones of the same name and type (TXT: kind)."""
    hand: list[Record] = []
    for r in zone.records:
        content = r.content
        if r.type == "TXT" and not content.lstrip().startswith('"'):
            content = quote_txt(content)
        owner = absolute(r.name, b.origin)
        hand.append(Record(owner, r.type, content, r.ttl or zone.record_ttl, "declared by hand"))

    def replaced(d: Record) -> bool:
        for h in hand:
            if (h.name, h.type) != (d.name, d.type):
                continue
            if d.type != "TXT" or txt_kind(txt_value(h.content)) == txt_kind(txt_value(d.content)):
                return True
        return False

    return [*(d for d in b.records if not replaced(d)), *hand]


def dkim_record(key: str | Secret) -> str:
    """The DKIM key record for a configured key: an inline base64 `p=`, or a file holding a PEM
    public or private key, or the TXT record opendkim-genkey writes."""
    text = key.reveal() if isinstance(key, Secret) else key
    if "-----BEGIN" in text:
        return _from_pem(text.encode())
    if "p=" in text:
        strings = re.findall(r'"((?:[^"\\]|\\.)*)"', text)
        joined = "".join(strings) if strings else text
        tags = dict(_tags(joined))
        if not tags.get("p"):
            raise ValueError("no p= tag in the key record")
        return f"v=DKIM1; k={tags.get('k', 'rsa')}; p={tags['p']}"
    raw = "".join(text.split())
    try:
        der = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64, PEM or a DKIM TXT record") from exc
    return f"v=DKIM1; k={'ed25519' if len(der) == 32 else 'rsa'}; p={raw}"


def _tags(record: str) -> Iterable[tuple[str, str]]:
    for part in record.split(";"):
        tag, sep, value = part.partition("=")
        if sep:
            yield tag.strip().lower(), "".join(value.split())


def _from_pem(pem: bytes) -> str:
    if b"PRIVATE KEY" in pem:
        public = serialization.load_pem_private_key(pem, None).public_key()
    else:
        public = serialization.load_pem_public_key(pem)
    if isinstance(public, ed25519.Ed25519PublicKey):  # RFC 8463 3: the raw 32-byte key
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("DKIM keys are RSA or Ed25519")
    spki = public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"
