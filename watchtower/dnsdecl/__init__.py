"""Declared DNS: the records the fleet needs, derived from the fleet file, compared with what the
name servers serve, exported for other tools and fixed through the DNS API.

- `derive`: fleet file (+ certificates seen) -> the records each zone must serve;
- `observe`: the network half of derivation (TLSA and CAA depend on served certificates);
- `compare`: declared vs served -> missing / different / extra, per server (pure);
- `plan`: declared vs the zone's RRsets in the DNS API -> one PATCH, and its exact undo;
- `export`: octoDNS YAML and RFC 1035 zone files.
The `dns.declared` check, the `watchtower dns` command and the `dns.records` remediation are
thin users of these.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from watchtower.config import Fleet, Zone
from watchtower.dnsdecl.derive import Declaration, Observed, derive

if TYPE_CHECKING:
    from watchtower.probe.api import ProbeContext


def declare(fleet: Fleet, zone: Zone, ctx: ProbeContext | None = None) -> Declaration:
    """The zone's declared records; with `ctx`, the certificates TLSA/CAA need are probed."""
    if ctx is None:
        return derive(fleet, zone, Observed())
    from watchtower.dnsdecl.observe import observe

    return derive(fleet, zone, observe(fleet, zone, ctx))


@contextmanager
def probe_context(fleet: Fleet, seconds: float = 60.0) -> Iterator[ProbeContext]:
    """A one-off ProbeContext outside a sweep (the CLI and the remediation planner)."""
    from watchtower.probe.clients import SweepClients

    with SweepClients(fleet) as clients:
        yield clients.context(time.monotonic() + seconds)
