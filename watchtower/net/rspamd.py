"""Rspamd's controller: is the spam filter alive, and is mail going through it?

`GET /ping` answers `pong` without a password; `GET /stat` (the controller's read-only
statistics: version, uptime, messages scanned, counts per action) needs the controller
password in a `Password` header (https://rspamd.com/doc/workers/controller.html). Both go
through the sweep's HTTP client, so the deadline, body cap and resolver apply; the password
is sent as a header and never appears in what is returned.
"""

from __future__ import annotations

from typing import Any

from watchtower.errors import ProbeError
from watchtower.net.http import HttpClient

MAX_BODY = 256 * 1024  # /stat is a few KiB


def controller_health(http: HttpClient, url: str, password: str | None, deadline: float
                      ) -> dict[str, Any]:
    """/ping and /stat of the controller at `url`, reduced to what a check judges."""
    base = url.rstrip("/")
    out: dict[str, Any] = {"url": base}
    ping = http.get(f"{base}/ping", shared=False, deadline=deadline, max_body=1024,
                    headers={"Accept-Encoding": "identity"})
    out["ping"] = {"status": ping.status, "body": ping.body[:40].decode("utf-8", "replace")
                   .strip()}
    # identity: the capped reader keeps bytes as sent, and Rspamd compresses when allowed
    headers = {"Accept-Encoding": "identity"}
    if password is not None:
        headers["Password"] = password
    stat = http.get(f"{base}/stat", shared=False, deadline=deadline, headers=headers,
                    max_body=MAX_BODY)
    out["stat_status"] = stat.status
    if stat.status == 200:
        out["stat"] = _stat(stat.json(), base)
    return out


def _stat(doc: Any, base: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ProbeError(f"{base}/stat: not a JSON object", kind="malformed")
    raw = doc.get("actions")
    actions: dict[Any, Any] = raw if isinstance(raw, dict) else {}
    try:
        return {
            "version": str(doc.get("version", ""))[:40],
            "uptime": int(doc.get("uptime", 0)),
            "scanned": int(doc.get("scanned", 0)),
            "spam_count": int(doc.get("spam_count", 0)),
            "ham_count": int(doc.get("ham_count", 0)),
            "actions": {str(k)[:40]: int(v) for k, v in list(actions.items())[:20]},
        }
    except (TypeError, ValueError) as exc:
        raise ProbeError(f"{base}/stat: counters are not numbers ({exc})",
                         kind="malformed") from exc
