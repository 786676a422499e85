"""The lab: a simulated fleet on loopback that watchtower probes for real.

`Lab(directory).start()` brings up the lab's authoritative DNS (on 127.0.0.1 and a second
address for the second name server) with the PowerDNS API calls watchtower's DNS fixes make
(`watchtower.lab.dnsapi`), its HTTPS/HTTP front under a CA of its own, and writes `fleet.toml`
pointing watchtower at them. It needs no root and nothing outside Python.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import socket
from pathlib import Path
from typing import Any

import tomli_w
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from watchtower.lab.ca import LabCA
from watchtower.lab.control import ControlServer
from watchtower.lab.cron import HeartbeatPinger
from watchtower.lab.dnsapi import DnsApiServer
from watchtower.lab.dnsserver import DnsServer, LabSigner
from watchtower.lab.faults import FaultSwitch
from watchtower.lab.fleet import (
    LAB_INTERVAL,
    LAB_V6_ADDRESS,
    NS2_ADDRESS,
    NS3_ADDRESS,
    LabDomain,
    build_domains,
    build_lab_dns,
    fleet_document,
    split_txt,
)
from watchtower.lab.https import WebFront
from watchtower.lab.mailhost import LabMailHost, fleet_entry, lab_mail_host
from watchtower.lab.sites import LabSites
from watchtower.lab.smtp import LabSmtp, mx_address
from watchtower.lab.zones import LabZones

log = logging.getLogger(__name__)


def port_or_free(address: str, wanted: int) -> int:
    """`wanted` when both UDP and TCP can bind it on `address`, else 0 (let the OS choose)."""
    if wanted == 0:
        return 0
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((address, wanted))
            except OSError:
                return 0
    return wanted


class Lab:
    """Starts and stops the lab's servers; `fleet_path` is the fleet file it wrote."""

    def __init__(
        self,
        directory: Path,
        *,
        domains: int = 3,
        faults: dict[str, set[str]] | None = None,
        dns_port: int = 0,
        https_port: int = 0,
        http_port: int = 0,
        metrics_listen: str = "127.0.0.1:9810",
        database: str | None = None,
        control_port: int = 0,
        interval: float | None = None,
    ) -> None:
        self.interval = LAB_INTERVAL if interval is None else interval
        self.dir = directory.resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.domains: list[LabDomain] = build_domains(domains, faults)
        self.ca = LabCA(self.dir / "ca")
        self.dns = DnsServer(["127.0.0.1", NS2_ADDRESS, NS3_ADDRESS, LAB_V6_ADDRESS],
                             port_or_free("127.0.0.1", dns_port))
        self.sites = LabSites(self.domains, self.dir)
        self.web = WebFront("127.0.0.1", port_or_free("127.0.0.1", https_port),
                            port_or_free("127.0.0.1", http_port), v6_address=LAB_V6_ADDRESS)
        self.smtp: LabSmtp | None = None
        self.mailhost: LabMailHost | None = None
        self.metrics_listen = metrics_listen
        self.database = database or f"sqlite:///{self.dir / 'watchtower.db'}"
        self.fleet_path = self.dir / "fleet.toml"
        self.dkim_txt = ""
        self.signer: LabSigner | None = None
        self.zones = LabZones(self.dns, self.domains)
        self.dns_api = DnsApiServer(self.zones, self.dir)
        self.control = ControlServer(FaultSwitch(self), self.dir, control_port)

    def _dkim_txt(self) -> str:
        key_path = self.dir / "dkim-s1.key"
        if key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            key_path.chmod(0o600)
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        # the public half, for dns.declared's DKIM record (mail_domains[].dkim_keys)
        (self.dir / "dkim-s1.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return split_txt("v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode())

    def certificate(self, domain: LabDomain, host: str) -> tuple[str, str]:
        """Issue `host`'s certificate as `domain`'s faults want it; (cert path, key path)."""
        now = dt.datetime.now(dt.UTC)
        is_service = host == domain.service_host
        if is_service and "cert-expired" in domain.faults:
            issued = self.ca.issue([host], not_before=now - dt.timedelta(days=120),
                                   not_after=now - dt.timedelta(days=30))
        elif is_service and "cert-wrong-name" in domain.faults:
            issued = self.ca.issue([f"other.{domain.name}"], label=host)
        elif is_service and "cert-untrusted" in domain.faults:
            issued = self.ca.issue([host], self_signed=True)
        else:
            issued = self.ca.issue([host])
        return str(issued.cert_path), str(issued.key_path)

    def start(self) -> Path:
        dkim = self.dkim_txt = self._dkim_txt()
        self.signer = LabSigner(self.dir / "dnssec-lab.key")
        lab_dns = build_lab_dns(self.domains, dkim, self.signer)
        self.dns.views.update(lab_dns.views)
        self.zones.dkim_txt, self.zones.signer = dkim, self.signer
        anchors = self.dir / "trust-anchors.zone"
        anchors.write_text(lab_dns.anchor)
        self.dns.start()
        self.dns_api.start()
        for d in self.domains:
            for host in d.web_hosts:
                cert, key = self.certificate(d, host)
                self.web.add_site(host, cert, key, self.sites.https_app(d, host),
                                  self.sites.http_app(d, host))
        self.web.start()
        mx = self.ca.issue([f"mail.{d.name}" for d in self.domains], label="lab-mx")
        self.smtp = LabSmtp([d.name for d in self.domains], str(mx.cert_path), str(mx.key_path),
                            addresses=("127.0.0.1", LAB_V6_ADDRESS))
        self.smtp.start()
        # The mail host of the first domain: submission + IMAPS for mail.roundtrip.
        self.mailhost = lab_mail_host(self.dir, [d.name for d in self.domains],
                                      str(mx.cert_path), str(mx.key_path),
                                      mx_address(self.domains[0].faults),
                                      faults=self.domains[0].faults)
        self.mailhost.start()
        self.sites.bind(self.web.https_port)
        doc = fleet_document(
            self.domains, dns_port=self.dns.port, https_port=self.web.https_port,
            ca_bundle=str(self.ca.cert_path), database=self.database,
            metrics_listen=self.metrics_listen, http_port=self.web.http_port,
            secrets_dir=str(self.dir), trust_anchors=str(anchors), smtp_port=self.smtp.port,
            mail_host=fleet_entry(self.mailhost, self.dir),
            dns_api=(self.dns_api.url, str(self.dns_api.key_path)), interval=self.interval,
        )
        self.fleet_path.write_text(
            "# Written by `watchtower lab`: a simulated fleet on loopback.\n"
            + tomli_w.dumps(doc))
        self.control.start()
        self._start_heartbeat()
        log.info("lab up: dns 127.0.0.1:%d, https 127.0.0.1:%d, %d domains", self.dns.port,
                 self.web.https_port, len(self.domains))
        return self.fleet_path

    def _start_heartbeat(self) -> None:
        """The lab's nightly job pings `watchtower run` on metrics_listen, when it has a port."""
        host, _, port = self.metrics_listen.rpartition(":")
        if port in ("", "0"):
            return
        pinger = self.sites.app(self.domains[0], "cron")
        assert isinstance(pinger, HeartbeatPinger)
        pinger.start_pinging(f"http://{host}:{port}/ping/{self.sites.heartbeat_token}")

    def stop(self) -> None:
        pinger = self.sites.apps.get((self.domains[0].name, "cron"))
        if isinstance(pinger, HeartbeatPinger):
            pinger.stop_pinging()
        self.control.stop()
        if self.smtp is not None:
            self.smtp.stop()
        if self.mailhost is not None:
            self.mailhost.stop()
        self.web.stop()
        self.dns_api.stop()
        self.dns.stop()

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
