"""mail.imap: the mailbox side of a provider's mail host, seen as a mail client.

IMAPS (993) must serve a trusted certificate over TLS 1.2+, and the probe mailbox must be able
to log in; when plain IMAP (143) is declared, it must offer STARTTLS and refuse to log in before
it (LOGINDISABLED and no AUTH= mechanism before TLS, RFC 3501 6.2.3 / RFC 9051 6.2.3). We read
that from the capabilities and never try a password in clear to find out. Login latency is
recorded: a slow mailbox is the first thing users notice.
"""

from __future__ import annotations

import time
from typing import Any

from watchtower.errors import ProbeError
from watchtower.model import Findings, Result, Status, Target, TargetKind, Verdict
from watchtower.net.imap import ImapMode
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, observed_at, reveal
from watchtower.probe.registry import register

from ..common import failure
from .submission import host_address, judge_tls, mail_host_of, tls_evidence

_CLIENT_SIDE = ("timeout", "dns", "probe", "config")


@register
class Imap(Check):
    meta = CheckMeta(
        id="mail.imap",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="IMAPS with a trusted certificate, probe login works, no login before TLS",
        query=(
            "port 993 (and 143 with STARTTLS) of the declared mail host; login with the probe "
            "mailbox"
        ),
        verdicts="fail TLS or login fails, plaintext login allowed before TLS; records latency",
        applies_to=(TargetKind.MAIL_HOST,),
        interval=900,
        timeout=30,
        standards=("RFC 8314 3.2", "RFC 8314 4.1", "RFC 9051 6.2.3", "RFC 3501 6.2.3",
                   "RFC 2595 3.1", "RFC 8996"),
        hint="Serve IMAP over TLS (993) with a trusted certificate; on 143 advertise "
             "LOGINDISABLED until STARTTLS (Dovecot: disable_plaintext_auth = yes).",
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        spec = mail_host_of(target)
        address = host_address(ctx, spec.host)
        password = reveal(spec.probe_password, "probe_password") if spec.probe_password \
            else None
        user = spec.probe_user if password else None
        ports = [_port_facts(ctx, spec.host, address, spec.imaps_port, "implicit", user,
                             password)]
        if spec.imap_port:
            ports.append(_port_facts(ctx, spec.host, address, spec.imap_port, "starttls", user,
                                     password))
        return {"host": spec.host, "address": address, "probe_user": user, "ports": ports}

    def blocks(self, result: Result) -> bool:
        """The round trip and the spam filter read the probe mailbox over 993: they have
        nothing to judge when it is unreachable or refuses the probe login (a plaintext
        login also allowed on 143 is a failure of this check alone)."""
        ports = result.evidence.get("ports") or [{}]
        return result.status is Status.ERROR or (
            result.status is Status.FAIL and ports[0].get("error_kind") in ("unreachable",
                                                                             "login"))

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        now = observed_at(facts)
        logins = []
        for p in facts["ports"]:
            who = f"{facts['host']}:{p['port']} ({p['mode']})"
            before = p.get("capabilities_before_tls")
            if before is not None and ("LOGINDISABLED" not in before
                                       or any(c.startswith("AUTH=") for c in before)):
                offered = [c for c in before if c.startswith("AUTH=")]
                f.fail(f"{who} allows login before TLS (no LOGINDISABLED"
                       f"{'; offers ' + ' '.join(offered) if offered else ''}): passwords may "
                       "cross the network in clear (RFC 9051 6.2.3)")
            kind = p.get("error_kind")
            if kind == "unreachable" and p["mode"] == "starttls":
                f.warn(f"{who} declared but not reachable ({p.get('error')})")
            elif kind == "unreachable":
                f.fail(f"{who} not reachable ({p.get('error')}): users cannot read mail")
            elif kind == "login":
                f.fail(f"{who}: probe mailbox {facts.get('probe_user')} cannot log in "
                       f"({p.get('error')})")
            elif kind in _CLIENT_SIDE:
                f.error(f"{who}: {p.get('error')}")
            elif kind is not None:
                f.fail(f"{who}: {p.get('error')}")
            if p.get("tls"):
                judge_tls(who, p["tls"], now, f)
            if p.get("login_seconds") is not None:
                logins.append(f"{p['port']} login {p['login_seconds'] * 1000:.0f} ms")
        if facts.get("probe_user") is None:
            f.warn("no probe mailbox configured (probe_user, probe_password): login untested")
        versions = ", ".join(f"{p['port']} {p['tls']['version']}" for p in facts["ports"]
                             if p.get("tls"))
        return f.verdict(f"IMAP on {facts['host']}: {versions}"
                         + (f"; {', '.join(logins)}" if logins else ""))


def _port_facts(ctx: ProbeContext, host: str, address: str, port: int, mode: ImapMode,
                user: str | None, password: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"port": port, "mode": mode}
    # The certificate facts come from the same prober (and CA bundle) as every TLS check; for
    # 143 its STARTTLS step is the IMAP session's own (capabilities, then STARTTLS).
    session = ctx.imap.session(host, address, port, mode, ctx.deadline)
    try:
        if mode == "implicit":
            item["tls"] = tls_evidence(ctx.tls_probe(host, port, address=address))
        started = time.monotonic()
        session.open()
        item["greeting"] = session.greeting
        item["capabilities"] = session.capabilities
        if user and password:
            session.login(user, password)
            item["login_seconds"] = round(time.monotonic() - started, 4)
        item["tls_version"] = session.tls_version
    except ProbeError as exc:
        item.update(failure(exc))
    finally:
        if session.capabilities_before_tls is not None:
            item["capabilities_before_tls"] = session.capabilities_before_tls
        session.close()
    if mode == "starttls" and "tls" not in item and item.get("error_kind") in (None, "login"):
        item["tls"] = _starttls_tls(ctx, host, address, port)
    return item


def _starttls_tls(ctx: ProbeContext, host: str, address: str, port: int) -> dict[str, Any]:
    """TLS facts of 143 after STARTTLS, through TlsProber with the IMAP upgrade callback."""
    upgrade = ctx.imap.starttls(ctx.deadline)
    try:
        return tls_evidence(ctx.tls_probe(host, port, starttls=upgrade, address=address))
    except ProbeError as exc:
        return {"version": None, "verified": False, "verify_error": exc.reason, "chain": []}
