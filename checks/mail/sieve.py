"""mail.sieve: can users manage their filters, and do the filters run when mail arrives?

Over ManageSieve (RFC 5804, port 4190): STARTTLS must be offered and no SASL mechanism before
it (a password would cross the network in clear), the certificate must be trusted, the probe
mailbox must log in, the SIEVE capability must list the extensions the operator requires
(`sieve_extensions`), and CHECKSCRIPT must accept the probe's script.

Then the proof at delivery time: the probe installs its script (`SCRIPT_NAME`: file messages
carrying `MARKER_HEADER` into `sieve_folder`) in the probe account only, activates it, submits
a message carrying the marker and looks for it. Landing in the folder proves the server runs
the user's active Sieve script at delivery (Pigeonhole under LMTP, say); landing in INBOX
proves it does not. Whatever happens, the previously active script is activated again and the
probe's script deleted, and the evidence says what was active before and after.
"""

from __future__ import annotations

import time
from typing import Any

from watchtower.config import MailHost
from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.managesieve import ManageSieveSession, sasl_mechanisms, sieve_extensions
from watchtower.probe.api import CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from ..common import failure
from .probemail import (
    IMAP_RESERVE,
    PROBE_SIDE,
    ProbeAccountCheck,
    await_message,
    imap_session,
    new_token,
    probe_account,
    probe_mailbox,
    probe_message,
    submit,
)

SCRIPT_NAME = "watchtower-probe"
MARKER_HEADER = "X-Watchtower-Sieve"
RESTORE_RESERVE = 4.0  # seconds kept back from the deadline to put the old script back
#: Errors a hostile or broken server causes that say nothing about compliance: `error`.
_UNJUDGEABLE = (*PROBE_SIDE, "protocol")


def sieve_string(value: str) -> str:
    """A Sieve quoted string (RFC 5228 2.4.2: backslash escapes `"` and `\\`)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def probe_script(folder: str) -> str:
    """The probe's script: file the probe's own marked messages into `folder`, nothing else."""
    return ("# watchtower mail.sieve probe: installed, activated and removed by the probe\n"
            'require ["fileinto"];\n'
            f"if exists {sieve_string(MARKER_HEADER)} {{\n"
            f"  fileinto {sieve_string(folder)};\n  stop;\n}}\n")


@register
class Sieve(ProbeAccountCheck):
    meta = CheckMeta(
        id="mail.sieve",
        needs=("dns.ns.authoritative",),
        family="mail",
        title="ManageSieve with STARTTLS, the required extensions, and Sieve run at delivery",
        query=(
            "ManageSieve on `sieve_port` (4190): capabilities before and after STARTTLS, login "
            "with the probe mailbox, CHECKSCRIPT of the probe script; then the probe's script "
            "installed and activated in the probe account, a marked message submitted, and the "
            "previously active script restored"
        ),
        verdicts=(
            "fail not reachable, no STARTTLS, SASL offered before STARTTLS, certificate not "
            "trusted, login refused, a `sieve_extensions` entry missing from SIEVE, CHECKSCRIPT "
            "refuses a valid script, PUTSCRIPT/SETACTIVE refused, the marked message lands in "
            "INBOX instead of `sieve_folder` (Sieve not run at delivery) or not at all; warn the "
            "previous active script could not be restored; error timeout, malformed capability "
            "line, huge literal, other protocol garbage, submission or IMAP could not run (RFC "
            "5804, RFC 5228 4.1, RFC 4616 4)"
        ),
        applies_to=(TargetKind.MAIL_HOST,),
        interval=3600,
        timeout=90,
        standards=("RFC 5804 2.1", "RFC 5804 2.2", "RFC 5804 2.12", "RFC 5228 4.1",
                   "RFC 4616 4"),
        hint="Enable ManageSieve over STARTTLS only (Dovecot: protocols = sieve, "
             "disable_plaintext_auth = yes) and Sieve at delivery (Pigeonhole: "
             "mail_plugins = $mail_plugins sieve under protocol lmtp).",
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        spec, password, address = probe_account(target, ctx)
        assert spec.probe_user is not None  # probe_account made sure
        facts: dict[str, Any] = {
            "host": spec.host, "address": address, "port": spec.sieve_port,
            "required": [e.lower() for e in spec.sieve_extensions],
            "folder": spec.sieve_folder, "script": SCRIPT_NAME,
            "deadline_seconds": spec.roundtrip_deadline,
        }
        session = ctx.sieve.session(spec.host, address, spec.sieve_port, ctx.deadline)
        try:
            session.open()
            facts["tls_version"] = session.tls_version
            session.login(spec.probe_user, password)
            facts["logged_in"] = True
            check = session.check_script(probe_script(spec.sieve_folder))
            facts["checkscript"] = {"ok": check.ok, "reply": check.evidence()}
            if check.ok and "fileinto" in session.extensions:
                facts["delivery"] = _delivery(ctx, spec, address, password, session)
        except ProbeError as exc:
            facts.update(failure(exc))
        finally:
            facts["capabilities_before_tls"] = session.capabilities_before_tls
            facts["capabilities"] = session.capabilities
            session.close()
            facts["transcript"] = session.transcript
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        who = f"ManageSieve {facts['host']}:{facts['port']}"
        before = facts.get("capabilities_before_tls")
        offered = sasl_mechanisms(before)
        if before is not None and offered:
            f.fail(f"{who} offers SASL {' '.join(offered)} before STARTTLS: passwords may cross "
                   "the network in clear (RFC 4616 4, RFC 5804 2.1)")
        if facts.get("error_kind") is not None:
            _judge_error(who, facts, f)
            return f.verdict("")
        extensions = sieve_extensions(facts.get("capabilities"))
        missing = [e for e in facts["required"] if e not in extensions]
        if missing:
            f.fail(f"{who}: the SIEVE capability lacks {', '.join(missing)}, required "
                   "(sieve_extensions)")
        check = facts.get("checkscript") or {}
        if not check.get("ok"):
            f.fail(f"{who}: CHECKSCRIPT refused the probe's valid script ({check.get('reply')})"
                   " (RFC 5804 2.12)")
        delivered = _judge_delivery(facts, f)
        return f.verdict(f"{who} ({facts.get('tls_version')}, STARTTLS only): SIEVE has "
                         f"{', '.join(facts['required'])}; CHECKSCRIPT ok; {delivered}")


def _judge_error(who: str, facts: Facts, f: Findings) -> None:
    kind, error = facts["error_kind"], _unprefixed(str(facts.get("error")))
    if kind == "unreachable":
        f.fail(f"{who} not reachable ({error}): users cannot manage their filters")
    elif kind == "no-starttls":
        f.fail(f"{who} does not offer STARTTLS ({error}) (RFC 5804 2.2)")
    elif kind in ("certificate", "tls"):
        f.fail(f"{who}: {error} (credentials withheld)")
    elif kind == "login":
        f.fail(f"{who}: the probe mailbox cannot log in ({error})")
    elif kind == "refused":
        f.fail(f"{who}: {error}")
    elif kind in _UNJUDGEABLE:
        f.error(f"{who}: {error}")
    else:
        f.fail(f"{who}: {error}")


def _unprefixed(error: str) -> str:
    """An error without the `host:port: ` the session put in front (the verdict names it)."""
    head, sep, rest = error.partition(": ")
    return rest if sep and head.rpartition(":")[2].isdigit() else error


def _judge_delivery(facts: Facts, f: Findings) -> str:
    delivery = facts.get("delivery")
    if delivery is None:
        return "delivery not tested"
    restore = delivery.get("restore") or {}
    before = restore.get("active_before")
    if not restore.get("restored"):
        why = restore.get("error") or f"active now: {restore.get('active_after')!r}"
        f.warn(f"the previously active script {before!r} of the probe account could not be "
               f"restored ({why}): restore it by hand")
    put_back = (f"previous active script {before!r} restored" if before
                else "no script was active before; none is now")
    sub = delivery.get("submission") or {}
    fetch = delivery.get("fetch") or {}
    if delivery.get("error"):
        f.error(f"Sieve delivery test: {delivery['error']}")
    elif not sub.get("accepted"):
        f.error(f"could not submit the Sieve probe message: {sub.get('error')} "
                "(see mail.roundtrip)")
    elif fetch.get("error"):
        f.error(f"Sieve probe message submitted but not fetched: {fetch['error']} "
                "(see mail.imap)")
    elif not fetch.get("delivered"):
        f.fail(f"Sieve probe message not delivered within "
               f"{fetch.get('waited_seconds', facts['deadline_seconds'])} s")
    elif fetch.get("folder") != facts["folder"]:
        f.fail(f"Sieve did not run at delivery: the probe message landed in "
               f"{fetch.get('folder')}, not in {facts['folder']} where the active script files "
               "it (RFC 5228 4.1)")
    else:
        return (f"probe script filed its message into {facts['folder']} in "
                f"{fetch.get('latency_seconds', 0):.2f} s; {put_back}")
    return put_back


def _delivery(ctx: ProbeContext, spec: MailHost, address: str, password: str,
              session: ManageSieveSession) -> dict[str, Any]:
    """Install and activate the probe script, send a marked message, find where it landed,
    and put the previous active script back (always)."""
    out: dict[str, Any] = {}
    active = [name for name, on in session.list_scripts() if on]
    previous = active[0] if active and active[0] != SCRIPT_NAME else None
    out["leftover"] = bool(active and active[0] == SCRIPT_NAME)
    try:
        prepare = imap_session(ctx, spec, address)
        try:
            prepare.open()
            assert spec.probe_user is not None
            prepare.login(spec.probe_user, password)
            out["folder_created"] = prepare.ensure_mailbox(spec.sieve_folder)
        finally:
            prepare.close()
        session.put_script(SCRIPT_NAME, probe_script(spec.sieve_folder))
        session.set_active(SCRIPT_NAME)
        out["installed"] = True
        _send_and_find(ctx, spec, address, password, out)
    except ProbeError as exc:
        out.update(failure(exc))
    finally:
        out["restore"] = _restore(session, previous)
    return out


def _send_and_find(ctx: ProbeContext, spec: MailHost, address: str, password: str,
                   out: dict[str, Any]) -> None:
    mailbox = probe_mailbox(spec)
    token = new_token()
    out["token"] = token
    message = probe_message(mailbox, mailbox, token, subject="watchtower sieve probe",
                            body="This message tests that Sieve filters run at delivery.\n"
                                 "It is deleted automatically; nobody needs to read it.\n",
                            headers={MARKER_HEADER: token})
    started = time.monotonic()
    out["submission"] = submit(ctx, spec, address, password, [mailbox], message)
    if not out["submission"].get("accepted"):
        return
    budget = min(started + spec.roundtrip_deadline,
                 ctx.deadline - IMAP_RESERVE - RESTORE_RESERVE)
    fetch = await_message(ctx, spec, address, password, token, [spec.sieve_folder, "INBOX"],
                          budget, started)
    fetch.pop("raw", None)
    out["fetch"] = fetch


def _restore(session: ManageSieveSession, previous: str | None) -> dict[str, Any]:
    """Activate `previous` again (or none), delete the probe script, and read back what is
    active now."""
    out: dict[str, Any] = {"active_before": previous}
    try:
        session.set_active(previous or "")
        if any(name == SCRIPT_NAME for name, _on in session.list_scripts()):
            session.delete_script(SCRIPT_NAME)
        active = [name for name, on in session.list_scripts() if on]
        out["active_after"] = active[0] if active else None
        out["restored"] = out["active_after"] == previous
    except ProbeError as exc:
        out.update(restored=False, error=exc.reason)
    return out
