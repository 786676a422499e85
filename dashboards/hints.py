"""The fix hint beside a check on the dashboard: the report's own (watchtower/report/hints.py).

One source for the advice, so an operator on the dashboard and a customer reading the report
are told the same thing; this module only decides which verdicts get it, as the report does:
fail and warn get the hint, error gets a note that the probe could not run (there is nothing to
fix in the service yet), ok gets nothing.
"""

from __future__ import annotations

from functools import cache

from watchtower.probe import registry
from watchtower.report.hints import hint_for

PROBE_ERROR = "The probe could not run; not a compliance failure, but it hides the result."


@cache
def _own_hints() -> dict[str, str]:
    return {cid: c.meta.hint for cid, c in registry.checks().items() if c.meta.hint}


def fix_hint(check_id: str, status: str) -> str:
    """What to do about `check_id` at `status` ("" when there is nothing to do)."""
    if status in ("fail", "warn"):
        return hint_for(check_id, _own_hints().get(check_id, ""))
    if status == "error":
        return PROBE_ERROR
    return ""


def fix_line(check_id: str, status: str) -> str:
    """`fix_hint` as a line of its own: "How to fix: …", or the note alone for an error."""
    hint = fix_hint(check_id, status)
    return f"How to fix: {hint}" if hint and status != "error" else hint
