"""A tiny HTTPS server for the scale-out tests, run inside the test's target namespace:
`python target_server.py CERT KEY HOST PORT DELAY_FILE`. Each connection waits the seconds
written in DELAY_FILE (0 when absent) before its TLS handshake, so a test can keep an agent
mid-job for as long as it needs; then it answers every request 200."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from pathlib import Path


def delay(path: Path) -> float:
    try:
        return float(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def serve_one(conn: socket.socket, ctx: ssl.SSLContext, delay_file: Path) -> None:
    try:
        time.sleep(delay(delay_file))
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(10)
            tls.recv(65536)
            body = b"ok\n"
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def main() -> None:
    cert, key, host, port, delay_file = sys.argv[1:6]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server((host, int(port)), reuse_port=False)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_one, args=(conn, ctx, Path(delay_file)),
                         daemon=True).start()


if __name__ == "__main__":
    main()
