"""DNSSEC trust anchors: the root's key by default, or the fleet's file (`[probe]
trust_anchors`), read once per file version."""

from __future__ import annotations

import threading
from pathlib import Path

import dns.exception
import dns.name
import dns.rdatatype
import dns.zone

from watchtower.errors import ProbeError

#: The root zone's key-signing key (KSK-2017, key tag 20326) as IANA publishes it in
#: https://data.iana.org/root-anchors/root-anchors.xml: the default anchor when the fleet file
#: names none, so public zones validate from the root like any validating resolver does.
ROOT_ANCHOR = ". 172800 IN DS 20326 8 2 " \
    "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"

_anchor_cache: dict[tuple[str, float], dict[str, list[str]]] = {}
_anchor_lock = threading.Lock()


def load_trust_anchors(path: str | None) -> dict[str, list[str]]:
    """Trust anchors by zone (`{"test.": ["test. 3600 IN DS ..."]}`), from a zone-file-format
    file of DS and/or DNSKEY records (`[probe] trust_anchors`), or the root KSK when unset.

    Read once per file version (keyed by modification time) because every zone of every sweep
    asks for them. A missing or unreadable file is a ProbeError: validating against no anchor
    would report every zone insecure, which is the probe's fault, not the zones'.
    """
    if path is None:
        return {".": [ROOT_ANCHOR]}
    try:
        mtime = Path(path).stat().st_mtime
        key = (path, mtime)
        with _anchor_lock:
            cached = _anchor_cache.get(key)
        if cached is not None:
            return cached
        text = Path(path).read_text()
    except OSError as exc:
        raise ProbeError(f"trust anchor file {path}: {exc.strerror}", kind="config") from exc
    try:
        # A default TTL: `pdnsutil export-zone-ds` and IANA's anchors carry none.
        zone = dns.zone.from_text("$TTL 3600\n" + text, origin=dns.name.root,
                                  relativize=False, check_origin=False)
    except dns.exception.DNSException as exc:
        raise ProbeError(f"trust anchor file {path}: {exc}", kind="config") from exc
    anchors: dict[str, list[str]] = {}
    for name, rdataset in zone.iterate_rdatasets():
        if rdataset.rdtype in (dns.rdatatype.DS, dns.rdatatype.DNSKEY):
            anchors.setdefault(name.to_text(), []).extend(rdataset.to_text(name).splitlines())
    if not anchors:
        raise ProbeError(f"trust anchor file {path}: no DS or DNSKEY records", kind="config")
    with _anchor_lock:
        _anchor_cache[key] = anchors
    return anchors
