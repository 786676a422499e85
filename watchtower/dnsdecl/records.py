"""One declared DNS record, and the canonical form records are compared in.

The same record reaches us in several spellings: from the fleet file (unquoted TXT), from a
name server's reply (dnspython presentation text, TXT split into 255-byte strings), from the
PowerDNS API (quoted TXT, absolute names). Comparing spellings would report differences that
are not there, so every content goes through `record_key`: the TXT strings joined (RFC 7208
3.3 and RFC 6376 3.6.2.2 read them joined), other types parsed by dnspython and printed again
with absolute, lower-case names.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

#: Types whose every record at a declared name is managed: an undeclared one there is extra.
ADDRESS_TYPES = ("A", "AAAA", "CNAME")
#: MTA-STS (RFC 8461 3.1): the policy id changes with each policy; any valid id is as good.
STS_RECORD = re.compile(r"^v=STSv1;\s*id=[A-Za-z0-9]{1,32};?\s*$")


def absolute(name: str, origin: str | None = None) -> str:
    """`name` as an absolute, lower-case name; relative names (and `@`) are under `origin`."""
    name = name.strip().lower()
    if name.endswith("."):
        return name
    if origin is None:
        return name + "."
    origin = origin.lower().rstrip(".") + "."
    return origin if name in ("", "@") else f"{name}.{origin}"


def quote_txt(value: str) -> str:
    """A TXT value in presentation form: quoted strings of at most 255 bytes (RFC 1035 3.3.14),
    quotes and backslashes escaped."""
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def parse(rtype: str, content: str, origin: str | None = None) -> dns.rdata.Rdata:
    """Parse presentation text (raises dns.exception.DNSException or ValueError)."""
    org = dns.name.from_text(origin) if origin else dns.name.root
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), content,
                               origin=org, relativize=False)


def txt_value(content: str) -> str:
    """The joined strings of a TXT presentation text; unparsable text is taken as it is."""
    try:
        rd = parse("TXT", content)
    except (dns.exception.DNSException, ValueError):
        return content
    return b"".join(getattr(rd, "strings", ())).decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=8192)
def record_key(rtype: str, content: str) -> str:
    """The canonical form two spellings of one record share (see the module docstring).
    Memoised: a comparison asks for the key of one record once per record it is held against,
    and dnspython's parse of presentation text was most of dns.declared's judgement."""
    if rtype == "TXT":
        return txt_value(content)
    try:
        text = parse(rtype, content).to_text()
    except (dns.exception.DNSException, ValueError):
        text = content.strip()
    return text if rtype in ("CAA",) else text.lower()


def txt_kind(value: str) -> str:
    """What a TXT record is, so one SPF record is compared with the other SPF record and not with
    a site-verification token at the same name: its version tag (`v=spf1`, `v=dmarc1`...), DKIM
    for a key record without `v=`, else the whole value (it only matches itself)."""
    head = value.strip().split(";", 1)[0].split(" ", 1)[0].strip().lower()
    if head.startswith("v="):
        return head
    if re.search(r"(^|;)\s*p=", value):
        return "v=dkim1"
    return value


@dataclass(frozen=True, order=True)
class Record:
    """A record the fleet needs: absolute owner name, type, presentation content, TTL; `why`
    says which part of the fleet needs it (the evidence a person reads); `flexible` names a
    looser match (`"mta-sts-id"`: any valid policy id)."""

    name: str
    type: str
    content: str
    ttl: int = 3600
    why: str = field(default="", compare=False)
    flexible: str | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return record_key(self.type, self.content)

    def satisfied_by(self, served_key: str) -> bool:
        if served_key == self.key:
            return True
        return self.flexible == "mta-sts-id" and bool(STS_RECORD.match(served_key))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "content": self.content,
                               "ttl": self.ttl, "why": self.why}
        if self.flexible:
            out["flexible"] = self.flexible
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        return cls(str(data["name"]), str(data["type"]).upper(), str(data["content"]),
                   int(data.get("ttl", 3600)), str(data.get("why", "")),
                   data.get("flexible"))

    def zone_line(self) -> str:
        return f"{self.name} {self.ttl} IN {self.type} {self.content}"
