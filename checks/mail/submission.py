"""mail.submission: the ports a provider's users send mail through, seen as a mail client.

Port 587 must upgrade with STARTTLS before it offers AUTH, and 465 speaks TLS from the first
byte (RFC 8314 3.3). Both must negotiate TLS 1.2 or newer with a certificate the fleet's CA
bundle trusts for the mail host's name, exactly as for the web and MX checks (the handshake
is `watchtower.net.tls.TlsProber`, the SMTP dialogue `watchtower.net.smtp_dialogue`).

Also home of what the three mail-host checks share: the host's config entry and its address.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watchtower.config import MailHost
from watchtower.errors import ProbeError
from watchtower.model import Findings, Result, Status, Target, TargetKind, Verdict
from watchtower.net.submission import TlsMode, auth_mechanisms
from watchtower.net.tls import TlsFacts
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, observed_at
from watchtower.probe.registry import register

from ..common import failure

EXPIRY_WARN_DAYS = 14
OLD_TLS = ("TLSv1", "TLSv1.1")
_BROKEN_DIALOGUE = ("banner", "ehlo", "protocol", "starttls", "tls", "no-starttls")


def mail_host_of(target: Target) -> MailHost:
    """The mail host's config entry (a default one when a test passes a bare target)."""
    spec = target.spec
    return spec if isinstance(spec, MailHost) else MailHost(name=target.name, host=target.name)


def host_address(ctx: ProbeContext, host: str) -> str:
    """The first address of the mail host through the fleet's resolver (ProbeError if none)."""
    addresses = ctx.dns.addresses(host, deadline=ctx.deadline)
    if not addresses:
        raise ProbeError(f"{host} has no address", kind="dns")
    return str(addresses[0])


def tls_evidence(tls: TlsFacts) -> dict[str, Any]:
    """TLS facts without the full chain: the leaf is what a client judges here."""
    ev = tls.evidence()
    ev["chain"] = ev["chain"][:1]
    return ev


def judge_tls(who: str, tls: dict[str, Any], now: dt.datetime, f: Findings) -> None:
    """Version, trust and expiry of one TLS endpoint, as a mail client sees it."""
    version = tls.get("version")
    if version in ("SSLv3", *OLD_TLS):
        f.fail(f"{who} negotiated {version}; TLS 1.2 or newer is required (RFC 8996)")
    if not tls.get("verified"):
        f.fail(f"{who}: certificate not trusted ({tls.get('verify_error')}); clients refuse it "
               "or, worse, are taught to click through (RFC 8314 4.1)")
    chain = tls.get("chain") or []
    if chain:
        not_after = dt.datetime.fromisoformat(chain[0]["not_after"])
        days = (not_after - now).total_seconds() / 86400
        if days < 0:
            f.fail(f"{who}: certificate expired on {not_after:%Y-%m-%d}")
        elif days < EXPIRY_WARN_DAYS:
            f.warn(f"{who}: certificate expires in {days:.0f} days")


@register
class Submission(Check):
    meta = CheckMeta(
        id="mail.submission",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="Submission on 587 (STARTTLS) and 465 (implicit TLS); no AUTH before TLS",
        query="ports 587 (STARTTLS) and 465 (implicit TLS) of the declared mail host",
        verdicts=(
            "fail AUTH offered before TLS, TLS < 1.2, bad certificate; warn a port missing (RFC "
            "6409, 8314)"
        ),
        applies_to=(TargetKind.MAIL_HOST,),
        interval=3600,
        timeout=40,
        standards=("RFC 6409 4", "RFC 8314 3.3", "RFC 8314 4.1", "RFC 3207 4.2", "RFC 4954 4",
                   "RFC 8996"),
        hint="Offer AUTH only after TLS (Postfix: smtpd_tls_auth_only = yes) and serve a "
             "certificate for the mail host's name on both 587 and 465.",
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        spec = mail_host_of(target)
        address = host_address(ctx, spec.host)
        ports = [_port_facts(ctx, spec.host, address, spec.submission_port, "starttls"),
                 _port_facts(ctx, spec.host, address, spec.submissions_port, "implicit")]
        return {"host": spec.host, "address": address, "ports": ports}

    def blocks(self, result: Result) -> bool:
        """The mail host refuses connections on every submission port: the checks that submit
        a probe message have nothing to judge (AUTH before TLS, say, still lets them run)."""
        ports = result.evidence.get("ports") or []
        return result.status is Status.ERROR or (
            result.status is Status.FAIL and bool(ports)
            and all(p.get("error_kind") == "unreachable" for p in ports))

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        now = observed_at(facts)
        ports = facts["ports"]
        if all(p.get("error_kind") == "unreachable" for p in ports):
            f.fail(f"no submission port reachable on {facts['host']} "
                   f"({', '.join(str(p['port']) for p in ports)}): users cannot send mail")
            return f.verdict("")
        for p in ports:
            who = f"{facts['host']}:{p['port']} ({p['mode']})"
            kind = p.get("error_kind")
            if p.get("auth_before_tls"):
                f.fail(f"{who} offers AUTH {' '.join(p['auth_before_tls'])} before TLS: "
                       "passwords may cross the network in clear (RFC 4954 4, RFC 8314 3.3)")
            if kind == "unreachable":
                f.warn(f"{who} not reachable ({p.get('error')}); offer both 587 and 465 "
                       "(RFC 8314 3.3)")
            elif kind == "no-starttls":
                f.fail(f"{who} does not offer STARTTLS (RFC 3207, RFC 8314 3.3)")
            elif kind in _BROKEN_DIALOGUE:
                f.fail(f"{who}: {p.get('error')}")
            elif kind is not None:
                f.error(f"{who}: {p.get('error')}")
            elif p.get("tls"):
                judge_tls(who, p["tls"], now, f)
                old = [v for v in p.get("legacy_versions", []) if v in OLD_TLS]
                if old:
                    f.warn(f"{who} still accepts {', '.join(old)} (RFC 8996)")
                if p.get("auth_after_tls") == []:
                    f.warn(f"{who} offers no AUTH after TLS: clients cannot log in to submit")
        shown = ", ".join(f"{p['port']} {p['tls']['version']}" for p in ports if p.get("tls"))
        return f.verdict(f"submission on {facts['host']}: {shown}; AUTH only after TLS")


def _port_facts(ctx: ProbeContext, host: str, address: str, port: int, mode: TlsMode
                ) -> dict[str, Any]:
    """One port: the verified handshake, legacy versions, and EHLO before and after TLS."""
    item: dict[str, Any] = {"port": port, "mode": mode}
    dialogue = ctx.smtp.dialogue(ctx.deadline) if mode == "starttls" else None
    try:
        tls = ctx.tls_probe(host, port, starttls=dialogue, address=address)
        item["tls"] = tls_evidence(tls)
    except ProbeError as exc:
        item.update(failure(exc))
    if dialogue is not None:
        item["banner"] = dialogue.banner.evidence() if dialogue.banner else None
        item["capabilities_before_tls"] = dialogue.ehlo.keywords() if dialogue.ehlo else []
        item["auth_before_tls"] = auth_mechanisms(dialogue.ehlo)
        item["transcript"] = dialogue.transcript
    if "tls" not in item:
        return item
    item["legacy_versions"] = []
    for version in OLD_TLS:
        again = ctx.smtp.dialogue(ctx.deadline) if mode == "starttls" else None
        try:
            if ctx.tls.accepts_version(host, port, version, starttls=again,
                                       deadline=ctx.deadline, address=address):
                item["legacy_versions"].append(version)
        except (ProbeError, ValueError):
            continue  # cannot tell: say nothing rather than guess
    # Capabilities after TLS: no credential is sent, so an untrusted certificate (already a
    # finding above) does not stop us from seeing whether AUTH is offered.
    session = ctx.smtp.submission(host, address, port, mode, ctx.deadline, verify=False)
    try:
        session.open()
        item["capabilities"] = session.ehlo.keywords() if session.ehlo else []
        item["auth_after_tls"] = auth_mechanisms(session.ehlo)
        if mode == "implicit":
            item["banner"] = session.banner.evidence() if session.banner else None
    except ProbeError as exc:
        item["after_tls_error"] = exc.reason
    finally:
        session.close()
        item.setdefault("transcript", [])
        item["transcript"] = item["transcript"] + session.transcript
    return item
