"""The ports a command is about to listen on, tried before it starts anything.

`watchtower demo` starts the lab (DNS, HTTPS, mail), then `watchtower run`, then the
dashboard: a port someone else holds would otherwise be a traceback from the third part after
the first two came up and the store was migrated. Trying each port first turns it into one
line naming the port, the option that sets it and what needs it. (A port can still be taken
between the try and the real bind; the part's own error then says so.)
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from watchtower.daemon import DaemonError


@dataclass(frozen=True)
class Wanted:
    """One port a command will listen on: `option` sets it, `who` needs it."""

    option: str
    host: str
    port: int
    who: str
    udp: bool = False  # also a UDP port (DNS)

    @classmethod
    def listen(cls, option: str, value: str, who: str) -> Wanted:
        """From a `host:port` (or `[v6]:port`) setting such as `[metrics] listen`."""
        host, _, port = value.rpartition(":")
        return cls(option, host.strip("[]") or "127.0.0.1", int(port), who)

    def problem(self) -> str | None:
        """Why this port cannot be listened on, or None when it can (port 0: the system
        picks a free one, nothing to try)."""
        if self.port == 0:
            return None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if self.udp else (socket.SOCK_STREAM,)
        for kind in kinds:
            with socket.socket(family, kind) as probe:
                if kind == socket.SOCK_STREAM:  # as the servers bind: TIME_WAIT is no owner
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.host, self.port))
                except OSError as exc:
                    proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
                    return (f"{self.option} {self.port}: cannot listen on {self.host} "
                            f"{proto} port {self.port} ({exc.strerror or exc}); {self.who} "
                            "needs it: free the port or choose another")
        return None


def require_free(wanted: list[Wanted]) -> None:
    """Raise DaemonError naming every wanted port that is taken (one line each)."""
    problems = [p for p in (w.problem() for w in wanted) if p is not None]
    if problems:
        raise DaemonError("\nerror: ".join(problems))
