"""Small loopback servers for network-seam tests: a DNS server from zone text, a silent UDP
socket, and raw TCP servers whose behaviour is a function (slow drip, huge body, stalls)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dns.zone

from watchtower.lab.dnsserver import DnsServer


@contextmanager
def dns_server(zone_texts: dict[str, str]) -> Iterator[DnsServer]:
    server = DnsServer(["127.0.0.1"], 0)
    zones = [dns.zone.from_text(text, origin=origin, relativize=False)
             for origin, text in zone_texts.items()]
    server.set_zones("127.0.0.1", zones)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def silent_udp() -> Iterator[int]:
    """A UDP port that reads queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextmanager
def tcp_server(behaviour: Callable[[socket.socket], None]) -> Iterator[int]:
    """Each connection is handed to `behaviour` in its own thread."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_guard, args=(behaviour, conn), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


def _guard(behaviour: Callable[[socket.socket], None], conn: socket.socket) -> None:
    try:
        behaviour(conn)
    except OSError:
        pass
    finally:
        conn.close()


ZONE = """
$TTL 300
@ IN SOA ns1 hostmaster 1 14400 3600 1209600 3600
@ IN NS ns1
ns1 IN A 127.0.0.1
www IN A 127.0.0.1
alias IN CNAME www
loop1 IN CNAME loop2
loop2 IN CNAME loop1
@ IN TXT "v=spf1 -all"
long IN TXT "{long}" "{long}"
""".replace("{long}", "x" * 250)


def big_zone() -> str:
    """A name with TXT records too large for a UDP answer (forces TCP fallback)."""
    records = "\n".join(f'big IN TXT "record-{i:03d}-{"y" * 200}"' for i in range(20))
    return ZONE + records + "\n"
