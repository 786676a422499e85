"""A whole private mail stack: Postfix + Dovecot + OpenDKIM or Rspamd (Debian) on loopback.

watchtower's mail checks probe what a fediverse host's mail looks like from outside:
submission with STARTTLS and AUTH, implicit-TLS smtps, IMAPS login, DKIM signatures, an MX
port offering STARTTLS, and whether a server is an open relay. Only the real daemons answer
these questions faithfully (banners, status codes, TLS behaviour, milter tempfail when OpenDKIM
is down), so the tests run against them.

Layout: everything lives in one shared_dir() because Postfix and Dovecot drop to their own
users and must reach their files; the test CA (trustme) signs the server certificate.
Outbound delivery is disabled (default_transport = discard), so even the open-relay listener
never sends anything off the machine.

`MailStack(signer="rspamd", sieve=True)` is the stack the project specifies in full: Rspamd
(tests/servers/rspamd.py) instead of OpenDKIM as the milter (spam filter, DKIM signer, ARC
sealer, controller on loopback), Dovecot with Pigeonhole (LMTP delivery runs each user's
active Sieve script after a global `sieve_before` that files mail Rspamd marked as spam into
Junk; ManageSieve on its own port), and a forwarding hop: mail to `forward_address` leaves
through a Postfix `smtp` transport bound to 127.0.0.2, comes back in on `forward_port` (as
from another host), is sealed there by Rspamd's ARC module and rewritten to the probe mailbox.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import re
import secrets
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Self

from tests.servers.base import (
    ManagedProcess,
    Server,
    ServerError,
    free_port,
    pid_alive,
    poll,
    port_open,
    register_cleanup,
    remove_shared_dir,
    run,
    shared_dir,
    tail,
    tool,
    unregister_cleanup,
)
from tests.servers.rspamd import ARC_SEALER_ADDRESS, Rspamd

MAIL_UID = 5000
"""Numeric owner of the mailboxes (Dovecot 'virtual' user); needs no passwd entry."""


class MailStack(Server):
    """Dovecot (IMAPS, LMTP, SASL) -> OpenDKIM (milter) -> Postfix (submission, smtps, MX, relay).

    Ports are picked at construction; `mx` adds a port-25-style listener (STARTTLS offered,
    no AUTH, accepts mail for `domain` only) and `open_relay` a listener that relays for
    anyone. Both skip the DKIM milter so they keep working when a test stops OpenDKIM.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        domain: str = "example.test",
        hostname: str | None = None,
        user: str = "probe",
        password: str | None = None,
        dkim_selector: str = "s1",
        mx: bool = True,
        open_relay: bool = True,
        ca: Any | None = None,
        signer: Literal["opendkim", "rspamd"] = "opendkim",
        sieve: bool = False,
        nameserver: str | None = None,
        host: str = "127.0.0.1",
        mx_cases: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.domain = domain
        self.hostname = hostname or f"mail.{domain}"
        self.address = f"{user}@{domain}"
        self.user = self.address  # IMAP / SMTP AUTH login name
        self.password = password or secrets.token_urlsafe(12)
        self.dkim_selector = dkim_selector
        self.dkim_domain = domain
        # On 127.0.0.1 Dovecot sees our clients come from its own address and treats them
        # as secure (it then offers plaintext logins before TLS); a stack that must behave
        # like a remote host listens on another loopback address (clients come from .1).
        self.host = host
        self.submission_port = free_port(host)
        self.smtps_port = free_port(host)
        self.mx_port: int | None = free_port(host) if mx else None
        self.open_relay_port: int | None = free_port(host) if open_relay else None
        self.imaps_port = free_port(host)
        # Plain IMAP (STARTTLS): Dovecot trusts loopback, so it allows LOGIN before TLS here,
        # which is exactly the "plaintext login before TLS" case mail.imap must catch.
        self.imap_port = free_port(host)
        # A sloppy submission listener: STARTTLS optional and AUTH offered before TLS.
        self.submission_plain_auth_port = free_port(host)
        self.lmtp_port = free_port(host)
        self.auth_port = free_port(host)
        self.milter_port = free_port(host)
        self.signer = signer
        self.sieve = sieve
        self.nameserver = nameserver
        self.sieve_port: int | None = free_port(host) if sieve else None
        # ManageSieve on 127.0.0.1 as well: there Dovecot trusts the client as local and
        # offers SASL before STARTTLS, the "password in clear" case mail.sieve must catch.
        self.sieve_loopback_port: int | None = (free_port() if sieve and host != "127.0.0.1"
                                                else None)
        self.sieve_at_delivery = True
        self.junk_folder = "Junk"
        # The forwarding hop (rspamd stacks): mail to forward_address is sealed and comes back.
        self.forward_port: int | None = free_port(host) if signer == "rspamd" else None
        self.forward_address = f"forward@{domain}"
        self._ca = ca
        #: Further MX listeners, one per TLS case: name -> main.cf parameters that listener
        #: overrides (`-o name=value`), e.g. its own certificate chain or protocols.
        self.mx_cases = {name: dict(params) for name, params in (mx_cases or {}).items()}
        self.mx_case_ports = {name: free_port(host) for name in self.mx_cases}
        self.root: Path | None = None
        self.dovecot: ManagedProcess | None = None
        self.opendkim: ManagedProcess | None = None
        self.rspamd: Rspamd | None = None
        self._postfix_started = False
        self.dkim_txt_record = ""

    # -- paths --------------------------------------------------------------------------------

    def _p(self, *parts: str) -> Path:
        assert self.root is not None, "mail stack not started"
        return self.root.joinpath(*parts)

    @property
    def ca_pem_path(self) -> Path:
        """PEM of the test CA that signed every server certificate here (trust this in clients)."""
        return self._p("tls", "ca.pem")

    @property
    def postfix_config_dir(self) -> Path:
        return self._p("postfix", "etc")

    @property
    def postfix_log(self) -> Path:
        return self._p("log", "postfix.log")

    @property
    def dkim_record_name(self) -> str:
        """Where the DKIM key is published: '<selector>._domainkey.<domain>.'"""
        return f"{self.dkim_selector}._domainkey.{self.dkim_domain}."

    @property
    def dkim_txt_rdata(self) -> str:
        """dkim_txt_record as zone-file/PowerDNS TXT content: quoted strings of <= 255 bytes."""
        v = self.dkim_txt_record
        return " ".join(f'"{v[i : i + 255]}"' for i in range(0, len(v), 255))

    @property
    def dkim_private_key_path(self) -> Path:
        """The signing key the milter uses (OpenDKIM's or Rspamd's)."""
        if self.signer == "rspamd":
            return self._p("rspamd", "dkim", f"{self.dkim_selector}.key")
        return self._p("opendkim", f"{self.dkim_selector}.private")

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only the test CA."""
        return ssl.create_default_context(cafile=str(self.ca_pem_path))

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Generate certs/keys/configs, then start Dovecot, OpenDKIM and Postfix in that order."""
        return self._timed_start(self._start)

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root = shared_dir("mail")
        # Detached daemons outlive us unless stopped: make sure of it at interpreter exit.
        register_cleanup(self.close)
        for d in ("tls", "dovecot", "opendkim", "rspamd/dkim", "postfix/etc", "postfix/spool",
                  "log", "mail", "sieve-global"):
            self._p(d).mkdir(parents=True, exist_ok=True)
        for d in ("mail", "sieve-global"):
            os.chown(self._p(d), MAIL_UID, MAIL_UID)
        self._make_tls()
        if self.signer == "rspamd":
            self.rspamd = Rspamd(self._p("rspamd"), self.workdir, domain=self.dkim_domain,
                                 selector=self.dkim_selector,
                                 key_path=self.dkim_private_key_path,
                                 nameserver=self.nameserver, host=self.host)
            self.dkim_txt_record = self.rspamd.make_key()
            self.rspamd.write_config()
        else:
            self._make_dkim_key()
            self._write_opendkim()
        self._write_dovecot()
        self._write_postfix()
        self.start_dovecot()
        self.start_filter()
        self.start_postfix()

    def _make_tls(self) -> None:
        import trustme

        ca = self._ca or trustme.CA(organization_name="watchtower test CA")
        ca.cert_pem.write_to_path(str(self.ca_pem_path))
        cert = ca.issue_cert(self.hostname, "localhost", "127.0.0.1", self.host)
        key_path = self._p("tls", "key.pem")
        cert.private_key_pem.write_to_path(str(key_path))
        key_path.chmod(0o600)
        with open(self._p("tls", "cert.pem"), "wb") as f:
            for blob in cert.cert_chain_pems:
                f.write(blob.bytes())

    def _make_dkim_key(self) -> None:
        keydir = self._p("opendkim")
        run(
            [
                tool("opendkim-genkey"),
                "-b",
                "2048",
                "-h",
                "sha256",
                "-d",
                self.dkim_domain,
                "-s",
                self.dkim_selector,
                "-D",
                keydir,
            ]
        )
        txt = (keydir / f"{self.dkim_selector}.txt").read_text()
        # The file is a zone-file fragment: name IN TXT ( "part" "part" ) ; comment
        body = txt.split("(", 1)[1].rsplit(")", 1)[0]
        self.dkim_txt_record = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))

    # Dovecot -----------------------------------------------------------------------------------

    def _write_dovecot(self) -> None:
        crypt = run(
            [tool("openssl"), "passwd", "-6", "-stdin"], input=self.password + "\n"
        ).stdout.strip()
        users = self._p("dovecot", "users")
        users.write_text(f"{self.address}:{{SHA512-CRYPT}}{crypt}::::::\n")
        import grp

        os.chown(users, 0, grp.getgrnam("dovecot").gr_gid)
        users.chmod(0o640)
        dh = "/usr/share/dovecot/dh.pem"
        conf = f"""\
# watchtower test harness: a self-contained Dovecot, nothing from /etc/dovecot.
base_dir = {self._p("dovecot", "run")}
state_dir = {self._p("dovecot", "state")}
instance_name = watchtower-{self.imaps_port}
listen = {self.host}
protocols = imap lmtp{" sieve" if self.sieve else ""}
log_path = /dev/stderr
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {MAIL_UID}
last_valid_uid = {MAIL_UID}
first_valid_gid = {MAIL_UID}
last_valid_gid = {MAIL_UID}
ssl = required
ssl_cert = <{self._p("tls", "cert.pem")}
ssl_key = <{self._p("tls", "key.pem")}
ssl_min_protocol = TLSv1.2
{"ssl_dh = <" + dh if os.path.exists(dh) else ""}
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
postmaster_address = postmaster@{self.domain}
hostname = {self.hostname}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
  default_fields = uid={MAIL_UID} gid={MAIL_UID} home={self._p("mail")}/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {self.host}
    port = {self.lmtp_port}
  }}
}}
service auth {{
  inet_listener auth-postfix {{
    address = {self.host}
    port = {self.auth_port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        if self.sieve:
            conf += self._dovecot_sieve()
        self._p("dovecot", "dovecot.conf").write_text(conf)

    def _dovecot_sieve(self) -> str:
        """Pigeonhole: Sieve at LMTP delivery (a global junk rule first), ManageSieve."""
        junk = self._p("sieve-global", "junk.sieve")
        junk.write_text('require ["fileinto"];\n'
                        'if header :is "X-Spam" "Yes" {\n'
                        f'  fileinto "{self.junk_folder}";\n  stop;\n}}\n')
        os.chown(junk, MAIL_UID, MAIL_UID)
        loopback = ("" if not self.sieve_loopback_port else
                    "  inet_listener sieve-loopback {\n    address = 127.0.0.1\n"
                    f"    port = {self.sieve_loopback_port}\n  }}\n")
        return f"""\
namespace inbox {{
  inbox = yes
  mailbox {self.junk_folder} {{
    special_use = \\Junk
    auto = create
  }}
}}
lda_mailbox_autocreate = yes
protocol lmtp {{
  mail_plugins = $mail_plugins{" sieve" if self.sieve_at_delivery else ""}
}}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_before = {junk}
}}
service managesieve-login {{
  inet_listener sieve {{
    address = {self.host}
    port = {self.sieve_port}
  }}
{loopback}}}
"""

    def start_dovecot(self) -> None:
        """Start (or restart after stop_dovecot) Dovecot and wait for IMAPS, LMTP and auth."""
        self.dovecot = ManagedProcess(
            [tool("dovecot"), "-F", "-c", self._p("dovecot", "dovecot.conf")],
            name="dovecot",
            logdir=self.workdir,
            grace=5.0,
        ).start()
        ports = [(self.host, p) for p in (self.imaps_port, self.imap_port, self.lmtp_port,
                                          self.auth_port, self.sieve_port) if p]
        if self.sieve_loopback_port:
            ports.append(("127.0.0.1", self.sieve_loopback_port))
        self.dovecot.wait_ready(lambda: all(port_open(h, p) for h, p in ports), timeout=30)
        if self._postfix_started:  # a restart: Postfix's SMTP AUTH listeners answer again
            ok, err = poll(lambda: _banner(self.host, self.submission_port)
                           and _tls_banner(self.host, self.smtps_port), timeout=30)
            if not ok:
                raise ServerError(f"submission not answering after Dovecot came back ({err!r})")

    def set_sieve_at_delivery(self, on: bool) -> None:
        """Fault (and its undo): LMTP delivery without the Sieve plugin, so active scripts are
        kept but never run. Dovecot re-reads its configuration on SIGHUP."""
        assert self.dovecot is not None
        self.sieve_at_delivery = on
        self._write_dovecot()
        self.dovecot.signal(signal.SIGHUP, group=False)
        time.sleep(1.0)  # the master restarts its lmtp processes with the new setting

    def stop_dovecot(self) -> None:
        """Fault: IMAP, local delivery and SMTP AUTH all go away."""
        if self.dovecot is not None:
            self.dovecot.stop()

    # OpenDKIM ----------------------------------------------------------------------------------

    def _write_opendkim(self) -> None:
        conf = f"""\
Syslog no
Background no
Socket inet:{self.milter_port}@{self.host}
PidFile {self._p("opendkim", "opendkim.pid")}
Mode s
Domain {self.dkim_domain}
Selector {self.dkim_selector}
KeyFile {self.dkim_private_key_path}
InternalHosts 127.0.0.1
RequireSafeKeys false
Canonicalization relaxed/simple
SignatureAlgorithm rsa-sha256
OversignHeaders From
"""
        self._p("opendkim", "opendkim.conf").write_text(conf)

    def start_opendkim(self) -> None:
        """Start (or restart after stop_opendkim) the signing milter."""
        self.opendkim = ManagedProcess(
            [tool("opendkim"), "-f", "-x", self._p("opendkim", "opendkim.conf")],
            name="opendkim",
            logdir=self.workdir,
            grace=1.0,
        ).start()
        self.opendkim.wait_ready(lambda: port_open(self.host, self.milter_port), timeout=30)

    def start_filter(self) -> None:
        """Start the stack's milter: OpenDKIM or Rspamd."""
        if self.rspamd is not None:
            self.rspamd.start()
        else:
            self.start_opendkim()

    def stop_opendkim(self) -> None:
        """Fault: Postfix then answers 4xx to submissions (milter_default_action = tempfail).

        OpenDKIM takes seconds to honour SIGTERM and keeps no state worth saving, so it gets
        one second before SIGKILL.
        """
        if self.opendkim is not None:
            self.opendkim.stop(grace=1.0)

    # Postfix -----------------------------------------------------------------------------------

    def _write_postfix(self) -> None:
        spool = self._p("postfix", "spool")
        data = self._p("postfix", "data")
        lmtp = f"lmtp:inet:{self.host}:{self.lmtp_port}"
        milter = (self.rspamd.milter if self.rspamd is not None
                  else f"inet:{self.host}:{self.milter_port}")
        mailboxes = f"{{{self.address}=ok}}"
        forwarding = ""
        if self.forward_port:
            mailboxes += f" {{{self.forward_address}=ok}}"
            forwarding = (f"transport_maps = inline:{{ {{{self.forward_address}="
                          f"forward:[{self.host}]:{self.forward_port}}} }}\n")
        main = f"""\
# watchtower test harness: private Postfix instance, loopback only, no outbound delivery.
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
myhostname = {self.hostname}
mydomain = {self.domain}
myorigin = $mydomain
mydestination =
inet_interfaces = {self.host if self.host == "127.0.0.1" else "loopback-only"}
inet_protocols = ipv4
mynetworks =
maillog_file = {self.postfix_log}
maillog_file_prefixes = {self._p("log")}
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_banner = $myhostname ESMTP
virtual_mailbox_domains = {self.domain}
virtual_mailbox_maps = inline:{{ {mailboxes} }}
virtual_transport = {lmtp}
{forwarding}default_transport = discard:outbound mail is disabled in the watchtower test lab
relay_transport = $default_transport
local_transport = $default_transport
smtpd_tls_cert_file = {self._p("tls", "cert.pem")}
smtpd_tls_key_file = {self._p("tls", "key.pem")}
smtpd_tls_security_level = may
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_received_header = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:{self.host}:{self.auth_port}
smtpd_sasl_auth_enable = no
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_milters = {milter}
non_smtpd_milters = $smtpd_milters
milter_default_action = tempfail
smtpd_peername_lookup = no
# A service whose smtpd dies at start (e.g. "no SASL authentication mechanisms" while a fault
# test has Dovecot stopped) is throttled for a minute by default: the port accepts but no smtpd
# answers, and the next tests met "TLS handshake timed out". The lab recovers within a second.
service_throttle_time = 1s
"""
        sub_common = (
            "-o smtpd_sasl_auth_enable=yes "
            "-o smtpd_relay_restrictions=permit_sasl_authenticated,reject "
            "-o milter_macro_daemon_name=ORIGINATING"
        )
        listeners = [
            f"{self.host}:{self.submission_port} inet n - n - - smtpd -o syslog_name=postfix/submission "
            f"-o smtpd_tls_security_level=encrypt -o smtpd_tls_auth_only=yes {sub_common}",
            f"{self.host}:{self.smtps_port} inet n - n - - smtpd -o syslog_name=postfix/smtps "
            f"-o smtpd_tls_wrappermode=yes {sub_common}",
        ]
        listeners.append(
            f"{self.host}:{self.submission_plain_auth_port} inet n - n - - smtpd "
            "-o syslog_name=postfix/sloppy -o smtpd_tls_security_level=may "
            f"-o smtpd_tls_auth_only=no {sub_common}"
        )
        if self.mx_port:
            listeners.append(
                f"{self.host}:{self.mx_port} inet n - n - - smtpd -o syslog_name=postfix/mx "
                "-o { smtpd_milters = }"
            )
        if self.forward_port:
            # The forwarding hop's way back in: another host's view (own name, own cleanup
            # that rewrites the forwarding address to the probe mailbox), with the milter.
            listeners.append(
                f"{self.host}:{self.forward_port} inet n - n - - smtpd "
                f"-o syslog_name=postfix/forwarded -o myhostname=forwarder.{self.domain} "
                "-o cleanup_service_name=fwdcleanup"
            )
            listeners.append(
                "fwdcleanup unix n - n - 0 cleanup -o syslog_name=postfix/fwdcleanup "
                f"-o virtual_alias_maps=inline:{{{{{self.forward_address}={self.address}}}}}"
            )
            listeners.append(
                f"forward unix - - n - - smtp -o syslog_name=postfix/forward "
                f"-o smtp_bind_address={ARC_SEALER_ADDRESS} -o smtp_tls_security_level=none "
                f"-o smtp_helo_name=relay.{self.domain}"
            )
        for name, params in self.mx_cases.items():
            overrides = " ".join(f"-o {{ {k} = {v} }}" for k, v in params.items())
            listeners.append(
                f"{self.host}:{self.mx_case_ports[name]} inet n - n - - smtpd "
                f"-o syslog_name=postfix/{name} -o {{ smtpd_milters = }} {overrides}"
            )
        if self.open_relay_port:
            listeners.append(
                f"{self.host}:{self.open_relay_port} inet n - n - - smtpd -o syslog_name=postfix/openrelay "
                "-o mynetworks=0.0.0.0/0 -o smtpd_relay_restrictions=permit_mynetworks,reject "
                "-o { smtpd_milters = }"
            )
        services = """\
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
proxywrite unix - - n -    1 proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
lmtp      unix  - - n -    - lmtp
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
"""
        self._p("postfix", "etc", "main.cf").write_text(main)
        self._p("postfix", "etc", "master.cf").write_text("\n".join(listeners) + "\n" + services)

    def postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `postfix -c <this instance> ARGS` (check, reload, flush, ...)."""
        proc = run([tool("postfix"), "-c", self.postfix_config_dir, *args], check=False)
        if check and proc.returncode != 0:
            raise ServerError(
                f"postfix {' '.join(args)} exited {proc.returncode}: {proc.stdout}{proc.stderr}\n"
                f"--- {self.postfix_log} ---\n{tail(self.postfix_log)}"
            )
        return proc

    def postconf(self, *args: str) -> str:
        """Run `postconf -c <this instance> ARGS` and return stdout (e.g. postconf('-e', 'k=v'))."""
        return str(run([tool("postconf"), "-c", self.postfix_config_dir, *args]).stdout)

    @contextlib.contextmanager
    def postconf_for_a_while(self, **settings: str) -> Iterator[None]:
        """Set main.cf parameters (a fault) and reload; restore them and reload on exit."""
        before = {k: self.postconf("-h", k).strip() for k in settings}

        def apply(values: dict[str, str]) -> None:
            self.postconf("-e", *(f"{k}={v}" for k, v in values.items()))
            self.postfix("reload")
            time.sleep(1.0)  # the master restarts its daemons with the new settings

        apply(settings)
        try:
            yield
        finally:
            apply(before)

    def start_postfix(self) -> None:
        """postfix start, then wait for every listener.

        The first start runs Postfix's own integrity checks (which also create the queue
        directories, ~2 s); later restarts of the same instance skip them via the documented
        quick-start marker, so fault tests that restart Postfix stay fast.
        """
        if self._p("postfix", "spool", "pid").is_dir():
            self._p("postfix", "spool", "quick-start").touch()
        self.postfix("start")
        self._postfix_started = True
        # The master accepts on every port even when an smtpd dies at start-up (bad config),
        # so readiness is a 220 banner from each plain listener, not just an open port.
        banners = [p for p in (self.submission_port, self.submission_plain_auth_port,
                               self.mx_port, self.open_relay_port, self.forward_port,
                               *self.mx_case_ports.values()) if p]
        ok, err = poll(
            lambda: (
                port_open(self.host, self.smtps_port)
                and all(_banner(self.host, p) for p in banners)
            ),
            timeout=30,
        )
        if not ok:
            raise ServerError(
                f"postfix listeners not up after 30s ({err!r})\n"
                f"--- {self.postfix_log} ---\n{tail(self.postfix_log)}"
            )

    def _master_pid(self) -> int | None:
        try:
            return int(self._p("postfix", "spool", "pid", "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, AssertionError):
            return None

    def stop_postfix(self) -> None:
        """postfix stop, waiting until the master process is gone (ports released)."""
        if not self._postfix_started:
            return
        pid = self._master_pid()
        self.postfix("stop", check=False)
        self._postfix_started = False
        if pid:
            ok, _ = poll(lambda: not pid_alive(pid), timeout=10)
            if not ok:
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop all three daemons, overlapping their shutdowns."""
        for proc in (self.dovecot, self.opendkim):
            if proc is not None:
                proc.signal(signal.SIGTERM, group=False)
        if self.rspamd is not None:
            self.rspamd.signal_stop()
        self.stop_postfix()
        if self.opendkim is not None:
            self.opendkim.wait_stopped(1.0)
        if self.rspamd is not None:
            self.rspamd.wait_stopped()
        if self.dovecot is not None:
            self.dovecot.wait_stopped(5.0)

    def close(self) -> None:
        """Stop and delete the stack's files."""
        try:
            self.stop()
        finally:
            if self.root is not None:
                # Keep the Postfix log for post-mortems: the shared dir itself goes away.
                shutil.copytree(self._p("log"), self.workdir / "logs", dirs_exist_ok=True)
                unregister_cleanup(self.close)
                remove_shared_dir(self.root)
                self.root = None

    # -- client helpers ----------------------------------------------------------------------------

    def submit(
        self, message: bytes | str, to: list[str] | None = None, *, smtps: bool = False
    ) -> None:
        """Send message as the probe user: STARTTLS + AUTH on submission (or implicit TLS)."""
        to = to or [self.address]
        ctx = self.ssl_context()
        smtp: smtplib.SMTP
        if smtps:
            smtp = smtplib.SMTP_SSL(self.host, self.smtps_port, context=ctx, timeout=30)
        else:
            smtp = smtplib.SMTP(self.host, self.submission_port, timeout=30)
        with smtp:
            if not smtps:
                smtp.starttls(context=ctx)
            smtp.login(self.user, self.password)
            smtp.sendmail(self.address, to, message)

    def fetch_all(self, expect: int = 1, timeout: float = 15.0, folder: str = "INBOX"
                  ) -> list[bytes]:
        """Raw messages in a probe folder over IMAPS, waiting until at least `expect` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            with imaplib.IMAP4_SSL(
                self.host, self.imaps_port, ssl_context=self.ssl_context()
            ) as imap:
                imap.login(self.user, self.password)
                typ, _ = imap.select(f'"{folder}"')
                if typ != "OK":
                    return []
                _, data = imap.search(None, "ALL")
                ids = data[0].split()
                messages = []
                for i in ids:
                    _, parts = imap.fetch(i, "(RFC822)")
                    for part in parts:
                        if isinstance(part, tuple):
                            messages.append(part[1])
            if len(messages) >= expect or time.monotonic() > deadline:
                return messages
            time.sleep(0.1)

    def clear_inbox(self, folder: str = "INBOX") -> None:
        """Delete every message in a probe folder (tests sharing the stack start clean)."""
        with imaplib.IMAP4_SSL(self.host, self.imaps_port, ssl_context=self.ssl_context()) as imap:
            imap.login(self.user, self.password)
            typ, count = imap.select(f'"{folder}"')
            if typ != "OK":
                return
            if count and count[0] not in (b"0", None):
                imap.store("1:*", "+FLAGS", "\\Deleted")
                imap.expunge()


def _tls_banner(host: str, port: int) -> bool:
    """A 220 banner over implicit TLS (smtps): the handshake itself shows an smtpd serves."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=2) as raw, \
            context.wrap_socket(raw, server_hostname=host) as sock:
        sock.settimeout(2)
        return sock.recv(64).startswith(b"220 ")


def _banner(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.settimeout(2)
        return sock.recv(64).startswith(b"220 ")
