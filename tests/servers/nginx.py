"""Debian's nginx as the HTTPS server of the TLS-criteria tests: one master process, one
`server` block per case, each on its own free loopback port.

A case says what an operator would write in nginx.conf (protocols, OpenSSL cipher string,
TLS 1.3 suites, DH group, 0-RTT, OCSP stapling file, gzip, headers), so a test reads like the
configuration it grades. Started once per session (the session fixture lists every case);
nginx reads each case's certificate and key at start-up, as root, and serves from one worker.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.servers.base import (
    ManagedProcess,
    Server,
    free_port,
    port_open,
    remove_shared_dir,
    run,
    shared_dir,
    tool,
)


@dataclass
class Site:
    """One nginx `server` block: a TLS configuration case."""

    name: str
    host: str
    cert: Path  # what nginx sends: the leaf alone, or leaf + intermediate
    key: Path
    protocols: str = "TLSv1.2 TLSv1.3"
    ciphers: str = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"
    tls13_suites: str | None = None
    prefer_server_ciphers: bool = True
    dhparam: Path | None = None
    early_data: bool = False
    stapling_file: Path | None = None
    gzip: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    #: Also listen on [::1] (same port): the IPv6 reachability tests connect there.
    ipv6: bool = False
    #: Further directives verbatim (e.g. `ssl_conf_command SignatureAlgorithms ...;`).
    extra: str = ""
    port: int = 0

    def block(self) -> str:
        lines = [
            f"listen 127.0.0.1:{self.port} ssl;", f"server_name {self.host};",
            *([f"listen [::1]:{self.port} ssl;"] if self.ipv6 else []),
            f"ssl_certificate {self.cert};", f"ssl_certificate_key {self.key};",
            f"ssl_protocols {self.protocols};", f"ssl_ciphers '{self.ciphers}';",
            f"ssl_prefer_server_ciphers {'on' if self.prefer_server_ciphers else 'off'};",
            f"ssl_early_data {'on' if self.early_data else 'off'};",
            "ssl_session_tickets on;", f"ssl_session_cache shared:s_{self.name}:1m;",
        ]
        if self.tls13_suites:
            lines.append(f"ssl_conf_command Ciphersuites {self.tls13_suites};")
        if self.dhparam:
            lines.append(f"ssl_dhparam {self.dhparam};")
        if self.stapling_file:
            lines += ["ssl_stapling on;", f"ssl_stapling_file {self.stapling_file};"]
        if self.gzip:
            lines += ["gzip on;", "gzip_min_length 1;", "gzip_types text/html text/plain;"]
        lines += [f"add_header {k} \"{v}\" always;" for k, v in self.headers.items()]
        if self.extra:
            lines.append(self.extra)
        body = "watchtower TLS case " + self.name + " " + "x" * 400
        lines.append(f"location / {{ default_type text/html; return 200 \"{body}\\n\"; }}")
        return "server {\n  " + "\n  ".join(lines) + "\n}\n"


class Nginx(Server):
    """nginx serving every `Site` of the session on 127.0.0.1."""

    def __init__(self, workdir: Path, sites: list[Site]) -> None:
        self.workdir = Path(workdir)
        self.sites = {s.name: s for s in sites}
        for site in sites:
            site.port = site.port or free_port()
        self.root: Path | None = None
        self.proc: ManagedProcess | None = None

    def site(self, name: str) -> Site:
        return self.sites[name]

    def start(self) -> Self:
        return self._timed_start(self._start)

    def _start(self) -> None:
        self.root = shared_dir("nginx")
        conf = self.root / "nginx.conf"
        conf.write_text(self._config())
        nginx = tool("nginx")
        run([nginx, "-t", "-q", "-c", conf, "-p", self.root])  # a bad case fails here, clearly
        self.proc = ManagedProcess([nginx, "-c", conf, "-p", self.root, "-g", "daemon off;"],
                                   name="nginx", logdir=self.workdir, grace=5.0).start()
        self.proc.wait_ready(lambda: all(port_open("127.0.0.1", s.port)
                                         for s in self.sites.values()), timeout=30)

    def _config(self) -> str:
        assert self.root is not None
        temp = {k: self.root / k for k in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir()
            os.chmod(path, 0o777)
        blocks = "".join(s.block() for s in self.sites.values())
        return (f"worker_processes 1;\npid {self.root / 'nginx.pid'};\n"
                "error_log stderr warn;\nevents { worker_connections 256; }\n"
                "http {\n  access_log off;\n"
                + "".join(f"  {k}_temp_path {v};\n" if k == "proxy" or k == "fastcgi" or
                          k == "uwsgi" or k == "scgi" else f"  client_body_temp_path {v};\n"
                          for k, v in temp.items())
                + blocks + "}\n")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.signal(signal.SIGQUIT, group=False)  # nginx's graceful stop
            self.proc.wait_stopped(5.0)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self.root is not None:
                remove_shared_dir(self.root)
                self.root = None
