"""fedi.nodeinfo: the NodeInfo discovery document and the schema version it links to."""

from __future__ import annotations

from typing import Any

from watchtower.config import Service
from watchtower.model import FEDI_KINDS, Findings, Target, Verdict
from watchtower.parsers import ParseError, nodeinfo
from watchtower.probe.api import CheckMeta, Facts, ProbeContext
from watchtower.probe.registry import register

from ..common import answer_problem, fetch, origin
from .discovery import FediCheck


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
