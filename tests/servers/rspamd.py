"""Rspamd (Debian) as the mail stack's milter: spam filtering, DKIM signing, ARC sealing, and
its controller (HTTP, password-protected) on loopback.

The recipe (docs/testing.md, "Real servers"): Debian's own /etc/rspamd/rspamd.conf is used as
is, and everything instance-specific goes through its documented seams: `--var` for the
directories (LOCAL_CONFDIR, DBDIR, RUNDIR, LOGDIR) and `override.d/` / `local.d/` files in our
own LOCAL_CONFDIR. So the filter is the distribution's, with these changes only:
- Debian's worker layout on our own loopback ports: the proxy in milter mode in front of the
  normal (scanning) worker, and the controller with a hashed password and *no*
  `secure_ip` (Debian trusts 127.0.0.1 without a password; the tests must see the password
  checked);
- no Redis: the modules that need it (greylist, ratelimit, neural, history, replies,
  reputation, bayes autolearn) disable themselves when no Redis server is configured, and
  nothing watchtower probes needs them; modules that reach the internet (RBLs and URIBLs,
  fuzzy storage, remote maps) are turned off, and DNS goes to the session's PowerDNS only;
- DKIM signing for authenticated senders only (`sign_local = false`: a forwarding hop does
  not sign again), ARC sealing for mail from `ARC_SEALER_ADDRESS` only (the stack's
  forwarding hop, see mailstack.py): the chain is i=1 at the forwarder.
Hyperscan databases are compiled on the first start (about 40 s) and kept in a cache
directory shared across sessions, so later starts take about two seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from tests.servers.base import ManagedProcess, free_port, port_open, run, tool

#: Where the stack's forwarding hop connects from: ARC seals only mail from this address.
ARC_SEALER_ADDRESS = "127.0.0.2"
#: Hyperscan cache shared by every session (content-addressed by rspamd itself).
HS_CACHE = Path(tempfile.gettempdir()) / "watchtower-rspamd-hs-cache"
#: Modules that would reach the internet or need Redis; nothing probed depends on them.
DISABLED_MODULES = ("rbl", "fuzzy_check", "multimap", "asn", "phishing", "url_redirector",
                    "neural", "reputation", "greylist", "ratelimit", "replies",
                    "history_redis", "rspamd_update", "mx_check", "dmarc_report")


def rspamd_user() -> tuple[int, int]:
    """uid and gid of Debian's `_rspamd` user (the workers drop to it)."""
    import grp
    import pwd

    return pwd.getpwnam("_rspamd").pw_uid, grp.getgrnam("_rspamd").gr_gid


class Rspamd:
    """One rspamd instance configured for one mail domain; `start()` returns when the
    controller answers /ping."""

    def __init__(self, root: Path, logdir: Path, *, domain: str, selector: str,
                 key_path: Path, nameserver: str | None, host: str = "127.0.0.1") -> None:
        self.root = root
        self.logdir = logdir
        self.domain = domain
        self.selector = selector
        self.key_path = key_path
        self.nameserver = nameserver
        self.host = host
        self.milter_port = free_port(host)
        self.controller_port = free_port(host)
        self.scanner_port = free_port(host)
        self.controller_password = "rspamd-" + os.urandom(9).hex()
        self.process: ManagedProcess | None = None

    @property
    def controller_url(self) -> str:
        return f"http://{self.host}:{self.controller_port}"

    @property
    def milter(self) -> str:
        """Postfix's `smtpd_milters` value for this filter."""
        return f"inet:{self.host}:{self.milter_port}"

    def make_key(self) -> str:
        """Generate the signing key with `rspamadm dkim_keygen`; returns the TXT record value
        (what is published at <selector>._domainkey.<domain>)."""
        out = run([tool("rspamadm"), "dkim_keygen", "-b", "2048", "-s", self.selector,
                   "-d", self.domain, "-k", self.key_path]).stdout
        uid, gid = rspamd_user()
        os.chown(self.key_path, uid, gid)
        self.key_path.chmod(0o600)
        body = out.split("(", 1)[1].rsplit(")", 1)[0]
        return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))

    def write_config(self) -> None:
        uid, gid = rspamd_user()
        for sub in ("local.d", "override.d", "db", "run", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("db", "run", "log"):
            os.chown(self.root / sub, uid, gid)
        HS_CACHE.mkdir(exist_ok=True)
        os.chown(HS_CACHE, uid, gid)
        hashed = run([tool("rspamadm"), "pw", "-q", "-p", self.controller_password]).stdout
        files = {
            "override.d/worker-controller.inc": f"""\
bind_socket = "{self.host}:{self.controller_port}";
password = "{hashed.strip()}";
secure_ip = "192.0.2.255";
count = 1;
static_dir = "${{WWWDIR}}";
""",
            "override.d/worker-proxy.inc": f"""\
bind_socket = "{self.host}:{self.milter_port}";
milter = yes;
timeout = 120s;
count = 1;
upstream "local" {{
  default = yes;
  hosts = "{self.host}:{self.scanner_port}";
}}
spam_header = "X-Spam";
reject_message = "Spam message rejected";
""",
            "override.d/worker-normal.inc": f"""\
bind_socket = "{self.host}:{self.scanner_port}";
count = 1;
""",
            "override.d/worker-fuzzy.inc": "enabled = false;\ncount = -1;\n",
            "local.d/options.inc": f"""\
dns {{ {f'nameserver = ["{self.nameserver}"];' if self.nameserver else ''} timeout = 1s; retransmits = 1; }}
hs_cache_dir = "{HS_CACHE}";
""",
            "local.d/logging.inc": 'type = "console";\nlevel = "info";\n',
            "local.d/dkim_signing.conf": f"""\
sign_authenticated = true;
sign_local = false;
sign_inbound = false;
use_esld = false;
selector = "{self.selector}";
path = "{self.key_path}";
""",
            "local.d/arc.conf": f"""\
sign_authenticated = false;
sign_local = false;
sign_inbound = false;
sign_networks = ["{ARC_SEALER_ADDRESS}"];
use_domain = "recipient";
use_esld = false;
selector = "{self.selector}";
path = "{self.key_path}";
""",
        }
        for module in DISABLED_MODULES:
            files[f"local.d/{module}.conf"] = "enabled = false;\n"
        for name, text in files.items():
            (self.root / name).write_text(text)

    def argv(self) -> list[str]:
        r = self.root
        return [tool("rspamd"), "-f", "-u", "_rspamd", "-g", "_rspamd",
                "-c", "/etc/rspamd/rspamd.conf",
                f"--var=LOCAL_CONFDIR={r}", f"--var=DBDIR={r / 'db'}",
                f"--var=RUNDIR={r / 'run'}", f"--var=LOGDIR={r / 'log'}"]

    def start(self) -> None:
        """Start (or restart after stop) and wait for the controller and the milter port."""
        self.process = ManagedProcess(self.argv(), name="rspamd", logdir=self.logdir,
                                      grace=5.0).start()
        self.process.wait_ready(lambda: self.ping() and port_open(self.host, self.milter_port),
                                timeout=180)

    def ping(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.controller_url}/ping", timeout=1) as resp:
                return bool(resp.read().strip() == b"pong")
        except OSError:
            return False

    def stop(self) -> None:
        """Fault: the milter goes away (Postfix then defers: milter_default_action)."""
        if self.process is not None:
            self.process.stop()

    def signal_stop(self) -> None:
        if self.process is not None:
            import signal

            self.process.signal(signal.SIGTERM, group=False)

    def wait_stopped(self) -> None:
        if self.process is not None:
            self.process.wait_stopped(5.0)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root / "run", ignore_errors=True)
