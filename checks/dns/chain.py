"""The DNSSEC chain of trust, judged from recorded RRsets: anchor -> DS -> DNSKEY -> RRSIG.

Pure (no network): `dns.dnssec.valid` gathers the RRsets from the servers and keeps them as JSON
facts; this module rebuilds them and validates every link with dnspython at the time the facts
were observed (`observed_at`), so a fixture recorded once keeps judging the same way.

The walk is the one RFC 4035 5 prescribes for a validator: the anchor (DS or DNSKEY records for
the anchor zone, `[probe] trust_anchors`) authenticates the anchor zone's DNSKEY RRset; each
zone's trusted DNSKEYs authenticate the DS RRset of the next zone down, which authenticates that
zone's DNSKEY RRset through a key it points at (RFC 4035 5.2); finally the zone's SOA RRSIG is
checked with its own keys. Outcomes (RFC 4033 5):

- secure: every link validated;
- insecure: the chain is provably broken by design (no DS at a parent, no anchor covering the
  zone, only DS digests or algorithms we do not implement, RFC 4035 5.2);
- bogus: a link that should validate does not (wrong signature, expired RRSIG, DS pointing at no
  key, DS without DNSKEY);
- unsigned: the zone serves no DNSKEY and its parent no DS;
- indeterminate: the data could not be fetched (the probe's problem: `error`).

dnspython's default policy refuses to validate some old algorithms; here every algorithm it
implements is validated (`allow_all_policy`) and weak ones are reported by the check instead, so
a zone on RSASHA1 is "secure, but warn" rather than a confusing "bogus".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import dns.dnssec
import dns.exception
import dns.name
import dns.rdataset
import dns.rdatatype
import dns.rrset

from .common import rrset_from_facts

SECURE, INSECURE, BOGUS, UNSIGNED, INDETERMINATE = (
    "secure", "insecure", "bogus", "unsigned", "indeterminate")

#: RFC 8624 3.1: MUST NOT be used for signing (RSAMD5, DSA, DSA-NSEC3-SHA1, ECC-GOST).
FORBIDDEN_ALGORITHMS = {1: "RSAMD5", 3: "DSA", 6: "DSA-NSEC3-SHA1", 12: "ECC-GOST"}
#: RFC 8624 3.1: NOT RECOMMENDED for signing (RSASHA1, RSASHA1-NSEC3-SHA1).
WEAK_ALGORITHMS = {5: "RSASHA1", 7: "RSASHA1-NSEC3-SHA1"}
RSA_ALGORITHMS = {5, 7, 8, 10}
MIN_RSA_BITS = 2048


@dataclass
class ChainOutcome:
    state: str
    reason: str
    steps: list[str] = field(default_factory=list)


def _rdataset(rrset: dns.rrset.RRset, keep: list[Any] | None = None) -> dns.rdataset.Rdataset:
    rds = dns.rdataset.Rdataset(rrset.rdclass, rrset.rdtype)
    for rd in keep if keep is not None else rrset:
        rds.add(rd, rrset.ttl)
    return rds


def _validate(rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None, signer: dns.name.Name,
              keys: dns.rdataset.Rdataset, now: float) -> str | None:
    """None when some RRSIG over `rrset` verifies with `keys`, else why not."""
    if sigs is None or len(sigs) == 0:
        return "no RRSIG"
    try:
        dns.dnssec.validate(rrset, sigs, {signer: keys}, now=now,
                            policy=dns.dnssec.allow_all_policy)
    except dns.exception.ValidationFailure as exc:
        return _explain(sigs, keys, now, str(exc))
    except Exception as exc:  # an unknown algorithm or malformed key must not crash a judgement
        return f"cannot validate: {exc}"
    return None


def _explain(sigs: dns.rrset.RRset, keys: dns.rdataset.Rdataset, now: float, why: str) -> str:
    """Turn dnspython's terse failure into the reason a person can act on."""
    tags = {dns.dnssec.key_id(k) for k in keys}
    parts = []
    for sig in sigs:
        if sig.expiration < now:
            parts.append(f"RRSIG by key {sig.key_tag} expired "
                         f"{dt.datetime.fromtimestamp(sig.expiration, dt.UTC):%Y-%m-%d %H:%M}Z")
        elif sig.inception > now:
            parts.append(f"RRSIG by key {sig.key_tag} not valid before "
                         f"{dt.datetime.fromtimestamp(sig.inception, dt.UTC):%Y-%m-%d %H:%M}Z")
        elif sig.key_tag not in tags:
            parts.append(f"RRSIG by key {sig.key_tag}, which is not a trusted key "
                         f"({', '.join(str(t) for t in sorted(tags)) or 'none'})")
        else:
            parts.append(f"RRSIG by key {sig.key_tag} does not verify")
    return "; ".join(parts) or why


def ds_matches(owner: dns.name.Name, key: Any, ds: Any) -> bool | None:
    """Whether `ds` is the digest of `key`; None when the digest type is not implemented."""
    try:
        made = dns.dnssec.make_ds(owner, key, ds.digest_type, policy=dns.dnssec.allow_all_policy)
    except (dns.exception.UnsupportedAlgorithm, ValueError, dns.exception.DNSException):
        return None
    return bool(made == ds)


def _entry_keys(owner: dns.name.Name, keys: dns.rrset.RRset, ds_rdatas: list[Any]
                ) -> tuple[list[Any], bool]:
    """Keys of `keys` that a DS points at, and whether any DS had a digest we implement."""
    supported = False
    out = []
    for key in keys:
        for ds in ds_rdatas:
            match = ds_matches(owner, key, ds)
            if match is None:
                continue
            supported = True
            if match and key not in out:
                out.append(key)
    return out, supported


def _anchor_records(lines: list[str]) -> tuple[list[Any], list[Any]]:
    """(DS rdatas, DNSKEY rdatas) from anchor lines in zone-file form."""
    ds_list: list[Any] = []
    keys: list[Any] = []
    for line in lines:
        parts = line.split(None, 4)
        if len(parts) < 5:
            continue
        name, _ttl, _class, rdtype, rdata = parts
        if rdtype not in ("DS", "DNSKEY"):  # no TTL: "name IN TYPE rdata"
            name, rdtype, rdata = parts[0], parts[2], " ".join(parts[3:])
        try:
            rr = dns.rrset.from_text(name, 0, "IN", rdtype, rdata)
        except (dns.exception.DNSException, ValueError):
            continue
        (ds_list if rdtype == "DS" else keys).extend(rr)
    return ds_list, keys


def evaluate(facts: dict[str, Any], now: dt.datetime) -> ChainOutcome:
    """Walk the recorded chain top-down; the first link that does not hold decides."""
    ts = now.timestamp()
    links: list[dict[str, Any]] = facts.get("links") or []
    undecided = _before_the_walk(facts, links)
    if undecided is not None:
        return undecided
    target = links[-1]
    anchor_ds, anchor_keys = _anchor_records(facts.get("anchor") or [])
    steps: list[str] = []
    trusted: dns.rrset.RRset | None = None
    for i, link in enumerate(links):
        parent = links[i - 1]["zone"] if i else None
        held = _link_holds(link, parent, trusted, anchor_ds, anchor_keys, steps, ts)
        if isinstance(held, ChainOutcome):
            return held
        trusted = held
    assert trusted is not None
    soa = rrset_from_facts(facts.get("soa"))
    if soa is None:
        return ChainOutcome(INDETERMINATE, "no SOA was gathered", steps)
    why = _validate(soa, rrset_from_facts(facts.get("soa_rrsig")), trusted.name,
                    _rdataset(trusted), ts)
    if why:
        return ChainOutcome(BOGUS, f"SOA of {target['zone']}: {why}", steps)
    steps.append(f"SOA of {target['zone']} signed")
    return ChainOutcome(SECURE, "chain of trust validates from "
                                f"{facts['anchor_zone']} to {target['zone']}", steps)


def _before_the_walk(facts: dict[str, Any], links: list[dict[str, Any]]) -> ChainOutcome | None:
    """The verdicts decided by the target zone alone (no data, unsigned, no anchor); None when
    the chain has to be walked."""
    if not links:
        return ChainOutcome(INDETERMINATE, "no DNSKEY data was gathered")
    target = links[-1]
    if target.get("error"):
        return ChainOutcome(INDETERMINATE, f"{target['zone']}: {target['error']}")
    if rrset_from_facts(target.get("dnskey")) is None:
        if target.get("ds"):
            return ChainOutcome(BOGUS, f"the parent publishes DS for {target['zone']} but the "
                                       "zone serves no DNSKEY")
        return ChainOutcome(UNSIGNED, f"{target['zone']} is not signed (no DNSKEY, no DS)")
    if not facts.get("anchor_zone"):
        return ChainOutcome(INSECURE, f"no trust anchor covers {target['zone']} or its parents "
                                      "([probe] trust_anchors)")
    return None


def _link_holds(link: dict[str, Any], parent: str | None, trusted: dns.rrset.RRset | None,
                anchor_ds: list[Any], anchor_keys: list[Any], steps: list[str], ts: float
                ) -> dns.rrset.RRset | ChainOutcome:
    """One zone of the walk: its entry DS (the trust anchor for the first zone, `parent`'s
    signed DS below it), then its DNSKEY RRset. The keys it trusts, or the outcome that ends
    the walk."""
    zname = link["zone"]
    owner = dns.name.from_text(zname)
    if link.get("error"):
        return ChainOutcome(INDETERMINATE, f"{zname}: {link['error']}", steps)
    keys = rrset_from_facts(link.get("dnskey"))
    key_sigs = rrset_from_facts(link.get("dnskey_rrsig"))
    if parent is None:
        ds_rdatas, source = anchor_ds, "trust anchor"
    else:
        assert trusted is not None
        signed = _signed_ds(link, parent, trusted, steps, ts)
        if isinstance(signed, ChainOutcome):
            return signed
        ds_rdatas, source = signed, "DS"
    if keys is None:
        return ChainOutcome(BOGUS, f"{zname} has a {source} but serves no DNSKEY", steps)
    failed = _keys_hold(zname, owner, keys, key_sigs, ds_rdatas, source,
                        anchor_keys if parent is None else [], steps, ts)
    return keys if failed is None else failed


def _signed_ds(link: dict[str, Any], parent: str, trusted: dns.rrset.RRset, steps: list[str],
               ts: float) -> list[Any] | ChainOutcome:
    """The DS of `link` at `parent`, validated with the parent's trusted keys."""
    zname = link["zone"]
    ds = rrset_from_facts(link.get("ds"))
    if ds is None and link.get("ds_error"):
        return ChainOutcome(INDETERMINATE, f"DS of {zname}: {link['ds_error']}", steps)
    if ds is None:
        return ChainOutcome(INSECURE, f"no DS for {zname} at its parent {parent}: "
                                      "insecure delegation", steps)
    why = _validate(ds, rrset_from_facts(link.get("ds_rrsig")), trusted.name,
                    _rdataset(trusted), ts)
    if why:
        return ChainOutcome(BOGUS, f"DS of {zname} at {parent}: {why}", steps)
    steps.append(f"DS of {zname} signed by {parent}")
    return list(ds)


def _keys_hold(zname: str, owner: dns.name.Name, keys: dns.rrset.RRset,
               key_sigs: dns.rrset.RRset | None, ds_rdatas: list[Any], source: str,
               anchor_keys: list[Any], steps: list[str], ts: float) -> ChainOutcome | None:
    """Whether the DNSKEY RRset of `zname` is signed by a key its `source` points at (a
    trust-anchor DNSKEY is trusted as it stands); None when it is."""
    if anchor_keys:
        entry = [k for k in keys if k in anchor_keys]
        supported = True
    else:
        entry, supported = _entry_keys(owner, keys, ds_rdatas)
    if not supported:
        return ChainOutcome(INSECURE, f"no {source} of {zname} uses a digest type we "
                                      "implement (RFC 4035 5.2)", steps)
    if not entry:
        tags = ", ".join(str(getattr(d, "key_tag", "?")) for d in ds_rdatas) or "none"
        return ChainOutcome(BOGUS, f"no DNSKEY of {zname} matches its {source} "
                                   f"(key tags {tags})", steps)
    why = _validate(keys, key_sigs, owner, _rdataset(keys, entry), ts)
    if why:
        return ChainOutcome(BOGUS, f"DNSKEY RRset of {zname}: {why}", steps)
    steps.append(f"DNSKEY of {zname} signed by key "
                 f"{', '.join(str(dns.dnssec.key_id(k)) for k in entry)} ({source})")
    return None


def rsa_bits(key: Any) -> int | None:
    """Modulus size of an RSA DNSKEY (RFC 3110 2: exponent length, exponent, modulus)."""
    data: bytes = key.key
    if not data:
        return None
    if data[0] == 0:
        if len(data) < 3:
            return None
        exp_len, start = int.from_bytes(data[1:3], "big"), 3
    else:
        exp_len, start = data[0], 1
    modulus = data[start + exp_len:]
    return int.from_bytes(modulus, "big").bit_length() if modulus else None
