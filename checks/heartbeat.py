"""heartbeat.* checks (per `[[heartbeats]]` entry): did the job that pushes this heartbeat run?

Cron jobs and backup tools prove they ran by pinging `watchtower run` (POST /ping/<token>, or
/ping/<token>/fail when they failed; watchtower/daemon/http.py), the way Healthchecks takes
pings. The daemon keeps the last ping in the store (watchtower/store/heartbeats.py); this check
reads it through the probe context (`ctx.heartbeats`, read-only) and fails when the job has been
silent for longer than its period plus grace, with the last ping's time as evidence.
Healthchecks' states map as: new -> warn (never pinged), up -> ok, down -> fail, and a /fail
ping -> fail.
"""

from __future__ import annotations

import datetime as dt

from watchtower.config import Heartbeat
from watchtower.errors import ProbeError
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, observed_at
from watchtower.probe.registry import register

from .common import age_text


@register
class Ping(Check):
    meta = CheckMeta(
        id="heartbeat.ping",
        family="heartbeat",
        title="The job pushing this heartbeat pinged within its period plus grace",
        query="the last push to `watchtower run`'s `POST /ping/<token>` (or `/ping/<token>/fail`)",
        verdicts=(
            "fail no ping for longer than `period` + `grace` (the last ping's time as evidence), "
            "or the last ping reported failure; warn never pinged yet"
        ),
        applies_to=(TargetKind.HEARTBEAT,),
        interval=60,
        timeout=15,
        standards=("ISO/IEC 27001:2022 A.8.16 (monitoring activities)",
                   "Healthchecks ping API (POST /ping/<uuid>, /fail)"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        hb: Heartbeat = target.spec
        if ctx.heartbeats is None:
            raise ProbeError("this sweep has no access to the heartbeat store")
        return {"name": hb.name, "period": hb.period, "grace": hb.grace,
                "last": ctx.heartbeats.last_ping(hb.name)}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        last = facts.get("last")
        period, grace = float(facts.get("period") or 86400), float(facts.get("grace") or 0)
        if not last:
            f.warn("never pinged yet (POST /ping/<token> from the job when it succeeds)")
            return f.verdict("")
        at = dt.datetime.fromisoformat(str(last["last_at"]))
        silence = (observed_at(facts) - at).total_seconds()
        if silence > period + grace:
            f.fail(f"no ping for {age_text(silence)}: last at {at:%Y-%m-%d %H:%M}Z (expected "
                   f"every {age_text(period)} + {age_text(grace)} grace)")
        elif not last.get("last_ok"):
            f.fail(f"the last ping, at {at:%Y-%m-%d %H:%M}Z, reported failure (/fail)")
        return f.verdict(f"last ping {age_text(silence)} ago ({last.get('pings')} pings), "
                         f"expected every {age_text(period)}")
