"""The clients one sweep shares, each with its own `[probe]` timeout, and the one place where
fleet-file entries become the plain values `watchtower/net` takes.

A sweep (or a worker process of one) builds a `SweepClients`, hands every probe a
`ProbeContext` over them, and closes them at its end: the DNS cache, the HTTP connection pool,
the memoised SMTP dialogues, the SSH connections and the host facts live exactly one sweep.
Checks never build a client; the remediation engine reaches hosts and DNS APIs through
`host_access` / `open_host` and `DnsApis` below, so the mapping from config is written once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from watchtower.config import DnsApi, Fleet, Host, database_url
from watchtower.errors import ProbeTimeout
from watchtower.inventory import nixos
from watchtower.model import utcnow
from watchtower.net.deadline import remaining
from watchtower.net.dns import Resolver, Server
from watchtower.net.http import HttpClient
from watchtower.net.imap import ImapClient
from watchtower.net.managesieve import ManageSieveClient
from watchtower.net.powerdns import PowerDnsApi, PowerDnsEndpoint, holds_zone, zone_for
from watchtower.net.s3 import S3Clients
from watchtower.net.shared import SharedCalls
from watchtower.net.smtpclient import SmtpClient
from watchtower.net.tls import TlsProber
from watchtower.net.tlsscan import CONNECTION_TIMEOUT, TlsScanner
from watchtower.net.transport import HostAccess, Transport, open_transport
from watchtower.probe.api import ProbeContext, reveal
from watchtower.store import HeartbeatReader

# -- from the fleet file to net's plain values ----------------------------------------------


def host_access(host: Host) -> HostAccess:
    """How to reach a `[[hosts]]` entry. A key given as a file is used where it lies; any other
    key is read now (a `ProbeError` naming the entry when it cannot be)."""
    key_file = key_text = None
    if host.ssh is not None and host.ssh_key is not None:
        if host.ssh_key.file is not None:
            key_file = host.ssh_key.file
        else:
            key_text = reveal(host.ssh_key, f"hosts {host.name}: ssh_key")
    return HostAccess(host.name, host.ssh, host.known_hosts, key_file, key_text, dict(host.env),
                      host.connect_timeout, host.ssh_binary)


def open_host(host: Host) -> contextlib.AbstractContextManager[Transport]:
    """A transport to `host` for as long as the `with` block (local, or one SSH connection)."""
    return open_transport(host_access(host))


def dns_api_endpoint(api: DnsApi, timeout: float) -> PowerDnsEndpoint:
    """A `[[dns_apis]]` entry as net's endpoint, its key read now."""
    return PowerDnsEndpoint(api.name, api.url, reveal(api.api_key, f"dns_apis {api.name}: "
                                                      "api_key"),
                            api.server_id, tuple(api.zones), timeout)


class DnsApis:
    """The fleet's DNS server APIs (`ctx.dns_api`), chosen by zone or name; each client is made
    when asked for, so a key is read at the moment of use and a reloaded fleet file counts."""

    def __init__(self, apis: list[DnsApi], timeout: float) -> None:
        self.apis = apis
        self.timeout = timeout

    def named(self, name: str | None) -> PowerDnsApi | None:
        api = next((a for a in self.apis if a.name == name), None)
        return None if api is None else self._client(api)

    def for_zone(self, zone: str) -> PowerDnsApi | None:
        """The API whose zones hold exactly `zone` (a zone is managed whole by one API), else
        one of whose zones contains it."""
        api = next((a for a in self.apis if holds_zone(a.zones, zone)), None) or next(
            (a for a in self.apis if zone_for(a.zones, zone) is not None), None)
        return None if api is None else self._client(api)

    def for_name(self, name: str) -> tuple[PowerDnsApi, str] | None:
        """The first API with a zone containing `name`, and that zone."""
        for api in self.apis:
            zone = zone_for(api.zones, name)
            if zone is not None:
                return self._client(api), zone
        return None

    def _client(self, api: DnsApi) -> PowerDnsApi:
        return PowerDnsApi(dns_api_endpoint(api, self.timeout))


# -- facts several checks derive from one observation ---------------------------------------

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Observed:
    """A fact as first observed in this sweep, and when that observation started (UTC)."""

    value: Any
    at: dt.datetime


class SharedFacts:
    """Facts that several checks of one sweep derive from the same observation (`ctx.once`):
    the SPF evaluation the three mail.spf.* checks judge, a zone's DNSSEC chain, an endpoint's
    certificate handshake, an instance's NodeInfo documents.

    Keyed by what was observed (e.g. `("spf", domain)`); the first probe to ask computes the
    fact within its own deadline, the others wait (within theirs) and get the same value with
    the time it was observed. A failure is not kept: the next asker, with its own deadline,
    observes again. Lives exactly one sweep, like the clients it sits beside (a fact of the
    previous sweep is never reused), so no module-level cache and no invalidation.
    """

    def __init__(self) -> None:
        self._calls = SharedCalls(keep_errors=False)

    @property
    def stats(self) -> dict[str, int]:
        """Observations made (misses) and reused (hits) so far."""
        return {"hits": self._calls.hits, "misses": self._calls.misses}

    def observe(self, key: tuple[Hashable, ...], compute: Callable[[], T],
                deadline: float | None, cap: float) -> Observed:
        """The `Observed` fact for `key`; a waiter gives up at its deadline (`ProbeTimeout`)."""
        def first() -> Observed:
            at = utcnow()
            return Observed(compute(), at)

        wait = remaining(deadline, cap)
        try:
            observed: Observed = self._calls.get(key, first, wait=wait)
        except TimeoutError:  # another probe is observing, past our own deadline
            raise ProbeTimeout(f"{key[0]} of {key[1:]}: not observed within {wait:.1f}s"
                               ) from None
        return observed


# -- hosts: one transport and one set of facts per host per sweep ---------------------------


class Hosts:
    """Commands on fleet hosts for one sweep (`ctx.hosts`), and the facts its probes share.

    One transport per host for the sweep (an SSH connection is multiplexed: the handshake is
    paid once, not per check), closed with the sweep. `system_state` (where the current and
    booted systems point) is asked once per host per sweep however many drift checks read it,
    and a store path's closure once per path: both are the same for every asker of one sweep.
    A failure is not kept: the next check, with its own deadline, asks again.
    """

    def __init__(self, timeout: float) -> None:
        #: Seconds one command may take (`[probe] ssh_timeout`), within the probe's deadline.
        self.timeout = timeout
        self._lock = threading.Lock()
        self._open: dict[str, Transport] = {}
        self._stack = contextlib.ExitStack()
        self._facts = SharedFacts()

    def budget(self, deadline: float | None) -> float:
        """Seconds the next command may take: the command timeout or what is left, if less."""
        return remaining(deadline, self.timeout)

    def transport(self, host: Host) -> Transport:
        """The sweep's transport to `host`, opened on first use."""
        with self._lock:
            t = self._open.get(host.name)
            if t is None:
                t = self._stack.enter_context(open_host(host))
                self._open[host.name] = t
            return t

    def system_state(self, host: Host, deadline: float | None) -> dict[str, Any]:
        """`watchtower.inventory.nixos.system_state`, once per host per sweep (a copy)."""
        state: dict[str, Any] = self._shared(("system_state", host.name), deadline,
                                             lambda: nixos.system_state(
                                                 self.transport(host), host,
                                                 self.budget(deadline)))
        return dict(state)

    def closure(self, host: Host, path: str, deadline: float | None) -> list[str]:
        """`watchtower.inventory.nixos.closure` of `path`, once per host and path per sweep."""
        paths: list[str] = self._shared(("closure", host.name, path), deadline,
                                        lambda: nixos.closure(self.transport(host), host, path,
                                                              self.budget(deadline)))
        return list(paths)

    def _shared(self, key: tuple[Hashable, ...], deadline: float | None,
                compute: Callable[[], Any]) -> Any:
        return self._facts.observe(key, compute, deadline, self.timeout).value

    def close(self) -> None:
        with self._lock:
            self._open.clear()
            self._stack.close()


# -- the sweep's set ------------------------------------------------------------------------


class SweepClients:
    """Every network client one sweep shares (and so its DNS cache and connection pools)."""

    def __init__(self, fleet: Fleet) -> None:
        s = fleet.probe
        servers = [Server.parse(n) for n in s.nameservers] or system_nameservers()
        self.fleet = fleet
        self.dns = Resolver(servers, s.dns_timeout, authoritative_port=s.authoritative_port)
        self.http = HttpClient(self.dns, ca_bundle=s.ca_bundle, timeout=s.http_timeout,
                               max_body=s.max_body_bytes)
        self.tls = TlsProber(self.dns, ca_bundle=s.ca_bundle, timeout=s.tls_timeout)
        self.tls_scan = TlsScanner(self.dns, ca_bundle=s.ca_bundle,
                                   timeout=min(s.tls_timeout, CONNECTION_TIMEOUT))
        self.smtp = SmtpClient(self.tls, timeout=s.smtp_timeout, scanner=self.tls_scan)
        self.imap = ImapClient(ca_bundle=s.ca_bundle, timeout=s.imap_timeout)
        self.sieve = ManageSieveClient(ca_bundle=s.ca_bundle, timeout=s.sieve_timeout)
        self.s3 = S3Clients(self.http, timeout=s.s3_timeout)
        self.hosts = Hosts(s.ssh_timeout)
        self.dns_api = DnsApis(fleet.dns_apis, s.dns_api_timeout)
        #: The one read of the store a probe may make (heartbeat.ping), opened when first used.
        self.heartbeats = HeartbeatReader(database_url(fleet.store))
        #: What several checks derive from one observation, once per sweep (`ctx.once`).
        self.shared = SharedFacts()

    def context(self, deadline: float) -> ProbeContext:
        return ProbeContext(self.fleet, self.dns, self.http, self.tls, self.tls_scan, self.smtp,
                            self.imap, self.sieve, self.s3, self.hosts, self.dns_api,
                            self.shared, deadline, self.heartbeats)

    def close(self) -> None:
        self.hosts.close()
        self.http.close()
        self.dns.close()

    def __enter__(self) -> SweepClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def system_nameservers() -> list[Server]:
    """Fall back to /etc/resolv.conf when the fleet file names no resolver."""
    out: list[Server] = []
    try:
        with open("/etc/resolv.conf") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append(Server(parts[1]))
    except OSError:
        pass
    return out or [Server("127.0.0.1")]

