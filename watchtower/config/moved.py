"""Where each key of the old `[settings]` table went when it was split by concern.

One table, read by the loader (so `watchtower validate` names the new place of every moved key)
and by nothing else: the new places themselves are declared once, in sections.py.
"""

from __future__ import annotations

from typing import Any

#: old `[settings]` key -> (new table, new key); a None table means the key was dropped.
MOVED: dict[str, tuple[str | None, str]] = {
    "nameservers": ("probe", "nameservers"),
    "dns_timeout": ("probe", "dns_timeout"),
    "authoritative_port": ("probe", "authoritative_port"),
    "smtp_port": ("probe", "smtp_port"),
    "https_port": ("probe", "https_port"),
    "http_port": ("probe", "http_port"),
    "ca_bundle": ("probe", "ca_bundle"),
    "http_timeout": ("probe", "http_timeout"),
    "max_body_bytes": ("probe", "max_body_bytes"),
    "concurrency": ("probe", "concurrency"),
    "sweep_processes": ("probe", "sweep_processes"),
    "jitter": ("probe", "jitter"),
    "trust_anchors": ("probe", "trust_anchors"),
    "caa_issuers": ("probe", "caa_issuers"),
    "database": ("store", "database"),
    "state_dir": ("store", "state_dir"),
    "history_raw_days": ("retention", "raw_days"),
    "history_rollup_days": ("retention", "rollup_days"),
    "prune_cron": ("retention", "prune_cron"),
    "failure_threshold": ("alerting", "failure_threshold"),
    "success_threshold": ("alerting", "success_threshold"),
    "reminder_interval": ("alerting", "reminder_interval"),
    "metrics_listen": ("metrics", "listen"),
    "metrics_auth": ("metrics", "auth"),
    "release_feed": ("feeds", "release"),
    "advisory_feeds": ("feeds", "advisories"),
    "advisory_whitelist": ("feeds", "whitelist"),
    "log_level": ("daemon", "log_level"),
    "default_interval": (None, "each check has its own interval; set one per check or family "
                               "in [checks.ID] interval"),
}


def moved_problems(data: dict[str, Any]) -> list[str]:
    """One line per key of an old `[settings]` table, naming where it lives now.

    The table is taken out of `data`, so the rest of the file is still validated and every
    problem is reported in one go."""
    old = data.pop("settings", None)
    if old is None:
        return []
    if not isinstance(old, dict):
        return ["settings: the [settings] table was split into [probe], [store], [retention], "
                "[alerting], [metrics], [feeds] and [daemon]"]
    problems = []
    for key in old:
        table, new = MOVED.get(key, ("", ""))
        if table is None:
            problems.append(f"settings.{key} was removed: {new}")
        elif table:
            problems.append(f"settings.{key} moved to [{table}] {new}")
        else:
            problems.append(f"settings.{key}: unknown key (and [settings] was split into "
                            "[probe], [store], [retention], [alerting], [metrics], [feeds] "
                            "and [daemon])")
    return problems
