"""Alert state: thresholds, alert flips, reminders and resolve notices, persisted in the store.

A raw status flip is not an alert: one timeout must not page anyone. Per (check, target) the
processor counts consecutive problem results (`fail` or `error`) and consecutive good ones (`ok`
or `warn`). The alert fires after `failure_threshold` problems in a row (default 3) and resolves
after `success_threshold` good results in a row (default 2); both can be set per check id, glob
or family in `[checks.X]` and globally in `[alerting]`.

What people were told is stored next to what is true (`alert_state.notified`). After each result
the processor reconciles the two and writes notices into the outbox, in the same transaction as
the state change:
- firing and not yet announced -> a `firing` notice;
- firing, announced, and `reminder_interval` passed since the last notice -> a `reminder`;
- resolved while the last notice said firing -> a `resolved` notice.
Inside a maintenance window nothing is written and `notified` stays as it was, so when the window
closes the truth is announced once (and an alert that fired and resolved inside it says nothing).
Because the state lives in the store, a restart neither forgets a firing alert nor repeats it.

One incident per root cause: a result a failed prerequisite caused (`Result.cause`, see
watchtower/probe/dependencies.py) does not count for its own alert (its alert neither fires nor
resolves while its prerequisite is down), so only the root's alert fires, and its notices list
the checks it leaves unjudged (the `state` rows naming it as their cause): one notification per
incident, one resolve notice when the root clears.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from watchtower.alerting.maintenance import silencing
from watchtower.config import Fleet
from watchtower.model import Result, Status, utcnow
from watchtower.store import AlertFlipRow, AlertStateRow, OutboxRow, Store, aware

log = logging.getLogger(__name__)

FIRING, RESOLVED = "firing", "resolved"
#: What an alert was before it fired: good (`ok`), or counting problems below its threshold.
OK, PENDING = "ok", "pending"
#: Affected checks named in a notice's body (the rest as a count).
AFFECTED_SHOWN = 20


@dataclass(frozen=True, slots=True)
class AlertFlip:
    """The alert of one (check, target) changed: ok or pending -> firing, firing -> resolved."""

    check: str
    target: str
    old: str
    new: str
    status: Status
    reason: str
    at: dt.datetime
    old_status: str


@dataclass(frozen=True, slots=True)
class Notice:
    """One message about one alert, as a channel sends it."""

    kind: str  # firing | reminder | resolved
    check: str
    family: str
    target: str
    status: str
    reason: str
    since: dt.datetime
    #: The checks this failure leaves unjudged ("check on target"), sorted.
    affected: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        head = {"firing": "FIRING", "reminder": "STILL FIRING", "resolved": "RESOLVED"}
        label = head.get(self.kind, self.kind.upper())
        more = f" (+{len(self.affected)} affected)" if self.affected else ""
        return f"[watchtower] {label}: {self.check} on {self.target}{more}"

    @property
    def body(self) -> str:
        lines = [f"{self.check} on {self.target} ({self.family})",
                 f"status: {self.status}",
                 f"since: {self.since.isoformat(timespec='seconds')}"]
        if self.reason:
            lines.append(f"reason: {self.reason}")
        if self.affected:
            lines.append(f"affected (not judged while this fails): {len(self.affected)}")
            lines += [f"  - {a}" for a in self.affected[:AFFECTED_SHOWN]]
            if len(self.affected) > AFFECTED_SHOWN:
                lines.append(f"  ... and {len(self.affected) - AFFECTED_SHOWN} more")
        return "\n".join(lines) + "\n"


def routes(only: Sequence[str], check_id: str, family: str) -> bool:
    """Whether a channel with these `only` globs takes notices about this check."""
    return not only or any(fnmatch.fnmatchcase(check_id, g) or g == family for g in only)


class AlertProcessor:
    """Turns stored results into alert state, alert flips and outbox rows."""

    def __init__(self, store: Store, fleet: Fleet) -> None:
        self.store = store
        self.fleet = fleet

    def reconfigure(self, fleet: Fleet) -> None:
        """A reloaded config takes effect from the next batch; stored state is kept."""
        self.fleet = fleet

    def thresholds(self, check_id: str, family: str) -> tuple[int, int]:
        override = self.fleet.override_for(check_id, family)
        settings = self.fleet.alerting
        return (override.failure_threshold or settings.failure_threshold,
                override.success_threshold or settings.success_threshold)

    def channels_for(self, check_id: str, family: str) -> list[str]:
        n = self.fleet.notifications
        specs = [(c.name, c.only) for c in n.email] + [(c.name, c.only) for c in n.apprise]
        return [name for name, only in specs if routes(only, check_id, family)]

    # -- processing ---------------------------------------------------------------------------

    def process(self, results: Sequence[Result], now: dt.datetime | None = None
                ) -> list[AlertFlip]:
        """Count, flip and reconcile a batch of already-stored results (one transaction)."""
        if not results:
            return []
        at = now or utcnow()
        flips: list[AlertFlip] = []
        affected = self.store.caused_by()

        def change(states: dict[tuple[str, str], AlertStateRow]) -> list[AlertFlipRow | OutboxRow]:
            flips.clear()  # the store may run this again after a busy database
            rows: list[AlertFlipRow | OutboxRow] = []
            for r in results:
                key = (r.check, r.target.name)
                st = states.get(key)
                if st is None:
                    st = states[key] = AlertStateRow(check_id=r.check, target=r.target.name,
                                                     family=r.family, since=r.at)
                flip = self._count(st, r)
                if flip is not None:
                    flips.append(flip)
                    rows.append(AlertFlipRow(
                        check_id=flip.check, target=flip.target, at=flip.at, old=flip.old,
                        new=flip.new, new_status=str(flip.status), old_status=flip.old_status,
                        reason=flip.reason[:2000]))
                rows.extend(self._reconcile(st, r.target.tags, at,
                                            affected.get((st.check_id, st.target), ())))
            return rows

        self.store.alerts.update_states({(r.check, r.target.name) for r in results}, change)
        for f in flips:
            log.info("alert %s on %s: %s -> %s (%s)", f.check, f.target, f.old, f.new, f.reason)
        return flips

    def _count(self, st: AlertStateRow, r: Result) -> AlertFlip | None:
        if r.cause is not None:
            return None  # not judged: the root's alert is the incident (module docstring)
        fail_after, resolve_after = self.thresholds(r.check, r.family)
        before = st.status
        if r.status.is_problem:
            st.problems += 1
            st.goods = 0
        else:
            st.goods += 1
            st.problems = 0
        if not st.firing and st.problems >= fail_after:
            was = PENDING if st.problems > 1 else OK  # problems counted before this one
            st.firing, st.status, st.since, st.reason = True, str(r.status), r.at, r.summary
            return AlertFlip(r.check, r.target.name, was, FIRING, r.status, r.summary, r.at,
                             before)
        if st.firing and st.goods >= resolve_after:
            st.firing, st.status, st.since, st.reason = False, str(r.status), r.at, r.summary
            return AlertFlip(r.check, r.target.name, FIRING, RESOLVED, r.status, r.summary, r.at,
                             before)
        if st.firing and r.status.is_problem:
            st.status, st.reason = str(r.status), r.summary  # the latest reason is the news
        return None

    def _reconcile(self, st: AlertStateRow, tags: Sequence[str], now: dt.datetime,
                   affected: Sequence[str] = ()) -> list[OutboxRow]:
        """What people must be told now (see the module docstring): the outbox rows."""
        st.silenced_by = silencing(self.fleet.maintenance, st.check_id, st.family, st.target,
                                   tags, now)
        if st.silenced_by is not None:
            return []
        kind: str | None = None
        reminder = self.fleet.alerting.reminder_interval
        if st.firing and st.notified != FIRING:
            kind = FIRING
        elif (st.firing and reminder > 0 and st.last_notified_at is not None
              and (now - aware(st.last_notified_at)).total_seconds() >= reminder):
            kind = "reminder"
        elif not st.firing and st.notified == FIRING:
            kind = RESOLVED
        if kind is None:
            return []
        notice = Notice(kind, st.check_id, st.family, st.target, st.status, st.reason,
                        aware(st.since), tuple(affected) if kind != RESOLVED else ())
        st.notified = FIRING if kind != RESOLVED else RESOLVED
        st.last_notified_at = now
        return [OutboxRow(channel=channel, kind=kind, check_id=st.check_id, target=st.target,
                          family=st.family, status=st.status, subject=notice.subject,
                          body=notice.body, created_at=now, next_attempt_at=now)
                for channel in self.channels_for(st.check_id, st.family)]


