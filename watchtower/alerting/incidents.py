"""Incidents: one per root cause, with the checks it leaves unjudged.

An incident is a firing alert (watchtower/alerting/processor.py) together with the pairs whose
current result names it as their `cause` (watchtower/probe/dependencies.py). A pair that fired
on its own before its prerequisite failed is listed under the root while the root fails, not as
an incident of its own: it is not judged now. The dashboard's alerts page and the report read
this one grouping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from watchtower.store import AlertStateRow, aware

Pair = tuple[str, str]


@dataclass(slots=True)
class Incident:
    """A root failure that fires, and what it leaves unjudged ("check on target" lines)."""

    check: str
    target: str
    family: str
    status: str
    reason: str
    since: dt.datetime
    silenced_by: str | None = None
    affected: list[str] = field(default_factory=list)


def incidents(states: Iterable[AlertStateRow], caused_by: Mapping[Pair, list[str]]
              ) -> list[Incident]:
    """Firing alerts grouped by root cause, oldest first (from `Store.alerts.states()` and
    `Store.caused_by()`)."""
    unjudged = {line for lines in caused_by.values() for line in lines}
    out = [Incident(st.check_id, st.target, st.family, st.status, st.reason, aware(st.since),
                    st.silenced_by, list(caused_by.get((st.check_id, st.target), ())))
           for st in states
           if st.firing and f"{st.check_id} on {st.target}" not in unjudged]
    out.sort(key=lambda i: (i.since, i.check, i.target))
    return out
