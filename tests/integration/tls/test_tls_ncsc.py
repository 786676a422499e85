"""web.tls.ncsc and mail.starttls.ncsc against real servers: Debian's nginx and Postfix, one
configuration per case (tests/servers/tls_cases.py), each graded criterion by criterion.

Cases Debian's OpenSSL 3.0 cannot produce (TLS compression, insecure renegotiation, unlimited
client-initiated renegotiation, SSL 2.0/3.0) are judged from recorded scan facts in
tests/fixtures/checks/web.tls.ncsc.json and mail.starttls.ncsc.json.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import tls_cases
from tests.servers.tls_world import TlsWorld
from watchtower.config import Fleet
from watchtower.model import Result
from watchtower.net.tlsscan_result import TlsScan
from watchtower.probe import registry
from watchtower.probe.api import ProbeContext
from watchtower.probe.clients import SweepClients
from watchtower.probe.runner import Job, execute

TIMEOUT = 120.0


def _run(fleet: Fleet, check_id: str, target_name: str) -> Result:
    check = registry.checks()[check_id]
    target = next(t for t in fleet.targets() if t.name == target_name
                  and check.applies(t))
    sweep = SweepClients(fleet)
    try:
        return execute(Job(check, target, TIMEOUT), sweep.context(time.monotonic() + TIMEOUT))
    finally:
        sweep.close()


def _criteria(result: Result) -> dict[str, dict[str, Any]]:
    return {c["criterion"]: c for c in result.evidence["criteria"]}


@pytest.fixture(scope="module")
def web(tls_world: TlsWorld) -> dict[str, Result]:
    """One web.tls.ncsc result per nginx case (each its own sweep, as a daily sweep is)."""
    fleet = tls_world.fleet(endpoints=[{"url": tls_world.url(c)} for c in tls_world.nginx.sites])
    out = {}
    for case, site in tls_world.nginx.sites.items():
        out[case] = _run(fleet, "web.tls.ncsc", f"{site.host}:{site.port}")
    return out


# (case, criterion, NCSC-NL level, internet.nl status of the web test)
WEB_EXPECTED = [
    ("good", "tls_version", "sufficient", "passed"),  # TLS 1.2 beside 1.3: the worst counts
    ("good", "tls_ciphers", "sufficient", "passed"),
    ("good", "key_exchange", "sufficient", "passed"),
    ("good", "kex_hash", "good", "passed"),
    ("good", "ocsp_stapling", "good", "passed"),
    ("good", "cert_trust", "good", "passed"),
    ("good", "cert_pubkey", "sufficient", "passed"),
    ("good", "zero_rtt", "good", "passed"),
    ("sufficient", "tls_version", "sufficient", "passed"),
    ("sufficient", "cert_pubkey", "sufficient", "passed"),
    ("sufficient", "ocsp_stapling", "good", "passed"),
    ("phase-out", "tls_ciphers", "phase out", "warning"),
    ("phase-out", "key_exchange", "phase out", "warning"),
    ("phase-out", "cipher_order", "good", "passed"),
    ("phase-out", "cert_pubkey", "phase out", "warning"),
    ("legacy", "tls_version", "insufficient", "failed"),
    ("legacy", "tls_ciphers", "insufficient", "failed"),
    ("legacy", "cipher_order", "insufficient", "failed"),
    ("legacy", "kex_hash", "insufficient", "failed"),
    ("no-stapling", "ocsp_stapling", "sufficient", "info"),
    ("zero-rtt", "zero_rtt", "insufficient", "failed"),
    ("weak-dh", "key_exchange", "insufficient", "failed"),
    ("weak-dh", "tls_ciphers", "phase out", "warning"),
    ("rsa-1024", "cert_pubkey", "insufficient", "failed"),
    ("no-intermediate", "cert_trust", "insufficient", "failed"),
    ("no-intermediate", "cert_domain", "good", "passed"),
]


@pytest.mark.parametrize(("case", "criterion", "level", "status"), WEB_EXPECTED,
                         ids=[f"{c}:{k}" for c, k, _, _ in WEB_EXPECTED])
def test_web_criterion(web: dict[str, Result], case: str, criterion: str, level: str,
                       status: str) -> None:
    crit = _criteria(web[case])[criterion]
    assert crit["level"] == level, crit
    assert set(crit["internetnl"].values()) == {status}, crit
    assert crit["guideline"].startswith("NCSC-NL ICT-beveiligingsrichtlijnen voor TLS, 2025-05")


@pytest.mark.parametrize(("case", "status"), [
    ("good", "ok"), ("sufficient", "ok"), ("phase-out", "warn"), ("legacy", "fail"),
    ("no-stapling", "ok"), ("zero-rtt", "fail"), ("weak-dh", "fail"), ("rsa-1024", "fail"),
    ("no-intermediate", "fail"),
])
def test_web_verdict(web: dict[str, Result], case: str, status: str) -> None:
    assert web[case].status == status, web[case].summary


def test_every_web_test_id_is_in_the_evidence(web: dict[str, Result]) -> None:
    """The evidence carries internet.nl's ids so a customer can compare with a run there."""
    ids = {i for c in web["good"].evidence["criteria"] for i in c["internetnl"]}
    assert {"web_https_tls_version", "web_https_tls_ciphers", "web_https_tls_cipherorder",
            "web_https_tls_keyexchange", "web_https_tls_keyexchangehash",
            "web_https_tls_compress", "web_https_tls_secreneg", "web_https_tls_clientreneg",
            "web_https_tls_0rtt", "web_https_tls_ocsp", "web_https_cert_chain",
            "web_https_cert_pubkey", "web_https_cert_sig", "web_https_cert_domain",
            "web_https_http_available"} <= ids


def test_one_scan_per_server_per_sweep(tls_world: TlsWorld) -> None:
    """Two checks reading one server in one sweep share one scan (the sweep's memo)."""
    site = tls_world.nginx.site("good")
    fleet = tls_world.fleet(endpoints=[{"url": tls_world.url("good")}])
    sweep = SweepClients(fleet)
    try:
        ctx = sweep.context(time.monotonic() + TIMEOUT)
        scanner = ctx.tls_scan
        first = scanner.scan(site.host, site.port, deadline=ctx.deadline)
        again = scanner.scan(site.host, site.port, deadline=ctx.deadline)
        assert again is first
        assert scanner.versions(site.host, site.port, deadline=ctx.deadline) == first.versions
        assert first.cpu_seconds > 0 and first.connections > 10
    finally:
        sweep.close()


def _every_tls_server(tls_world: TlsWorld) -> list[tuple[str, int, str | None]]:
    """(host, port, STARTTLS) of every nginx case and every Postfix case that offers TLS."""
    servers: list[tuple[str, int, str | None]] = [
        (site.host, site.port, None) for site in tls_world.nginx.sites.values()]
    servers += [(tls_cases.mx_host(case), port, "smtp")
                for case, port in tls_world.mail.mx_case_ports.items()
                if case != "no-starttls"]
    return servers


def _one_by_one(scanner: Any, host: str, port: int, starttls: str | None,
                deadline: float) -> dict[str, list[dict[str, Any]]]:
    """The accepted suites as sslyze's plugin finds them, one connection per suite it knows:
    the oracle for elimination (watchtower/net/_sslyze_ciphers.py)."""
    from watchtower.net import _sslyze_steps as steps

    probe = scanner._versions(host, port, None, starttls, deadline)
    session = scanner._session(steps, probe, deadline)
    return {v: [steps._suite(s) for s in
                session.run_plugin(steps._CIPHER_COMMANDS[v]).accepted_cipher_suites]
            for v in steps._cipher_versions(probe)}


@pytest.fixture(scope="module")
def full_scans(tls_world: TlsWorld) -> list[tuple[tuple[str, int, str | None], TlsScan]]:
    """Every nginx and Postfix case's full scan, made once for the oracle tests below."""
    fleet = tls_world.fleet(endpoints=[{"url": tls_world.url("good")}])
    out = []
    for host, port, starttls in _every_tls_server(tls_world):
        with _context(fleet) as ctx:
            out.append(((host, port, starttls),
                        ctx.tls_scan.scan(host, port, deadline=ctx.deadline, starttls=starttls,
                                          web=starttls is None)))
    return out


@contextlib.contextmanager
def _context(fleet: Fleet) -> Iterator[ProbeContext]:
    """A probe context of a fresh sweep (nothing shared with an earlier scan)."""
    sweep = SweepClients(fleet)
    try:
        yield sweep.context(time.monotonic() + TIMEOUT)
    finally:
        sweep.close()


def test_elimination_finds_the_suites_one_by_one_testing_finds(
        tls_world: TlsWorld, full_scans: list[tuple[tuple[str, int, str | None], TlsScan]]
) -> None:
    """Every nginx and Postfix case: the same accepted suites (and key exchanges, in the same
    order) as sslyze testing each of its suites alone, in a fraction of the connections."""
    fleet = tls_world.fleet(endpoints=[{"url": tls_world.url("good")}])
    for (host, port, starttls), scan in full_scans:
        with _context(fleet) as ctx:
            oracle = _one_by_one(ctx.tls_scan, host, port, starttls, ctx.deadline)
        assert scan.ciphers == oracle, (host, port, scan.notes)
    connections = [scan.connections for _, scan in full_scans]
    assert max(connections) < 80, connections  # one by one: 160 and more for TLS 1.2 alone


def test_renegotiation_equals_sslyzes_plugin(
        tls_world: TlsWorld, full_scans: list[tuple[tuple[str, int, str | None], TlsScan]]
) -> None:
    """Every nginx and Postfix case below TLS 1.3: secure renegotiation, read from the version
    probe's ServerHello (renegotiation_info), and the client-initiated renegotiations the
    server allows equal what sslyze's whole renegotiation plugin finds."""
    from sslyze import ScanCommand
    from sslyze.plugins.session_renegotiation_plugin import SessionRenegotiationExtraArgument

    from watchtower.net import _sslyze_steps as steps
    from watchtower.net.tlsscan_result import RENEGOTIATION_ATTEMPTS

    fleet = tls_world.fleet(endpoints=[{"url": tls_world.url("good")}])
    compared = 0
    for (host, port, starttls), scan in full_scans:
        if not any(ok for version, ok in scan.versions.items() if version != "TLSv1.3"):
            continue
        with _context(fleet) as ctx:
            probe = ctx.tls_scan._versions(host, port, None, starttls, ctx.deadline)
            plugin = ctx.tls_scan._session(steps, probe, ctx.deadline).run_plugin(
                ScanCommand.SESSION_RENEGOTIATION,
                SessionRenegotiationExtraArgument(RENEGOTIATION_ATTEMPTS))
        assert "renegotiation" not in scan.untested, (host, port, scan.untested)
        assert (scan.secure_renegotiation, scan.client_renegotiations) == (
            plugin.supports_secure_renegotiation, plugin.client_renegotiations_success_count
        ), (host, port)
        compared += 1
    assert compared >= 4, compared


def _handshakes(scanner: Any, host: str, port: int, starttls: str | None,
                deadline: float) -> tuple[dict[str, bool], list[str]]:
    """Which versions complete a whole nassl handshake, and the chain's subjects of the first
    one: the oracle for the raw-hello version probe (watchtower/net/tlshello.py)."""
    from watchtower.net import _sslyze_steps as steps
    from watchtower.net.tlsscan_result import VERSION_NAMES, TlsScan

    scan = TlsScan(host, port, "127.0.0.1", starttls)
    session = scanner._session(steps, scan, deadline)
    versions: dict[str, bool] = {}
    chain: list[dict[str, Any]] = []
    for name in VERSION_NAMES:
        try:
            conn = session.handshake(name)
        except Exception:  # refused, whichever way nassl says it
            versions[name] = False
            continue
        versions[name] = True
        chain = chain or steps._chain(conn.ssl_client.get_received_chain())
    return versions, [c["subject"] for c in chain]


def test_raw_hello_versions_equal_whole_handshakes(tls_world: TlsWorld) -> None:
    """Every nginx and Postfix case: the versions a hello's ServerHello accepts are those a
    whole nassl handshake completes, and the chain the scan grades is the one nassl's first
    completed handshake received."""
    fleet = tls_world.fleet(endpoints=[{"url": tls_world.url("good")}])
    servers = _every_tls_server(tls_world)
    for host, port, starttls in servers:
        sweep = SweepClients(fleet)
        try:
            ctx = sweep.context(time.monotonic() + TIMEOUT)
            scan = ctx.tls_scan.scan(host, port, deadline=ctx.deadline, starttls=starttls,
                                     web=starttls is None)
            oracle = _handshakes(ctx.tls_scan, host, port, starttls, ctx.deadline)
        finally:
            sweep.close()
        assert (scan.versions, [c["subject"] for c in scan.chain]) == oracle, (host, port)


def test_unreachable_server_is_an_error(tls_world: TlsWorld) -> None:
    from tests.servers.base import free_port

    port = free_port()
    fleet = tls_world.fleet(endpoints=[{"url": f"https://{tls_cases.host('good')}:{port}/"}])
    result = _run(fleet, "web.tls.ncsc", f"{tls_cases.host('good')}:{port}")
    assert result.status == "error", result.summary
    assert "cannot connect" in result.summary or "rejected" in result.summary, result.summary


@pytest.fixture(scope="module")
def mail(tls_world: TlsWorld) -> dict[str, Result]:
    """One mail.starttls.ncsc result per Postfix MX case."""
    out = {}
    for case in tls_world.mail.mx_cases:
        domain = tls_cases.mail_domain(case)
        fleet = tls_world.fleet(smtp_case=case, mail_domains=[{"name": domain}])
        out[case] = _run(fleet, "mail.starttls.ncsc", domain)
    return out


# (case, criterion, NCSC-NL level, internet.nl status of the mail test)
MAIL_EXPECTED = [
    ("good", "starttls_exists", None, "passed"),
    ("good", "tls_version", "sufficient", "passed"),
    ("good", "tls_ciphers", "sufficient", "passed"),
    ("good", "cert_trust", "good", "passed"),
    ("good", "cert_pubkey", "sufficient", "passed"),
    ("good", "zero_rtt", "good", "passed"),  # not tested over SMTP, as internet.nl
    ("legacy", "tls_version", "insufficient", "failed"),
    ("legacy", "tls_ciphers", "insufficient", "failed"),
    ("legacy", "cert_pubkey", "phase out", "warning"),
    ("weak-dh", "key_exchange", "insufficient", "failed"),
    ("rsa-1024", "cert_pubkey", "insufficient", "failed"),
    ("no-starttls", "starttls_exists", None, "failed"),
]


@pytest.mark.parametrize(("case", "criterion", "level", "status"), MAIL_EXPECTED,
                         ids=[f"{c}:{k}" for c, k, _, _ in MAIL_EXPECTED])
def test_mail_criterion(mail: dict[str, Result], case: str, criterion: str, level: str | None,
                        status: str) -> None:
    crit = _criteria(mail[case])[criterion]
    assert crit["level"] == level, crit
    assert set(crit["internetnl"].values()) == {status}, crit


@pytest.mark.parametrize(("case", "status"), [
    ("legacy", "fail"), ("weak-dh", "fail"), ("rsa-1024", "fail"), ("no-starttls", "fail"),
])
def test_mail_verdict(mail: dict[str, Result], case: str, status: str) -> None:
    assert mail[case].status == status, mail[case].summary


def test_mail_evidence_carries_the_mail_ids(mail: dict[str, Result]) -> None:
    ids = {i for c in mail["good"].evidence["criteria"] for i in c["internetnl"]}
    assert {"mail_starttls_tls_available", "mail_starttls_tls_version",
            "mail_starttls_tls_ciphers", "mail_starttls_cert_pubkey",
            "mail_starttls_cert_domain"} <= ids
    assert not any(i.startswith("web_") for i in ids)


def test_headers_of_a_good_site_pass_internetnl_rules(tls_world: TlsWorld) -> None:
    fleet = tls_world.fleet(endpoints=[{"url": tls_world.url("good")}])
    site = tls_world.nginx.site("good")
    result = _run(fleet, "web.headers", f"{site.host}:{site.port}")
    assert result.status == "ok", result.summary
    statuses = {c["criterion"]: set(c["internetnl"].values()) for c in
                result.evidence["criteria"]}
    assert statuses == {"x_frame_options": {"passed"}, "x_content_type_options": {"passed"},
                        "csp": {"passed"}, "referrer_policy": {"passed"},
                        "http_compression": {"passed"}}


def test_http_compression_over_https_is_reported(tls_world: TlsWorld) -> None:
    """nginx with gzip on answers the client's Accept-Encoding: gzip compressed (BREACH)."""
    fleet = tls_world.fleet(endpoints=[{"url": tls_world.url("http-compression")}])
    site = tls_world.nginx.site("http-compression")
    result = _run(fleet, "web.headers", f"{site.host}:{site.port}")
    crit = _criteria(result)["http_compression"]
    assert crit["internetnl"] == {"web_https_http_compress": "info"}, crit
    assert crit["level"] == "phase out"
    assert _criteria(result)["csp"]["internetnl"] == {"web_appsecpriv_csp": "warning"}
    assert result.status == "warn"  # no CSP, no nosniff: recommended tests


def test_ipv6_reachability_is_a_connect_not_only_an_aaaa(tls_world: TlsWorld) -> None:
    """Name servers and the good site answer on ::1; the good MX has an AAAA (::1) but
    Postfix listens on IPv4 only: internet.nl's mx_reach fails, mx_aaaa passes."""
    site = tls_world.nginx.site("good")
    case = "good"
    fleet = tls_world.fleet(
        smtp_case=case, probe={"authoritative_port": tls_world.dns.port},
        zones=[{"name": tls_cases.ZONE}], endpoints=[{"url": tls_world.url("good")}],
        mail_domains=[{"name": tls_cases.mail_domain(case), "mta_sts": False}])
    result = _run(fleet, "dns.ipv6", tls_cases.ZONE)
    shown = {i: s for c in result.evidence["criteria"] for i, s in c["internetnl"].items()}
    assert shown["web_ipv6_ns_address"] == shown["web_ipv6_ns_reach"] == "passed", shown
    assert shown["web_ipv6_ws_address"] == shown["web_ipv6_ws_reach"] == "passed", shown
    assert shown["mail_ipv6_mx_address"] == "passed", shown
    assert shown["mail_ipv6_mx_reach"] == "failed", shown
    assert result.status == "fail"
    assert f"{tls_cases.mx_host(case)}." in result.summary and "does not answer" in \
        result.summary
    assert site.port in {e["port"] for e in result.evidence["web"]}


def test_a_hung_tls_server_is_an_error_within_the_check_timeout(tls_world: TlsWorld) -> None:
    """A server that accepts and never answers: `error` at or before the deadline, not a
    grade and not a hang (each handshake gets what is left of the probe's deadline)."""
    import threading

    from tests.unit.net.helpers import tcp_server

    release = threading.Event()

    def stall(conn: object) -> None:
        release.wait(30)

    with tcp_server(stall) as port:
        host = tls_cases.host("good")
        fleet = tls_world.fleet(endpoints=[{"url": f"https://{host}:{port}/"}])
        check = registry.checks()["web.tls.ncsc"]
        target = next(t for t in fleet.targets() if t.name == f"{host}:{port}")
        sweep = SweepClients(fleet)
        try:
            result = execute(Job(check, target, 12.0), sweep.context(time.monotonic() + 12.0))
        finally:
            sweep.close()
            release.set()
    assert result.status == "error", result.summary
    # the scan itself gave up (not the runner's watchdog abandoning a hung probe)
    assert "no TLS handshake answered" in result.summary or "deadline" in result.summary, \
        result.summary
