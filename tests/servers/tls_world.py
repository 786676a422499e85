"""The servers of the NCSC-NL TLS-criteria tests, started once per session: Debian's nginx
with one site per case (`tls_cases.sites`), Postfix with one MX listener per case
(`tls_cases.mx_cases`), both under one test PKI, and a DNS server naming them all.

The DNS server is watchtower's lab server (pure Python): name resolution is not under test
here, and every name resolves to 127.0.0.1. The PKI lives in a shared_dir because Postfix's
smtpd reads its keys as the postfix user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import dns.zone

from tests.servers import tls_cases
from tests.servers.base import Server, remove_shared_dir, shared_dir
from tests.servers.mailstack import MailStack
from tests.servers.nginx import Nginx
from tests.servers.pki import TestPKI
from watchtower.config import Fleet, parse_fleet
from watchtower.lab.dnsserver import DnsServer


class TlsWorld(Server):
    """nginx + Postfix + DNS for the TLS cases; `fleet()` points watchtower at them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.root = shared_dir("tls")
        self.pki = TestPKI(self.root / "pki")
        self.nginx = Nginx(self.workdir / "nginx", tls_cases.sites(self.pki, self.root))
        self.mail = MailStack(self.workdir / "mail", domain=f"mail.{tls_cases.ZONE}",
                              mx=False, open_relay=False,
                              mx_cases=tls_cases.mx_cases(self.pki, self.root))
        self.dns = DnsServer(["127.0.0.1", "::1"], 0)

    def start(self) -> Self:
        return self._timed_start(self._start)

    def _start(self) -> None:
        zone = self._zone()
        self.dns.set_zones("127.0.0.1", [zone])
        self.dns.set_zones("::1", [zone])
        self.dns.start()
        self.nginx.start()
        self.mail.start()

    def _zone(self) -> Any:
        z = tls_cases.ZONE
        names = [s.host for s in self.nginx.sites.values()]
        names += [tls_cases.mx_host(case) for case in self.mail.mx_cases]
        # IPv6 (::1) for the name servers, the good site (nginx listens there too) and the
        # good MX (Postfix does not: an AAAA that does not answer).
        v6 = [f"ns{i}" for i in (1, 2)] + [tls_cases.host("good") + ".",
                                            tls_cases.mx_host("good") + "."]
        lines = [f"$ORIGIN {z}.", "$TTL 300", "@ IN SOA ns1 hostmaster 1 14400 3600 1209600 300",
                 "@ IN NS ns1", "@ IN NS ns2", "ns1 IN A 127.0.0.1", "ns2 IN A 127.0.0.1",
                 *(f"{n} IN AAAA ::1" for n in v6),
                 *(f"{n}. IN A 127.0.0.1" for n in names),
                 *(f"{tls_cases.mail_domain(case)}. IN MX 10 {tls_cases.mx_host(case)}."
                   for case in self.mail.mx_cases)]
        return dns.zone.from_text("\n".join(lines) + "\n", origin=f"{z}.", relativize=False)

    def fleet(self, *, smtp_case: str | None = None, **sections: Any) -> Fleet:
        """A fleet resolving through this world's DNS and trusting its PKI; `smtp_case` sets
        the SMTP port to that MX case's listener (the fleet has one SMTP port)."""
        probe: dict[str, Any] = {
            "nameservers": [f"127.0.0.1:{self.dns.port}"], "ca_bundle": str(self.pki.ca_path),
            "http_timeout": 5.0, "dns_timeout": 2.0}
        if smtp_case is not None:
            probe["smtp_port"] = self.mail.mx_case_ports[smtp_case]
        probe.update(sections.pop("probe", {}))
        return parse_fleet({"probe": probe, **sections})

    def url(self, case: str) -> str:
        site = self.nginx.site(case)
        return f"https://{site.host}:{site.port}/"

    def stop(self) -> None:
        self.mail.stop()
        self.nginx.stop()
        self.dns.stop()

    def close(self) -> None:
        try:
            self.mail.close()
            self.nginx.close()
            self.dns.stop()
        finally:
            remove_shared_dir(self.root)
