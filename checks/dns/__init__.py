"""dns.* checks (per zone): delegation, authority, consistency, SOA, DNSSEC, CAA, IPv6.

One module per topic; importing this package registers every check in it. All of them reach the
network through the sweep's shared `watchtower.net.dns.Resolver`, so the checks of one sweep
share one DNS cache (the NS set and each per-server question cost one query per sweep).
"""

from __future__ import annotations

from . import caa, delegation, dnssec, ipv6, soa

__all__ = ["caa", "delegation", "dnssec", "ipv6", "soa"]
