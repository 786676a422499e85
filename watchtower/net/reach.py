"""Reachability over a given address: a TCP connect, within the probe's deadline.

An AAAA record says a host has an IPv6 address, not that anything answers there; internet.nl's
ns_reach / mx_reach / web_reach tests connect. This does the same for the dns.ipv6 check: one
TCP handshake to the address (no payload), closed at once. Plain values in, a reason out.
"""

from __future__ import annotations

import socket

from watchtower.errors import ProbeTimeout
from watchtower.net.deadline import remaining

DEFAULT_TIMEOUT = 3.0


def tcp_connect(address: str, port: int, *, deadline: float | None,
                timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """None when `address:port` accepts a TCP connection, else why not. A spent probe
    deadline raises ProbeTimeout (the probe, not the host, ran out of time)."""
    budget = remaining(deadline, timeout)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(budget)
            sock.connect((address, port))
    except TimeoutError:
        if deadline is not None and remaining(deadline, timeout) <= 0:
            raise ProbeTimeout(f"[{address}]:{port}: probe deadline reached") from None
        return f"no answer within {budget:.0f} s"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
