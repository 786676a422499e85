"""matrix.* checks (per Matrix homeserver): federation discovery, version, signing keys, client
discovery.

Discovery follows the Server-Server API's "Resolving server names" (2.3.1) step by step and keeps
every step as evidence: IP literal or explicit port, `/.well-known/matrix/server`, SRV
`_matrix-fed._tcp` then the deprecated `_matrix._tcp`, then port 8448. The other checks reuse it
to find the federation endpoint. One simplification: after an SRV answer the requests go to the
SRV target by name (Host and SNI of the target) rather than to its address with the delegated
name in Host/SNI; with `.well-known` delegation, the common case, both are the same.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from watchtower.config import Service
from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.dns import DnsError
from watchtower.parsers import ParseError
from watchtower.parsers.matrix import (
    DEFAULT_FEDERATION_PORT,
    check_server_keys,
    parse_server_name,
    parse_well_known_client,
    parse_well_known_server,
)
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, observed_at
from watchtower.probe.registry import register

from .common import answer_problem, fetch, https_origin

#: The catalog says "warn < 1 day ahead", but Synapse by default signs for its
#: key_refresh_interval (1 day) and re-signs once half of it has passed, so a healthy Synapse
#: always shows 12-24 h. Warn below 8 h instead: a server that far behind has stopped re-signing.
KEY_WARN_MS = 8 * 3600 * 1000


def server_name_of(service: Service) -> str:
    return (service.server_name or service.hostname).lower()


def _srv(ctx: ProbeContext, host: str) -> dict[str, Any] | None:
    """The best SRV answer for `host` (`_matrix-fed._tcp`, then `_matrix._tcp`), or None."""
    for prefix in ("_matrix-fed._tcp", "_matrix._tcp"):
        answer = ctx.resolve(f"{prefix}.{host}", "SRV")
        records = sorted(answer.rdatas, key=lambda r: (r.priority, -r.weight))
        if records:
            best = records[0]
            return {"name": f"{prefix}.{host}", "records": answer.records,
                    "target": best.target.to_text().rstrip("."), "port": int(best.port)}
    return None


def discover(ctx: ProbeContext, service: Service) -> Facts:
    """Resolve the federation endpoint of the service's server name; every step recorded."""
    name = server_name_of(service)
    facts: Facts = {"server_name": name, "steps": []}
    steps: list[str] = facts["steps"]
    parsed = parse_server_name(name)
    host, port, via = parsed.host, parsed.port, ""
    if parsed.is_ip or parsed.port is not None:
        via = "server name is an IP literal" if parsed.is_ip else "server name has a port"
    else:
        url = https_origin(ctx, parsed.host, service.base_url) + "/.well-known/matrix/server"
        try:
            wk, _ = fetch(ctx, url, want_json=True, max_body=64 * 1024)
        except ProbeError as exc:  # the spec says: any error here means "no delegation"
            wk = {"url": url, "status": None, "problem": exc.reason}
        facts["well_known"] = wk
        delegated = None
        if wk.get("status") == 200 and "json" in wk:
            try:
                delegated = parse_well_known_server(wk["json"])
            except ParseError as exc:
                wk["problem"] = exc.reason
        if delegated is not None:
            steps.append(f"well-known delegates to {delegated}")
            host, port = delegated.host, delegated.port
            if delegated.is_ip or delegated.port is not None:
                via = "well-known delegation"
        else:
            steps.append(f"no usable well-known ({answer_problem(wk, 'well-known')})")
        if not via:
            srv = _srv(ctx, host)
            if srv is not None:
                facts["srv"] = srv
                steps.append(f"SRV {srv['name']} -> {srv['target']}:{srv['port']}")
                host, port, via = srv["target"], srv["port"], "SRV"
                try:
                    target_a = ctx.resolve(host, "A")
                    facts["srv_target_cname"] = list(target_a.cname_chain)
                except DnsError as exc:
                    facts["srv_target_cname"] = []
                    steps.append(f"SRV target lookup failed: {exc.reason}")
            else:
                via = "default port 8448" + (" of the delegated host" if delegated else "")
                port = DEFAULT_FEDERATION_PORT
    facts["host"], facts["port"], facts["via"] = host, port or DEFAULT_FEDERATION_PORT, via
    try:
        facts["addresses"] = sorted(ctx.dns.addresses(host, deadline=ctx.deadline))
    except DnsError as exc:
        facts["addresses"] = []
        facts["address_problem"] = exc.reason
    return facts


def federation_base(ctx: ProbeContext, service: Service) -> tuple[Facts, str]:
    """Discovery facts and `https://host:port`; no address means the probe cannot run."""
    disc = discover(ctx, service)
    if not disc["addresses"]:
        raise ProbeError(f"cannot resolve the federation endpoint of {disc['server_name']} "
                         f"({disc.get('address_problem') or 'no address'})", kind="discovery")
    host = disc["host"]
    host = f"[{host}]" if ":" in host else host
    return disc, f"https://{host}:{disc['port']}"


class MatrixCheck(Check):
    def applies(self, target: Target) -> bool:
        return target.kind in self.meta.applies_to


@register
class Discovery(MatrixCheck):
    meta = CheckMeta(
        id="matrix.discovery",
        needs=("dns.ns.authoritative",),
        family="matrix",
        title="The server name resolves to a federation endpoint",
        query=(
            "`/.well-known/matrix/server`, SRV `_matrix-fed._tcp` then `_matrix._tcp`, fallback "
            ":8448"
        ),
        verdicts="fail no way to resolve; fail SRV target is a CNAME",
        applies_to=(TargetKind.SYNAPSE,),
        interval=900,
        timeout=20,
        standards=("Matrix Server-Server API 2.3.1", "RFC 2782", "RFC 2181 10.3"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        return discover(ctx, target.spec)

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        wk = facts.get("well_known") or {}
        if wk and wk.get("status") == 200 and wk.get("problem"):
            f.warn(f"/.well-known/matrix/server is published but unusable: {wk['problem']}")
        if facts.get("srv_target_cname"):
            f.fail(f"SRV target {facts.get('host')} is a CNAME "
                   f"({' -> '.join(facts['srv_target_cname'])}), forbidden by RFC 2782")
        if not facts.get("addresses"):
            f.fail(f"no way to resolve {facts.get('server_name')}: {facts.get('host')} has no "
                   f"address ({facts.get('address_problem') or 'no A/AAAA'})")
        return f.verdict(f"{facts.get('host')}:{facts.get('port')} via {facts.get('via')}")


@register
class Version(MatrixCheck):
    meta = CheckMeta(
        id="matrix.version",
        needs=("web.tls.certificate",),
        family="matrix",
        title="Federation version endpoint names the server software and version",
        query="`/_matrix/federation/v1/version`",
        verdicts="fail missing server.name/version",
        applies_to=(TargetKind.SYNAPSE,),
        interval=900,
        timeout=20,
        standards=("Matrix Server-Server API: GET /_matrix/federation/v1/version",),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        _, base = federation_base(ctx, target.spec)
        fetched, _ = fetch(ctx, base + "/_matrix/federation/v1/version", want_json=True)
        return {"endpoint": base, "version": fetched}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        fetched = facts.get("version") or {}
        problem = answer_problem(fetched, "federation version")
        if problem:
            f.fail(problem)
            return f.verdict("")
        doc = fetched.get("json")
        server = doc.get("server") if isinstance(doc, dict) else None
        if not isinstance(server, dict):
            f.fail("no server object in the version answer")
            return f.verdict("")
        for key in ("name", "version"):
            if not isinstance(server.get(key), str) or not server[key]:
                f.fail(f"server.{key} missing")
        return f.verdict(f"{server.get('name')} {server.get('version')}")


@register
class Keys(MatrixCheck):
    meta = CheckMeta(
        id="matrix.keys",
        needs=("web.tls.certificate",),
        family="matrix",
        title="Server signing keys: right name, ed25519, signatures verify, not expired",
        query="`/_matrix/key/v2/server`",
        verdicts=(
            "fail server_name mismatch, no ed25519 key, a signature that does not verify, "
            "valid_until_ts in the past; warn valid_until_ts < 8 hours ahead (see below)"
        ),
        applies_to=(TargetKind.SYNAPSE,),
        interval=900,
        timeout=20,
        standards=("Matrix Server-Server API 2.3.2 (publishing keys)",
                   "Matrix appendix: signing JSON", "RFC 8032"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        _, base = federation_base(ctx, target.spec)
        fetched, _ = fetch(ctx, base + "/_matrix/key/v2/server", want_json=True)
        return {"server_name": server_name_of(target.spec), "endpoint": base, "keys": fetched}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        fetched = facts.get("keys") or {}
        problem = answer_problem(fetched, "key server")
        if problem:
            f.fail(problem)
            return f.verdict("")
        report = check_server_keys(fetched.get("json"))
        for p in report.problems:
            f.fail(p)
        expected = str(facts.get("server_name", "")).lower()
        if report.server_name is not None and report.server_name.lower() != expected:
            f.fail(f"server_name {report.server_name!r} is not {expected!r}")
        if not report.ed25519_keys:
            f.fail("no ed25519 verify key")
        for key_id, why in report.bad_signatures.items():
            f.fail(f"signature by {key_id} does not verify ({why})")
        until = ""
        if report.valid_until_ts is not None:
            now_ms = observed_at(facts).timestamp() * 1000
            left = report.valid_until_ts - now_ms
            when = dt.datetime.fromtimestamp(report.valid_until_ts / 1000, dt.UTC)
            until = f"{when:%Y-%m-%d %H:%M}Z"
            if left < 0:
                f.fail(f"valid_until_ts {until} is in the past: other servers reject the keys")
            elif left < KEY_WARN_MS:
                hours = KEY_WARN_MS // 3_600_000
                f.warn(f"valid_until_ts {until} is less than {hours} hours ahead")
        return f.verdict(f"{len(report.verified_keys)} ed25519 key(s) verified "
                         f"({', '.join(report.verified_keys)}), valid until {until}")


@register
class Client(MatrixCheck):
    meta = CheckMeta(
        id="matrix.client",
        needs=("web.tls.certificate",),
        family="matrix",
        title="Client discovery (.well-known/matrix/client) and /_matrix/client/versions",
        query="`/.well-known/matrix/client` m.homeserver.base_url and `/_matrix/client/versions`",
        verdicts="warn missing",
        applies_to=(TargetKind.SYNAPSE,),
        interval=900,
        timeout=20,
        standards=("Matrix Client-Server API: server discovery",
                   "Matrix Client-Server API: GET /_matrix/client/versions"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        host = parse_server_name(server_name_of(service)).host
        url = https_origin(ctx, host, service.base_url) + "/.well-known/matrix/client"
        wk, _ = fetch(ctx, url, want_json=True, max_body=64 * 1024)
        base = service.base_url.rstrip("/")
        if wk.get("status") == 200 and "json" in wk:
            try:
                base = parse_well_known_client(wk["json"])
            except ParseError as exc:
                wk["problem"] = exc.reason
        versions, _ = fetch(ctx, base + "/_matrix/client/versions", want_json=True)
        return {"well_known": wk, "base_url": base, "versions": versions}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        wk = facts.get("well_known") or {}
        problem = answer_problem(wk, "client well-known")
        if problem or wk.get("problem"):
            f.warn(problem or f"client well-known unusable: {wk['problem']}")
        versions = facts.get("versions") or {}
        problem = answer_problem(versions, "client versions")
        doc = versions.get("json")
        if problem:
            f.warn(problem)
        elif not isinstance(doc, dict) or not isinstance(doc.get("versions"), list):
            f.warn("/_matrix/client/versions has no versions list")
        latest = doc["versions"][-1] if isinstance(doc, dict) and doc.get("versions") else "?"
        return f.verdict(f"clients find {facts.get('base_url')} (spec up to {latest})")
