"""The scale-out tests' world: three vantages as network namespaces made here, one target
namespace serving HTTPS on one address all vantages route to, a fresh database in the session's
PostgreSQL (reached over its Unix socket, which no network namespace hides), and schedulers
and agents as separate processes (`ip netns exec NS python -m watchtower.cli agent ...`).

Addresses exist only inside the test's namespaces: link i joins vantage i (10.231.i.2/30) to
the target namespace (10.231.i.1/30); the service address 10.231.100.1/32 is on the target
namespace's loopback, routed from each vantage through its link. Breaking a vantage's route
is deleting that one route.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.base import find_tool, in_ci, poll, run, tool
from tests.servers.postgres import PostgreSQL

ROOT = Path(__file__).resolve().parents[3]
SERVICE = "10.231.100.1"
PORT = 8443
CHECK = "web.tls.certificate"


def require_namespaces() -> None:
    """Skip with the reason where namespaces cannot be made; under CI=true fail instead."""
    why = None
    if os.geteuid() != 0:
        why = "network namespaces need root (ip netns add)"
    elif find_tool("ip") is None:
        why = "ip (Debian package iproute2) is missing"
    else:
        probe = f"wtso-probe-{os.getpid()}"
        made = run(["ip", "netns", "add", probe], check=False)
        run(["ip", "netns", "del", probe], check=False)
        if made.returncode != 0:
            why = f"cannot make a network namespace: {made.stderr.strip()}"
    if why:
        message = f"scale-out tests: {why}"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def ip(*args: str, ns: str | None = None) -> None:
    run(["ip", *(["-n", ns] if ns else []), *args])


@dataclass
class Namespaces:
    """The target namespace and one namespace per vantage, removed by `close`."""

    prefix: str
    vantages: tuple[str, ...]
    made: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"{self.prefix}-target"

    def of(self, vantage: str) -> str:
        return f"{self.prefix}-{vantage}"

    def make(self) -> None:
        for ns in (self.target, *map(self.of, self.vantages)):
            ip("netns", "add", ns)
            self.made.append(ns)
            ip("link", "set", "lo", "up", ns=ns)
        ip("addr", "add", f"{SERVICE}/32", "dev", "lo", ns=self.target)
        for i, vantage in enumerate(self.vantages, start=1):
            ns = self.of(vantage)
            run(["ip", "link", "add", "v0", "netns", ns, "type", "veth", "peer", "name",
                 f"t{i}", "netns", self.target])
            ip("addr", "add", f"10.231.{i}.2/30", "dev", "v0", ns=ns)
            ip("addr", "add", f"10.231.{i}.1/30", "dev", f"t{i}", ns=self.target)
            ip("link", "set", "v0", "up", ns=ns)
            ip("link", "set", f"t{i}", "up", ns=self.target)
            ip("route", "add", f"{SERVICE}/32", "via", f"10.231.{i}.1", ns=ns)

    def break_route(self, vantage: str) -> None:
        ip("route", "del", f"{SERVICE}/32", ns=self.of(vantage))

    def mend_route(self, vantage: str) -> None:
        i = self.vantages.index(vantage) + 1
        ip("route", "replace", f"{SERVICE}/32", "via", f"10.231.{i}.1", ns=self.of(vantage))

    def close(self) -> None:
        for ns in reversed(self.made):
            run(["ip", "netns", "del", ns], check=False)
        self.made.clear()


def make_database(pg: PostgreSQL, name: str) -> str:
    """A database of its own in the session's cluster; its URL over the Unix socket."""
    run([tool("createdb"), "-h", str(pg.socket_dir), "-p", str(pg.port), "-U", pg.user, name],
        user=pg._os_user, group=pg._os_user)
    return f"postgresql+psycopg://{pg.user}@/{name}?host={pg.socket_dir}&port={pg.port}"


def certificate(workdir: Path) -> tuple[Path, Path, Path]:
    """(CA bundle, certificate, key) for the target's address. The leaf names the address
    both as an IP (what TLS verification matches) and as a DNS name (what
    web.tls.certificate compares the host with); a trustme leaf has the first only."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)

    def build(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey,
              signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(start + dt.timedelta(days=200))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = (b.add_extension(x509.SubjectAlternativeName([
                    x509.DNSName(SERVICE), x509.IPAddress(ipaddress.ip_address(SERVICE))]),
                    critical=False)
                 .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                critical=False))
        return b.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca = build("scale-out test CA", "scale-out test CA", ca_key, ca_key, True)
    leaf = build(SERVICE, "scale-out test CA", key, ca_key, False)
    paths = workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def fleet_file(workdir: Path, url: str, ca: Path, vantages: tuple[str, ...],
               placed: tuple[str, ...], *, interval: int = 4, lease: float = 2) -> Path:
    """One endpoint, one check every `interval` seconds, placed at `placed` (2 of 3)."""
    path = workdir / "fleet.toml"
    names = ", ".join(f'"{v}"' for v in vantages)
    at = ", ".join(f'"{v}"' for v in placed)
    path.write_text(f"""
[store]
database = "{url}"
[probe]
ca_bundle = "{ca}"
[metrics]
listen = "127.0.0.1:0"
[scaleout]
vantages = [{names}]
tick = 1
lease = {lease}
agent_concurrency = 1
[[scaleout.placement]]
checks = ["{CHECK}"]
vantages = [{at}]
fail_at = 2
[checks."*"]
disabled = true
[checks."{CHECK}"]
interval = {interval}
timeout = 8
[[endpoints]]
name = "target"
url = "https://{SERVICE}:{PORT}/"
""")
    return path


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self) -> None:
        if self.alive():
            self.popen.terminate()

    def stop(self) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def spawn(name: str, argv: list[str], workdir: Path, ns: str | None = None) -> Proc:
    log = workdir / f"{name}.log"
    prefix = ["ip", "netns", "exec", ns] if ns else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as out:
        popen = subprocess.Popen([*prefix, *argv], stdout=out, stderr=subprocess.STDOUT,
                                 cwd=ROOT, env=env)
    return Proc(name, popen, log)


def watchtower(*args: str) -> list[str]:
    return [sys.executable, "-m", "watchtower.cli", *args]


def wait(condition: object, timeout: float, what: str, procs: Iterator[Proc] | list[Proc]
         ) -> None:
    ok, last = poll(condition, timeout, 0.2)  # type: ignore[arg-type]
    if not ok:
        logs = "\n".join(f"--- {p.name} ---\n{p.text()[-3000:]}" for p in procs)
        raise AssertionError(f"timed out waiting for {what} ({last!r})\n{logs}")


def now() -> float:
    return time.time()
