"""The stand-ins behind a real threaded WSGI server on loopback: streamed bodies stream, a hang
times the client out and ends when the stop event is set, Host-header ports reach the links."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests

from watchtower.lab.apps import MastodonApp, PrefixRouter, StaticSiteApp

HOST = "social.example.test"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Threaded(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


@pytest.fixture
def served() -> Iterator[tuple[str, MastodonApp, threading.Event]]:
    stop = threading.Event()
    app = MastodonApp(HOST, stop=stop, drip_interval=0.02, huge_body_size=64 << 20)
    router = PrefixRouter([("/.well-known/security.txt", StaticSiteApp(HOST, stop=stop))],
                          default=app)
    server = make_server("127.0.0.1", 0, router, server_class=_Threaded, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", app, stop
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def get(base: str, path: str, **kw: Any) -> requests.Response:
    port = base.rsplit(":", 1)[1]
    headers = {"Host": f"{HOST}:{port}", **kw.pop("headers", {})}
    return requests.get(base + path, headers=headers, timeout=kw.pop("timeout", 5), **kw)


def test_links_carry_the_port_from_the_host_header(served: Any) -> None:
    base, _, _ = served
    port = base.rsplit(":", 1)[1]
    jrd = get(base, f"/.well-known/webfinger?resource=acct:watchtower@{HOST}").json()
    assert f"https://{HOST}:{port}/users/watchtower" in jrd["aliases"]
    assert "Contact:" in get(base, "/.well-known/security.txt").text


def test_huge_body_streams(served: Any) -> None:
    base, app, _ = served
    app.faults = {"huge-body"}
    with get(base, "/health", stream=True) as response:
        assert response.status_code == 200
        chunks = response.iter_content(chunk_size=65536)
        received = sum(len(next(chunks)) for _ in range(8))
    assert received == 8 * 65536


def test_slow_drip_arrives_whole(served: Any) -> None:
    base, app, _ = served
    app.faults = {"slow-drip"}
    started = time.monotonic()
    assert get(base, "/health").text == "OK"
    assert time.monotonic() - started >= 0.015  # "OK": two bytes, one 0.02 s gap


def test_hang_times_out_and_ends_on_stop(served: Any) -> None:
    base, app, stop = served
    app.faults = {"hang"}
    with pytest.raises(requests.exceptions.ReadTimeout):
        get(base, "/health", timeout=0.3)
    app.faults = set()
    assert get(base, "/health").text == "OK"  # other requests are served meanwhile
    app.faults = {"hang"}
    threading.Timer(0.2, stop.set).start()
    assert get(base, "/health", timeout=5).status_code == 503
