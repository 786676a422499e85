"""The shared plumbing: request parsing, fault switching and the hostile behaviours."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from typing import Any

import pytest

from watchtower.lab.apps import APP_KINDS, HOSTILE_FAULTS, LabApp, PrefixRouter, all_faults
from watchtower.lab.apps.common import (
    CHUNK_SIZE,
    DEFAULT_HUGE_BODY_SIZE,
    Request,
    Response,
    json_response,
    older_version,
    text_response,
)

from .wsgi_client import call, environ_for, open_stream


class EchoApp(LabApp):
    """A tiny app: JSON at /json, text elsewhere."""

    def handle(self, req: Request, faults: frozenset[str]) -> Response:
        if req.path == "/json":
            return json_response({"hello": "world", "path": req.path})
        return text_response(f"path={req.path} q={req.query_string}\n")


def test_request_parses_host_port_and_query() -> None:
    req = Request.from_environ(environ_for("https://Example.TEST:8443/a%20b?x=1&x=2&y="))
    assert (req.host, req.port, req.path) == ("example.test", 8443, "/a b")
    assert req.query == {"x": ["1", "2"], "y": [""]}
    assert req.base_url("other.test") == "https://other.test:8443"
    v6 = Request.from_environ(environ_for("https://[::1]:443/"))
    assert (v6.host, v6.port) == ("::1", 443)
    assert Request.from_environ(environ_for("https://h.test:443/")).base_url() == "https://h.test"
    assert Request.from_environ(environ_for("https://h.test/")).base_url() == "https://h.test"


@pytest.mark.parametrize(("declared", "older"), [
    ("4.3.2", "4.3.1"), ("6.3.0", "6.2.0"), ("v1.1.0", "v1.0.0"), ("1.120.2", "1.120.1"),
    ("0.12.4", "0.12.3"), ("0.0.0", "0.0.0-old"),
])
def test_older_version(declared: str, older: str) -> None:
    assert older_version(declared) == older


def test_fault_names_are_validated_and_switchable() -> None:
    app = EchoApp()
    with pytest.raises(ValueError, match="no-such-fault"):
        app.faults = {"no-such-fault"}
    with pytest.raises(ValueError):
        EchoApp(faults=["nope"])
    app.enable("invalid-json")
    assert app.faults == {"invalid-json"}
    app.faults = {"invalid-utf8", "slow-drip"}
    app.disable("slow-drip")
    assert app.faults == {"invalid-utf8"}
    assert {f.name for f in EchoApp.supported_faults()} == {f.name for f in HOSTILE_FAULTS}


def test_fault_set_is_snapshotted_per_request() -> None:
    app = EchoApp(faults=["slow-drip"], drip_interval=0.0)
    status, _, body = open_stream(app, "https://e.test/json")
    app.faults = set()  # switching off mid-response does not change the running one
    chunks = list(body)
    body.close()  # type: ignore[attr-defined]
    assert status == 200 and len(chunks) > 1 and all(len(c) == 1 for c in chunks)
    _, _, later = open_stream(app, "https://e.test/json")
    assert len(list(later)) == 1  # the next request sees the new set: one whole chunk
    later.close()  # type: ignore[attr-defined]


def test_every_registered_app_lists_the_hostile_faults() -> None:
    hostile = [(f.name, f.description) for f in HOSTILE_FAULTS]
    for kind, faults in all_faults().items():
        assert faults[-len(hostile):] == hostile, kind
        names = [name for name, _ in faults]
        assert len(names) == len(set(names)), f"{kind} lists a fault twice"
        for name, description in faults:
            assert name == name.lower() and " " not in name
            assert description and "\n" not in description
    assert set(all_faults()) == set(APP_KINDS)


def test_hang_waits_until_the_stop_event() -> None:
    stop = threading.Event()
    app = EchoApp(faults=["hang"], stop=stop)
    assert app.hang_seconds >= 600  # far past any probe timeout by default
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    started = time.monotonic()
    result = call(app, "https://e.test/")
    elapsed = time.monotonic() - started
    timer.join()
    assert 0.15 < elapsed < 5
    assert result.status == 503


def test_hang_gives_up_after_hang_seconds() -> None:
    app = EchoApp(faults=["hang"], stop=threading.Event(), hang_seconds=0.05)
    assert call(app, "https://e.test/").status == 504


def test_huge_body_is_lazy() -> None:
    app = EchoApp(faults=["huge-body"], stop=threading.Event())
    assert app.huge_body_size == DEFAULT_HUGE_BODY_SIZE == 1 << 30
    tracemalloc.start()
    try:
        status, headers, body = open_stream(app, "https://e.test/json")
        iterator = iter(body)
        first = [next(iterator) for _ in range(4)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        body.close()  # type: ignore[attr-defined]
    assert status == 200
    assert not isinstance(body, list | tuple | bytes)
    assert all(len(chunk) == CHUNK_SIZE for chunk in first)
    assert not any(k.lower() == "content-length" for k, _ in headers)
    assert peak < 8 * 1024 * 1024, f"huge-body allocated {peak} bytes"


def test_huge_body_has_exactly_the_configured_size() -> None:
    app = EchoApp(faults=["huge-body"], huge_body_size=3 * CHUNK_SIZE + 10,
                  stop=threading.Event())
    result = call(app, "https://e.test/")
    assert len(result.body) == 3 * CHUNK_SIZE + 10


def test_huge_body_ends_when_stopped() -> None:
    stop = threading.Event()
    app = EchoApp(faults=["huge-body"], stop=stop)
    _, _, body = open_stream(app, "https://e.test/")
    iterator = iter(body)
    next(iterator)
    stop.set()
    rest = list(iterator)
    body.close()  # type: ignore[attr-defined]
    assert len(rest) <= 1


def test_slow_drip_sends_one_byte_per_interval() -> None:
    app = EchoApp(faults=["slow-drip"], stop=threading.Event())
    assert app.drip_interval == 1.0
    started = time.monotonic()
    _, headers, body = open_stream(app, "https://e.test/json")
    iterator = iter(body)
    first = next(iterator)
    after_first = time.monotonic() - started
    second = next(iterator)
    after_second = time.monotonic() - started
    body.close()  # type: ignore[attr-defined]
    assert first == b"{" and len(second) == 1
    assert after_first < 0.5
    assert after_second >= 0.9
    expected = len(json.dumps({"hello": "world", "path": "/json"}, separators=(",", ":")))
    assert dict(headers)["Content-Length"] == str(expected)


def test_slow_drip_delivers_the_real_body() -> None:
    app = EchoApp(faults=["slow-drip"], drip_interval=0.001, stop=threading.Event())
    result = call(app, "https://e.test/json")
    assert result.json() == {"hello": "world", "path": "/json"}


def test_redirect_loop_bounces_between_two_urls() -> None:
    app = EchoApp(faults=["redirect-loop"])
    first = call(app, "https://e.test/json?a=1")
    assert first.status == 302
    location = first.header("Location")
    assert location == "/json?a=1&wt-loop=1"
    second = call(app, f"https://e.test{location}")
    assert second.status == 302 and second.header("Location") == "/json?a=1"


def test_invalid_json_breaks_json_only() -> None:
    app = EchoApp(faults=["invalid-json"])
    broken = call(app, "https://e.test/json")
    assert broken.status == 200 and "json" in (broken.header("Content-Type") or "")
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.body)
    assert call(app, "https://e.test/text").text.startswith("path=/text")


def test_invalid_utf8() -> None:
    app = EchoApp(faults=["invalid-utf8"])
    for path in ("/json", "/text"):
        with pytest.raises(UnicodeDecodeError):
            call(app, f"https://e.test{path}").body.decode("utf-8")


def test_head_sends_headers_only() -> None:
    app = EchoApp()
    get = call(app, "https://e.test/json")
    head = call(app, "https://e.test/json", method="HEAD")
    assert head.body == b"" and head.header("Content-Length") == get.header("Content-Length")


def test_prefix_router_picks_the_longest_prefix() -> None:
    def named(name: str) -> Any:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [name.encode()]
        return app

    router = PrefixRouter([("/.well-known/", named("wk")), ("/.well-known/matrix/", named("mx"))],
                          default=named("site"))
    assert call(router, "https://e.test/.well-known/matrix/server").text == "mx"
    assert call(router, "https://e.test/.well-known/webfinger").text == "wk"
    assert call(router, "https://e.test/").text == "site"
    assert call(PrefixRouter([]), "https://e.test/").status == 404
