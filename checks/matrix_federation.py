"""matrix.federation.* checks (per Matrix homeserver): is our homeserver actually federating?

Three views, each named after the part of Synapse it reads (element-hq/synapse):

- backlog, from the metrics listener (`metrics_url`, /_synapse/metrics): PDUs and EDUs queued
  for other servers (`synapse_federation_transaction_queue_pending_pdus`, `_pending_edus`,
  synapse/federation/sender/__init__.py) and how far the federation sender trails the event
  stream: `synapse_event_persisted_position` against
  `synapse_event_processing_positions{name="federation_sender"}`, the age of the last event it
  handled (`synapse_event_processing_last_ts`, ms) and its processing lag
  (`synapse_event_processing_lag`, ms; synapse/metrics/__init__.py).
- destinations, from the admin API (`GET /_synapse/admin/v1/federation/destinations`, an admin
  access token; synapse/rest/admin/federation.py, docs/usage/administration/admin_api/
  federation.md): each remote server with `failure_ts` (failing since, ms; null when healthy),
  `retry_last_ts` and `retry_interval` (ms; Synapse backs off up to
  destination_max_retry_interval, 7 days by default, synapse/config/federation.py).
- outbound: our server fetches another server's signing keys as a notary
  (`/_matrix/key/v2/query`, Server-Server API 2.3.3). Synapse answers a query for "all keys" of
  a server from its cache only, so the check first POSTs a query for a key id nobody has
  (synapse/rest/key/v2/remote_key_resource.py: a cache miss makes it fetch from the remote),
  then reads back every key it now holds for that server.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from watchtower.config import QueueSettings, Service
from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.parsers import promtext
from watchtower.parsers.matrix import check_server_keys
from watchtower.probe.api import CheckMeta, Facts, ProbeContext, observed_at
from watchtower.probe.registry import register

from .common import HttpAnswer, age_text, answer_problem, fetch, origin
from .matrix import MatrixCheck, federation_base
from .scrape import bearer, samples_of, scrape

SENDER = "federation_sender"
BACKLOG_METRICS = ("synapse_federation_transaction_queue_pending_pdus",
                   "synapse_federation_transaction_queue_pending_edus",
                   "synapse_event_persisted_position", "synapse_event_processing_positions",
                   "synapse_event_processing_last_ts", "synapse_event_processing_lag")
DESTINATION_PAGE = 500
DESTINATION_PAGES = 20
MAX_RETRY_MS = 7 * 24 * 3600 * 1000  # Synapse's default destination_max_retry_interval
PROBE_KEY_ID = "ed25519:watchtower-probe"


def _sender(samples: promtext.Samples, name: str) -> float | None:
    values = [v for labels, v in samples.get(name, []) if labels.get("name") == SENDER]
    return max(values) if values else None


@register
class Backlog(MatrixCheck):
    meta = CheckMeta(
        id="matrix.federation.backlog",
        family="matrix",
        title="The federation sender keeps up: no PDU backlog, no stalled event stream",
        query=(
            "Synapse metrics listener (`metrics_url`): "
            "`synapse_federation_transaction_queue_pending_pdus`/`_edus`, "
            "`synapse_event_persisted_position` vs "
            "`synapse_event_processing_positions{name=\"federation_sender\"}`, `_last_ts`, `_lag`"
        ),
        verdicts=(
            "warn pending PDUs >= `[queues] pending_pdus_warn`; warn/fail federation-sender lag "
            "(or age of its last event while behind) at `latency_warn`/`latency_fail`"
        ),
        applies_to=(TargetKind.SYNAPSE,),
        interval=300,
        timeout=20,
        standards=("Synapse metrics (synapse_federation_transaction_queue_*, "
                   "synapse_event_processing_*)",),
    )

    def applies(self, target: Target) -> bool:
        return target.kind in self.meta.applies_to and target.spec.metrics_url is not None

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        return {"metrics": scrape(ctx, service.metrics_url or "", BACKLOG_METRICS,
                                  service.metrics_token),
                "limits": ctx.fleet.queues.model_dump()}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        lim = {**QueueSettings().model_dump(), **(facts.get("limits") or {})}
        metrics = facts.get("metrics") or {}
        problem = answer_problem(metrics, "Synapse metrics")
        samples = samples_of(metrics)
        pdus = promtext.total(samples, "synapse_federation_transaction_queue_pending_pdus")
        if problem or pdus is None:
            f.error(problem or "no synapse_federation_transaction_queue_pending_pdus in the "
                    "scrape (is this Synapse's metrics listener, with enable_metrics?)")
            return f.verdict("")
        edus = promtext.total(samples, "synapse_federation_transaction_queue_pending_edus") or 0
        if pdus >= lim["pending_pdus_warn"]:
            f.warn(f"{pdus:.0f} PDUs queued for other servers (warn at {lim['pending_pdus_warn']})")
        persisted = promtext.total(samples, "synapse_event_persisted_position")
        position = _sender(samples, "synapse_event_processing_positions")
        last_ts = _sender(samples, "synapse_event_processing_last_ts")
        behind = (persisted - position) if persisted is not None and position is not None else 0
        lag = (_sender(samples, "synapse_event_processing_lag") or 0) / 1000
        if behind > 0 and last_ts:
            lag = max(lag, observed_at(facts).timestamp() - last_ts / 1000)
        what = f"federation sender ({behind:.0f} events behind)"
        if lag >= lim["latency_fail"]:
            f.fail(f"{what} {lag:.0f} s behind (fail at {lim['latency_fail']:.0f} s)")
        elif lag >= lim["latency_warn"]:
            f.warn(f"{what} {lag:.0f} s behind (warn at {lim['latency_warn']:.0f} s)")
        return f.verdict(f"{pdus:.0f} PDUs and {edus:.0f} EDUs queued; federation sender "
                         f"{behind:.0f} events behind, lag {lag:.1f} s")


def _destinations(ctx: ProbeContext, base: str, auth: dict[str, str]) -> Facts:
    """Every destination, page by page (bounded), as the admin API lists them."""
    rows: list[dict[str, Any]] = []
    first: HttpAnswer | Facts = {}
    start, total = 0, None
    for _ in range(DESTINATION_PAGES):
        url = (f"{base}/_synapse/admin/v1/federation/destinations?from={start}"
               f"&limit={DESTINATION_PAGE}")
        page, _ = fetch(ctx, url, headers=auth, want_json=True, follow=False)
        doc = page.pop("json", None)
        first = first or page
        if page.get("status") != 200 or not isinstance(doc, dict):
            return {"answer": page, "destinations": rows}
        total = doc.get("total")
        rows += [d for d in doc.get("destinations") or [] if isinstance(d, dict)]
        token = doc.get("next_token")
        if not isinstance(token, str) or not token.isdigit():
            break
        start = int(token)
    return {"answer": first, "total": total, "destinations": rows}


@register
class Destinations(MatrixCheck):
    meta = CheckMeta(
        id="matrix.federation.destinations",
        family="matrix",
        title="Remote servers we send to are reachable (declared peers, and most of the rest)",
        query="admin API `/_synapse/admin/v1/federation/destinations` (admin token), all pages",
        verdicts=(
            "fail a declared `federation_peers` entry failing; warn when at least half "
            "(`[federation] failing_share_warn`) of 4+ destinations fail (our side)"
        ),
        applies_to=(TargetKind.SYNAPSE,),
        interval=900,
        timeout=30,
        standards=("Synapse admin API GET /_synapse/admin/v1/federation/destinations",),
    )

    def applies(self, target: Target) -> bool:
        return target.kind in self.meta.applies_to and target.spec.admin_token is not None

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        base = (service.admin_url or origin(service.base_url)).rstrip("/")
        listed = _destinations(ctx, base, bearer(service.admin_token, "admin_token"))
        failing = [{k: d.get(k) for k in ("destination", "failure_ts", "retry_last_ts",
                                          "retry_interval")}
                   for d in listed.pop("destinations") if d.get("failure_ts")]
        failing.sort(key=lambda d: d.get("failure_ts") or 0)
        return {**listed, "failing_count": len(failing), "failing": failing[:50],
                "peers": list(service.federation_peers),
                "failing_peers": [d for d in failing
                                  if d.get("destination") in service.federation_peers],
                "failing_share_warn": ctx.fleet.federation.failing_share_warn}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        answer = facts.get("answer") or {}
        if answer.get("status") in (401, 403):
            f.error(f"the admin API refused the token (HTTP {answer['status']}): admin_token "
                    "must be an admin's access token")
            return f.verdict("")
        problem = answer_problem(answer, "federation destinations")
        if problem:
            f.error(problem)
            return f.verdict("")
        now = observed_at(facts)
        for peer in facts.get("failing_peers") or []:
            since = _since(peer.get("failure_ts"), now)
            f.fail(f"declared peer {peer.get('destination')} failing{since}")
        total = facts.get("total") or 0
        count = int(facts.get("failing_count") or 0)
        share = count / total if total else 0.0
        limit = float(facts.get("failing_share_warn") or 0.5)
        if total >= 4 and share >= limit:
            f.warn(f"{count} of {total} destinations failing ({share:.0%}): likely our side "
                   "(outbound network, DNS, TLS)")
        gave_up = sum(1 for d in facts.get("failing") or []
                      if (d.get("retry_interval") or 0) >= MAX_RETRY_MS)
        tail = f", {gave_up} at Synapse's maximum back-off" if gave_up else ""
        return f.verdict(f"{count} of {total} destinations failing{tail}")


def _since(failure_ts: Any, now: dt.datetime) -> str:
    if not isinstance(failure_ts, int | float) or isinstance(failure_ts, bool):
        return ""
    return f" for {age_text(now.timestamp() - failure_ts / 1000)}"


def _query_peer(ctx: ProbeContext, base: str, peer: str) -> Facts:
    """Make our server fetch `peer`'s keys (a cache miss), then read back what it holds."""
    body = {"server_keys": {peer: {PROBE_KEY_ID: {
        "minimum_valid_until_ts": int(time.time() * 1000)}}}}
    data = json.dumps(body).encode()
    try:
        ctx.http.request("POST", f"{base}/_matrix/key/v2/query", data=data,
                         headers={"Content-Type": "application/json"}, follow_redirects=False,
                         deadline=ctx.deadline)
    except ProbeError as exc:
        if exc.kind == "timeout":
            raise
    held, _ = fetch(ctx, f"{base}/_matrix/key/v2/query/{peer}", want_json=True, follow=False)
    doc = held.pop("json", None)
    keys = [k for k in (doc.get("server_keys") if isinstance(doc, dict) else None) or []
            if isinstance(k, dict) and k.get("server_name") == peer]
    newest = max(keys, key=lambda k: k.get("valid_until_ts") or 0, default=None)
    out: Facts = {"peer": peer, "answer": held}
    if newest is not None:
        report = check_server_keys(newest)
        out.update(valid_until_ts=report.valid_until_ts, verified=report.verified_keys,
                   bad_signatures=report.bad_signatures, problems=report.problems)
    return out


@register
class Outbound(MatrixCheck):
    meta = CheckMeta(
        id="matrix.federation.outbound",
        needs=("web.tls.certificate",),
        family="matrix",
        title="Our homeserver fetches declared peers' signing keys (outgoing federation works)",
        query=(
            "POST `/_matrix/key/v2/query` for an unknown key id of each declared peer (forces a "
            "fetch), then GET `/_matrix/key/v2/query/<peer>`"
        ),
        verdicts=(
            "fail our homeserver holds no keys of the peer, keys that do not verify, or only "
            "expired ones"
        ),
        applies_to=(TargetKind.SYNAPSE,),
        interval=900,
        timeout=30,
        standards=("Matrix Server-Server API 2.3.3 (querying keys through another server)",),
    )

    def applies(self, target: Target) -> bool:
        return target.kind in self.meta.applies_to and bool(target.spec.federation_peers)

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        service: Service = target.spec
        _, base = federation_base(ctx, service)
        return {"endpoint": base,
                "peers": [_query_peer(ctx, base, p) for p in service.federation_peers]}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        now_ms = observed_at(facts).timestamp() * 1000
        good = []
        for peer in facts.get("peers") or []:
            name = peer.get("peer")
            problem = answer_problem(peer.get("answer"), "key query")
            if problem:
                f.fail(f"{name}: {problem}")
            elif peer.get("valid_until_ts") is None:
                f.fail(f"our homeserver holds no keys of {name}: it could not fetch them "
                       "(outgoing federation to it is broken)")
            elif peer.get("bad_signatures") or not peer.get("verified"):
                f.fail(f"keys of {name} returned by our homeserver do not verify")
            elif peer["valid_until_ts"] < now_ms:
                f.fail(f"our homeserver only holds expired keys of {name}: fetching fresh ones "
                       "fails")
            else:
                good.append(name)
        return f.verdict(f"fetched the keys of {', '.join(good)} through our homeserver")
