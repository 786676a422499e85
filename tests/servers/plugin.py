"""pytest plugin: session-scoped fixtures that start each real server once.

Load it with `pytest_plugins = ["tests.servers.plugin"]` in tests/conftest.py (or `-p
tests.servers.plugin`). Every fixture first calls require(): a missing binary skips the test
locally and fails it under CI=true, naming the Debian package. Servers start lazily (only when
a test asks for them) and stop at session end, also after Ctrl-C, since pytest runs session
teardown on KeyboardInterrupt; base.py's atexit hook is the last line of defence.

Start-up times are collected and printed in the terminal summary, so slow fixtures show up.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

import pytest

from tests.servers.base import require, require_module, venv_script
from tests.servers.mailstack import MailStack
from tests.servers.nixstore import NixStore
from tests.servers.openssh import SSHServer
from tests.servers.postgres import PostgreSQL
from tests.servers.powerdns import PowerDNS, second_instance
from tests.servers.prometheus import Prometheus, PromTools
from tests.servers.s3 import S3Server
from tests.servers.synapse import Synapse
from tests.servers.tls_world import TlsWorld
from tests.servers.unbound import Unbound

STARTUP_TIMES: dict[str, float] = {}

PDNS_TOOLS = (
    "pdns_server",
    "pdnsutil",
    "pdns_control",
    "sqlite3",
    "/usr/lib/x86_64-linux-gnu/pdns/libgsqlite3backend.so",
)


def pytest_configure(config: pytest.Config) -> None:
    """Treat SIGTERM like Ctrl-C, so a killed run (CI time-out, `kill`) still tears down.

    Without this Python dies on SIGTERM without running fixture finalizers or atexit hooks,
    and detached daemons (postfix, postgres) would outlive the run holding ports and files.
    """
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _record(name: str, seconds: float | None) -> None:
    if seconds is not None:
        STARTUP_TIMES[name] = seconds


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how long each server took to start (the suite has a time budget)."""
    if STARTUP_TIMES:
        terminalreporter.section("test server start-up times")
        for name, seconds in sorted(STARTUP_TIMES.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{name:<22} {seconds:6.2f} s")


@pytest.fixture(scope="session")
def powerdns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PowerDNS]:
    """PowerDNS Authoritative on 127.0.0.1 (gsqlite3, DNSSEC, HTTP API)."""
    require(*PDNS_TOOLS, why="PowerDNS fixture")
    with PowerDNS(tmp_path_factory.mktemp("powerdns")) as server:
        _record("powerdns", server.startup_seconds)
        yield server


@pytest.fixture(scope="session")
def powerdns2(powerdns: PowerDNS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PowerDNS]:
    """A second PowerDNS on 127.0.0.2, on the first one's DNS port when that is free there."""
    require(*PDNS_TOOLS, why="PowerDNS fixture")
    with second_instance(powerdns, tmp_path_factory.mktemp("powerdns2"), "127.0.0.2") as server:
        _record("powerdns2", server.startup_seconds)
        yield server


@pytest.fixture(scope="session")
def unbound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Unbound]:
    """Validating Unbound on a free 127.0.0.1 port; no zones until a test adds them:

        unbound.add_powerdns_zone(powerdns, "signed.example.test", anchored=True)

    Zones and anchors added by one test stay for the session: use names no other test uses.
    """
    require("unbound", "unbound-checkconf", "unbound-control", why="Unbound fixture")
    with Unbound(tmp_path_factory.mktemp("unbound")) as server:
        _record("unbound", server.startup_seconds)
        yield server


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgreSQL]:
    """A private PostgreSQL cluster with database 'watchtower'; use .url for SQLAlchemy."""
    require("initdb", "pg_ctl", "createdb", "psql", why="PostgreSQL fixture")
    with PostgreSQL(tmp_path_factory.mktemp("postgres")) as server:
        _record("postgres", server.startup_seconds)
        yield server


@pytest.fixture(scope="session")
def prometheus_tools() -> PromTools:
    """Paths to prometheus and promtool plus check_rules/test_rules/check_metrics helpers."""
    require("prometheus", "promtool", why="Prometheus fixture")
    return PromTools()


PrometheusFactory = Callable[..., Prometheus]


@pytest.fixture(scope="session")
def prometheus_factory(
    prometheus_tools: PromTools, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusFactory]:
    """Start a Prometheus with the caller's targets and rules:

        prom = prometheus_factory(["127.0.0.1:9100"], [rules_path], scrape_interval="1s")

    Every server made here is stopped at session end; tests may prom.stop() earlier.
    """
    started: list[Prometheus] = []

    def make(
        scrape_targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        scrape_interval: str = "1s",
        **kwargs: object,
    ) -> Prometheus:
        server = Prometheus(
            tmp_path_factory.mktemp("prometheus"),
            scrape_targets,
            rule_files,
            scrape_interval,
            **kwargs,  # type: ignore[arg-type]
        )
        started.append(server)
        server.start()
        _record("prometheus", server.startup_seconds)
        return server

    try:
        yield make
    finally:
        for server in started:
            with contextlib.suppress(Exception):
                server.stop()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """OpenSSH server on 127.0.0.1 admitting `user` with client_key (not other_key)."""
    require("sshd", "ssh", "ssh-keygen", why="OpenSSH fixture")
    with SSHServer(tmp_path_factory.mktemp("sshd")) as server:
        _record("sshd", server.startup_seconds)
        yield server


@pytest.fixture(scope="session")
def nix_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NixStore]:
    """A throwaway Nix store with a `system` profile for fake NixOS generations."""
    require("nix-build", "nix-env", "nix-store", "nix", why="Nix store fixture")
    with NixStore(tmp_path_factory.mktemp("nix")) as store:
        _record("nix_store", store.startup_seconds)
        yield store


#: What both mail stacks run: Postfix, Dovecot (IMAP, LMTP) and openssl for their keys.
MAIL_TOOLS = ("postfix", "postconf", "dovecot", "/usr/lib/dovecot/imap",
              "/usr/lib/dovecot/lmtp", "openssl")


@pytest.fixture(scope="session")
def mail_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailStack]:
    """Postfix (submission, smtps, MX, open relay) + Dovecot IMAPS + OpenDKIM signing."""
    require(*MAIL_TOOLS, "opendkim", "opendkim-genkey", why="mail stack fixture")
    require_module("trustme", why="mail stack fixture (test CA)")
    with MailStack(tmp_path_factory.mktemp("mail")) as stack:
        _record("mail_stack", stack.startup_seconds)
        yield stack


#: Where the full stack listens: not 127.0.0.1, where Dovecot would treat our clients as
#: local and offer plaintext logins before TLS (see MailStack's `host`).
FULL_STACK_ADDRESS = "127.0.0.3"


@pytest.fixture(scope="session")
def full_mail_stack(powerdns: PowerDNS, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[MailStack]:
    """The stack the project specifies in full: Postfix + Rspamd (spam filter, DKIM signing,
    ARC sealing at a forwarding hop, controller) + Dovecot with Pigeonhole (Sieve at LMTP
    delivery, ManageSieve), resolving through the session's PowerDNS."""
    require(*MAIL_TOOLS, "/usr/lib/dovecot/managesieve", "/usr/lib/dovecot/managesieve-login",
            "/usr/lib/dovecot/modules/lib90_sieve_plugin.so", "rspamd", "rspamadm",
            why="full mail stack fixture")
    require_module("trustme", why="full mail stack fixture (test CA)")
    with MailStack(tmp_path_factory.mktemp("fullmail"), domain="fullstack.test",
                   signer="rspamd", sieve=True, host=FULL_STACK_ADDRESS,
                   nameserver=f"{powerdns.address}:{powerdns.dns_port}") as stack:
        _record("full_mail_stack", stack.startup_seconds)
        yield stack


@pytest.fixture(scope="session")
def synapse_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """(CA, certificate, key) for 127.0.0.1 from a throwaway trustme CA: the TLS of the second
    homeserver's federation listener, which the first one trusts."""
    require_module("trustme", why="Synapse federation TLS")
    import trustme

    directory = tmp_path_factory.mktemp("synapse-tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    paths = tuple(str(directory / n) for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(paths[0])
    with open(paths[1], "wb") as out:
        for pem in issued.cert_chain_pems:
            out.write(pem.bytes())
    issued.private_key_pem.write_to_path(paths[2])
    return paths  # type: ignore[return-value]


@pytest.fixture(scope="session")
def synapse(synapse_tls: tuple[str, str, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """Matrix Synapse with SQLite on a plain-HTTP loopback port, its metrics listener, and
    outbound federation allowed to loopback servers under the test CA (`synapse_peer`)."""
    require_module("synapse", "yaml", why="Synapse fixture")
    outbound = {"federation_custom_ca_list": [synapse_tls[0]], "ip_range_blacklist": [],
                "federation_ip_range_blacklist": []}
    with Synapse(tmp_path_factory.mktemp("synapse"), extra_config=outbound) as server:
        _record("synapse", server.startup_seconds)
        yield server


@pytest.fixture(scope="session")
def synapse_peer(synapse_tls: tuple[str, str, str],
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """A second homeserver whose server name is `127.0.0.1:<TLS port>`: `synapse` reaches it
    over federation (key queries, transactions) without any DNS."""
    require_module("synapse", "yaml", why="Synapse fixture")
    server = Synapse(tmp_path_factory.mktemp("synapse-peer"), tls=(synapse_tls[1], synapse_tls[2]))
    server.server_name = f"127.0.0.1:{server.tls_port}"
    with server:
        _record("synapse_peer", server.startup_seconds)
        yield server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server; call .reset() for an empty store, .client() for boto3."""
    require_module("moto", "flask", "flask_cors", "boto3", why="S3 fixture")
    require(venv_script("moto_server") or "moto_server", why="S3 fixture")
    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        _record("s3_server", server.startup_seconds)
        yield server


@pytest.fixture(scope="session")
def tls_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsWorld]:
    """nginx (one site per TLS case) + Postfix (one MX per case) under one test PKI, with a
    DNS server naming them: the real servers of the NCSC-NL TLS-criteria tests."""
    require("nginx", "openssl", "postfix", "postconf", "dovecot", "/usr/lib/dovecot/imap",
            "/usr/lib/dovecot/lmtp", "opendkim", "opendkim-genkey", why="TLS criteria fixture")
    require_module("trustme", why="TLS criteria fixture (the mail stack's own CA)")
    with TlsWorld(tmp_path_factory.mktemp("tls")) as world:
        _record("tls_world", world.startup_seconds)
        yield world
