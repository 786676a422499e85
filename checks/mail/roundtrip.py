"""mail.roundtrip: does mail actually flow, signed and authenticated?

DNS only says what a mail server claims. This check sends a probe message through the
provider's own submission port (STARTTLS or implicit TLS, AUTH as the probe mailbox), fetches it
back over IMAPS, and judges what arrived: the DKIM signature verified against the key published
in DNS (dkimpy, with DNS through the sweep's resolver so test and lab zones are used), the ARC
chain where present, the SPF and DMARC results the receiving side wrote in
Authentication-Results, and the end-to-end latency. The probe message is then deleted.

Every probe message carries a unique token (`wt-<unix time>-<random>`) in a header and the
subject, so a concurrent probe or a late copy of an old one never answers for this one; probe
messages older than `STALE_SECONDS` are removed on each run (see `probemail`).

ARC (RFC 8617): when the path passes a forwarding hop that seals (Rspamd's ARC module, say),
the chain is verified and each hop's seal named (instance, domain, selector, whether the seal
and its message signature verify); a broken seal fails. With `expect_arc` the host declares
such a hop, and a message that arrives without a seal fails too.
"""

from __future__ import annotations

import email.utils
import re
import time
from email.parser import BytesHeaderParser
from typing import Any

import dkim  # dkimpy

from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.probe.api import CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .probemail import (
    IMAP_RESERVE,
    PROBE_HEADER,
    PROBE_SIDE,
    ProbeAccountCheck,
    await_message,
    new_token,
    probe_account,
    probe_mailbox,
    submit,
)
from .probemail import (
    probe_message as _message,
)

__all__ = [
    "PROBE_HEADER",
    "Roundtrip",
    "new_token",
    "parse_auth_results",
    "probe_message",
    "verify_message",
]
EVIDENCE_HEADERS = ("From", "To", "Subject", "Message-ID", "Date", "Return-Path",
                    "DKIM-Signature", "Authentication-Results", "ARC-Seal",
                    "ARC-Message-Signature", "ARC-Authentication-Results", "Received")


def probe_message(sender: str, recipient: str, token: str) -> bytes:
    """A small, plain, DKIM-friendly message: nothing a filter would mistake for spam bait."""
    return _message(sender, recipient, token, subject="watchtower round-trip probe",
                    body="This message tests that mail is delivered, signed and "
                         "authenticated.\nIt is deleted automatically; nobody needs to read "
                         "it.\n")


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


def header_texts(raw: bytes) -> dict[str, list[str]]:
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
    return {"from_domain": from_domain, "dkim": results,
            "arc": arc_facts(raw, [str(v) for v in headers.get_all("ARC-Seal") or []], txt)}


def arc_facts(raw: bytes, seals: list[str], txt: Any) -> dict[str, Any]:
    """The ARC chain's validation status (RFC 8617 5.2) and, per hop, its seal: instance,
    sealing domain and selector, the cv it recorded, and whether its seal (AS) and message
    signature (AMS) verify. A chain that ends in no status is a failed one (5.2: "fail")."""
    arc: dict[str, Any] = {"present": bool(seals)}
    if not seals:
        return arc
    hops = {}
    for seal in seals:
        tags = _tags(seal)
        if tags.get("i", "").isdigit():
            hops[int(tags["i"])] = {"i": int(tags["i"]), "d": tags.get("d", "").lower(),
                                    "s": tags.get("s", ""), "cv": tags.get("cv", "").lower()}
    log = _Log()
    try:
        cv, results, comment = dkim.arc_verify(raw, logger=log, dnsfunc=txt)
    except Exception as exc:  # as for DKIM: a chain dkimpy cannot even parse is invalid
        cv, results, comment = b"fail", [], f"{type(exc).__name__}: {exc}"
    for res in results or []:
        hop = hops.setdefault(int(res["instance"]), {"i": int(res["instance"])})
        hop.update(seal_valid=bool(res.get("as-valid")),
                   signature_valid=bool(res.get("ams-valid")))
    arc.update(cv=cv.decode() if isinstance(cv, bytes) else "fail",
               comment=str(comment)[:300], hops=[hops[i] for i in sorted(hops)])
    return arc


def arc_hops(arc: dict[str, Any]) -> str:
    """Each hop's seal, for a summary: `i=1 d=example.org s=arc`."""
    return ", ".join(f"i={h['i']} d={h.get('d', '?')} s={h.get('s', '?')}"
                     for h in arc.get("hops") or [])


def _tags(sig: str) -> dict[str, str]:
    out = {}
    for part in "".join(sig.split()).split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


@register
class Roundtrip(ProbeAccountCheck):
    meta = CheckMeta(
        id="mail.roundtrip",
        needs=("mail.submission", "mail.imap"),
        family="mail",
        title="A probe message is delivered, DKIM-signed and authenticated, within a deadline",
        query="a probe message submitted with AUTH, fetched back over IMAP from the probe mailbox",
        verdicts=(
            "fail not delivered within the deadline, DKIM signature does not verify, SPF or DMARC "
            "not `pass` in Authentication-Results, ARC chain invalid where present (the broken hop"
            " named: instance, domain, selector), no ARC seal although `expect_arc` declares a "
            "sealing hop; ok names each hop's seal (`ARC cv=pass (i=1 d=… s=…)`); records "
            "end-to-end latency (RFC 6376, 7208, 7489, 8617)"
        ),
        applies_to=(TargetKind.MAIL_HOST,),
        interval=1800,
        timeout=90,
        standards=("RFC 6376 6", "RFC 7208 2.6", "RFC 7489 6.6", "RFC 8617 5.2",
                   "RFC 8601 2.2", "RFC 6409 4"),
        hint="Sign outgoing mail with DKIM (a key matching the published selector) and make "
             "sure local delivery works; see the headers in the evidence.",
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        spec, password, address = probe_account(target, ctx)
        sender = probe_mailbox(spec)
        recipient = spec.roundtrip_to or sender
        token = new_token()
        facts: dict[str, Any] = {
            "host": spec.host, "address": address, "from": sender, "to": recipient,
            "token": token, "deadline_seconds": spec.roundtrip_deadline,
            "expect_auth_results": spec.expect_auth_results, "expect_arc": spec.expect_arc,
        }
        started = time.monotonic()
        facts["submission"] = submit(ctx, spec, address, password, [recipient],
                                     probe_message(sender, recipient, token))
        facts["via"] = facts["submission"]["via"]
        if not facts["submission"].get("accepted"):
            return facts
        facts["submit_seconds"] = round(time.monotonic() - started, 3)
        budget = min(started + spec.roundtrip_deadline, ctx.deadline - IMAP_RESERVE)
        facts["fetch"] = await_message(ctx, spec, address, password, token, ["INBOX"], budget,
                                       started)
        raw = facts["fetch"].pop("raw", None)
        if raw is not None:
            facts["headers"] = header_texts(raw)
            facts["auth_results"] = [parse_auth_results(v) for v in
                                     facts["headers"].get("Authentication-Results", [])]
            facts.update(verify_message(raw, ctx))
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        sub = facts["submission"]
        if not sub.get("accepted"):
            judge_refused_submission(sub, f"{facts['host']} {facts['via']}", f)
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
        _judge_arc(facts, f)
        _judge_auth_results(facts, f)
        latency = fetch.get("latency_seconds")
        shown = ", ".join(f"d={s['d']} s={s['s']}" for s in passing)
        arc = facts.get("arc") or {}
        sealed = f"; ARC cv=pass ({arc_hops(arc)})" if arc.get("cv") == "pass" else ""
        return f.verdict(f"delivered in {latency:.2f} s via {facts['via']}; DKIM pass ({shown})"
                         + sealed + _ar_summary(facts))


def judge_refused_submission(sub: dict[str, Any], where: str, f: Findings) -> None:
    """Why the probe message was not taken, as the submission service's fault (fail) or
    ours (error)."""
    kind = sub.get("error_kind")
    if kind == "refused" and sub.get("step") == "AUTH":
        f.fail(f"submission on {where} refused the probe mailbox's login: {sub.get('error')}")
    elif kind == "refused":
        f.fail(f"submission on {where} refused the probe message: {sub.get('error')}")
    elif kind in ("certificate", "tls", "no-starttls"):
        f.fail(f"cannot submit securely to {where}: {sub.get('error')} (credentials withheld)")
    elif kind in PROBE_SIDE:
        f.error(f"could not submit the probe message: {sub.get('error')} "
                "(see mail.submission)")
    else:  # the server answered, but not as a working submission service does
        f.fail(f"submission on {where} broke off: {sub.get('error')}")


def _judge_arc(facts: Facts, f: Findings) -> None:
    """A present chain must validate (RFC 8617 5.2); a declared sealing hop must seal."""
    arc = facts.get("arc") or {}
    if arc.get("present") and arc.get("cv") not in ("pass", "none"):
        broken = [h for h in arc.get("hops") or []
                  if h.get("seal_valid") is False or h.get("signature_valid") is False]
        where = (" at " + arc_hops({"hops": broken})) if broken else ""
        f.fail(f"ARC chain invalid (cv={arc.get('cv')}: {arc.get('comment')}){where} "
               "(RFC 8617 5.2)")
    elif not arc.get("present") and facts.get("expect_arc"):
        f.fail("probe message arrived without an ARC seal, though its path passes a sealing "
               "hop (expect_arc; RFC 8617 4.1)")


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
