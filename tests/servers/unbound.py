"""Unbound (Debian) as the validating resolver the fleet trusts, in front of test nameservers.

DANE (RFC 7672 2.2) and the DNSSEC checks trust the AD bit of a validating resolver; PowerDNS
alone is authoritative and never sets it. Unbound here runs as the current user on a loopback
port, knows no root anchor (so every name outside an anchored zone is *insecure*, as an unsigned
zone under a signed parent would be) and sends the questions for each test zone straight to the
nameserver that serves it (one `stub-zone` per zone). Tests add zones and anchors while it runs;
each change rewrites the configuration, checks it with unbound-checkconf and reloads the server
through its control socket, which also empties the caches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

import dns.flags
import dns.message
import dns.query
import dns.rdataclass
import dns.rdatatype

from tests.servers.base import ManagedProcess, Server, ServerError, free_port, poll, run, tool

if TYPE_CHECKING:
    from tests.servers.powerdns import PowerDNS


def _quote(text: str) -> str:
    """A value in unbound.conf's double quotes; names and records never hold a quote."""
    if '"' in text or "\n" in text:
        raise ValueError(f"unexpected character in unbound.conf value {text!r}")
    return f'"{text}"'


def _absolute(zone: str) -> str:
    return zone if zone.endswith(".") else zone + "."


@dataclass
class _Zones:
    """What the resolver is told: where each zone lives and which zones are anchored."""

    stubs: dict[str, list[str]] = field(default_factory=dict)  # zone -> ["ip@port", ...]
    anchors: dict[str, list[str]] = field(default_factory=dict)  # zone -> DS/DNSKEY lines


class Unbound(Server):
    """One unbound process on a free loopback port, validating, with a unix control socket."""

    def __init__(self, workdir: Path, address: str = "127.0.0.1", *,
                 port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.address = address
        self.port = port or free_port(address, udp=True)
        self.conf_path = self.workdir / "unbound.conf"
        # Zone-file DS/DNSKEY lines: unbound's trust-anchor-file, and the fleet's
        # `[probe] trust_anchors` when a check validates for itself (dns.dnssec.*).
        self.anchors_file = self.workdir / "anchors.zone"
        self.control_path = self.workdir / "unbound.ctl"
        self.pid_path = self.workdir / "unbound.pid"
        self._zones = _Zones()
        self.process: ManagedProcess | None = None

    @property
    def server(self) -> str:
        """`host:port`, the form the fleet's `[probe] nameservers` takes."""
        return f"{self.address}:{self.port}"

    # -- configuration ------------------------------------------------------------------------

    def _config(self) -> str:
        server = [
            "server:",
            f"  interface: {self.address}",
            f"  port: {self.port}",
            "  do-ip6: no",
            "  access-control: 127.0.0.0/8 allow",
            # No root, no daemon user, no chroot: an unprivileged child of the test run.
            '  username: ""',
            '  chroot: ""',
            f"  directory: {_quote(str(self.workdir))}",
            f"  pidfile: {_quote(str(self.pid_path))}",
            "  do-daemonize: no",
            "  use-syslog: no",
            '  logfile: ""',
            "  verbosity: 1",
            "  log-servfail: yes",
            "  val-log-level: 2",
            # The test nameservers are on loopback, which unbound refuses to ask by default.
            "  do-not-query-localhost: no",
            # RFC 6761 makes .test a default local zone (NXDOMAIN for all) unless lifted.
            '  local-zone: "test." nodefault',
            # A bogus answer must be SERVFAIL, as in service; harden-* stay at their defaults.
            "  val-permissive-mode: no",
            "  module-config: \"validator iterator\"",
            "  num-threads: 1",
            "  outgoing-range: 64",
            "  num-queries-per-thread: 32",
            "  msg-cache-size: 512k",
            "  rrset-cache-size: 1m",
            "  key-cache-size: 512k",
            "  neg-cache-size: 256k",
            "  infra-cache-numhosts: 100",
            # Answers straight from a test nameserver: a failed one is retried soon.
            "  infra-host-ttl: 5",
            "  hide-identity: yes",
            # No key-tag signalling queries (RFC 8145) to the test nameservers.
            "  trust-anchor-signaling: no",
        ]
        if self._zones.anchors:
            server.append(f"  trust-anchor-file: {_quote(str(self.anchors_file))}")
        control = [
            "remote-control:",
            "  control-enable: yes",
            f"  control-interface: {_quote(str(self.control_path))}",
            "  control-use-cert: no",
        ]
        stubs: list[str] = []
        for zone, addrs in sorted(self._zones.stubs.items()):
            stubs += ["stub-zone:", f"  name: {_quote(zone)}"]
            stubs += [f"  stub-addr: {a}" for a in addrs]
        return "\n".join([*server, "", *control, "", *stubs, ""])

    def _write(self) -> None:
        lines = [line for zone in sorted(self._zones.anchors)
                 for line in self._zones.anchors[zone]]
        self.anchors_file.write_text("".join(f"{line}\n" for line in lines))
        self.conf_path.write_text(self._config())
        # A config unbound would reject fails here, with its own words, not as a dead server.
        run([tool("unbound-checkconf"), self.conf_path])

    def add_stub(self, zone: str, *servers: str) -> None:
        """Send questions for `zone` (and below) to `servers` ("ip@port"); apply() to load."""
        if not servers:
            raise ValueError("a stub zone needs at least one server")
        self._zones.stubs[_absolute(zone)] = list(servers)

    def set_anchor(self, zone: str, records: list[str]) -> None:
        """Trust `zone` through these DS or DNSKEY lines (zone-file form); apply() to load.

        An empty list removes the anchor, which makes the zone insecure again.
        """
        zone = _absolute(zone)
        if records:
            self._zones.anchors[zone] = list(records)
        else:
            self._zones.anchors.pop(zone, None)

    def add_powerdns_zone(self, pdns: PowerDNS, zone: str, *, anchored: bool) -> None:
        """Resolve `zone` through `pdns`, anchored by the DS pdns exports when `anchored`.

        Takes effect at once (rewrites the configuration and reloads the server).
        """
        self.add_stub(zone, f"{pdns.address}@{pdns.dns_port}")
        self.set_anchor(zone, pdns.export_ds(zone) if anchored else [])
        self.apply()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Write and check the configuration, start unbound, wait until it answers."""
        return self._timed_start(self._start)

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write()
        self.process = ManagedProcess(
            [tool("unbound"), "-d", "-c", self.conf_path],
            name=f"unbound-{self.address}-{self.port}",
            logdir=self.workdir,
            grace=5.0,
        ).start()
        self.process.wait_ready(self._ready, timeout=30)

    def _ready(self) -> bool:
        reply = self.query("version.server", "TXT", rdclass="CH", timeout=0.5)
        return reply.rcode() == 0

    def control(self, *args: str, check: bool = True) -> str:
        """Run unbound-control against this instance (reload, flush_zone, list_stubs...)."""
        return run([tool("unbound-control"), "-c", self.conf_path, *args], check=check).stdout

    def apply(self) -> None:
        """Load the current zones and anchors: rewrite, check, reload; caches start empty."""
        self._write()
        if self.process is None or not self.process.running:
            return
        self.control("reload")
        wanted = set(self._zones.stubs)

        def loaded() -> bool:
            listed = self.control("list_stubs", check=False)
            return all(z in listed for z in wanted) and self._ready()

        ok, last = poll(loaded, timeout=10)
        if not ok:
            raise ServerError(f"unbound did not come back after reload ({last!r})\n"
                              f"{self.process.logs()}")

    def flush(self, zone: str) -> None:
        """Forget everything cached at or below `zone` (records, keys, negative answers)."""
        self.control("flush_zone", _absolute(zone))
        self.control("flush_bogus")
        self.control("flush_negative")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    # -- asking -------------------------------------------------------------------------------

    def query(self, name: str, rdtype: str, *, rdclass: str = "IN", dnssec: bool = True,
              timeout: float = 3.0) -> dns.message.Message:
        """One recursive question to this resolver (DO and AD set, as a validating stub asks)."""
        q = dns.message.make_query(name, dns.rdatatype.from_text(rdtype),
                                   dns.rdataclass.from_text(rdclass), want_dnssec=dnssec)
        q.flags |= dns.flags.AD | dns.flags.RD
        return dns.query.udp(q, self.address, port=self.port, timeout=timeout)

    def logs(self, lines: int = 40) -> str:
        return self.process.logs(lines) if self.process else "(not started)"
