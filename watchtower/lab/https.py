"""The lab's web front: one threaded HTTPS listener (SNI picks the certificate per host name)
and one plain HTTP listener, both dispatching by Host header to WSGI apps.

The TLS handshake runs in the request's own thread, never in the accept loop, so a client that
stalls its handshake blocks nobody else.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import itertools
import logging
import socket
import socketserver
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

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


#: Seconds an idle keep-alive connection is kept open before the lab closes it.
KEEPALIVE_IDLE = 5.0
#: Largest request body the lab reads (its apps take small JSON and S3 test objects).
MAX_REQUEST_BODY = 16 << 20


class _Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive in front of WSGI apps.

    Not wsgiref's handler: that one answers one request per connection (HTTP/1.0), so every
    probe paid a TLS handshake and the lab's front measured ~100-400 requests/s under a
    benchmark. A buffered answer (the app returns a list, as every stand-in does for a plain
    body) gets a Content-Length and keeps the connection; a streamed one (the huge-body and
    slow-drip faults) is sent as it comes and the connection closes after it.
    """

    protocol_version = "HTTP/1.1"
    timeout = KEEPALIVE_IDLE
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("lab http: " + format, *args)

    def setup(self) -> None:
        sock = self.request
        self._broken = False
        if isinstance(sock, ssl.SSLSocket):
            sock.settimeout(10)
            try:
                sock.do_handshake()
            except (OSError, ssl.SSLError):
                self._broken = True
        super().setup()

    def handle(self) -> None:
        if self._broken:
            return
        with contextlib.suppress(OSError, ssl.SSLError):
            super().handle()

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except TimeoutError:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        self._run_app()
        self.wfile.flush()

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command, "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, "iso-8859-1"), "QUERY_STRING": query,
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version, "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)) if body else "",
            "wsgi.version": (1, 0), "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "https" if self.server.tls is not None else "http",
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _run_app(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST_BODY:
            self.send_error(413 if length > 0 else 400)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        started: list[Any] = []
        written: list[bytes] = []  # WSGI's legacy write(): kept until the headers are out

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            started[:] = [status, headers]
            return written.append

        result = self.server.get_app()(self._environ(body), start_response)
        status, headers = started
        buffered = isinstance(result, list | tuple)
        if written:
            result = [*written, *result] if buffered else itertools.chain(written, result)
        names = {h[0].lower() for h in headers}
        payload = b"".join(result) if buffered else b""
        if buffered and "content-length" not in names:
            headers = [*headers, ("Content-Length", str(len(payload)))]
        if not buffered or self.close_connection:
            headers = [h for h in headers if h[0].lower() != "connection"]
            headers.append(("Connection", "close"))
            self.close_connection = True
        head = f"{self.protocol_version} {status}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        if buffered:
            self.wfile.write(head.encode("latin-1")
                             + (b"" if self.command == "HEAD" else payload))
            return
        try:
            self.wfile.write(head.encode("latin-1"))
            for chunk in result:
                if chunk:
                    self.wfile.write(chunk)
                    self.wfile.flush()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext | None) -> None:
        self.tls = tls
        self._app: WsgiApp = not_found_app
        super().__init__(address, _Handler)

    def set_app(self, app: WsgiApp) -> None:
        self._app = app

    def get_app(self) -> WsgiApp:
        return self._app

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("lab http: error from %s", client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


#: The healthy lab's TLS 1.2 suites: ECDHE with AES-GCM or ChaCha20 only, "sufficient" by
#: the NCSC-NL TLS guidelines (OpenSSL's default list still has SHA-1 CBC suites, which are
#: insufficient). TLS 1.3 keeps its defaults (all good or sufficient).
LAB_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def _server_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(LAB_TLS12_CIPHERS)
    return ctx


class WebFront:
    """HTTPS on `https_port` and HTTP on `http_port`, with per-host certificates and apps;
    with `v6_address`, on that IPv6 address too (same ports), as the lab's AAAA records say."""

    def __init__(self, address: str = "127.0.0.1", https_port: int = 0, http_port: int = 0,
                 *, v6_address: str | None = None) -> None:
        self.address = address
        self.v6_address = v6_address
        self.https_port = https_port
        self.http_port = http_port
        self.https_apps = HostDispatch()
        self.http_apps = HostDispatch()
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._paths: dict[str, tuple[str, str]] = {}
        self._default: ssl.SSLContext | None = None
        self._servers: list[_Server] = []

    def add_certificate(self, host: str, cert_path: str, key_path: str) -> None:
        ctx = _server_context()
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
        base = _server_context()
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
        servers = [https, http]
        if self.v6_address:
            for port, tls, apps in ((self.https_port, base, self.https_apps),
                                    (self.http_port, None, self.http_apps)):
                srv6 = _Server6((self.v6_address, port), tls)
                srv6.set_app(apps)
                servers.append(srv6)
        for srv in servers:
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
