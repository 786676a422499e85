"""The lab's web front: one threaded HTTPS listener (SNI picks the certificate per host name)
and one plain HTTP listener, both dispatching by Host header to WSGI apps.

The TLS handshake runs in the request's own thread, never in the accept loop, so a client that
stalls its handshake blocks nobody else.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def not_found_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no lab site here\n"]


class HostDispatch:
    """Routes a request to the app registered for its Host header (port ignored)."""

    def __init__(self) -> None:
        self.apps: dict[str, WsgiApp] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0].lower().strip("[]")
        return self.apps.get(host, not_found_app)(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("lab http: " + format, *args)

    def setup(self) -> None:
        sock = self.request
        if isinstance(sock, ssl.SSLSocket):
            sock.settimeout(10)
            try:
                sock.do_handshake()
            except (OSError, ssl.SSLError):
                self._broken = True
        self._broken = getattr(self, "_broken", False)
        super().setup()

    def handle(self) -> None:
        if self._broken:
            return
        with contextlib.suppress(OSError, ssl.SSLError):
            super().handle()


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext | None) -> None:
        self.tls = tls
        super().__init__(address, _QuietHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("lab http: error from %s", client_address)


class WebFront:
    """HTTPS on `https_port` and HTTP on `http_port`, with per-host certificates and apps."""

    def __init__(self, address: str = "127.0.0.1", https_port: int = 0, http_port: int = 0
                 ) -> None:
        self.address = address
        self.https_port = https_port
        self.http_port = http_port
        self.https_apps = HostDispatch()
        self.http_apps = HostDispatch()
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._paths: dict[str, tuple[str, str]] = {}
        self._default: ssl.SSLContext | None = None
        self._servers: list[_Server] = []

    def add_certificate(self, host: str, cert_path: str, key_path: str) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        self._contexts[host.lower()] = ctx
        if self._default is None:
            self._default = ctx

    def _sni(self, sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        chosen = self._contexts.get((name or "").lower())
        if chosen is not None:
            sslobj.context = chosen

    def start(self) -> None:
        if self._default is None:
            raise RuntimeError("the web front needs at least one certificate")
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        base.sni_callback = self._sni
        # The default certificate answers clients that send no SNI.
        first_host = next(iter(self._contexts))
        base.load_cert_chain(*self._paths[first_host])
        https = _Server((self.address, self.https_port), base)
        https.set_app(self.https_apps)
        self.https_port = https.server_address[1]
        http = _Server((self.address, self.http_port), None)
        http.set_app(self.http_apps)
        self.http_port = http.server_address[1]
        for srv in (https, http):
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                             daemon=True, name="lab-web").start()
            self._servers.append(srv)

    def add_site(self, host: str, cert_path: str, key_path: str, app: WsgiApp,
                 http_app: WsgiApp | None = None) -> None:
        self._paths[host.lower()] = (cert_path, key_path)
        self.add_certificate(host, cert_path, key_path)
        self.https_apps.apps[host.lower()] = app
        if http_app is not None:
            self.http_apps.apps[host.lower()] = http_app

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        self._servers.clear()
