"""fedi.actor and fedi.authorized-fetch: the probe account's actor document, and whether
unsigned fetches are refused where the operator declared secure mode."""

from __future__ import annotations

from typing import Any

from watchtower.config import Service
from watchtower.model import FEDI_KINDS, Findings, Status, Target, Verdict
from watchtower.probe.actor import probe_actor
from watchtower.probe.api import CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from ..common import answer_problem, fetch
from .discovery import ACCEPT_AP, FediCheck, require_actor


def gather_actor(ctx: ProbeContext, service: Service) -> Facts:
    """The actor fetched unsigned, and signed as watchtower's probe actor when one is
    configured (`[federation] actor_url`, `actor_key`): under secure mode only the signed
    fetch is served."""
    facts, href = require_actor(ctx, service)
    fetched, _ = fetch(ctx, href, headers={"Accept": ACCEPT_AP}, want_json=True)
    out: Facts = {"resource": facts["resource"], "actor_url": href, "actor": fetched,
                  "secure_mode": service.secure_mode}
    actor = probe_actor(ctx.fleet)
    if actor is not None:
        # A signature covers one request target: never follow a redirect with it.
        signed, _ = fetch(ctx, href, headers={"Accept": ACCEPT_AP, **actor.sign_get(href)},
                          want_json=True, follow=False)
        signed.setdefault("headers", {}).pop("signature", None)
        out["signed_actor"] = signed
        out["signed_as"] = actor.key_id
    return out


def _is_ap_type(content_type: str) -> bool:
    return content_type in ("application/activity+json", "application/ld+json")


def refusal(fetched: Facts) -> str:
    """The reason a server gave for a 401/403 (Mastodon: {"error": "..."}), if any."""
    doc = fetched.get("json")
    reason = doc.get("error") if isinstance(doc, dict) else None
    return f": {reason}" if isinstance(reason, str) else ""


def judge_actor_document(fetched: Facts, actor_url: Any, f: Findings) -> str:
    """fail/warn on one fetched actor document; returns the summary of a good one."""
    problem = answer_problem(fetched, "actor")
    if problem:
        f.fail(problem)
        return ""
    if not _is_ap_type(str(fetched.get("content_type", ""))):
        f.fail(f"actor served as {fetched.get('content_type')}, not application/activity+json")
    actor = fetched.get("json")
    if not isinstance(actor, dict):
        f.fail("actor is not a JSON object")
        return ""
    for key in ("id", "inbox", "outbox"):
        if not isinstance(actor.get(key), str):
            f.fail(f"actor has no {key}")
    key_obj = actor.get("publicKey")
    if not isinstance(key_obj, dict) or not isinstance(key_obj.get("publicKeyPem"), str):
        f.fail("actor has no publicKey with publicKeyPem (signatures cannot be verified)")
    if isinstance(actor.get("id"), str) and actor["id"] != actor_url:
        f.warn(f"actor id {actor['id']} differs from the URL fetched")
    endpoints = actor.get("endpoints")
    if not (isinstance(endpoints, dict) and isinstance(endpoints.get("sharedInbox"), str)):
        f.warn("no endpoints.sharedInbox (every delivery costs one request per follower)")
    return (f"{actor.get('type', 'actor')} {actor.get('id')} with inbox, outbox, publicKey and "
            "sharedInbox")


@register
class Actor(FediCheck):
    meta = CheckMeta(
        id="fedi.actor",
        needs=("fedi.health",),
        family="fedi",
        title="The probe account's actor has id, inbox, outbox, publicKey, sharedInbox",
        query=(
            "GET the `self` href with `Accept: application/activity+json`, unsigned and (with a "
            "`[federation]` probe actor) signed"
        ),
        verdicts=(
            "fail missing id/inbox/outbox/publicKey; warn no sharedInbox; under secure mode the "
            "signed fetch is judged, fail if it is refused too"
        ),
        applies_to=FEDI_KINDS,
        interval=900,
        timeout=20,
        standards=("ActivityPub 4.1", "ActivityPub 7.1.3 (sharedInbox)",
                   "draft-cavage-http-signatures (publicKey)"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return gather_actor(ctx, target.spec)

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        fetched = facts.get("actor") or {}
        signed = facts.get("signed_actor")
        refused = fetched.get("status") in (401, 403)
        if facts.get("secure_mode") and refused and signed is None:
            return Verdict(Status.OK, "secure mode: the unsigned fetch was refused as declared;"
                                      " actor fields not checked (no probe actor configured)")
        if refused and signed is not None:
            if signed.get("status") in (401, 403):
                f.fail(f"the signed fetch as {facts.get('signed_as')} was refused too "
                       f"(HTTP {signed.get('status')}{refusal(signed)})")
                return f.verdict("")
            fetched = signed
        summary = judge_actor_document(fetched, facts.get("actor_url"), f)
        how = " (signed fetch)" if fetched is signed else ""
        return f.verdict(summary + how)


@register
class AuthorizedFetch(FediCheck):
    meta = CheckMeta(
        id="fedi.authorized-fetch",
        needs=("fedi.health",),
        family="fedi",
        title="Unsigned actor fetch refused, signed one served, as the declared secure mode says",
        query=(
            "unsigned GET of the actor, and a GET signed as watchtower's probe actor "
            "(draft-cavage-12: `(request-target) host date`, rsa-sha256)"
        ),
        verdicts=(
            "fail if the unsigned behaviour (401 vs 200) differs from the declared secure-mode "
            "setting; fail if the signed fetch is not served (with the server's reason)"
        ),
        applies_to=FEDI_KINDS,
        interval=3600,
        timeout=20,
        standards=("Mastodon AUTHORIZED_FETCH", "draft-cavage-http-signatures-12"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        facts = gather_actor(ctx, target.spec)
        actor = facts["actor"]
        out = {"actor_url": facts["actor_url"], "secure_mode": facts["secure_mode"],
               "status": actor.get("status"), "problem": actor.get("problem")}
        if "signed_actor" in facts:
            signed = facts["signed_actor"]
            out.update(signed_as=facts["signed_as"], signed_status=signed.get("status"),
                       signed_refusal=refusal(signed).removeprefix(": "))
        return out

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        declared = bool(facts.get("secure_mode"))
        status = facts.get("status")
        if status in (401, 403):
            observed = True
        elif status == 200:
            observed = False
        else:
            f.fail(f"unsigned actor fetch answered {status} "
                   f"{facts.get('problem') or ''}".strip())
            return f.verdict("")
        if observed != declared:
            want = "refused (401)" if declared else "served (200)"
            got = "refused" if observed else "served"
            f.fail(f"unsigned actor fetch was {got} ({status}); secure_mode={declared} "
                   f"says it should be {want}")
        signed = facts.get("signed_status")
        if "signed_as" in facts and signed != 200:
            why = f": {facts['signed_refusal']}" if facts.get("signed_refusal") else ""
            f.fail(f"signed fetch as {facts['signed_as']} answered {signed}{why} (other "
                   "servers signing the same way cannot read this actor)")
        mode = "on" if declared else "off"
        tail = ", signed fetch served" if signed == 200 else ""
        return f.verdict(f"secure mode {mode}: unsigned fetch answered {status} as declared"
                         f"{tail}")
