"""Reading an application's own Prometheus endpoint into facts (Mastodon's exporter, Synapse's
metrics listener, Garage's admin `/metrics`): fetched through the probe's HTTP client like every
other request, parsed by watchtower.parsers.promtext, and kept as the few samples a check
judges (a Synapse scrape is a megabyte; its evidence is a handful of numbers)."""

from __future__ import annotations

from collections.abc import Iterable

from watchtower.config import Secret
from watchtower.parsers import ParseError, promtext
from watchtower.probe.api import Facts, ProbeContext, reveal

from .common import fetch

#: Synapse's scrape of a busy homeserver runs past a megabyte.
METRICS_CAP = 16 * 1024 * 1024


def bearer(secret: Secret | None, what: str) -> dict[str, str]:
    """An Authorization header from a secret, or none; an unreadable secret stops the probe."""
    return {} if secret is None else {"Authorization": f"Bearer {reveal(secret, what)}"}


def scrape(ctx: ProbeContext, url: str, wanted: Iterable[str], token: Secret | None = None,
           what: str = "metrics_token") -> Facts:
    """{"url", "status", "samples": {name: [[labels, value], ...]}} or a recorded problem."""
    fetched, resp = fetch(ctx, url, headers=bearer(token, what), follow=False,
                          max_body=METRICS_CAP)
    facts: Facts = {"url": url, "status": fetched.get("status")}
    if fetched.get("problem"):
        facts["problem"] = fetched["problem"]
    if resp is None or resp.status != 200 or resp.truncated:
        return facts
    try:
        samples = promtext.parse(resp.body.decode("utf-8", errors="replace"), wanted)
    except ParseError as exc:
        facts["problem"] = exc.reason
        return facts
    facts["samples"] = {name: [[labels, value] for labels, value in rows]
                        for name, rows in samples.items()}
    return facts


def samples_of(facts: Facts) -> promtext.Samples:
    """The recorded samples back in parser form (judges read them with promtext helpers)."""
    raw = facts.get("samples") or {}
    out: promtext.Samples = {}
    for name, rows in raw.items():
        for row in rows if isinstance(rows, list) else []:
            if (isinstance(row, list) and len(row) == 2 and isinstance(row[0], dict)
                    and isinstance(row[1], int | float) and not isinstance(row[1], bool)):
                out.setdefault(str(name), []).append(
                    ({str(k): str(v) for k, v in row[0].items()}, float(row[1])))
    return out
