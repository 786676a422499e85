"""backup.* checks (per `[[backups]]` entry): is the newest backup young enough?

A backup job that silently stopped is found only on the day of the restore. backup.freshness
lists the configured prefix of the backup bucket over S3 (ListObjectsV2 through
watchtower/net/s3.py, the probe's own HTTP client) and wants its newest object younger than
`max_age` hours. Object stores keep LastModified as the upload time, which is when the backup
landed.
"""

from __future__ import annotations

import datetime as dt

from watchtower.config import Backup
from watchtower.model import Findings, Target, TargetKind, Verdict
from watchtower.net.s3 import newest
from watchtower.probe.api import Check, CheckMeta, Facts, ProbeContext, observed_at, reveal
from watchtower.probe.registry import register

from .common import age_text


@register
class Freshness(Check):
    meta = CheckMeta(
        id="backup.freshness",
        needs=("storage.health",),
        family="backup",
        title="The newest object under the backup prefix is younger than max_age",
        query="S3 ListObjectsV2 of the entry's bucket and prefix (paginated, bounded)",
        verdicts=(
            "fail no object, listing refused, newest LastModified older than `max_age` hours; warn"
            " listing cut short, newest object empty"
        ),
        applies_to=(TargetKind.BACKUP,),
        interval=900,
        timeout=30,
        standards=("ISO/IEC 27001:2022 A.8.13 (information backup)",
                   "Amazon S3 API (ListObjectsV2)"),
    )

    def gather(self, target: Target, ctx: ProbeContext) -> Facts:
        backup: Backup = target.spec
        client = ctx.s3.client(backup.s3_endpoint, backup.s3_region,
                               reveal(backup.s3_access_key, "s3_access_key"),
                               reveal(backup.s3_secret_key, "s3_secret_key"),
                               deadline=ctx.deadline)
        listing = newest(client, backup.bucket, backup.prefix)
        return {"bucket": backup.bucket, "prefix": backup.prefix, "max_age_hours": backup.max_age,
                **listing.evidence()}

    def judge(self, facts: Facts) -> Verdict:
        f = Findings()
        where = f"{facts.get('bucket')}/{facts.get('prefix') or ''}"
        step = facts.get("step") or {}
        if not step.get("ok"):
            f.fail(f"cannot list {where}: {step.get('error') or 'HTTP ' + str(step.get('status'))}")
            return f.verdict("")
        if not facts.get("newest_at"):
            f.fail(f"no backup under {where}")
            return f.verdict("")
        newest_at = dt.datetime.fromisoformat(str(facts["newest_at"]))
        age = (observed_at(facts) - newest_at).total_seconds()
        limit = float(facts.get("max_age_hours") or 25) * 3600
        newest_key = facts.get("newest_key")
        if age > limit:
            f.fail(f"newest backup {newest_key} is {age_text(age)} old (max {age_text(limit)})")
        if facts.get("truncated"):
            f.warn(f"listing stopped after {facts.get('count')} objects: the newest may be "
                   "further on (use a narrower prefix)")
        if facts.get("newest_size") == 0:
            f.warn(f"newest backup {newest_key} is empty (0 bytes)")
        return f.verdict(f"newest backup {newest_key} is {age_text(age)} old "
                         f"({facts.get('count')} objects under {where})")
