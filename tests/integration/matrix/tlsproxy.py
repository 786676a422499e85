"""A small TLS-terminating TCP proxy for tests: TLS (test CA) on a loopback port in front of a
plain-HTTP server such as the Synapse fixture. Threaded, one pair of pump threads per client."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from types import TracebackType


class TlsProxy:
    def __init__(self, cert_path: str, key_path: str, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert_path, key_path)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port: int = self.listener.getsockname()[1]
        self._stop = threading.Event()

    def start(self) -> TlsProxy:
        threading.Thread(target=self._accept, daemon=True, name="tls-proxy").start()
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(10)
            tls = self.ctx.wrap_socket(client, server_side=True)
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        threading.Thread(target=_pump, args=(upstream, tls), daemon=True).start()
        _pump(tls, upstream)

    def stop(self) -> None:
        self._stop.set()
        self.listener.close()

    def __enter__(self) -> TlsProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
