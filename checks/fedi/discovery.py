"""Discovery as a remote server runs it: WebFinger on the account domain, host-meta, and
the actor the `self` link names; the base class of the checks that need the probe account."""

from __future__ import annotations

from urllib.parse import urlencode

from watchtower.config import Service
from watchtower.errors import ProbeError
from watchtower.model import FEDI_KINDS, Findings, Target, Verdict
from watchtower.parsers import ParseError
from watchtower.parsers.jrd import ACTIVITY_TYPES, parse_host_meta, parse_jrd
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from ..common import answer_problem, fetch, header, https_origin

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
