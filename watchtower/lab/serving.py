"""What the lab's TCP servers share (MX, submission, IMAPS, ManageSieve, the DNS and control
APIs): a thread per session, address reuse, sessions that end in an error logged quietly (a
probe that hangs up is normal here), and serving from a daemon thread until `stop`."""

from __future__ import annotations

import logging
import socketserver
import threading
from http.server import ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


class LabTcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    #: Names the server in the debug log and its thread.
    label = "lab server"

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("%s: session from %s ended with an error", self.label, client_address,
                  exc_info=True)

    def serve_in_thread(self) -> None:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True, name=self.label).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class LabHttpServer(LabTcpServer, ThreadingHTTPServer):
    """A lab HTTP API on loopback (the DNS API, the control API): http.server's threading
    server with the lab's quiet errors and daemon thread."""


class LabListener:
    """One lab server made at `start()` (by `_make`, on `address` and `port`; port 0 lets the
    system choose, and `port` is the real one after `start()`) and stopped at `stop()`."""

    address: str = "127.0.0.1"
    port: int = 0
    _server: LabTcpServer | None = None

    def _make(self) -> LabTcpServer:
        raise NotImplementedError

    def start(self) -> None:
        srv = self._make()
        self.port = srv.server_address[1]
        srv.serve_in_thread()
        self._server = srv

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
