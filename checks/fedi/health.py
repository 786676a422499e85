"""fedi.health: the service answers as its software does when healthy."""

from __future__ import annotations

from urllib.parse import urlsplit

from watchtower.config import Service
from watchtower.model import FEDI_KINDS, Findings, Target, Verdict
from watchtower.probe.api import CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from ..common import answer_problem, fetch, origin
from .discovery import FediCheck
from .nodeinfo_check import gather_nodeinfo, judge_nodeinfo

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
