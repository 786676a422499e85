"""Serving /metrics: the WSGI app (basic auth compared in constant time, gzip), and a small
threading wsgiref server in a background thread."""

from __future__ import annotations

import base64
import hmac
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from watchtower.metrics.page import CONTENT_TYPE, MetricsPage

log = logging.getLogger(__name__)


def _authorized(header: str | None, expected: tuple[str, str] | None) -> bool:
    if expected is None:
        return True
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return (hmac.compare_digest(user.encode(), expected[0].encode())
            & hmac.compare_digest(password.encode(), expected[1].encode()))

class MetricsApp:
    """WSGI app: `/metrics` (optionally behind basic auth), `/-/healthy`."""

    def __init__(self, page: MetricsPage, credentials: tuple[str, str] | None = None) -> None:
        self.page = page
        self.credentials = credentials

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/-/healthy":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"see /metrics\n"]
        if not _authorized(environ.get("HTTP_AUTHORIZATION"), self.credentials):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", 'Basic realm="watchtower"')])
            return [b"unauthorized\n"]
        try:
            plain, packed = self.page.render_both()
        except Exception as exc:
            log.error("rendering /metrics failed: %s", exc)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"store unavailable\n"]
        headers = [("Content-Type", CONTENT_TYPE), ("Vary", "Accept-Encoding")]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = packed
            headers.append(("Content-Encoding", "gzip"))
        else:
            body = plain
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]

class _ThreadingServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._handle, args=(request, client_address),
                                  daemon=True)
        thread.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics %s", format % args)

class MetricsServer:
    """Serves a MetricsApp on host:port in a background thread; `port` is the bound one."""

    def __init__(self, app: Any, listen: str) -> None:  # MetricsApp, or DaemonApp around it
        host, _, port = listen.rpartition(":")
        self.app = app
        self.httpd = make_server(host.strip("[]") or "127.0.0.1", int(port), app,
                                 server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics",
                                        daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

def credentials_of(auth: Any) -> tuple[str, str] | None:
    """(user, password) from [metrics] auth, read now (a Secret), or None."""
    if auth is None:
        return None
    return (auth.username, auth.password.reveal())
