"""PowerDNS Authoritative (Debian pdns-server + gsqlite3) as a private test nameserver.

The DNS checks (delegation, DNSSEC chain, SPF/DMARC/DKIM records, consistency across
nameservers) need a real authoritative server that signs zones and that tests can change while
it runs; PowerDNS does both through its HTTP API and pdnsutil. Caches are turned off so a
change made by a test is visible to the very next query.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import requests

from tests.servers.base import (
    ManagedProcess,
    Server,
    ServerError,
    free_port,
    port_is_free,
    run,
    tool,
)

SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")

Record = tuple[str, str, int, str]
"""(name, type, ttl, content); name may be absolute ("www.example.test."), relative ("www")
or "@" for the zone apex. Content is in zone-file form (TXT carries its quotes)."""


def absolute(name: str, zone: str) -> str:
    """Turn a record name relative to zone (or '@') into the absolute, dotted form pdns wants."""
    zone = canonical(zone)
    if name in ("@", "", zone):
        return zone
    if name.endswith("."):
        return name
    return f"{name}.{zone}"


def canonical(zone: str) -> str:
    """Zone names in the API always end with a dot."""
    return zone if zone.endswith(".") else zone + "."


def _strip_comment(line: str) -> str:
    """pdnsutil appends '; ( SHA256 digest )' style comments; keep only the record text."""
    return line.split(";", 1)[0].strip()


def txt(value: str) -> str:
    """Quote a TXT value for PowerDNS, splitting it into 255-byte strings (DKIM keys need it)."""
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


class PowerDNS(Server):
    """One pdns_server with its own sqlite database, config dir and free ports.

    Several can run side by side (different addresses, or the same address on different
    ports), which the nameserver-consistency and lame-delegation tests need.
    """

    def __init__(
        self,
        workdir: Path,
        address: str = "127.0.0.1",
        *,
        dns_port: int | None = None,
        api_port: int | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.address = address
        self.dns_port = dns_port or free_port(address, udp=True)
        self.api_port = api_port or free_port(address)
        self.api_key = secrets.token_hex(16)
        self.api_url = f"http://{address}:{self.api_port}/api/v1"
        self.db_path = self.workdir / "pdns.sqlite3"
        self.conf_path = self.workdir / "pdns.conf"
        self._session = requests.Session()
        self._session.headers["X-API-Key"] = self.api_key
        self.process: ManagedProcess | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def _config(self) -> str:
        return "\n".join(
            [
                "launch=gsqlite3",
                f"gsqlite3-database={self.db_path}",
                "gsqlite3-dnssec=yes",
                f"local-address={self.address}",
                f"local-port={self.dns_port}",
                f"socket-dir={self.workdir}",
                "api=yes",
                f"api-key={self.api_key}",
                "webserver=yes",
                f"webserver-address={self.address}",
                f"webserver-port={self.api_port}",
                "webserver-allow-from=127.0.0.0/8",
                "default-soa-content=ns1.@ hostmaster.@ 0 10800 3600 604800 3600",
                "security-poll-suffix=",
                # Tests change zones and query straight away: no caching anywhere.
                "zone-cache-refresh-interval=0",
                "cache-ttl=0",
                "query-cache-ttl=0",
                "negquery-cache-ttl=0",
                "dnssec-key-cache-ttl=0",
                "zone-metadata-cache-ttl=0",
                "distributor-threads=1",
                "receiver-threads=1",
                "",
            ]
        )

    def start(self) -> Self:
        """Create the database and config, start pdns_server, wait for its API and DNS port."""
        return self._timed_start(self._start)

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.db_path.exists():
            run([tool("sqlite3"), self.db_path, f".read {SCHEMA}"])
        self.conf_path.write_text(self._config())
        self.process = ManagedProcess(
            [
                tool("pdns_server"),
                f"--config-dir={self.workdir}",
                "--daemon=no",
                "--guardian=no",
                "--disable-syslog",
                "--loglevel=4",
            ],
            name=f"pdns-{self.address}-{self.dns_port}",
            logdir=self.workdir,
            grace=5.0,
        ).start()
        self.process.wait_ready(self._ready, timeout=30)

    def _ready(self) -> bool:
        r = self._session.get(f"{self.api_url}/servers/localhost", timeout=2)
        return r.status_code == 200 and not port_is_free(self.address, self.dns_port)

    def stop(self) -> None:
        """Stop the server (pdns needs 1-2 s to exit)."""
        if self.process is not None:
            self.process.stop()
        self._session.close()

    # -- HTTP API -----------------------------------------------------------------------------

    def _api(self, method: str, path: str, json: Any = None, expect: Iterable[int] = (200,)) -> Any:
        r = self._session.request(
            method, f"{self.api_url}/servers/localhost{path}", json=json, timeout=10
        )
        if r.status_code not in tuple(expect):
            raise ServerError(f"PowerDNS API {method} {path} -> {r.status_code}: {r.text}")
        return r.json() if r.content else None

    def create_zone(
        self,
        name: str,
        nameservers: list[str],
        records: Sequence[Record] = (),
        dnssec: bool = False,
    ) -> dict[str, Any]:
        """Create a Native zone through the API, optionally signed straight away.

        Records are grouped into RRsets by (name, type); the SOA comes from
        default-soa-content and the NS set from nameservers.
        """
        zone = canonical(name)
        grouped: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        for rname, rtype, ttl, content in records:
            grouped[(absolute(rname, zone), rtype.upper())].append((ttl, content))
        rrsets = [
            {
                "name": rname,
                "type": rtype,
                "ttl": min(t for t, _ in items),
                "records": [{"content": c, "disabled": False} for _, c in items],
            }
            for (rname, rtype), items in grouped.items()
        ]
        body = {
            "name": zone,
            "kind": "Native",
            "dnssec": dnssec,
            "nameservers": [canonical(ns) for ns in nameservers],
            "rrsets": rrsets,
        }
        return self._api("POST", "/zones", body, expect=(201,))

    def recreate_zone(
        self,
        name: str,
        nameservers: list[str],
        records: Sequence[Record] = (),
        dnssec: bool = False,
    ) -> dict[str, Any]:
        """`create_zone`, starting afresh if the zone exists (a server reused across sessions
        or suites still holds it: the API answers 409)."""
        try:
            return self.create_zone(name, nameservers, records, dnssec)
        except ServerError as exc:
            if "409" not in str(exc):
                raise
            self.delete_zone(name)
            return self.create_zone(name, nameservers, records, dnssec)

    def replace_rrset(
        self, zone: str, name: str, type: str, ttl: int, contents: Sequence[str]
    ) -> None:
        """Set (create or overwrite) one RRset."""
        zone = canonical(zone)
        rrset = {
            "name": absolute(name, zone),
            "type": type.upper(),
            "ttl": ttl,
            "changetype": "REPLACE",
            "records": [{"content": c, "disabled": False} for c in contents],
        }
        self._api("PATCH", f"/zones/{zone}", {"rrsets": [rrset]}, expect=(204,))

    def delete_rrset(self, zone: str, name: str, type: str) -> None:
        """Remove one RRset (all records of that name and type)."""
        zone = canonical(zone)
        rrset = {"name": absolute(name, zone), "type": type.upper(), "changetype": "DELETE"}
        self._api("PATCH", f"/zones/{zone}", {"rrsets": [rrset]}, expect=(204,))

    def delete_zone(self, zone: str) -> None:
        """Delete a zone and its keys."""
        self._api("DELETE", f"/zones/{canonical(zone)}", expect=(204,))

    def get_zone(self, zone: str) -> dict[str, Any]:
        """The API's full view of a zone (kind, serial, dnssec flag, rrsets...)."""
        return self._api("GET", f"/zones/{canonical(zone)}")

    def get_rrsets(self, zone: str) -> list[dict[str, Any]]:
        """The zone's RRsets as the API returns them (name, type, ttl, records)."""
        return list(self.get_zone(zone)["rrsets"])

    def list_zones(self) -> list[str]:
        """Names of all zones on this server."""
        return [z["name"] for z in self._api("GET", "/zones")]

    # -- pdnsutil -----------------------------------------------------------------------------

    def pdnsutil(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run pdnsutil against this instance's config; returns the CompletedProcess."""
        return run([tool("pdnsutil"), f"--config-dir={self.workdir}", *args], check=check)

    def pdns_control(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Talk to the running server over its control socket (purge, ping, ...)."""
        return run([tool("pdns_control"), f"--config-dir={self.workdir}", *args], check=check)

    def purge(self, zone: str | None = None) -> None:
        """Drop cached answers, needed after a pdnsutil change to a running server."""
        self.pdns_control("purge", *([f"{canonical(zone)}$"] if zone else []))

    def secure_zone(self, zone: str) -> None:
        """Sign an existing zone (key generation by pdnsutil), then make the server show it."""
        zone = canonical(zone)
        self.pdnsutil("secure-zone", zone)
        self.pdnsutil("rectify-zone", zone)
        self.purge()

    def export_ds(self, zone: str) -> list[str]:
        """DS records for the parent, one per line ('zone. IN DS tag alg digesttype digest')."""
        out = self.pdnsutil("export-zone-ds", canonical(zone)).stdout
        return [_strip_comment(line) for line in out.splitlines() if " DS " in line]

    def export_dnskey(self, zone: str) -> list[str]:
        """The zone's DNSKEY records (trust anchors for a validating resolver)."""
        shown = self.pdnsutil("show-zone", canonical(zone)).stdout
        return [
            _strip_comment(line.split("DNSKEY = ", 1)[1])
            for line in shown.splitlines()
            if "DNSKEY = " in line
        ]

    def set_nsec3(self, zone: str, params: str = "1 0 0 -", narrow: bool = False) -> None:
        """Switch a signed zone to NSEC3 with the given 'alg flags iterations salt' params."""
        zone = canonical(zone)
        self.pdnsutil("set-nsec3", zone, params, *(["narrow"] if narrow else []))
        self.pdnsutil("rectify-zone", zone)
        self.purge()

    def unset_nsec3(self, zone: str) -> None:
        """Back to plain NSEC."""
        zone = canonical(zone)
        self.pdnsutil("unset-nsec3", zone)
        self.pdnsutil("rectify-zone", zone)
        self.purge()

    def serial(self, zone: str) -> int:
        """Current SOA serial of a zone (for consistency checks across servers)."""
        return int(self.get_zone(zone)["serial"])

    def wait_serial(self, zone: str, minimum: int, timeout: float = 5.0) -> int:
        """Wait until the zone serial reaches minimum; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.serial(zone)
            if s >= minimum or time.monotonic() > deadline:
                return s
            time.sleep(0.05)


def second_instance(first: PowerDNS, workdir: Path, address: str = "127.0.0.2") -> PowerDNS:
    """A second server on another loopback address, on the same DNS port when it is free.

    Real nameservers share port 53 on different addresses; keeping the port equal lets a test
    aim a resolver at 'the other NS' by address alone.
    """
    port = first.dns_port if port_is_free(address, first.dns_port, udp=True) else None
    return PowerDNS(workdir, address, dns_port=port)
