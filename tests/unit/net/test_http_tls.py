"""The HTTP and TLS seams against loopback servers, including hostile ones."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.unit.net.helpers import dns_server, tcp_server
from watchtower.errors import ProbeError
from watchtower.lab.ca import LabCA
from watchtower.lab.https import WebFront
from watchtower.net.dns import Resolver, Server
from watchtower.net.http import HttpClient
from watchtower.net.tls import TlsProber

ZONE = """
$TTL 300
@ IN SOA ns1 hostmaster 1 14400 3600 1209600 3600
@ IN NS ns1
ns1 IN A 127.0.0.1
site IN A 127.0.0.1
other IN A 127.0.0.1
raw IN A 127.0.0.1
"""

#: Seconds the test site takes to answer /slow.
SLOW = 1.2


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/loop":
        start_response("302 Found", [("Location", "/loop2")])
        return [b""]
    if path == "/loop2":
        start_response("302 Found", [("Location", "/loop")])
        return [b""]
    if path == "/hop":
        start_response("301 Moved", [("Location", "/final")])
        return [b""]
    if path == "/slow":
        time.sleep(SLOW)
    if path == "/huge":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (b"z" * 65536 for _ in range(16384))  # 1 GiB, streamed
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Test", "yes")])
    return [b"hello " + path.encode()]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d: Path = tmp_path_factory.mktemp("web")
    ca = LabCA(d / "ca")
    with dns_server({"example.test.": ZONE}) as dns:
        front = WebFront("127.0.0.1", 0, 0)
        site = ca.issue(["site.example.test"])
        front.add_site("site.example.test", str(site.cert_path), str(site.key_path), app, app)
        stranger = LabCA(d / "other-ca").issue(["other.example.test"])
        front.add_site("other.example.test", str(stranger.cert_path), str(stranger.key_path), app)
        front.start()
        resolver = Resolver([Server("127.0.0.1", dns.port)], timeout=2)
        yield {"front": front, "resolver": resolver, "ca": str(ca.cert_path)}
        front.stop()


def client(net, **kw) -> HttpClient:  # type: ignore[no-untyped-def]
    return HttpClient(net["resolver"], ca_bundle=net["ca"], timeout=2, **kw)


def url(net, host: str, path: str) -> str:  # type: ignore[no-untyped-def]
    return f"https://{host}:{net['front'].https_port}{path}"


def test_get_through_fleet_resolver_with_sni(net) -> None:  # type: ignore[no-untyped-def]
    resp = client(net).get(url(net, "site.example.test", "/x"))
    assert resp.status == 200 and resp.body == b"hello /x" and resp.headers["x-test"] == "yes"


def test_redirects_are_recorded_and_loops_stopped(net) -> None:  # type: ignore[no-untyped-def]
    resp = client(net).get(url(net, "site.example.test", "/hop"))
    assert resp.body == b"hello /final" and resp.history[0][0] == 301
    first = client(net).get(url(net, "site.example.test", "/hop"), follow_redirects=False)
    assert first.status == 301 and first.headers["location"] == "/final"
    with pytest.raises(ProbeError) as err:
        client(net).get(url(net, "site.example.test", "/loop"))
    assert err.value.kind == "redirect-loop"


def test_huge_body_is_capped(net) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    resp = client(net, max_body=100_000).get(url(net, "site.example.test", "/huge"))
    assert resp.truncated and len(resp.body) == 100_000
    assert time.monotonic() - started < 2
    with pytest.raises(ProbeError):
        resp.json()


def test_unknown_ca_is_a_tls_error(net) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProbeError) as err:
        client(net).get(url(net, "other.example.test", "/"))
    assert err.value.kind == "tls"


def test_tls_probe_reports_chain_and_verification(net) -> None:  # type: ignore[no-untyped-def]
    prober = TlsProber(net["resolver"], net["ca"], timeout=2)
    good = prober.probe("site.example.test", net["front"].https_port)
    assert good.verified and good.version in ("TLSv1.2", "TLSv1.3")
    assert good.leaf is not None and good.leaf.names == ["site.example.test"]
    assert len(good.chain) == 2  # leaf + the lab CA sent by the server
    bad = prober.probe("other.example.test", net["front"].https_port)
    assert not bad.verified and bad.verify_error and bad.leaf is not None
    assert not prober.accepts_version("site.example.test", net["front"].https_port, "TLSv1")


def _slow_drip(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(100):
        conn.sendall(b"x")
        time.sleep(0.2)


def _never_answers(conn: socket.socket) -> None:
    time.sleep(5)


def _concurrently(n: int, call: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: call(), range(n)))


def test_concurrent_requests_to_one_site_share_its_kept_alive_connection(net) -> None:  # type: ignore[no-untyped-def]
    http = client(net)
    target = url(net, "site.example.test", "/same")
    answers = _concurrently(8, lambda: http.get(target, shared=False))
    assert [a.status for a in answers] == [200] * 8
    pools = http._session.get_adapter(target).poolmanager.pools
    # urllib3's pool container refuses iteration; keys() is its way to list them
    made = [pools[key].num_connections for key in pools.keys()]  # noqa: SIM118
    assert made == [1]  # eight checks, one TLS handshake


def test_a_slow_site_still_gets_its_requests_in_parallel(net) -> None:  # type: ignore[no-untyped-def]
    """Taking turns has patience: three checks of a site that answers in SLOW seconds, each
    with 3 s to spare, all finish; in a strict queue the third would time out."""
    http = client(net, max_body=1024)
    target = url(net, "site.example.test", "/slow")
    started = time.monotonic()
    answers = _concurrently(3, lambda: http.get(target, shared=False, timeout=3.0))
    assert [a.status for a in answers] == [200] * 3
    assert time.monotonic() - started < SLOW * 2 + 0.6
    # Latency is the site's, not the wait for a turn.
    assert all(a.elapsed_ms < (SLOW + 0.5) * 1000 for a in answers)


def test_slow_drip_is_cut_at_the_deadline(net) -> None:  # type: ignore[no-untyped-def]
    with tcp_server(_slow_drip) as port:
        started = time.monotonic()
        with pytest.raises(ProbeError) as err:
            client(net).get(f"http://raw.example.test:{port}/", deadline=time.monotonic() + 1.0)
        assert err.value.kind == "timeout"
        assert time.monotonic() - started < 1.6


def test_stalled_tls_handshake_times_out(net) -> None:  # type: ignore[no-untyped-def]
    with tcp_server(_never_answers) as port:
        prober = TlsProber(net["resolver"], net["ca"], timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ProbeError) as err:
            prober.probe("raw.example.test", port)
        assert err.value.kind == "timeout"
        assert time.monotonic() - started < 1.5
        with pytest.raises(ProbeError):
            client(net).get(f"https://raw.example.test:{port}/", timeout=0.5)


def test_unresolvable_host_is_unreachable(net) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProbeError) as err:
        client(net).get("https://missing.example.test/")
    assert err.value.kind == "unreachable"
