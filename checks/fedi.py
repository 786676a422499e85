"""fedi.* checks (per ActivityPub service: Mastodon, PeerTube, Pixelfed).

Discovery runs the way a remote server runs it: WebFinger on the *account* domain (which may
differ from the web domain: Mastodon's LOCAL_DOMAIN != WEB_DOMAIN redirects `.well-known` there),
then the actor the `self` link names. Each check repeats the few requests it needs instead of
sharing state, so any one of them can run, fail or be disabled alone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from watchtower.config import Service
from watchtower.errors import ProbeError
from watchtower.model import FEDI_KINDS, Findings, Status, Target, Verdict
from watchtower.parsers import ParseError, nodeinfo
from watchtower.parsers.jrd import ACTIVITY_TYPES, parse_host_meta, parse_jrd
from watchtower.probe.actor import probe_actor
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from .common import answer_problem, fetch, header, https_origin, origin

ACCEPT_AP = f"{ACTIVITY_TYPES[1]}, {ACTIVITY_TYPES[0]}"
ACCEPT_JRD = "application/jrd+json, application/json"


def account(service: Service) -> tuple[str, str]:
    """(user, domain) of the probe account; `user`, `@user@dom`, `acct:user@dom` all work."""
    raw = (service.probe_account or "").strip().removeprefix("acct:").lstrip("@")
    user, sep, domain = raw.rpartition("@")
    if not sep:
        return raw, service.hostname
    return user, domain.lower()


def webfinger_url(ctx: ProbeContext, service: Service) -> tuple[str, str]:
    user, domain = account(service)
    resource = f"acct:{user}@{domain}"
    base = https_origin(ctx, domain, service.base_url)
    return resource, f"{base}/.well-known/webfinger?{urlencode({'resource': resource})}"


def gather_webfinger(ctx: ProbeContext, service: Service) -> Facts:
    resource, url = webfinger_url(ctx, service)
    fetched, _ = fetch(ctx, url, headers={"Accept": ACCEPT_JRD}, want_json=True,
                       keep=("access-control-allow-origin",))
    return {"resource": resource, "webfinger": fetched}


def actor_href(facts: Facts) -> str | None:
    """The actor URL from recorded WebFinger facts, or None."""
    doc = (facts.get("webfinger") or {}).get("json")
    try:
        return parse_jrd(doc).actor_href() if doc is not None else None
    except ParseError:
        return None


def require_actor(ctx: ProbeContext, service: Service) -> tuple[Facts, str]:
    """WebFinger facts and the actor URL; no actor link means this probe cannot run."""
    facts = gather_webfinger(ctx, service)
    href = actor_href(facts)
    if href is None:
        problem = answer_problem(facts["webfinger"], "WebFinger") or "no rel=self actor link"
        raise ProbeError(f"cannot find the actor of {facts['resource']}: {problem}",
                         kind="discovery")
    return facts, href


class FediCheck(Check):
    """Base for checks that need the configured probe account."""

    needs_account = True

    def applies(self, target: Target) -> bool:
        if target.kind not in self.meta.applies_to:
            return False
        return not self.needs_account or bool(getattr(target.spec, "probe_account", None))


@register
class WebFinger(FediCheck):
    meta = CheckMeta(
        id="fedi.webfinger",
        needs=("fedi.health",),
        family="fedi",
        title="WebFinger answers a JRD naming the probe account's actor",
        query="`/.well-known/webfinger?resource=acct:<probe-account>@<domain>`",
        verdicts=(
            "fail not JSON/JRD, subject mismatch, no `rel=self` link of type "
            "`application/activity+json`; warn missing CORS `*` (RFC 7033)"
        ),
        applies_to=FEDI_KINDS,
        interval=900,
        timeout=20,
        standards=("RFC 7033 4.2", "RFC 7033 4.4", "RFC 7033 5", "ActivityPub 3.2"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return gather_webfinger(ctx, target.spec)

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        wf = facts.get("webfinger") or {}
        problem = answer_problem(wf, "WebFinger")
        if problem:
            f.fail(problem)
            return f.verdict("")
        try:
            jrd = parse_jrd(wf.get("json"))
        except ParseError as exc:
            f.fail(f"WebFinger answer is not a JRD: {exc.reason}")
            return f.verdict("")
        resource = str(facts.get("resource", ""))
        if (jrd.subject or "").lower() != resource.lower():
            f.fail(f"subject {jrd.subject!r} does not match {resource}")
        href = jrd.actor_href()
        if href is None:
            f.fail("no rel=self link of type application/activity+json")
        if header(wf, "access-control-allow-origin") != "*":
            f.warn("no Access-Control-Allow-Origin: * (browser clients cannot query it, "
                   "RFC 7033 5)")
        hops = len(wf.get("redirects") or [])
        via = f" after {hops} redirect(s)" if hops else ""
        return f.verdict(f"{resource} -> {href}{via}")


@register
class HostMeta(FediCheck):
    meta = CheckMeta(
        id="fedi.host-meta",
        needs=("fedi.health",),
        family="fedi",
        title="host-meta carries an lrdd template",
        query="`/.well-known/host-meta`",
        verdicts="warn missing lrdd template (RFC 6415)",
        applies_to=FEDI_KINDS,
        interval=3600,
        timeout=15,
        standards=("RFC 6415 2", "RFC 6415 3"),
    )
    needs_account = False

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        _, domain = account(service) if service.probe_account else ("", service.hostname)
        url = https_origin(ctx, domain, service.base_url) + "/.well-known/host-meta"
        fetched, resp = fetch(ctx, url, max_body=256 * 1024)
        facts: Facts = {"url": url, "host_meta": fetched}
        if resp is not None and resp.status == 200 and not resp.truncated:
            facts["body"] = resp.body.decode("utf-8", errors="replace")
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        fetched = facts.get("host_meta") or {}
        problem = answer_problem(fetched, "host-meta")
        if problem:
            f.warn(problem)
            return f.verdict("")
        try:
            doc = parse_host_meta(str(facts.get("body", "")).encode(),
                                  str(fetched.get("content_type", "")))
        except ParseError as exc:
            f.warn(f"host-meta unreadable: {exc.reason}")
            return f.verdict("")
        lrdd = doc.link("lrdd")
        if lrdd is None or not lrdd.template:
            f.warn("host-meta has no lrdd template")
            return f.verdict("")
        return f.verdict(f"lrdd template {lrdd.template}")


def gather_nodeinfo(ctx: ProbeContext, service: Service) -> Facts:
    """Discovery and the chosen schema's document, fetched and parsed once per instance per
    sweep for fedi.nodeinfo and Pixelfed's fedi.health (a copy each)."""
    base = origin(service.base_url)
    return dict(ctx.once(("nodeinfo", base), lambda: _fetch_nodeinfo(ctx, base)))


def _fetch_nodeinfo(ctx: ProbeContext, base: str) -> Facts:
    disc, _ = fetch(ctx, base + "/.well-known/nodeinfo", want_json=True)
    facts: Facts = {"discovery": disc}
    if disc.get("status") != 200 or "json" not in disc:
        return facts
    try:
        chosen = nodeinfo.choose_schema(nodeinfo.parse_discovery(disc["json"]))
    except ParseError:
        return facts
    if chosen is None:
        return facts
    facts["schema"], href = chosen
    facts["document"], _ = fetch(ctx, href, want_json=True)
    return facts


def judge_nodeinfo(facts: Facts, f: Findings) -> nodeinfo.NodeInfo | None:
    """The shared half of fedi.nodeinfo and Pixelfed's fedi.health."""
    disc = facts.get("discovery") or {}
    problem = answer_problem(disc, "NodeInfo discovery")
    if problem:
        f.fail(problem)
        return None
    try:
        links = nodeinfo.parse_discovery(disc.get("json"))
    except ParseError as exc:
        f.fail(f"NodeInfo discovery unreadable: {exc.reason}")
        return None
    if not facts.get("schema"):
        seen = ", ".join(v for v, _ in links) or "none"
        f.fail(f"no NodeInfo 2.0-2.2 schema link (seen: {seen})")
        return None
    doc = facts.get("document") or {}
    problem = answer_problem(doc, f"NodeInfo {facts['schema']} document")
    if problem:
        f.fail(problem)
        return None
    return nodeinfo.validate(doc.get("json"), str(facts["schema"]))


@register
class NodeInfo(FediCheck):
    meta = CheckMeta(
        id="fedi.nodeinfo",
        needs=("fedi.health",),
        family="fedi",
        title="NodeInfo discoverable and valid against its 2.x schema",
        query="`/.well-known/nodeinfo` -> highest schema 2.x href",
        verdicts=(
            "fail unreachable or schema-invalid; records software.name/version, openRegistrations,"
            " usage"
        ),
        applies_to=FEDI_KINDS,
        interval=900,
        timeout=20,
        standards=("NodeInfo protocol (discovery)", "NodeInfo schema 2.0/2.1/2.2"),
    )
    needs_account = False

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return gather_nodeinfo(ctx, target.spec)

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        info = judge_nodeinfo(facts, f)
        if info is None:
            return f.verdict("")
        for problem in info.problems[:5]:
            f.fail(f"schema {info.schema}: {problem}")
        users = (info.usage.get("users") or {}).get("total") if info.usage else None
        reg = {True: "open", False: "closed", None: "unknown"}[info.open_registrations]
        return f.verdict(f"{info.software_name} {info.software_version} (schema {info.schema}),"
                         f" registrations {reg}, {users} users")

    def evidence(self, facts: Facts) -> dict[str, Any]:
        ev = super().evidence(facts)
        info = judge_nodeinfo(facts, Findings())
        if info is not None:
            ev["nodeinfo"] = info.summary()
        return ev


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


HEALTH_PATHS = {
    "mastodon": ("/health", "/api/v1/streaming/health", "/api/v2/instance"),
    "peertube": ("/api/v1/config",),
}
JSON_HEALTH = {"/api/v2/instance", "/api/v1/config"}


@register
class Health(FediCheck):
    meta = CheckMeta(
        id="fedi.health",
        needs=("web.tls.certificate",),
        family="fedi",
        title="The application's own health endpoints answer 200",
        query=(
            "Mastodon `/health` and `/api/v1/streaming/health`, PeerTube `/api/v1/config`, "
            "Pixelfed nodeinfo"
        ),
        verdicts="fail non-200",
        applies_to=FEDI_KINDS,
        interval=120,
        timeout=20,
        standards=("Mastodon /health", "PeerTube REST API /config", "NodeInfo"),
    )
    needs_account = False

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        base = origin(service.base_url)
        facts: Facts = {"kind": service.kind, "endpoints": []}
        if service.kind == "pixelfed":
            facts["nodeinfo"] = gather_nodeinfo(ctx, service)
            return facts
        for path in HEALTH_PATHS.get(service.kind, ()):
            fetched, _ = fetch(ctx, base + path, want_json=path in JSON_HEALTH,
                               max_body=512 * 1024)
            facts["endpoints"].append(fetched)
            data = fetched.pop("json", None)
            if isinstance(data, dict):
                version = data.get("version") or data.get("serverVersion")
                if isinstance(version, str):
                    facts["version"] = version
        return facts

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        if facts.get("kind") == "pixelfed":
            info = judge_nodeinfo(facts.get("nodeinfo") or {}, f)
            version = info.software_version if info else None
            return f.verdict(f"NodeInfo answers ({info.software_name if info else '?'} "
                             f"{version})")
        for ep in facts.get("endpoints") or []:
            problem = answer_problem(ep, urlsplit(str(ep.get("url"))).path)
            if problem:
                f.fail(problem)
        paths = ", ".join(urlsplit(str(e.get("url"))).path for e in facts.get("endpoints") or [])
        version = f" (version {facts['version']})" if facts.get("version") else ""
        return f.verdict(f"{paths} answer 200{version}")
