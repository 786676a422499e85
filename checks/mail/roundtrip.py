"""mail.roundtrip: does mail actually flow, signed and authenticated?

DNS only says what a mail server claims. This check sends a probe message through the
provider's own submission port (STARTTLS or implicit TLS, AUTH as the probe mailbox), fetches it
back over IMAPS, and judges what arrived: the DKIM signature verified against the key published
in DNS (dkimpy, with DNS through the sweep's resolver so test and lab zones are used), the ARC
chain where present, the SPF and DMARC results the receiving side wrote in
Authentication-Results, and the end-to-end latency. The probe message is then deleted.

Every probe message carries a unique token (`wt-<unix time>-<random>`) in a header and the
subject, so a concurrent probe or a late copy of an old one never answers for this one; probe
messages older than `STALE_SECONDS` are removed on each run.
"""

from __future__ import annotations

import email.utils
import re
import secrets
import time
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP
from typing import Any

import dkim  # dkimpy

from watchtower.config import MailHost
from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.imap import ImapSession
from watchtower.net.submission import SubmissionRefused, TlsMode
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, reveal
from watchtower.probe.registry import register

from .submission import host_address, mail_host_of

PROBE_HEADER = "X-Watchtower-Probe"
STALE_SECONDS = 900
IMAP_RESERVE = 3.0  # seconds kept back from the deadline to fetch, judge and clean up
EVIDENCE_HEADERS = ("From", "To", "Subject", "Message-ID", "Date", "Return-Path",
                    "DKIM-Signature", "Authentication-Results", "ARC-Seal",
                    "ARC-Message-Signature", "ARC-Authentication-Results", "Received")
#: Submission failures that say nothing about the server (it was not reached or we ran out).
_PROBE_SIDE = ("unreachable", "timeout", "dns", "probe", "config")
_TOKEN = re.compile(r"^wt-(\d{9,11})-[0-9a-f]{16}$")


def new_token(now: float | None = None) -> str:
    return f"wt-{int(now if now is not None else time.time())}-{secrets.token_hex(8)}"


def token_age(token: str, now: float) -> float | None:
    """Seconds since a probe token was minted, None for a value that is not one of ours."""
    m = _TOKEN.match(token.strip())
    return now - int(m.group(1)) if m else None


def probe_message(sender: str, recipient: str, token: str) -> bytes:
    """A small, plain, DKIM-friendly message: nothing a filter would mistake for spam bait."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = f"watchtower round-trip probe {token}"
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = f"<{token}@{sender.rsplit('@', 1)[-1]}>"
    msg[PROBE_HEADER] = token
    msg.set_content("This message tests that mail is delivered, signed and authenticated.\n"
                    "It is deleted automatically; nobody needs to read it.\n")
    return msg.as_bytes()


def parse_auth_results(value: str) -> dict[str, Any]:
    """One Authentication-Results header (RFC 8601 2.2): authserv-id and method=result list."""
    text = re.sub(r"\([^()]*\)", " ", " ".join(value.split()))
    parts = [p.strip() for p in text.split(";")]
    authserv = parts[0].split()[0] if parts and parts[0].split() else ""
    results = []
    for part in parts[1:]:
        words = part.split()
        if not words or "=" not in words[0]:
            continue
        method, _, result = words[0].partition("=")
        method = method.split("/")[0].lower()
        props = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        results.append({"method": method, "result": result.lower(), "props": props})
    return {"authserv_id": authserv, "results": results}


def _header_texts(raw: bytes) -> dict[str, list[str]]:
    headers = BytesHeaderParser().parsebytes(raw)
    out: dict[str, list[str]] = {}
    for name in EVIDENCE_HEADERS:
        values = [" ".join(str(v).split()) for v in headers.get_all(name) or []]
        if name in ("DKIM-Signature", "ARC-Seal", "ARC-Message-Signature"):
            values = [re.sub(r"\bb=[^;]*", "b=…", v) for v in values]
        if values:
            out[name] = [v[:1000] for v in values]
    return out


class _Log:
    """A logger for dkimpy that keeps its reasons (why a signature failed) as evidence."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _keep(self, msg: object, *args: object) -> None:
        text = str(msg) % args if args else str(msg)
        if len(self.lines) < 20:
            self.lines.append(text[:300])

    debug = info = _keep
    warning = error = _keep


def verify_message(raw: bytes, ctx: ProbeContext) -> dict[str, Any]:
    """DKIM (every signature) and ARC verification facts of a fetched message."""

    def txt(name: bytes | str, timeout: float = 5) -> bytes | None:
        qname = name.decode() if isinstance(name, bytes) else name
        try:
            texts = ctx.resolve(qname.rstrip("."), "TXT").texts
        except ProbeError:
            return None
        chosen = [t for t in texts if "p=" in t] or texts
        return chosen[0].encode() if chosen else None

    headers = BytesHeaderParser().parsebytes(raw)
    sigs = headers.get_all("DKIM-Signature") or []
    from_domain = (email.utils.parseaddr(str(headers.get("From", "")))[1]
                   .rsplit("@", 1)[-1].lower())
    results = []
    for idx, sig in enumerate(sigs):
        tags = _tags(str(sig))
        log = _Log()
        verifier = dkim.DKIM(raw, logger=log, minkey=1024)
        try:
            ok = bool(verifier.verify(idx=idx, dnsfunc=txt))
        except Exception as exc:  # dkimpy raises many types on malformed input: a failure
            ok, log.lines = False, [*log.lines, f"{type(exc).__name__}: {exc}"]
        d = tags.get("d", "").lower()
        results.append({"d": d, "s": tags.get("s", ""), "a": tags.get("a", ""),
                        "h": tags.get("h", ""), "pass": ok,
                        "aligned": bool(d) and (from_domain == d
                                                or from_domain.endswith("." + d)
                                                or d.endswith("." + from_domain)),
                        "reason": None if ok else "; ".join(log.lines[-3:]) or "did not verify"})
    arc: dict[str, Any] = {"present": bool(headers.get_all("ARC-Seal"))}
    if arc["present"]:
        log = _Log()
        try:
            cv, _results, comment = dkim.arc_verify(raw, logger=log, dnsfunc=txt)
            arc.update(cv=cv.decode() if isinstance(cv, bytes) else str(cv),
                       comment=str(comment)[:300])
        except Exception as exc:  # as above: a chain dkimpy cannot even parse is invalid
            arc.update(cv="fail", comment=f"{type(exc).__name__}: {exc}"[:300])
    return {"from_domain": from_domain, "dkim": results, "arc": arc}


def _tags(sig: str) -> dict[str, str]:
    out = {}
    for part in "".join(sig.split()).split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


@register
class Roundtrip(Check):
    meta = CheckMeta(
        id="mail.roundtrip",
        family="mail",
        title="A probe message is delivered, DKIM-signed and authenticated, within a deadline",
        applies_to=(TargetKind.MAIL_HOST,),
        interval=1800,
        timeout=90,
        standards=("RFC 6376 6", "RFC 7208 2.6", "RFC 7489 6.6", "RFC 8617 5.2",
                   "RFC 8601 2.2", "RFC 6409 4"),
        hint="Sign outgoing mail with DKIM (a key matching the published selector) and make "
             "sure local delivery works; see the headers in the evidence.",
    )

    def applies(self, target: Target) -> bool:
        spec = target.spec
        return super().applies(target) and (not isinstance(spec, MailHost)
                                            or bool(spec.probe_user and spec.probe_password))

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        spec = mail_host_of(target)
        if not (spec.probe_user and spec.probe_password):
            raise ProbeError("no probe mailbox configured (probe_user, probe_password)",
                             kind="config")
        password = reveal(spec.probe_password, "probe_password")
        address = host_address(ctx, spec.host)
        recipient = spec.roundtrip_to or spec.probe_user
        sender = spec.probe_user if "@" in spec.probe_user else f"{spec.probe_user}@{spec.host}"
        token = new_token()
        mode: TlsMode = "starttls" if spec.roundtrip_via == "submission" else "implicit"
        port = spec.submission_port if mode == "starttls" else spec.submissions_port
        facts: dict[str, Any] = {
            "host": spec.host, "address": address, "via": f"{port} ({mode})",
            "from": sender, "to": recipient, "token": token,
            "deadline_seconds": spec.roundtrip_deadline,
            "expect_auth_results": spec.expect_auth_results,
        }
        started = time.monotonic()
        facts["submission"] = _submit(ctx, spec, address, port, mode, sender, recipient,
                                      password, probe_message(sender, recipient, token))
        if not facts["submission"].get("accepted"):
            return facts
        accepted = time.monotonic()
        facts["submit_seconds"] = round(accepted - started, 3)
        budget = min(started + spec.roundtrip_deadline, ctx.deadline - IMAP_RESERVE)
        facts["fetch"] = _fetch(ctx, spec, address, password, token, budget, started)
        raw = facts["fetch"].pop("raw", None)
        if raw is not None:
            facts["headers"] = _header_texts(raw)
            facts["auth_results"] = [parse_auth_results(v) for v in
                                     facts["headers"].get("Authentication-Results", [])]
            facts.update(verify_message(raw, ctx))
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        sub = facts["submission"]
        if not sub.get("accepted"):
            if sub.get("error_kind") == "refused" and sub.get("step") == "AUTH":
                f.fail(f"submission on {facts['host']} {facts['via']} refused the probe "
                       f"mailbox's login: {sub.get('error')}")
            elif sub.get("error_kind") == "refused":
                f.fail(f"submission on {facts['host']} {facts['via']} refused the probe "
                       f"message: {sub.get('error')}")
            elif sub.get("error_kind") in ("certificate", "tls", "no-starttls"):
                f.fail(f"cannot submit securely to {facts['host']} {facts['via']}: "
                       f"{sub.get('error')} (credentials withheld)")
            elif sub.get("error_kind") in _PROBE_SIDE:
                f.error(f"could not submit the probe message: {sub.get('error')} "
                        "(see mail.submission)")
            else:  # the server answered, but not as a working submission service does
                f.fail(f"submission on {facts['host']} {facts['via']} broke off: "
                       f"{sub.get('error')}")
            return f.verdict("")
        fetch = facts.get("fetch") or {}
        if fetch.get("error"):
            f.error(f"probe message submitted but could not be fetched: {fetch['error']} "
                    "(see mail.imap)")
            return f.verdict("")
        if not fetch.get("delivered"):
            f.fail(f"probe message not delivered to {facts['to']} within "
                   f"{fetch.get('waited_seconds', facts['deadline_seconds'])} s")
            return f.verdict("")
        sigs = facts.get("dkim") or []
        passing = [s for s in sigs if s["pass"]]
        if not sigs:
            f.fail("probe message arrived without a DKIM signature (RFC 6376)")
        elif not passing:
            f.fail("DKIM signature does not verify: "
                   + "; ".join(f"d={s['d']} s={s['s']}: {s['reason']}" for s in sigs)
                   + " (RFC 6376 6.1)")
        elif not any(s["aligned"] for s in passing):
            f.warn(f"DKIM verifies for {', '.join(s['d'] for s in passing)} but none is aligned "
                   f"with the From domain {facts.get('from_domain')}: DMARC cannot pass on DKIM "
                   "(RFC 7489 3.1.1)")
        arc = facts.get("arc") or {}
        if arc.get("present") and arc.get("cv") not in ("pass", "none"):
            f.fail(f"ARC chain invalid (cv={arc.get('cv')}: {arc.get('comment')}) (RFC 8617 5.2)")
        _judge_auth_results(facts, f)
        latency = fetch.get("latency_seconds")
        shown = ", ".join(f"d={s['d']} s={s['s']}" for s in passing)
        return f.verdict(f"delivered in {latency:.2f} s via {facts['via']}; DKIM pass ({shown})"
                         + _ar_summary(facts))


def _judge_auth_results(facts: Facts, f: Findings) -> None:
    seen: dict[str, list[str]] = {}
    for header in facts.get("auth_results") or []:
        for res in header["results"]:
            seen.setdefault(res["method"], []).append(res["result"])
    for method, rfc in (("spf", "RFC 7208 2.6"), ("dmarc", "RFC 7489 6.6")):
        results = seen.get(method)
        if results and any(r != "pass" for r in results):
            f.fail(f"Authentication-Results: {method}={', '.join(results)}, not pass ({rfc})")
        elif not results and facts.get("expect_auth_results"):
            f.fail(f"no {method} result in Authentication-Results, though expected ({rfc})")


def _ar_summary(facts: Facts) -> str:
    methods = [f"{r['method']}={r['result']}" for h in facts.get("auth_results") or []
               for r in h["results"] if r["method"] in ("spf", "dmarc")]
    return f"; {' '.join(methods)}" if methods else ""


def _submit(ctx: ProbeContext, spec: MailHost, address: str, port: int, mode: TlsMode,
            sender: str, recipient: str, password: str, message: bytes) -> dict[str, Any]:
    assert spec.probe_user is not None
    session = ctx.smtp.submission(spec.host, address, port, mode, ctx.deadline, verify=True)
    out: dict[str, Any] = {"accepted": False}
    try:
        session.open()
        session.login(spec.probe_user, password)
        reply = session.send(sender, [recipient], message)
        out.update(accepted=True, reply=reply.evidence())
    except SubmissionRefused as exc:
        out.update(error=exc.reason, error_kind="refused", step=exc.step)
    except ProbeError as exc:
        out.update(error=exc.reason, error_kind=exc.kind)
    finally:
        session.close()
        out["transcript"] = session.transcript
    return out


def _fetch(ctx: ProbeContext, spec: MailHost, address: str, password: str, token: str,
           budget: float, started: float) -> dict[str, Any]:
    """Poll the probe mailbox until the token arrives or the budget is spent; then delete it
    and any stale probe messages."""
    assert spec.probe_user is not None
    out: dict[str, Any] = {"delivered": False}
    session = ctx.imap.session(spec.host, address, spec.imaps_port, "implicit", ctx.deadline)
    try:
        session.open()
        session.login(spec.probe_user, password)
        session.select("INBOX")
        pause = 0.1
        while True:
            uids = session.search_header(PROBE_HEADER, token)
            if uids:
                out["latency_seconds"] = round(time.monotonic() - started, 3)
                out["delivered"] = True
                out["raw"] = session.fetch(uids[0])
                session.delete(uids)
                break
            if time.monotonic() + pause > budget:
                out["waited_seconds"] = round(time.monotonic() - started, 1)
                break
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)
            session.refresh()
    except ProbeError as exc:
        out["error"], out["error_kind"] = exc.reason, exc.kind
        session.close()
        return out
    try:  # housekeeping: its failure must not turn a delivered probe into an error
        out["stale_deleted"] = _clean_stale(session)
    except ProbeError as exc:
        out["cleanup_error"] = exc.reason
    finally:
        session.close()
    return out


def _clean_stale(session: ImapSession) -> int:
    """Delete probe messages older than STALE_SECONDS: late copies of earlier runs."""
    uids = session.search_header(PROBE_HEADER, "")
    tokens = session.header_values(uids, PROBE_HEADER)
    now = time.time()
    stale = [uid for uid, token in tokens.items()
             if (age := token_age(token, now)) is not None and age > STALE_SECONDS]
    session.delete(stale)
    return len(stale)
