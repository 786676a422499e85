"""web.* checks against the lab's static-site stand-in behind the lab's HTTPS front, plus the
hostile behaviours every probe must survive: each ends as a verdict or an `error` with a reason,
within the check's timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import watchtower.checks.web as web

from tests.integration.web.labnet import LabNet, labnet, run_check, target_of
from tests.unit.net.helpers import tcp_server
from watchtower.lab.apps import HttpRedirectApp, StaticSiteApp

HOST = "www.example.test"
UNTRUSTED = "self.example.test"


@pytest.fixture(scope="module")
def site_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabNet, StaticSiteApp,
                                                                         HttpRedirectApp]]:
    stop = threading.Event()
    site = StaticSiteApp(HOST, stop=stop, drip_interval=0.5)
    redirect = HttpRedirectApp(stop=stop)
    with labnet(tmp_path_factory.mktemp("web"), {HOST: site, UNTRUSTED: StaticSiteApp(UNTRUSTED)},
                http_sites={HOST: redirect}, bad_certs={UNTRUSTED: "untrusted"}) as net:
        redirect.https_port = net.web.https_port
        yield net, site, redirect
        stop.set()


def _run(net: LabNet, check: web.Check, host: str = HOST, timeout: float = 6.0):  # type: ignore[no-untyped-def]
    fleet = net.fleet(endpoints=[{"url": net.url(host)}])
    return run_check(fleet, check, target_of(fleet, f"{host}:{net.web.https_port}"), timeout)


def test_healthy_site_passes_every_web_check(site_net) -> None:  # type: ignore[no-untyped-def]
    net, site, redirect = site_net
    site.faults, redirect.faults = set(), set()
    for check in (web.TlsCertificate(), web.TlsVersion(), web.HttpsRedirect(), web.Hsts(),
                  web.SecurityHeaders(), web.SecurityTxt()):
        result = _run(net, check)
        assert result.status == "ok", (check.meta.id, result.summary)
    assert "TLSv1.3" in _run(net, web.TlsVersion()).summary


@pytest.mark.parametrize(("check", "fault", "status", "fragment"), [
    (web.Hsts, "no-hsts", "warn", "no Strict-Transport-Security"),
    (web.Hsts, "weak-hsts", "warn", "max-age=86400"),
    (web.SecurityHeaders, "no-headers", "warn", "X-Content-Type-Options"),
    (web.SecurityTxt, "security-txt-missing", "warn", "HTTP 404"),
    (web.SecurityTxt, "security-txt-expired", "warn", "in the past"),
    (web.SecurityTxt, "security-txt-no-contact", "warn", "Contact"),
    (web.SecurityTxt, "redirect-loop", "warn", "redirect loop"),
    (web.SecurityTxt, "huge-body", "warn", "cut off"),
    (web.SecurityTxt, "invalid-utf8", "warn", "UTF-8"),
])
def test_site_faults(site_net, check, fault, status, fragment) -> None:  # type: ignore[no-untyped-def]
    net, site, _ = site_net
    site.faults = {fault}
    try:
        started = time.monotonic()
        result = _run(net, check())
    finally:
        site.faults = set()
    assert result.status == status, result.summary
    assert fragment in result.summary
    assert time.monotonic() - started < 6


@pytest.mark.parametrize(("fault", "fragment"), [("no-redirect", "without a redirect"),
                                                 ("redirect-other-host", "www.www.example.test")])
def test_http_redirect_faults(site_net, fault, fragment) -> None:  # type: ignore[no-untyped-def]
    net, _, redirect = site_net
    redirect.faults = {fault}
    try:
        result = _run(net, web.HttpsRedirect())
    finally:
        redirect.faults = set()
    assert result.status == "fail" and fragment in result.summary


@pytest.mark.parametrize("fault", ["hang", "slow-drip"])
def test_stalling_answers_end_as_error_within_the_timeout(site_net, fault) -> None:  # type: ignore[no-untyped-def]
    net, site, _ = site_net
    site.faults = {fault}
    try:
        started = time.monotonic()
        result = _run(net, web.SecurityTxt(), timeout=2.0)
        took = time.monotonic() - started
    finally:
        site.faults = set()
    assert result.status == "error", result.summary
    assert took < 3.5


def test_unknown_ca_is_a_fail_not_an_error(site_net) -> None:  # type: ignore[no-untyped-def]
    net, _, _ = site_net
    cert = _run(net, web.TlsCertificate(), UNTRUSTED)
    assert cert.status == "fail" and "not trusted" in cert.summary
    hsts = _run(net, web.Hsts(), UNTRUSTED)
    assert hsts.status == "fail" and "certificate" in hsts.summary


def test_stalled_tls_handshake_is_an_error_within_the_timeout(site_net, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net, _, _ = site_net

    def stall(conn: socket.socket) -> None:
        time.sleep(5)

    with tcp_server(stall) as port:
        fleet = net.fleet(endpoints=[{"url": f"https://{HOST}:{port}/"}])
        target = target_of(fleet, f"{HOST}:{port}")
        for check in (web.TlsCertificate(), web.Hsts()):
            started = time.monotonic()
            result = run_check(fleet, check, target, timeout=1.5)
            assert result.status == "error", result.summary
            assert time.monotonic() - started < 3
